"""Meeting schedule: assigned (demand, partner) pairs -> time slots and tables.

Hard rules: a slot holds at most ``tables`` meetings; a partner and an enterprise (which may
file several demands) are each in at most one meeting per slot; a meeting only goes in a slot
that lies inside both sides' availability windows (no windows given: available all day).
Goal, lexicographic: place as many meetings as possible, then give each partner as few
*blocks* as possible (a block is a run of its meetings in back-to-back slots; a break
between sessions always ends a block). Tables are then numbered so a partner keeps its
table through a block (partners sit, enterprises walk).

Methods: ``cp-sat`` (OR-tools CP-SAT with a time limit, hinted with the heuristic; exact
when it proves optimality, as it does on small cases), ``heuristic`` (partners with most
meetings first, each laid out as a compact run from its best start slot), and ``auto``
(CP-SAT when the model is small enough, else the heuristic; the better result is kept).
A heuristic result that places every meeting with one block per partner is optimal as it
stands, and no solver runs. Every run also computes a max-flow bound on the meetings any
schedule can place (:func:`placement_bound`); ``auto`` stops when the heuristic reaches it
(the placement is then optimal; only blocks could still improve, and CP-SAT polishes them
only on small models, ``AUTO_BLOCKS_MAX_VARIABLES``), and the result reports placed vs bound.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from matcher.errors import InputError, UnknownNameError

METHODS = ("auto", "cp-sat", "heuristic")
UNPLACED_REASONS = {
    "no_common_availability": "no slot lies inside both sides' availability windows",
    "no_free_slot": "every common slot has the partner, the enterprise or all tables busy",
}
AUTO_MAX_VARIABLES = 150_000
AUTO_BLOCKS_MAX_VARIABLES = 5_000  # auto still polishes blocks with CP-SAT below this size
Window = tuple[str, str]


@dataclass(frozen=True, order=True)
class Slot:
    """A time slot; ``start`` and ``end`` in minutes after midnight."""

    start: int
    end: int

    @property
    def label(self) -> str:
        return f"{format_time(self.start)}-{format_time(self.end)}"


@dataclass(frozen=True)
class Meeting:
    """A placed meeting. ``slot`` indexes ``Schedule.slots``; ``table`` counts from 1."""

    slot: int
    table: int
    demand_id: str
    partner_id: str
    enterprise: str


@dataclass(frozen=True)
class Unplaced:
    """A meeting that found no slot; ``reason`` is a key of UNPLACED_REASONS."""

    demand_id: str
    partner_id: str
    enterprise: str
    reason: str
    detail: str


@dataclass(frozen=True)
class Schedule:
    """meetings sorted by (slot, table); blocks: per partner with a meeting, its number of
    blocks; optimal: no schedule places more or has fewer blocks (proved by CP-SAT, or by the
    heuristic reaching both bounds); bound: the most meetings any schedule can place (a
    max-flow bound, see :func:`placement_bound`)."""

    slots: tuple[Slot, ...]
    tables: int
    meetings: tuple[Meeting, ...]
    unplaced: tuple[Unplaced, ...]
    blocks: Mapping[str, int]
    method: str
    optimal: bool
    bound: int = -1

    @property
    def placed_optimal(self) -> bool:
        """True when as many meetings are placed as the max-flow bound allows."""
        return len(self.meetings) == self.bound

    @property
    def total_blocks(self) -> int:
        return sum(self.blocks.values())


# ---------------------------------------------------------------------------- time parsing

_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


def parse_time(text: str) -> int:
    """ "09:20" -> 560 (minutes after midnight)."""
    m = _TIME.match(text)
    if not m or int(m[1]) > 24 or int(m[2]) > 59:
        raise InputError(f"bad time '{text}', expected HH:MM", field="time", code="bad_time",
                         params={"value": text.strip()})
    return int(m[1]) * 60 + int(m[2])


def format_time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_windows(spec: str) -> list[Window]:
    """ "09:00-12:00,14:00-17:00" -> [("09:00", "12:00"), ("14:00", "17:00")]; checked."""
    out: list[Window] = []
    for part in re.split(r"[,;，；]", spec):
        if not part.strip():
            continue
        start, sep, end = part.partition("-")
        if not sep or parse_time(start) >= parse_time(end):
            raise InputError(
                f"bad window '{part.strip()}', expected HH:MM-HH:MM with start < end",
                field="windows", code="bad_window", params={"value": part.strip()},
            )
        out.append((start.strip(), end.strip()))
    return out


def make_slots(windows: str | Sequence[Window], minutes: int) -> list[Slot]:
    """Cut each window into slots of ``minutes`` (a remainder too short for a slot is dropped).

    ``make_slots("09:00-10:00", 20)`` -> 09:00-09:20, 09:20-09:40, 09:40-10:00."""
    if minutes <= 0:
        raise InputError(f"slot length must be > 0 minutes, got {minutes}", field="slot_minutes")
    spans = parse_windows(windows) if isinstance(windows, str) else list(windows)
    slots: list[Slot] = []
    for start, end in spans:
        t, stop = parse_time(start), parse_time(end)
        while t + minutes <= stop:
            slots.append(Slot(t, t + minutes))
            t += minutes
    slots.sort()
    for a, b in zip(slots, slots[1:], strict=False):
        if b.start < a.end:
            raise InputError(f"slots {a.label} and {b.label} overlap", field="slots", code="slots_overlap",
                             params={"a": a.label, "b": b.label})
    return slots


def _available(slot: Slot, windows: Sequence[Window] | None) -> bool:
    if windows is None:
        return True
    return any(parse_time(a) <= slot.start and slot.end <= parse_time(b) for a, b in windows)


# ---------------------------------------------------------------------------- scheduling


@dataclass
class _Inst:
    """Meetings as index lists: ``allowed[m]`` are the slot indexes both sides can make."""

    slots: list[Slot]
    tables: int
    pairs: list[tuple[str, str]]
    ent: list[str]
    allowed: list[list[int]]
    by_partner: dict[str, list[int]]
    by_ent: dict[str, list[int]]
    follows: list[bool]  # follows[t]: slot t starts when slot t-1 ends
    ents: list[tuple[str, ...]] = ()  # ents[m]: every enterprise at meeting m (ent[m] first)

    def __post_init__(self) -> None:
        if not self.ents:
            self.ents = [(e,) for e in self.ent]


def schedule_meetings(
    pairs: Iterable[tuple[str, str]],
    slots: Sequence[Slot],
    tables: int,
    *,
    enterprise_of: Mapping[str, str] | None = None,
    enterprise_windows: Mapping[str, Sequence[Window]] | None = None,
    partner_windows: Mapping[str, Sequence[Window]] | None = None,
    attendees: Mapping[str, Sequence[str]] | None = None,
    method: str = "auto",
    time_limit: float = 10.0,
    workers: int = 2,
) -> Schedule:
    """Place meetings in slots and at tables (see the module docstring).

    pairs: ``(demand_id, partner_id)``, each at most once. enterprise_of: demand_id ->
    enterprise (default: each demand is its own enterprise). *_windows: id -> list of
    ``("HH:MM", "HH:MM")``; ids without an entry are available in every slot. attendees:
    demand_id -> further enterprises at its meetings (a merged demand's other members): none of
    them is booked twice in a slot and their windows apply too.
    time_limit: seconds for CP-SAT; workers: its threads.
    """
    if method not in METHODS:
        raise UnknownNameError("schedule method", method, list(METHODS))
    if tables < 1:
        raise InputError(f"need at least one table, got {tables}", field="tables")
    inst = _instance(
        list(pairs),
        sorted(slots),
        tables,
        enterprise_of or {},
        enterprise_windows or {},
        partner_windows or {},
        attendees or {},
    )
    slot_of = _heuristic(inst)
    bound = placement_bound(inst)
    # everything placed with one block per partner cannot be beaten: no solver needed
    optimal = _quality(inst, slot_of) == (bound, -len(inst.by_partner))
    reached = _quality(inst, slot_of)[0] >= bound
    used = "heuristic"
    n_vars = sum(len(a) for a in inst.allowed)
    # auto stops when the heuristic reaches the bound: the placement is optimal and only blocks
    # could improve, which is worth a solver run on small models only
    limit = AUTO_BLOCKS_MAX_VARIABLES if reached else AUTO_MAX_VARIABLES
    run_solver = method == "cp-sat" or (method == "auto" and n_vars <= limit)
    if not optimal and run_solver:
        found, proved = _cp_sat(inst, slot_of, time_limit, workers, bound)
        if found is not None and (
            _quality(inst, found) > _quality(inst, slot_of)
            or (proved and _quality(inst, found) == _quality(inst, slot_of))
        ):
            slot_of, used, optimal = found, "cp-sat", proved
    return _build(inst, slot_of, used, optimal, bound)


def placement_bound(inst: _Inst) -> int:
    """An upper bound on the meetings any schedule places: the smaller of two max-flows, one
    keeping tables per slot and each partner in one meeting per slot, the other the same for
    enterprises (either relaxation drops only the other side's rule)."""
    from ortools.graph.python import max_flow

    if not inst.pairs:
        return 0
    n_slots, n_m = len(inst.slots), len(inst.pairs)
    best = n_m
    for side in ([p for _, p in inst.pairs], inst.ent):
        names = {x: k for k, x in enumerate(dict.fromkeys(side))}
        tails, heads, caps = [], [], []
        src, sink = 0, 1
        slot0 = 2
        m0 = slot0 + n_slots
        w0 = m0 + n_m
        for m, who in enumerate(side):
            tails.append(src), heads.append(m0 + m), caps.append(1)
            for t in inst.allowed[m]:
                tails.append(m0 + m), heads.append(w0 + names[who] * n_slots + t), caps.append(1)
        used = {names[who] * n_slots + t for m, who in enumerate(side) for t in inst.allowed[m]}
        for key in used:
            tails.append(w0 + key), heads.append(slot0 + key % n_slots), caps.append(1)
        for t in range(n_slots):
            tails.append(slot0 + t), heads.append(sink), caps.append(inst.tables)
        mf = max_flow.SimpleMaxFlow()
        mf.add_arcs_with_capacity(np.array(tails), np.array(heads), np.array(caps))
        if mf.solve(src, sink) == mf.OPTIMAL:
            best = min(best, int(mf.optimal_flow()))
    return best


def _instance(
    pairs: list[tuple[str, str]],
    slots: list[Slot],
    tables: int,
    enterprise_of: Mapping[str, str],
    ewin: Mapping[str, Sequence[Window]],
    pwin: Mapping[str, Sequence[Window]],
    attendees: Mapping[str, Sequence[str]] | None = None,
) -> _Inst:
    seen: set[tuple[str, str]] = set()
    for row, pair in enumerate(pairs, start=1):
        if pair in seen:
            raise InputError(f"meeting ({pair[0]}, {pair[1]}) listed twice", row=row)
        seen.add(pair)
    ent = [enterprise_of.get(d) or d for d, _ in pairs]
    ents = [tuple(dict.fromkeys([e, *(x for x in (attendees or {}).get(d, ()) if x)]))
            for (d, _), e in zip(pairs, ent, strict=True)]
    allowed = [
        [t for t, s in enumerate(slots)
         if all(_available(s, ewin.get(e)) for e in es) and _available(s, pwin.get(p))]
        for (_, p), es in zip(pairs, ents, strict=True)
    ]
    by_partner: dict[str, list[int]] = defaultdict(list)
    by_ent: dict[str, list[int]] = defaultdict(list)
    for m, ((_, p), es) in enumerate(zip(pairs, ents, strict=True)):
        by_partner[p].append(m)
        for e in es:
            by_ent[e].append(m)
    follows = [t > 0 and slots[t - 1].end == s.start for t, s in enumerate(slots)]
    return _Inst(slots, tables, pairs, ent, allowed, dict(by_partner), dict(by_ent), follows, ents)


def _blocks(inst: _Inst, used: Iterable[int]) -> int:
    ts = sorted(set(used))
    return sum(1 for k, t in enumerate(ts) if k == 0 or not (inst.follows[t] and ts[k - 1] == t - 1))


def _quality(inst: _Inst, slot_of: list[int | None]) -> tuple[int, int]:
    """(meetings placed, -total blocks): larger is better."""
    blocks = sum(_blocks(inst, [slot_of[m] for m in ms if slot_of[m] is not None]) for ms in inst.by_partner.values())
    return sum(t is not None for t in slot_of), -blocks


def _heuristic(inst: _Inst) -> list[int | None]:
    """Partners with most meetings (then fewest options) first; for each, try every start
    slot, fill forward then backward taking the most constrained meeting that fits, and
    keep the start that places most meetings in fewest blocks."""
    n = len(inst.slots)
    slot_of: list[int | None] = [None] * len(inst.pairs)
    load = [0] * n
    ent_busy: dict[str, set[int]] = defaultdict(set)

    def opts(m: int) -> int:
        return sum(1 for t in inst.allowed[m] if load[t] < inst.tables and free(m, t))

    def free(m: int, t: int) -> bool:
        return all(t not in ent_busy[e] for e in inst.ents[m])

    order = sorted(
        inst.by_partner,
        key=lambda p: (
            -len(inst.by_partner[p]),
            sum(len(inst.allowed[m]) for m in inst.by_partner[p]),
        ),
    )
    for p in order:
        ms = inst.by_partner[p]
        best: tuple[tuple[int, int], dict[int, int]] | None = None
        for start in range(n):
            todo = sorted(ms, key=opts)
            got: dict[int, int] = {}
            for t in [*range(start, n), *range(start - 1, -1, -1)]:
                if not todo:
                    break
                if load[t] >= inst.tables:
                    continue
                for m in todo:
                    if t in inst.allowed[m] and free(m, t):
                        got[m] = t
                        todo.remove(m)
                        break
            score = (len(got), -_blocks(inst, got.values()))
            if best is None or score > best[0]:
                best = (score, got)
            if len(got) == len(ms) and score[1] == -1:
                break
        for m, t in (best[1] if best else {}).items():
            slot_of[m] = t
            load[t] += 1
            for e in inst.ents[m]:
                ent_busy[e].add(t)
    return slot_of


def _cp_sat(
    inst: _Inst, hint: list[int | None], time_limit: float, workers: int, bound: int | None = None
) -> tuple[list[int | None] | None, bool]:
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    for m, ts in enumerate(inst.allowed):
        for t in ts:
            x[m, t] = model.new_bool_var(f"x{m}_{t}")
            model.add_hint(x[m, t], hint[m] == t)
        model.add_at_most_one(x[m, t] for t in ts)
    at: dict[int, list] = defaultdict(list)
    for (_, t), v in x.items():
        at[t].append(v)
    for vs in at.values():
        model.add(sum(vs) <= inst.tables)
    starts = []
    for group, is_partner in ((inst.by_partner, True), (inst.by_ent, False)):
        for ms in group.values():
            prev = None
            for t in range(len(inst.slots)):
                vs = [x[m, t] for m in ms if (m, t) in x]
                busy = sum(vs) if vs else 0
                if len(vs) > 1:
                    model.add_at_most_one(vs)
                if is_partner and len(ms) > 1 and vs:
                    s = model.new_bool_var("")
                    model.add(s >= busy - (prev if prev is not None and inst.follows[t] else 0))
                    starts.append(s)
                prev = busy if vs else None
    # a partner with one meeting has one block exactly when that meeting is placed
    singles = [x[m, t] for ms in inst.by_partner.values() if len(ms) == 1 for m in ms for t in inst.allowed[m]]
    if bound is not None:
        model.add(sum(x.values()) <= bound)  # redundant, it helps the proof
    weight = len(inst.pairs) + 1
    model.maximize(weight * sum(x.values()) - sum(starts) - sum(singles))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit)
    solver.parameters.num_workers = max(1, int(workers))
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, False
    slot_of: list[int | None] = [None] * len(inst.pairs)
    for (m, t), v in x.items():
        if solver.value(v):
            slot_of[m] = t
    return slot_of, status == cp_model.OPTIMAL


def _build(inst: _Inst, slot_of: list[int | None], method: str, optimal: bool, bound: int = -1) -> Schedule:
    """Number tables slot by slot: a partner continuing a block keeps its table, then its
    first table, then the lowest free one."""
    table_of: dict[int, int] = {}
    home: dict[str, int] = {}
    last: dict[str, tuple[int, int]] = {}  # partner -> (slot, table)
    at: dict[int, list[int]] = defaultdict(list)
    for m, s in enumerate(slot_of):
        if s is not None:
            at[s].append(m)
    for t in range(len(inst.slots)):

        def keep(m: int, t: int = t) -> int | None:
            prev = last.get(inst.pairs[m][1])
            return prev[1] if prev and prev[0] == t - 1 and inst.follows[t] else None

        here = sorted(at[t], key=lambda m: (keep(m) is None, inst.pairs[m][1] not in home, inst.pairs[m][1]))
        free = set(range(1, inst.tables + 1))
        for m in here:
            p = inst.pairs[m][1]
            for want in (keep(m), home.get(p), min(free)):
                if want in free:
                    table_of[m] = want
                    free.discard(want)
                    break
            home.setdefault(p, table_of[m])
            last[p] = (t, table_of[m])
    meetings = sorted(
        (
            Meeting(s, table_of[m], inst.pairs[m][0], inst.pairs[m][1], inst.ent[m])
            for m, s in enumerate(slot_of)
            if s is not None
        ),
        key=lambda x: (x.slot, x.table),
    )
    full = {s for s, ms in at.items() if len(ms) >= inst.tables}
    unplaced = [_why_unplaced(inst, slot_of, m, full) for m, s in enumerate(slot_of) if s is None]
    blocks = {p: _blocks(inst, [slot_of[m] for m in ms if slot_of[m] is not None]) for p, ms in inst.by_partner.items()}
    return Schedule(
        tuple(inst.slots),
        inst.tables,
        tuple(meetings),
        tuple(unplaced),
        {p: b for p, b in blocks.items() if b},
        method,
        optimal,
        bound,
    )


def _why_unplaced(inst: _Inst, slot_of: list[int | None], m: int, full: set[int]) -> Unplaced:
    d, p = inst.pairs[m]
    e = inst.ent[m]
    ts = inst.allowed[m]
    if not ts:
        return Unplaced(
            d,
            p,
            e,
            "no_common_availability",
            f"partner {p} and enterprise {e} share no available slot",
        )
    p_busy = {slot_of[k] for k in inst.by_partner[p]}
    e_busy = {slot_of[k] for x in inst.ents[m] for k in inst.by_ent[x] if k != m}
    return Unplaced(
        d,
        p,
        e,
        "no_free_slot",
        f"{len(ts)} common slots: partner busy in {sum(t in p_busy for t in ts)}, "
        f"enterprise busy in {sum(t in e_busy for t in ts)}, "
        f"all tables taken in {sum(t in full for t in ts)}",
    )


# ---------------------------------------------------------------------------- validation


def validate_schedule(
    schedule: Schedule,
    pairs: Iterable[tuple[str, str]] | None = None,
    *,
    enterprise_of: Mapping[str, str] | None = None,
    enterprise_windows: Mapping[str, Sequence[Window]] | None = None,
    partner_windows: Mapping[str, Sequence[Window]] | None = None,
) -> list[str]:
    """Every broken invariant as a sentence; an empty list means the schedule is valid.

    Checks slot and table ranges, one meeting per (slot, table), nobody in two places at
    once, availability windows, each meeting at most once, and (when ``pairs`` is given)
    that placed plus unplaced meetings are exactly ``pairs``."""
    problems: list[str] = []
    n = len(schedule.slots)
    where: dict[tuple[str, object, int], str] = {}
    seen: set[tuple[str, str]] = set()
    for x in schedule.meetings:
        tag = f"meeting ({x.demand_id}, {x.partner_id})"
        if not 0 <= x.slot < n:
            problems.append(f"{tag} has slot {x.slot} outside 0..{n - 1}")
            continue
        if not 1 <= x.table <= schedule.tables:
            problems.append(f"{tag} has table {x.table} outside 1..{schedule.tables}")
        label = schedule.slots[x.slot].label
        for kind, who in (
            ("table", x.table),
            ("partner", x.partner_id),
            ("enterprise", x.enterprise),
        ):
            key = (kind, who, x.slot)
            if key in where:
                problems.append(f"{kind} {who} double-booked at {label}: {where[key]} and {tag}")
            where[key] = tag
        if enterprise_of is not None:
            want = enterprise_of.get(x.demand_id) or x.demand_id
            if want != x.enterprise:
                problems.append(f"{tag} names enterprise {x.enterprise}, expected {want}")
        for kind, who, wins in (
            ("enterprise", x.enterprise, enterprise_windows),
            ("partner", x.partner_id, partner_windows),
        ):
            if wins and not _available(schedule.slots[x.slot], wins.get(who)):
                problems.append(f"{tag} at {label} is outside the windows of {kind} {who}")
        if (x.demand_id, x.partner_id) in seen:
            problems.append(f"{tag} placed twice")
        seen.add((x.demand_id, x.partner_id))
    if pairs is not None:
        expected = set(pairs)
        unplaced = {(u.demand_id, u.partner_id) for u in schedule.unplaced}
        if overlap := seen & unplaced:
            problems.append(f"placed and unplaced at once: {sorted(overlap)[:5]}")
        if missing := expected - seen - unplaced:
            problems.append(f"meetings lost: {sorted(missing)[:5]}")
        if extra := (seen | unplaced) - expected:
            problems.append(f"meetings not asked for: {sorted(extra)[:5]}")
    return problems
