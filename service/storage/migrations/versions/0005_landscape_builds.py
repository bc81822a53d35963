"""landscape_builds: the demand landscape built once per data revision for every process, with
a lease so that a build whose process died is taken over by another.

Revision ID: 0005_landscape_builds
Revises: 0004_outcomes_and_review
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_landscape_builds"
down_revision = "0004_outcomes_and_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "landscape_builds",
        sa.Column("revision", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(200), nullable=False),
        sa.Column("lease_until", sa.DateTime, nullable=False),
        sa.Column("builds", sa.Integer, nullable=False),
        sa.Column("built_revision", sa.Integer, nullable=True),
        sa.Column("data", sa.LargeBinary, nullable=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("landscape_builds")
