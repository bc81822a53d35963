"""Outcomes and review: the pipeline of a pair on feedback, impressions, and demand history.

Feedback rows gain a reason code, a contract amount and their source (issue 16); every served
match list is logged in `impression_lists` / `impressions` (issue 16); every change to a demand
made through the service is kept in `demand_changes` (issue 17).

Revision ID: 0004_outcomes_and_review
Revises: 0003_job_worker
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_outcomes_and_review"
down_revision = "0003_job_worker"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing feedback rows get "" / NULL: they predate reason codes, amounts and sources.
    op.add_column("feedback", sa.Column("reason_code", sa.String(32), nullable=False, server_default=""))
    op.add_column("feedback", sa.Column("amount", sa.Float, nullable=True))
    op.add_column("feedback", sa.Column("source", sa.String(16), nullable=False, server_default=""))

    op.create_table(
        "impression_lists",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("served_at", sa.DateTime, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("demand_id", sa.String(128), nullable=True),
        sa.Column("query_hash", sa.String(64), nullable=False),
        sa.Column("engine", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("k", sa.Integer, nullable=False),
    )
    op.create_index("ix_impression_lists_served_at", "impression_lists", ["served_at"])
    op.create_index("ix_impression_lists_demand_id", "impression_lists", ["demand_id"])
    op.create_table(
        "impressions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("list_id", sa.String(32), sa.ForeignKey("impression_lists.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("partner_id", sa.String(128), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("components", sa.JSON, nullable=False),
    )
    op.create_index("ix_impressions_list_id", "impressions", ["list_id"])
    op.create_index("ix_impressions_partner_id", "impressions", ["partner_id"])

    op.create_table(
        "demand_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("demand_id", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("changes", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_demand_changes_demand_id", "demand_changes", ["demand_id"])


def downgrade() -> None:
    op.drop_index("ix_demand_changes_demand_id", table_name="demand_changes")
    op.drop_table("demand_changes")
    op.drop_index("ix_impressions_partner_id", table_name="impressions")
    op.drop_index("ix_impressions_list_id", table_name="impressions")
    op.drop_table("impressions")
    op.drop_index("ix_impression_lists_demand_id", table_name="impression_lists")
    op.drop_index("ix_impression_lists_served_at", table_name="impression_lists")
    op.drop_table("impression_lists")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("source")
        batch.drop_column("amount")
        batch.drop_column("reason_code")
