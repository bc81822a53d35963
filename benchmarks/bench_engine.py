"""The matching engine alone (no HTTP), per vector index kind, at full corpus size.

Answers "what would the service's stored-demand latency be with an approximate index?":
one `MatchEngine` holds all sbir-firms capabilities (vectors from the embedding cache) and
S sbir-topics as stored demands; `match_partners(demand, k=10)` is timed after a warm-up
pass (query embeddings cached, as in the service) with the engine's default exact index,
then with HNSW and IVF indexes built on the same vectors (the rest of the engine is shared,
so only the dense search differs). Medians of repeated passes; overlap@10 of the ranked
partners against the exact index shows what the approximation changes in the answers.

    python benchmarks/bench_engine.py                  # 42,461 capabilities, minilm
    python benchmarks/bench_engine.py --capabilities 5000 --repeats 2
    python benchmarks/bench_engine.py --smoke          # synthetic corpus, fake encoder (CI)

Works in a surrogate cache (surrogate_cache.py) for timing; skips without ../shared/data.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
from common import med, pct, print_table  # noqa: E402

SETTINGS = {
    "exact": {"kind": "exact"},
    "hnsw M=32 ef=128": {"kind": "hnsw", "hnsw_m": 32, "ef_search": 128},
    "hnsw M=32 ef=256": {"kind": "hnsw", "hnsw_m": 32, "ef_search": 256},
    "ivf nprobe=32": {"kind": "ivf", "nprobe": 32},
    "ivf nprobe=64": {"kind": "ivf", "nprobe": 64},
}


def passes(engine, demands, repeats: int) -> tuple[list[float], list[float], dict]:
    """Per-pass p50 and p99 (ms) of match_partners over `demands`, and the last answers."""
    p50, p99, answers = [], [], {}
    for _ in range(repeats):
        lat = []
        for d in demands:
            t0 = time.perf_counter()
            answers[d.id] = [m.partner_id for m in engine.match_partners(d, k=10)]
            lat.append((time.perf_counter() - t0) * 1e3)
        p50.append(pct(lat, 50))
        p99.append(pct(lat, 99))
    return p50, p99, answers


def main(argv: list[str] | None = None) -> int:
    args = common.engine_bench_args(__doc__.split("\n\n")[0], "bench_engine", 3, argv)
    if common.missing_data(common.SBIR_FIRMS, common.SBIR_TOPICS):
        return 0
    common.setup_env()
    info = common.machine()
    from matcher.retrieval.encoders import open_encoder
    from matcher.retrieval.engine import MatchEngine
    from matcher.retrieval.index import IndexParams, VectorIndex

    caps, demands = common.sbir_corpus(args.capabilities, args.stored)
    texts = list(dict.fromkeys(c.full_text for c in caps))
    sur = common.surrogate_count(args.model, "passage", texts)
    print(common.describe_machine(info))
    print(
        f"model: {args.model}; {len(caps)} capabilities ({sur} of {len(texts)} vectors surrogates), "
        f"{len(demands)} stored demands; medians of {args.repeats} passes",
        flush=True,
    )
    t0 = time.perf_counter()
    engine = MatchEngine(open_encoder(args.model)).fit(caps, demands)
    fit = time.perf_counter() - t0
    engine.match_partners_batch(demands)  # warm-up: query embeddings into the cache
    coll = engine._caps  # the capability collection; only its vector index is swapped below
    import numpy as np

    live = np.flatnonzero(coll.alive).astype(np.int64)
    results, baseline = [], None
    for name, params in SETTINGS.items():
        p = IndexParams(**params)
        t0 = time.perf_counter()
        coll.index = VectorIndex(coll.dim, p).build(coll.vectors[live], live)
        build = time.perf_counter() - t0
        p50, p99, answers = passes(engine, demands, args.repeats)
        if baseline is None:
            baseline = answers
        overlap = med(len(set(answers[d]) & set(baseline[d])) / max(len(baseline[d]), 1) for d in baseline)
        results.append(
            {
                "index": name,
                "params": params,
                "build_s": build,
                "p50_ms": med(p50),
                "p99_ms": med(p99),
                "p50_runs": p50,
                "p99_runs": p99,
                "partner_overlap@10_vs_exact": overlap,
            }
        )
        print(f"{name}: p50 {med(p50):.1f} ms, p99 {med(p99):.1f} ms, overlap@10 {overlap:.3f}", flush=True)
    print()
    table = print_table(
        ["index", "build s", "p50 ms", "p99 ms", "partners overlap@10"],
        [[r["index"], r["build_s"], r["p50_ms"], r["p99_ms"], r["partner_overlap@10_vs_exact"]] for r in results],
        title=f"Engine only (no HTTP): stored-demand match_partners(k=10), {len(caps)} capabilities, "
        f"model {args.model}",
    )
    report = {
        "benchmark": "engine",
        "machine": info,
        "model": args.model,
        "capabilities": len(caps),
        "surrogate_vectors": sur,
        "unique_texts": len(texts),
        "stored_demands": len(demands),
        "fit_seconds": fit,
        "results": results,
        "table": table,
    }
    common.write_json(f"bench_engine_{args.model}.json", report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
