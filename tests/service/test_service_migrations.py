"""Schema migrations: a database made by the last release before migrations (built here with a
frozen copy of its schema, filled with a row in every table) upgrades to the head with every row
intact; the head equals the code's schema; the service refuses a database that is behind."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
import release_schema_v1 as old
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from service_testkit import REPO, make_settings
from sqlalchemy import insert, select, text

from service.storage import migrate
from service.storage.db import make_engine, metadata

T0 = dt.datetime(2025, 3, 1, 8, 30, 0)
ROWS = {
    "partners": [{"id": "P1", "name": "寒地材料研究所", "type": "institute", "region": "富拉尔基区", "country": "CN",
                  "extra": {"网址": "x"}, "created_at": T0, "updated_at": T0}],
    "capabilities": [{"id": "C1", "partner_id": "P1", "title": "低温涂层", "text": "附着力", "kind": "tech",
                      "industries": ["新材料"], "language": "zh", "extra": {}, "created_at": T0, "updated_at": T0}],
    "capability_industries": [{"capability_id": "C1", "industry": "新材料"}],
    "demands": [{"id": "D1", "title": "货车涂层", "text": "低温剥落", "industry": "轨道交通装备", "region": "铁锋区",
                 "enterprise": "朔风", "contact": "刘 0452", "confidential": True, "date": "2025-03-12",
                 "language": "zh", "extra": {"a": [1, 2]}, "owner": "朔风", "published": False,
                 "created_at": T0, "updated_at": T0}],
    "tokens": [{"id": "t1", "name": "staff", "token_hash": "ab" * 32, "role": "staff", "partner_id": None,
                "enterprise": None, "created_at": T0, "expires_at": None}],
    "feedback": [{"id": 1, "demand_id": "D1", "partner_id": "P1", "status": "contacted", "reason": "好",
                  "who": "staff", "created_at": T0}],
    "meta": [{"key": "revision", "value": 17}, {"key": "schema_version", "value": old.SCHEMA_VERSION}],
    "conference_jobs": [{"id": "J1", "status": "done", "stage": "done", "progress_done": 3, "progress_total": 3,
                         "params": {"k": 5}, "demand_ids": ["D1"], "summary": {"n": 1}, "objective": 1.5,
                         "greedy_objective": 1.25, "gap": 0.1, "error": "", "runs": 1, "created_by": "admin",
                         "created_at": T0, "started_at": T0, "finished_at": T0, "updated_at": T0}],
    "demand_links": [{"key": "links", "data": '{"merged": []}', "version": 3, "updated_by": "staff",
                      "updated_at": T0}],
}


def _release_database(tmp_path) -> str:
    """A database as the last release left it: its `create_all`, one row in every table."""
    url = make_settings(tmp_path).db_url
    engine = make_engine(url)
    old.metadata.create_all(engine)
    with engine.begin() as conn:
        for name, rows in ROWS.items():
            conn.execute(insert(old.metadata.tables[name]), rows)
    engine.dispose()
    return url


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "matcher.cli.commands", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_the_frozen_release_schema_is_every_table_the_baseline_knows():
    assert set(old.metadata.tables) == set(ROWS)


def test_a_release_database_upgrades_to_the_head_with_every_row_intact(tmp_path):
    url = _release_database(tmp_path)
    engine = make_engine(url)
    assert migrate.current(engine) == migrate.BASELINE  # recognised, not mistaken for an empty database
    r = _cli("db", "upgrade", "--db", url)
    assert r.returncode == 0, r.stderr
    assert f"-> {migrate.head()}" in r.stdout
    assert migrate.current(engine) == migrate.head()
    with engine.connect() as conn:
        for name, rows in ROWS.items():
            table = metadata.tables[name]
            keys = [c.name for c in table.primary_key.columns]
            have = {tuple(row._mapping[k] for k in keys): dict(row._mapping) for row in conn.execute(select(table))}
            for want in rows:
                got = have.pop(tuple(want[k] for k in keys))
                assert {k: got[k] for k in want} == want, name
            # nothing else, but the identity the service stamps its saved index with
            assert list(have) == ([("database_id",)] if name == "meta" else []), name
    r = _cli("db", "current", "--db", url)
    assert r.returncode == 0 and f"revision: {migrate.head()} (current)" in r.stdout, r.stdout
    engine.dispose()


def test_the_head_schema_equals_the_code_schema(tmp_path):
    """Fails when a table or column is added to service/storage/db.py without a migration."""
    engine = make_engine(make_settings(tmp_path).db_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    engine.dispose()
    assert diff == [], f"the schema in db.py differs from the migrations' head: {diff}"


def test_the_service_refuses_a_database_whose_schema_is_behind(tmp_path, monkeypatch):
    url = _release_database(tmp_path)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:  # as if this release had a migration the database has not had
        conn.execute(text("UPDATE alembic_version SET version_num = 'zz_unknown'"))
    r = _cli("serve", "--db", url, "--model", "fake", "--port", "1")
    assert r.returncode == 2 and "zz_unknown" in r.stderr and "Traceback" not in r.stderr, r.stderr
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE alembic_version SET version_num = '{migrate.BASELINE}'"))
    monkeypatch.setattr(migrate, "head", lambda: "0099_future")
    monkeypatch.setattr(migrate, "known_revisions", lambda: {migrate.BASELINE, "0099_future"})
    with pytest.raises(migrate.SchemaError, match="techmatch db upgrade"):
        migrate.prepare(engine)
    engine.dispose()


def test_the_start_up_line_never_shows_the_database_password():
    from service.settings import redact_url

    shown = redact_url("postgresql+psycopg://bureau:s3cret-pw@db.example:5432/techmatch?password=s3cret-pw")
    assert "s3cret-pw" not in shown and "bureau" in shown and "db.example" in shown
    assert redact_url("sqlite:////srv/techmatch.db") == "sqlite:////srv/techmatch.db"
