"""The techmatch web service: FastAPI app factory, storage, live index, roles and web pages.

Build an app with `service.app.create_app(settings)`; start it with `techmatch serve`.
Never imports torch or faiss directly: the engine in `matcher` does that lazily.

Parts, lowest first (each imports only from those before it; ``tests/test_layout.py`` checks):
`settings`, `schemas`, `errors`; `storage/` (the database); `auth/` (tokens, visibility policy)
and `views/` (templates, languages); `jobs/` (live index, conference and landscape jobs);
`deps`, `matching`, `importer`, `demo`; `routers/` (one per resource, and the pages); `app`, `cli`.
"""
