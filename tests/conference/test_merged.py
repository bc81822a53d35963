"""Merged demands at a conference: one joint demand, rules for every member enterprise, no
member enterprise booked twice in a slot, every member's agenda lists the joint meetings."""

from __future__ import annotations

import itertools

import pytest

from matcher.conference.assign import AssignmentConstraints, PairListRule, SameValueRule, assign
from matcher.conference.merged import JointRule, attendees, enterprises_of, joint_demand, merged_ids
from matcher.conference.outputs import write_outputs
from matcher.conference.schedule import _instance, make_slots, placement_bound, schedule_meetings
from matcher.records import Demand, Partner

D1 = Demand("D1", "涂层剥落", "货车涂层低温剥落。", region="铁锋区", enterprise="E1")
D3 = Demand("D3", "乳品冷链", "乳品冷链保鲜期短。", enterprise="E2", confidential=True)
D7 = Demand("D7", "涂层剥落", "货车涂层低温剥落。", enterprise="E1")  # same wording, same enterprise
D5 = Demand("D5", "包装脆裂", "包装膜低温脆裂。", enterprise="E2")
PARTNERS = [Partner("P1", "寒地材料研究所", extra={"owner": "E2"}), Partner("P2", "北疆农大"), Partner("P3", "检测院")]


def test_joint_demand_keeps_the_primary_and_adds_what_the_others_say():
    j = joint_demand(D1, [D3, D7])
    assert (j.id, j.title, j.enterprise, j.region) == ("D1", "涂层剥落", "E1", "铁锋区")
    assert j.text == "货车涂层低温剥落。\n乳品冷链\n乳品冷链保鲜期短。"  # D7 adds nothing
    assert j.confidential  # D3 is
    assert enterprises_of(j) == ["E1", "E2"] and merged_ids(j) == ["D3", "D7"]
    assert joint_demand(D1, []) is D1 and enterprises_of(D1) == ["E1"] and merged_ids(D1) == []
    assert attendees([j, D5]) == {"D1": ["E2"]}
    assert D1.text == "货车涂层低温剥落。"  # inputs untouched


def test_enterprise_rules_hold_for_every_member_enterprise():
    j = joint_demand(D1, [D3])
    contract = JointRule(PairListRule(frozenset({("E2", "P2")})))
    own = JointRule(SameValueRule("enterprise", "owner"))
    assert contract(j, PARTNERS[1]) and not contract(D1, PARTNERS[1])  # E2's contract with P2
    assert own(j, PARTNERS[0]) and not own(D1, PARTNERS[0])  # P1 belongs to E2
    assert contract.name == "existing contract" and own.name == "same enterprise/owner"
    rows = [(d, p.id, 0.5) for d in ("D1", "D5") for p in PARTNERS]
    result = assign(rows, AssignmentConstraints(capacity=2, max_per_demand=3, exclusion_rules=(contract, own)),
                    demands=[j, D5], partners=PARTNERS)
    assert {p.partner_id for p in result.pairs if p.demand_id == "D1"} == {"P3"}


@pytest.mark.parametrize("method", ["heuristic", "cp-sat"])
def test_no_member_enterprise_is_booked_twice_in_a_slot(method):
    slots = make_slots("09:00-09:40", 20)  # two slots
    pairs = [("D1", "P1"), ("D1", "P2"), ("D5", "P3")]  # D1 joint (E1 + E2), D5 is E2's own
    ent = {"D1": "E1", "D5": "E2"}
    loose = schedule_meetings(pairs, slots, 5, enterprise_of=ent, method=method)
    assert len(loose.meetings) == 3  # without the attendees, E2 would be in two places at once
    s = schedule_meetings(pairs, slots, 5, enterprise_of=ent, attendees={"D1": ["E2"]}, method=method)
    assert len(s.meetings) == 2 and len(s.unplaced) == 1
    assert s.unplaced[0].reason == "no_free_slot"
    # E2's windows apply to the joint meetings too
    w = schedule_meetings([("D1", "P1")], slots, 5, enterprise_of=ent, attendees={"D1": ["E2"]},
                          enterprise_windows={"E2": [("09:20", "09:40")]}, method=method)
    assert [slots[m.slot].label for m in w.meetings] == ["09:20-09:40"]


def _most_placeable(inst) -> int:
    """Brute force: the most meetings any placement makes (tables, partners, every attendee)."""
    n = len(inst.slots)
    best = 0
    for choice in itertools.product(range(-1, n), repeat=len(inst.pairs)):
        busy: set = set()
        ok = True
        for m, t in enumerate(choice):
            if t < 0:
                continue
            keys = {("p", inst.pairs[m][1], t), *(("e", e, t) for e in inst.ents[m])}
            if t not in inst.allowed[m] or keys & busy:
                ok = False
                break
            busy |= keys
        if ok and all(choice.count(t) <= inst.tables for t in range(n)):
            best = max(best, sum(t >= 0 for t in choice))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_placement_is_best_possible_and_the_bound_holds_with_attendees(seed):
    import random

    rng = random.Random(seed)
    slots = make_slots("09:00-09:40", 20)
    pairs = rng.sample([(d, p) for d in ("D1", "D2", "D3") for p in ("P1", "P2", "P3")], 5)
    ent = {"D1": "E1", "D2": "E2", "D3": rng.choice(["E2", "E3"])}
    extra = {"D1": rng.sample(["E2", "E3"], rng.randint(1, 2))}
    inst = _instance(pairs, slots, rng.choice([1, 2]), ent, {}, {}, extra)
    s = schedule_meetings(pairs, slots, inst.tables, enterprise_of=ent, attendees=extra, method="cp-sat")
    assert len(s.meetings) == _most_placeable(inst) <= placement_bound(inst) == s.bound


def test_every_member_enterprise_finds_the_joint_meetings_on_its_agenda(tmp_path):
    j = joint_demand(D1, [D3])
    demands = [j, D5]
    result = assign([("D1", "P1", 0.9), ("D1", "P2", 0.8), ("D5", "P3", 0.7)],
                    AssignmentConstraints(capacity=2, max_per_demand=2, min_score=0), demands=demands,
                    partners=PARTNERS)
    slots = make_slots("09:00-10:00", 20)
    schedule = schedule_meetings([(a.demand_id, a.partner_id) for a in result.pairs], slots, 3,
                                 enterprise_of={d.id: d.enterprise for d in demands}, attendees=attendees(demands))
    write_outputs(tmp_path, result, schedule, demands, PARTNERS, {})
    pages = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "agendas").glob("enterprise-*.html")}
    e2 = next(t for t in pages.values() if "<h1>E2</h1>" in t)
    e1 = next(t for t in pages.values() if "<h1>E1</h1>" in t)
    assert e2.count('<span class="id">D1</span>') == 2 and e1.count('<span class="id">D1</span>') == 2
    assert '<span class="id">D5</span>' in e2 and '<span class="id">D5</span>' not in e1
    assert "联合洽谈 Joint meeting: E1、E2 · 已并入 merged D3" in e2
    csv_text = (tmp_path / "assignment.csv").read_text(encoding="utf-8-sig")
    assert "D1,涂层剥落,E1; E2,P1" in csv_text
    e2_slots = [m.slot for m in schedule.meetings if m.demand_id in ("D1", "D5")]
    assert len(e2_slots) == len(set(e2_slots)) == 3
