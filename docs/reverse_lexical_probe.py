"""Probe: does a capability's view of lexical evidence lift the reverse direction?

    python docs/reverse_lexical_probe.py TASK_DIR

Every judged target ranks the judged demands by the fit's logit plus beta x the target's best
capability's BM25 over the demand collection (the capability's words as the query) as a share of
what it could attain; beta = 0 is `techmatch evaluate --direction reverse` (docs/fit.md).
"""

import sys
import time

import numpy as np

from matcher.evaluate import all_metrics, invert, wrongly_ordered
from matcher.io import load_task
from matcher.retrieval.encoders import open_encoder
from matcher.retrieval.engine import EngineParams, MatchEngine

t0 = time.time()
task = load_task(sys.argv[1])
engine = MatchEngine(open_encoder("e5-multilingual-small"), EngineParams())
engine.upsert_capabilities(task.capabilities)
engine.upsert_demands(task.demands)
demands = [d for d in task.demands if d.id in task.qrels]
inverted = invert(task.qrels)
targets = sorted(inverted)
fits = np.zeros((len(demands), len(targets)))
for lo in range(0, len(demands), 128):
    f, _, _ = engine.fits_against(demands[lo:lo + 128], targets, level=task.level)
    fits[lo:lo + 128] = f
print("fits", f"{time.time()-t0:.0f}s", flush=True)
caps = engine._caps
cap_ids = list(caps.ids)
cap_of = {c.id: c for c in task.capabilities}
texts = [cap_of[i].full_text for i in cap_ids]
toks = engine.tokenizer_batch(texts)
bm = engine._dems.bm25
Q = bm.query_matrix(toks)
S = (Q @ bm._postings()).tocsc()
attain = bm.max_scores(toks, Q)
drows = np.array([engine._dems.row_of[d.id] for d in demands])
S = S[:, drows].toarray() / np.maximum(attain[:, None], 1e-9)  # (n_caps, n_judged_demands)
print("capview", f"{time.time()-t0:.0f}s", flush=True)
if task.level == "partner":
    pid = np.array([cap_of[i].partner_id for i in cap_ids])
    L = np.stack([S[pid == t].max(axis=0) for t in targets], axis=1)  # (n_dem, n_targets)
else:
    pos = {c: i for i, c in enumerate(cap_ids)}
    L = S[[pos[t] for t in targets]].T
logit = np.log(np.clip(fits, 1e-12, 1)) - np.log(np.clip(1 - fits, 1e-12, 1))
for beta in (0, 2, 4, 8, 16, 32):
    s = logit + beta * L
    run = {t: {d.id: float(s[i, j]) for i, d in enumerate(demands)} for j, t in enumerate(targets)}
    m = all_metrics(run, inverted)
    wrong = wrongly_ordered(run, inverted)
    print(f"beta {beta:3d} ndcg@10 {m['ndcg@10']:.4f} mrr {m['mrr']:.4f} wrong {wrong:.4f}", flush=True)
