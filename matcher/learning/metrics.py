"""Ranking metrics over BEIR-shaped runs and judgements (the same definitions as `matcher.evaluate`,
which sits above this layer): graded nDCG@k with gains 2^rel - 1, MRR, recall@k, accuracy@1."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, float]]


def _ranked(scores: Mapping[str, float]) -> list[str]:
    return [t for t, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))]


def per_query(run: Run, qrels: Qrels, k: int = 10) -> dict[str, dict[str, float]]:
    """metric -> demand id -> value, over judged demands with at least one relevant target."""
    out: dict[str, dict[str, float]] = {"ndcg@10": {}, "mrr": {}, "recall@10": {}, "accuracy@1": {}}
    for qid, judged in qrels.items():
        relevant = {t for t, r in judged.items() if r > 0}
        if not relevant:
            continue
        ranked = _ranked(run.get(qid, {}))
        ideal = sorted((r for r in judged.values() if r > 0), reverse=True)[:k]
        dcg = sum((2 ** judged.get(t, 0) - 1) / math.log2(i + 2) for i, t in enumerate(ranked[:k]))
        out["ndcg@10"][qid] = dcg / sum((2**r - 1) / math.log2(i + 2) for i, r in enumerate(ideal))
        first = next((i for i, t in enumerate(ranked) if t in relevant), None)
        out["mrr"][qid] = 0.0 if first is None else 1.0 / (first + 1)
        out["recall@10"][qid] = len(relevant.intersection(ranked[:k])) / len(relevant)
        out["accuracy@1"][qid] = float(bool(ranked) and ranked[0] in relevant)
    return out


def all_metrics(run: Run, qrels: Qrels) -> dict[str, float]:
    return {m: float(np.mean(list(v.values()))) if v else 0.0 for m, v in per_query(run, qrels).items()}
