"""Fused quality of alternative lexical weights, on the candidates `techmatch evaluate` fuses.

    python docs/fusion_forms.py corpora/qiqihar ../shared/data/scifact ...

Prints, per task, its headline metric for each form in FORMS (docs/fit.md, "Fusion"). The
candidates come from the engine once per task (embeddings from the cache), then every form
re-fuses them exactly as `rank.fuse` does with its own weight.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from matcher.evaluate import all_metrics
from matcher.io import load_task
from matcher.retrieval.collection import Candidates
from matcher.retrieval.encoders import open_encoder
from matcher.retrieval.engine import EngineParams, MatchEngine
from matcher.retrieval.rank import Fused, FusionParams, aggregate, fuse, top_k

HEADLINE = {"scifact": "ndcg@10", "qiqihar": "ndcg@10", "tatoeba-zh-en": "accuracy@1"}  # else MRR


def contrast(c: Candidates) -> float:
    best = float(c.lexical.max())
    return 1.0 - float(c.lexical.mean()) / best


# Each form maps a query's candidates and their shipped fusion (whose min-max-scaled dense and
# max-scaled lexical scores every form reuses) to its own lexical weight.
FORMS: dict[str, Callable[[Candidates, Fused], float]] = {
    "0.5 (third session)": lambda c, f: 0.5 * c.coverage,
    "0.5 x contrast (session 6)": lambda c, f: 0.5 * c.coverage * contrast(c),
    "0.7 x contrast": lambda c, f: 0.7 * c.coverage * contrast(c),
    "1.0 x contrast": lambda c, f: 1.0 * c.coverage * contrast(c),
    "0.5 x contrast^0.5": lambda c, f: 0.5 * c.coverage * contrast(c) ** 0.5,
    "0.5 x (1 - median/best)": lambda c, f: 0.5 * c.coverage * (1 - float(np.median(c.lexical) / c.lexical.max())),
    "0.5 x dense-relative contrast": lambda c, f: c.coverage * contrast(c) / (contrast(c) + 1 - f.dense_norm.mean()),
    "0.5 x (0.75 + 0.25 contrast)": lambda c, f: 0.5 * c.coverage * (0.75 + 0.25 * contrast(c)),
    "zh 0.4 x contrast, other 0.8 x contrast": lambda c, f: c.coverage * contrast(c) * (0.8 - 0.4 * c.chinese_share),
}


def refuse(c: Candidates, weight: Callable[[Candidates, Fused], float] | None) -> np.ndarray:
    shipped = fuse(c, FusionParams())
    if weight is None or not len(c.lexical) or c.lexical.max() <= 0:
        return shipped.score
    w = min(1.0, weight(c, shipped))
    return (1 - w) * shipped.dense_norm + w * shipped.lexical_norm


def main(paths: list[str]) -> None:
    encoder = open_encoder("e5-multilingual-small")
    rows = {name: [] for name in [*FORMS, "shipped"]}
    names = []
    for path in paths:
        task = load_task(path)
        engine = MatchEngine(encoder, EngineParams())
        engine.upsert_capabilities(task.capabilities)
        demands = [d for d in task.demands if d.id in task.qrels]
        cands = engine.candidates_batch(demands)
        por = engine.partner_of_capability_rows()
        key = HEADLINE.get(task.name, "mrr")
        names.append(f"{task.name} {key}")
        for name in rows:
            run = {}
            for d, c in zip(demands, cands):
                s = np.asarray(refuse(c, FORMS.get(name)), np.float32)
                if task.level == "partner":
                    z = np.zeros(len(c.rows), np.float32)
                    p, sc = aggregate(Fused(c.rows, s, z, z, 0.0), por, engine.params.aggregation)
                    run[d.id] = {engine.partner_id_of_number(int(a)): float(b) for a, b in zip(p[:100], sc[:100])}
                else:
                    run[d.id] = {engine._caps.ids[int(c.rows[i])]: float(s[i]) for i in top_k(s, 100)}
            rows[name].append(all_metrics(run, task.qrels)[key])
    print("form".ljust(42) + "".join(n.rjust(26) for n in names))
    for name, vals in rows.items():
        print(name.ljust(42) + "".join(f"{v:26.4f}" for v in vals))


if __name__ == "__main__":
    main(sys.argv[1:])
