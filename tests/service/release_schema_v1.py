"""The schema of the last release before migrations (service/storage/db.py at commit f089006),
frozen: the migration tests build a database with it, as that release did (`create_all`), fill
it and upgrade it. Never edit it."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text

SCHEMA_VERSION = 1

metadata = MetaData()

partners = Table(
    "partners", metadata,
    Column("id", String(128), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("type", String(32), nullable=False, default=""),
    Column("region", String(200), nullable=False, default=""),
    Column("country", String(64), nullable=False, default=""),
    Column("extra", JSON, nullable=False, default=dict),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

capabilities = Table(
    "capabilities", metadata,
    Column("id", String(128), primary_key=True),
    Column("partner_id", String(128), ForeignKey("partners.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("title", Text, nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),
    Column("kind", String(100), nullable=False, default=""),
    Column("industries", JSON, nullable=False, default=list),
    Column("language", String(16), nullable=False, default=""),
    Column("extra", JSON, nullable=False, default=dict),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

# One row per (capability, industry tag): lets lists filter by industry with plain SQL.
capability_industries = Table(
    "capability_industries", metadata,
    Column("capability_id", String(128), ForeignKey("capabilities.id", ondelete="CASCADE"),
           primary_key=True),
    Column("industry", String(200), primary_key=True),
    Index("ix_capability_industries_industry", "industry"),
)

demands = Table(
    "demands", metadata,
    Column("id", String(128), primary_key=True),
    Column("title", Text, nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),
    Column("industry", String(200), nullable=False, default="", index=True),
    Column("region", String(200), nullable=False, default="", index=True),
    Column("enterprise", String(500), nullable=False, default=""),
    Column("contact", String(500), nullable=False, default=""),
    Column("confidential", Boolean, nullable=False, default=False),
    Column("date", String(32), nullable=False, default=""),
    Column("language", String(16), nullable=False, default=""),
    Column("extra", JSON, nullable=False, default=dict),
    # The enterprise account that owns the demand (an enterprise token's binding).
    Column("owner", String(500), nullable=False, default="", index=True),
    # Unpublished demands (e.g. submitted by an enterprise, not yet reviewed) are hidden
    # from institutes.
    Column("published", Boolean, nullable=False, default=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

tokens = Table(
    "tokens", metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex
    Column("role", String(16), nullable=False),
    Column("partner_id", String(128), ForeignKey("partners.id", ondelete="CASCADE"), nullable=True),
    Column("enterprise", String(500), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=True),
)

feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("demand_id", String(128), ForeignKey("demands.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("partner_id", String(128), ForeignKey("partners.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("status", String(32), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("who", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
)

# Conference batch runs started from the service (see `conference_jobs.py`); the files
# live in a folder per job under `Settings.jobs_dir()`.
conference_jobs = Table(
    "conference_jobs", metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(16), nullable=False, index=True),  # queued running done failed interrupted
    Column("stage", String(32), nullable=False, default=""),
    Column("progress_done", Integer, nullable=False, default=0),
    Column("progress_total", Integer, nullable=False, default=0),
    Column("params", JSON, nullable=False, default=dict),
    Column("demand_ids", JSON, nullable=False, default=list),
    Column("summary", JSON, nullable=False, default=dict),
    Column("objective", Float, nullable=True),
    Column("greedy_objective", Float, nullable=True),
    Column("gap", Float, nullable=True),
    Column("error", Text, nullable=False, default=""),
    Column("runs", Integer, nullable=False, default=0),
    Column("created_by", String(200), nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime, nullable=True),
    Column("finished_at", DateTime, nullable=True),
    Column("updated_at", DateTime, nullable=False),
)

# Staff decisions on near-duplicate demands: one row holding `matcher.landscape.build.DemandLinks`
# as JSON (merges keep copies of the original records; the `demands` rows are never changed).
demand_links = Table(
    "demand_links", metadata,
    Column("key", String(32), primary_key=True),
    Column("data", Text, nullable=False),
    Column("version", Integer, nullable=False, default=1),  # optimistic concurrency between processes
    Column("updated_by", String(200), nullable=False, default=""),
    Column("updated_at", DateTime, nullable=False),
)


