"""Constrained batch assignment: which enterprise demand meets which partner at a conference.

Inputs are a sparse candidate table of ``(demand_id, partner_id, score)`` rows (each demand's
top-K partners) and :class:`AssignmentConstraints`. The result is one :class:`Assignment`.

Model. Each candidate pair is a 0/1 decision. Hard constraints: a partner takes at most its
capacity of meetings; a demand gets at most ``max_per_demand`` partners; pairs scoring below
``min_score`` and excluded pairs (by pair list or by rule) are never proposed; pinned pairs
are always kept (they count against capacity and the maximum, and they are kept even below
``min_score`` or outside the candidate table, where their score is 0.0).

``min_per_demand`` is a *soft* lower bound, because a demand may simply lack good candidates.
It is solved lexicographically and exactly: first maximise the number of filled minimum
slots, ``sum_d min(assigned_d, min_per_demand)``, then, among all assignments reaching that
number, maximise total affinity (the sum of scores). Only pairs with a negative score ever
lower the affinity, so they are used only when a minimum needs them.

Solvers (pure functions of plain arrays, see :func:`solve_min_cost_flow`):

- ``min_cost_flow`` (default): two OR-tools network solves. A max-flow over the minimum
  slots gives the best count ``F``; a min-cost flow then routes exactly ``F`` units through
  the minimum slots from a hub node plus any extra slots from the source (with a zero-cost
  bypass to the sink), at integer costs ``-round(score / max|score| * 1e7)``. Network
  matrices are totally unimodular, so the flow is the 0/1 optimum; scores are resolved to
  1e-7 of the largest score.
- ``milp``: the same two stages with ``scipy.optimize.milp`` (HiGHS); a cross-check.
- ``greedy``: the baseline. Pairs by descending score; a first pass fills minimums, a
  second pass fills up to the maximum (skipping negative scores).

Pins that break a hard constraint (over a partner's capacity, over ``max_per_demand``, or
excluded) make the problem infeasible: :class:`InfeasibleError` is raised and lists every
conflicting pin. Everything else is reported, never raised: shortfalls per demand with a
reason code, and the binding constraints (full partners that more demands wanted).
"""

from __future__ import annotations

import math
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
from numpy.typing import NDArray

from matcher.errors import InputError, MatcherError, NotFoundError, UnknownNameError
from matcher.records import Demand, Partner

ExclusionRule = Callable[[Demand, Partner], bool]
"""A predicate on a (demand, partner) pair: True excludes the pair. A ``name`` attribute,
if present, labels it in reports; otherwise the function's ``__name__`` does."""

SHORTFALL_REASONS: dict[str, str] = {
    "no_candidates": "fewer candidate partners than the minimum (none retrieved, or k too small)",
    "below_min_score": "too few candidates reach min_score",
    "excluded": "candidates above min_score are excluded (conflict of interest or contract)",
    "at_capacity": "eligible partners are at capacity with other demands",
}


class InfeasibleError(MatcherError):
    """Pinned pairs that cannot all be kept. ``conflicts`` lists every offending pin."""

    def __init__(self, conflicts: Sequence[PinConflict]) -> None:
        self.conflicts = tuple(conflicts)
        lines = [f"({c.demand_id}, {c.partner_id}) {c.constraint}: {c.detail}" for c in conflicts]
        super().__init__(f"{len(self.conflicts)} pinned pair(s) break hard constraints: " + "; ".join(lines))


# ---------------------------------------------------------------------------- rules


def record_value(record: Demand | Partner, name: str) -> str:
    """``record.<name>`` if it is a field of the record, else ``record.extra[name]``, else ""."""
    if name != "extra" and name in {f.name for f in fields(record)}:
        return str(getattr(record, name) or "")
    return str(record.extra.get(name, ""))


def _norm(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


@dataclass(frozen=True)
class SameValueRule:
    """Exclude a pair when a demand field equals a partner field, e.g. the enterprise filing
    the demand owns the partner: ``SameValueRule("enterprise", "owner")``.

    Fields are record attributes or keys of ``extra``; empty values never match; values are
    compared after NFKC normalisation, case folding and whitespace collapsing.
    """

    demand_field: str
    partner_field: str
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            label = f"same {self.demand_field}/{self.partner_field}"
            object.__setattr__(self, "name", label)

    def __call__(self, demand: Demand, partner: Partner) -> bool:
        value = _norm(record_value(demand, self.demand_field))
        return bool(value) and value == _norm(record_value(partner, self.partner_field))


@dataclass(frozen=True)
class PairListRule:
    """Exclude listed ``(demand value, partner_id)`` pairs, e.g. existing contracts keyed by
    enterprise name: ``PairListRule({("北方机床", "P7")})``. Values are normalised as in
    :class:`SameValueRule`."""

    pairs: frozenset[tuple[str, str]]
    demand_field: str = "enterprise"
    name: str = "existing contract"

    def __post_init__(self) -> None:
        normalised = frozenset((_norm(str(a)), str(b)) for a, b in self.pairs)
        object.__setattr__(self, "pairs", normalised)

    def __call__(self, demand: Demand, partner: Partner) -> bool:
        return (_norm(record_value(demand, self.demand_field)), partner.id) in self.pairs


def rule_name(rule: ExclusionRule) -> str:
    """The label of a rule in reports."""
    return str(getattr(rule, "name", "") or getattr(rule, "__name__", "") or type(rule).__name__)


# ---------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class AssignmentConstraints:
    """Constraints of one assignment run.

    capacity: meetings per partner unless ``capacity_overrides[partner_id]`` says otherwise.
    min_per_demand / max_per_demand: partners per demand (the minimum is soft, see module).
    min_score: pairs scoring below it are never proposed (None: no threshold).
    exclusions: ``(demand_id, partner_id)`` pairs never proposed.
    exclusion_rules: predicates on ``(Demand, Partner)``; they need the records passed in.
    pins: ``(demand_id, partner_id)`` pairs that must be kept.
    """

    capacity: int = 3
    capacity_overrides: Mapping[str, int] = field(default_factory=dict)
    min_per_demand: int = 1
    max_per_demand: int = 3
    min_score: float | None = None
    exclusions: frozenset[tuple[str, str]] = frozenset()
    exclusion_rules: tuple[ExclusionRule, ...] = ()
    pins: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in ("capacity", "min_per_demand", "max_per_demand"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise InputError(f"must be a whole number >= 0, got {value!r}", field=name)
        if self.min_per_demand > self.max_per_demand:
            raise InputError(
                f"min_per_demand {self.min_per_demand} exceeds max_per_demand {self.max_per_demand}",
                field="min_per_demand",
            )
        for pid, cap in self.capacity_overrides.items():
            if not isinstance(cap, int) or cap < 0:
                raise InputError(
                    f"capacity of partner '{pid}' must be >= 0, got {cap!r}",
                    field="capacity_overrides",
                )
        if self.min_score is not None and not math.isfinite(self.min_score):
            raise InputError(f"must be finite, got {self.min_score!r}", field="min_score")
        object.__setattr__(self, "capacity_overrides", dict(self.capacity_overrides))
        object.__setattr__(self, "exclusions", frozenset(tuple(x) for x in self.exclusions))
        object.__setattr__(self, "exclusion_rules", tuple(self.exclusion_rules))
        object.__setattr__(self, "pins", tuple(dict.fromkeys(tuple(x) for x in self.pins)))

    def capacity_of(self, partner_id: str) -> int:
        return self.capacity_overrides.get(partner_id, self.capacity)


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class AssignedPair:
    demand_id: str
    partner_id: str
    score: float
    pinned: bool = False


@dataclass(frozen=True)
class PinConflict:
    """A pin that breaks ``constraint`` ("excluded", "partner_capacity", "max_per_demand")."""

    demand_id: str
    partner_id: str
    constraint: str
    detail: str


@dataclass(frozen=True)
class Shortfall:
    """A demand left below ``min_per_demand``; ``reason`` is a key of SHORTFALL_REASONS.

    full_partners: eligible candidate partners it did not get because they were full."""

    demand_id: str
    assigned: int
    required: int
    reason: str
    detail: str
    full_partners: tuple[str, ...] = ()


@dataclass(frozen=True)
class BindingPartner:
    """A partner at capacity that other demands wanted (unassigned eligible pairs whose demand
    was below its maximum or scored it above one of its assigned partners). ``blocks_minimum``
    are the wanting demands left below their minimum: raising this capacity could help them."""

    partner_id: str
    capacity: int
    wanted_by: tuple[str, ...]
    blocks_minimum: tuple[str, ...]


@dataclass(frozen=True)
class Assignment:
    """The chosen meetings and why the rest did not happen.

    pairs: sorted by demand (input order) then score, best first. objective: sum of their
    scores. min_slots_filled / min_slots_required: the soft minimum, summed over demands.
    greedy_*: the greedy baseline on the same inputs (equal to the result when method is
    "greedy"). The exact result is lexicographically better: it never fills fewer minimum
    slots, and with as many it never has less affinity; when greedy fills fewer, greedy's
    affinity can be higher and ``gap`` negative. dropped: candidate pairs removed before
    solving, by cause. seconds: solver time.
    """

    method: str
    demand_ids: tuple[str, ...]
    pairs: tuple[AssignedPair, ...]
    objective: float
    min_slots_filled: int
    min_slots_required: int
    greedy_objective: float
    greedy_min_slots_filled: int
    shortfalls: tuple[Shortfall, ...]
    binding_partners: tuple[BindingPartner, ...]
    demands_at_max: tuple[str, ...]
    dropped: Mapping[str, int]
    seconds: float

    @property
    def gap(self) -> float:
        """Affinity the greedy baseline leaves on the table (objective - greedy_objective)."""
        return self.objective - self.greedy_objective

    @property
    def gap_pct(self) -> float:
        return 100.0 * self.gap / abs(self.objective) if self.objective else 0.0

    def by_demand(self) -> dict[str, list[AssignedPair]]:
        out: dict[str, list[AssignedPair]] = {d: [] for d in self.demand_ids}
        for pair in self.pairs:
            out[pair.demand_id].append(pair)
        return out

    def explain(self, limit: int = 10) -> list[str]:
        """Plain-language lines: the totals, what fell short and which constraints bind."""
        lines = [
            f"{len(self.pairs)} meetings for {len(self.demand_ids)} demands ({self.method}); "
            f"objective {self.objective:.4f}, greedy {self.greedy_objective:.4f}, "
            f"gap {self.gap:.4f} ({self.gap_pct:.2f}%)",
            f"minimum slots filled {self.min_slots_filled}/{self.min_slots_required} "
            f"(greedy {self.greedy_min_slots_filled})",
        ]
        if self.greedy_min_slots_filled < self.min_slots_filled:
            lines.append(
                f"greedy leaves {self.min_slots_filled - self.greedy_min_slots_filled} more "
                "minimum slots empty, so its affinity is not comparable (the gap may be < 0)"
            )
        if self.shortfalls:
            reasons = Counter(s.reason for s in self.shortfalls)
            lines.append(
                f"{len(self.shortfalls)} demands below the minimum: "
                + ", ".join(f"{r} {n}" for r, n in reasons.most_common())
            )
        for bp in self.binding_partners[:limit]:
            extra = f", keeps {len(bp.blocks_minimum)} below minimum" if bp.blocks_minimum else ""
            wanted = len(bp.wanted_by)
            lines.append(f"partner {bp.partner_id} full at {bp.capacity}, wanted by {wanted} more demands{extra}")
        if len(self.binding_partners) > limit:
            lines.append(f"... and {len(self.binding_partners) - limit} more full partners")
        if self.demands_at_max:
            lines.append(f"{len(self.demands_at_max)} demands at max_per_demand with free eligible partners left")
        if any(self.dropped.values()):
            lines.append("candidate pairs dropped: " + ", ".join(f"{k} {v}" for k, v in self.dropped.items() if v))
        return lines


# ---------------------------------------------------------------------------- solvers

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def solve_min_cost_flow(
    d: IntArray, p: IntArray, s: FloatArray, dmin: IntArray, dmax: IntArray, pcap: IntArray
) -> BoolArray:
    """Exact lexicographic optimum by network flow.

    d, p: (m,) demand and partner index of each candidate arc; s: (m,) scores;
    dmin, dmax: (n_demands,) soft minimum and maximum; pcap: (n_partners,) capacity.
    Returns a (m,) bool mask of chosen arcs.
    """
    from ortools.graph.python import max_flow, min_cost_flow

    d, p, s, dmin, dmax, pcap = _arrays(d, p, s, dmin, dmax, pcap)
    m, nd, npart = len(d), len(dmin), len(pcap)
    if m == 0:
        return np.zeros(0, dtype=bool)
    dmin = np.minimum(dmin, dmax)
    src, hub, sink = 0, 1, 2
    dnode = 3 + np.arange(nd, dtype=np.int64)
    pnode = 3 + nd + np.arange(npart, dtype=np.int64)

    # Stage 1: the largest number of minimum slots that can be filled.
    mf = max_flow.SimpleMaxFlow()
    mf.add_arcs_with_capacity(
        np.concatenate([np.full(nd, src), dnode[d], pnode]),
        np.concatenate([dnode, pnode[p], np.full(npart, sink)]),
        np.concatenate([dmin, np.ones(m, dtype=np.int64), pcap]),
    )
    if mf.solve(src, sink) != mf.OPTIMAL:
        raise MatcherError("max-flow stage of the assignment failed")
    filled = int(mf.optimal_flow())

    # Stage 2: exactly `filled` units through minimum slots, best affinity overall.
    extra = dmax - dmin
    n_extra = int(extra.sum())
    tails = np.concatenate([np.full(nd, hub), np.full(nd, src), dnode[d], pnode, [src]])
    heads = np.concatenate([dnode, dnode, pnode[p], np.full(npart, sink), [sink]])
    caps = np.concatenate([dmin, extra, np.ones(m, dtype=np.int64), pcap, [n_extra]])
    top = float(np.abs(s).max()) or 1.0
    for resolution in (1e7, 1e5, 1e3):
        costs = np.zeros(len(tails), dtype=np.int64)
        costs[2 * nd : 2 * nd + m] = -np.rint(s / top * resolution).astype(np.int64)
        mcf = min_cost_flow.SimpleMinCostFlow()
        arcs = mcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
        mcf.set_nodes_supplies(np.array([src, hub, sink]), np.array([n_extra, filled, -(n_extra + filled)]))
        status = mcf.solve()
        if status == mcf.OPTIMAL:
            return mcf.flows(arcs[2 * nd : 2 * nd + m]) > 0
        if status != mcf.BAD_COST_RANGE:
            break
    raise MatcherError(f"min-cost-flow stage of the assignment failed: {status}")


def solve_milp(d: IntArray, p: IntArray, s: FloatArray, dmin: IntArray, dmax: IntArray, pcap: IntArray) -> BoolArray:
    """The same lexicographic optimum with scipy's MILP (HiGHS), in two stages. Same shapes
    as :func:`solve_min_cost_flow`."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_matrix, hstack, identity, vstack

    d, p, s, dmin, dmax, pcap = _arrays(d, p, s, dmin, dmax, pcap)
    m, nd, npart = len(d), len(dmin), len(pcap)
    if m == 0:
        return np.zeros(0, dtype=bool)
    dmin = np.minimum(dmin, dmax)
    cols = np.arange(m)
    a_d = csr_matrix((np.ones(m), (d, cols)), shape=(nd, m))
    a_p = csr_matrix((np.ones(m), (p, cols)), shape=(npart, m))
    # variables: x (m,) in {0,1}, y (nd,) in [0, dmin] = filled minimum slots of each demand
    a = vstack(
        [
            hstack([a_d, csr_matrix((nd, nd))]),
            hstack([a_p, csr_matrix((npart, nd))]),
            hstack([-a_d, identity(nd)]),
        ]
    ).tocsr()
    cons = [LinearConstraint(a, -np.inf, np.concatenate([dmax, pcap, np.zeros(nd)]))]
    bounds = Bounds(np.zeros(m + nd), np.concatenate([np.ones(m), dmin]))
    integrality = np.concatenate([np.ones(m), np.zeros(nd)])

    c1 = np.concatenate([np.zeros(m), -np.ones(nd)])
    res = milp(c1, constraints=cons, bounds=bounds, integrality=integrality)
    if not res.success:
        raise MatcherError(f"MILP stage 1 failed: {res.message}")
    filled = round(-res.fun)
    cons.append(LinearConstraint(np.concatenate([np.zeros(m), np.ones(nd)]), filled - 0.5))
    res = milp(np.concatenate([-s, np.zeros(nd)]), constraints=cons, bounds=bounds, integrality=integrality)
    if not res.success:
        raise MatcherError(f"MILP stage 2 failed: {res.message}")
    return res.x[:m] > 0.5


def solve_greedy(d: IntArray, p: IntArray, s: FloatArray, dmin: IntArray, dmax: IntArray, pcap: IntArray) -> BoolArray:
    """Baseline: pairs by descending score (ties by demand, partner index); pass 1 fills up
    to each minimum, pass 2 up to each maximum with non-negative scores. Same shapes as
    :func:`solve_min_cost_flow`."""
    d, p, s, dmin, dmax, pcap = _arrays(d, p, s, dmin, dmax, pcap)
    chosen = np.zeros(len(d), dtype=bool)
    count = np.zeros(len(dmin), dtype=np.int64)
    left = pcap.copy()
    order = np.lexsort((p, d, -s)).tolist()
    dl, pl, sl = d.tolist(), p.tolist(), s.tolist()
    for need, allow_negative in ((np.minimum(dmin, dmax).tolist(), True), (dmax.tolist(), False)):
        for a in order:
            i, j = dl[a], pl[a]
            if not chosen[a] and count[i] < need[i] and left[j] > 0 and (allow_negative or sl[a] >= 0):
                chosen[a] = True
                count[i] += 1
                left[j] -= 1
    return chosen


SOLVERS: dict[str, Callable[..., BoolArray]] = {
    "min_cost_flow": solve_min_cost_flow,
    "milp": solve_milp,
    "greedy": solve_greedy,
}


def _arrays(*arrays: Sequence[float] | np.ndarray) -> list[np.ndarray]:
    d, p, s, dmin, dmax, pcap = arrays
    ints = [np.asarray(x, dtype=np.int64).reshape(-1) for x in (d, p, dmin, dmax, pcap)]
    return [ints[0], ints[1], np.asarray(s, dtype=np.float64).reshape(-1), *ints[2:]]


# ---------------------------------------------------------------------------- driver


@dataclass
class _Problem:
    """Candidate arcs after filtering and pins; per-demand counts for the reason codes."""

    c: AssignmentConstraints
    demand_ids: list[str]
    partner_ids: list[str]
    pins: list[AssignedPair]
    d: IntArray
    p: IntArray
    s: FloatArray
    dmin: IntArray
    dmax: IntArray
    pcap: IntArray  # capacity left after pins
    cap: IntArray  # full capacity
    n_total: IntArray  # candidate pairs per demand, pinned ones excluded
    n_score: IntArray  # ... reaching min_score
    dropped: dict[str, int]


def assign(
    candidates: Iterable[tuple[str, str, float]],
    constraints: AssignmentConstraints | None = None,
    *,
    demands: Iterable[Demand] | None = None,
    partners: Iterable[Partner] | None = None,
    method: str = "min_cost_flow",
) -> Assignment:
    """Choose meetings maximising affinity under ``constraints`` (see the module docstring).

    candidates: rows ``(demand_id, partner_id, score)``; a repeated pair keeps its best score.
    demands / partners: the records; needed for exclusion rules. When ``demands`` is given
    it is the full list of demands (those without candidates appear as shortfalls).
    method: one of SOLVERS. Raises InfeasibleError when pins conflict with hard constraints.
    """
    if method not in SOLVERS:
        raise UnknownNameError("assignment method", method, list(SOLVERS))
    pb = _prepare(candidates, constraints or AssignmentConstraints(), demands, partners)
    args = (pb.d, pb.p, pb.s, pb.dmin, pb.dmax, pb.pcap)
    t0 = time.perf_counter()
    chosen = SOLVERS[method](*args)
    seconds = time.perf_counter() - t0
    greedy = chosen if method == "greedy" else solve_greedy(*args)
    return _result(pb, chosen, greedy, method, seconds)


def greedy_assign(
    candidates: Iterable[tuple[str, str, float]],
    constraints: AssignmentConstraints | None = None,
    *,
    demands: Iterable[Demand] | None = None,
    partners: Iterable[Partner] | None = None,
) -> Assignment:
    """The greedy baseline as an Assignment (same inputs and checks as :func:`assign`)."""
    return assign(candidates, constraints, demands=demands, partners=partners, method="greedy")


def _prepare(
    candidates: Iterable[tuple[str, str, float]],
    c: AssignmentConstraints,
    demands: Iterable[Demand] | None,
    partners: Iterable[Partner] | None,
) -> _Problem:
    best: dict[tuple[str, str], float] = {}
    for row, item in enumerate(candidates, start=1):
        try:
            did, pid, raw = item
            score = float(raw)
        except (TypeError, ValueError) as exc:
            raise InputError(f"expected (demand_id, partner_id, score), got {item!r}", row=row) from exc
        if not math.isfinite(score):
            raise InputError(f"score {raw!r} is not a finite number", row=row, field="score")
        key = (str(did), str(pid))
        best[key] = max(score, best.get(key, -math.inf))

    dmap = _by_id(demands, "demand")
    pmap = _by_id(partners, "partner")
    if c.exclusion_rules and (dmap is None or pmap is None):
        raise InputError("exclusion rules need the records: pass demands= and partners=", field="exclusion_rules")
    seen_d = [d for d, _ in best] + [d for d, _ in c.pins]
    seen_p = [p for _, p in best] + [p for _, p in c.pins]
    demand_ids = list(dmap) if dmap is not None else list(dict.fromkeys(seen_d))
    partner_ids = list(dict.fromkeys(([*pmap] if pmap is not None else []) + seen_p))
    for kind, known, seen in (("demand", dmap, seen_d), ("partner", pmap, seen_p)):
        if known is not None and (missing := sorted(set(seen) - set(known))):
            raise NotFoundError(f"unknown {kind} id(s) in candidates or pins: {_few(missing)}")
    di = {d: i for i, d in enumerate(demand_ids)}
    pi = {p: j for j, p in enumerate(partner_ids)}

    def excluded_by(did: str, pid: str) -> str | None:
        if (did, pid) in c.exclusions:
            return "pair"
        for rule in c.exclusion_rules:
            if rule(dmap[did], pmap[pid]):  # type: ignore[index]
                return rule_name(rule)
        return None

    cap = np.array([c.capacity_of(p) for p in partner_ids], dtype=np.int64)
    pins = [AssignedPair(d, p, best.get((d, p), 0.0), True) for d, p in c.pins]
    _check_pins(pins, c, cap, pi, excluded_by)

    nd = len(demand_ids)
    pins_d = np.bincount([di[x.demand_id] for x in pins], minlength=nd).astype(np.int64)
    pins_p = np.bincount([pi[x.partner_id] for x in pins], minlength=len(pi)).astype(np.int64)
    n_total = np.zeros(nd, dtype=np.int64)
    n_score = np.zeros(nd, dtype=np.int64)
    dropped: dict[str, int] = {"below_min_score": 0}
    pinned = set(c.pins)
    arcs: list[tuple[int, int, float]] = []
    for (did, pid), score in best.items():
        if (did, pid) in pinned:
            continue
        i = di[did]
        n_total[i] += 1
        if c.min_score is not None and score < c.min_score:
            dropped["below_min_score"] += 1
            continue
        n_score[i] += 1
        if (why := excluded_by(did, pid)) is not None:
            key = "excluded pair" if why == "pair" else f"excluded by {why}"
            dropped[key] = dropped.get(key, 0) + 1
            continue
        arcs.append((i, pi[pid], score))
    arr = np.array(arcs, dtype=np.float64).reshape(-1, 3)
    return _Problem(
        c=c,
        demand_ids=demand_ids,
        partner_ids=partner_ids,
        pins=pins,
        d=arr[:, 0].astype(np.int64),
        p=arr[:, 1].astype(np.int64),
        s=arr[:, 2].copy(),
        dmin=np.maximum(c.min_per_demand - pins_d, 0),
        dmax=c.max_per_demand - pins_d,
        pcap=cap - pins_p,
        cap=cap,
        n_total=n_total,
        n_score=n_score,
        dropped=dropped,
    )


def _few(items: Sequence[str], n: int = 10) -> str:
    return ", ".join(items[:n]) + (f" ... ({len(items)} in all)" if len(items) > n else "")


def _by_id(records: Iterable[Demand] | Iterable[Partner] | None, kind: str) -> dict | None:
    if records is None:
        return None
    out: dict = {}
    for r in records:
        if r.id in out:
            raise InputError(f"duplicate {kind} id '{r.id}'", field="id")
        out[r.id] = r
    return out


def _check_pins(
    pins: list[AssignedPair],
    c: AssignmentConstraints,
    cap: IntArray,
    pi: dict[str, int],
    excluded_by: Callable[[str, str], str | None],
) -> None:
    conflicts: list[PinConflict] = []
    for x in pins:
        if (why := excluded_by(x.demand_id, x.partner_id)) is not None:
            what = "excluded pair list" if why == "pair" else f"rule '{why}'"
            conflicts.append(
                PinConflict(x.demand_id, x.partner_id, "excluded", f"pinned pair is excluded by the {what}")
            )
    for key, limit_of, constraint in (
        ("partner_id", lambda k: int(cap[pi[k]]), "partner_capacity"),
        ("demand_id", lambda k: c.max_per_demand, "max_per_demand"),
    ):
        counts = Counter(getattr(x, key) for x in pins)
        for k, n in counts.items():
            if n > (limit := limit_of(k)):
                conflicts.extend(
                    PinConflict(
                        x.demand_id,
                        x.partner_id,
                        constraint,
                        f"{n} pins on {key.split('_')[0]} {k}, limit {limit}",
                    )
                    for x in pins
                    if getattr(x, key) == k
                )
    if conflicts:
        raise InfeasibleError(conflicts)


def _result(pb: _Problem, chosen: BoolArray, greedy: BoolArray, method: str, seconds: float) -> Assignment:
    c, nd = pb.c, len(pb.demand_ids)
    need = min(c.min_per_demand, c.max_per_demand)
    pin_score = sum(x.score for x in pb.pins)
    pins_d = c.max_per_demand - pb.dmax  # pins per demand
    count = pins_d + np.bincount(pb.d[chosen], minlength=nd)
    g_count = pins_d + np.bincount(pb.d[greedy], minlength=nd)
    load = pb.cap - pb.pcap + np.bincount(pb.p[chosen], minlength=len(pb.partner_ids))
    full = load >= pb.cap

    pairs = pb.pins + [
        AssignedPair(pb.demand_ids[i], pb.partner_ids[j], float(sc))
        for i, j, sc in zip(pb.d[chosen], pb.p[chosen], pb.s[chosen], strict=True)
    ]
    order = {d: i for i, d in enumerate(pb.demand_ids)}
    pairs.sort(key=lambda x: (order[x.demand_id], -x.score, x.partner_id))

    worst = np.full(nd, np.inf)
    np.minimum.at(worst, pb.d[chosen], pb.s[chosen])
    n_elig = np.bincount(pb.d, minlength=nd)
    open_arcs = np.flatnonzero(~chosen)
    wanted: dict[int, list[tuple[float, int]]] = {}
    full_of: dict[int, list[str]] = {}
    at_max: set[int] = set()
    for a in open_arcs[np.argsort(-pb.s[open_arcs], kind="stable")]:
        i, j = int(pb.d[a]), int(pb.p[a])
        if not full[j]:
            if count[i] >= c.max_per_demand:
                at_max.add(i)
            continue
        if count[i] < c.max_per_demand or pb.s[a] > worst[i]:
            wanted.setdefault(j, []).append((float(pb.s[a]), i))
        if count[i] < need:
            full_of.setdefault(i, []).append(pb.partner_ids[j])

    shortfalls = []
    for i in np.flatnonzero(count < need):
        have = int(pins_d[i])
        reason = (
            "no_candidates"
            if have + pb.n_total[i] < need
            else "below_min_score"
            if have + pb.n_score[i] < need
            else "excluded"
            if have + n_elig[i] < need
            else "at_capacity"
        )
        ms = "" if c.min_score is None else f" >= min_score {c.min_score:g}"
        detail = (
            f"{pb.n_total[i] + have} candidates, {pb.n_score[i] + have}{ms}, "
            f"{n_elig[i] + have} not excluded, {int(count[i])} assigned of {need}"
        )
        fulls = tuple(dict.fromkeys(full_of.get(int(i), [])))
        if fulls:
            detail += f"; full partners: {_few(fulls, 5)}"
        shortfalls.append(Shortfall(pb.demand_ids[i], int(count[i]), need, reason, detail, fulls))
    binding = [
        BindingPartner(
            pb.partner_ids[j],
            int(pb.cap[j]),
            tuple(dict.fromkeys(pb.demand_ids[i] for _, i in ws)),
            tuple(dict.fromkeys(pb.demand_ids[i] for _, i in ws if count[i] < need)),
        )
        for j, ws in wanted.items()
    ]
    binding.sort(key=lambda b: (-len(b.blocks_minimum), -len(b.wanted_by), b.partner_id))
    return Assignment(
        method=method,
        demand_ids=tuple(pb.demand_ids),
        pairs=tuple(pairs),
        objective=float(pin_score + pb.s[chosen].sum()),
        min_slots_filled=int(np.minimum(count, need).sum()),
        min_slots_required=need * nd,
        greedy_objective=float(pin_score + pb.s[greedy].sum()),
        greedy_min_slots_filled=int(np.minimum(g_count, need).sum()),
        shortfalls=tuple(shortfalls),
        binding_partners=tuple(binding),
        demands_at_max=tuple(pb.demand_ids[i] for i in sorted(at_max)),
        dropped=dict(pb.dropped),
        seconds=seconds,
    )
