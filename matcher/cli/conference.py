"""``techmatch conference``: rank every demand, assign meetings, schedule them, write the files.

cli.py registers the command with :func:`add_conference_parser` and runs it with
:func:`run_conference_command`, passing ``build_engine(args)``: an object with
``rank_batch_fn()`` (demands -> {demand_id: [PartnerMatch]}) and ``partners``.
MatcherError propagates to cli.main, which prints it as ``error: ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from matcher.errors import InputError, MatcherError

CHECKPOINT_NAME = "ranking-checkpoint.jsonl"


def add_conference_parser(
    subparsers: Any, build_engine: Callable[[argparse.Namespace], Any] | None = None
) -> argparse.ArgumentParser:
    """Register ``conference`` on an argparse subparsers object. With ``build_engine`` the
    command is runnable (``args.func``); without it, running it says it is not wired."""
    help_ = "plan a matchmaking conference: rank, assign, schedule, write CSV/XLSX and agendas"
    sp = subparsers.add_parser("conference", help=help_, description=help_)
    src = sp.add_argument_group("input")
    src.add_argument("--demands", type=Path, metavar="FILE", help="demand file (CSV/XLSX/JSONL)")
    src.add_argument("--capabilities", type=Path, metavar="FILE", help="capability file")
    src.add_argument("--task", type=Path, metavar="DIR", help="canonical task folder instead")
    src.add_argument("--limit", type=int, metavar="N", help="only the first N demands")
    src.add_argument(
        "--model",
        "-m",
        default=os.environ.get("TECHMATCH_MODEL", "e5-multilingual-small"),
        help="embedding model (default: %(default)s)",
    )
    src.add_argument("--k", type=int, default=20, help="candidate partners per demand (%(default)s)")
    src.add_argument("--chunk-size", type=int, default=64, help="demands ranked per chunk")

    ac = sp.add_argument_group("assignment")
    ac.add_argument("--capacity", type=int, default=3, help="meetings per partner (%(default)s)")
    ac.add_argument("--min-per-demand", type=int, default=1, help="soft minimum (%(default)s)")
    ac.add_argument("--max-per-demand", type=int, default=3, help="maximum (%(default)s)")
    ac.add_argument("--min-score", type=float,
                    help="no meeting below this fit (default: the calibration's 'possible' threshold; 0 for none)")
    ac.add_argument(
        "--exclude",
        type=Path,
        action="append",
        default=[],
        metavar="FILE.csv",
        help="pairs never to propose: columns demand_id,partner_id, or enterprise,partner_id "
        "for existing contracts (repeatable)",
    )
    ac.add_argument(
        "--exclude-rule",
        "--rule",
        dest="exclude_rule",
        action="append",
        default=[],
        metavar="RULE",
        help="a rule (repeatable): DEMAND_FIELD=PARTNER_FIELD excludes pairs whose fields are equal "
        "(enterprise=owner); 'at most N per partner FIELD' caps an organisation's teams together; "
        "'at most N per demand FIELD and partner' caps one partner's meetings with a county's "
        "enterprises; 'at least 1 local|foreign DEMAND_FIELD=PARTNER_FIELD' asks for a local or "
        "foreign partner per demand where one qualifies",
    )
    ac.add_argument("--rules", type=Path, metavar="FILE.txt", help="rules as above, one per line (# comments)")
    ac.add_argument(
        "--pin",
        type=Path,
        metavar="FILE.csv",
        help="pairs to keep: demand_id,partner_id; with a 'confirmed' column (yes/1/是), only the "
        "confirmed rows, so a previous assignment.csv re-runs keeping what was confirmed",
    )
    ac.add_argument(
        "--quota-column",
        default="meetings",
        metavar="NAME",
        help="demand file column with the meetings each demand wants (1, 3, 5 ...); its maximum, "
        "and its minimum at most that (%(default)s; absent or empty: the global min/max)",
    )
    ac.add_argument("--partner-min", type=int, default=0, help="soft minimum meetings per partner (%(default)s)")
    ac.add_argument(
        "--fair",
        action="store_true",
        help="maximise the worst-off demand's best score first (max-min), then total affinity",
    )
    ac.add_argument(
        "--method",
        choices=("min_cost_flow", "milp", "greedy"),
        default="min_cost_flow",
        help="solver (%(default)s; milp: HiGHS at zero gap, a slower cross-check)",
    )
    ac.add_argument("--alternates", type=int, default=3, help="alternate partners listed per meeting")

    sc = sp.add_argument_group("schedule")
    sc.add_argument("--slots", default="09:00-12:00,14:00-17:00", help="sessions (%(default)s)")
    sc.add_argument("--slot-minutes", type=int, default=20, help="meeting length (%(default)s)")
    sc.add_argument("--tables", type=int, default=20, help="tables in the hall (%(default)s)")
    sc.add_argument(
        "--availability",
        type=Path,
        metavar="FILE.csv",
        help="columns side (enterprise|partner), id, windows like 09:00-11:00;14:00-15:00",
    )
    sc.add_argument("--schedule-seconds", type=float, default=10.0, help="CP-SAT time limit")

    out = sp.add_argument_group("output")
    out.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    out.add_argument("--resume", action="store_true", help="continue an interrupted ranking")
    out.add_argument("--title", default="技术需求对接会 Technology matchmaking conference")
    out.add_argument("--lang", choices=("zh", "en", "ru"), default=_default_lang(),
                     help="language of the printed summary and suggestions (default: zh or ru when $LANG is "
                          "Chinese or Russian, else en)")
    out.add_argument("--pdf", action="store_true", help="also write A4 PDF agendas (needs techmatch[pdf])")

    def run(args: argparse.Namespace) -> int:
        if build_engine is None:
            raise MatcherError("the conference command is not wired to an engine in this build")
        return run_conference_command(args, build_engine)

    sp.set_defaults(func=run)
    return sp


def run_conference_command(
    args: argparse.Namespace,
    build_engine: Callable[[argparse.Namespace], Any],
    *,
    stream: TextIO | None = None,
) -> int:
    """Run the whole pipeline for parsed ``args``; prints a summary; returns the exit code."""
    from tqdm import tqdm

    from matcher.cli.ray_option import conference_ranking
    from matcher.conference.assign import AssignmentConstraints, assign
    from matcher.conference.outputs import write_outputs
    from matcher.conference.run import candidate_table, default_floor
    from matcher.conference.schedule import make_slots, schedule_meetings

    stream = stream or sys.stdout
    # validate everything cheap before the expensive ranking
    slots = make_slots(args.slots, args.slot_minutes)
    demands = _load_demands(args)
    specs = list(args.exclude_rule) + (_rule_lines(args.rules) if args.rules else [])
    exclusions, rules, group_rules = _exclusions(args.exclude, specs)
    constraints = AssignmentConstraints(
        capacity=args.capacity,
        min_per_demand=args.min_per_demand,
        max_per_demand=args.max_per_demand,
        min_score=default_floor() if args.min_score is None else args.min_score,
        exclusions=frozenset(exclusions),
        exclusion_rules=tuple(rules),
        pins=tuple(_pairs(args.pin)) if args.pin else (),
        quotas=_quotas(demands, args.quota_column),
        partner_min=args.partner_min,
        group_rules=tuple(group_rules),
        fair=args.fair,
    )
    ent_windows, partner_windows = _availability(args.availability)

    engine = build_engine(args)
    partners = engine.partners
    partners = list(partners.values()) if isinstance(partners, Mapping) else list(partners)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = out_dir / CHECKPOINT_NAME
    if checkpoint.exists() and not args.resume:
        print(
            f"removing the old checkpoint {checkpoint} (use --resume to continue it)",
            file=sys.stderr,
        )
        checkpoint.unlink()
    with tqdm(total=len(demands), desc="ranking demands", unit="demand", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        ranked = conference_ranking(args, engine, demands, checkpoint, progress)

    result = assign(candidate_table(ranked), constraints, demands=demands, partners=partners, method=args.method,
                    alternates=args.alternates)
    enterprise_of = {d.id: d.enterprise or d.id for d in demands}
    schedule = schedule_meetings(
        [(a.demand_id, a.partner_id) for a in result.pairs],
        slots,
        args.tables,
        enterprise_of=enterprise_of,
        enterprise_windows=ent_windows,
        partner_windows=partner_windows,
        time_limit=args.schedule_seconds,
    )
    written = write_outputs(out_dir, result, schedule, demands, partners, ranked, title=args.title, pdf=args.pdf)
    from matcher.conference.summary import plain_summary

    lang = getattr(args, "lang", None) or "en"
    for line in plain_summary(result, schedule, demands, partners, lang=lang):
        print(line, file=stream)
    print("\n" + _IN_DETAIL[lang], file=stream)
    _print_summary(stream, result, schedule, len(demands), written, out_dir, lang=lang)
    return 0


def _load_demands(args: argparse.Namespace) -> list:
    from matcher.io import load_demands, load_task

    if args.task is not None:
        demands = load_task(args.task).demands
    elif args.demands is not None:
        demands = load_demands(args.demands)
    else:
        raise InputError("give --demands FILE or --task DIR", field="demands")
    return demands[: args.limit] if args.limit else demands


def _table(path: Path, *options: tuple[str, ...]) -> tuple[tuple[str, ...], list[tuple[int, dict]]]:
    """Rows of a CSV/XLSX file as (row number, {lower-case column: value}), checked against
    the first option of required columns that the header has."""
    from matcher.io.ingest import read_table

    df = read_table(path)
    cols = {str(c).strip().lower(): c for c in df.columns}
    needed = next((o for o in options if all(c in cols for c in o)), None)
    if needed is None:
        want = " or ".join(",".join(o) for o in options)
        raise InputError(f"expected columns {want}; found {', '.join(cols) or 'none'}", file=str(path))
    rows = []
    for row, rec in zip(df.index, df.to_dict("records"), strict=True):
        vals = {k: str(rec[c]).strip() for k, c in cols.items()}
        for c in needed:
            if not vals[c]:
                raise InputError("empty value", file=str(path), row=int(row), field=c)
        rows.append((int(row), vals))
    return needed, rows


CONFIRMED = {"1", "yes", "y", "true", "confirmed", "是", "已确认", "确认"}


def _pairs(path: Path) -> list[tuple[str, str]]:
    _, rows = _table(path, ("demand_id", "partner_id"))
    if rows and "confirmed" in rows[0][1]:
        rows = [(r, v) for r, v in rows if v["confirmed"].strip().casefold() in CONFIRMED]
    return [(v["demand_id"], v["partner_id"]) for _, v in rows]


def _rule_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=str(path)) from None
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def _quotas(demands: list, column: str) -> dict[str, int]:
    """demand_id -> meetings wanted, from the demand file's quota column (extra field)."""
    out: dict[str, int] = {}
    for row, d in enumerate(demands, start=1):
        raw = str(d.extra.get(column, "") or "").strip()
        if not raw or raw.casefold() == "nan":
            continue
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if value < 0 or value != int(value):
            raise InputError(f"'{raw}' is not a whole number of meetings >= 0", row=row, field=column)
        out[d.id] = int(value)
    return out


def _exclusions(files: list[Path], rule_specs: list[str]) -> tuple[set, list, list]:
    from matcher.conference.assign import PairListRule
    from matcher.conference.rules import parse_rule, split_rules

    pairs: set[tuple[str, str]] = set()
    contracts: set[tuple[str, str]] = set()
    for path in files:
        cols, rows = _table(path, ("demand_id", "partner_id"), ("enterprise", "partner_id"))
        target = pairs if cols[0] == "demand_id" else contracts
        target.update((v[cols[0]], v["partner_id"]) for _, v in rows)
    rules: list = [PairListRule(frozenset(contracts))] if contracts else []
    parsed = []
    for spec in rule_specs:
        try:
            parsed.append(parse_rule(spec))
        except InputError as exc:
            raise InputError(exc.reason, field="exclude-rule") from None
    same, group = split_rules(parsed)
    return pairs, rules + same, group


def _availability(path: Path | None) -> tuple[dict, dict]:
    from matcher.conference.schedule import parse_windows

    ent: dict[str, list] = {}
    partner: dict[str, list] = {}
    if path is None:
        return ent, partner
    for row, v in _table(path, ("side", "id", "windows"))[1]:
        side = v["side"].lower()
        if side not in ("enterprise", "partner"):
            raise InputError("side must be enterprise or partner", file=str(path), row=row, field="side")
        target = ent if side == "enterprise" else partner
        try:
            target.setdefault(v["id"], []).extend(parse_windows(v["windows"]))
        except InputError as exc:
            raise InputError(exc.reason, file=str(path), row=row, field="windows") from None
    return ent, partner


_IN_DETAIL = {"zh": "详细数据：", "en": "In detail:", "ru": "Подробно:"}


def _default_lang() -> str:
    import os

    locale = os.environ.get("LC_ALL") or os.environ.get("LANG") or ""
    return next((lang for lang in ("zh", "ru") if locale.startswith(lang)), "en")


def floor_line(result) -> str:
    from matcher.conference.assign import floor_report

    return floor_report(result)


def _best(x: float) -> str:
    return f"{x:.4f}" if x != float("-inf") else "none"


def _print_summary(stream: TextIO, result, schedule, n_demands: int, written: list[Path], out_dir: Path,
                   lang: str = "en") -> None:
    """The numbers behind the plain summary (labels in English); the suggestions in `lang`."""
    from collections import Counter

    reasons = Counter(s.reason for s in result.shortfalls)
    unplaced = Counter(u.reason for u in schedule.unplaced)
    rows = [
        ("demands", f"{n_demands}"),
        ("meetings assigned", f"{len(result.pairs)}"),
        ("objective (exact)", f"{result.objective:.4f}"),
        (
            "objective (greedy)",
            f"{result.greedy_objective:.4f}  (gap {result.gap:.4f}, {result.gap_pct:.2f}%)",
        ),
        (
            "minimum slots filled",
            f"{result.min_slots_filled}/{result.min_slots_required}  (greedy {result.greedy_min_slots_filled})",
        ),
        (
            "demands below minimum",
            f"{len(result.shortfalls)}  " + ", ".join(f"{r} {n}" for r, n in reasons.most_common()),
        ),
        (
            "partners fully booked",
            f"{len(result.binding_partners)}  "
            + ", ".join(f"{b.partner_id} ({len(b.wanted_by)} more requests)" for b in result.binding_partners[:5]),
        ),
        (
            "meetings scheduled",
            f"{len(schedule.meetings)} of at most {schedule.bound} in {len(schedule.slots)} slots x "
            f"{schedule.tables} tables; {schedule.total_blocks} partner blocks"
            f" ({schedule.method}{', optimal' if schedule.optimal else ''})",
        ),
        (
            "meetings unscheduled",
            f"{len(schedule.unplaced)}  " + ", ".join(f"{r} {n}" for r, n in unplaced.most_common()),
        ),
        ("files written", f"{len(written)} under {out_dir}"),
    ]
    extra = []
    if result.partner_min_required:
        extra.append(("partner minimum filled", f"{result.partner_min_filled}/{result.partner_min_required}"))
    if result.wishes_wanted:
        extra.append(("local/foreign wishes met", f"{result.wishes_met}/{result.wishes_wanted}"))
    if result.worst_best is not None:
        fair = "" if result.fair_threshold is None else "  (max-min first: --fair)"
        greedy = "" if result.greedy_worst_best is None else f"  (greedy {_best(result.greedy_worst_best)})"
        lost = result.worst_best == float("-inf")
        none = "  (none: a demand with eligible candidates has no meeting)" if lost else ""
        extra.append(("worst-off best score", f"{_best(result.worst_best)}{greedy}{fair}{none}"))
    if result.min_score is not None:
        extra.append(("quality floor", floor_line(result)))
    rows[6:6] = extra
    for k, fix in enumerate(result.suggestions[:10]):
        rows.append(("to meet every minimum" if k == 0 else "", fix.text(lang)))
    if len(result.suggestions) > 10:
        rows.append(("", f"... {len(result.suggestions) - 10} more in unmet.csv"))
    fewer = result.min_slots_filled - result.greedy_min_slots_filled
    if fewer > 0:
        rows.insert(5, ("", f"greedy fills {fewer} fewer minimum slots, so its affinity is not comparable"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v.rstrip()}", file=stream)
    for p in written:
        if p.parent == out_dir or p.name == "index.html":
            print(f"  {p}", file=stream)
