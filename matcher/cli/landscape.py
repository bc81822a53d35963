"""``techmatch landscape``: cluster the demands, measure partner coverage, find duplicates, write
landscape.html and landscape.xlsx.

cli.py registers the command with :func:`add_landscape_parser`; MatcherError propagates to
cli.main, which prints it as ``error: ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from matcher.errors import InputError, MatcherError


def add_landscape_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``landscape`` on an argparse subparsers object (runnable: sets ``func``)."""
    help_ = "map the demands: topic clusters, partner coverage, weak directions, near-duplicates (HTML + XLSX)"
    sp = subparsers.add_parser("landscape", help=help_, description=help_)
    src = sp.add_argument_group("input")
    src.add_argument("--task", type=Path, metavar="DIR", help="canonical task folder (qrels.tsv calibrates)")
    src.add_argument("--demands", type=Path, metavar="FILE", help="demand file (CSV/XLSX/JSONL)")
    src.add_argument("--capabilities", type=Path, metavar="FILE", help="capability file")
    src.add_argument("--partners", type=Path, metavar="FILE", help="partner file (names, regions)")
    src.add_argument(
        "--model",
        "-m",
        default=os.environ.get("TECHMATCH_MODEL", "e5-multilingual-small"),
        help="embedding model (default: %(default)s)",
    )
    an = sp.add_argument_group("analysis")
    an.add_argument("--k-min", type=int, default=4, help="fewest clusters tried (%(default)s)")
    an.add_argument("--k-max", type=int, default=24, help="most clusters tried (%(default)s)")
    an.add_argument(
        "--threshold",
        default="auto",
        metavar="auto|FLOAT",
        help="partner score that counts as able to meet a demand; auto: calibrate on the task's "
        "judgements, else the value calibrated on the demo corpus for this model (%(default)s)",
    )
    an.add_argument(
        "--score",
        default="auto",
        choices=("auto", "fit", "dense", "centred", "lexical", "hybrid", "fused"),
        help="which partner score the threshold applies to (auto: the calibrated fit, with its 'possible' "
        "threshold, or the best cut on the task's judgements)",
    )
    an.add_argument("--seed", type=int, default=0)
    out = sp.add_argument_group("output")
    out.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    out.add_argument("--title", default="技术需求图谱 Demand landscape")
    out.add_argument(
        "--show-confidential",
        action="store_true",
        help="include enterprise names and texts of confidential demands (hidden by default)",
    )
    sp.set_defaults(func=run_landscape_command)
    return sp


def run_landscape_command(args: argparse.Namespace, *, stream: TextIO | None = None) -> int:
    """Run the whole landscape for parsed ``args``; prints a summary; returns the exit code."""
    from matcher.cli.ray_option import encoder_for
    from matcher.landscape import (
        CALIBRATED_THRESHOLDS,
        SCORE_KINDS,
        build_landscape,
        calibrate_threshold,
        default_threshold,
    )
    from matcher.landscape.report import findings, write_report
    from matcher.retrieval.engine import MatchEngine

    stream = stream or sys.stdout
    if args.k_min < 2 or args.k_max < args.k_min:
        raise InputError("need 2 <= --k-min <= --k-max", field="k-min")
    threshold = _threshold(args.threshold)
    demands, capabilities, partners, qrels = _load(args)
    if not capabilities:
        raise InputError("no capabilities to measure coverage against", field="capabilities")
    encoder = encoder_for(args, args.model)
    engine = MatchEngine(encoder)
    bar = _progress("embedding", len(capabilities) + len(demands))
    engine.fit(capabilities, demands, partners, progress=bar.update)
    bar.close()

    calibration = None
    kind = None if args.score == "auto" else args.score
    if threshold is None:
        if qrels:
            task = _Judged(demands, qrels)
            calibration = calibrate_threshold(engine, task, kinds=(kind,) if kind else SCORE_KINDS)
        else:
            if kind is None:
                kind = next((k for m, k in CALIBRATED_THRESHOLDS if m == encoder.name), "fit")
            threshold = default_threshold(encoder.name, kind)
    elif kind is None:
        kind = next((k for m, k in CALIBRATED_THRESHOLDS if m == encoder.name), "fit")
    land = build_landscape(
        engine,
        threshold=threshold,
        kind=kind,
        calibration=calibration,
        k_range=range(args.k_min, args.k_max + 1),
        seed=args.seed,
    )
    written = write_report(land, args.out, title=args.title, redact_confidential=not args.show_confidential)
    if calibration is not None:
        print(
            f"threshold calibrated on {calibration.n_demands} judged demands: {calibration.kind} score >= "
            f"{calibration.threshold:.3f} (precision {calibration.precision:.2f}, recall {calibration.recall:.2f}, "
            f"F1 {calibration.f1:.2f})",
            file=stream,
        )
    for line in findings(land):
        print(line, file=stream)
    print("files written:", file=stream)
    for p in written:
        print(f"  {p}", file=stream)
    return 0


class _Judged:
    def __init__(self, demands, qrels) -> None:
        self.demands, self.qrels = demands, qrels


def _threshold(value: str) -> float | None:
    if value.strip().lower() == "auto":
        return None
    try:
        return float(value)
    except ValueError:
        raise InputError(f"--threshold expects 'auto' or a number, got '{value}'", field="threshold") from None


def _load(args: argparse.Namespace) -> tuple[list, list, list, dict]:
    from matcher.io import load_capabilities, load_demands, load_partners, load_task

    partners: list = []
    qrels: dict = {}
    if args.task is not None:
        if args.demands is not None or args.capabilities is not None:
            raise InputError("give --task DIR or --demands/--capabilities files, not both", field="task")
        task = load_task(args.task)
        demands, capabilities = task.demands, task.capabilities
        qrels = task.qrels if task.level == "partner" else _partner_qrels(task.qrels, capabilities)
        if (Path(args.task) / "partners.jsonl").exists() and args.partners is None:
            partners = load_partners(Path(args.task) / "partners.jsonl")
    elif args.demands is not None and args.capabilities is not None:
        demands, capabilities = load_demands(args.demands), load_capabilities(args.capabilities)
    else:
        raise InputError("give --task DIR, or --demands FILE and --capabilities FILE", field="demands")
    if args.partners is not None:
        partners = load_partners(args.partners)
    if not demands:
        raise MatcherError("no demands to map")
    return demands, capabilities, partners, qrels


def _partner_qrels(qrels: dict, capabilities: list) -> dict:
    """Capability judgements as partner judgements: a partner's grade is its best capability's."""
    owner = {c.id: c.partner_id for c in capabilities}
    out: dict[str, dict[str, int]] = {}
    for did, judged in qrels.items():
        for cid, grade in judged.items():
            if cid in owner:
                row = out.setdefault(did, {})
                row[owner[cid]] = max(grade, row.get(owner[cid], grade))
    return out


def _progress(desc: str, total: int):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="text", file=sys.stderr, disable=total < 64 or None)
