"""What the learned ranker and the impression log add to a stored-demand match.

In process (no HTTP, so the difference is not buried in request noise): the engine over the
first N sbir-firms capabilities (real texts, so BM25 and the candidate sets are real; vectors
from the deterministic fake encoder, which costs the same to search as real ones), stored
sbir-topics demands matched by id with k=10, p50/p99 over R repeats of Q demands, the rankings
taking turns demand by demand:

* default order (no ranker);
* with a deployed linear ranker and with a LightGBM ranker (re-ranking the top 30), each trained
  on the 30 base features (the default) and on those plus the seven opt-in evidence features
  (rows "+evidence": the engine hook computes those only for such a model);
* the time spent in the ranker hook itself (features and model; single-threaded, so it moves
  less with the load than the search's multi-threaded BLAS time around it);
* the cost of recording one served list in the impression log (buffer append, per call), and
  of one batched flush of 100 lists into SQLite.

    python benchmarks/bench_learning.py                 # 42,461 capabilities
    python benchmarks/bench_learning.py --sizes 2000    # quick
    python benchmarks/bench_learning.py --smoke         # synthetic corpus, seconds (CI)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402


class HookClock:
    """Wraps the engine's reranker hook and keeps the wall time of each call: what the ranker
    itself costs (its features and the model), single-threaded Python, apart from the search
    around it, whose multi-threaded BLAS time moves with the machine's load by more than that."""

    def __init__(self, reranker) -> None:
        self.reranker = reranker
        self.ms: list[float] = []

    def __call__(self, *args):
        t0 = time.perf_counter()
        out = self.reranker(*args)
        self.ms.append((time.perf_counter() - t0) * 1e3)
        return out


def timed(engine, rerankers: dict, items, repeats: int) -> dict[str, dict]:
    """For each ranking (name -> the engine's reranker, None for the default order): wall-clock
    p50/p99 and the median CPU time of this process per stored-demand match (k=10), and the p50
    of the time spent in the ranker hook. The rankings take turns on each demand, the first place
    rotating, so a burst of load on a shared machine and a demand's colder first match hit them
    alike; on a loaded machine CPU time shows what a call costs, wall time also counts waiting
    for a core."""
    clocks = {name: HookClock(r) if r is not None else None for name, r in rerankers.items()}
    lat: dict[str, list[float]] = {name: [] for name in rerankers}
    cpu: dict[str, list[float]] = {name: [] for name in rerankers}
    try:
        names = list(clocks)
        turn = 0
        for _ in range(repeats):
            for it in items:
                # Who goes first rotates: the first match of a demand finds colder caches.
                turn += 1
                for name in names[turn % len(names):] + names[:turn % len(names)]:
                    engine.reranker = clocks[name]
                    t0, c0 = time.perf_counter(), time.process_time()
                    engine.match_partners(it, k=10)
                    lat[name].append((time.perf_counter() - t0) * 1e3)
                    cpu[name].append((time.process_time() - c0) * 1e3)
    finally:
        engine.reranker = None
    out = {}
    for name, clock in clocks.items():
        ms = sorted(lat[name])
        out[name] = {"p50_ms": statistics.median(ms), "p99_ms": ms[int(0.99 * (len(ms) - 1))],
                     "cpu_p50_ms": statistics.median(cpu[name]), "n": len(ms),
                     "hook_p50_ms": statistics.median(clock.ms) if clock is not None else 0.0}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[42461])
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_learning.json")
    ap.add_argument("--smoke", action="store_true", help=common.SMOKE_HELP)
    args = ap.parse_args(argv)
    if args.smoke:
        args.sizes, args.queries, args.repeats = [48], 4, 1
        smoke_out = common.start_smoke("bench_learning.json", model=None)
        if args.out.resolve().is_relative_to(common.RESULTS.resolve()):
            args.out = smoke_out
    if common.missing_data(common.SBIR_FIRMS, common.SBIR_TOPICS):
        return 0
    from matcher.learning.features import BASE_FEATURES
    from matcher.learning.ranker import lightgbm_available
    from matcher.learning.table import Reranker, build_table
    from matcher.learning.train import Config
    from matcher.retrieval.encoders import FakeEncoder
    from matcher.retrieval.engine import MatchEngine

    task = common.load_task(common.SBIR_FIRMS)
    topics = common.load_topics(args.queries + 60)
    results = []
    for n in args.sizes:
        caps = task.capabilities[:n]
        t0 = time.perf_counter()
        engine = MatchEngine(FakeEncoder(dim=384)).fit(caps, topics)
        build_s = time.perf_counter() - t0
        stored = [engine.demands[d.id] for d in topics[: args.queries]]
        for d in stored:  # warm: query vectors and surface maps as a served demand has them
            engine.match_partners(d, k=10)
        train = topics[args.queries:]
        table = build_table(engine, train, "partner", depth=30, evidence=True)
        rng = np.random.default_rng(0)
        y = (rng.random(len(table.X)) < 0.1).astype(float)
        row = {"capabilities": n, "build_s": round(build_s, 1)}
        backends = ["linear"] + (["lightgbm"] if lightgbm_available() else [])
        base = len(BASE_FEATURES)
        rerankers = {"default": None}
        for backend in backends:
            for name, names, X in ((backend, BASE_FEATURES, table.X[:, :base]),
                                   (f"{backend}+evidence", table.feature_names, table.X)):
                rerankers[name] = Reranker(Config(backend).make(names).fit(X, y, table.group))
        for reranker in rerankers.values():  # warm each once (the evidence features' title cache)
            engine.reranker = reranker
            for d in stored:
                engine.match_partners(d, k=10)
        engine.reranker = None
        row.update(timed(engine, rerankers, stored, args.repeats))
        results.append(row)
        if args.smoke:
            print("[SMOKE RUN: numbers mean nothing]")
        print(f"{n} capabilities (index built in {build_s:.0f} s), stored demand, k=10, "
              f"{args.queries} demands x {args.repeats}:")
        print(f"  {'ranking':<17} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'CPU p50 ms':>11} {'added CPU':>10}"
              f" {'in ranker p50 ms':>17}")
        for name in rerankers:
            r = row[name]
            print(f"  {name:<17} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                  f"{r['p50_ms'] - row['default']['p50_ms']:>+10.2f} {r['cpu_p50_ms']:>11.2f} "
                  f"{r['cpu_p50_ms'] - row['default']['cpu_p50_ms']:>+10.2f} {r['hook_p50_ms']:>17.2f}")
    impressions = bench_impressions()
    print(f"impression log: record {impressions['record_us_p50']:.1f} us p50 per served list (10 partners); "
          f"flush of 100 lists {impressions['flush_ms_per_100']:.1f} ms (SQLite, background thread)")
    report = {"machine": common.machine(), "sizes": results, "impressions": impressions}
    if args.smoke:
        report = common.smoke_report(report, args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


def bench_impressions() -> dict:
    from service.storage.db import init_db, make_engine
    from service.storage.impressions import ImpressionLog, Shown

    with tempfile.TemporaryDirectory() as tmp:
        db = make_engine(f"sqlite:///{tmp}/b.db")
        init_db(db)
        log = ImpressionLog(db)
        shown = [Shown(i, f"P{i}", 1.0 / i, {"dense": 0.5, "lexical": 3.0, "partner": 0.7}) for i in range(1, 11)]
        lat = []
        flushes = []
        for _ in range(10):
            for _i in range(100):
                t0 = time.perf_counter()
                log.record(source="api", who="bench", demand_id="D1", text=None, shown=shown, engine="fake",
                           model_version="default", revision=1, k=10)
                lat.append((time.perf_counter() - t0) * 1e6)
            t0 = time.perf_counter()
            log.flush()
            flushes.append((time.perf_counter() - t0) * 1e3)
        db.dispose()
    return {"record_us_p50": statistics.median(lat), "flush_ms_per_100": statistics.median(flushes)}


if __name__ == "__main__":
    raise SystemExit(main())
