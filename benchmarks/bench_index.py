"""Index choice: exact against HNSW and IVF, on real capability embeddings grown to 200k+.

Vectors: the sbir-firms capability embeddings of the model found in the engine's cache (real;
their count is printed). Larger corpora are grown from them by mixing pairs, documented here
and in docs/performance.md:

    v = normalise(a * x_i + (1 - a) * x_j + s * g),  a ~ U(0.6, 0.95), j random, g ~ N(0, I/dim)

with s = 0.05, so every synthetic vector lies near a real one, pulled part of the way towards
another real one (a new "topic mix"), with a little noise; the real vectors stay in the corpus.
Queries are real query embeddings from the cache (demands and claims encoded as queries).

Indexes are the engine's own (`matcher.retrieval.index.VectorIndex`, IDMap over FAISS). For each
setting: build seconds, resident-memory growth and serialised size, query time (one query
at a time on one thread, as the service searches; and one batch of all queries), medians over
repeats, and recall@10 and recall@200 (the engine's candidate depth) against exact search.

    python benchmarks/bench_index.py                        # sizes 42,461 and 200,000
    python benchmarks/bench_index.py --quick                # 10k and 50k, fewer settings
    python benchmarks/bench_index.py --smoke                # synthetic corpus, fake encoder (CI)
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
from common import med, print_table  # noqa: E402


def real_vectors(model: str, max_queries: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Cached sbir-firms capability embeddings (unique texts) and cached query embeddings."""
    from matcher.retrieval.encoders import text_key

    task = common.load_task(common.SBIR_FIRMS)
    keys = list(dict.fromkeys(text_key(c.full_text) for c in task.capabilities))
    conn = sqlite3.connect(f"file:{common.techmatch_home() / 'embeddings.sqlite'}?mode=ro", uri=True, timeout=30)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'surrogates'").fetchone():
            raise SystemExit(
                "this cache holds surrogate vectors (surrogate_cache.py): point TECHMATCH_HOME at a real one"
            )
        docs = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = conn.execute(
                f"SELECT key, vec FROM embeddings WHERE model = ? AND kind = 'passage' AND key IN "
                f"({','.join('?' * len(chunk))})",
                (model, *chunk),
            )
            docs.update({bytes(k): np.frombuffer(v, dtype=np.float32) for k, v in rows})
        queries = [
            np.frombuffer(v, dtype=np.float32)
            for (v,) in conn.execute(
                "SELECT vec FROM embeddings WHERE model = ? AND kind = 'query' ORDER BY key LIMIT ?",
                (model, max_queries),
            )
        ]
    finally:
        conn.close()
    x = np.stack([docs[k] for k in keys if k in docs]).astype(np.float32)
    q = np.stack(queries).astype(np.float32) if queries else np.zeros((0, x.shape[1]), np.float32)
    return x, q, {"real_capability_vectors": len(x), "of_unique_texts": len(keys), "real_queries": len(q)}


def grow(x: np.ndarray, n: int, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    """(n, dim) corpus: the real rows first, then mixed pairs (see the module docstring)."""
    if n <= len(x):
        return x[:n].copy()
    rng = np.random.default_rng(seed)
    m = n - len(x)
    i, j = rng.integers(0, len(x), m), rng.integers(0, len(x), m)
    a = rng.uniform(0.6, 0.95, m).astype(np.float32)[:, None]
    extra = (
        a * x[i]
        + (1 - a) * x[j]
        + noise * rng.standard_normal((m, x.shape[1])).astype(np.float32) / np.sqrt(x.shape[1])
    )
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    return np.vstack([x, extra.astype(np.float32)])


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def time_queries(index, q: np.ndarray, k: int, repeats: int) -> dict:
    """Median per-query latency (one at a time) and median batch time per query."""
    singles, batches = [], []
    for _ in range(repeats):
        lat = []
        for row in q:
            t0 = time.perf_counter()
            index.search(row[None, :], k)
            lat.append(time.perf_counter() - t0)
        singles.append(med(lat) * 1e3)
        t0 = time.perf_counter()
        index.search(q, k)
        batches.append((time.perf_counter() - t0) / len(q) * 1e3)
    return {"single_ms": med(singles), "single_ms_runs": singles, "batch_ms_per_query": med(batches)}


def recall(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))


def bench_size(x: np.ndarray, q: np.ndarray, args) -> list[dict]:
    import faiss

    from matcher.retrieval.index import IndexParams, VectorIndex

    n = len(x)
    ids = np.arange(n, dtype=np.int64)
    out = []

    def build(params: IndexParams):
        gc.collect()
        before = rss_mb()
        t0 = time.perf_counter()
        index = VectorIndex(x.shape[1], params).build(x, ids)
        secs = time.perf_counter() - t0
        gc.collect()
        size = len(faiss.serialize_index(index._index)) / 2**20
        return index, secs, rss_mb() - before, size

    exact, secs, mem, size = build(IndexParams(kind="exact"))
    _, truth10 = exact.search(q, 10)
    _, truth200 = exact.search(q, 200)
    base = time_queries(exact, q, 200, args.repeats)
    out.append(
        {
            "n": n,
            "kind": "exact",
            "setting": "",
            "build_s": secs,
            "rss_delta_mb": mem,
            "size_mb": size,
            **base,
            "recall@10": 1.0,
            "recall@200": 1.0,
        }
    )
    print(f"  n={n} exact: build {secs:.1f} s, {base['single_ms']:.2f} ms/query", flush=True)
    del exact

    def measure(index, kind: str, setting: str, secs: float, mem: float, size: float) -> None:
        """Time one approximate setting, compare its results with exact search, record and print."""
        t = time_queries(index, q, 200, args.repeats)
        _, f10 = index.search(q, 10)
        _, f200 = index.search(q, 200)
        out.append(
            {
                "n": n,
                "kind": kind,
                "setting": setting,
                "build_s": secs,
                "rss_delta_mb": mem,
                "size_mb": size,
                **t,
                "recall@10": recall(f10, truth10, 10),
                "recall@200": recall(f200, truth200, 200),
            }
        )
        print(
            f"  n={n} {kind} {setting}: build {secs:.1f} s, {t['single_ms']:.2f} ms/query, "
            f"recall@10 {out[-1]['recall@10']:.3f}",
            flush=True,
        )

    for m in args.hnsw_m:
        index, secs, mem, size = build(IndexParams(kind="hnsw", hnsw_m=m, ef_construction=args.ef_construction))
        hnsw = faiss.downcast_index(index._index.index)
        for ef in args.ef_search:
            hnsw.hnsw.efSearch = ef
            measure(index, "hnsw", f"M={m} efC={args.ef_construction} efSearch={ef}", secs, mem, size)
        del index, hnsw
    for nlist in args.nlist or [0]:
        index, secs, mem, size = build(IndexParams(kind="ivf", nlist=nlist))
        ivf = faiss.extract_index_ivf(index._index)
        for nprobe in args.nprobe:
            ivf.nprobe = min(nprobe, ivf.nlist)
            measure(index, "ivf", f"nlist={ivf.nlist} nprobe={ivf.nprobe}", secs, mem, size)
        del index, ivf
    exact_ms = out[0]["single_ms"]
    for r in out:
        r["speedup_vs_exact"] = exact_ms / r["single_ms"] if r["single_ms"] else float("nan")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--sizes", type=int, nargs="+", default=[42461, 200000])
    ap.add_argument("--queries", type=int, default=300, help="real cached query embeddings to use")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hnsw-m", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--ef-construction", type=int, default=80)
    ap.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--nlist", type=int, nargs="+", help="IVF lists (default: the engine's 4*sqrt(n))")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--quick", action="store_true", help="10k and 50k, M=32 only, 2 repeats")
    ap.add_argument("--smoke", action="store_true", help=common.SMOKE_HELP)
    ap.add_argument("--out", type=Path, help="JSON output (default: benchmarks/results/bench_index_<model>.json)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.hnsw_m, args.repeats, args.queries = [10000, 50000], [32], 2, 100
    if args.smoke:
        args.model, args.sizes, args.hnsw_m, args.ef_search, args.nprobe = "fake", [48, 1000], [16], [64], [8]
        args.repeats, args.queries = 1, 20
        common.start_smoke(f"bench_index_{args.model}.json")
    if common.missing_data(common.SBIR_FIRMS):
        return 0
    common.setup_env()
    info = common.machine()
    x, q, facts = real_vectors(args.model, args.queries)
    if len(x) == 0 or len(q) == 0:
        print(f"skipped: no cached '{args.model}' embeddings of sbir-firms capabilities or queries")
        return 0
    print(common.describe_machine(info))
    print(
        f"model: {args.model}; {facts['real_capability_vectors']} real capability vectors (of "
        f"{facts['of_unique_texts']} unique sbir-firms texts), grown by mixing pairs to {args.sizes}; "
        f"{len(q)} real query vectors; medians of {args.repeats} repeats",
        flush=True,
    )
    results = []
    for n in args.sizes:
        corpus = grow(x, n)
        results.extend(bench_size(corpus, q, args))
        del corpus
    rows = [
        [
            r["n"],
            r["kind"],
            r["setting"],
            r["build_s"],
            r["size_mb"],
            r["rss_delta_mb"],
            r["single_ms"],
            r["batch_ms_per_query"],
            r["speedup_vs_exact"],
            r["recall@10"],
            r["recall@200"],
        ]
        for r in results
    ]
    print()
    table = print_table(
        [
            "vectors",
            "index",
            "setting",
            "build s",
            "size MB",
            "RSS +MB",
            "ms/query",
            "batch ms/q",
            "x faster",
            "recall@10",
            "recall@200",
        ],
        rows,
        title=f"Vector index choice, model {args.model} ({x.shape[1]}-d); ms/query: one query at a time, "
        "one thread, k=200 (the engine's depth)",
    )
    report = {
        "benchmark": "index",
        "machine": info,
        "model": args.model,
        "dim": int(x.shape[1]),
        "vectors": facts,
        "growth": "real vectors, then normalise(a*x_i + (1-a)*x_j + 0.05*g/sqrt(dim)), a~U(0.6,0.95), seed 0",
        "queries": "real cached query embeddings of the same model",
        "settings": vars(args) | {"out": str(args.out) if args.out else None},
        "results": results,
        "table": table,
    }
    common.write_json(f"bench_index_{args.model}.json", report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
