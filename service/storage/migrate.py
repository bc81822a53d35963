"""Schema migrations: bring a database to the code's schema (Alembic, `migrations/versions`).

- an empty database is created at the head revision;
- a database made by a release before migrations (tables, `meta.schema_version` 1, no
  `alembic_version`) is exactly the baseline and is stamped so;
- the service refuses a database whose revision is behind the head (`techmatch db upgrade`
  moves it) or unknown to this code (made by a newer release).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text


class SchemaError(RuntimeError):
    """The database's schema does not fit this code; the message says what to do."""

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001_baseline"
_LOCK_KEY = 72_151_015  # pg_advisory_xact_lock key: one migrating process at a time


def _config(connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision this code knows."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def known_revisions() -> set[str]:
    return {rev.revision for rev in ScriptDirectory.from_config(_config()).walk_revisions()}


def current(engine: Engine) -> str | None:
    """The database's revision: None for an empty database, BASELINE for one made before
    migrations existed (not stamped yet)."""
    with engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
        if rev is None and _is_pre_migration(conn):
            return BASELINE
        return rev


def _is_pre_migration(conn) -> bool:
    tables = set(inspect(conn).get_table_names())
    return "meta" in tables and "alembic_version" not in tables


def _lock(conn) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str]:
    """Migrate to `target` (stamping a pre-migration database as the baseline first);
    returns (revision before, revision after). Safe to run from several processes at once."""
    with engine.begin() as conn:
        _lock(conn)
        before = MigrationContext.configure(conn).get_current_revision()
        if before is None and _is_pre_migration(conn):
            command.stamp(_config(conn), BASELINE)
            before = BASELINE
        if before is not None and before not in known_revisions():
            raise SchemaError(_newer_message(before))
        command.upgrade(_config(conn), target)
        after = MigrationContext.configure(conn).get_current_revision()
    return before, after


def prepare(engine: Engine) -> None:
    """What the service does at start: create an empty database at the head, stamp a
    pre-migration one, refuse one that is behind or ahead with a message saying what to do."""
    rev = current(engine)
    if rev is None or (rev == BASELINE and head() == BASELINE):
        upgrade(engine)
        return
    if rev == head():
        return
    if rev not in known_revisions():
        raise SchemaError(_newer_message(rev))
    raise SchemaError(
        f"the database schema is at revision {rev}, this release needs {head()}: back the database up, "
        f"then run `techmatch db upgrade --db <the same database>` and start again"
        f" / 数据库结构版本 {rev} 落后于本版本所需的 {head()}："
        f"请先备份，再运行 `techmatch db upgrade --db <同一数据库>`")


def _newer_message(rev: str) -> str:
    return (f"the database schema is at revision {rev}, which this release does not know (made by a newer "
            f"release?); use that release / 数据库结构版本 {rev} 不为本版本所知（可能由更新的版本创建）")
