"""Demands, capabilities and partners: create, read, update, delete, list, filter, page."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service.storage.db import capability_industries, feedback


def test_demand_crud_round_trip(world):
    c, h = world.client, world.h("staff")
    body = {"id": "D9", "title": "低温润滑油", "text": "零下四十度启动困难", "industry": "寒地技术",
            "region": "龙沙区", "enterprise": "某公司", "contact": "张三", "extra": {"来源": "走访"}}
    r = c.post("/api/demands", json=body, headers=h)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["id"] == "D9" and made["owner"] == "某公司" and made["published"] is True
    assert made["extra"] == {"来源": "走访"}
    assert c.get("/api/demands/D9", headers=h).json()["title"] == "低温润滑油"
    r = c.patch("/api/demands/D9", json={"title": "低温润滑油改进", "confidential": True}, headers=h)
    assert r.status_code == 200 and r.json()["title"] == "低温润滑油改进" and r.json()["confidential"] is True
    assert r.json()["text"] == "零下四十度启动困难"  # untouched
    assert c.delete("/api/demands/D9", headers=h).status_code == 204
    assert c.get("/api/demands/D9", headers=h).status_code == 404
    assert c.delete("/api/demands/D9", headers=h).status_code == 404


def test_demand_id_is_generated_and_duplicates_conflict(world):
    c, h = world.client, world.h("staff")
    r = c.post("/api/demands", json={"title": "无编号需求", "text": "描述"}, headers=h)
    assert r.status_code == 201 and r.json()["id"].startswith("D-")
    r = c.post("/api/demands", json={"id": "D1", "title": "重复", "text": "描述"}, headers=h)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"


def test_demand_needs_title_or_text_and_rejects_unknown_fields(world):
    c, h = world.client, world.h("staff")
    r = c.post("/api/demands", json={"industry": "乳业"}, headers=h)
    # was "title or a text": a description is now required (issue 13.3)
    assert r.status_code == 422 and "needs a description (text" in r.json()["error"]["message"]
    r = c.post("/api/demands", json={"title": "x", "colour": "red"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["body", "colour"]
    r = c.patch("/api/demands/D1", json={"title": "", "text": ""}, headers=h)
    assert r.status_code == 422
    r = c.post("/api/demands", json={"id": "bad/id", "title": "x"}, headers=h)
    assert r.status_code == 422


def test_demand_list_filters_and_pagination(world):
    c, h = world.client, world.h("staff")
    page = c.get("/api/demands", headers=h).json()
    assert page["total"] == 4 and {d["id"] for d in page["items"]} == {"D1", "D2", "D3", "D4"}
    assert [d["id"] for d in page["items"]] == ["D2", "D1", "D3", "D4"]  # newest first
    assert c.get("/api/demands?industry=乳业", headers=h).json()["total"] == 1
    r = c.get("/api/demands?industry=乳业&industry=轨道交通装备", headers=h).json()
    assert {d["id"] for d in r["items"]} == {"D1", "D3"}
    assert c.get("/api/demands?region=克东县", headers=h).json()["items"][0]["id"] == "D3"
    assert c.get("/api/demands?q=涂层", headers=h).json()["items"][0]["id"] == "D1"
    assert c.get("/api/demands?q=d3", headers=h).json()["items"][0]["id"] == "D3"  # id, case-insensitive
    assert c.get("/api/demands?q=100%25", headers=h).json()["total"] == 0  # LIKE wildcards are literal
    assert c.get("/api/demands?confidential=true", headers=h).json()["total"] == 1
    assert c.get("/api/demands?published=false", headers=h).json()["items"][0]["id"] == "D4"
    p1 = c.get("/api/demands?limit=2&offset=0", headers=h).json()
    p2 = c.get("/api/demands?limit=2&offset=2", headers=h).json()
    assert p1["total"] == p2["total"] == 4 and p1["limit"] == 2 and p2["offset"] == 2
    assert not {d["id"] for d in p1["items"]} & {d["id"] for d in p2["items"]}
    assert c.get("/api/demands?limit=0", headers=h).status_code == 422
    assert c.get("/api/demands?limit=501", headers=h).status_code == 422


def test_capability_crud_and_filters(world):
    c, h = world.client, world.h("staff")
    r = c.post("/api/capabilities", json={"id": "C9", "partner_id": "P2", "title": "牛奶检测",
                                          "industries": ["乳业", "检测"]}, headers=h)
    assert r.status_code == 201 and r.json()["partner_name"] == "北疆农业大学 食品学院"
    assert c.get("/api/capabilities?industry=检测", headers=h).json()["items"][0]["id"] == "C9"
    r = c.patch("/api/capabilities/C9", json={"industries": ["食品"]}, headers=h)
    assert r.status_code == 200 and r.json()["industries"] == ["食品"]
    assert c.get("/api/capabilities?industry=检测", headers=h).json()["total"] == 0
    assert c.get("/api/capabilities?region=富拉尔基区", headers=h).json()["total"] == 2
    assert c.get("/api/capabilities?partner_type=university", headers=h).json()["total"] == 3
    assert c.get("/api/capabilities?partner_id=P1", headers=h).json()["total"] == 2
    assert c.get("/api/capabilities?q=玉米", headers=h).json()["items"][0]["id"] == "C3"
    assert c.delete("/api/capabilities/C9", headers=h).status_code == 204
    assert c.get("/api/capabilities/C9", headers=h).status_code == 404
    with world.ctx.db.connect() as conn:  # its industry links went with it
        assert not conn.execute(select(capability_industries).where(
            capability_industries.c.capability_id == "C9")).first()


def test_capability_needs_an_existing_partner(world):
    c, h = world.client, world.h("staff")
    r = c.post("/api/capabilities", json={"partner_id": "P404", "title": "x"}, headers=h)
    assert r.status_code == 409 and "P404" in r.json()["error"]["message"]  # not stored: a conflict
    assert c.post("/api/capabilities", json={"title": "x"}, headers=h).status_code == 422
    r = c.patch("/api/capabilities/C1", json={"partner_id": "P404"}, headers=h)
    assert r.status_code == 409


def test_partner_crud_and_cascade(world):
    c, h = world.client, world.h("staff")
    r = c.post("/api/partners", json={"id": "P9", "name": " 测试团队 ", "type": "team"}, headers=h)
    assert r.status_code == 201 and r.json()["name"] == "测试团队" and r.json()["capabilities"] == 0
    assert c.post("/api/partners", json={"id": "P9", "name": "again"}, headers=h).status_code == 409
    assert c.post("/api/partners", json={"name": "x", "type": "alien"}, headers=h).status_code == 422
    assert c.get("/api/partners?partner_type=team", headers=h).json()["items"][0]["id"] == "P9"
    assert c.get("/api/partners?q=农业", headers=h).json()["items"][0]["id"] == "P2"
    assert c.get("/api/partners/P1", headers=h).json()["capabilities"] == 2
    assert c.patch("/api/partners/P9", json={"region": "建华区"}, headers=h).json()["region"] == "建华区"
    assert c.post("/api/feedback", json={"demand_id": "D1", "partner_id": "P1", "status": "contacted"},
                  headers=h).status_code == 201
    assert c.delete("/api/partners/P1", headers=h).status_code == 204
    assert c.get("/api/capabilities/C1", headers=h).status_code == 404
    assert c.get("/api/capabilities?partner_id=P1", headers=h).json()["total"] == 0
    with world.ctx.db.connect() as conn:  # feedback about it went with it (foreign keys are on)
        assert not conn.execute(select(feedback).where(feedback.c.partner_id == "P1")).first()
    # the institute token bound to P1 is gone with its partner
    assert c.get("/api/me", headers=world.h("institute")).status_code == 401


def test_every_write_bumps_the_revision(world):
    c, h = world.client, world.h("staff")
    before = world.ctx.live.db_revision()
    c.patch("/api/demands/D1", json={"region": "建华区"}, headers=h)
    c.post("/api/feedback", json={"demand_id": "D1", "partner_id": "P1", "status": "contacted"}, headers=h)
    assert world.ctx.live.db_revision() == before + 2 == world.ctx.live.revision
    c.post("/api/demands", json={"id": "D1", "title": "dup", "text": "描述"}, headers=h)  # failed writes change nothing
    assert world.ctx.live.db_revision() == before + 2


@pytest.mark.parametrize("field, value", [
    ("text", ""), ("text", "   "), ("date", "not-a-date"), ("date", "明年三月"), ("date", "2026-13-45"),
    ("industry", "不存在的行业"), ("region", "火星区"),
])
def test_a_demand_with_nonsense_is_refused_naming_the_field(world, field, value):
    """Regression (issue 13.3): each of these was accepted with 200/201."""
    body = {"id": "DX", "title": "新需求", "text": "铁路货车涂层低温剥落。", "industry": "乳业", "region": "龙沙区",
            "date": "2026-03-05", field: value}
    r = world.client.post("/api/demands", json=body, headers=world.h("staff"))
    assert r.status_code == 422 and field in r.text, r.text
    r = world.client.patch("/api/demands/D1", json={field: value}, headers=world.h("staff"))
    assert r.status_code == 422 and field in r.text, r.text


def test_a_demand_takes_usual_date_forms_and_aliases_and_stores_them_canonical(world):
    body = {"id": "DY", "title": "新需求", "text": "乳品冷链。", "industry": "乳制品", "region": "讷河",
            "date": "2026年3月5日"}
    r = world.client.post("/api/demands", json=body, headers=world.h("staff"))
    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in ("industry", "region", "date")} == {"industry": "乳业", "region": "讷河市",
                                                                      "date": "2026-03-05"}
    r = world.client.patch("/api/demands/DY", json={"date": "2026.03", "region": "齐齐哈尔市龙沙区"},
                           headers=world.h("staff"))
    assert (r.json()["date"], r.json()["region"]) == ("2026-03", "龙沙区")
