"""conference_jobs.worker: which process runs a job, so a job whose process died is recovered
by another process without interrupting the jobs of live ones.

Revision ID: 0003_job_worker
Revises: 0002_change_log
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_job_worker"
down_revision = "0002_change_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conference_jobs") as batch:
        batch.add_column(sa.Column("worker", sa.String(200), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("conference_jobs") as batch:
        batch.drop_column("worker")
