"""Reverse-direction quality of alternative feature sets for the fit, each fitted on the demo corpus.

    python docs/fit_feature_forms.py corpora/qiqihar ../shared/data/scifact \\
        ../shared/data/tatoeba-zh-en ../shared/data/csl-disciplines ../shared/data/sbir-firms

The first task is the one every form is fitted on (as the shipped calibration is, with
`FitCalibrator`'s procedure: logistic regression alternating with each partner's best
capability, support from the next four); every task is then ranked the other way (each judged
target ranks the judged demands by its fit, `techmatch evaluate --direction reverse`). The form
"shipped" with the shipped coefficients reproduces `techmatch evaluate`'s reverse figures.
docs/fit.md, "Reverse direction on sbir-firms", has the table this prints.

Features beyond the shipped ones, all properties of the pair and the two collections:
- cosine: the raw cosine of the demand's query vector and the capability's passage vector;
- lexical_zh / lexical_other: the demand's lexical share over its Chinese / other words only;
- cap_lexical(_zh/_other): the capability's view of lexical evidence, BM25 of the capability's
  words (all, Chinese only, other only) in the demand, with the demand collection's statistics,
  as a share of what those words could score.
"""

from __future__ import annotations

import json
import re
import sys
from importlib import resources

import numpy as np
import scipy.sparse as sp

from matcher.evaluate import all_metrics
from matcher.io import load_task
from matcher.retrieval.calibration import _logistic, _sigmoid, features_of
from matcher.retrieval.encoders import open_encoder
from matcher.retrieval.engine import EngineParams, MatchEngine

CJK = re.compile(r"[\u4e00-\u9fff]")
FORMS = {
    "shipped": ("standardised", "demand_standardised", "lexical"),
    "+ cap_lexical": ("standardised", "demand_standardised", "lexical", "cap_lexical"),
    "+ cap_lexical by language": ("standardised", "demand_standardised", "lexical", "cap_lexical_zh",
                                  "cap_lexical_other"),
    "+ cap_lexical_other": ("standardised", "demand_standardised", "lexical", "cap_lexical_other"),
    "lexical by language": ("standardised", "demand_standardised", "lexical_zh", "lexical_other"),
    "both by language": ("standardised", "demand_standardised", "lexical_zh", "lexical_other",
                         "cap_lexical_zh", "cap_lexical_other"),
    "+ cap_lexical_other (full)": ("standardised", "demand_standardised", "lexical", "cap_lexical_other_full"),
    "+ cap_lexical (full)": ("standardised", "demand_standardised", "lexical", "cap_lexical_full"),
    "+ cosine + cap_lexical_other (full)": ("cosine", "standardised", "demand_standardised", "lexical",
                                            "cap_lexical_other_full"),
    "+ cosine + cap_lexical by language (full)": ("cosine", "standardised", "demand_standardised", "lexical",
                                                  "cap_lexical_zh_full", "cap_lexical_other_full"),
    "+ hub": ("standardised", "demand_standardised", "lexical", "hub"),
    "+ hub + other hub": ("standardised", "demand_standardised", "lexical", "hub", "other_hub"),
    "+ cosine": ("cosine", "standardised", "demand_standardised", "lexical"),
    "+ cosine + cap_lexical by language": ("cosine", "standardised", "demand_standardised", "lexical",
                                           "cap_lexical_zh", "cap_lexical_other"),
}
RELEVANT_GRADE = {"qiqihar": 2}  # else 1


def by_language(matrix: sp.csr_matrix, vocabulary: dict[str, int]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The query matrix's Chinese terms and its other terms, as two matrices."""
    chinese = np.zeros(matrix.shape[1], bool)
    for token, j in vocabulary.items():
        chinese[j] = bool(CJK.search(token))
    parts = []
    for keep in (chinese, ~chinese):
        part = matrix.copy()
        part.data = part.data * keep[part.indices]
        part.eliminate_zeros()
        parts.append(part)
    return parts[0], parts[1]


def share(bm25, matrix: sp.csr_matrix, columns: np.ndarray) -> np.ndarray:
    """(n_queries, len(columns)) BM25 of each query over what its words could score."""
    scores = (matrix @ bm25._postings()).tocsc()[:, columns].toarray()
    return scores / np.maximum(bm25.max_scores([], matrix)[:, None], 1e-9)


def task_features(task_dir: str, engine_model: str = "e5-multilingual-small") -> dict:
    """Every feature of every (judged demand, capability of a target) pair, the judgements, and
    the targets' capability blocks."""
    task = load_task(task_dir)
    engine = MatchEngine(open_encoder(engine_model), EngineParams())
    engine.upsert_capabilities(task.capabilities)
    engine.upsert_demands(task.demands)
    demands = [d for d in task.demands if d.id in task.qrels]
    if task.level == "partner":
        targets = sorted({c.partner_id for c in task.capabilities})
        blocks = engine._partner_rows()
        parts = [blocks.get(int(engine._partner_num[t]), np.zeros(0, np.int64)) for t in targets]
    else:
        targets = sorted({t for judged in task.qrels.values() for t in judged})
        parts = [np.array([engine._caps.row_of[t]]) for t in targets]
    rows = np.concatenate(parts)
    caps, dems = engine._caps, engine._dems
    qvecs, qtokens = engine._encode_queries(demands)
    qmat = caps.bm25.query_matrix(qtokens)
    base = np.zeros((len(demands), len(rows), 4))
    hub, other_hub = np.zeros(base.shape[:2]), np.zeros(base.shape[:2])
    for lo in range(0, len(demands), 64):
        block = slice(lo, lo + 64)
        side = engine._demand_side(demands[block], qvecs[block])
        scores = engine._with_demand_view(caps.pair_scores(qvecs[block], qmat[block], rows), side, rows=rows)
        base[block] = features_of(scores)
        hub[block] = np.broadcast_to(scores.offset, hub[block].shape)
        other_hub[block] = np.broadcast_to(scores.other_offset, hub[block].shape)
    feats = {"hub": hub, "other_hub": other_hub, "cosine": base[..., 0], "standardised": base[..., 1],
             "lexical": base[..., 2], "demand_standardised": base[..., 3]}
    zh, other = by_language(qmat, caps.bm25.vocabulary_)
    feats["lexical_zh"], feats["lexical_other"] = share(caps.bm25, zh, rows), share(caps.bm25, other, rows)
    capability = {c.id: c for c in task.capabilities}
    ctokens = engine.tokenizer_batch([capability[caps.ids[r]].full_text for r in rows])
    cmat = dems.bm25.query_matrix(ctokens)
    drows = np.array([dems.row_of[d.id] for d in demands])
    feats["cap_lexical"] = share(dems.bm25, cmat, drows).T
    zh, other = by_language(cmat, dems.bm25.vocabulary_)
    feats["cap_lexical_zh"] = share(dems.bm25, zh, drows).T
    feats["cap_lexical_other"] = share(dems.bm25, other, drows).T
    # the same shares over what *all* the capability's words could score, the words no demand
    # has counted at the idf of a word in no document: a capability in another language than the
    # demands scores little, even when its numbers and names match
    unseen = float(np.log1p((dems.bm25.n_docs_ + 0.5) / 0.5)) * (dems.bm25.k1 + 1)
    for part, tokens_of in (("", lambda t: True), ("_zh", lambda t: bool(CJK.search(t))),
                            ("_other", lambda t: not CJK.search(t))):
        known = dems.bm25.max_scores([], {"": cmat, "_zh": zh, "_other": other}[part])
        missing = np.array([sum(1 for t in ts if tokens_of(t) and t not in dems.bm25.vocabulary_)
                            for ts in ctokens], np.float64)
        attained = feats["cap_lexical" + part] * known[None, :]
        feats["cap_lexical" + part + "_full"] = attained / np.maximum(known + missing * unseen, 1e-9)[None, :]
    grade = np.zeros((len(demands), len(targets)), np.int8)
    position = {t: j for j, t in enumerate(targets)}
    for i, d in enumerate(demands):
        for t, g in task.qrels[d.id].items():
            if t in position:
                grade[i, position[t]] = g
    return {"name": task.name, "feats": feats, "bounds": np.cumsum([0, *map(len, parts)]), "grade": grade,
            "demands": [d.id for d in demands], "targets": targets}


def partner_logits(x: np.ndarray, bounds: np.ndarray, coef, intercept, support_coef, top_m=5, decay=0.5):
    """(nd, n_targets) logits, each target's best capability and its support (as `partner_fits`)."""
    logits = x @ coef + intercept
    nd, nt = logits.shape[0], len(bounds) - 1
    out, best, support = np.zeros((nd, nt)), np.zeros((nd, nt), np.int64), np.zeros((nd, nt))
    for j in range(nt):
        block = logits[:, bounds[j]:bounds[j + 1]]
        order = np.argsort(-block, axis=1, kind="stable")[:, :top_m]
        ranked = np.take_along_axis(block, order, 1)
        s = sum(_sigmoid(ranked[:, k]) * decay ** k for k in range(1, ranked.shape[1]))
        out[:, j], best[:, j], support[:, j] = ranked[:, 0] + support_coef * s, bounds[j] + order[:, 0], s
    return out, best, support


def fit(task: dict, names, l2: float = 1.0, rounds: int = 3):
    x = np.stack([task["feats"][n] for n in names], -1)
    relevant = (task["grade"] >= RELEVANT_GRADE.get(task["name"], 1)).astype(float)
    coef, intercept = np.array([2.0 if "lexical" in n else 1.0 for n in names]), 0.0
    for _ in range(rounds):
        _, best, support = partner_logits(x, task["bounds"], coef, intercept, 0.0)
        i = np.repeat(np.arange(x.shape[0]), best.shape[1])
        design = np.c_[x[i, best.ravel()], support.ravel()]
        c, intercept = _logistic(design, relevant.ravel(), l2)
        coef = c[:-1]
    return coef, intercept, c[-1]


def reverse(task: dict, names, coef, intercept, support_coef) -> tuple[float, float]:
    x = np.stack([task["feats"][n] for n in names], -1)
    logits, _, _ = partner_logits(x, task["bounds"], coef, intercept, support_coef)
    grade, demands = task["grade"], task["demands"]
    judged = [j for j in range(grade.shape[1]) if (grade[:, j] > 0).any()]
    run = {task["targets"][j]: dict(zip(demands, logits[:, j].tolist())) for j in judged}
    qrels = {task["targets"][j]: {demands[i]: int(grade[i, j]) for i in np.flatnonzero(grade[:, j] > 0)}
             for j in judged}
    m = all_metrics(run, qrels)
    return m["ndcg@10"], m["mrr"]


def main(task_dirs: list[str]) -> None:
    tasks = [task_features(t) for t in task_dirs]
    shipped = json.loads(resources.files("matcher.retrieval").joinpath("default_calibration.json").read_text())
    print("form (fitted on " + tasks[0]["name"] + ")" + "".join(f" | {t['name']}" for t in tasks))
    for form, names in FORMS.items():
        if form == "shipped":
            c = np.array(shipped["coef"])
            coef, intercept, support = c[:-1], shipped["intercept"], c[-1]
        else:
            coef, intercept, support = fit(tasks[0], names)
        cells = [f"{nd:.4f} / {mrr:.4f}" for nd, mrr in (reverse(t, names, coef, intercept, support) for t in tasks)]
        print(f"{form} | " + " | ".join(cells), flush=True)
        print("    coefficients: " + ", ".join(f"{n} {v:.3f}" for n, v in zip(names, coef))
              + f", support {support:.2f}, intercept {intercept:.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
