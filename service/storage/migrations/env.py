"""Alembic's entry point: runs the migrations on the connection `service.storage.migrate` passes in."""

from __future__ import annotations

from alembic import context

from service.storage.db import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
