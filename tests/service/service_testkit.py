"""Shared by the service tests: a tiny seeded corpus, one token for every role, and `World`
(a running test app). The fixtures in conftest.py build on it."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dbbackends
import httpx
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.auth import tokens as auth
from service.settings import Settings
from service.storage.db import tokens

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "admin-secret-for-tests"
E1 = "齐齐哈尔朔风车辆配件有限公司"
E2 = "克东县北极星乳业有限公司"

PARTNERS = [
    {"id": "P1", "name": "寒地材料研究所", "type": "institute", "region": "富拉尔基区", "country": "CN"},
    {"id": "P2", "name": "北疆农业大学 食品学院", "type": "university", "region": "龙沙区", "country": "CN"},
]
CAPABILITIES = [
    {"id": "C1", "partner_id": "P1", "title": "铁路货车低温防腐涂层",
     "text": "水性涂层在零下四十度的附着力提升，盐雾试验一千小时。", "industries": ["轨道交通装备"]},
    {"id": "C2", "partner_id": "P1", "title": "寒区材料低温性能测试",
     "text": "低温冲击、冷热循环和低温疲劳试验。", "industries": ["寒地技术", "新材料"]},
    {"id": "C3", "partner_id": "P2", "title": "玉米深加工与生物发酵",
     "text": "玉米淀粉发酵制备乳酸和氨基酸。", "industries": ["绿色食品与粮食加工"]},
    {"id": "C4", "partner_id": "P2", "title": "乳制品冷链保鲜",
     "text": "低温乳品运输保鲜与品质检测。", "industries": ["乳业"]},
]
DEMANDS = [
    {"id": "D1", "title": "货车涂层低温剥落", "text": "铁路货车水性涂层冬季低温下剥落，需要提升附着力。",
     "industry": "轨道交通装备", "region": "铁锋区", "enterprise": E1, "contact": "刘建国 0452-0000101",
     "date": "2025-03-12", "language": "zh"},
    {"id": "D2", "title": "特种钢冶炼工艺改进", "text": "保密：高强度特种钢冶炼夹杂物控制。",
     "industry": "冶金与特钢", "region": "富拉尔基区", "enterprise": E1, "contact": "王工 13800000000",
     "confidential": True, "date": "2025-04-01", "language": "zh"},
    {"id": "D3", "title": "乳品冷链保鲜", "text": "乳品冷链运输过程中保鲜期短，需要低温保鲜技术。",
     "industry": "乳业", "region": "克东县", "enterprise": E2, "contact": "赵经理 0452-0000303",
     "date": "2025-02-20", "language": "zh"},
    {"id": "D4", "title": "玉米发酵新工艺", "text": "玉米发酵生产乳酸的转化率低。",
     "industry": "绿色食品与粮食加工", "region": "龙江县", "enterprise": E1, "contact": "李工 0452-0000404",
     "date": "2025-01-05", "language": "zh", "published": False},
]

ROLES = ("anonymous", "forged", "expired", "admin", "staff", "institute", "other_institute", "enterprise",
         "other_enterprise")


@dataclass
class World:
    """A running test app with its client, settings and a token per role."""

    client: TestClient
    settings: Settings
    tokens: dict[str, str | None] = field(default_factory=dict)

    @property
    def app(self):
        return self.client.app

    @property
    def ctx(self):
        return self.client.app.state.ctx

    def h(self, role: str) -> dict[str, str]:
        """Headers authenticating as `role` (none for anonymous)."""
        tok = self.tokens[role]
        return {"Authorization": f"Bearer {tok}"} if tok else {}

    def cookie(self, role: str) -> dict[str, str]:
        tok = self.tokens[role]
        return {"Cookie": f"techmatch_token={tok}"} if tok else {}


def start(client: TestClient, timeout: float = 120) -> TestClient:
    """Enter the client (runs start-up) and wait until the index is built in the background."""
    client.__enter__()
    live = client.app.state.ctx.live
    assert live.wait_ready(timeout), f"index not ready: {live.error}"
    return client


@contextmanager
def running(app, timeout: float = 120) -> Iterator[TestClient]:
    """`with running(create_app(...)) as client:` a started client with its index built."""
    with TestClient(app) as client:
        live = client.app.state.ctx.live
        assert live.wait_ready(timeout), f"index not ready: {live.error}"
        yield client


def make_settings(tmp_path: Path, **overrides) -> Settings:
    values = {"db_url": dbbackends.database_url(tmp_path / "db" / "techmatch.db"), "model": "fake",
              "admin_token": ADMIN_TOKEN, **overrides}
    if dbbackends.current() != "sqlite":
        values.setdefault("data_dir", tmp_path / "db")  # the index beside the test's files
    return Settings(**values)


def seed(client: TestClient) -> dict[str, str | None]:
    """Create the tiny corpus through the API and return a token for every role."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for p in PARTNERS:
        assert client.post("/api/partners", json=p, headers=admin).status_code == 201
    for c in CAPABILITIES:
        assert client.post("/api/capabilities", json=c, headers=admin).status_code == 201
    for d in DEMANDS:
        assert client.post("/api/demands", json=d, headers=admin).status_code == 201, d
    out: dict[str, str | None] = {"anonymous": None, "forged": "tm_forged-token-that-was-never-issued",
                                  "admin": ADMIN_TOKEN}
    specs = {"staff": {"role": "staff"}, "institute": {"role": "institute", "partner_id": "P1"},
             "other_institute": {"role": "institute", "partner_id": "P2"},
             "enterprise": {"role": "enterprise", "enterprise": E1},
             "other_enterprise": {"role": "enterprise", "enterprise": E2},
             "expired": {"role": "staff"}}
    for name, spec in specs.items():
        r = client.post("/api/tokens", json={"name": f"test {name}", **spec}, headers=admin)
        assert r.status_code == 201, r.text
        out[name] = r.json()["token"]
    ctx = client.app.state.ctx
    with ctx.db.begin() as conn:
        conn.execute(update(tokens).where(tokens.c.token_hash == auth.hash_token(out["expired"]))
                     .values(expires_at=dt.datetime(2000, 1, 1)))
    return out


# -- a real server in a subprocess (end-to-end and browser tests) ---------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running `techmatch serve` with its base URL, demo tokens and log files."""

    def __init__(self, folder: Path, *extra: str, db_url: str | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out, self.err = folder / "stdout.log", folder / "stderr.log"
        env = {**os.environ, "TECHMATCH_HOME": str(folder / "home"), "PYTHONUNBUFFERED": "1"}
        env.pop("TECHMATCH_ADMIN_TOKEN", None)
        self.db_url = db_url or dbbackends.database_url(folder / "data" / "techmatch.db")
        self.index_dir = folder / "data" / ("techmatch-index" if self.db_url.startswith("sqlite") else "index")
        cmd = [sys.executable, "-m", "matcher.cli.commands", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--db", self.db_url, "--data-dir", str(folder / "data"), "--model", "fake", *extra]
        if self.db_url.startswith("sqlite"):
            cmd[cmd.index("--data-dir"):cmd.index("--data-dir") + 2] = []
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=err)
        self.wait_ready()

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.err.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise AssertionError(f"server not ready in {timeout}s: {self.err.read_text(errors='replace')[-3000:]}")

    def tokens(self) -> dict[str, str]:
        return dict(re.findall(r"^\s+(admin|staff|institute|enterprise)\s+(\S+)", self.out.read_text(), re.M))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode
