"""Several processes on one database (issue 15): two servers, and one server with two worker
processes, always answer from an index holding every committed write, whichever process made
it; the saved index is of its own database; background jobs run once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import httpx
import pytest
from service_testkit import Server, make_settings
from sqlalchemy import select

from matcher.retrieval.encoders import FakeEncoder
from service.jobs.live import LiveIndex
from service.storage.db import init_db, landscape_builds, make_engine

pytestmark = pytest.mark.e2e


def _admin(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.tokens()['admin']}"}


def _found(http: httpx.Client, headers: dict, demand_id: str, text: str) -> bool:
    r = http.post("/api/demands/search", json={"text": text, "k": 50}, headers=headers)
    assert r.status_code == 200, r.text
    return demand_id in {hit["demand"]["id"] for hit in r.json()["results"]}


def test_two_servers_on_one_database_each_find_the_others_writes_at_once(tmp_path):
    a = Server(tmp_path / "a", "--demo")
    b = Server(tmp_path / "b", db_url=a.db_url)
    try:
        h = _admin(a)
        with httpx.Client(base_url=a.url, timeout=60) as ha, httpx.Client(base_url=b.url, timeout=60) as hb:
            for i in range(6):
                writer, reader = (ha, hb) if i % 2 == 0 else (hb, ha)
                did, words = f"XPROC{i}", f"跨进程需求 独有词{i} 风电叶片除冰 编号{i}"
                r = writer.post("/api/demands", json={"id": did, "title": words, "text": words}, headers=h)
                assert r.status_code == 201, r.text
                assert _found(reader, h, did, words), f"{did} written by one process, not found by the other"
                ready = reader.get("/readyz").json()
                assert ready["revision"] == ready["index_revision"]
            r = hb.delete("/api/demands/XPROC0", headers=h)
            assert r.status_code == 204
            assert not _found(ha, h, "XPROC0", "跨进程需求 独有词0 风电叶片除冰 编号0")
    finally:
        assert a.stop() == 0 and b.stop() == 0
    fresh = Server(tmp_path / "a", db_url=a.db_url)  # loads a's saved index, brings it forward
    try:
        with httpx.Client(base_url=fresh.url, timeout=60) as hf:
            for i in range(1, 6):
                assert _found(hf, h, f"XPROC{i}", f"跨进程需求 独有词{i} 风电叶片除冰 编号{i}")
            assert not _found(hf, h, "XPROC0", "跨进程需求 独有词0 风电叶片除冰 编号0")
    finally:
        assert fresh.stop() == 0


def test_demo_with_two_workers_starts_on_an_empty_database_and_every_worker_is_current(tmp_path):
    srv = Server(tmp_path, "--demo", "--workers", "2")
    try:
        h = _admin(srv)
        misses = []
        with httpx.Client(base_url=srv.url, timeout=60) as http:
            for i in range(24):  # new connections: the kernel spreads them over both workers
                words = f"工人进程 独有词{i} 编号W{i}"
                with httpx.Client(base_url=srv.url, timeout=60) as writer:
                    assert writer.post("/api/demands", json={"id": f"W{i}", "title": words, "text": words},
                                       headers=h).status_code == 201
                with httpx.Client(base_url=srv.url, timeout=60) as reader:
                    if not _found(reader, h, f"W{i}", words):
                        misses.append(f"W{i}")
            assert http.get("/readyz").status_code == 200
        assert misses == []
        err = srv.err.read_text()
        assert "UNIQUE" not in err and "IntegrityError" not in err and "Traceback" not in err
    finally:
        assert srv.stop() == 0


def test_a_saved_index_is_only_loaded_for_its_own_database(tmp_path):
    """Two databases at the same revision: the second must not load the first one's index."""
    folder = tmp_path / "index"
    lives = []
    for name in ("one", "two"):
        engine = make_engine(make_settings(tmp_path / name).db_url)
        init_db(engine)
        lives.append(LiveIndex(engine, FakeEncoder(), folder))
    assert lives[0].start() == "rebuilt"
    stamp = json.loads((folder / "revision.json").read_text())
    assert stamp["database"] == lives[0].database_id != 0
    assert lives[1].start() == "rebuilt"  # same folder, same revision 0, another database
    assert lives[1].database_id != lives[0].database_id
    shutil.rmtree(folder)


# -- the landscape: built once for all workers, taken over when its builder dies -----------------
def _landscape_rows(db_url: str) -> dict[int, tuple[str, int, str]]:
    """revision -> (status, builds started, builder) of the stored landscape builds."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(landscape_builds.c.revision, landscape_builds.c.status,
                                       landscape_builds.c.builds, landscape_builds.c.worker)).all()
    finally:
        engine.dispose()
    return {r.revision: (r.status, r.builds, r.worker) for r in rows}


def _landscape_now(url: str, h: dict) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=60) as http:  # a new connection: any worker may answer
        return http.get("/api/landscape", headers=h)


def _landscape_ready(url: str, h: dict, revision: int, timeout: float = 400) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = _landscape_now(url, h)
        assert r.status_code in (200, 202), r.text
        body = r.json()
        if body["status"] == "ready" and body["current_revision"] == revision:
            return body
        time.sleep(0.3)
    raise AssertionError(f"no landscape for revision {revision} in {timeout}s")


def _filed_demands(n: int, tag: str) -> bytes:
    rows = [{"id": f"{tag}{i}", "title": f"{tag} 图谱需求 {i} 风电 叶片 除冰 编号{i % 17}",
             "text": f"第{i}项 {tag} 需求：低温环境 设备 {i % 11} 号 传感器 数据 采集 方法{i % 7}"}
            for i in range(n)]
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()


def test_two_workers_build_the_landscape_once_and_a_dead_builders_build_is_taken_over(tmp_path):
    srv = Server(tmp_path, "--demo", "--workers", "2")
    try:
        h = _admin(srv)
        with httpx.Client(base_url=srv.url, timeout=120) as http:
            r = http.post("/api/imports/demands", headers=h,
                          files={"file": ("more.jsonl", _filed_demands(150, "LS"), "application/octet-stream")})
            assert r.status_code == 200, r.text
            rev = http.get("/readyz").json()["revision"]
        first = _landscape_ready(srv.url, h, rev)
        answers = [_landscape_now(srv.url, h).json() for _ in range(16)]
        assert [a for a in answers if a != first] == [], "the workers serve different landscapes"
        rows = _landscape_rows(srv.db_url)
        assert rows[rev][:2] == ("done", 1), rows

        # a change; the build of the new revision is claimed, its builder is killed mid-build
        with httpx.Client(base_url=srv.url, timeout=60) as http:
            r = http.post("/api/demands", headers=h, json={"id": "LSNEW", "title": "图谱 新需求 光伏 清洗",
                                                            "text": "图谱 新需求 光伏 板 清洗 机器人"})
            assert r.status_code == 201, r.text
            rev2 = http.get("/readyz").json()["revision"]
        stale = _landscape_now(srv.url, h)
        assert stale.status_code == 200 and stale.json()["stale"] is True  # the previous build meanwhile
        status, builds, builder = _landscape_rows(srv.db_url)[rev2]
        assert (status, builds) == ("building", 1), (status, builds)
        pid = int(builder.split(":")[1])
        assert pid != srv.proc.pid
        os.kill(pid, signal.SIGKILL)
        second = _landscape_ready(srv.url, h, rev2)
        status, builds, taker = _landscape_rows(srv.db_url)[rev2]
        assert (status, builds) == ("done", 2) and taker != builder
        assert second["landscape"]["demands"] == first["landscape"]["demands"] + 1
        assert srv.err.read_text().count("landscape built") == 2  # one per revision; the killed one never finished
        assert [_landscape_now(srv.url, h).json() for _ in range(8)] == [second] * 8
        assert rev not in _landscape_rows(srv.db_url)  # the older build is dropped once a newer is stored
    finally:
        srv.stop()
