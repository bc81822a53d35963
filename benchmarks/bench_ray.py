"""Batch ranking on one machine against the same run on a local Ray cluster (1 and 2 workers).

The batch: embed N sbir-firms capabilities, then rank D sbir-topics demands against them at
partner level (what `techmatch rank` does). Three ways, on the same cores:

- plain: `MatchEngine(encoder).fit(capabilities)` then `matcher.batch.rank_demands`, in this process;
- ray-1 / ray-2: `RayEncoder` (capabilities, then the demands' queries, on Ray Data actors with a
  fresh shared cache folder each run, so every text is encoded as in the plain run) and
  `rank_on_ray` (demands ranked by actors that hold the shipped index).

Columns: wall seconds of each stage, overhead (wall / plain wall), the share of the wall time
spent inside the encoder (summed over workers for Ray, so with 2 workers it can exceed the
share of wall time one core would see), and whether the ranking equals the plain one. The Ray
cluster is started once before the runs (`ray.init(num_cpus=2)`, its start-up time printed
apart), as a running cluster (`--ray auto`) would be.

    python benchmarks/bench_ray.py                         # 5k, 20k, 42k capabilities, fake encoder
    python benchmarks/bench_ray.py --data /work/shared/data  # from a worktree without ../shared
    python benchmarks/bench_ray.py --model minilm --sizes 2000 --demands 200
    python benchmarks/bench_ray.py --smoke                 # synthetic corpus, local Ray if installed (CI)

Skips cleanly without ../shared/data or without Ray.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
from common import print_table  # noqa: E402


class TimedEncoder:
    """Wraps a BatchEncoder's embed_batch: seconds inside the model, texts encoded."""

    def __init__(self, inner) -> None:
        self.inner, self.seconds, self.texts = inner, 0.0, 0
        original = inner.embed_batch

        def timed(texts):
            start = time.perf_counter()
            try:
                return original(texts)
            finally:
                self.seconds += time.perf_counter() - start
                self.texts += len(texts)

        inner.embed_batch = timed


def plain_run(caps, demands, model: str, k: int) -> dict:
    from matcher.batch import rank_demands
    from matcher.retrieval.cache import EmbeddingCache
    from matcher.retrieval.encoders import CachedEncoder, load_encoder
    from matcher.retrieval.engine import MatchEngine

    enc = load_encoder(model)
    clock = TimedEncoder(enc)
    # `techmatch rank`'s encoder: the model behind an embedding cache, here an empty one, so
    # every text is encoded (each distinct text once), as on the Ray path
    with tempfile.TemporaryDirectory(prefix="bench-plain-cache-") as cache:
        cached = CachedEncoder(enc, EmbeddingCache(Path(cache) / "embeddings.sqlite"))
        t0 = time.perf_counter()
        engine = MatchEngine(cached).fit(caps)
        t1 = time.perf_counter()
        ranked = rank_demands(engine, demands, level="partner", k=k)
        t2 = time.perf_counter()
    return {"embed_s": t1 - t0, "rank_s": t2 - t1, "wall_s": t2 - t0, "encode_s": clock.seconds, "ranked": ranked}


def ray_run(caps, demands, model: str, k: int, workers: int, batch: int) -> dict:
    from matcher.distributed import ModelRecipe, RayConfig, RayEncoder, rank_on_ray
    from matcher.retrieval.engine import MatchEngine

    with tempfile.TemporaryDirectory(prefix="bench-ray-cache-") as cache:
        config = RayConfig("auto", workers=workers, cache_folder=Path(cache), batch_size=batch)
        enc = RayEncoder(ModelRecipe(model), config, min_remote=0)
        t0 = time.perf_counter()
        engine = MatchEngine(enc).fit(caps)
        t1 = time.perf_counter()
        ranked = rank_on_ray(engine, demands, level="partner", k=k, make_encoder=ModelRecipe(model), config=config)
        t2 = time.perf_counter()
    return {
        "embed_s": t1 - t0,
        "rank_s": t2 - t1,
        "wall_s": t2 - t0,
        "encode_s": enc.stats.encode_seconds,
        "encoded": enc.stats.encoded,
        "ranked": ranked,
    }


def same(a, b) -> bool:
    import numpy as np

    # each demand's [(target_id, score, fit), ...]: same targets in the same order, same numbers
    return all(
        [r[0] for r in x] == [r[0] for r in y]
        and np.allclose([r[1:] for r in x], [r[1:] for r in y], rtol=1e-6, atol=1e-7)
        for x, y in zip(a, b)
    ) and len(a) == len(b)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="fake", help="encoder (default: fake, the worst case for Ray's share)")
    ap.add_argument("--sizes", default="5000,20000,42461", help="capability counts")
    ap.add_argument("--demands", type=int, default=500, help="sbir-topics demands ranked")
    ap.add_argument("--workers", default="1,2", help="Ray worker counts")
    ap.add_argument("--batch", type=int, default=1024, help="texts per Ray batch")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--data", type=Path, default=common.DATA, help="the shared data folder (%(default)s)")
    ap.add_argument("--smoke", action="store_true", help=common.SMOKE_HELP)
    ap.add_argument("--out", type=Path, help="JSON output (default: benchmarks/results/bench_ray_<model>.json)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.model, args.sizes, args.demands, args.workers, args.batch = "fake", "48", 20, "1,2", 16
        common.start_smoke(f"bench_ray_{args.model}.json", model=None)
        args.data = common.DATA
    common.setup_env()
    firms, topics = args.data / "sbir-firms", args.data / "sbir-topics"
    if common.missing_data(firms, topics):
        return 0
    try:
        import ray
    except ImportError:
        print("skipped: Ray is not installed (pip install 'techmatch[ray]')")
        return 0
    info = common.machine()
    print(common.describe_machine(info))
    all_caps = common.load_task(firms).capabilities
    demands = common.load_task(topics).demands[: args.demands]
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    from matcher.distributed.cluster import RayConfig, connect

    connect(RayConfig("auto"))  # quiet Ray Data's progress bars
    started = time.perf_counter() - t
    print(
        f"model {args.model}; {len(demands)} sbir-topics demands, k={args.k}; Ray cluster of 2 CPUs "
        f"started in {started:.1f} s (not counted below)"
    )
    rows, report = [], []
    for size in (int(s) for s in args.sizes.split(",")):
        caps = all_caps[:size]
        plain = plain_run(caps, demands, args.model, args.k)
        runs = [("plain", plain)]
        for w in (int(x) for x in args.workers.split(",")):
            runs.append((f"ray-{w}", ray_run(caps, demands, args.model, args.k, w, args.batch)))
        for name, r in runs:
            row = [
                f"{len(caps):,}",
                name,
                round(r["embed_s"], 1),
                round(r["rank_s"], 1),
                round(r["wall_s"], 1),
                f"{r['wall_s'] / plain['wall_s']:.2f}x",
                f"{100 * r['encode_s'] / r['wall_s']:.0f}%",
                "yes" if same(plain["ranked"], r["ranked"]) else "NO",
            ]
            rows.append(row)
            report.append({"capabilities": len(caps), "run": name, **{k: v for k, v in r.items() if k != "ranked"}})
            print("  ".join(str(c) for c in row), flush=True)
    print()
    print_table(
        ["capabilities", "run", "embed s", "rank s", "wall s", "vs plain", "encoding", "same ranking"],
        rows,
        title=f"bench_ray: {args.model}, {len(demands)} demands, 2-core machine (load {info['load_average_1m']})",
    )
    report = {"machine": info, "args": {**vars(args), "data": str(args.data)}, "ray_start_s": started, "runs": report}
    report["args"]["out"] = str(args.out) if args.out else None
    common.write_json(f"bench_ray_{args.model}.json", report, args.out)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
