"""Schema migrations (Alembic): `env.py` and one file per revision under `versions/`.

Owns the database schema's history; imports only SQLAlchemy, Alembic and `service.storage.db`.
How to add a migration: docs/service.md, "Schema migrations".
"""
