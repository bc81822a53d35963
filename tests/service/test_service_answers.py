"""Engine answers kept until the index changes (`service.jobs.answers`): asked again, a question
is not matched again; after any change to the index, of this process or another, it is; what
the service reads from the database (rejections, deleted records) is never kept."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from sqlalchemy import insert

from matcher.records import Demand
from matcher.retrieval.results import CapabilityHit, PartnerMatch, PartnerReport, ScoreParts
from service.jobs.answers import AnswerCache, question_key
from service.storage.db import bump_revision, capabilities, demands, utcnow


def _matches(world, demand_id: str = "D1", role: str = "staff") -> dict:
    r = world.client.get(f"/api/demands/{demand_id}/matches", headers=world.h(role))
    assert r.status_code == 200, r.text
    return r.json()


def _evidence(result: dict) -> set[str]:
    return {e["capability_id"] for m in result["results"] for e in m["evidence"]}


def test_a_question_asked_again_at_the_same_revision_is_not_matched_again(world):
    answers = world.ctx.live.answers
    first = _matches(world)
    computed = answers.misses
    again = _matches(world)
    assert answers.misses == computed and answers.hits >= 1
    assert again == first
    other_k = world.client.get("/api/demands/D1/matches", params={"k": 1}, headers=world.h("staff")).json()
    assert answers.misses == computed + 1 and len(other_k["results"]) == 1  # k is part of the question


def test_a_write_empties_the_answers_and_the_next_answer_sees_it(world):
    first = _matches(world)
    assert "C9" not in _evidence(first)
    r = world.client.post("/api/capabilities", json={"id": "C9", "partner_id": "P2", "title": "货车涂层低温剥落",
                                                     "text": "铁路货车水性涂层冬季低温下剥落，需要提升附着力。"},
                          headers=world.h("admin"))
    assert r.status_code == 201
    assert len(world.ctx.live.answers) == 0
    after = _matches(world)
    assert "C9" in _evidence(after) and after["revision"] > first["revision"]
    assert world.client.delete("/api/capabilities/C9", headers=world.h("admin")).status_code == 204
    assert "C9" not in _evidence(_matches(world))


def test_a_write_by_another_process_empties_the_answers_before_the_next_read(world):
    c, h = world.client, world.h("staff")
    text = "风电叶片覆冰 除冰"
    before = c.post("/api/demands/search", json={"text": text}, headers=h).json()["results"]
    assert "DX" not in [x["demand"]["id"] for x in before]
    c.post("/api/demands/search", json={"text": text}, headers=h)
    assert len(world.ctx.live.answers) >= 1
    now = utcnow()
    with world.ctx.db.begin() as conn:  # another process's write: the database moves, not this index
        conn.execute(insert(demands).values(id="DX", title="风电叶片覆冰", text="叶片 覆冰 除冰", owner="",
                                            created_at=now, updated_at=now))
        bump_revision(conn)
    after = c.post("/api/demands/search", json={"text": text}, headers=h).json()["results"]
    assert after[0]["demand"]["id"] == "DX"


def test_two_apps_on_one_database_never_serve_an_answer_older_than_the_other_ones_write(make_world):
    a = make_world()
    b = make_world(seeded=False)
    b.tokens = a.tokens
    first = _matches(b)
    assert _matches(b) == first and b.ctx.live.answers.hits == 1  # kept by b
    r = a.client.post("/api/feedback", json={"demand_id": "D1", "partner_id": "P2", "status": "contacted"},
                      headers=a.h("admin"))
    assert r.status_code == 201  # a write that touches no record: b catches up and keeps its answer
    assert _matches(b)["revision"] > first["revision"] and b.ctx.live.answers.hits == 2
    r = a.client.patch("/api/capabilities/C3", json={"title": "货车涂层低温剥落",
                                                      "text": "铁路货车水性涂层冬季低温下剥落，需要提升附着力。"},
                       headers=a.h("admin"))
    assert r.status_code == 200
    after = _matches(b)
    assert after["revision"] > first["revision"]
    titles = {e["capability_id"]: e["title"] for m in after["results"] for e in m["evidence"]}
    assert titles.get("C3") == "货车涂层低温剥落"


def test_a_kept_answer_is_still_checked_against_the_database(world):
    """What the service adds to an answer is read on every request: a capability deleted behind
    the index's back (and hidden from the revision check) is not shown, though the engine's
    answer that names it was kept."""
    live = world.ctx.live
    shown = _matches(world)["results"][0]["evidence"][0]["capability_id"]
    with world.ctx.db.begin() as conn:
        conn.execute(capabilities.delete().where(capabilities.c.id == shown))
    live.revision = live.db_revision()
    hits = live.answers.hits
    after = _matches(world)
    assert live.answers.hits == hits + 1 and shown not in _evidence(after)


def test_feedback_keeps_the_answers_and_is_shown_on_the_kept_one(world):
    """A rejection touches no record of the index: the engine's answer is kept, and the
    rejection (read from the database on every request) is marked on it."""
    c, h = world.client, world.h("staff")
    before = _matches(world)
    top = before["results"][0]["partner_id"]
    assert not before["results"][0]["rejected"]
    r = c.post("/api/feedback", json={"demand_id": "D1", "partner_id": top, "status": "rejected",
                                      "reason": "已有合作"}, headers=h)
    assert r.status_code == 201
    hits = world.ctx.live.answers.hits
    after = _matches(world)
    assert world.ctx.live.answers.hits == hits + 1 and after["revision"] > before["revision"]
    marked = {m["partner_id"]: m for m in after["results"]}[top]
    assert marked["rejected"] and marked["rejected_reason"] == "已有合作"
    assert after["results"][-1]["partner_id"] == top


def test_a_ranker_deployed_empties_the_answers(world):
    _matches(world)
    live = world.ctx.live
    assert len(live.answers) >= 1
    live.set_reranker(live.reranker, live.ranker_version)  # what a start deploys when no model is: no change
    assert len(live.answers) >= 1
    live.set_reranker(None, "rolled-back")
    assert len(live.answers) == 0


def test_no_answers_are_kept_when_the_cache_is_off(make_world):
    world = make_world(answer_cache_mb=0)
    assert _matches(world) == _matches(world)
    assert len(world.ctx.live.answers) == 0 and world.ctx.live.answers.hits == 0


# -- the cache itself --------------------------------------------------------------------------
def _size(value) -> int:
    return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def test_the_least_recently_used_answer_goes_first():
    answers = {k: [k * 100] * 10 for k in "abcd"}
    cost = _size(answers["a"]) + _size("a")  # an answer and its key
    cache = AnswerCache(2 * cost)
    calls = []

    def answer(k):
        return lambda: calls.append(k) or answers[k]

    assert [cache.get(k, answer(k)) for k in "aba"] == [answers[k] for k in "aba"]
    cache.get("c", answer("c"))  # "b" was used least recently
    assert cache.get("a", answer("a")) == answers["a"] and cache.get("b", answer("b")) == answers["b"]
    assert calls == ["a", "b", "c", "b"] and len(cache) == 2 and (cache.hits, cache.misses) == (2, 4)
    assert cache.held == 2 * cost


def test_an_answer_larger_than_the_cache_is_not_kept():
    cache = AnswerCache(100)
    big = ["x" * 200]
    assert cache.get("big", lambda: big) is big
    assert len(cache) == 0 and cache.held == 0 and cache.get("big", lambda: ["small"]) == ["small"]
    assert len(cache) == 1


def test_a_long_key_counts_against_the_budget():
    text = "铁路货车水性涂层冬季低温下剥落" * 100  # a typed text as the key, the answer short
    cache = AnswerCache(_size(["P1"]) + _size(text) - 1)
    cache.get(text, lambda: ["P1"])
    assert len(cache) == 0
    cache = AnswerCache(_size(["P1"]) + _size(text))
    cache.get(text, lambda: ["P1"])
    assert len(cache) == 1 and cache.held == _size(["P1"]) + _size(text)


def test_every_hit_is_a_copy_no_caller_can_change_the_kept_answer():
    cache = AnswerCache(10_000)
    first = cache.get("q", lambda: {"partners": ["P1", "P2"]})
    first["partners"].append("P9")
    again = cache.get("q", lambda: {})
    assert again == {"partners": ["P1", "P2"]}
    again["partners"].clear()
    assert cache.get("q", lambda: {}) == {"partners": ["P1", "P2"]}


def test_an_engine_report_comes_back_whole():
    hit = CapabilityHit("C1", "P1", "货车涂层", 0.8, ScoreParts(0.8, 3.2, 0.9, 0.7, 0.4, 0.8), ("涂层",), 0.7, "strong")
    match = PartnerMatch("P1", "寒地材料研究所", 0.8, 1, (hit,), ("涂层",), {"fit": 0.7}, 0.7, "strong", "涂层")
    report = PartnerReport([match], 0.7, True)
    cache = AnswerCache(1 << 20)
    cache.get("r", lambda: report)
    assert cache.get("r", lambda: None) == report


def test_an_answer_that_fails_is_not_kept():
    cache = AnswerCache(4)

    def fail():
        raise LookupError("unknown partner")

    with pytest.raises(LookupError):
        cache.get("p", fail)
    assert len(cache) == 0 and cache.get("p", lambda: [5]) == [5]


def test_a_negative_size_is_refused():
    with pytest.raises(ValueError, match="at least 0"):
        AnswerCache(-1)


def test_a_question_is_the_whole_demand_and_every_argument():
    d = Demand("D1", "货车涂层", "低温剥落", industry="轨道交通装备", extra={"来源": "县科技局"})
    assert question_key("partners", d, 10) == question_key("partners", dataclasses.replace(d), 10)
    changed = [dataclasses.replace(d, text="低温开裂"), dataclasses.replace(d, industry="乳业"),
               dataclasses.replace(d, extra={"来源": "企业"})]
    assert all(question_key("partners", x, 10) != question_key("partners", d, 10) for x in changed)
    assert question_key("partners", d, 10) != question_key("partners", d, 5)
    assert question_key("partners", d, 10) != question_key("demands", d, 10)
    assert question_key("demands", "D1", 10) != question_key("demands", d, 10)  # a text is not a demand
    listed = dataclasses.replace(d, extra={"附件": ["a.pdf", "b.pdf"]})
    assert hash(question_key("partners", listed, 10)) == hash(question_key("partners", dataclasses.replace(listed), 10))
