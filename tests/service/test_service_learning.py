"""Issue 16 in the service: impressions for every list served, the pipeline of a pair (one at a
time, in bulk, from a spreadsheet), the funnel report, and the learned ranker's train / rollback."""

from __future__ import annotations

import datetime as dt
import io
import time

import numpy as np
import openpyxl
from sqlalchemy import insert, select

from matcher.learning.features import FEATURES
from matcher.learning.registry import ModelRegistry
from matcher.learning.train import Config
from service.jobs import learning
from service.storage import impressions as imp
from service.storage.db import impression_lists, impressions


def _lists(world):
    world.ctx.impressions.flush()
    with world.ctx.db.connect() as conn:
        order = impression_lists.c.served_at
        heads = [dict(r._mapping) for r in conn.execute(select(impression_lists).order_by(order))]
        rows = [dict(r._mapping) for r in conn.execute(select(impressions).order_by(impressions.c.id))]
    return heads, rows


def test_every_served_list_is_recorded_as_impressions(world):
    c = world.client
    r = c.get("/api/demands/D1/matches?k=2", headers=world.h("staff"))
    assert r.status_code == 200
    served = r.json()["results"]
    c.post("/api/match", json={"text": "玉米发酵"}, headers=world.h("institute"))
    assert c.get("/demands/D3", headers=world.cookie("staff")).status_code == 200
    heads, rows = _lists(world)
    assert [h["source"] for h in heads] == ["api", "text", "page"]
    api = heads[0]
    assert api["who"] == "test staff" and api["demand_id"] == "D1" and api["k"] == 2
    assert api["model_version"] == "default" and "fake" in api["engine"] and api["revision"] > 0
    assert heads[1]["demand_id"] is None and len(heads[1]["query_hash"]) == 64  # free text: hashed, not kept
    mine = [r for r in rows if r["list_id"] == api["id"]]
    assert [(r["rank"], r["partner_id"]) for r in mine] == [(m["rank"], m["partner_id"]) for m in served]
    assert mine[0]["components"]["dense"] == served[0]["components"]["dense"]
    assert mine[0]["score"] == served[0]["score"]


def test_conference_runs_are_recorded_as_impressions(world):
    h = world.h("staff")
    # the fake encoder's fits mean nothing: no quality floor
    body = {"k": 2, "slots": "09:00-10:00", "tables": 2, "schedule_seconds": 2, "min_score": 0}
    r = world.client.post("/api/conference/jobs", json=body, headers=h)
    assert r.status_code == 202, r.text
    job, demand_ids = r.json()["id"], r.json()["demand_ids"]
    deadline = time.monotonic() + 60
    while (st := world.client.get(f"/api/conference/jobs/{job}", headers=h).json()["status"]) not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert st == "done"
    heads, _ = _lists(world)
    conf = [x for x in heads if x["source"] == "conference"]
    assert sorted(x["demand_id"] for x in conf) == sorted(demand_ids) and all(x["who"] == "test staff" for x in conf)
    # ... and the run's assigned pairs can be marked in bulk
    r = world.client.post(f"/api/feedback/from-conference/{job}", json={"status": "suggested"}, headers=h)
    assert r.status_code == 201 and r.json()["recorded"] >= 1
    listed = world.client.get("/api/feedback?status=suggested", headers=h).json()
    assert listed["total"] == r.json()["recorded"] and listed["items"][0]["source"] == "conference"


def test_impressions_are_pruned_by_retention(world):
    log = world.ctx.impressions
    world.client.get("/api/demands/D1/matches", headers=world.h("staff"))
    log.flush()
    old = dt.datetime(2000, 1, 1)
    with world.ctx.db.begin() as conn:
        conn.execute(insert(impression_lists).values(id="old", served_at=old, source="api", who="x", k=1))
        conn.execute(insert(impressions).values(list_id="old", rank=1, partner_id="P1", score=1.0, components={}))
    with world.ctx.db.connect() as conn:
        before = imp.count(conn)
    assert log.prune() == 1
    with world.ctx.db.connect() as conn:
        assert imp.count(conn) == (before[0] - 1, before[1] - 1)
    log.retention_days = 0
    assert log.prune() == 0


def test_pipeline_statuses_reason_codes_and_amounts(world):
    c, h = world.client, world.h("staff")
    post = lambda **b: c.post("/api/feedback", json={"demand_id": "D1", "partner_id": "P1", **b}, headers=h)  # noqa: E731
    r = post(status="agreed", amount=120000)
    assert r.status_code == 201 and r.json()["amount"] == 120000 and r.json()["source"] == "api"
    assert post(status="declined_partner").status_code == 422  # a decline needs a reason code
    r = post(status="declined_enterprise", reason_code="too_expensive")
    assert r.status_code == 201 and r.json()["reason_code"] == "too_expensive"
    assert post(status="declined_partner", reason_code="other").status_code == 422  # other needs text
    assert post(status="contacted", amount=5).status_code == 422  # amounts belong to agreements
    assert post(status="agreed", amount=-1).status_code == 422
    assert post(status="contacted", reason_code="bored").status_code == 422
    # the page form records the same
    r = c.post("/demands/D1/feedback", data={"partner_id": "P2", "status": "agreed", "amount": "50,000"},
               headers={**world.cookie("staff"), "Origin": "http://testserver"}, follow_redirects=False)
    assert r.status_code == 303
    last = c.get("/api/feedback?demand_id=D1&partner_id=P2", headers=h).json()["items"][0]
    assert last["amount"] == 50000 and last["source"] == "page" and last["who"] == "test staff"
    history = c.get("/api/feedback?demand_id=D1&partner_id=P1", headers=h).json()
    assert [i["status"] for i in history["items"]] == ["declined_enterprise", "agreed"]  # every change kept


def test_bulk_and_spreadsheet_import_are_all_or_nothing(world):
    c, h = world.client, world.h("staff")
    bad = {"items": [{"demand_id": "D1", "partner_id": "P1", "status": "contacted"},
                     {"demand_id": "D1", "partner_id": "P404", "status": "contacted"}]}
    r = c.post("/api/feedback/bulk", json=bad, headers=h)
    assert r.status_code == 409 and "P404" in r.text  # a partner the database lacks: a conflict
    assert c.get("/api/feedback", headers=h).json()["total"] == 0
    ok = {"items": bad["items"][:1] + [{"demand_id": "D3", "partner_id": "P2", "status": "meeting_held"}]}
    assert c.post("/api/feedback/bulk", json=ok, headers=h).json() == {"recorded": 2}
    sheet = "需求编号,合作方编号,状态,原因代码,金额,说明\nD3,P2,达成合作,,80000,签约\nD1,P1,合作方拒绝,无力承接,,\n"
    files = {"file": ("进展.csv", sheet.encode("utf-8"), "text/csv")}
    r = c.post("/api/feedback/import", files=files, headers=h)
    assert r.status_code == 201 and r.json() == {"recorded": 2}
    items = c.get("/api/feedback?partner_id=P2", headers=h).json()["items"]
    assert items[0]["status"] == "agreed" and items[0]["amount"] == 80000 and items[0]["source"] == "import"
    broken = "demand_id,partner_id,status,amount\nD1,P1,agreed,lots\nD1,P1,declined_partner,\n"
    r = c.post("/api/feedback/import", files={"file": ("p.csv", broken.encode(), "text/csv")}, headers=h)
    assert r.status_code == 422
    details = r.json()["error"]["details"]
    assert {d["row"] for d in details} == {2, 3} and all(d["file"] == "p.csv" for d in details)
    unknown = "demand_id,partner_id,status\nD1,P1,contacted\nD9,P1,contacted\n"
    r = c.post("/api/feedback/import", files={"file": ("q.csv", unknown.encode(), "text/csv")}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["row"] == 3  # the sheet's row number
    assert c.get("/api/feedback", headers=h).json()["total"] == 4


def test_funnel_counts_each_pair_at_its_furthest_stage(world):
    c, h = world.client, world.h("staff")
    items = [("D1", "P1", "suggested"), ("D1", "P1", "contacted"), ("D1", "P1", "meeting_held"),
             ("D1", "P2", "suggested"), ("D3", "P2", "contacted"), ("D3", "P2", "meeting_held")]
    body = {"items": [{"demand_id": d, "partner_id": p, "status": s} for d, p, s in items]
            + [{"demand_id": "D3", "partner_id": "P2", "status": "agreed", "amount": 1000.5}]}
    assert c.post("/api/feedback/bulk", json=body, headers=h).status_code == 201
    f = c.get("/api/funnel?by=industry", headers=h).json()
    total = f["total"]
    assert (total["suggestions"], total["contacts"], total["meetings"], total["agreements"]) == (3, 2, 2, 1)
    assert total["amount"] == 1000.5 and total["overall_rate"] == 1 / 3 and total["meeting_rate"] == 1.0
    rail = next(r for r in f["rows"] if r["group"] == "轨道交通装备")
    assert (rail["suggestions"], rail["contacts"], rail["agreements"]) == (2, 1, 0)
    assert c.get("/api/funnel?by=region", headers=h).json()["rows"][0]["group"] in ("铁锋区", "克东县")
    assert c.get("/api/funnel?by=weather", headers=h).status_code == 422
    assert c.get("/api/funnel", headers=world.h("institute")).status_code == 403
    wb = openpyxl.load_workbook(io.BytesIO(c.get("/api/funnel.xlsx", headers=h).content))
    assert wb.sheetnames == ["industry", "region", "partner", "month"]
    page = c.get("/funnel?by=partner", headers=world.cookie("staff"))
    assert page.status_code == 200 and "寒地材料研究所" in page.text and 'data-testid="ranker"' in page.text


def test_training_without_outcomes_deploys_nothing(world):
    c, h = world.client, world.h("staff")
    r = c.post("/api/learning/train", headers=h)
    assert r.status_code == 200 and r.json()["deployed"] is False and r.json()["version"] is None
    assert c.get("/api/learning/models", headers=h).json() == {"live": "default", "models": []}
    assert c.post("/api/learning/rollback", headers=h).status_code == 409  # nothing deployed: a conflict


def test_deployed_ranker_is_used_logged_and_rolled_back_exactly(world):
    c, h = world.client, world.h("staff")
    before = c.get("/api/demands/D1/matches", headers=h).json()["results"]
    folder = world.settings.rankers_dir()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, len(FEATURES)))
    y = (X[:, FEATURES.index("industry_match")] > 0).astype(float)
    model = Config("linear").make(FEATURES).fit(X, y, [10, 10, 10, 10])
    reg = ModelRegistry(folder)
    reg.deploy(reg.add(model, {"trained_on": "test"}))
    assert learning.load_deployed(world.ctx.db, world.ctx.live, folder) == "v0001"
    after = c.get("/api/demands/D1/matches", headers=h).json()["results"]
    assert all("learned" in m["components"] for m in after)
    heads, _ = _lists(world)
    assert heads[-1]["model_version"] == "v0001"
    state = c.get("/api/learning/models", headers=h).json()
    assert state["live"] == "v0001" and state["models"][0]["importances"]
    r = c.post("/api/learning/rollback", headers=h)
    assert r.status_code == 200 and r.json()["live"] == "default"
    assert c.get("/api/demands/D1/matches", headers=h).json()["results"] == before


def test_training_reads_served_lists_and_contacts(world):
    c, h = world.client, world.h("staff")
    for d in ("D1", "D3"):
        first = c.get(f"/api/demands/{d}/matches", headers=h).json()["results"][0]["partner_id"]
        c.post("/api/feedback", json={"demand_id": d, "partner_id": first, "status": "agreed"}, headers=h)
    world.ctx.impressions.flush()
    r = c.post("/api/learning/train", headers=h).json()
    assert r["lists"] == 2 and r["demands"] == 2 and r["outcomes"] == 2
    assert r["deployed"] is False and "too few" in r["reason"]  # two demands cannot pass a held-out gate
    assert r["estimator"] == "examined"  # learns from the contacted pairs only
