"""Assignment: known optima on hand-made cases, brute force on seeded random ones."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from matcher.conference.assign import (
    SOLVERS,
    AssignmentConstraints,
    InfeasibleError,
    PairListRule,
    SameValueRule,
    assign,
    greedy_assign,
    solve_greedy,
    solve_milp,
    solve_min_cost_flow,
)
from matcher.errors import InputError, NotFoundError, UnknownNameError
from matcher.records import Demand, Partner

EXACT = ("min_cost_flow", "milp")

# greedy takes d1-p1 (0.9) first and ends at 1.75; the optimum is 1.85
MATRIX = {
    "d1": {"p1": 0.9, "p2": 0.8, "p3": 0.1},
    "d2": {"p1": 0.85, "p2": 0.2, "p3": 0.1},
    "d3": {"p1": 0.3, "p2": 0.75, "p3": 0.2},
}
ROWS = [(d, p, s) for d, row in MATRIX.items() for p, s in row.items()]


def pairs_of(result) -> set[tuple[str, str]]:
    return {(x.demand_id, x.partner_id) for x in result.pairs}


def check_feasible(result, rows, c: AssignmentConstraints) -> None:
    """Independent check of the hard constraints on a result."""
    score = {(d, p): s for d, p, s in rows}
    per_d, per_p = {}, {}
    for x in result.pairs:
        per_d[x.demand_id] = per_d.get(x.demand_id, 0) + 1
        per_p[x.partner_id] = per_p.get(x.partner_id, 0) + 1
        if (x.demand_id, x.partner_id) in set(c.pins):
            continue
        assert (x.demand_id, x.partner_id) not in c.exclusions
        if c.min_score is not None:
            assert x.score >= c.min_score
        assert x.score == pytest.approx(score[x.demand_id, x.partner_id])
    assert all(n <= c.max_per_demand for n in per_d.values())
    assert all(n <= c.capacity_of(p) for p, n in per_p.items())
    assert set(c.pins) <= pairs_of(result)
    assert len(pairs_of(result)) == len(result.pairs)


@pytest.mark.parametrize("method", EXACT)
def test_three_by_three_beats_greedy(method):
    c = AssignmentConstraints(capacity=1, min_per_demand=1, max_per_demand=1)
    best = max(
        sum(MATRIX[d][p] for d, p in zip(MATRIX, perm, strict=True))
        for perm in itertools.permutations(["p1", "p2", "p3"])
    )
    r = assign(ROWS, c, method=method)
    assert best == pytest.approx(1.85)
    assert r.objective == pytest.approx(best)
    assert pairs_of(r) == {("d1", "p2"), ("d2", "p1"), ("d3", "p3")}
    assert r.greedy_objective == pytest.approx(1.75)
    assert r.gap == pytest.approx(0.10)
    assert r.gap_pct == pytest.approx(100 * 0.10 / 1.85)
    assert r.min_slots_filled == r.min_slots_required == 3
    check_feasible(r, ROWS, c)


def test_greedy_assign_is_the_baseline():
    c = AssignmentConstraints(capacity=1, min_per_demand=1, max_per_demand=1)
    g = greedy_assign(ROWS, c)
    assert g.method == "greedy"
    assert pairs_of(g) == {("d1", "p1"), ("d3", "p2"), ("d2", "p3")}
    assert g.objective == g.greedy_objective == pytest.approx(1.75)
    assert g.gap == 0


def brute_force(rows, c: AssignmentConstraints, demand_ids):
    """Best (filled minimum slots, affinity) over every subset of the eligible pairs."""
    pins = set(c.pins)
    eligible = [
        (d, p, s)
        for d, p, s in rows
        if (d, p) not in pins and (c.min_score is None or s >= c.min_score) and (d, p) not in c.exclusions
    ]
    pin_score = sum(next((s for d, p, s in rows if (d, p) == pin), 0.0) for pin in pins)
    need = min(c.min_per_demand, c.max_per_demand)
    best = None
    for mask in range(1 << len(eligible)):
        chosen = [eligible[i] for i in range(len(eligible)) if mask >> i & 1]
        per_d = {d: sum(1 for x, _ in pins if x == d) for d in demand_ids}
        per_p: dict[str, int] = {}
        for _, p in pins:
            per_p[p] = per_p.get(p, 0) + 1
        for d, p, _ in chosen:
            per_d[d] += 1
            per_p[p] = per_p.get(p, 0) + 1
        if any(n > c.max_per_demand for n in per_d.values()):
            continue
        if any(n > c.capacity_of(p) for p, n in per_p.items()):
            continue
        key = (sum(min(n, need) for n in per_d.values()), pin_score + sum(s for *_, s in chosen))
        if best is None or key[0] > best[0] or (key[0] == best[0] and key[1] > best[1] + 1e-12):
            best = key
    return best


def random_instance(seed: int):
    rng = random.Random(seed)
    demands = [f"d{i}" for i in range(rng.randint(2, 4))]
    partners = [f"p{j}" for j in range(rng.randint(2, 3))]
    rows = [(d, p, round(rng.uniform(-0.2, 1.0), 3)) for d in demands for p in partners if rng.random() < 0.75][:12]
    lo = rng.randint(0, 2)
    pool = [(d, p) for d, p, _ in rows]
    excl = frozenset(rng.sample(pool, k=min(len(pool), rng.randint(0, 2))))
    free = [x for x in pool if x not in excl]
    c = AssignmentConstraints(
        capacity=rng.randint(1, 2),
        capacity_overrides={partners[0]: rng.randint(0, 2)},
        min_per_demand=lo,
        max_per_demand=rng.randint(max(lo, 1), 2),
        min_score=rng.choice([None, 0.3]),
        exclusions=excl,
        pins=tuple(rng.sample(free, k=1)) if free and rng.random() < 0.3 else (),
    )
    return demands, rows, c


@pytest.mark.parametrize("seed", range(60))
def test_exact_matches_brute_force_on_random_instances(seed):
    demands, rows, c = random_instance(seed)
    best = brute_force(rows, c, demands)
    records = [Demand(id=d, title=d, text="") for d in demands]
    try:
        results = [assign(rows, c, demands=records, method=m) for m in SOLVERS]
    except InfeasibleError:
        assert best is None
        return
    assert best is not None
    for r in results:
        check_feasible(r, rows, c)
    exact, milp, greedy = results
    for r in (exact, milp):
        assert r.min_slots_filled == best[0]
        assert r.objective == pytest.approx(best[1], abs=1e-5)
    assert (greedy.min_slots_filled, greedy.objective) <= (best[0], best[1] + 1e-9)
    assert exact.greedy_objective == pytest.approx(greedy.objective)


def test_solvers_take_plain_arrays():
    d = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 0, 1, 1, 2])
    s = np.array([0.9, 0.8, 0.85, 0.2, 0.75, 0.2])
    args = (d, p, s, np.ones(3, int), np.ones(3, int), np.ones(3, int))
    want = {(0, 1), (1, 0), (2, 2)}
    for solver in (solve_min_cost_flow, solve_milp):
        chosen = solver(*args)
        assert chosen.shape == (6,)
        assert {(int(d[a]), int(p[a])) for a in np.flatnonzero(chosen)} == want
    assert solve_greedy(*args).sum() == 2  # 0 takes p0, 2 takes p1: 1 is left out
    empty = solve_min_cost_flow(np.zeros(0), np.zeros(0), np.zeros(0), [1], [1], [1])
    assert empty.shape == (0,)


@pytest.mark.parametrize("method", EXACT)
def test_minimum_comes_before_affinity(method):
    # d1 could take both partners (1.7), but then d2 meets nobody: minimums first.
    rows = [("d1", "p1", 0.9), ("d1", "p2", 0.8), ("d2", "p1", 0.5)]
    c = AssignmentConstraints(capacity=1, min_per_demand=1, max_per_demand=2)
    r = assign(rows, c, method=method)
    assert pairs_of(r) == {("d1", "p2"), ("d2", "p1")}
    assert r.min_slots_filled == 2
    assert r.objective == pytest.approx(1.3)


def test_capacity_and_overrides():
    rows = [(f"d{i}", "p1", 0.9 - i / 100) for i in range(5)] + [(f"d{i}", "p2", 0.5) for i in range(5)]
    c = AssignmentConstraints(capacity=2, capacity_overrides={"p1": 3}, max_per_demand=1)
    r = assign(rows, c)
    per_p = {p: sum(x.partner_id == p for x in r.pairs) for p in ("p1", "p2")}
    assert per_p == {"p1": 3, "p2": 2}
    check_feasible(r, rows, c)
    # p1 is full and d3, d4 (at p2 or nothing) would rather meet it
    (bp,) = [b for b in r.binding_partners if b.partner_id == "p1"]
    assert bp.capacity == 3 and set(bp.wanted_by) == {"d3", "d4"}


def test_max_per_demand_and_soft_minimum():
    rows = [("d1", p, 0.5 + j / 10) for j, p in enumerate(["p1", "p2", "p3", "p4"])]
    rows.append(("d2", "p1", 0.4))
    c = AssignmentConstraints(capacity=5, min_per_demand=2, max_per_demand=3)
    r = assign(rows, c)
    assert pairs_of(r) == {("d1", "p4"), ("d1", "p3"), ("d1", "p2"), ("d2", "p1")}
    (short,) = r.shortfalls
    assert (short.demand_id, short.assigned, short.required) == ("d2", 1, 2)
    assert short.reason == "no_candidates"
    assert r.min_slots_filled == 3 and r.min_slots_required == 4


def test_min_score_drops_pairs_and_explains():
    rows = [("d1", "p1", 0.9), ("d2", "p1", 0.2), ("d2", "p2", 0.1)]
    c = AssignmentConstraints(min_per_demand=1, min_score=0.3)
    r = assign(rows, c)
    assert pairs_of(r) == {("d1", "p1")}
    assert r.dropped["below_min_score"] == 2
    (short,) = r.shortfalls
    assert short.demand_id == "d2" and short.reason == "below_min_score"
    assert "min_score 0.3" in short.detail


def test_exclusions_by_pair():
    c = AssignmentConstraints(capacity=1, max_per_demand=1, exclusions={("d1", "p2"), ("d3", "p3")})
    r = assign(ROWS, c)
    assert not pairs_of(r) & {("d1", "p2"), ("d3", "p3")}
    check_feasible(r, ROWS, c)
    assert r.dropped["excluded pair"] == 2
    assert r.objective == pytest.approx(0.9 + 0.1 + 0.75)  # d1-p1, d2-p3, d3-p2


def test_exclusion_rules_same_owner_contract_and_callable():
    demands = [
        Demand(id="d1", title="t", text="", enterprise="北方重工 "),
        Demand(id="d2", title="t", text="", enterprise="Acme"),
        Demand(id="d3", title="t", text="", enterprise="Beta", region="建华区"),
    ]
    partners = [
        Partner(id="p1", name="A", extra={"owner": "北方重工"}),
        Partner(id="p2", name="B"),
        Partner(id="p3", name="C", region="建华区"),
    ]
    rows = [(d.id, p.id, 0.5) for d in demands for p in partners]

    def same_region(demand: Demand, partner: Partner) -> bool:
        return bool(demand.region) and demand.region == partner.region

    c = AssignmentConstraints(
        capacity=3,
        min_per_demand=1,
        max_per_demand=3,
        exclusion_rules=(
            SameValueRule("enterprise", "owner"),
            PairListRule(frozenset({("acme", "p2")})),
            same_region,
        ),
    )
    r = assign(rows, c, demands=demands, partners=partners)
    banned = {("d1", "p1"), ("d2", "p2"), ("d3", "p3")}
    assert not pairs_of(r) & banned
    assert len(r.pairs) == 6
    assert r.dropped == {
        "below_min_score": 0,
        "excluded by same enterprise/owner": 1,
        "excluded by existing contract": 1,
        "excluded by same_region": 1,
    }
    with pytest.raises(InputError, match="exclusion rules need the records"):
        assign(rows, c)


def test_exclusion_shortfall_reason():
    rows = [("d1", "p1", 0.9), ("d2", "p1", 0.8)]
    c = AssignmentConstraints(min_per_demand=1, exclusions={("d2", "p1")})
    (short,) = assign(rows, c).shortfalls
    assert short.demand_id == "d2" and short.reason == "excluded"


def test_at_capacity_shortfall_names_the_binding_partner():
    rows = [("d1", "p1", 0.9), ("d2", "p1", 0.8), ("d3", "p2", 0.7)]
    c = AssignmentConstraints(capacity=1, min_per_demand=1, max_per_demand=1)
    r = assign(rows, c)
    (short,) = r.shortfalls
    assert short.demand_id == "d2" and short.reason == "at_capacity"
    assert short.full_partners == ("p1",)
    (bp,) = r.binding_partners
    assert bp.partner_id == "p1" and bp.blocks_minimum == ("d2",)
    text = "\n".join(r.explain())
    assert "partner p1 full at 1" in text and "at_capacity 1" in text


def test_pins_are_kept_even_below_min_score_and_off_the_table():
    rows = [("d1", "p1", 0.9), ("d2", "p1", 0.8), ("d2", "p2", 0.1)]
    c = AssignmentConstraints(
        capacity=1,
        min_per_demand=1,
        max_per_demand=2,
        min_score=0.5,
        pins=(("d2", "p2"), ("d1", "p3")),
    )
    r = assign(rows, c)
    got = {(x.demand_id, x.partner_id): x for x in r.pairs}
    assert got["d2", "p2"].pinned and got["d2", "p2"].score == pytest.approx(0.1)
    assert got["d1", "p3"].pinned and got["d1", "p3"].score == 0.0
    assert ("d1", "p1") in got  # p1 (capacity 1) goes to the best remaining use
    assert ("d2", "p1") not in got
    assert r.objective == pytest.approx(0.1 + 0.0 + 0.9)


def test_pins_use_up_capacity():
    rows = [("d1", "p1", 0.9), ("d2", "p1", 0.3)]
    c = AssignmentConstraints(capacity=1, max_per_demand=1, pins=(("d2", "p1"),))
    r = assign(rows, c)
    assert pairs_of(r) == {("d2", "p1")}
    assert r.shortfalls[0].demand_id == "d1" and r.shortfalls[0].reason == "at_capacity"


def test_infeasible_pins_over_capacity_are_explained():
    rows = [("d1", "p1", 0.9), ("d2", "p1", 0.8), ("d3", "p1", 0.7)]
    c = AssignmentConstraints(capacity=2, pins=(("d1", "p1"), ("d2", "p1"), ("d3", "p1")))
    with pytest.raises(InfeasibleError) as err:
        assign(rows, c)
    conflicts = err.value.conflicts
    assert {(x.demand_id, x.partner_id) for x in conflicts} == {("d1", "p1"), ("d2", "p1"), ("d3", "p1")}
    assert {x.constraint for x in conflicts} == {"partner_capacity"}
    assert "3 pins on partner p1, limit 2" in str(err.value)


def test_infeasible_pins_excluded_or_over_max():
    demands = [Demand(id="d1", title="", text="", enterprise="X")]
    partners = [Partner(id="p1", name="", extra={"owner": "x"}), Partner(id="p2", name="")]
    c = AssignmentConstraints(
        max_per_demand=1,
        exclusion_rules=(SameValueRule("enterprise", "owner", name="same owner"),),
        pins=(("d1", "p1"), ("d1", "p2")),
    )
    with pytest.raises(InfeasibleError) as err:
        assign([], c, demands=demands, partners=partners)
    kinds = {(x.partner_id, x.constraint) for x in err.value.conflicts}
    assert kinds == {("p1", "excluded"), ("p1", "max_per_demand"), ("p2", "max_per_demand")}
    assert "rule 'same owner'" in str(err.value)


def test_demands_without_candidates_are_reported():
    demands = [Demand(id="d1", title="", text=""), Demand(id="lonely", title="", text="")]
    r = assign([("d1", "p1", 0.5)], AssignmentConstraints(), demands=demands)
    assert r.demand_ids == ("d1", "lonely")
    assert [(s.demand_id, s.reason) for s in r.shortfalls] == [("lonely", "no_candidates")]


def test_bad_inputs_are_named():
    with pytest.raises(UnknownNameError, match="valid: greedy, milp, min_cost_flow"):
        assign(ROWS, method="hungarian")
    with pytest.raises(InputError, match="min_per_demand 3 exceeds max_per_demand 2"):
        AssignmentConstraints(min_per_demand=3, max_per_demand=2)
    with pytest.raises(InputError, match="capacity"):
        AssignmentConstraints(capacity=-1)
    with pytest.raises(InputError, match="row 2"):
        assign([("d1", "p1", 0.5), ("d1", "p2", float("nan"))])
    with pytest.raises(NotFoundError, match="ghost"):
        assign([("ghost", "p1", 0.5)], demands=[Demand(id="d1", title="", text="")])


def test_repeated_pair_keeps_best_score_and_inputs_untouched():
    rows = [("d1", "p1", 0.2), ("d1", "p1", 0.7)]
    before = list(rows)
    r = assign(rows)
    assert [x.score for x in r.pairs] == [0.7]
    assert rows == before
