"""How well the filling check's "vague" flag finds the demands that say too little to match.

Two measurements on a task folder whose authors marked demands as deliberately vague or
one-line (``authoring/demand_topics.tsv``, column ``note`` with ``hard:vague`` / ``hard:short``):
precision and recall of the flag against those marks, and the judged nDCG@10 of the fused
ranking for the flagged demands against the rest (the flag is only useful if flagged demands
really match worse).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from matcher.errors import InputError
from matcher.evaluate import ndcg_at, rank_candidates
from matcher.filling import ASPECTS, check_demand
from matcher.retrieval.engine import EngineParams, MatchEngine

LABELS_FILE = "authoring/demand_topics.tsv"


@dataclass
class Agreement:
    name: str  # which marked set the flag is compared with
    marked: int
    flagged: int
    true_positives: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.flagged if self.flagged else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.marked if self.marked else 0.0


@dataclass
class FillingReport:
    demands: int
    flagged: list[str]
    agreements: list[Agreement]
    ndcg_flagged: float
    ndcg_rest: float
    judged_flagged: int  # flagged demands with a relevant judged target (the nDCG means are over these)
    judged_rest: int
    ndcg_by_found: dict[int, tuple[int, float]]  # substance aspects found -> (demands, mean nDCG@10)
    missing_counts: dict[str, int]
    field: str  # "text" (as filed) or "en" (the English versions)


def read_marks(task_dir: Path) -> dict[str, set[str]]:
    """Demand ids per authoring mark ("vague", "short")."""
    path = task_dir / LABELS_FILE
    if not path.exists():
        raise InputError("no authoring marks: the vagueness check needs the demands marked hard:vague / "
                         "hard:short", file=str(path))
    marks: dict[str, set[str]] = {"vague": set(), "short": set()}
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            for tag in (row.get("note") or "").split(";"):
                tag = tag.strip()
                if tag.startswith("hard:") and tag[5:] in marks:
                    marks[tag[5:]].add(row["demand_id"])
    return marks


def per_demand_ndcg(task, encoder, params: EngineParams | None = None) -> dict[str, float]:
    """nDCG@10 of the fused partner (or capability) ranking for every judged demand."""
    params = params or EngineParams()
    engine = MatchEngine(encoder, params)
    engine.upsert_partners([])
    engine.upsert_capabilities(task.capabilities)
    demands = [d for d in task.demands if d.id in task.qrels]
    cands = engine.candidates_batch(demands)
    run = rank_candidates(engine, demands, cands, params.fusion, params, task.level)
    return {d.id: ndcg_at({d.id: run[d.id]}, {d.id: task.qrels[d.id]}) for d in demands
            if any(r > 0 for r in task.qrels[d.id].values())}


def mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def filling_report(task, task_dir: Path, encoder, *, english: bool = False) -> FillingReport:
    marks = read_marks(task_dir)
    checks = {}
    for d in task.demands:
        title, text = d.title, d.text
        if english:
            title, text = d.extra.get("title_en") or title, d.extra.get("text_en") or text
        checks[d.id] = check_demand(title, text)
    flagged = sorted(i for i, c in checks.items() if c.vague)
    ids = set(checks)
    agreements = []
    compared = (("vague", marks["vague"] & ids), ("vague or one-line", (marks["vague"] | marks["short"]) & ids))
    for name, marked in compared:
        agreements.append(Agreement(name, len(marked), len(flagged), len(marked.intersection(flagged))))
    ndcg = per_demand_ndcg(task, encoder)
    flag_set = set(flagged)
    by_found: dict[int, list[float]] = {}
    for i, v in ndcg.items():
        by_found.setdefault(sum(k in checks[i].found for k in ("problem", "current", "constraints", "target")),
                            []).append(v)
    return FillingReport(
        demands=len(checks), flagged=flagged, agreements=agreements,
        ndcg_flagged=mean([v for i, v in ndcg.items() if i in flag_set]),
        ndcg_rest=mean([v for i, v in ndcg.items() if i not in flag_set]),
        judged_flagged=sum(i in flag_set for i in ndcg), judged_rest=sum(i not in flag_set for i in ndcg),
        ndcg_by_found={n: (len(v), mean(v)) for n, v in sorted(by_found.items())},
        missing_counts={k: sum(k in c.missing for c in checks.values()) for k in ASPECTS},
        field="en" if english else "text",
    )
