"""Quality beside speed: techmatch's fused ranking against the naive stack on scifact and sbir-firms.

Both sides use the same model and the same embeddings (documents and queries read from the
engine's embedding cache; queries are encoded once if missing), so the difference is BM25
implementation and tokens, fusion and partner aggregation:

* techmatch: `matcher.evaluate.evaluate_task` with the shipped defaults (lexical, dense, fused);
* naive (`benchmarks/naive.py`): rank_bm25 BM25Okapi over whitespace tokens, numpy exact cosine,
  RRF (k=60) and min-max fusion by hand, partner = its best capability.

    python benchmarks/bench_quality.py                          # scifact and sbir-firms, minilm
    python benchmarks/bench_quality.py --cached-only            # sbir-firms restricted to the
                                                                # capabilities already in the cache
    python benchmarks/bench_quality.py --smoke                  # synthetic tasks, fake encoder (CI)

`--cached-only` keeps the longest prefix of sbir-firms capabilities (file order: whole firms)
whose embeddings are cached and the held-out demands of the firms it contains entirely, so no
document is encoded. Skips cleanly without ../shared/data.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
from common import print_table  # noqa: E402

DEPTH = 100  # ranked targets kept per demand


def cached_prefix(task, model: str):
    """The longest prefix of the task's capabilities with every embedding cached, and the
    demands whose judged partners lie entirely inside it."""
    import sqlite3

    from common import techmatch_home

    from matcher.retrieval.encoders import text_key

    conn = sqlite3.connect(f"file:{techmatch_home() / 'embeddings.sqlite'}?mode=ro", uri=True, timeout=30)
    have = {
        bytes(r[0]) for r in conn.execute("SELECT key FROM embeddings WHERE model = ? AND kind = 'passage'", (model,))
    }
    conn.close()
    n = 0
    for c in task.capabilities:
        if text_key(c.full_text) not in have:
            break
        n += 1
    caps = task.capabilities[:n]
    inside = {c.partner_id for c in caps}
    if n < len(task.capabilities):
        inside.discard(task.capabilities[n].partner_id)  # the firm cut by the prefix: distractor only
    demands = [d for d in task.demands if d.id in task.qrels and set(task.qrels[d.id]) <= inside]
    qrels = {d.id: task.qrels[d.id] for d in demands}
    return replace(task, capabilities=caps, demands=demands, qrels=qrels)


def naive_runs(task, model: str, encoder) -> tuple[dict, dict]:
    """Runs of the naive stack's four variants, and facts about the check of its BM25."""
    from naive import NaiveStack, bm25_matrix, check_bm25_matrix, tokenize

    from matcher.evaluate import all_metrics

    caps = task.capabilities
    demands = [d for d in task.demands if d.id in task.qrels]
    texts = [c.full_text for c in caps]
    emb = common.cached_vectors(model, "passage", texts)
    qvecs = np.asarray(encoder.encode_queries([d.full_text for d in demands]), dtype=np.float32)
    t0 = time.perf_counter()
    stack = NaiveStack.__new__(NaiveStack)  # no model needed: queries are already embedded
    from rank_bm25 import BM25Okapi

    stack.emb = emb
    stack.bm25 = BM25Okapi([tokenize(t) for t in texts])
    targets = [c.partner_id for c in caps] if task.level == "partner" else [c.id for c in caps]
    stack.partners, stack.partner_of_doc = np.unique(np.asarray(targets), return_inverse=True)
    qtok = [tokenize(d.full_text) for d in demands]
    worst = check_bm25_matrix(stack.bm25, qtok[:10])
    lex_all = bm25_matrix(stack.bm25, qtok)
    build = time.perf_counter() - t0
    results = {}
    for fusion in ("bm25", "dense", "rrf", "minmax"):
        run = {}
        for i, d in enumerate(demands):
            dense = emb @ qvecs[i]
            lexical = lex_all[i].toarray().ravel()
            run[d.id] = dict(stack.fuse_and_rank(dense, lexical, DEPTH, fusion))
        results[fusion] = all_metrics(run, task.qrels)
    return results, {"bm25_matrix_max_rel_diff_vs_get_scores": worst, "build_seconds": build}


def ours(task, encoder) -> dict:
    from matcher.evaluate import evaluate_task

    return {r.method: r.metrics for r in evaluate_task(task, encoder, depth=DEPTH)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--tasks", nargs="+", default=["scifact", "sbir-firms"])
    ap.add_argument("--max-seq-length", type=int, help="the model's token limit (default: the registry's)")
    ap.add_argument("--cached-only", action="store_true", help="restrict tasks to capabilities already cached")
    ap.add_argument("--smoke", action="store_true", help=common.SMOKE_HELP)
    ap.add_argument("--out", type=Path, help="JSON output (default: benchmarks/results/bench_quality_<model>.json)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.model = "fake"
        common.start_smoke(f"bench_quality_{args.model}.json")
    paths = [common.DATA / t for t in args.tasks]
    if common.missing_data(*paths):
        return 0
    common.setup_env()
    info = common.machine()
    from matcher.retrieval.encoders import open_encoder

    encoder = open_encoder(args.model, max_seq_length=args.max_seq_length)
    mname = encoder.name  # the cache key: "e5-multilingual-small@128" with --max-seq-length 128
    print(common.describe_machine(info))
    report: dict = {"benchmark": "quality", "machine": info, "model": mname, "tasks": {}}
    rows = []
    for name, path in zip(args.tasks, paths):
        task = common.load_task(path)
        full = (len(task.capabilities), len(task.qrels))
        if args.cached_only:
            task = cached_prefix(task, mname)
            if len(task.capabilities) < 100 or not task.qrels:
                print(f"\n{name}: skipped, only {len(task.capabilities)} capabilities cached for {mname}")
                report["tasks"][name] = {"skipped": f"{len(task.capabilities)} capabilities cached"}
                continue
        print(
            f"\n{name}: {len(task.capabilities)} capabilities, {len(task.qrels)} judged demands "
            f"(full task: {full[0]} and {full[1]}), level {task.level}",
            flush=True,
        )
        t0 = time.perf_counter()
        mine = ours(task, encoder)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        naive, facts = naive_runs(task, mname, encoder)
        t_naive = time.perf_counter() - t0
        metric = "ndcg@10" if task.level == "capability" else "mrr"
        report["tasks"][name] = {
            "capabilities": len(task.capabilities),
            "judged_demands": len(task.qrels),
            "full_task": {"capabilities": full[0], "judged_demands": full[1]},
            "subset": bool(args.cached_only and full[0] != len(task.capabilities)),
            "level": task.level,
            "headline_metric": metric,
            "techmatch": mine,
            "naive": naive,
            "naive_facts": facts,
            "seconds": {"techmatch": t_ours, "naive": t_naive},
            "fused_minus_naive_rrf": mine["fused"][metric] - naive["rrf"][metric],
        }
        for method, m in mine.items():
            rows.append([name, "techmatch", method, m["ndcg@10"], m["mrr"], m["recall@10"]])
        for method, m in naive.items():
            rows.append([name, "naive", method, m["ndcg@10"], m["mrr"], m["recall@10"]])
    print()
    table = print_table(
        ["task", "stack", "method", "nDCG@10", "MRR", "Recall@10"],
        rows,
        title=f"Quality, model {mname} (same embeddings on both sides)",
    )
    report["table"] = table
    common.write_json(f"bench_quality_{mname.replace('@', '_')}.json", report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
