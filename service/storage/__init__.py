"""The database: the service's source of truth.

Owns the schema and connections (:mod:`.db`: SQLAlchemy Core, SQLite by default, PostgreSQL by
URL, the data revision every write bumps), reading and writing demands, capabilities and partners
(:mod:`.store`) and feedback rows (:mod:`.feedback`). Functions take a connection and run in the
caller's transaction.

May import: :mod:`service.settings` and :mod:`matcher`'s records. Nothing else of the service:
every other part of it builds on this one.
"""
