"""Schedule: no double booking, availability kept, compact partner blocks, exact when small."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from matcher.conference.schedule import (
    Slot,
    make_slots,
    parse_time,
    parse_windows,
    schedule_meetings,
    validate_schedule,
)
from matcher.errors import InputError, UnknownNameError

MORNING = make_slots("09:00-10:00", 20)  # 09:00, 09:20, 09:40


def independent_check(schedule, pairs, enterprise_of, ewin=None, pwin=None) -> None:
    """The invariants again, written without the module's helpers."""

    def minutes(hhmm: str) -> int:
        h, m = hhmm.split(":")
        return int(h) * 60 + int(m)

    def inside(slot, windows) -> bool:
        return windows is None or any(minutes(a) <= slot.start and slot.end <= minutes(b) for a, b in windows)

    busy = set()
    for x in schedule.meetings:
        slot = schedule.slots[x.slot]
        for key in (("t", x.table), ("p", x.partner_id), ("e", enterprise_of[x.demand_id])):
            assert (key, x.slot) not in busy, f"double booking of {key} at {slot.label}"
            busy.add((key, x.slot))
        assert 1 <= x.table <= schedule.tables
        assert inside(slot, (ewin or {}).get(enterprise_of[x.demand_id]))
        assert inside(slot, (pwin or {}).get(x.partner_id))
    placed = [(x.demand_id, x.partner_id) for x in schedule.meetings]
    unplaced = [(u.demand_id, u.partner_id) for u in schedule.unplaced]
    assert sorted(placed + unplaced) == sorted(pairs)


def test_slots_and_windows_parse():
    slots = make_slots("09:00-10:00, 14:00-14:50", 20)
    assert [s.label for s in slots] == ["09:00-09:20", "09:20-09:40", "09:40-10:00", "14:00-14:20", "14:20-14:40"]
    assert parse_time("9:05") == 545
    assert parse_windows("09:00-11:00；14:00-15:00") == [("09:00", "11:00"), ("14:00", "15:00")]
    for bad in ("9-10", "10:00-09:00", "25:00-26:00"):
        with pytest.raises(InputError):
            make_slots(bad, 20)
    with pytest.raises(InputError, match="overlap"):
        make_slots("09:00-10:00,09:30-10:30", 30)
    with pytest.raises(InputError, match="slot length"):
        make_slots("09:00-10:00", 0)


def test_partner_meetings_form_one_block_and_keep_a_table():
    pairs = [("d1", "P"), ("d2", "P"), ("d3", "P"), ("d4", "Q"), ("d5", "Q")]
    ent = {d: d for d, _ in pairs}
    s = schedule_meetings(pairs, MORNING, tables=2, enterprise_of=ent)
    assert validate_schedule(s, pairs, enterprise_of=ent) == []
    independent_check(s, pairs, ent)
    assert not s.unplaced
    assert s.blocks == {"P": 1, "Q": 1}
    assert s.optimal  # one block per partner with everything placed is provably optimal
    tables = {p: {x.table for x in s.meetings if x.partner_id == p} for p in ("P", "Q")}
    assert all(len(t) == 1 for t in tables.values())


def test_enterprise_with_two_demands_is_never_in_two_places():
    pairs = [("d1", "P"), ("d2", "Q")]
    ent = {"d1": "Acme", "d2": "Acme"}
    one_slot = MORNING[:1]
    s = schedule_meetings(pairs, one_slot, tables=5, enterprise_of=ent)
    assert validate_schedule(s, pairs, enterprise_of=ent) == []
    independent_check(s, pairs, ent)
    (u,) = s.unplaced
    assert u.reason == "no_free_slot" and "enterprise busy in 1" in u.detail
    s2 = schedule_meetings(pairs, MORNING, tables=5, enterprise_of=ent)
    assert len(s2.meetings) == 2 and s2.meetings[0].slot != s2.meetings[1].slot


def test_availability_windows_are_respected():
    pairs = [("d1", "P"), ("d2", "P"), ("d3", "Q")]
    ent = {"d1": "A", "d2": "B", "d3": "C"}
    pwin = {"P": [("09:20", "10:00")]}
    ewin = {"A": [("09:00", "09:40")], "C": [("14:00", "15:00")]}
    s = schedule_meetings(pairs, MORNING, tables=3, enterprise_of=ent, enterprise_windows=ewin, partner_windows=pwin)
    assert validate_schedule(s, pairs, enterprise_of=ent, enterprise_windows=ewin, partner_windows=pwin) == []
    independent_check(s, pairs, ent, ewin, pwin)
    when = {x.demand_id: s.slots[x.slot].label for x in s.meetings}
    assert when["d1"] == "09:20-09:40"  # the only slot both A and P can make
    assert when["d2"] == "09:40-10:00"
    (u,) = s.unplaced
    assert (u.demand_id, u.reason) == ("d3", "no_common_availability")


def test_tables_limit_meetings_per_slot():
    pairs = [("d1", "P"), ("d2", "Q"), ("d3", "R")]
    ent = {d: d for d, _ in pairs}
    s = schedule_meetings(pairs, MORNING[:2], tables=1, enterprise_of=ent)
    independent_check(s, pairs, ent)
    assert len(s.meetings) == 2
    (u,) = s.unplaced
    assert "all tables taken in 2" in u.detail


def test_session_break_splits_blocks():
    slots = make_slots("09:00-09:40,14:00-14:40", 20)
    pairs = [(f"d{i}", "P") for i in range(4)]
    s = schedule_meetings(pairs, slots, tables=1)
    assert len(s.meetings) == 4 and s.blocks == {"P": 2}


def brute_force(pairs, slots, tables, ent):
    """Best (placed, -blocks) over every map of meetings to slots or nowhere."""
    follows = [t > 0 and slots[t - 1].end == s.start for t, s in enumerate(slots)]
    best = None
    for choice in itertools.product([None, *range(len(slots))], repeat=len(pairs)):
        load, seen = {}, set()
        ok = True
        for (d, p), t in zip(pairs, choice, strict=True):
            if t is None:
                continue
            if ("p", p, t) in seen or ("e", ent[d], t) in seen:
                ok = False
                break
            seen |= {("p", p, t), ("e", ent[d], t)}
            load[t] = load.get(t, 0) + 1
        if not ok or any(n > tables for n in load.values()):
            continue
        blocks = 0
        for p in {p for _, p in pairs}:
            ts = sorted(t for (_, q), t in zip(pairs, choice, strict=True) if q == p and t is not None)
            blocks += sum(1 for i, t in enumerate(ts) if i == 0 or not (follows[t] and ts[i - 1] == t - 1))
        key = (sum(t is not None for t in choice), -blocks)
        best = key if best is None or key > best else best
    return best


@pytest.mark.parametrize("seed", range(12))
def test_cp_sat_is_exact_on_small_random_cases(seed):
    rng = random.Random(seed)
    slots = make_slots(rng.choice(["09:00-10:20", "09:00-09:40,10:00-10:40"]), 20)
    partners, ents = ["P", "Q", "R"][: rng.randint(2, 3)], ["A", "B", "C"]
    pairs = list(dict.fromkeys((f"d{rng.randint(0, 5)}", rng.choice(partners)) for _ in range(rng.randint(3, 6))))
    ent = {f"d{i}": rng.choice(ents) for i in range(6)}
    tables = rng.randint(1, 2)
    want = brute_force(pairs, slots, tables, ent)
    for method in ("cp-sat", "heuristic"):
        s = schedule_meetings(pairs, slots, tables, enterprise_of=ent, method=method)
        assert validate_schedule(s, pairs, enterprise_of=ent) == []
        independent_check(s, pairs, ent)
        got = (len(s.meetings), -s.total_blocks)
        assert s.bound >= want[0]  # the max-flow bound never cuts a feasible schedule
        if method == "cp-sat":
            assert got == want and s.optimal
        else:
            assert got <= want


def test_heuristic_on_a_medium_case_is_valid():
    rng = random.Random(7)
    slots = make_slots("09:00-12:00,14:00-17:00", 20)
    pairs = list(dict.fromkeys((f"d{rng.randint(0, 150)}", f"p{rng.randint(0, 60)}") for _ in range(300)))
    ent = {f"d{i}": f"e{i % 90}" for i in range(151)}
    pwin = {f"p{j}": [("09:00", "12:00")] for j in range(0, 60, 5)}
    s = schedule_meetings(pairs, slots, 20, enterprise_of=ent, partner_windows=pwin, method="heuristic")
    assert validate_schedule(s, pairs, enterprise_of=ent, partner_windows=pwin) == []
    independent_check(s, pairs, ent, None, pwin)
    assert len(s.meetings) >= 0.95 * len(pairs)


def test_validate_schedule_catches_double_booking():
    pairs = [("d1", "P"), ("d2", "Q")]
    s = schedule_meetings(pairs, MORNING, tables=2)
    a, b = s.meetings
    clash = dataclasses.replace(b, slot=a.slot, partner_id=a.partner_id, table=a.table)
    broken = dataclasses.replace(s, meetings=(a, clash))
    problems = validate_schedule(broken, pairs)
    assert any("table" in p and "double-booked" in p for p in problems)
    assert any("partner P double-booked" in p for p in problems)
    assert any("not asked for" in p for p in problems)
    outside = dataclasses.replace(s, meetings=(dataclasses.replace(a, slot=0),))
    found = validate_schedule(outside, partner_windows={a.partner_id: [("09:40", "10:00")]})
    assert any("outside the windows" in p for p in found)


def test_bad_arguments_are_named():
    with pytest.raises(UnknownNameError, match="valid: auto, cp-sat, heuristic"):
        schedule_meetings([], MORNING, 1, method="magic")
    with pytest.raises(InputError, match="at least one table"):
        schedule_meetings([], MORNING, 0)
    with pytest.raises(InputError, match="listed twice"):
        schedule_meetings([("d", "p"), ("d", "p")], MORNING, 1)
    assert Slot(540, 560).label == "09:00-09:20"


def test_cp_sat_beats_the_heuristic_where_it_can():
    # enterprise C files d2 and d3, B files d1: the heuristic ends with 4 blocks, 3 are possible
    pairs = [("d3", "P"), ("d2", "R"), ("d3", "Q"), ("d2", "Q"), ("d1", "R"), ("d1", "Q"), ("d1", "P")]
    ent = {"d1": "B", "d2": "C", "d3": "C"}
    slots = make_slots("09:00-10:20", 20)
    assert brute_force(pairs, slots, 2, ent) == (7, -3)
    h = schedule_meetings(pairs, slots, 2, enterprise_of=ent, method="heuristic")
    s = schedule_meetings(pairs, slots, 2, enterprise_of=ent, method="auto")
    assert (len(h.meetings), h.total_blocks) == (7, 4)
    assert (len(s.meetings), s.total_blocks, s.method, s.optimal) == (7, 3, "cp-sat", True)
    assert validate_schedule(s, pairs, enterprise_of=ent) == []
    independent_check(s, pairs, ent)


def test_auto_stops_when_the_heuristic_reaches_the_bound():
    # 600 meetings, no windows: the heuristic places all of them; CP-SAT must not run
    rng = random.Random(3)
    slots = make_slots("09:00-12:00,14:00-17:00", 20)
    pairs = list(dict.fromkeys((f"d{rng.randint(0, 400)}", f"p{rng.randint(0, 150)}") for _ in range(600)))
    ent = {f"d{i}": f"e{i}" for i in range(401)}
    s = schedule_meetings(pairs, slots, 40, enterprise_of=ent, method="auto", time_limit=30)
    assert s.bound == len(pairs) == len(s.meetings)
    assert s.placed_optimal and s.method == "heuristic"


def test_bound_is_tight_where_tables_bind():
    # 3 slots x 1 table: at most 3 of 5 meetings fit, whatever the heuristic does
    pairs = [(f"d{i}", f"p{i}") for i in range(5)]
    s = schedule_meetings(pairs, MORNING, 1)
    assert s.bound == 3 and len(s.meetings) == 3 and s.placed_optimal
    # one partner in 5 meetings but only 3 slots: the partner side bounds it
    s2 = schedule_meetings([(f"d{i}", "p") for i in range(5)], MORNING, 5)
    assert s2.bound == 3 and len(s2.meetings) == 3
