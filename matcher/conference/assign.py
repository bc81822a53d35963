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

from matcher.conference.solve import (
    BoolArray,
    Extras,
    FloatArray,
    IntArray,
    solve_flow,
    solve_greedy,
    solve_milp,
    solve_milp_full,
    solve_min_cost_flow,
)
from matcher.conference.wording import PIN_UNPIN, SUGGESTIONS, check_lang, fill, texts
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

    def __init__(self, conflicts: Sequence[PinConflict], suggestions: Sequence[Suggestion] = ()) -> None:
        self.conflicts = tuple(conflicts)
        self.suggestions = tuple(suggestions)
        lines = [f"({c.demand_id}, {c.partner_id}) {c.constraint}: {c.detail}" for c in conflicts]
        fix = [s.en for s in self.suggestions]
        super().__init__(
            f"{len(self.conflicts)} pinned pair(s) break hard constraints: "
            + "; ".join(lines)
            + (". To fix: " + "; ".join(fix) if fix else "")
        )


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


@dataclass(frozen=True)
class OrganisationCap:
    """At most ``limit`` meetings for all partners sharing ``partner_field`` (an organisation's
    teams: a university's institutes), e.g. ``OrganisationCap("organisation", 6)``. Partners
    with an empty value are not grouped."""

    partner_field: str
    limit: int

    @property
    def name(self) -> str:
        return f"at most {self.limit} per partner {self.partner_field}"


@dataclass(frozen=True)
class GroupPartnerCap:
    """At most ``limit`` meetings between one partner and the demands sharing ``demand_field``
    (a county's enterprises), e.g. ``GroupPartnerCap("county", 2)``."""

    demand_field: str
    limit: int

    @property
    def name(self) -> str:
        return f"at most {self.limit} per demand {self.demand_field} and partner"


@dataclass(frozen=True)
class LocalWish:
    """Each demand gets at least one ``kind`` partner where a candidate qualifies (soft, level 3
    of the optimum). A partner is local when ``partner_field`` equals the demand's
    ``demand_field`` and foreign when both are set and differ."""

    kind: str  # "local" or "foreign"
    demand_field: str
    partner_field: str

    @property
    def name(self) -> str:
        return f"at least 1 {self.kind} {self.demand_field}={self.partner_field}"


GroupRule = OrganisationCap | GroupPartnerCap | LocalWish


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
    quotas: demand_id -> the meetings that demand wants (1, 3, 5 ...): its maximum, and its
    minimum becomes ``min(min_per_demand, quota)``.
    partner_min: soft minimum load per partner unless ``partner_min_overrides`` says otherwise.
    group_rules: :class:`OrganisationCap`, :class:`GroupPartnerCap`, :class:`LocalWish`
    (at most one of each kind); they need the records passed in.
    fair: maximise the worst-off demand's best score first (max-min, level 1 of the optimum).
    """

    capacity: int = 3
    capacity_overrides: Mapping[str, int] = field(default_factory=dict)
    min_per_demand: int = 1
    max_per_demand: int = 3
    min_score: float | None = None
    exclusions: frozenset[tuple[str, str]] = frozenset()
    exclusion_rules: tuple[ExclusionRule, ...] = ()
    pins: tuple[tuple[str, str], ...] = ()
    quotas: Mapping[str, int] = field(default_factory=dict)
    partner_min: int = 0
    partner_min_overrides: Mapping[str, int] = field(default_factory=dict)
    group_rules: tuple[GroupRule, ...] = ()
    fair: bool = False

    def __post_init__(self) -> None:
        for name in ("capacity", "min_per_demand", "max_per_demand", "partner_min"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise InputError(f"must be a whole number >= 0, got {value!r}", field=name)
        if self.min_per_demand > self.max_per_demand:
            raise InputError(
                f"min_per_demand {self.min_per_demand} exceeds max_per_demand {self.max_per_demand}",
                field="min_per_demand", code="min_above_max",
                params={"min": self.min_per_demand, "max": self.max_per_demand},
            )
        for pid, cap in self.capacity_overrides.items():
            if not isinstance(cap, int) or cap < 0:
                raise InputError(
                    f"capacity of partner '{pid}' must be >= 0, got {cap!r}",
                    field="capacity_overrides",
                )
        for name, table, what in (("quotas", self.quotas, "quota of demand"),
                                  ("partner_min_overrides", self.partner_min_overrides, "minimum of partner")):
            for key, value in table.items():
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise InputError(f"{what} '{key}' must be a whole number >= 0, got {value!r}", field=name)
        kinds = Counter(type(r).__name__ + (r.kind if isinstance(r, LocalWish) else "") for r in self.group_rules)
        if twice := [k for k, n in kinds.items() if n > 1]:
            raise InputError(f"at most one rule of each kind, got {twice[0]} twice", field="group_rules",
                             code="rule_twice", params={"kind": twice[0]})
        for r in self.group_rules:
            if isinstance(r, OrganisationCap | GroupPartnerCap) and (not isinstance(r.limit, int) or r.limit < 0):
                raise InputError(f"limit must be a whole number >= 0 in '{r.name}'", field="group_rules")
            if isinstance(r, LocalWish) and r.kind not in ("local", "foreign"):
                raise InputError(f"kind must be local or foreign, got {r.kind!r}", field="group_rules")
        if self.min_score is not None and not math.isfinite(self.min_score):
            raise InputError(f"must be finite, got {self.min_score!r}", field="min_score")
        object.__setattr__(self, "capacity_overrides", dict(self.capacity_overrides))
        object.__setattr__(self, "quotas", dict(self.quotas))
        object.__setattr__(self, "partner_min_overrides", dict(self.partner_min_overrides))
        object.__setattr__(self, "group_rules", tuple(self.group_rules))
        object.__setattr__(self, "exclusions", frozenset(tuple(x) for x in self.exclusions))
        object.__setattr__(self, "exclusion_rules", tuple(self.exclusion_rules))
        object.__setattr__(self, "pins", tuple(dict.fromkeys(tuple(x) for x in self.pins)))

    def capacity_of(self, partner_id: str) -> int:
        return self.capacity_overrides.get(partner_id, self.capacity)

    def max_of(self, demand_id: str) -> int:
        return self.quotas.get(demand_id, self.max_per_demand)

    def min_of(self, demand_id: str) -> int:
        return min(self.min_per_demand, self.max_of(demand_id))

    def partner_min_of(self, partner_id: str) -> int:
        return self.partner_min_overrides.get(partner_id, self.partner_min)

    def rule(self, kind: type, wish: str = "") -> GroupRule | None:
        return next((r for r in self.group_rules if isinstance(r, kind) and (not wish or r.kind == wish)), None)


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
class PartnerShortfall:
    """A partner left below its soft minimum load."""

    partner_id: str
    assigned: int
    required: int
    detail: str


@dataclass(frozen=True)
class Suggestion:
    """One change that, with the others of its kind, makes every minimum feasible.

    kind: "capacity" (raise a partner's capacity), "organisation_cap", "group_cap",
    "quota" (lower a demand's minimum: it lacks eligible candidates), "pin" (a pin conflict).
    target: the partner, organisation or demand id; current / proposed: the numbers; en, zh,
    ru: the change in words (`text(lang)`), from the templates in :mod:`.wording`."""

    kind: str
    target: str
    current: int
    proposed: int
    en: str
    zh: str
    ru: str = ""

    @classmethod
    def worded(cls, kind: str, target: str, current: int, proposed: int, key: str,
               tail: Mapping[str, str] | None = None, **params: object) -> Suggestion:
        """A suggestion worded from ``wording.SUGGESTIONS[key]`` (plus ``tail``) in every language."""
        words = texts(SUGGESTIONS, key, **params)
        if tail is not None:
            words = {lang: text + fill(lang, tail[lang], **params) for lang, text in words.items()}
        return cls(kind, target, current, proposed, **words)

    def text(self, lang: str) -> str:
        """The change in `lang` (zh, en or ru)."""
        return getattr(self, check_lang(lang)) or self.en


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
    scores (total affinity). worst_best: the max-min objective, the lowest best-meeting score
    over demands that wanted a meeting and had a candidate (None when there is none);
    fair_threshold: the level the ``fair`` option guaranteed. partner_min_*: the soft partner
    minimum, summed. wishes_*: local / foreign wishes met of those a candidate could meet.
    alternates: per assigned pair, the next best partners of that demand who still have
    capacity. suggestions: what to change so that every minimum can be met (zh and en).
    min_slots_filled / min_slots_required: the soft minimum, summed over demands.
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
    partner_min_filled: int = 0
    partner_min_required: int = 0
    partner_shortfalls: tuple[PartnerShortfall, ...] = ()
    wishes_met: int = 0
    wishes_wanted: int = 0
    fair_threshold: float | None = None
    worst_best: float | None = None
    greedy_worst_best: float | None = None
    alternates: Mapping[tuple[str, str], tuple[tuple[str, float], ...]] = field(default_factory=dict)
    suggestions: tuple[Suggestion, ...] = ()
    min_score: float | None = None

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
        if self.partner_min_required:
            lines.append(f"partner minimum slots filled {self.partner_min_filled}/{self.partner_min_required}")
        if self.wishes_wanted:
            lines.append(f"local/foreign wishes met {self.wishes_met}/{self.wishes_wanted}")
        if self.worst_best is not None:
            fair = "" if self.fair_threshold is None else f", guaranteed by the fair option {self.fair_threshold:.4f}"
            greedy = "" if self.greedy_worst_best is None else f" (greedy {self.greedy_worst_best:.4f})"
            lines.append(f"worst-off demand's best score {self.worst_best:.4f}{greedy}{fair}"
                         + (" (a demand with candidates has no meeting)" if self.worst_best == -math.inf else ""))
        if self.min_score is not None:
            lines.append("quality floor " + floor_report(self))
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
        lines.extend(x.en for x in self.suggestions[:limit])
        return lines


def floor_report(result: Assignment) -> str:
    """How the quality floor (``min_score``) bears on the demands left short, and why."""
    below = sum(s.reason == "below_min_score" for s in result.shortfalls)
    full = sum(s.reason == "at_capacity" for s in result.shortfalls)
    return (
        f"{result.min_score:g}: {result.dropped.get('below_min_score', 0)} candidate pairs below it dropped; "
        f"{below} demands short for lack of candidates above it, {full} more because the partners above it are full"
    )


# ---------------------------------------------------------------------------- solvers

SOLVERS: dict[str, Callable[..., BoolArray]] = {
    "min_cost_flow": solve_min_cost_flow,
    "milp": solve_milp,
    "greedy": solve_greedy,
}

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
    dmin: IntArray  # minimum left after pins
    dmax: IntArray  # maximum left after pins
    need: IntArray  # full minimum per demand
    top: IntArray  # full maximum per demand
    pcap: IntArray  # capacity left after pins
    cap: IntArray  # full capacity
    pmin: IntArray  # full partner minimum
    n_total: IntArray  # candidate pairs per demand, pinned ones excluded
    n_score: IntArray  # ... reaching min_score
    dropped: dict[str, int]
    extras: Extras
    org_names: list[str]
    org_limit: int
    group_names: list[str]


def assign(
    candidates: Iterable[tuple[str, str, float]],
    constraints: AssignmentConstraints | None = None,
    *,
    demands: Iterable[Demand] | None = None,
    partners: Iterable[Partner] | None = None,
    method: str = "min_cost_flow",
    alternates: int = 3,
    milp_seconds: float | None = None,
) -> Assignment:
    """Choose meetings maximising affinity under ``constraints`` (see the module docstring).

    candidates: rows ``(demand_id, partner_id, score)``; a repeated pair keeps its best score.
    demands / partners: the records; needed for exclusion and group rules. When ``demands`` is
    given it is the full list of demands (those without candidates appear as shortfalls).
    method: one of SOLVERS. alternates: next best partners listed per assigned pair.
    milp_seconds: time limit of each MILP level (a level that does not finish raises MatcherError).
    Raises InfeasibleError when pins conflict with hard constraints.
    """
    if method not in SOLVERS:
        raise UnknownNameError("assignment method", method, list(SOLVERS))
    pb = _prepare(candidates, constraints or AssignmentConstraints(), demands, partners)
    args = (pb.d, pb.p, pb.s, pb.dmin, pb.dmax, pb.pcap)
    t0 = time.perf_counter()
    threshold = None
    if method == "min_cost_flow":
        sol = solve_flow(*args, pb.extras)
        chosen, threshold = sol.chosen, sol.fair_threshold
    elif method == "milp":
        sol = solve_milp_full(*args, pb.extras, time_limit=milp_seconds) if len(pb.d) else None
        chosen = sol.chosen if sol else np.zeros(0, dtype=bool)
        threshold = sol.fair_threshold if sol else None
    else:
        chosen = solve_greedy(*args, pb.extras)
    seconds = time.perf_counter() - t0
    greedy = chosen if method == "greedy" else solve_greedy(*args, pb.extras)
    if method == "min_cost_flow" and pb.extras.needs_milp():
        method = "milp (rules outside the network)"
    return _result(pb, chosen, greedy, method, seconds, threshold, alternates)


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
    if c.group_rules and (dmap is None or pmap is None):
        raise InputError("group rules need the records: pass demands= and partners=", field="group_rules")
    seen_d = [d for d, _ in best] + [d for d, _ in c.pins]
    seen_p = [p for _, p in best] + [p for _, p in c.pins]
    demand_ids = list(dmap) if dmap is not None else list(dict.fromkeys(seen_d))
    partner_ids = list(dict.fromkeys(([*pmap] if pmap is not None else []) + seen_p))
    for kind, known, seen in (("demand", dmap, seen_d), ("partner", pmap, seen_p)):
        if known is not None and (missing := sorted(set(seen) - set(known))):
            raise NotFoundError(f"unknown {kind} id(s) in candidates or pins: {_few(missing)}")
    di = {d: i for i, d in enumerate(demand_ids)}
    pi = {p: j for j, p in enumerate(partner_ids)}
    if unknown := sorted(set(c.quotas) - set(di)):
        raise NotFoundError(f"unknown demand id(s) in quotas: {_few(unknown)}")

    def excluded_by(did: str, pid: str) -> str | None:
        if (did, pid) in c.exclusions:
            return "pair"
        for rule in c.exclusion_rules:
            if rule(dmap[did], pmap[pid]):  # type: ignore[index]
                return rule_name(rule)
        return None

    nd, npart = len(demand_ids), len(partner_ids)
    cap = np.array([c.capacity_of(p) for p in partner_ids], dtype=np.int64)
    top = np.array([c.max_of(d) for d in demand_ids], dtype=np.int64)
    need = np.array([c.min_of(d) for d in demand_ids], dtype=np.int64)
    pmin = np.array([c.partner_min_of(p) for p in partner_ids], dtype=np.int64)
    groups = _groups(c, demand_ids, partner_ids, dmap, pmap)
    pins = [AssignedPair(d, p, best.get((d, p), 0.0), True) for d, p in c.pins]
    _check_pins(pins, c, cap, top, di, pi, excluded_by, groups)

    pins_d = np.bincount([di[x.demand_id] for x in pins], minlength=nd).astype(np.int64)
    pins_p = np.bincount([pi[x.partner_id] for x in pins], minlength=npart).astype(np.int64)
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
    d = arr[:, 0].astype(np.int64)
    p = arr[:, 1].astype(np.int64)
    s = arr[:, 2].copy()
    extras = _extras(c, groups, d, p, s, pins, di, pi, pmin - pins_p, nd)
    return _Problem(
        c=c, demand_ids=demand_ids, partner_ids=partner_ids, pins=pins, d=d, p=p, s=s,
        dmin=np.maximum(need - pins_d, 0), dmax=top - pins_d, need=need, top=top, pcap=cap - pins_p, cap=cap,
        pmin=pmin, n_total=n_total, n_score=n_score, dropped=dropped, extras=extras,
        org_names=groups["org_names"], org_limit=groups["org_limit"], group_names=groups["group_names"],
    )


def _groups(c: AssignmentConstraints, demand_ids, partner_ids, dmap, pmap) -> dict:
    """Group indexes from the records: organisation per partner, group per demand, and the
    local / foreign relation as values to compare."""
    out: dict = {"org": None, "org_names": [], "org_limit": 0, "group": None, "group_names": [], "group_cap": None,
                 "wishes": []}
    if (rule := c.rule(OrganisationCap)) is not None:
        vals = [_norm(record_value(pmap[p], rule.partner_field)) for p in partner_ids]
        names = sorted({v for v in vals if v})
        idx = {v: k for k, v in enumerate(names)}
        out.update(org=np.array([idx.get(v, -1) for v in vals], dtype=np.int64), org_names=names,
                   org_limit=rule.limit)
    if (rule := c.rule(GroupPartnerCap)) is not None:
        vals = [_norm(record_value(dmap[d], rule.demand_field)) for d in demand_ids]
        names = sorted({v for v in vals if v})
        idx = {v: k for k, v in enumerate(names)}
        out.update(group=np.array([idx.get(v, -1) for v in vals], dtype=np.int64), group_names=names,
                   group_cap=rule.limit)
    for kind in ("local", "foreign"):
        if (rule := c.rule(LocalWish, kind)) is not None:
            dv = [_norm(record_value(dmap[d], rule.demand_field)) for d in demand_ids]
            pv = [_norm(record_value(pmap[p], rule.partner_field)) for p in partner_ids]
            out["wishes"].append((kind, dv, pv))
    return out


def _qualifies(kind: str, dv: str, pv: str) -> bool:
    if not dv or not pv:
        return False
    return dv == pv if kind == "local" else dv != pv


def _extras(c, groups, d, p, s, pins, di, pi, pmin_left, nd) -> Extras:
    ex = Extras(fair=c.fair)
    if np.any(pmin_left > 0):
        ex.pmin = np.maximum(pmin_left, 0)
    if groups["org"] is not None:
        ex.org = groups["org"]
        used = np.bincount([int(ex.org[pi[x.partner_id]]) for x in pins if ex.org[pi[x.partner_id]] >= 0],
                           minlength=len(groups["org_names"]))
        ex.org_cap = np.maximum(groups["org_limit"] - used, 0).astype(np.int64)
    if groups["group"] is not None:
        ex.group, ex.group_cap = groups["group"], groups["group_cap"]
        ex.group_used = dict(Counter((int(ex.group[di[x.demand_id]]), pi[x.partner_id]) for x in pins
                                     if ex.group[di[x.demand_id]] >= 0))
    dl, pl = d.tolist(), p.tolist()
    for kind, dv, pv in groups["wishes"]:
        pvals = list(pv)
        ok = np.array([_qualifies(kind, dv[i], pvals[j]) for i, j in zip(dl, pl, strict=True)], dtype=bool)
        done = np.zeros(nd, dtype=bool)
        for x in pins:
            if _qualifies(kind, dv[di[x.demand_id]], pvals[pi[x.partner_id]]):
                done[di[x.demand_id]] = True
        want = (np.bincount(d[ok], minlength=nd) > 0) & ~done
        if kind == "local":
            ex.local, ex.want_local = ok, want
        else:
            ex.foreign, ex.want_foreign = ok, want
    if c.fair:
        best = np.full(nd, -np.inf)
        for x in pins:
            best[di[x.demand_id]] = max(best[di[x.demand_id]], x.score)
        ex.pinned_best = best
    return ex


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
    top: IntArray,
    di: dict[str, int],
    pi: dict[str, int],
    excluded_by: Callable[[str, str], str | None],
    groups: dict,
) -> None:
    conflicts: list[PinConflict] = []
    fixes: list[Suggestion] = []
    for x in pins:
        if (why := excluded_by(x.demand_id, x.partner_id)) is not None:
            what = "excluded pair list" if why == "pair" else f"rule '{why}'"
            conflicts.append(
                PinConflict(x.demand_id, x.partner_id, "excluded", f"pinned pair is excluded by the {what}")
            )
            fixes.append(Suggestion.worded(
                "pin", f"{x.demand_id}/{x.partner_id}", 1, 0,
                "pin_excluded_pair" if why == "pair" else "pin_excluded_rule",
                demand=x.demand_id, partner=x.partner_id, rule=why,
            ))
    org, gr = groups["org"], groups["group"]
    checks = [
        ("partner_id", lambda x: x.partner_id, lambda k: int(cap[pi[k]]), "partner_capacity", "partner"),
        ("demand_id", lambda x: x.demand_id, lambda k: int(top[di[k]]), "max_per_demand", "demand"),
    ]
    if org is not None:
        names = groups["org_names"]
        checks.append(("organisation", lambda x: names[org[pi[x.partner_id]]] if org[pi[x.partner_id]] >= 0 else None,
                       lambda k: groups["org_limit"], "organisation_cap", "organisation"))
    if gr is not None:
        gnames = groups["group_names"]
        checks.append(("group", lambda x: (f"{gnames[gr[di[x.demand_id]]]}/{x.partner_id}"
                                           if gr[di[x.demand_id]] >= 0 else None),
                       lambda k: groups["group_cap"], "group_cap", "group"))
    for _label, key_of, limit_of, constraint, noun in checks:
        counts = Counter(k for x in pins if (k := key_of(x)) is not None)
        for k, n in counts.items():
            if n > (lim := limit_of(k)):
                conflicts.extend(
                    PinConflict(x.demand_id, x.partner_id, constraint, f"{n} pins on {noun} {k}, limit {lim}")
                    for x in pins
                    if key_of(x) == k
                )
                fixes.append(Suggestion.worded(constraint, str(k), lim, n, f"pin_{constraint}", PIN_UNPIN,
                                               k=k, lim=lim, n=n, extra=n - lim))
    if conflicts:
        raise InfeasibleError(conflicts, fixes)


def _result(pb: _Problem, chosen: BoolArray, greedy: BoolArray, method: str, seconds: float,
            threshold: float | None, n_alternates: int) -> Assignment:
    c, nd = pb.c, len(pb.demand_ids)
    need, top = np.minimum(pb.need, pb.top), pb.top
    pin_score = sum(x.score for x in pb.pins)
    pins_d = pb.top - pb.dmax  # pins per demand
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
            if count[i] >= top[i]:
                at_max.add(i)
            continue
        if count[i] < top[i] or pb.s[a] > worst[i]:
            wanted.setdefault(j, []).append((float(pb.s[a]), i))
        if count[i] < need[i]:
            full_of.setdefault(i, []).append(pb.partner_ids[j])

    shortfalls = []
    for i in np.flatnonzero(count < need):
        have, want = int(pins_d[i]), int(need[i])
        reason = (
            "no_candidates"
            if have + pb.n_total[i] < want
            else "below_min_score"
            if have + pb.n_score[i] < want
            else "excluded"
            if have + n_elig[i] < want
            else "at_capacity"
        )
        ms = "" if c.min_score is None else f" >= min_score {c.min_score:g}"
        detail = (
            f"{pb.n_total[i] + have} candidates, {pb.n_score[i] + have}{ms}, "
            f"{n_elig[i] + have} not excluded, {int(count[i])} assigned of {want}"
        )
        fulls = tuple(dict.fromkeys(full_of.get(int(i), [])))
        if fulls:
            detail += f"; full partners: {_few(fulls, 5)}"
        shortfalls.append(Shortfall(pb.demand_ids[i], int(count[i]), want, reason, detail, fulls))
    binding = [
        BindingPartner(
            pb.partner_ids[j],
            int(pb.cap[j]),
            tuple(dict.fromkeys(pb.demand_ids[i] for _, i in ws)),
            tuple(dict.fromkeys(pb.demand_ids[i] for _, i in ws if count[i] < need[i])),
        )
        for j, ws in wanted.items()
    ]
    binding.sort(key=lambda b: (-len(b.blocks_minimum), -len(b.wanted_by), b.partner_id))
    pmin = np.minimum(pb.pmin, pb.cap)
    partner_short = tuple(
        PartnerShortfall(pb.partner_ids[j], int(load[j]), int(pmin[j]),
                         f"{int(np.sum(pb.p == j))} eligible candidate pairs, "
                         f"{int(load[j])} assigned of {int(pmin[j])}")
        for j in np.flatnonzero(load < pmin)
    )
    met, wanted_n = _wishes(pb, chosen)
    return Assignment(
        method=method,
        demand_ids=tuple(pb.demand_ids),
        pairs=tuple(pairs),
        objective=float(pin_score + pb.s[chosen].sum()),
        min_slots_filled=int(np.minimum(count, need).sum()),
        min_slots_required=int(need.sum()),
        greedy_objective=float(pin_score + pb.s[greedy].sum()),
        greedy_min_slots_filled=int(np.minimum(g_count, need).sum()),
        shortfalls=tuple(shortfalls),
        binding_partners=tuple(binding),
        demands_at_max=tuple(pb.demand_ids[i] for i in sorted(at_max)),
        dropped=dict(pb.dropped),
        seconds=seconds,
        partner_min_filled=int(np.minimum(load, pmin).sum()),
        partner_min_required=int(pmin.sum()),
        partner_shortfalls=partner_short,
        wishes_met=met,
        wishes_wanted=wanted_n,
        fair_threshold=threshold,
        worst_best=_worst_best(pb, chosen),
        greedy_worst_best=_worst_best(pb, greedy),
        alternates=_alternates(pb, chosen, load, n_alternates),
        suggestions=tuple(diagnose(pb, chosen)) if shortfalls else (),
        min_score=c.min_score,
    )


def _worst_best(pb: _Problem, chosen: BoolArray) -> float | None:
    """The max-min objective: over demands that want a meeting and have an eligible candidate
    or a pin, the lowest best score (-inf counts a demand left with nothing)."""
    nd = len(pb.demand_ids)
    best = np.full(nd, -np.inf)
    np.maximum.at(best, pb.d[chosen], pb.s[chosen])
    for x in pb.pins:
        i = pb.demand_ids.index(x.demand_id)
        best[i] = max(best[i], x.score)
    has = (np.bincount(pb.d, minlength=nd) > 0) | (pb.top > pb.dmax)
    mask = has & (pb.top > 0)
    return float(best[mask].min()) if mask.any() else None


def _wishes(pb: _Problem, chosen: BoolArray) -> tuple[int, int]:
    met = wanted = 0
    ex = pb.extras
    for ok, want in ((ex.local, ex.want_local), (ex.foreign, ex.want_foreign)):
        if ok is None or want is None:
            continue
        got = np.bincount(pb.d[chosen & ok], minlength=len(pb.demand_ids)) > 0
        met += int((got & want).sum())
        wanted += int(want.sum())
    return met, wanted


def _alternates(pb: _Problem, chosen: BoolArray, load: IntArray, n: int) -> dict:
    """Per assigned pair, up to n other eligible partners of the demand, best first, that still
    have capacity (and room under the organisation and group caps)."""
    if n <= 0:
        return {}
    ex = pb.extras
    org_left = None
    if ex.org is not None and ex.org_cap is not None:
        used = np.bincount(ex.org[pb.p[chosen]][ex.org[pb.p[chosen]] >= 0], minlength=len(ex.org_cap))
        org_left = ex.org_cap - used
    group_used = Counter(ex.group_used)
    if ex.group is not None:
        for a in np.flatnonzero(chosen):
            g = int(ex.group[pb.d[a]])
            if g >= 0:
                group_used[(g, int(pb.p[a]))] += 1
    options: dict[int, list[tuple[str, float]]] = {}
    for a in np.flatnonzero(~chosen)[np.argsort(-pb.s[~chosen], kind="stable")]:
        i, j = int(pb.d[a]), int(pb.p[a])
        if load[j] >= pb.cap[j]:
            continue
        if org_left is not None and ex.org is not None and ex.org[j] >= 0 and org_left[ex.org[j]] <= 0:
            continue
        if ex.group is not None and ex.group[i] >= 0 and group_used[(int(ex.group[i]), j)] >= (ex.group_cap or 0):
            continue
        got = options.setdefault(i, [])
        if len(got) < n:
            got.append((pb.partner_ids[j], float(pb.s[a])))
    out: dict[tuple[str, str], tuple[tuple[str, float], ...]] = {}
    chosen_pairs = [(int(i), int(j)) for i, j in zip(pb.d[chosen], pb.p[chosen], strict=True)]
    di = {d: i for i, d in enumerate(pb.demand_ids)}
    for i, j in chosen_pairs + [(di[x.demand_id], -1) for x in pb.pins]:
        did = pb.demand_ids[i]
        pid = pb.partner_ids[j] if j >= 0 else None
        for x in pb.pins if pid is None else ():
            if x.demand_id == did:
                out[(did, x.partner_id)] = tuple(options.get(i, ()))
        if pid is not None:
            out[(did, pid)] = tuple(options.get(i, ()))
    return out


def diagnose(pb: _Problem, chosen: BoolArray) -> list[Suggestion]:
    """What to change so every demand minimum can be met, computed exactly.

    Quotas: a demand with fewer eligible candidates than its minimum cannot be helped by
    capacity; its minimum is lowered to what it has (or it needs more candidates). Capacity:
    the smallest total increase of partner capacities (and organisation / group caps) that lets
    every other minimum be filled at once, by a min-cost flow where each extra unit costs 1."""
    from ortools.graph.python import min_cost_flow

    nd, npart = len(pb.demand_ids), len(pb.partner_ids)
    elig = np.bincount(pb.d, minlength=nd)
    want = np.minimum(pb.dmin, elig)
    out: list[Suggestion] = []
    for i in np.flatnonzero(elig < pb.dmin):
        did, have = pb.demand_ids[i], int(pb.need[i] - pb.dmin[i] + elig[i])
        out.append(Suggestion.worded("quota", did, int(pb.need[i]), have, "quota",
                                     demand=did, have=have, need=int(pb.need[i])))
    total = int(want.sum())
    if total == 0 or len(pb.d) == 0:
        return out
    ex = pb.extras
    big = total
    src, sink = 0, 1
    dn = 2 + np.arange(nd)
    pn = 2 + nd + np.arange(npart)
    nxt = 2 + nd + npart
    tails, heads, caps, costs, kinds = [], [], [], [], []

    def arcs(t, h, c, w, kind=None):
        t, h, c = np.broadcast_arrays(np.asarray(t), np.asarray(h), np.asarray(c))
        tails.append(t.ravel()), heads.append(h.ravel()), caps.append(c.ravel())
        costs.append(np.full(t.size, w)), kinds.append((kind, t.size))

    arcs(src, dn, want, 0)
    target = pn[pb.p]
    group_keys: list[tuple[int, int]] = []
    if ex.group is not None and ex.group_cap is not None:
        grouped = ex.group[pb.d] >= 0
        keys = ex.group[pb.d][grouped] * npart + pb.p[grouped]
        uniq, inv = np.unique(keys, return_inverse=True)
        gn = nxt + np.arange(len(uniq))
        nxt += len(uniq)
        target = target.copy()
        target[grouped] = gn[inv]
        left = [max(ex.group_cap - ex.group_used.get((int(k // npart), int(k % npart)), 0), 0) for k in uniq]
        group_keys = [(int(k // npart), int(k % npart)) for k in uniq]
        arcs(dn[pb.d], target, 1, 0)
        arcs(gn, pn[uniq % npart], left, 0)
        arcs(gn, pn[uniq % npart], big, 1, "group")
    else:
        arcs(dn[pb.d], target, 1, 0)
    if ex.org is not None and ex.org_cap is not None:
        on = nxt + np.arange(len(ex.org_cap))
        has = ex.org >= 0
        arcs(pn[has], on[ex.org[has]], pb.pcap[has], 0)
        arcs(pn[has], on[ex.org[has]], big, 1, "capacity_org")
        arcs(on, sink, ex.org_cap, 0)
        arcs(on, sink, big, 1, "organisation_cap")
        arcs(pn[~has], sink, pb.pcap[~has], 0)
        arcs(pn[~has], sink, big, 1, "capacity")
        partner_of_cap = {"capacity_org": np.flatnonzero(has), "capacity": np.flatnonzero(~has)}
    else:
        arcs(pn, sink, pb.pcap, 0)
        arcs(pn, sink, big, 1, "capacity")
        partner_of_cap = {"capacity": np.arange(npart)}
    mcf = min_cost_flow.SimpleMinCostFlow()
    ids = mcf.add_arcs_with_capacity_and_unit_cost(
        np.concatenate(tails).astype(np.int64), np.concatenate(heads).astype(np.int64),
        np.concatenate(caps).astype(np.int64), np.concatenate(costs).astype(np.int64))
    mcf.set_node_supply(src, total)
    mcf.set_node_supply(sink, -total)
    if mcf.solve() != mcf.OPTIMAL:
        return out
    flows = mcf.flows(ids)
    at = 0
    for kind, size in kinds:
        part = flows[at: at + size]
        at += size
        if kind is None:
            continue
        for k in np.flatnonzero(part):
            n = int(part[k])
            if kind in partner_of_cap:
                j = int(partner_of_cap[kind][k])
                pid, cur = pb.partner_ids[j], int(pb.cap[j])
                out.append(Suggestion.worded("capacity", pid, cur, cur + n, "capacity",
                                             partner=pid, cur=cur, new=cur + n, n=n))
            elif kind == "organisation_cap":
                name, cur = pb.org_names[k], pb.org_limit
                out.append(Suggestion.worded("organisation_cap", name, cur, cur + n, "organisation_cap",
                                             name=name, cur=cur, new=cur + n, n=n))
            else:
                g, j = group_keys[k]
                name, cur = f"{pb.group_names[g]}/{pb.partner_ids[j]}", int(ex.group_cap or 0)
                out.append(Suggestion.worded("group_cap", name, cur, cur + n, "group_cap",
                                             group=pb.group_names[g], partner=pb.partner_ids[j],
                                             cur=cur, new=cur + n, n=n))
    return out
