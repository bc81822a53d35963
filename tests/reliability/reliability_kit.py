"""Shared by the reliability tests: a real `techmatch serve` process that can be SIGKILLed,
direct read-only looks at its SQLite file and saved index, synthetic tables, and the figures
every test writes to ``test-artifacts/reliability/<name>.json``.

Nothing here downloads anything; every server runs with ``--model fake``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import dbbackends
import httpx

from matcher.fsutil import atomic_text

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "reliability"
ADMIN_TOKEN = "reliability-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

# A few words the fake encoder and BM25 both see, so matching has something to rank.
WORDS = ("低温 涂层 附着力 玉米 发酵 乳酸 冷链 保鲜 特种钢 冶炼 夹杂物 风电 叶片 除冰 轴承 铸造 焊接 检测 "
         "传感器 农机 大豆 育种 马铃薯 淀粉 光伏 积雪 运维 机器人 数控 机床 coating bearing sensor").split()


# -- figures -----------------------------------------------------------------------------------
def write_figures(name: str, figures: dict) -> Path:
    """Write one test's figures as JSON under test-artifacts/reliability/ (overwriting the last run;
    in a soak session the name gets a "_soak" suffix)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if dbbackends.current() != "sqlite":
        name += f"_{dbbackends.current()}"  # each database's figures, side by side
    if os.environ.get("TECHMATCH_RELIABILITY_SOAK") == "1" and not name.endswith("_soak"):
        name += "_soak"  # a soak session's figures never overwrite the CI run's
    path = ARTIFACTS / f"{name}.json"
    payload = {"test": name, "database": dbbackends.current(),
               "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               **figures}
    # whole or not at all: another test worker's summary may read the folder meanwhile
    atomic_text(path, json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=False) + "\n")
    return path


# -- a real server in a subprocess ----------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """`python -m matcher.cli.commands serve --model fake` on a database in `folder`.

    `start()` returns at once (the caller decides when to kill); `wait_ready()` waits for
    /readyz. Every start appends to the same stderr log, so a test can read all of it."""

    folder: Path
    admin_token: str = ADMIN_TOKEN
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    starts: int = 0
    kills: int = 0
    env: dict = field(default_factory=dict)  # extra TECHMATCH_* settings
    db_url: str = ""  # the test backend's database (dbbackends), made on first use

    def __post_init__(self) -> None:
        if not self.db_url:
            self.db_url = dbbackends.database_url(self.folder / "data" / "techmatch.db")

    @property
    def on_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path | str:
        """The SQLite file, or the PostgreSQL URL (what `db_connect` takes)."""
        return self.folder / "data" / "techmatch.db" if self.on_sqlite else self.db_url

    @property
    def index_dir(self) -> Path:
        return self.folder / "data" / ("techmatch-index" if self.on_sqlite else "index")

    @property
    def jobs_dir(self) -> Path:
        return self.folder / "data" / ("techmatch-conference-jobs" if self.on_sqlite else "conference-jobs")

    @property
    def log_path(self) -> Path:
        return self.folder / "server.log"

    def start(self) -> ServerProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {**os.environ, "TECHMATCH_HOME": str(self.folder / "home"), "PYTHONUNBUFFERED": "1",
               "TECHMATCH_ADMIN_TOKEN": self.admin_token, **self.env}
        cmd = [sys.executable, "-m", "matcher.cli.commands", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--db", self.db_url, "--model", "fake", "--log-level", "info"]
        if not self.on_sqlite:
            cmd += ["--data-dir", str(self.folder / "data")]
        workers = os.environ.get("TECHMATCH_TEST_SERVER_WORKERS")  # e.g. 2: the suite against worker processes
        if workers:
            cmd += ["--workers", workers]
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== start {self.starts + 1} ===\n".encode())
            log.flush()
            # its own process group: a kill takes the worker processes (`--workers N`) down too
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.starts += 1
        return self

    def _poll(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(f"server exited ({self.proc and self.proc.returncode}):\n{self.log_tail()}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{path} not 200 within {timeout}s:\n{self.log_tail()}")

    def wait_up(self, timeout: float = 60) -> None:
        """The process answers HTTP (/healthz); the index may still be loading."""
        self._poll("/healthz", timeout)

    def wait_ready(self, timeout: float = 120) -> None:
        """The index is built and at the database revision (/readyz is 200). With `--workers N`,
        in every worker: each answers /readyz for itself, and the next request may reach one that
        is still loading the index, so this also waits for N "ready" lines of this start's log."""
        deadline = time.monotonic() + timeout
        self._poll("/readyz", timeout)
        workers = int(os.environ.get("TECHMATCH_TEST_SERVER_WORKERS") or 1)
        while workers > 1 and self._ready_lines() < workers:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail()
            assert time.monotonic() < deadline, f"not every worker ready within {timeout}s:\n{self.log_tail()}"
            time.sleep(0.05)

    def _ready_lines(self) -> int:
        log = self.log_text().rpartition(f"=== start {self.starts} ===")[2]
        return sum(1 for line in log.splitlines() if line.startswith("{") and '"msg": "ready"' in line)

    def pids(self) -> list[int]:
        """The server's processes: the main one and, with `--workers N`, its workers (its group)."""
        assert self.proc is not None
        out = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[2]) == self.proc.pid:  # process group id
                out.append(int(stat.parent.name))
        return out or [self.proc.pid]

    def rss_mb(self) -> float:
        """The server's resident memory (Linux; all its processes), for limits that protect it."""
        total = 0.0
        for pid in self.pids():
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            total += sum(int(ln.split()[1]) / 1024 for ln in lines if ln.startswith("VmRSS:"))
        return total

    def kill(self) -> None:
        """SIGKILL to every process of the server (its group): no shutdown handler, no final
        save, nothing flushed."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)
        self.kills += 1

    def stop(self) -> int:
        """A graceful stop (SIGINT, as Ctrl-C): the index is saved at shutdown."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:]

    def log_records(self) -> list[dict]:
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def server_errors(self) -> list[dict]:
        """Log records of requests answered 500 or of unhandled exceptions."""
        return [r for r in self.log_records()
                if (r.get("msg") == "request" and int(r.get("status", 0)) >= 500 and r.get("status") != 503)
                or "unhandled error" in str(r.get("msg", ""))]


# -- the database and the saved index, read from outside --------------------------------------
class _PgConnection:
    """The few sqlite3.Connection calls the tests make, on psycopg: `?` placeholders,
    `execute(...).fetchone()/fetchall()/rowcount`, commit on leaving a `with` block."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1))

    def execute(self, sql: str, params: tuple = ()):
        return self._conn.execute(sql.replace("?", "%s"), params)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self._conn.commit()
        else:
            self._conn.rollback()
        self._conn.close()


def db_connect(path: Path | str):
    """A connection to a server's database from outside: an SQLite file or a PostgreSQL URL."""
    if isinstance(path, str) and path.startswith("postgresql"):
        return _PgConnection(path)
    conn = sqlite3.connect(str(path), timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def db_ids(path: Path, table: str) -> set[str]:
    assert table in ("demands", "capabilities", "partners")
    with db_connect(path) as conn:
        return {r[0] for r in conn.execute(f"SELECT id FROM {table}")}  # noqa: S608 - a fixed table name


def db_revision(path: Path) -> int:
    with db_connect(path) as conn:
        return int(conn.execute("SELECT value FROM meta WHERE key = ?", ("revision",)).fetchone()[0])


def saved_index(index_dir: Path):
    """(stamp, MatchEngine) of the index a server saved under `index_dir`."""
    from matcher.retrieval.encoders import FakeEncoder
    from matcher.retrieval.engine import MatchEngine

    stamp = json.loads((index_dir / "revision.json").read_text())
    return stamp, MatchEngine.load(index_dir / "engine", FakeEncoder())


def index_disagreements(server: ServerProcess) -> list[str]:
    """Differences between the saved index and the database (empty when they agree).

    Call after a graceful stop: the server saves its index at shutdown."""
    stamp, engine = saved_index(server.index_dir)
    problems = []
    rev = db_revision(server.db_path)
    if stamp.get("revision") != rev:
        problems.append(f"index stamp revision {stamp.get('revision')} != database revision {rev}")
    for table, have in (("demands", engine.demands), ("capabilities", engine.capabilities),
                        ("partners", engine.partners)):
        want = db_ids(server.db_path, table)
        missing, extra = want - set(have), set(have) - want
        if missing:
            problems.append(f"{table} in the database but not in the index: {sorted(missing)[:5]} ({len(missing)})")
        if extra:
            problems.append(f"{table} in the index but not in the database: {sorted(extra)[:5]} ({len(extra)})")
    return problems


# -- synthetic tables ---------------------------------------------------------------------------
def text_for(i: int, n_words: int = 8) -> str:
    """A deterministic bag of domain words for record number `i`."""
    return " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(n_words))


def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows([header, *rows])
    return buf.getvalue().encode("utf-8")


def demands_csv(ids: list[str], marker: str) -> bytes:
    """A demand table; every title carries `marker` so a test can tell which import wrote it."""
    rows = [[d, f"{marker} 需求 {d}", text_for(i) + f" 编号 {d}", "装备制造", "龙沙区", f"企业{i % 17}"]
            for i, d in enumerate(ids)]
    return csv_bytes(["需求编号", "需求名称", "需求描述", "所属行业", "所在地区", "企业名称"], rows)


def capabilities_jsonl(ids: list[str], partners: int = 20) -> bytes:
    lines = [json.dumps({"id": c, "partner_id": f"RP{i % partners:03d}", "partner_name": f"可靠性单位{i % partners}",
                         "title": text_for(i + 3, 3), "text": text_for(i + 5)}, ensure_ascii=False)
             for i, c in enumerate(ids)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def upload(client: httpx.Client, kind: str, name: str, data: bytes, **kw) -> httpx.Response:
    return client.post(f"/api/imports/{kind}", files={"file": (name, data, "application/octet-stream")},
                       headers=ADMIN, **kw)


# -- the service tests' tiny corpus and a token per role, over HTTP ------------------------------
def seed_http(client: httpx.Client, server: ServerProcess) -> dict[str, str | None]:
    """Create `service_testkit`'s corpus through the API of a running server and return a
    token for each of its ROLES (the expired one is expired directly in the database)."""
    from service_testkit import CAPABILITIES, DEMANDS, E1, E2, PARTNERS

    from service.auth.tokens import hash_token

    for path, items in (("/api/partners", PARTNERS), ("/api/capabilities", CAPABILITIES), ("/api/demands", DEMANDS)):
        for item in items:
            r = client.post(path, json=item, headers=ADMIN)
            assert r.status_code == 201, r.text
    out: dict[str, str | None] = {"anonymous": None, "forged": "tm_forged-token-that-was-never-issued",
                                  "admin": ADMIN_TOKEN}
    specs = {"staff": {"role": "staff"}, "institute": {"role": "institute", "partner_id": "P1"},
             "other_institute": {"role": "institute", "partner_id": "P2"},
             "enterprise": {"role": "enterprise", "enterprise": E1},
             "other_enterprise": {"role": "enterprise", "enterprise": E2}, "expired": {"role": "staff"}}
    for name, spec in specs.items():
        r = client.post("/api/tokens", json={"name": f"reliability {name}", **spec}, headers=ADMIN)
        assert r.status_code == 201, r.text
        out[name] = r.json()["token"]
    with db_connect(server.db_path) as conn:
        conn.execute("UPDATE tokens SET expires_at = ? WHERE token_hash = ?",
                     ("2000-01-01 00:00:00.000000", hash_token(out["expired"])))
    return out


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}
