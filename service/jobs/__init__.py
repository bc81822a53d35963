"""Work the service does beside answering a request: the live index and background jobs.

Owns the live index kept in step with the database (:mod:`.live`) and the engine answers it keeps
until the index changes (:mod:`.answers`), conference runs as background jobs (:mod:`.conference`)
and the landscape built in the background and cached by revision, with staff decisions on
near-duplicate demands (:mod:`.landscape`) and the engine copies its builds run on
(:mod:`.snapshots`), and whether the process behind a job's worker id is still running
(:mod:`.process`).

May import: :mod:`service.storage`, :mod:`service.errors`, :mod:`service.schemas` and
:mod:`matcher`. Not :mod:`service.auth`, the views or the routers.
"""
