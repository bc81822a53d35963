"""Where a service's memory goes: resident memory after each step of a `techmatch serve`
start-up and of its first requests, in one process (no HTTP, no other threads).

    python benchmarks/bench_online.py --model M --sizes 42461 --no-naive --workdir /tmp/online
    python benchmarks/memory_steps.py /tmp/online/n42461/tm.db --model M            # a first start
    python benchmarks/memory_steps.py /tmp/online/n42461/tm.db --model M --load     # a restart

Each line: VmRSS (anonymous and file-backed: model weights read through mmap are file pages),
and VmHWM, the peak so far, from /proc/self/status. The steps are the service's own calls in
its order (`service.jobs.live.LiveIndex` builds or loads the engine, prepares it (`MatchEngine.prepare`),
saves, trims the C heap); `bench_online.py` measures the same process over HTTP with its
request threads, which this does not.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

START = time.perf_counter()


def memory() -> dict[str, int]:
    out = {}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) // 1024
    return out


def step(label: str) -> None:
    m = memory()
    print(f"{label:<38} {m['VmRSS']:>6} {m['RssAnon']:>6} {m['RssFile']:>6} {m['VmHWM']:>6} "
          f"{time.perf_counter() - START:>7.1f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db", type=Path, help="a service database (bench_online.py --workdir leaves one per size)")
    ap.add_argument("--model", default="e5-multilingual-small")
    ap.add_argument("--load", action="store_true",
                    help="load the index a service saved beside the database instead of building it")
    args = ap.parse_args(argv)
    print(f"{'step':<38} {'RSS':>6} {'anon':>6} {'file':>6} {'peak':>6} {'s':>7}   (MB)")
    step("python, numpy")
    from service.settings import Settings

    settings = Settings(db_url=f"sqlite:///{args.db}", model=args.model)
    from service.app import create_app

    app = create_app(settings)
    step("service imported, app created")
    live = app.state.ctx.live
    try:
        from service.jobs.live import open_service_encoder
    except ImportError:  # a version before it
        from matcher.retrieval.encoders import open_encoder

        live.encoder = open_encoder(settings.model)
    else:
        live.encoder = open_service_encoder(settings)  # the service's batch size
    live.encoder.load()
    step("model loaded")
    from service.storage import store
    from service.storage.db import init_db

    init_db(live.db)
    if args.load:
        from matcher.retrieval.engine import MatchEngine

        engine = MatchEngine.load(settings.index_dir() / "engine", live.encoder)
        step("saved index loaded")
    else:
        from matcher.retrieval.engine import EngineParams, MatchEngine
        from matcher.retrieval.index import IndexParams

        with live.db.connect() as conn:
            caps, dems, parts = store.all_records(conn)
        step(f"records read ({len(caps)} capabilities)")
        engine = MatchEngine(live.encoder, EngineParams(index=IndexParams(kind=settings.index)))
        # MatchEngine.fit's order, a step at a time: both sides encoded, then both indexed.
        cap_vectors = live.encoder.encode_documents([c.full_text for c in caps])
        dem_vectors = live.encoder.encode_documents([d.full_text for d in dems])
        step("both sides encoded (or read from the cache)")
        engine.upsert_partners(parts)
        engine.upsert_capabilities(caps, vectors=cap_vectors)
        step("capabilities indexed")
        engine.upsert_demands(dems, vectors=dem_vectors)
        del caps, dems, parts
        step("demands indexed")
    engine.prepare()
    step("prepared (reasons, postings, views)")
    try:
        from service.jobs.live import release_freed_memory
    except ImportError:  # a version before it
        print("(no malloc_trim in this version)")
    else:
        release_freed_memory()
        step("malloc_trim (the service's start ends here)")
    demands = list(engine.demands.values())[:20]
    engine.match_report(demands[0], k=10)
    step("first stored demand matched")
    for d in demands[1:]:
        engine.match_report(d, k=10)
    step(f"{len(demands)} stored demands matched")
    some = list(engine.capabilities.values())[: len(demands)]
    for i, c in enumerate(some):
        engine.match_report(f"{c.full_text[:2000]} [{i}]", k=10)
    step(f"{len(some)} typed texts (2,000 characters)")
    for i, c in enumerate(some):
        engine.match_report(f"{c.full_text[:300]} [{i}]", k=10)
    step(f"{len(some)} typed texts (300 characters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
