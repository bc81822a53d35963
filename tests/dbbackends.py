"""The databases the service tests run against: SQLite always, PostgreSQL when a server is
configured (``TECHMATCH_TEST_POSTGRES_URL``, an SQLAlchemy URL of a database whose user may
create databases; ``.ci/run`` starts a throwaway cluster and sets it).

Every PostgreSQL test gets a fresh database of its own, dropped at the end of the session.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

BACKENDS = ("sqlite", "postgresql")
PG_ENV = "TECHMATCH_TEST_POSTGRES_URL"
_current = {"backend": "sqlite"}
_created: list[str] = []
_by_file: dict[tuple[str, Path], str] = {}


def postgres_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def use(backend: str) -> None:
    """Make `backend` the one `database_url` hands out (called by the backend fixture)."""
    if backend == "postgresql" and not postgres_url():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {PG_ENV} is not set (.ci/run starts a cluster)")
        pytest.skip(f"PostgreSQL not configured: set {PG_ENV} (bash .ci/postgres.sh start DIR prints a URL)")
    _current["backend"] = backend


def current() -> str:
    return _current["backend"]


def _admin_conn():
    import psycopg

    url = postgres_url().replace("postgresql+psycopg://", "postgresql://", 1)
    return psycopg.connect(url, autocommit=True)


def new_postgres_database() -> str:
    """Create an empty database on the test server and return its SQLAlchemy URL."""
    name = f"tm_{uuid.uuid4().hex[:16]}"
    with _admin_conn() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _created.append(name)
    base, _, _ = postgres_url().rpartition("/")
    return f"{base}/{name}"


def database_url(sqlite_file: Path) -> str:
    """The database of the current backend that stands for `sqlite_file`: the file itself for
    SQLite, a PostgreSQL database made on first use otherwise (the same one every time, so a
    test can restart a service on the database it used)."""
    if current() == "postgresql":
        key = (postgres_url(), Path(sqlite_file))
        if key not in _by_file:
            _by_file[key] = new_postgres_database()
        return _by_file[key]
    return f"sqlite:///{sqlite_file}"


def drop_created() -> None:
    """Drop every database this session created (connections are closed first)."""
    if not _created or not postgres_url():
        return
    with _admin_conn() as conn:
        for name in _created:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    _created.clear()


@pytest.fixture(scope="module", params=BACKENDS, autouse=True)
def db_backend(request):
    """The parametrised database of the service and reliability suites (module scope, so a
    module-scoped app is built once per backend). Import it into a conftest to use it."""
    use(request.param)
    yield request.param
    use("sqlite")
