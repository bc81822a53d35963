"""The landscape API and page (built in the background, cached per revision), and staff
decisions on near-duplicate demands (merge, link) stored in the database."""

from __future__ import annotations

import io
import threading

import pytest
from openpyxl import load_workbook
from service_testkit import ADMIN_TOKEN, E2

from service.jobs.landscape import LandscapeCache

# a single cluster (tiny data) gives the engine's silhouette chart an empty legend
pytestmark = pytest.mark.filterwarnings("ignore:No artists with labels:UserWarning")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REFILED = {"id": "D5", "title": "货车涂层低温剥落", "text": "铁路货车水性涂层冬季低温下剥落，需要提升附着力。",
           "industry": "轨道交通装备", "region": "铁锋区", "enterprise": E2, "date": "2025-05-01"}


def built(world):
    state = world.ctx.landscape.wait(120)
    assert state.status == "ready", state.result.error if state.result else state
    return state


def test_landscape_summary_is_built_once_per_revision(world):
    staff = world.h("staff")
    first = world.client.get("/api/landscape", headers=staff)
    assert first.status_code in (200, 202) and first.json()["status"] in ("computing", "ready")
    built(world)
    r = world.client.get("/api/landscape", headers=staff)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready" and body["stale"] is False
    land = body["landscape"]
    assert land["demands"] == 4 and land["model"] == "fake" and land["revision"] == body["current_revision"]
    assert sum(c["size"] for c in land["clusters"]) == 4
    assert all(c["name"] and c["cluster"].startswith("C") for c in land["clusters"])
    cov = land["coverage"]
    assert cov["score_kind"] == "lexical" and 0 <= cov["covered"] <= 4 and cov["threshold"] > 0
    assert {"weak_clusters", "weakest_clusters", "duplicate_groups", "findings"} <= land.keys()
    builds = world.ctx.landscape.builds
    for _ in range(3):
        assert world.client.get("/api/landscape", headers=staff).status_code == 200
    assert world.ctx.landscape.builds == builds  # cached: no rebuild without a change

    assert world.client.post("/api/demands", json=REFILED, headers=ADMIN).status_code == 201
    r = world.client.get("/api/landscape", headers=staff)  # the old result while the new one is built
    assert r.status_code == 200 and r.json()["stale"] is True and r.json()["landscape"]["demands"] == 4
    built(world)
    assert world.client.get("/api/landscape", headers=staff).json()["landscape"]["demands"] == 5
    assert world.ctx.landscape.builds == builds + 1


def test_landscape_workbook(world):
    assert world.client.get("/api/landscape.xlsx", headers=world.h("staff")).status_code in (200, 503)
    built(world)
    r = world.client.get("/api/landscape.xlsx", headers=world.h("admin"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(r.content))
    assert {"clusters", "demands", "coverage", "weak_clusters", "duplicates"} <= set(book.sheetnames)
    ids = [row[0].value for row in book["demands"].iter_rows(min_row=2)]
    assert sorted(ids) == ["D1", "D2", "D3", "D4"]
    assert f"landscape-r{world.ctx.live.revision}.xlsx" in r.headers["content-disposition"]


def test_before_the_first_build_the_api_says_computing_and_the_page_refreshes(world):
    gate = threading.Event()
    cache = world.ctx.landscape

    def slow_build(engine):
        gate.wait(30)
        from service.jobs.landscape import default_build

        return default_build(engine)

    world.ctx.landscape = LandscapeCache(world.ctx.live, build=slow_build)
    try:
        r = world.client.get("/api/landscape", headers=world.h("staff"))
        assert r.status_code == 202 and r.json() == {"status": "computing", "current_revision": world.ctx.live.revision,
                                                     "stale": False, "landscape": None}
        assert r.headers["retry-after"] == "3"
        r = world.client.get("/api/landscape.xlsx", headers=world.h("staff"))
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
        page = world.client.get("/landscape", headers=world.cookie("staff"))
        assert page.status_code == 200 and 'data-testid="landscape-computing"' in page.text
        assert 'data-poll="2000"' in page.text and '<meta http-equiv="refresh"' in page.text
        assert world.client.get("/landscape/report", headers=world.cookie("staff")).status_code == 503
    finally:
        gate.set()
        world.ctx.landscape.stop()
        world.ctx.landscape = cache
    page = world.client.get("/landscape", headers=world.cookie("staff"))
    assert page.status_code == 200


def test_landscape_page_embeds_the_report(world):
    built(world)
    staff = world.cookie("staff")
    page = world.client.get("/landscape", headers=staff)
    assert page.status_code == 200
    html = page.text
    assert 'data-testid="landscape-report"' in html and "主要发现 Top findings" in html
    assert "data:image/png;base64," in html and "<style" not in html.split("<main>")[1]  # page CSP holds
    assert 'data-testid="landscape-no-dups"' in html and "data-poll" not in html
    assert "技术需求图谱" in html and 'href="/landscape.xlsx"' in html
    en = world.client.get("/landscape?lang=en", headers=staff)
    assert "Near-duplicates: merge or link" in en.text
    report = world.client.get("/landscape/report", headers=staff)
    assert report.status_code == 200 and report.text.startswith("<!doctype html>")
    assert report.headers["content-security-policy"].startswith("default-src 'none'; style-src 'unsafe-inline'")
    xlsx = world.client.get("/landscape.xlsx", headers=staff)
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


def test_confidential_demands_are_redacted_in_the_report(world):
    built(world)
    html = world.client.get("/landscape/report", headers=world.cookie("staff")).text
    assert "保密：高强度特种钢冶炼夹杂物控制" not in html  # D2 is confidential


def test_near_duplicates_can_be_linked_merged_and_the_decisions_survive_a_restart(make_world):
    world = make_world()
    staff = world.h("staff")
    assert world.client.post("/api/demands", json=REFILED, headers=staff).status_code == 201
    original = world.client.get("/api/demands/D5", headers=staff).json()
    built(world)
    groups = world.client.get("/api/landscape", headers=staff).json()["landscape"]["duplicate_groups"]
    group = next(g for g in groups if {"D1", "D5"} <= set(g["demand_ids"]))
    assert group["label"] == "duplicate" and group["decision"] == "open"
    page = world.client.get("/landscape", headers=world.cookie("staff")).text
    assert 'data-decision="open"' in page and 'data-testid="dup-merge"' in page

    r = world.client.post("/api/demands/links", json={"action": "link", "demand_ids": ["D1", "D5"], "note": "同一问题"},
                          headers=staff)
    assert r.status_code == 200, r.text
    assert r.json()["links"][0] | {"created": ""} == {"a": "D1", "b": "D5", "note": "同一问题", "created": ""}
    assert r.json()["version"] == 1 and r.json()["updated_by"] == "test staff"
    groups = world.client.get("/api/landscape", headers=staff).json()["landscape"]["duplicate_groups"]
    assert next(g for g in groups if "D5" in g["demand_ids"])["decision"] in ("linked", "partly")

    r = world.client.post("/api/demands/links", json={"action": "merge", "demand_ids": ["D5", "D1"], "primary": "D1"},
                          headers=staff)
    assert r.status_code == 200
    merge = r.json()["merges"][0]
    assert merge["id"] == "merge:D1" and merge["member_ids"] == ["D5", "D1"] and merge["primary_id"] == "D1"
    detail = world.client.get("/api/demands/D5", headers=staff).json()
    assert detail["links"] == {"merge": merge, "linked": ["D1"]}
    assert {k: detail[k] for k in original if k != "links"} == {k: v for k, v in original.items() if k != "links"}
    assert "links" not in world.client.get("/api/demands/D1", headers=world.h("enterprise")).json()
    assert "links" not in world.client.get("/api/demands/D1", headers=world.h("institute")).json()
    assert world.client.get("/api/demands", params={"q": "货车涂层"}, headers=staff).json()["total"] == 2

    again = world.client.post("/api/demands/links", json={"action": "merge", "demand_ids": ["D1", "D3"]},
                              headers=staff)
    assert again.status_code == 409 and "already in merge" in again.json()["error"]["message"]

    world.client.__exit__(None, None, None)
    restarted = make_world(seeded=False)
    detail = restarted.client.get("/api/demands/D1", headers=ADMIN).json()
    assert detail["links"]["merge"]["member_ids"] == ["D5", "D1"] and detail["links"]["linked"] == ["D5"]
    r = restarted.client.post("/api/demands/links", json={"action": "unmerge", "demand_ids": ["D5"]}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["merges"] == [] and r.json()["version"] == 3
    r = restarted.client.post("/api/demands/links", json={"action": "unlink", "demand_ids": ["D1", "D5"]},
                              headers=ADMIN)
    assert r.status_code == 200 and r.json()["links"] == []


def test_bad_link_requests(world):
    staff = world.h("staff")

    def post(body):
        r = world.client.post("/api/demands/links", json=body, headers=staff)
        assert set(r.json().get("error", {"status": 0, "code": 0, "message": 0, "details": 0})) == {
            "status", "code", "message", "details"}
        return r.status_code

    assert post({"action": "merge", "demand_ids": ["D1"]}) == 422
    assert post({"action": "link", "demand_ids": ["D1", "D1"]}) == 422
    assert post({"action": "merge", "demand_ids": ["D1", "NOPE"]}) == 404
    assert post({"action": "merge", "demand_ids": ["D1", "D3"], "primary": "NOPE"}) == 404
    assert post({"action": "unlink", "demand_ids": ["D1", "D3"]}) == 404
    assert post({"action": "unmerge", "merge_id": "merge:D9"}) == 404
    assert post({"action": "unmerge"}) == 422  # neither merge_id nor demand_ids: the schema says so
    assert post({"action": "split", "demand_ids": ["D1", "D3"]}) == 422
    assert post({"action": "link", "demand_ids": ["D1", "D3"], "extra": 1}) == 422
    r = world.client.post("/api/demands/links", json={"action": "link", "demand_ids": ["D1", "D3", "D4"]},
                          headers=staff)
    assert r.status_code == 200 and len(r.json()["links"]) == 3  # every pair


def test_a_primary_outside_demand_ids_joins_the_merge(world):
    """`primary` is the demand the others are merged into: listed among `demand_ids` or not, it is
    a member (it used to be a 422, a rule between two values that the schema could not state)."""
    staff = world.h("staff")

    def post(body):
        return world.client.post("/api/demands/links", json=body, headers=staff)

    r = post({"action": "merge", "demand_ids": ["D3", "D4"], "primary": "D1", "note": "并入 D1"})
    assert r.status_code == 200, r.text
    merge = next(m for m in r.json()["merges"] if m["id"] == "merge:D1")
    assert merge["member_ids"] == ["D1", "D3", "D4"] and merge["primary_id"] == "D1"
    assert world.client.get("/api/demands/D4", headers=staff).json()["links"]["merge"] == merge
    assert post({"action": "unmerge", "merge_id": "merge:D1"}).status_code == 200
    # listed: the order given is kept, as before
    r = post({"action": "merge", "demand_ids": ["D3", "D1"], "primary": "D1"})
    assert next(m for m in r.json()["merges"] if m["id"] == "merge:D1")["member_ids"] == ["D3", "D1"]
    assert post({"action": "unmerge", "demand_ids": ["D3"]}).status_code == 200
    # an unknown primary is an unknown id: 404, nothing stored
    before = post({"action": "link", "demand_ids": ["D3", "D4"]}).json()
    r = post({"action": "merge", "demand_ids": ["D3", "D4"], "primary": "NOPE"})
    assert r.status_code == 404 and "NOPE" in r.json()["error"]["message"]
    assert world.client.get("/api/demands/D3", headers=staff).json()["links"]["merge"] is None
    after = post({"action": "unlink", "demand_ids": ["D3", "D4"]}).json()
    assert after["version"] == before["version"] + 1


def test_links_from_the_page(world):
    staff = world.cookie("staff")
    built(world)
    r = world.client.post("/landscape/links", data={"action": "merge", "ids": "D1,D3", "primary": "D3", "note": "同类"},
                          headers=staff, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/landscape?saved=1#decisions"
    page = world.client.get("/landscape?saved=1", headers=staff).text
    assert 'data-testid="landscape-saved"' in page and 'data-testid="landscape-merges"' in page and "同类" in page
    r = world.client.post("/landscape/links", data={"action": "merge", "ids": "D1,D4"}, headers=staff)
    assert r.status_code == 409 and 'data-testid="landscape-error"' in r.text
    r = world.client.post("/landscape/links", data={"action": "unmerge", "merge_id": "merge:D3"}, headers=staff,
                          follow_redirects=False)
    assert r.status_code == 303
    r = world.client.post("/landscape/links", data={"action": "nonsense"}, headers=staff)
    assert r.status_code == 422
    r = world.client.post("/landscape/links", data={"action": "unlink", "ids": "D1,D3"}, headers=staff)
    assert r.status_code == 404
    assert world.client.get("/landscape", headers=world.cookie("enterprise")).status_code == 403


def test_landscape_lists_exactly_the_live_demands_after_edits_deletes_reimports_and_a_restart(make_world):
    """Regression (issue 13.1): every edit or re-import added the demand to the landscape again
    (dead rows of the index were read), with self-duplicates, and it survived a restart."""
    import json

    world = make_world()
    staff = world.h("staff")

    def live_ids(w):
        return sorted(d["id"] for d in w.client.get("/api/demands", params={"limit": 100},
                                                    headers=ADMIN).json()["items"])

    def check(w):
        state = built(w)
        land = w.client.get("/api/landscape", headers=staff).json()["landscape"]
        ids = live_ids(w)
        assert land["demands"] == len(ids) == sum(c["size"] for c in land["clusters"])
        assert sorted(d.id for d in state.result.land.demands) == ids
        assert all(len(set(g["demand_ids"])) == len(g["demand_ids"]) for g in land["duplicate_groups"])
        book = load_workbook(io.BytesIO(w.client.get("/api/landscape.xlsx", headers=staff).content))
        assert sorted(row[0].value for row in book["demands"].iter_rows(min_row=2)) == ids

    for title in ("货车涂层低温剥落问题", "货车涂层冬季剥落"):
        assert world.client.patch("/api/demands/D1", json={"title": title}, headers=staff).status_code == 200
    rows = [{"id": f"D{i}", "title": f"重新导入的需求 {i}", "text": "铁路货车涂层低温附着力。"} for i in (1, 3, 6)]
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    for _ in range(2):
        r = world.client.post("/api/imports/demands", files={"file": ("d.jsonl", body)}, headers=staff)
        assert r.status_code == 200, r.text
    assert world.client.delete("/api/demands/D2", headers=ADMIN).status_code in (200, 204)
    assert live_ids(world) == ["D1", "D3", "D4", "D6"]
    check(world)
    world.client.__exit__(None, None, None)
    restarted = make_world(seeded=False)
    check(restarted)
    assert restarted.client.patch("/api/demands/D6", json={"title": "再改一次"}, headers=ADMIN).status_code == 200
    check(restarted)


def test_a_stored_landscape_may_name_nothing_but_its_own_types():
    """The stored build is read back with an unpickler that refuses any other callable."""
    import os
    import pickle
    import zlib

    from service.jobs.landscape import _unpack

    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    with pytest.raises(pickle.UnpicklingError, match=r"may not refer to (posix|nt|os)\.getcwd"):
        _unpack(zlib.compress(pickle.dumps((Evil(), "x"))))
