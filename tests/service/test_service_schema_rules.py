"""The OpenAPI schema states the API's input rules (issue 15: schemathesis' "schema-valid request
rejected"): a body the API refuses as invalid, the schema refuses too; a request refused for what
the stored records say gets a 409, not a 422; an upload may name its format by media type."""

from __future__ import annotations

import io
import re
import sys

import pytest
from jsonschema import Draft202012Validator

from service.schemas import ID_PATTERN, NONBLANK_PATTERN, id_is_valid


@pytest.fixture
def openapi(world) -> dict:
    return world.client.get("/openapi.json").json()


def _schema_allows(openapi: dict, component: str, body) -> bool:
    root = {"$ref": f"#/components/schemas/{component}", "components": openapi["components"]}
    return Draft202012Validator(root).is_valid(body)


def test_the_id_pattern_and_the_server_agree_on_every_character_however_the_pattern_is_read():
    """Schema-driven generators read `\\s` as ASCII white space; the pattern spells white space out,
    so under either reading it refuses exactly the characters the server refuses."""
    readings = [re.compile(ID_PATTERN), re.compile(ID_PATTERN, re.ASCII)]
    disagree = [hex(c) for c in (*range(0x10000), 0x1D400, 0xE0001, sys.maxunicode)
                if 0xD800 > c or c > 0xDFFF
                for ch in (chr(c),)
                if any(bool(p.search(f"a{ch}b")) != id_is_valid(f"a{ch}b") for p in readings)]
    assert disagree == []
    for text in ("\u3000", " \xa0", "\u2028\t"):
        assert not re.search(NONBLANK_PATTERN, text, re.ASCII) and not text.strip()


# (component, body refused by the API as invalid, the API call that refuses it)
REFUSED = [
    ("DemandCreate", {"title": "只有标题"}, ("POST", "/api/demands")),
    ("DemandCreate", {"text": "\u3000 "}, ("POST", "/api/demands")),
    ("DemandCreate", {"text": "描述", "date": "2026-02-30"}, ("POST", "/api/demands")),
    ("DemandCreate", {"text": "描述", "date": "2100-02-29"}, ("POST", "/api/demands")),
    ("DemandCreate", {"text": "描述", "industry": "无此行业"}, ("POST", "/api/demands")),
    ("DemandCreate", {"text": "描述", "id": "a\xa0b"}, ("POST", "/api/demands")),
    ("DemandCreate", {"text": "描述", "id": ".."}, ("POST", "/api/demands")),
    ("PartnerCreate", {"name": " \u3000"}, ("POST", "/api/partners")),
    ("CapabilityCreate", {"partner_id": "P1", "title": " ", "text": ""}, ("POST", "/api/capabilities")),
    ("CapabilityUpdate", {"title": "", "text": "  "}, ("PATCH", "/api/capabilities/C1")),
    ("FeedbackCreate", {"demand_id": "D1", "partner_id": "P1", "status": "declined_partner"},
     ("POST", "/api/feedback")),
    ("FeedbackCreate", {"demand_id": "D1", "partner_id": "P1", "status": "rejected", "reason": " "},
     ("POST", "/api/feedback")),
    ("FeedbackCreate", {"demand_id": "D1", "partner_id": "P1", "status": "agreed", "reason_code": "other"},
     ("POST", "/api/feedback")),
    ("FeedbackCreate", {"demand_id": "D1", "partner_id": "P1", "status": "contacted", "amount": 5},
     ("POST", "/api/feedback")),
    ("TokenCreate", {"name": "x", "role": "institute"}, ("POST", "/api/tokens")),
    ("TokenCreate", {"name": "x", "role": "staff", "enterprise": "某企业"}, ("POST", "/api/tokens")),
    ("TokenCreate", {"name": "\t", "role": "staff"}, ("POST", "/api/tokens")),
    ("DemandLinksChange", {"action": "merge", "demand_ids": ["D1"]}, ("POST", "/api/demands/links")),
    ("DemandLinksChange", {"action": "link", "demand_ids": ["D1", "D1"]}, ("POST", "/api/demands/links")),
    ("DemandLinksChange", {"action": "unmerge"}, ("POST", "/api/demands/links")),
    ("ConferenceJobCreate", {"slots": "9-12"}, ("POST", "/api/conference/jobs")),
    ("ConferenceJobCreate", {"exclusion_rules": ["enterprise owner"]}, ("POST", "/api/conference/jobs")),
    ("ConferenceJobCreate", {"k": 101}, ("POST", "/api/conference/jobs")),  # the service's max_k is 100
    ("TextMatchRequest", {"text": " \n"}, ("POST", "/api/match")),
    # values of another JSON type than the schema states were once coerced and stored (schemathesis
    # CLI, "schema-violating request accepted": `"published": 0`, `"amount": false`)
    ("DemandUpdate", {"published": 0}, ("PATCH", "/api/demands/D1")),
    ("DemandCreate", {"text": "描述", "confidential": "true"}, ("POST", "/api/demands")),
    ("FeedbackCreate", {"demand_id": "D1", "partner_id": "P1", "status": "agreed", "amount": False},
     ("POST", "/api/feedback")),
    ("FeedbackBulk", {"items": [{"demand_id": "D1", "partner_id": "P1", "status": "agreed", "amount": "5"}]},
     ("POST", "/api/feedback/bulk")),
    ("ConferenceJobCreate", {"k": "20"}, ("POST", "/api/conference/jobs")),
    ("ConferenceJobCreate", {"capacity": 2.5}, ("POST", "/api/conference/jobs")),
    ("TextMatchRequest", {"text": "涂层", "k": True}, ("POST", "/api/match")),
]


@pytest.mark.parametrize("component,body,call", REFUSED, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(REFUSED)])
def test_a_body_the_api_refuses_as_invalid_the_schema_refuses_too(world, openapi, component, body, call):
    method, path = call
    r = world.client.request(method, path, json=body, headers=world.h("admin"))
    assert r.status_code == 422, r.text
    assert not _schema_allows(openapi, component, body), body


ALLOWED = [
    ("DemandCreate", {"text": "描述", "date": "2024-02-29", "industry": "machinery", "region": "龙沙区"}),
    ("DemandCreate", {"text": "描述", "id": "需求-2026-1"}),
    ("FeedbackCreate", {"demand_id": "D1", "partner_id": "P1", "status": "agreed", "amount": 5}),
    ("FeedbackCreate", {"demand_id": "D1", "partner_id": "P1", "status": "rejected", "reason_code": "too_far"}),
    ("TokenCreate", {"name": "x", "role": "institute", "partner_id": "P1"}),
    ("ConferenceJobCreate", {"slots": "09:00-10:00, 14:00-15:30", "exclusion_rules": ["at most 2 per partner type"]}),
]


@pytest.mark.parametrize("component,body", ALLOWED)
def test_the_schema_allows_what_the_api_accepts(openapi, component, body):
    assert _schema_allows(openapi, component, body), body


def test_a_405_names_every_method_of_the_resource_in_allow(world, openapi):
    """`Allow` lists what the schema declares for the path (Starlette named only the first
    route's methods: `Allow: GET` on a resource that also takes PATCH and DELETE)."""
    for path, concrete in (("/api/demands/{demand_id}", "/api/demands/D1"), ("/api/demands", "/api/demands"),
                           ("/api/demands/links", "/api/demands/links"), ("/api/tokens", "/api/tokens")):
        r = world.client.options(concrete, headers=world.h("admin"))
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        allowed = {m.strip() for m in r.headers["allow"].split(",")} - {"HEAD"}
        assert allowed == {m.upper() for m in openapi["paths"][path]}, (path, r.headers["allow"])


def test_bounds_are_json_schema_keywords_and_an_integral_float_is_an_integer(world, openapi):
    """Bounds on an optional integer once came out as pydantic's `ge`/`le`, which no JSON Schema
    reader knows (a fuzzer sent k=3245 as valid); and `integer` includes 5.0, which strict
    validation must still take."""
    import json

    text = json.dumps(openapi)
    assert '"ge":' not in text and '"le":' not in text and '"gt":' not in text and '"lt":' not in text
    r = world.client.post("/api/match", json={"text": "涂层", "k": 5.0}, headers=world.h("staff"))
    assert r.status_code == 200, r.text


def test_not_ready_answers_say_when_to_retry():
    from service.errors import NotReady

    assert NotReady("the index is still being built").headers == {"Retry-After": "2"}


def test_path_and_query_ids_carry_the_id_pattern(openapi):
    params = [p for ops in openapi["paths"].values() for op in ops.values() for p in op.get("parameters", [])
              if p["name"].endswith("_id")]
    assert params
    for p in params:
        schema = p["schema"].get("anyOf", [p["schema"]])[0]
        if schema.get("type") == "array":  # a list filter (`?partner_id=P1&partner_id=P2`) matches ids, any text
            continue
        assert schema.get("pattern") == ID_PATTERN, p


def test_refusals_for_what_the_records_say_are_conflicts_not_invalid_requests(world):
    staff, admin = world.h("staff"), world.h("admin")
    r = world.client.post("/api/capabilities", json={"partner_id": "NO-SUCH", "title": "涂层"}, headers=staff)
    assert r.status_code == 409 and r.json()["error"]["code"] == "unknown_partner"
    assert world.client.post("/api/capabilities", json={"partner_id": "P1", "title": "涂层"}, headers=staff
                             ).status_code == 201
    r = world.client.post("/api/tokens", json={"name": "x", "role": "institute", "partner_id": "NO-SUCH"},
                          headers=admin)
    assert r.status_code == 409
    r = world.client.post("/api/learning/rollback", headers=staff)
    assert r.status_code == 409 and r.json()["error"]["code"] == "nothing_to_roll_back"
    r = world.client.post("/api/conference/jobs", json={"demand_ids": ["D1", "NO-SUCH"]}, headers=staff)
    assert r.status_code == 409 and r.json()["error"]["details"][0]["code"] == "conf_unknown_demand"


@pytest.mark.parametrize("media_type,data", [
    ("text/csv", "需求编号,需求名称,需求描述\nMT1,甲,涂层附着力\n".encode()),
    ("application/x-ndjson", '{"id": "MT1", "title": "甲", "text": "涂层附着力"}\n'.encode()),
])
def test_an_upload_without_an_extension_is_read_by_its_declared_media_type(world, openapi, media_type, data):
    declared = openapi["paths"]["/api/imports/{kind}"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert media_type in declared["encoding"]["file"]["contentType"]
    r = world.client.post("/api/imports/demands", files={"file": ("table", io.BytesIO(data), media_type)},
                          headers=world.h("staff"))
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    r = world.client.post("/api/imports/demands", files={"file": ("table", io.BytesIO(data), "image/png")},
                          headers=world.h("staff"))
    assert r.status_code == 422 and "unsupported file type" in r.text
