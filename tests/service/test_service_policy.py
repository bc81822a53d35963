"""Role rules beyond the matrix: what each role sees inside an answer and what it may change."""

from __future__ import annotations

from service_testkit import E1


def _ids(page: dict) -> set[str]:
    return {d["id"] for d in page["items"]}


def test_institutes_see_published_public_demands_without_contact_fields(world):
    c, h = world.client, world.h("institute")
    page = c.get("/api/demands", headers=h).json()
    assert _ids(page) == {"D1", "D3"} and page["total"] == 2
    for d in page["items"]:
        assert "contact" not in d and "owner" not in d
    d1 = c.get("/api/demands/D1", headers=h).json()
    assert d1["title"] == "货车涂层低温剥落" and "contact" not in d1
    assert c.get("/api/demands/D4", headers=h).status_code == 404  # unpublished
    hidden = c.get("/api/demands/D2", headers=h)  # confidential: answered like a missing one
    missing = c.get("/api/demands/D404", headers=h)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"].replace("D2", "D404") == missing.json()["error"]["message"]


def test_extra_keys_are_hidden_from_institutes_unless_made_public(world):
    """Issue 15: a deny-list of contact-like names always misses one ("QQ", "对接人"), so every
    extra field is staff-only unless the bureau makes it public (the probe tests cover that)."""
    c = world.client
    c.post("/api/demands", json={"id": "DE", "title": "带附加信息", "text": "描述",
                                 "extra": {"联系电话": "139", "技术指标": "≥1000h"}},
           headers=world.h("staff"))
    d = c.get("/api/demands/DE", headers=world.h("institute")).json()
    assert d["extra"] == {}
    assert c.get("/api/demands/DE", headers=world.h("staff")).json()["extra"]["联系电话"] == "139"


def test_enterprises_see_and_edit_only_their_own_demands(world):
    c = world.client
    own = c.get("/api/demands", headers=world.h("enterprise")).json()
    assert _ids(own) == {"D1", "D2", "D4"}  # confidential and unpublished ones too
    assert own["items"][0]["contact"]  # full fields for the owner
    assert _ids(c.get("/api/demands", headers=world.h("other_enterprise")).json()) == {"D3"}
    assert c.patch("/api/demands/D3", json={"title": "x"}, headers=world.h("enterprise")).status_code == 404
    r = c.patch("/api/demands/D1", json={"text": "更新的描述"}, headers=world.h("enterprise"))
    assert r.status_code == 200 and r.json()["text"] == "更新的描述"
    for change in ({"published": True}, {"owner": "别人"}, {"enterprise": "别的公司"}):
        assert c.patch("/api/demands/D4", json=change, headers=world.h("enterprise")).status_code == 403


def test_an_enterprise_files_unpublished_demands_under_its_own_name(world):
    c, h = world.client, world.h("enterprise")
    r = c.post("/api/demands", json={"title": "新需求", "text": "低温涂层"}, headers=h)
    assert r.status_code == 201
    made = r.json()
    assert made["owner"] == E1 and made["enterprise"] == E1 and made["published"] is False
    assert c.post("/api/demands", json={"title": "x", "text": "描述", "published": True}, headers=h).status_code == 403
    assert c.post("/api/demands", json={"title": "x", "text": "描述", "owner": "别人"}, headers=h).status_code == 403
    assert c.get(f"/api/demands/{made['id']}", headers=world.h("institute")).status_code == 404
    c.patch(f"/api/demands/{made['id']}", json={"published": True}, headers=world.h("staff"))
    assert c.get(f"/api/demands/{made['id']}", headers=world.h("institute")).status_code == 200
    matches = c.get(f"/api/demands/{made['id']}/matches", headers=h)
    assert matches.status_code == 200 and matches.json()["results"]


def test_institutes_edit_only_their_own_capabilities(world):
    c, h = world.client, world.h("institute")
    r = c.post("/api/capabilities", json={"title": "无需写单位"}, headers=h)
    assert r.status_code == 201 and r.json()["partner_id"] == "P1"  # defaults to its own partner
    assert c.post("/api/capabilities", json={"partner_id": "P2", "title": "x"}, headers=h).status_code == 403
    assert c.patch("/api/capabilities/C3", json={"title": "x"}, headers=h).status_code == 403
    assert c.delete("/api/capabilities/C3", headers=h).status_code == 403
    assert c.patch("/api/capabilities/C1", json={"partner_id": "P2"}, headers=h).status_code == 403
    assert c.patch("/api/capabilities/C1", json={"title": "铁路货车涂层"}, headers=h).status_code == 200
    assert c.post("/api/partners", json={"name": "x"}, headers=h).status_code == 403
    assert c.get("/api/partners/P2/demands", headers=h).status_code == 403


def test_tokens_bindings_and_expiry(world):
    c, h = world.client, world.h("admin")
    assert c.post("/api/tokens", json={"name": "x", "role": "institute"}, headers=h).status_code == 422
    assert c.post("/api/tokens", json={"name": "x", "role": "enterprise"}, headers=h).status_code == 422
    assert c.post("/api/tokens", json={"name": "x", "role": "staff", "partner_id": "P1"}, headers=h).status_code == 422
    assert c.post("/api/tokens", json={"name": "x", "role": "institute", "partner_id": "P404"},
                  headers=h).status_code == 409  # a partner the database lacks: a conflict
    assert c.post("/api/tokens", json={"name": "x", "role": "root"}, headers=h).status_code == 422
    made = c.post("/api/tokens", json={"name": "短期", "role": "institute", "partner_id": "P2",
                                       "expires_in_days": 1}, headers=h).json()
    assert made["expires_at"] and made["token"].startswith("tm_")
    me = c.get("/api/me", headers={"X-API-Key": made["token"]}).json()
    assert me == {"role": "institute", "name": "短期", "partner_id": "P2", "enterprise": None}
    listed = c.get("/api/tokens", headers=h).json()
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert c.delete(f"/api/tokens/{made['id']}", headers=h).status_code == 204
    assert c.get("/api/me", headers={"X-API-Key": made["token"]}).status_code == 401
    r = c.get("/api/me", headers=world.h("expired"))
    assert r.status_code == 401 and r.json()["error"]["message"] == "unknown or expired token"


def test_only_hashes_of_tokens_are_stored(world):
    from sqlalchemy import select

    from service.storage.db import tokens

    with world.ctx.db.connect() as conn:
        stored = {r.token_hash for r in conn.execute(select(tokens))}
    secrets = {t for t in world.tokens.values() if t}
    assert not stored & secrets and all(len(s) == 64 for s in stored)
