"""The assignment solvers: pure functions of plain arrays.

One candidate arc per (demand, partner) pair: ``d``, ``p`` (indexes), ``s`` (score). Per demand
``dmin`` (soft) and ``dmax``; per partner ``pcap``. :class:`Extras` carries the optional
constraints: partner minimum loads (soft), organisation caps over groups of partners, caps per
(demand group, partner) such as a county's enterprises with one partner, local / foreign
requirements per demand (soft) and the max-min fairness option.

The optimum is lexicographic, the same for every exact method:

1. ``fair``: the largest threshold ``t`` such that every demand that wants a meeting and has an
   eligible candidate gets at least one partner scoring >= t (max-min of each demand's best).
2. the number of filled demand minimum slots, ``sum_d min(assigned_d, dmin_d)``;
3. the number of demands whose local / foreign wish is met (where a candidate qualifies);
4. the number of filled partner minimum slots, ``sum_p min(load_p, pmin_p)``;
5. total affinity, the sum of scores: exactly, whatever the range of the scores.

``min_cost_flow`` solves each level as a network flow (OR-tools), fixing the earlier levels by
node supplies, and makes the last level exact by an exact-arithmetic check of the optimality
conditions (see :func:`_exact_polish`). Local / foreign wishes, and partner minimums together
with organisation caps, leave the network structure: those runs go to ``milp``, which solves the
same levels with HiGHS at a zero relative gap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from matcher.errors import MatcherError

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
INT64_BUDGET = 2**62


@dataclass
class Extras:
    """Optional constraints of one solve (all indexes refer to the solver's arrays).

    pmin: (n_partners,) soft minimum load per partner.
    org: (n_partners,) organisation index of each partner, -1 for none; org_cap: meetings left
    per organisation. group: (n_demands,) demand group (county) index, -1 for none;
    group_cap: meetings one partner may have with one group; group_used: {(g, j): n} already used
    (pins). want_local / want_foreign: (n_demands,) the demand wishes for one such partner;
    local: (m,) the arc's partner is local to its demand. fair: apply the max-min level;
    fair_done: (n_demands,) demands whose fairness is already decided by a pin (their best
    pinned score is in ``pinned_best``).
    """

    pmin: IntArray | None = None
    org: IntArray | None = None
    org_cap: IntArray | None = None
    group: IntArray | None = None
    group_cap: int | None = None
    group_used: dict[tuple[int, int], int] = field(default_factory=dict)
    local: BoolArray | None = None
    foreign: BoolArray | None = None
    want_local: BoolArray | None = None
    want_foreign: BoolArray | None = None
    fair: bool = False
    pinned_best: FloatArray | None = None

    def needs_milp(self) -> bool:
        wishes = any(w is not None and bool(np.any(w)) for w in (self.want_local, self.want_foreign))
        return wishes or (self.has_pmin() and self.org is not None)

    def has_pmin(self) -> bool:
        return self.pmin is not None and bool(np.any(self.pmin > 0))


@dataclass
class Solution:
    """chosen: (m,) bool mask; fair_threshold: level 1's t (None without fairness)."""

    chosen: BoolArray
    fair_threshold: float | None = None


def arrays(*xs: Sequence[float] | np.ndarray) -> list[np.ndarray]:
    d, p, s, dmin, dmax, pcap = xs
    ints = [np.asarray(x, dtype=np.int64).reshape(-1) for x in (d, p, dmin, dmax, pcap)]
    return [ints[0], ints[1], np.asarray(s, dtype=np.float64).reshape(-1), *ints[2:]]


# ---------------------------------------------------------------------------- the network


class _Net:
    """Arc lists of one flow network; nodes are numbered as they are made."""

    def __init__(self) -> None:
        self.n = 0
        self.tails: list[np.ndarray] = []
        self.heads: list[np.ndarray] = []
        self.caps: list[np.ndarray] = []
        self.tags: dict[str, slice] = {}
        self.m = 0

    def nodes(self, k: int) -> IntArray:
        out = np.arange(self.n, self.n + k, dtype=np.int64)
        self.n += k
        return out

    def arcs(self, tag: str, tails, heads, caps) -> None:
        t, h, c = (np.atleast_1d(x).ravel() for x in np.broadcast_arrays(
            np.asarray(tails, dtype=np.int64), np.asarray(heads, dtype=np.int64), np.asarray(caps, dtype=np.int64)))
        k = len(t)
        self.tails.append(t)
        self.heads.append(h)
        self.caps.append(c)
        self.tags[tag] = slice(self.m, self.m + k)
        self.m += k

    def arrays(self) -> tuple[IntArray, IntArray, IntArray]:
        cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, dtype=np.int64)  # noqa: E731
        return cat(self.tails), cat(self.heads), cat(self.caps)


@dataclass
class _Model:
    """The network of a solve; ``levels`` says which soft levels exist."""

    net: _Net
    src: int
    sink: int
    hub_min: int
    sink_pmin: int
    hub_fair: int
    n_fair: int
    src_supply: int


def _build(d, p, s, dmin, dmax, pcap, ex: Extras, threshold: float | None, needy: BoolArray | None) -> _Model:
    nd, npart, m = len(dmin), len(pcap), len(d)
    net = _Net()
    src, sink, hub_min, sink_pmin, hub_fair = (int(x) for x in net.nodes(5))
    dn = net.nodes(nd)
    fair_arc = np.zeros(m, dtype=bool)
    n_fair = 0
    dmin_in, extra_in = dmin.copy(), dmax - dmin
    if threshold is not None and needy is not None:
        n_fair = int(needy.sum())
        dhi = net.nodes(nd)
        fair_arc = needy[d] & (s >= threshold)
        # the fair unit is one of the demand's meetings: it fills a minimum slot when there is one
        dmin_in = np.where(needy & (dmin > 0), dmin - 1, dmin)
        extra_in = np.where(needy & (dmin == 0), extra_in - 1, extra_in)
    net.arcs("min", hub_min, dn, dmin_in)
    net.arcs("extra", src, dn, extra_in)
    if n_fair:
        net.arcs("fair", hub_fair, dhi[needy], 1)
        net.arcs("to_hi", dn[needy], dhi[needy], int(dmax.max(initial=0)))
    start = np.where(fair_arc, dhi[d] if n_fair else dn[d], dn[d])
    pn = net.nodes(npart)
    if ex.group is not None and ex.group_cap is not None and np.any(ex.group[d] >= 0):
        grouped = ex.group[d] >= 0
        keys = ex.group[d][grouped] * npart + p[grouped]
        uniq, inv = np.unique(keys, return_inverse=True)
        gn = net.nodes(len(uniq))
        target = pn[p].copy()
        target[grouped] = gn[inv]
        left = np.full(len(uniq), ex.group_cap, dtype=np.int64)
        if ex.group_used:
            at = np.searchsorted(uniq, [g * npart + j for g, j in ex.group_used])
            for pos, ((g, j), n) in zip(at.tolist(), ex.group_used.items(), strict=True):
                if pos < len(uniq) and uniq[pos] == g * npart + j:
                    left[pos] -= n
            left = np.maximum(left, 0)
        net.arcs("pair", start, target, 1)
        net.arcs("group", gn, pn[uniq % npart], left)
    else:
        net.arcs("pair", start, pn[p], 1)
    pmin = ex.pmin if ex.has_pmin() else None
    out = pn
    if ex.org is not None and ex.org_cap is not None:
        on = net.nodes(len(ex.org_cap))
        has = ex.org >= 0
        net.arcs("p_org", pn[has], on[ex.org[has]], pcap[has])
        net.arcs("org", on, sink, ex.org_cap)
        net.arcs("p_out", pn[~has], sink, pcap[~has])
        out = None
    if out is not None:
        if pmin is not None:
            low = np.minimum(pmin, pcap)
            net.arcs("p_min", pn, sink_pmin, low)
            net.arcs("p_out", pn, sink, pcap - low)
        else:
            net.arcs("p_out", pn, sink, pcap)
    src_supply = int(dmax.sum()) + n_fair
    return _Model(net, src, sink, hub_min, sink_pmin, hub_fair, n_fair, src_supply)


def _solve_level(model: _Model, costs_of: Callable[[_Net], np.ndarray], fixed_min: int | None,
                 fixed_pmin: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """One min-cost flow. fixed_*: None maximises that level (arc cost -1), else fixes it."""
    from ortools.graph.python import min_cost_flow

    net = model.net
    tails, heads, caps = net.arrays()
    costs = costs_of(net)
    big = model.src_supply
    extra_t, extra_h, extra_c, extra_w = [model.src], [model.sink], [big], [0]  # bypass
    supply = {model.src: big, model.hub_fair: model.n_fair, model.hub_min: 0, model.sink_pmin: 0}
    if fixed_min is None:
        extra_t.append(model.src), extra_h.append(model.hub_min), extra_c.append(big), extra_w.append(-1)
    else:
        supply[model.hub_min] = fixed_min
    if fixed_pmin is None:
        extra_t.append(model.sink_pmin), extra_h.append(model.sink), extra_c.append(big)
        extra_w.append(-1 if fixed_min is not None else 0)
    else:
        supply[model.sink_pmin] = -fixed_pmin
    supply[model.sink] = -sum(supply.values())
    tails = np.concatenate([tails, extra_t]).astype(np.int64)
    heads = np.concatenate([heads, extra_h]).astype(np.int64)
    caps = np.concatenate([caps, extra_c]).astype(np.int64)
    costs = np.concatenate([costs, extra_w]).astype(np.int64)
    mcf = min_cost_flow.SimpleMinCostFlow()
    arcs = mcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    nodes = np.array(list(supply), dtype=np.int64)
    mcf.set_nodes_supplies(nodes, np.array([supply[int(k)] for k in nodes], dtype=np.int64))
    status = mcf.solve()
    if status != mcf.OPTIMAL:
        raise MatcherError(f"min-cost-flow stage of the assignment failed: {status}")
    flows = mcf.flows(arcs).astype(np.int64)
    return tails, heads, caps, costs, flows, len(extra_t)


def _integer_costs(s: FloatArray, n_nodes: int) -> tuple[IntArray, int]:
    """Costs ``-round(s * 2**k)`` with the largest k that OR-tools accepts (its cost scaling
    multiplies costs by the node count). A power of two scales exactly."""
    top = float(np.abs(s).max(initial=0.0)) or 1.0
    k = math.floor(math.log2(INT64_BUDGET / ((n_nodes + 2) * 4 * top)))
    return -np.rint(np.ldexp(s, k)).astype(np.int64), k


def solve_min_cost_flow(d, p, s, dmin, dmax, pcap, extras: Extras | None = None) -> BoolArray:
    """Exact lexicographic optimum by network flow (see the module docstring). d, p: (m,) arc
    demand and partner indexes; s: (m,) scores; dmin, dmax: (n_demands,); pcap: (n_partners,).
    Returns the (m,) bool mask of chosen arcs."""
    return solve_flow(d, p, s, dmin, dmax, pcap, extras).chosen


def solve_flow(d, p, s, dmin, dmax, pcap, extras: Extras | None = None) -> Solution:
    ex = extras or Extras()
    d, p, s, dmin, dmax, pcap = arrays(d, p, s, dmin, dmax, pcap)
    dmin = np.minimum(dmin, dmax)
    if len(d) == 0:
        return Solution(np.zeros(0, dtype=bool))
    if ex.needs_milp():
        return solve_milp_full(d, p, s, dmin, dmax, pcap, ex)
    threshold, needy = fair_threshold(d, p, s, dmax, pcap, ex) if ex.fair else (None, None)
    model = _build(d, p, s, dmin, dmax, pcap, ex, threshold, needy)
    zero = lambda net: np.zeros(net.m, dtype=np.int64)  # noqa: E731
    filled = 0
    if np.any(dmin > 0):
        *_, flows, _ = _solve_level(model, zero, None, None)
        filled = int(flows[model.net.tags["min"]].sum())
    pfilled = 0
    if ex.has_pmin():
        *_, flows, _ = _solve_level(model, zero, filled, None)
        pfilled = int(flows[model.net.tags["p_min"]].sum())
    pair = model.net.tags["pair"]
    icost, k = _integer_costs(s, model.net.n)

    def affinity(net: _Net) -> np.ndarray:
        c = np.zeros(net.m, dtype=np.int64)
        c[pair] = icost
        return c

    tails, heads, caps, costs, flows, _ = _solve_level(model, affinity, filled, pfilled)
    flows = _exact_polish(model.net.n, tails, heads, caps, costs, flows, s, pair, k)
    return Solution(flows[pair] > 0, threshold)


def fair_threshold(d, p, s, dmax, pcap, ex: Extras) -> tuple[float | None, BoolArray]:
    """Level 1: the largest t such that every demand that wants a meeting (dmax > 0), has a
    candidate and no pin at or above t gets one partner scoring >= t. Bisection over the
    distinct scores, each step a max-flow on the same network (caps, groups, organisations)."""
    from ortools.graph.python import max_flow

    nd = len(dmax)
    has = np.bincount(d, minlength=nd) > 0
    pinned = ex.pinned_best if ex.pinned_best is not None else np.full(nd, -np.inf)
    cand = np.unique(s)
    levels = np.unique(np.concatenate([cand, pinned[np.isfinite(pinned)]]))

    def needy_at(t: float) -> BoolArray:
        return (dmax > 0) & has & (pinned < t)

    model = _build(d, p, s, np.zeros(nd, dtype=np.int64), np.minimum(dmax, 1), pcap,
                   Extras(org=ex.org, org_cap=ex.org_cap, group=ex.group, group_cap=ex.group_cap,
                          group_used=ex.group_used), None, None)
    tails, heads, caps0 = model.net.arrays()
    pair, extra = model.net.tags["pair"], model.net.tags["extra"]

    def feasible(t: float) -> bool:
        needy = needy_at(t)
        if not needy.any():
            return True
        caps = caps0.copy()
        caps[extra] = needy
        caps[pair] = (s >= t) & needy[d]
        mf = max_flow.SimpleMaxFlow()
        mf.add_arcs_with_capacity(tails, heads, caps)
        if mf.solve(model.src, model.sink) != mf.OPTIMAL:
            raise MatcherError("max-flow stage of the fairness level failed")
        return int(mf.optimal_flow()) == int(needy.sum())

    lo, hi = 0, len(levels) - 1  # levels[lo] is always feasible: every needy demand has an arc >= min
    if not len(levels) or not feasible(levels[0]):
        return None, np.zeros(nd, dtype=bool)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if feasible(levels[mid]):
            lo = mid
        else:
            hi = mid - 1
    t = float(levels[lo])
    return t, needy_at(t)


# ---------------------------------------------------------------------------- exactness


def _exact_polish(n_nodes, tails, heads, caps, costs, flows, s, pair: slice, k: int) -> np.ndarray:
    """Make a flow that is optimal for the rounded costs optimal for the exact ones.

    Potentials from a Bellman-Ford on the rounded residual graph certify the rounded optimum.
    The exact reduced cost of a residual arc is ``r * 2**-k + e``, where r >= 0 is its rounded
    reduced cost (an integer) and |e| <= 2**-(k+1) its rounding error; it can only be negative
    when r == 0 and e < 0. When no such arc exists the flow is exactly optimal (the usual case).
    Otherwise negative cycles are cancelled in exact rational arithmetic until none is left.
    """
    err = np.zeros(len(tails))
    # rounding error of each arc's cost in units of 2**-k: (-s * 2**k) - cost, exact in floats
    err[pair] = -np.ldexp(s, k) - costs[pair]
    fwd = flows < caps
    bwd = flows > 0
    rt = np.concatenate([tails[fwd], heads[bwd]])
    rh = np.concatenate([heads[fwd], tails[bwd]])
    rc = np.concatenate([costs[fwd], -costs[bwd]])
    re = np.concatenate([err[fwd], -err[bwd]])
    pot = _potentials(n_nodes, rt, rh, rc)
    red = rc + pot[rt] - pot[rh]
    if not np.any((red == 0) & (re < 0)):
        return flows
    return _cancel_cycles_exact(n_nodes, tails, heads, caps, flows, s, pair)


def _potentials(n: int, tails: IntArray, heads: IntArray, costs: IntArray) -> IntArray:
    """Shortest distances from a virtual source joined to every node (Bellman-Ford, vectorised)."""
    dist = np.zeros(n, dtype=np.int64)
    for _ in range(n + 1):
        cand = dist[tails] + costs
        new = dist.copy()
        np.minimum.at(new, heads, cand)
        if np.array_equal(new, dist):
            return dist
        dist = new
    raise MatcherError("negative cycle left in the rounded optimum; the flow solver did not converge")


def exact_score_ints(s: FloatArray) -> tuple[list[int], int]:
    """Every score as an exact integer multiple of one power of two: (ints, denominator)."""
    ratios = [float(x).as_integer_ratio() for x in s]
    den = max((b for _, b in ratios), default=1)
    return [a * (den // b) for a, b in ratios], den


def _cancel_cycles_exact(n, tails, heads, caps, flows, s, pair: slice) -> np.ndarray:
    """Cancel negative residual cycles with exact integer costs (Bellman-Ford, Python ints)."""
    ints, _ = exact_score_ints(s)
    cost = [0] * len(tails)
    for a, v in zip(range(pair.start, pair.stop), ints, strict=True):
        cost[a] = -v
    flows = flows.copy()
    tl, hl, cl = tails.tolist(), heads.tolist(), caps.tolist()
    for _ in range(10 * len(tails) + 10):
        res = []  # (u, v, cost, arc, direction)
        fl = flows.tolist()
        for a in range(len(tl)):
            if fl[a] < cl[a]:
                res.append((tl[a], hl[a], cost[a], a, 1))
            if fl[a] > 0:
                res.append((hl[a], tl[a], -cost[a], a, -1))
        dist = [0] * n
        parent: list[tuple | None] = [None] * n
        last = -1
        for _ in range(n + 1):
            last = -1
            for u, v, c, a, sign in res:
                if dist[u] + c < dist[v]:
                    dist[v] = dist[u] + c
                    parent[v] = (u, a, sign)
                    last = v
            if last < 0:
                return flows
        x = last
        for _ in range(n):
            x = parent[x][0]  # type: ignore[index]
        cycle, y = [], x
        while True:
            u, a, sign = parent[y]  # type: ignore[misc]
            cycle.append((a, sign))
            y = u
            if y == x:
                break
        push = min(cl[a] - fl[a] if sign > 0 else fl[a] for a, sign in cycle)
        for a, sign in cycle:
            flows[a] += sign * push
    raise MatcherError("exact polish of the assignment did not converge")


# ---------------------------------------------------------------------------- MILP


def solve_milp(d, p, s, dmin, dmax, pcap, extras: Extras | None = None) -> BoolArray:
    """The same lexicographic optimum with scipy's MILP (HiGHS, zero relative gap)."""
    d, p, s, dmin, dmax, pcap = arrays(d, p, s, dmin, dmax, pcap)
    if len(d) == 0:
        return np.zeros(0, dtype=bool)
    return solve_milp_full(d, p, s, np.minimum(dmin, dmax), dmax, pcap, extras or Extras()).chosen


def solve_milp_full(d, p, s, dmin, dmax, pcap, ex: Extras, time_limit: float | None = None) -> Solution:
    """Levels 1-5 as MILPs: x (m arcs, binary), y (demand minimum slots), z (partner minimum
    slots), w (wishes met, binary). Each level's optimum is kept as a constraint."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix, csr_matrix

    m, nd, npart = len(d), len(dmin), len(pcap)
    threshold, needy = fair_threshold(d, p, s, dmax, pcap, ex) if ex.fair else (None, None)
    pmin = ex.pmin if ex.has_pmin() else np.zeros(npart, dtype=np.int64)
    wish_rows: list[tuple[int, BoolArray]] = []  # (demand, arcs that satisfy)
    for want, ok in ((ex.want_local, ex.local), (ex.want_foreign, ex.foreign)):
        if want is None or ok is None:
            continue
        for i in np.flatnonzero(want):
            arcs = (d == i) & ok
            if arcs.any():
                wish_rows.append((int(i), arcs))
    nw = len(wish_rows)
    nv = m + nd + npart + nw
    oy, oz, ow = m, m + nd, m + nd + npart
    rows, cols, vals, lo, hi = [], [], [], [], []
    r = 0

    def add(cs, vs, lb, ub):
        nonlocal r
        rows.extend([r] * len(cs))
        cols.extend(cs)
        vals.extend(vs)
        lo.append(lb)
        hi.append(ub)
        r += 1

    arcs_of_d = [np.flatnonzero(d == i) for i in range(nd)]
    arcs_of_p = [np.flatnonzero(p == j) for j in range(npart)]
    for i in range(nd):
        a = arcs_of_d[i].tolist()
        add(a, [1] * len(a), -np.inf, dmax[i])
        add(a + [oy + i], [-1] * len(a) + [1], -np.inf, 0)  # y_i <= assigned_i
    for j in range(npart):
        a = arcs_of_p[j].tolist()
        add(a, [1] * len(a), -np.inf, pcap[j])
        add(a + [oz + j], [-1] * len(a) + [1], -np.inf, 0)
    if ex.org is not None and ex.org_cap is not None:
        for g in range(len(ex.org_cap)):
            a = np.flatnonzero(ex.org[p] == g).tolist()
            if a:
                add(a, [1] * len(a), -np.inf, ex.org_cap[g])
    if ex.group is not None and ex.group_cap is not None:
        keys: dict[tuple[int, int], list[int]] = {}
        for a, (g, j) in enumerate(zip(ex.group[d].tolist(), p.tolist(), strict=True)):
            if g >= 0:
                keys.setdefault((g, j), []).append(a)
        for key, a in keys.items():
            add(a, [1] * len(a), -np.inf, max(ex.group_cap - ex.group_used.get(key, 0), 0))
    for w, (_, arcs) in enumerate(wish_rows):
        a = np.flatnonzero(arcs).tolist()
        add(a + [ow + w], [-1] * len(a) + [1], -np.inf, 0)
    if threshold is not None and needy is not None:
        for i in np.flatnonzero(needy):
            a = np.flatnonzero((d == i) & (s >= threshold)).tolist()
            add(a, [1] * len(a), 1, np.inf)
    a_mat = csr_matrix(coo_matrix((vals, (rows, cols)), shape=(r, nv)))
    cons = [LinearConstraint(a_mat, np.array(lo, dtype=float), np.array(hi, dtype=float))]
    bounds = Bounds(np.zeros(nv), np.concatenate([np.ones(m), dmin, np.minimum(pmin, pcap), np.ones(nw)]))
    integrality = np.concatenate([np.ones(m), np.zeros(nd + npart), np.ones(nw)])
    options = {"mip_rel_gap": 0.0}
    if time_limit is not None:
        options["time_limit"] = float(time_limit)

    def level(c: np.ndarray, name: str) -> np.ndarray:
        res = milp(c, constraints=cons, bounds=bounds, integrality=integrality, options=options)
        if res.x is None or res.status not in (0,):
            raise MatcherError(f"MILP level '{name}' failed: {res.message}")
        return res.x

    for name, sl in (("demand minimum", slice(oy, oz)), ("local/foreign", slice(ow, nv)),
                     ("partner minimum", slice(oz, ow))):
        if sl.stop <= sl.start or not np.any(bounds.ub[sl] > 0):
            continue
        c = np.zeros(nv)
        c[sl] = -1
        x = level(c, name)
        best = round(float(x[sl].sum()))
        cons.append(LinearConstraint(csr_matrix(-c), best - 0.5, np.inf))
    c = np.zeros(nv)
    c[:m] = -s
    x = level(c, "affinity")
    return Solution(x[:m] > 0.5, threshold)


# ---------------------------------------------------------------------------- greedy


def solve_greedy(d, p, s, dmin, dmax, pcap, extras: Extras | None = None) -> BoolArray:
    """Baseline: pairs by descending score (ties by demand, partner index); pass 1 fills up
    to each minimum, pass 2 up to each maximum with non-negative scores. Hard caps of
    organisations and groups are kept; soft levels other than the demand minimum are not."""
    ex = extras or Extras()
    d, p, s, dmin, dmax, pcap = arrays(d, p, s, dmin, dmax, pcap)
    chosen = np.zeros(len(d), dtype=bool)
    count = np.zeros(len(dmin), dtype=np.int64)
    left = pcap.copy()
    org_left = ex.org_cap.copy() if ex.org_cap is not None else None
    org = ex.org.tolist() if ex.org is not None else None
    group = ex.group.tolist() if ex.group is not None and ex.group_cap is not None else None
    used = dict(ex.group_used)
    order = np.lexsort((p, d, -s)).tolist()
    dl, pl, sl = d.tolist(), p.tolist(), s.tolist()
    for need, allow_negative in ((np.minimum(dmin, dmax).tolist(), True), (dmax.tolist(), False)):
        for a in order:
            i, j = dl[a], pl[a]
            if chosen[a] or count[i] >= need[i] or left[j] <= 0 or not (allow_negative or sl[a] >= 0):
                continue
            if org_left is not None and org is not None and org[j] >= 0 and org_left[org[j]] <= 0:
                continue
            key = (group[i], j) if group is not None and group[i] >= 0 else None
            if key is not None and used.get(key, 0) >= ex.group_cap:  # type: ignore[operator]
                continue
            chosen[a] = True
            count[i] += 1
            left[j] -= 1
            if org_left is not None and org is not None and org[j] >= 0:
                org_left[org[j]] -= 1
            if key is not None:
                used[key] = used.get(key, 0) + 1
    return chosen
