"""End to end: `techmatch serve --demo --model fake` in a subprocess, spoken to over HTTP."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from service_testkit import Server

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path, "--demo")
    yield srv
    srv.stop()


def test_demo_server_over_http(server):
    tokens = server.tokens()
    assert set(tokens) == {"admin", "staff", "institute", "enterprise"}
    staff = {"Authorization": f"Bearer {tokens['staff']}"}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz").json()
        assert ready["demands"] > 0 and ready["capabilities"] > 0 and ready["model"] == "fake"
        first = http.get("/api/demands", params={"limit": 1}, headers=staff).json()["items"][0]
        r = http.get(f"/api/demands/{first['id']}/matches", params={"k": 3}, headers=staff)
        assert r.status_code == 200, r.text
        matches = r.json()
        assert len(matches["results"]) == 3 and matches["results"][0]["evidence"]

        # a new partner and capability are matchable at once; deleted, never again
        http.post("/api/partners", json={"id": "PNEW", "name": "风电除冰团队", "type": "team"}, headers=staff)
        made = http.post("/api/capabilities", json={"id": "CNEW", "partner_id": "PNEW",
                                                    "title": "风电叶片覆冰除冰涂层",
                                                    "text": "风电叶片 覆冰 除冰 超疏水涂层"}, headers=staff)
        assert made.status_code == 201
        top = http.post("/api/match", json={"text": "风电叶片覆冰除冰", "k": 5}, headers=staff).json()
        assert top["results"][0]["partner_id"] == "PNEW"
        assert http.delete("/api/capabilities/CNEW", headers=staff).status_code == 204
        again = http.post("/api/match", json={"text": "风电叶片覆冰除冰", "k": 20}, headers=staff).json()
        assert "PNEW" not in [m["partner_id"] for m in again["results"]]

        pair = {"demand_id": first["id"], "partner_id": matches["results"][0]["partner_id"]}
        fb = http.post("/api/feedback", json={**pair, "status": "contacted"}, headers=staff)
        assert fb.status_code == 201 and fb.json()["who"] == "demo staff"
        assert "contacted" in http.get("/api/feedback/export", headers=staff).text

        institute = {"Authorization": f"Bearer {tokens['institute']}"}
        seen = http.get("/api/demands", params={"limit": 500}, headers=institute).json()
        assert seen["total"] < ready["demands"]  # confidential ones hidden
        assert all(not d["confidential"] and "contact" not in d for d in seen["items"])
        assert http.get("/api/tokens", headers=staff).status_code == 403
        assert http.get("/api/nothing").json()["error"]["code"] == "not_found"
        page = http.get("/login")
        assert page.status_code == 200 and "/static/style.css" in page.text
        assert http.get("/static/style.css").status_code == 200
    assert server.stop() == 0
    lines = [json.loads(x) for x in server.err.read_text().splitlines() if x.startswith("{")]
    requests = [x for x in lines if x.get("msg") == "request"]
    assert requests and {"method", "path", "status", "ms", "role"} <= requests[-1].keys()
    assert not any(t in server.err.read_text() for t in tokens.values())
    assert (server.index_dir / "revision.json").exists()  # saved at shutdown


def test_restart_reuses_the_saved_index(tmp_path):
    first = Server(tmp_path, "--demo")
    tokens = first.tokens()
    assert first.stop() == 0
    second = Server(tmp_path, db_url=first.db_url)  # same database, no --demo: the data and tokens persist
    try:
        # the "ready" line follows the moment /readyz turns 200 by a hair: wait for it
        deadline = time.monotonic() + 10
        while '"msg": "ready"' not in second.err.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert '"index": "loaded"' in second.err.read_text()
        r = httpx.get(second.url + "/api/demands", headers={"Authorization": f"Bearer {tokens['staff']}"})
        assert r.status_code == 200 and r.json()["total"] > 0
    finally:
        assert second.stop() == 0
