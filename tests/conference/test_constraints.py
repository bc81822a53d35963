"""Quotas, partner minimums, group rules, fairness, alternates, diagnosis and exact numbers:
hand-checked small cases, and every exact method against brute force on random instances."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from matcher.conference.assign import (
    AssignmentConstraints,
    GroupPartnerCap,
    InfeasibleError,
    LocalWish,
    OrganisationCap,
    assign,
)
from matcher.conference.rules import parse_rule, parse_rules
from matcher.conference.solve import Extras, solve_milp
from matcher.errors import InputError
from matcher.records import Demand, Partner

EXACT = ("min_cost_flow", "milp")


def pairs_of(result) -> set[tuple[str, str]]:
    return {(x.demand_id, x.partner_id) for x in result.pairs}


# ---------------------------------------------------------------------------- hand-checked


@pytest.mark.parametrize("method", EXACT)
def test_quota_per_demand(method):
    # d1 wants 3 meetings, d2 only 1, the global maximum is 2
    rows = [("d1", p, 0.9 - k / 10) for k, p in enumerate(["p1", "p2", "p3"])]
    rows += [("d2", p, 0.5 + k / 10) for k, p in enumerate(["p1", "p2", "p3"])]
    c = AssignmentConstraints(capacity=1, max_per_demand=2, quotas={"d1": 3, "d2": 1})
    r = assign(rows, c, method=method)
    # minimums first (1 each), then affinity: d1 keeps p1, p2; d2 takes p3 (0.7) rather than d1's 0.7
    assert pairs_of(r) == {("d1", "p1"), ("d1", "p2"), ("d2", "p3")}
    assert r.objective == pytest.approx(0.9 + 0.8 + 0.7)
    c2 = AssignmentConstraints(capacity=2, max_per_demand=2, quotas={"d1": 3, "d2": 1})
    r2 = assign(rows, c2, method=method)
    assert sum(x.demand_id == "d1" for x in r2.pairs) == 3
    assert sum(x.demand_id == "d2" for x in r2.pairs) == 1


def test_quota_lowers_the_minimum_and_is_checked():
    c = AssignmentConstraints(min_per_demand=2, max_per_demand=3, quotas={"d1": 1})
    assert (c.min_of("d1"), c.max_of("d1"), c.min_of("d2"), c.max_of("d2")) == (1, 1, 2, 3)
    with pytest.raises(InputError, match="quota of demand 'd1'"):
        AssignmentConstraints(quotas={"d1": -1})


@pytest.mark.parametrize("method", EXACT)
def test_partner_minimum_is_soft_and_reported(method):
    # without a partner minimum both demands take p1 (0.9, 0.8); with one, p2 gets a meeting
    rows = [("d1", "p1", 0.9), ("d2", "p1", 0.8), ("d2", "p2", 0.3), ("d3", "p1", 0.1)]
    plain = assign(rows, AssignmentConstraints(capacity=2, min_per_demand=0, max_per_demand=1), method=method)
    assert pairs_of(plain) == {("d1", "p1"), ("d2", "p1")}
    c = AssignmentConstraints(capacity=2, min_per_demand=0, max_per_demand=1, partner_min=1,
                              partner_min_overrides={"p1": 2})
    r = assign(rows, c, method=method)
    assert pairs_of(r) == {("d1", "p1"), ("d2", "p2"), ("d3", "p1")}
    assert (r.partner_min_filled, r.partner_min_required) == (3, 3)
    # p3 has no candidates: its minimum stays unfilled and is reported, nothing is forced
    c3 = AssignmentConstraints(capacity=2, min_per_demand=0, max_per_demand=1, partner_min_overrides={"p3": 1})
    r3 = assign(rows + [("d1", "p3", -0.5)], c3, method=method)
    assert ("d1", "p3") in pairs_of(r3)  # a negative pair is used only because a minimum needs it
    r4 = assign(rows, c3, partners=[Partner(p, p) for p in ("p1", "p2", "p3")], method=method)
    assert [s.partner_id for s in r4.partner_shortfalls] == ["p3"]
    assert (r4.partner_min_filled, r4.partner_min_required) == (0, 1)


def _records():
    demands = [
        Demand("d1", "a", "", region="county A", enterprise="E1"),
        Demand("d2", "b", "", region="county A", enterprise="E2"),
        Demand("d3", "c", "", region="county B", enterprise="E3"),
    ]
    partners = [
        Partner("p1", "Institute 1", region="county A", extra={"organisation": "Univ X"}),
        Partner("p2", "Institute 2", region="county B", extra={"organisation": "Univ X"}),
        Partner("p3", "Lab 3", region="elsewhere", extra={"organisation": "Lab"}),
    ]
    return demands, partners


@pytest.mark.parametrize("method", EXACT)
def test_organisation_cap(method):
    demands, partners = _records()
    rows = [(d.id, p.id, 0.9 if p.id != "p3" else 0.2) for d in demands for p in partners]
    c = AssignmentConstraints(capacity=3, max_per_demand=1, group_rules=(OrganisationCap("organisation", 2),))
    r = assign(rows, c, demands=demands, partners=partners, method=method)
    per_org = sum(x.partner_id in ("p1", "p2") for x in r.pairs)
    assert per_org == 2 and len(r.pairs) == 3
    assert r.objective == pytest.approx(0.9 + 0.9 + 0.2)


@pytest.mark.parametrize("method", EXACT)
def test_county_cap_per_partner(method):
    demands, partners = _records()
    rows = [("d1", "p1", 0.9), ("d2", "p1", 0.8), ("d2", "p3", 0.1), ("d3", "p1", 0.7)]
    c = AssignmentConstraints(capacity=5, max_per_demand=1, group_rules=(GroupPartnerCap("region", 1),))
    r = assign(rows, c, demands=demands, partners=partners, method=method)
    # county A's enterprises (d1, d2) meet p1 at most once together
    assert pairs_of(r) == {("d1", "p1"), ("d2", "p3"), ("d3", "p1")}


@pytest.mark.parametrize("method", EXACT)
def test_local_and_foreign_wishes(method):
    demands, partners = _records()
    # d1's best two are both outside county A; the local wish swaps one for p1
    rows = [("d1", "p1", 0.2), ("d1", "p2", 0.9), ("d1", "p3", 0.8), ("d3", "p3", 0.5)]
    base = AssignmentConstraints(capacity=3, max_per_demand=2)
    assert pairs_of(assign(rows, base, method=method)) == {("d1", "p2"), ("d1", "p3"), ("d3", "p3")}
    c = AssignmentConstraints(capacity=3, max_per_demand=2, group_rules=(LocalWish("local", "region", "region"),))
    r = assign(rows, c, demands=demands, partners=partners, method=method)
    assert pairs_of(r) == {("d1", "p2"), ("d1", "p1"), ("d3", "p3")}
    # d3 has no local candidate: its wish does not count
    assert (r.wishes_met, r.wishes_wanted) == (1, 1)
    assert r.method == ("milp" if method == "milp" else "milp (rules outside the network)")
    c2 = AssignmentConstraints(capacity=3, max_per_demand=1, group_rules=(LocalWish("foreign", "region", "region"),))
    rows2 = [("d1", "p1", 0.9), ("d1", "p3", 0.1)]
    r2 = assign(rows2, c2, demands=demands, partners=partners, method=method)
    assert pairs_of(r2) == {("d1", "p3")}


@pytest.mark.parametrize("method", EXACT)
def test_fair_option_maximises_the_worst_off_demand(method):
    # total affinity: d1-p1 + d2-p2 = 1.0, but d2's best is then 0.0; max-min: d1-p2 + d2-p1 = 0.9
    rows = [("d1", "p1", 1.0), ("d1", "p2", 0.4), ("d2", "p1", 0.5), ("d2", "p2", 0.0), ("d3", "p3", 0.2)]
    c = AssignmentConstraints(capacity=1, min_per_demand=1, max_per_demand=1)
    total = assign(rows, c, method=method)
    assert pairs_of(total) == {("d1", "p1"), ("d2", "p2"), ("d3", "p3")}
    assert total.worst_best == pytest.approx(0.0) and total.fair_threshold is None
    fair = assign(rows, AssignmentConstraints(capacity=1, min_per_demand=1, max_per_demand=1, fair=True),
                  method=method)
    assert pairs_of(fair) == {("d1", "p2"), ("d2", "p1"), ("d3", "p3")}
    assert fair.fair_threshold == pytest.approx(0.2)  # d3's only partner bounds the level
    assert fair.worst_best == pytest.approx(0.2)
    assert fair.objective == pytest.approx(1.1) and total.objective == pytest.approx(1.2)
    assert any("worst-off demand's best score 0.2000" in line for line in fair.explain())
    # without d3 the level is d2's 0.5 (from p1): the exact max-min
    rows2 = rows[:4]
    fair2 = assign(rows2, AssignmentConstraints(capacity=1, max_per_demand=1, fair=True), method=method)
    assert fair2.fair_threshold == pytest.approx(0.4) and fair2.worst_best == pytest.approx(0.4)


def test_alternates_have_capacity():
    rows = [("d1", "p1", 0.9), ("d1", "p2", 0.8), ("d1", "p3", 0.7), ("d2", "p2", 0.95)]
    c = AssignmentConstraints(capacity=1, max_per_demand=1)
    r = assign(rows, c)
    assert pairs_of(r) == {("d1", "p1"), ("d2", "p2")}
    # p2 is full (d2), so d1's alternate is p3
    assert r.alternates[("d1", "p1")] == (("p3", 0.7),)
    assert r.alternates[("d2", "p2")] == ()


def test_rerun_keeps_confirmed_pins_and_replans_the_rest():
    rows = [("d1", "p1", 0.9), ("d1", "p2", 0.8), ("d2", "p1", 0.85), ("d2", "p2", 0.2)]
    c = AssignmentConstraints(capacity=1, max_per_demand=1)
    first = assign(rows, c)
    assert pairs_of(first) == {("d1", "p2"), ("d2", "p1")}
    # d1 confirmed p1 by phone: it is kept, d2 is re-planned around it
    again = assign(rows, AssignmentConstraints(capacity=1, max_per_demand=1, pins=(("d1", "p1"),)))
    assert pairs_of(again) == {("d1", "p1"), ("d2", "p2")}


def test_pin_conflict_says_what_to_change():
    rows = [("d1", "p1", 0.9), ("d2", "p1", 0.8)]
    with pytest.raises(InfeasibleError) as info:
        assign(rows, AssignmentConstraints(capacity=1, pins=(("d1", "p1"), ("d2", "p1"))))
    (fix,) = info.value.suggestions
    assert (fix.kind, fix.target, fix.current, fix.proposed) == ("partner_capacity", "p1", 1, 2)
    assert "raise the capacity of partner p1 from 1 to 2" in fix.en
    assert "把伙伴 p1 的接待名额从 1 提高到 2" in fix.zh
    assert "To fix" in str(info.value)


def test_diagnosis_smallest_capacity_increase():
    # p1 is wanted by three demands whose only candidate it is; p2 by d4 and d5
    rows = [("d1", "p1", 0.9), ("d2", "p1", 0.8), ("d3", "p1", 0.7), ("d4", "p2", 0.6), ("d5", "p2", 0.5),
            ("d5", "p1", 0.4), ("d6", "p3", 0.38)]
    c = AssignmentConstraints(capacity=1, min_per_demand=1, max_per_demand=1, min_score=0.35,
                              capacity_overrides={"p3": 0})
    r = assign(rows + [("d7", "p3", 0.1)], c)
    fixes = {(s.kind, s.target): (s.current, s.proposed) for s in r.suggestions}
    # d1, d2, d3 need p1 (+2); d4, d5 need p1 or p2 (+1 on either); d6 needs p3 (+1); d7 is below the floor
    assert sum(b - a for (kind, _), (a, b) in fixes.items() if kind == "capacity") == 4
    assert fixes[("capacity", "p3")] == (0, 1)
    assert fixes[("quota", "d7")] == (1, 0)
    assert any("需求 d7" in s.zh for s in r.suggestions)
    # applying the capacity suggestions fills every other minimum
    more = dict(c.capacity_overrides)
    for s in r.suggestions:
        if s.kind == "capacity":
            more[s.target] = s.proposed
    c2 = AssignmentConstraints(capacity=1, min_per_demand=1, max_per_demand=1, min_score=0.35,
                               capacity_overrides=more)
    r2 = assign(rows + [("d7", "p3", 0.1)], c2)
    assert [s.demand_id for s in r2.shortfalls] == ["d7"]


# ---------------------------------------------------------------------------- exact numbers


def test_outlier_score_keeps_every_other_choice():
    rng = random.Random(7)
    rows = [(f"d{i}", f"p{j}", rng.random()) for i in range(200) for j in rng.sample(range(60), 8)]
    c = AssignmentConstraints(capacity=2, min_per_demand=1, max_per_demand=2)
    base = assign(rows, c)
    for big in (1e6, 1e8, 1e15):
        r = assign(rows + [("dX", "pX", big)], c)
        assert pairs_of(r) - {("dX", "pX")} == pairs_of(base)
        assert math.fsum(x.score for x in r.pairs if x.partner_id != "pX") == pytest.approx(base.objective, rel=1e-12)


@pytest.mark.parametrize(("big", "neg"), [(1e6, -0.04), (1.0, -1e-9), (1e8, -1e-12)])
def test_negative_pairs_are_not_used_unless_a_minimum_needs_them(big, neg):
    rows = [(f"d{i}", f"p{i}", neg) for i in range(10)] + [("dX", "pX", big)]
    r = assign(rows, AssignmentConstraints(min_per_demand=0, max_per_demand=3))
    assert pairs_of(r) == {("dX", "pX")}
    r1 = assign(rows, AssignmentConstraints(min_per_demand=1, max_per_demand=3))
    assert len(r1.pairs) == 11  # now every demand's minimum needs its only pair


def test_ties_below_the_integer_resolution_are_resolved_exactly():
    # two assignments differ by 2**-60 of the largest score: only exact arithmetic sees it
    eps = 2.0**-60
    rows = [("d1", "p1", 1.0), ("d1", "p2", 1.0 - 2 * eps), ("d2", "p1", 1.0 - eps), ("d2", "p2", 0.0),
            ("d3", "p3", 2.0**20)]
    c = AssignmentConstraints(capacity=1, min_per_demand=0, max_per_demand=1)
    r = assign(rows, c)
    # d1-p2 + d2-p1 = 2 - 3 eps beats d1-p1 + d2-p2 = 1
    assert {("d1", "p2"), ("d2", "p1")} <= pairs_of(r)


def test_milp_has_zero_gap():
    d, p = np.array([0, 0, 1]), np.array([0, 1, 0])
    s = np.array([0.9, 0.8, 0.85])
    chosen = solve_milp(d, p, s, [1, 1], [1, 1], [1, 1], Extras())
    assert chosen.tolist() == [False, True, True]


# ---------------------------------------------------------------------------- rules


def test_rules_parse_in_the_exclusion_rule_syntax():
    rules = parse_rules(["enterprise=owner", "at most 6 per partner organisation", "at least 1 local region=region",
                         "at least 1 foreign region=country", "at most 2 per demand region and partner"])
    assert rules[1] == OrganisationCap("organisation", 6)
    assert rules[2] == LocalWish("local", "region", "region")
    assert rules[3] == LocalWish("foreign", "region", "country")
    assert rules[4] == GroupPartnerCap("region", 2)
    assert parse_rule("最多 3 场 每个单位 organisation") == OrganisationCap("organisation", 3)
    with pytest.raises(InputError, match="at most N per partner FIELD"):
        parse_rule("at most many per partner organisation")


# ---------------------------------------------------------------------------- brute force


def brute_force(rows, c: AssignmentConstraints, demands, partners):
    """The lexicographic optimum (fair level, demand minimum slots, wishes, partner minimum
    slots, affinity) over every subset of eligible pairs, checked constraint by constraint."""
    dmap = {d.id: d for d in demands}
    pmap = {p.id: p for p in partners}
    org_rule = c.rule(OrganisationCap)
    grp_rule = c.rule(GroupPartnerCap)
    wishes = [r for r in c.group_rules if isinstance(r, LocalWish)]
    eligible = [(d, p, s) for d, p, s in rows if (c.min_score is None or s >= c.min_score)]

    def field(rec, name):
        return str(getattr(rec, name, "") or rec.extra.get(name, "")).strip().casefold()

    def qualifies(w, d, p):
        dv, pv = field(dmap[d], w.demand_field), field(pmap[p], w.partner_field)
        return bool(dv and pv) and ((dv == pv) if w.kind == "local" else dv != pv)

    wanted = [(w, d.id) for w in wishes for d in demands if any(qualifies(w, d.id, p) for dd, p, _ in eligible
                                                                  if dd == d.id)]
    has_cand = {d for d, _, _ in eligible}
    best = None
    for mask in range(1 << len(eligible)):
        chosen = [eligible[i] for i in range(len(eligible)) if mask >> i & 1]
        per_d = {d.id: 0 for d in demands}
        per_p = {p.id: 0 for p in partners}
        per_org: dict[str, int] = {}
        per_grp: dict[tuple[str, str], int] = {}
        for d, p, _ in chosen:
            per_d[d] += 1
            per_p[p] += 1
            if org_rule and (o := field(pmap[p], org_rule.partner_field)):
                per_org[o] = per_org.get(o, 0) + 1
            if grp_rule and (g := field(dmap[d], grp_rule.demand_field)):
                per_grp[g, p] = per_grp.get((g, p), 0) + 1
        if any(n > c.max_of(d) for d, n in per_d.items()) or any(n > c.capacity_of(p) for p, n in per_p.items()):
            continue
        if org_rule and any(n > org_rule.limit for n in per_org.values()):
            continue
        if grp_rule and any(n > grp_rule.limit for n in per_grp.values()):
            continue
        best_of = {d: max((s for dd, _, s in chosen if dd == d), default=-math.inf) for d in per_d}
        fair = min((best_of[d] for d in has_cand if c.max_of(d) > 0), default=math.inf) if c.fair else 0.0
        key = (
            fair,
            sum(min(n, c.min_of(d)) for d, n in per_d.items()),
            sum(any(dd == d and qualifies(w, d, p) for dd, p, _ in chosen) for w, d in wanted),
            sum(min(n, c.partner_min_of(p), c.capacity_of(p)) for p, n in per_p.items()),
            math.fsum(s for *_, s in chosen),
        )
        if best is None or key[:4] > best[:4] or (key[:4] == best[:4] and key[4] > best[4] + 1e-12):
            best = key
    return best, len(wanted)


def random_case(seed: int):
    rng = random.Random(seed)
    demands = [Demand(f"d{i}", "t", "", region=rng.choice(["A", "B"])) for i in range(rng.randint(2, 4))]
    partners = [Partner(f"p{j}", "n", region=rng.choice(["A", "B", "C"]), extra={"org": rng.choice(["U", "V", ""])})
                for j in range(rng.randint(2, 4))]
    rows = [(d.id, p.id, round(rng.uniform(-0.3, 1.0), 2)) for d in demands for p in partners if rng.random() < 0.7]
    rows = rows[:12]
    rules: list = []
    if rng.random() < 0.4:
        rules.append(OrganisationCap("org", rng.randint(1, 3)))
    if rng.random() < 0.4:
        rules.append(GroupPartnerCap("region", rng.randint(1, 2)))
    if rng.random() < 0.3:
        rules.append(LocalWish(rng.choice(["local", "foreign"]), "region", "region"))
    lo = rng.randint(0, 2)
    c = AssignmentConstraints(
        capacity=rng.randint(1, 2),
        min_per_demand=lo,
        max_per_demand=rng.randint(max(lo, 1), 3),
        min_score=rng.choice([None, None, 0.2]),
        quotas={d.id: rng.randint(0, 3) for d in demands if rng.random() < 0.4},
        partner_min=rng.choice([0, 0, 1, 2]),
        group_rules=tuple(rules),
        fair=rng.random() < 0.3,
    )
    return demands, partners, rows, c


@pytest.mark.parametrize("seed", range(120))
def test_exact_methods_match_brute_force(seed):
    demands, partners, rows, c = random_case(seed)
    best, n_wanted = brute_force(rows, c, demands, partners)
    for method in EXACT:
        r = assign(rows, c, demands=demands, partners=partners, method=method)
        got = {(x.demand_id, x.partner_id): x.score for x in r.pairs}
        assert r.min_slots_filled == best[1], method
        assert r.wishes_met == best[2] and r.wishes_wanted == n_wanted, method
        assert r.partner_min_filled == best[3], method
        assert math.fsum(got.values()) == pytest.approx(best[4], abs=1e-9), method
        if c.fair:
            assert r.worst_best == (None if best[0] == math.inf else pytest.approx(best[0])), method
        # hard constraints, checked independently
        for d in demands:
            assert sum(k[0] == d.id for k in got) <= c.max_of(d.id)
        for p in partners:
            assert sum(k[1] == p.id for k in got) <= c.capacity_of(p.id)
        g = assign(rows, c, demands=demands, partners=partners, method="greedy")
        assert (g.min_slots_filled, 0) <= (best[1], 1)


def test_brute_force_sees_every_feature():
    cases = [random_case(s)[3] for s in range(120)]
    assert sum(c.fair for c in cases) > 20
    assert sum(bool(c.quotas) for c in cases) > 20
    assert sum(c.partner_min > 0 for c in cases) > 20
    for kind in (OrganisationCap, GroupPartnerCap, LocalWish):
        assert sum(c.rule(kind) is not None for c in cases) > 20
    assert len(list(itertools.islice(cases, 3))) == 3
