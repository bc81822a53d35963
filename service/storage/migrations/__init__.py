"""Schema migrations (Alembic): `env.py` and one file per revision under `versions/`.

Owns the database schema's history from the baseline (the schema of the releases before
migrations) to the head, which must equal `service.storage.db`. How to add a migration:
docs/service.md, "Schema migrations".

May import: SQLAlchemy, Alembic and `service.storage.db`; nothing else of the service.
"""
