"""What a demand write costs the next match, at full corpus size (engine only, no HTTP).

Every process keeps each capability's view of the demand collection (the mean and spread of its
cosines over the demands of each language, see docs/fit.md). A demand filed, edited or deleted
changes those views; the engine follows the change by projecting only the changed rows, and falls
back to a full pass over the capabilities when it cannot. This times both after each kind of
write, and the first stored-demand match after it, with all sbir-firms capabilities and S
sbir-topics as stored demands (medians over the repeats).

    python benchmarks/bench_demand_write.py                 # 42,461 capabilities, minilm
    python benchmarks/bench_demand_write.py --capabilities 5000 --repeats 3
    python benchmarks/bench_demand_write.py --smoke         # synthetic corpus, fake encoder (CI)

Works in a surrogate cache (surrogate_cache.py) for timing; skips without ../shared/data.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
from common import med, print_table  # noqa: E402

# A Chinese demand among English ones: the write that adds a demand language.
CHINESE = "低温环境下聚氨酯面漆附着力下降，需要改进涂层配方和施工工艺"


def writes(demands, round_no: int):
    """(name, engine -> None) for each kind of write, with ids unique to this round."""
    new = dataclasses.replace(demands[1], id=f"NEW{round_no}")
    edited = dataclasses.replace(demands[2], text=demands[2].text + f" (revised {round_no})")
    chinese = dataclasses.replace(demands[3], id=f"ZH{round_no}", title="涂层附着力", text=CHINESE, language="zh")
    return [
        ("file a demand", lambda e: e.upsert_demands([new])),
        ("edit a demand", lambda e: e.upsert_demands([edited])),
        ("delete a demand", lambda e: e.remove_demands([new.id])),
        ("file one in a new language", lambda e: e.upsert_demands([chinese])),
        ("delete it again", lambda e: e.remove_demands([chinese.id])),
    ]


def main(argv: list[str] | None = None) -> int:
    args = common.engine_bench_args(__doc__.split("\n\n")[0], "bench_demand_write", 5, argv)
    if common.missing_data(common.SBIR_FIRMS, common.SBIR_TOPICS):
        return 0
    common.setup_env()
    info = common.machine()
    from matcher.retrieval.encoders import open_encoder
    from matcher.retrieval.engine import MatchEngine, _CapabilityViews

    caps, demands = common.sbir_corpus(args.capabilities, args.stored)
    print(common.describe_machine(info))
    print(f"model: {args.model}; {len(caps)} capabilities, {len(demands)} stored demands; "
          f"medians of {args.repeats} rounds", flush=True)
    engine = MatchEngine(open_encoder(args.model)).fit(caps, demands)
    engine.match_partners_batch(demands)  # warm-up: query embeddings into the cache
    engine._capability_views()
    probe = demands[5 % len(demands)]
    timings: dict[str, dict[str, list[float]]] = {}
    for round_no in range(args.repeats):
        for name, write in writes(demands, round_no):
            before = engine._views_cache
            write(engine)
            t0 = time.perf_counter()
            engine._capability_views()  # follows the write
            followed = time.perf_counter() - t0
            t0 = time.perf_counter()
            _CapabilityViews.computed(engine._caps.vectors, engine._dems, before.caps_key)
            full = time.perf_counter() - t0
            engine._views_cache = before  # as the write left it: the next match follows it
            t0 = time.perf_counter()
            engine.match_report(probe, k=10)
            first = time.perf_counter() - t0
            row = timings.setdefault(name, {"followed": [], "full": [], "first": []})
            row["followed"].append(followed * 1e3)
            row["full"].append(full * 1e3)
            row["first"].append(first * 1e3)
    rows = [[name, med(t["followed"]), med(t["full"]), med(t["first"])] for name, t in timings.items()]
    print()
    table = print_table(
        ["write", "views followed ms", "full pass ms", "next match ms"],
        rows,
        title=f"A demand write and the next match: {len(caps)} capabilities, {len(demands)} demands, "
        f"model {args.model}",
    )
    report = {
        "benchmark": "demand_write",
        "machine": info,
        "model": args.model,
        "capabilities": len(caps),
        "stored_demands": len(demands),
        "repeats": args.repeats,
        "timings_ms": timings,
        "table": table,
    }
    common.write_json(f"bench_demand_write_{args.model}.json", report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
