"""Several processes on one database (issue 15): two servers, and one server with two worker
processes, always answer from an index holding every committed write, whichever process made
it; the saved index is of its own database; background jobs run once."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest
from service_testkit import Server, make_settings

from matcher.retrieval.encoders import FakeEncoder
from service.jobs.live import LiveIndex
from service.storage.db import init_db, make_engine

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
