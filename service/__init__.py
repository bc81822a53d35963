"""The techmatch web service: FastAPI app factory, storage, live index, roles and web pages.

Build an app with `service.app.create_app(settings)`; start it with `techmatch serve`.
Never imports torch or faiss directly: the engine in `matcher` does that lazily.
"""
