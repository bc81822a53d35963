"""Baseline: the schema of the last release created by `create_all` (meta schema_version 1).

A frozen copy: never edit it; change the schema with a new revision on top.

Revision ID: 0001_baseline
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def _stamps(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.DateTime, nullable=False) for name in names]


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("region", sa.String(200), nullable=False),
        sa.Column("country", sa.String(64), nullable=False),
        sa.Column("extra", sa.JSON, nullable=False),
        *_stamps("created_at", "updated_at"),
    )
    op.create_table(
        "capabilities",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("partner_id", sa.String(128), sa.ForeignKey("partners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("industries", sa.JSON, nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("extra", sa.JSON, nullable=False),
        *_stamps("created_at", "updated_at"),
    )
    op.create_index("ix_capabilities_partner_id", "capabilities", ["partner_id"])
    op.create_table(
        "capability_industries",
        sa.Column("capability_id", sa.String(128), sa.ForeignKey("capabilities.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("industry", sa.String(200), primary_key=True),
    )
    op.create_index("ix_capability_industries_industry", "capability_industries", ["industry"])
    op.create_table(
        "demands",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("industry", sa.String(200), nullable=False),
        sa.Column("region", sa.String(200), nullable=False),
        sa.Column("enterprise", sa.String(500), nullable=False),
        sa.Column("contact", sa.String(500), nullable=False),
        sa.Column("confidential", sa.Boolean, nullable=False),
        sa.Column("date", sa.String(32), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.Column("owner", sa.String(500), nullable=False),
        sa.Column("published", sa.Boolean, nullable=False),
        *_stamps("created_at", "updated_at"),
    )
    for col in ("industry", "region", "owner"):
        op.create_index(f"ix_demands_{col}", "demands", [col])
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("partner_id", sa.String(128), sa.ForeignKey("partners.id", ondelete="CASCADE"), nullable=True),
        sa.Column("enterprise", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("demand_id", sa.String(128), sa.ForeignKey("demands.id", ondelete="CASCADE"), nullable=False),
        sa.Column("partner_id", sa.String(128), sa.ForeignKey("partners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_feedback_demand_id", "feedback", ["demand_id"])
    op.create_index("ix_feedback_partner_id", "feedback", ["partner_id"])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
    )
    op.create_table(
        "conference_jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("progress_done", sa.Integer, nullable=False),
        sa.Column("progress_total", sa.Integer, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("demand_ids", sa.JSON, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("objective", sa.Float, nullable=True),
        sa.Column("greedy_objective", sa.Float, nullable=True),
        sa.Column("gap", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=True),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_conference_jobs_status", "conference_jobs", ["status"])
    op.create_table(
        "demand_links",
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("demand_links", "conference_jobs", "meta", "feedback", "tokens", "demands",
                  "capability_industries", "capabilities", "partners"):
        op.drop_table(table)
