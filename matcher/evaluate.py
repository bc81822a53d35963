"""Retrieval metrics over BEIR-shaped runs and judgements, and evaluation of canonical tasks.

Runs and judgements are `dict[demand_id, dict[target_id, float]]`; nothing here mutates them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from matcher.retrieval.engine import EngineParams, MatchEngine
from matcher.retrieval.rank import FusionParams, aggregate, fuse, top_k

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]
METRICS = ("ndcg@10", "mrr", "recall@10", "accuracy@1")


def _ranked(scores: Mapping[str, float]) -> list[str]:
    return [t for t, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))]


def ndcg_at(run: Run, qrels: Qrels, k: int = 10) -> float:
    """Mean nDCG@k with graded gains (2^rel - 1), over judged demands with a relevant target."""
    values = []
    for qid, judged in qrels.items():
        ideal = sorted((r for r in judged.values() if r > 0), reverse=True)[:k]
        if not ideal:
            continue
        ranked = _ranked(run.get(qid, {}))[:k]
        dcg = sum((2 ** judged.get(t, 0) - 1) / math.log2(i + 2) for i, t in enumerate(ranked))
        idcg = sum((2**r - 1) / math.log2(i + 2) for i, r in enumerate(ideal))
        values.append(dcg / idcg)
    return float(np.mean(values)) if values else 0.0


def mrr(run: Run, qrels: Qrels) -> float:
    values = []
    for qid, judged in qrels.items():
        if not any(r > 0 for r in judged.values()):
            continue
        rr = 0.0
        for i, t in enumerate(_ranked(run.get(qid, {}))):
            if judged.get(t, 0) > 0:
                rr = 1.0 / (i + 1)
                break
        values.append(rr)
    return float(np.mean(values)) if values else 0.0


def recall_at(run: Run, qrels: Qrels, k: int = 10) -> float:
    values = []
    for qid, judged in qrels.items():
        relevant = {t for t, r in judged.items() if r > 0}
        if relevant:
            values.append(len(relevant.intersection(_ranked(run.get(qid, {}))[:k])) / len(relevant))
    return float(np.mean(values)) if values else 0.0


def accuracy_at_1(run: Run, qrels: Qrels) -> float:
    values = []
    for qid, judged in qrels.items():
        if any(r > 0 for r in judged.values()):
            top = _ranked(run.get(qid, {}))[:1]
            values.append(1.0 if top and judged.get(top[0], 0) > 0 else 0.0)
    return float(np.mean(values)) if values else 0.0


def all_metrics(run: Run, qrels: Qrels) -> dict[str, float]:
    return {
        "ndcg@10": ndcg_at(run, qrels, 10),
        "mrr": mrr(run, qrels),
        "recall@10": recall_at(run, qrels, 10),
        "accuracy@1": accuracy_at_1(run, qrels),
    }


@dataclass(frozen=True)
class MethodResult:
    method: str
    metrics: dict[str, float]
    seconds: float  # ranking time after encoding (encoding is shared by the methods)


METHODS: dict[str, Callable[[FusionParams], FusionParams]] = {
    "lexical": lambda p: replace(p, method="lexical"),
    "dense": lambda p: replace(p, method="dense"),
    "fused": lambda p: p,
    "fit": lambda p: p,  # ranked by the calibrated fit over every target (see rank_by_fit)
}


def evaluate_task(
    task,
    encoder,
    *,
    params: EngineParams | None = None,
    methods: Sequence[str] = ("lexical", "dense", "fused"),
    progress: Callable[[str, int, int], None] | None = None,
    depth: int = 100,
) -> list[MethodResult]:
    """Index the task's capabilities, rank every judged demand and score each method.

    `task` is a `matcher.io.Task`. Demands without judgements are not ranked. Level `partner`
    aggregates capability scores into partners; level `capability` ranks capabilities."""
    params = params or EngineParams()
    engine = MatchEngine(encoder, params)
    caps = task.capabilities
    engine.upsert_partners([])
    engine.upsert_capabilities(caps, _step(progress, "encode capabilities", len(caps)))
    if "fit" in methods:  # the fit's capability-side view standardises over the indexed demands
        engine.upsert_demands(task.demands)
    demands = [d for d in task.demands if d.id in task.qrels]
    cands = engine.candidates_batch(demands, _step(progress, "encode demands", len(demands)))
    results = []
    for name in methods:
        if name == "fit":
            start = time.perf_counter()
            run = rank_by_fit(engine, demands, task, depth)
            results.append(MethodResult(name, all_metrics(run, task.qrels), time.perf_counter() - start))
            continue
        fusion = METHODS[name](params.fusion)
        start = time.perf_counter()
        run = rank_candidates(engine, demands, cands, fusion, params, task.level, depth)
        results.append(MethodResult(name, all_metrics(run, task.qrels), time.perf_counter() - start))
    return results


def rank_by_fit(engine: MatchEngine, demands, task, depth: int = 100, chunk: int = 128) -> dict[str, dict[str, float]]:
    """A run ordered by the calibrated fit alone, over every target of the task."""
    targets = sorted({c.partner_id if task.level == "partner" else c.id for c in task.capabilities})
    run: dict[str, dict[str, float]] = {}
    for lo in range(0, len(demands), chunk):
        fits, _, _ = engine.fits_against(demands[lo : lo + chunk], targets, level=task.level)
        for d, row in zip(demands[lo : lo + chunk], fits):
            best = top_k(row.astype(np.float32), depth)
            run[d.id] = {targets[int(j)]: float(row[j]) for j in best}
    return run


def rank_candidates(
    engine: MatchEngine, demands, cands, fusion: FusionParams, params: EngineParams, level: str, depth: int = 100
) -> dict[str, dict[str, float]]:
    """A BEIR-shaped run from precomputed candidates under one fusion setting."""
    partner_of_row = engine.partner_of_capability_rows()
    run: dict[str, dict[str, float]] = {}
    for demand, cand in zip(demands, cands):
        fused = fuse(cand, fusion)
        if level == "partner":
            partners, scores = aggregate(fused, partner_of_row, params.aggregation)
            run[demand.id] = {
                engine.partner_id_of_number(int(p)): float(s) for p, s in zip(partners[:depth], scores[:depth])
            }
        else:
            run[demand.id] = {
                engine.capability_id_of_row(int(fused.rows[i])): float(fused.score[i])
                for i in top_k(fused.score, depth)
            }
    return run


def _step(progress, label: str, total: int):
    if progress is None:
        return None
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        progress(label, done[0], total)

    return tick


def invert(qrels: Qrels) -> dict[str, dict[str, int]]:
    """Judgements seen from the other side: target -> demand -> grade."""
    out: dict[str, dict[str, int]] = {}
    for did, judged in qrels.items():
        for target, grade in judged.items():
            out.setdefault(target, {})[did] = grade
    return out


def wrongly_ordered(run: Run, qrels: Qrels) -> float:
    """Share of judged pairs of one query with different grades that the run orders the wrong
    way (ties count half; an unranked item ranks last). NaN when no such pair exists."""
    wrong = total = 0.0
    for qid, judged in qrels.items():
        scores = run.get(qid, {})
        grades = sorted(judged.items(), key=lambda kv: kv[1])
        for i, (a, ga) in enumerate(grades):
            for b, gb in grades[i + 1 :]:
                if gb > ga:
                    total += 1
                    sa, sb = scores.get(a, -math.inf), scores.get(b, -math.inf)
                    wrong += 1.0 if sa > sb else 0.5 if sa == sb else 0.0
    return wrong / total if total else float("nan")


REVERSE_METHODS = ("fit", "cosine")


def evaluate_reverse(
    task,
    encoder,
    *,
    params: EngineParams | None = None,
    methods: Sequence[str] = ("fit",),
    progress: Callable[[str, int, int], None] | None = None,
    chunk: int = 128,
) -> list[MethodResult]:
    """The other direction: every judged target (partner, or capability on capability-level
    tasks) ranks every judged demand; the judgements are inverted.

    fit: the calibrated fit (what institute search uses); cosine: the best raw cosine of the
    partner's capabilities, for comparison. Metrics also include `wrong_order` (see
    `wrongly_ordered`), meaningful on graded judgements."""
    engine = MatchEngine(encoder, params or EngineParams())
    engine.upsert_capabilities(task.capabilities, _step(progress, "encode capabilities", len(task.capabilities)))
    engine.upsert_demands(task.demands)  # the fit's capability-side view standardises over them
    demands = [d for d in task.demands if d.id in task.qrels]
    inverted = invert(task.qrels)
    targets = sorted(inverted)
    scores = {m: np.zeros((len(demands), len(targets))) for m in methods}
    start = time.perf_counter()
    tick = _step(progress, "fit every pair", len(demands))
    for lo in range(0, len(demands), chunk):
        fits, feats, cols = engine.fits_against(demands[lo : lo + chunk], targets, level=task.level)
        if "fit" in scores:
            scores["fit"][lo : lo + chunk] = fits
        if "cosine" in scores:
            scores["cosine"][lo : lo + chunk] = np.stack([feats[:, c, 0].max(axis=1) for c in cols], axis=1)
        if tick:
            tick(len(demands[lo : lo + chunk]))
    seconds = time.perf_counter() - start
    results = []
    for name in methods:
        s = scores[name]
        run = {t: {d.id: float(s[i, j]) for i, d in enumerate(demands)} for j, t in enumerate(targets)}
        metrics = all_metrics(run, inverted)
        metrics["wrong_order"] = wrongly_ordered(run, inverted)
        results.append(MethodResult(name, metrics, seconds))
    return results
