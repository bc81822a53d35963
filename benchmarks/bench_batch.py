"""Batch ranking: `techmatch rank` of sbir-topics against sbir-firms at partner level, beside
the encoding floor, then again with the embedding cache warm.

1. Cold: an empty embedding cache (a fresh TECHMATCH_HOME), the same function the CLI runs
   (`matcher.batch.rank_files`), in this process so the model calls can be timed inside the
   run: the floor is the time spent in the model's `encode` (same model, same batch size,
   same texts, each encoded once), measured under the same machine load as the run itself.
   A sample is also encoded with a bare `SentenceTransformer.encode(texts, batch_size=32)`
   to show the engine's batches cost what the library's own call costs.
2. Warm: `techmatch rank ...` as a command, with the cache the cold run filled (every text
   cached); wall time of the whole process (start-up and model load included), median of
   several runs.

    python benchmarks/bench_batch.py                               # all 6,730 topics x 42,461 abstracts
    python benchmarks/bench_batch.py --quick                       # 200 topics x 2,000 abstracts
    python benchmarks/bench_batch.py --merge-cache                 # afterwards copy the new
                                                                   # embeddings into $TECHMATCH_HOME
    python benchmarks/bench_batch.py --smoke                       # synthetic corpus, fake encoder (CI)

Skips cleanly without ../shared/data.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
from common import med, print_table  # noqa: E402


def subset_file(src: Path, n: int | None, dst: Path) -> Path:
    """The first n records of a JSONL(.gz) file (the file itself when n is None)."""
    if n is None:
        return src
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt", encoding="utf-8") as fh, open(dst, "w", encoding="utf-8") as out:
        for i, line in enumerate(fh):
            if i >= n:
                break
            out.write(line)
    return dst


class EncodeClock:
    """Wraps the model's embed_batch (SentenceTransformerEncoder's; FakeEncoder's for the fake
    model): seconds inside the model, texts encoded."""

    def __init__(self, model: str) -> None:
        from matcher.retrieval.encoders import FakeEncoder, SentenceTransformerEncoder

        self.cls = FakeEncoder if model == "fake" else SentenceTransformerEncoder
        self.original = self.cls.embed_batch
        self.seconds = 0.0
        self.texts = 0
        self.calls = 0
        clock = self

        def timed(enc, texts):
            t0 = time.perf_counter()
            try:
                return clock.original(enc, texts)
            finally:
                clock.seconds += time.perf_counter() - t0
                clock.texts += len(texts)
                clock.calls += 1

        self.cls.embed_batch = timed

    def restore(self) -> None:
        self.cls.embed_batch = self.original


class Stages:
    """A progress factory for rank_files that records when each stage ends."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.ends: dict[str, float] = {}

    def __call__(self, label: str, total: int):
        stages = self

        class Bar:
            def update(self, n: int) -> None:
                pass

            def close(self) -> None:
                stages.ends[label] = time.perf_counter() - stages.t0

        return Bar()


def fresh_home(base: Path) -> Path:
    """An empty TECHMATCH_HOME that shares the built models (no embeddings)."""
    home = Path(tempfile.mkdtemp(prefix="tm-cold-home-", dir=base))
    models = common.techmatch_home() / "models"
    if models.exists():
        (home / "models").symlink_to(models)
    return home


def library_floor_check(model: str, texts: list[str], batch_size: int) -> dict:
    """Seconds for a bare SentenceTransformer.encode of `texts` against the engine's batched
    embed of the same texts (no cache): the two should be about equal."""
    import torch
    from sentence_transformers import SentenceTransformer

    from matcher.retrieval.encoders import load_encoder

    enc = load_encoder(model, batch_size=batch_size)
    bare_model = SentenceTransformer(str(enc.path), device="cpu")  # the library itself, not the engine's loader
    if enc.max_seq_length:
        bare_model.max_seq_length = enc.max_seq_length
    prefixed = [enc.passage_prefix + t for t in texts]
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enc.bfloat16):  # the engine's precision
        bare_model.encode(prefixed, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    bare = time.perf_counter() - t0
    t0 = time.perf_counter()
    enc.encode_documents(texts)
    ours = time.perf_counter() - t0
    return {"texts": len(texts), "bfloat16": enc.bfloat16, "bare_sentence_transformers_s": bare,
            "engine_batches_s": ours}


def merge_cache(src: Path, dst: Path) -> int:
    """Copy embeddings from the cold run's cache into another cache (existing rows kept)."""
    conn = sqlite3.connect(dst, timeout=120)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        before = conn.total_changes
        conn.execute("ATTACH DATABASE ? AS cold", (str(src),))
        with conn:
            conn.execute("INSERT OR IGNORE INTO embeddings SELECT model, kind, key, vec FROM cold.embeddings")
        return conn.total_changes - before
    finally:
        conn.close()


def rank_cmd(model: str, dem_file: Path, cap_file: Path, out: Path, max_text_chars: int) -> list[str]:
    exe = Path(sys.executable).parent / "techmatch"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "matcher.cli.commands"]
    return cmd + [
        "rank",
        "--demands",
        str(dem_file),
        "--capabilities",
        str(cap_file),
        "--level",
        "partner",
        "--model",
        model,
        "--k",
        "10",
        "--out",
        str(out),
        "--max-text-chars",
        str(max_text_chars),
    ]


def timed_runs(cmd: list[str], home: Path, runs: int, label: str) -> list[float]:
    """Wall seconds of whole `techmatch rank` processes (start-up and model load included)."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(
            cmd,
            check=True,
            env={**os.environ, "TECHMATCH_HOME": str(home)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        out.append(time.perf_counter() - t0)
        print(f"{label}: {out[-1]:.1f} s", flush=True)
    return out


@functools.lru_cache(maxsize=2)
def _encoder(model: str):
    from matcher.retrieval.encoders import load_encoder

    return load_encoder(model)


def token_total(model: str, texts: list[str], prefix: str) -> int:
    """Sum over texts of min(tokens, the model's limit): what encoding cost grows with."""
    enc = _encoder(model)
    if not hasattr(enc, "model"):  # the fake encoder has no tokenizer: words and CJK characters
        return sum(len(re.findall(r"[\u4e00-\u9fff]|[^\W\u4e00-\u9fff]+", prefix + t)) for t in texts)
    model = enc.model
    if hasattr(model, "token_count"):  # matcher.retrieval.plain_model.PlainModel
        return sum(model.token_count(prefix + t) for t in texts)
    limit = model.max_seq_length
    total = 0
    for start in range(0, len(texts), 2000):
        ids = model.tokenizer([prefix + t for t in texts[start : start + 2000]], truncation=True, max_length=limit)[
            "input_ids"
        ]
        total += sum(len(x) for x in ids)
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--demands", type=int, default=300, help="cold run: first N sbir-topics")
    ap.add_argument("--capabilities", type=int, default=3000, help="cold run: first N sbir-firms capabilities")
    ap.add_argument("--warm-runs", type=int, default=3, help="warm runs at the cold run's size")
    ap.add_argument("--full-runs", type=int, default=2, help="warm runs at full size")
    ap.add_argument(
        "--full",
        dest="full",
        action="store_true",
        default=True,
        help="also time warm runs of all topics x all capabilities in $TECHMATCH_HOME (default)",
    )
    ap.add_argument("--no-full", dest="full", action="store_false")
    ap.add_argument("--batch-size", type=int, default=32, help="the encoder's batch size (the engine's default)")
    ap.add_argument("--check-sample", type=int, default=256, help="texts for the bare-library floor check (0: skip)")
    ap.add_argument("--quick", action="store_true", help="cold 50 x 300, 1 warm run, no full-size runs")
    ap.add_argument("--merge-cache", action="store_true", help="copy the cold run's embeddings into $TECHMATCH_HOME")
    ap.add_argument("--workdir", type=Path, help="where the cold cache and outputs go (default: a temp folder)")
    ap.add_argument("--smoke", action="store_true", help=common.SMOKE_HELP)
    ap.add_argument("--out", type=Path, help="JSON output (default: benchmarks/results/bench_batch_<model>.json)")
    args = ap.parse_args(argv)
    if args.quick:
        args.demands, args.capabilities, args.warm_runs, args.full, args.check_sample = 50, 300, 1, False, 32
    if args.smoke:  # no floor check: it times a bare SentenceTransformer, a real model
        args.model, args.demands, args.capabilities, args.warm_runs, args.full_runs = "fake", 20, 30, 1, 1
        args.check_sample, args.merge_cache = 0, False
        common.start_smoke(f"bench_batch_{args.model}.json")
    if common.missing_data(common.SBIR_FIRMS, common.SBIR_TOPICS):
        return 0
    common.setup_env()
    info = common.machine()
    main_home = common.techmatch_home()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tm-batch-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # 55 sbir-topics are longer than the 20,000-character upload limit: rank them as shipped,
    # with the limit raised the way a user would (`--max-text-chars`).
    dem_all, longest = common.rank_ready_jsonl(common.SBIR_TOPICS / "demands.jsonl.gz", workdir / "topics_all.jsonl")
    cap_all = common.SBIR_FIRMS / "capabilities.jsonl.gz"
    dem_file, _ = common.rank_ready_jsonl(
        common.SBIR_TOPICS / "demands.jsonl.gz", workdir / "demands.jsonl", args.demands
    )
    cap_file = subset_file(cap_all, args.capabilities, workdir / "caps.jsonl")

    from matcher.io.ingest import MAX_CELL_CHARS, load_capabilities, load_demands
    from matcher.retrieval.encoders import REGISTRY

    max_chars = max(longest, MAX_CELL_CHARS)

    dems, caps = load_demands(dem_file, max_cell=max_chars), load_capabilities(cap_file, max_cell=max_chars)
    print(common.describe_machine(info))
    print(
        f"model: {args.model} (batch size {args.batch_size}); cold run {len(dems)} sbir-topics x {len(caps)} "
        "sbir-firms capabilities, partner level, k=10",
        flush=True,
    )

    # -- cold, in an empty cache --------------------------------------------------------------
    home = fresh_home(workdir)
    os.environ["TECHMATCH_HOME"] = str(home)
    from matcher import batch

    clock = EncodeClock(args.model)
    stages = Stages()
    t0 = time.perf_counter()
    try:
        rows = batch.rank_files(
            dem_file, cap_file, workdir / "cold.tsv", model=args.model, level="partner", k=10, progress=stages,
            max_text_chars=max_chars,
        )
    finally:
        clock.restore()
    cold = time.perf_counter() - t0
    os.environ["TECHMATCH_HOME"] = str(main_home)
    cold_run = {
        "demands": len(dems),
        "capabilities": len(caps),
        "seconds": cold,
        "encode_seconds": clock.seconds,
        "texts_encoded": clock.texts,
        "model_calls": clock.calls,
        "overhead_seconds": cold - clock.seconds,
        "ratio_to_floor": cold / clock.seconds if clock.seconds else float("nan"),
        "stage_ends_seconds": stages.ends,
        "rows": rows,
        "cached_before": "nothing (empty embedding cache)",
    }
    print(
        f"cold: {cold:.1f} s, of which {clock.seconds:.1f} s inside the model encoding {clock.texts} texts "
        f"(the floor); ratio {cold_run['ratio_to_floor']:.3f}",
        flush=True,
    )
    check = None
    if args.check_sample:
        check = library_floor_check(args.model, [c.full_text for c in caps[: args.check_sample]], args.batch_size)
        print(
            f"floor check on {check['texts']} texts: bare SentenceTransformer.encode "
            f"{check['bare_sentence_transformers_s']:.1f} s, engine batches {check['engine_batches_s']:.1f} s",
            flush=True,
        )
    elif args.smoke:
        print("floor check skipped: it times a bare SentenceTransformer.encode, a real model", flush=True)
    warm_small = timed_runs(
        rank_cmd(args.model, dem_file, cap_file, workdir / "warm.tsv", max_chars),
        home,
        args.warm_runs,
        "warm run, same size",
    )
    same = (workdir / "warm.tsv").read_text() == (workdir / "cold.tsv").read_text()
    merged = None
    if args.merge_cache:
        merged = merge_cache(home / "embeddings.sqlite", main_home / "embeddings.sqlite")
        print(f"merged {merged} new embeddings into {main_home / 'embeddings.sqlite'}")

    # -- warm at full size, in $TECHMATCH_HOME ------------------------------------------------
    full = None
    if args.full:
        all_dems, all_caps = load_demands(dem_all, max_cell=max_chars), load_capabilities(cap_all, max_cell=max_chars)
        qtexts = list(dict.fromkeys(d.full_text for d in all_dems))
        ptexts = list(dict.fromkeys(c.full_text for c in all_caps))
        cached = {
            "query": common.cached_count(args.model, "query", qtexts),
            "passage": common.cached_count(args.model, "passage", ptexts),
        }
        surrogate = {
            "query": common.surrogate_count(args.model, "query", qtexts),
            "passage": common.surrogate_count(args.model, "passage", ptexts),
        }
        print(
            f"full size: {len(all_dems)} topics ({len(qtexts)} unique texts, {cached['query']} cached, "
            f"{surrogate['query']} of them surrogates) x {len(all_caps)} capabilities ({len(ptexts)} unique, "
            f"{cached['passage']} cached, {surrogate['passage']} surrogates)",
            flush=True,
        )
        if cached["query"] < len(qtexts) or cached["passage"] < len(ptexts):
            print("skipping the full-size warm runs: not every text is cached in $TECHMATCH_HOME")
        else:
            warm_full = timed_runs(
                rank_cmd(args.model, dem_all, cap_all, workdir / "full.tsv", max_chars),
                main_home,
                args.full_runs,
                "warm run, full size",
            )
            spec = REGISTRY.get(args.model)
            qp, pp = (spec.query_prefix, spec.passage_prefix) if spec else ("", "")
            tok_small = token_total(args.model, list(dict.fromkeys(d.full_text for d in dems)), qp) + token_total(
                args.model, list(dict.fromkeys(c.full_text for c in caps)), pp
            )
            tok_full = token_total(args.model, qtexts, qp) + token_total(args.model, ptexts, pp)
            floor_est = clock.seconds * tok_full / tok_small
            full = {
                "demands": len(all_dems),
                "capabilities": len(all_caps),
                "unique_query_texts": len(qtexts),
                "unique_capability_texts": len(ptexts),
                "surrogate_vectors": surrogate,
                "warm_seconds": warm_full,
                "warm_seconds_median": med(warm_full),
                "tokens_cold_subset": tok_small,
                "tokens_full": tok_full,
                "floor_estimate_seconds": floor_est,
                "cold_estimate_seconds": floor_est + med(warm_full),
                "cold_estimate_ratio": (floor_est + med(warm_full)) / floor_est,
                "estimate": "floor = cold-run floor x (full tokens / cold-run tokens), tokens truncated at the "
                "model limit; cold = floor + the full-size warm run (everything but encoding)",
            }
            print(
                f"full size: warm {med(warm_full):.1f} s; floor estimate {floor_est:.0f} s; estimated cold ratio "
                f"{full['cold_estimate_ratio']:.3f}",
                flush=True,
            )

    print()
    trows = [
        [f"encoding floor ({len(dems)} x {len(caps)})", clock.seconds, 1.0, f"{clock.texts} texts, model only"],
        [f"techmatch rank, cold ({len(dems)} x {len(caps)})", cold, cold_run["ratio_to_floor"], "nothing"],
        [
            f"techmatch rank, warm ({len(dems)} x {len(caps)})",
            med(warm_small),
            med(warm_small) / clock.seconds,
            "every text",
        ],
    ]
    if full:
        tag = f"{full['demands']} x {full['capabilities']}"
        trows += [
            [f"encoding floor ({tag}), estimated", full["floor_estimate_seconds"], 1.0, "by tokens"],
            [
                f"techmatch rank, cold ({tag}), estimated",
                full["cold_estimate_seconds"],
                full["cold_estimate_ratio"],
                "nothing",
            ],
            [
                f"techmatch rank, warm ({tag})",
                full["warm_seconds_median"],
                full["warm_seconds_median"] / full["floor_estimate_seconds"],
                "every text" + (" (surrogate vectors)" if sum(full["surrogate_vectors"].values()) else ""),
            ],
        ]
    table = print_table(
        ["run (topics x capabilities)", "seconds", "x floor", "cached"],
        trows,
        title=f"Batch ranking at partner level, model {args.model}; warm: medians of "
        f"{args.warm_runs} (full size: {args.full_runs}) whole `techmatch rank` processes",
    )
    report = {
        "benchmark": "batch",
        "machine": info,
        "model": args.model,
        "batch_size": args.batch_size,
        "max_text_chars": max_chars,
        "cold": cold_run,
        "floor_check": check,
        "warm_same_size_seconds": warm_small,
        "warm_same_size_median": med(warm_small),
        "warm_output_equals_cold": same,
        "full": full,
        "merged_into_main_cache": merged,
        "notes": "cold = rank_files (what `techmatch rank` runs) in-process with an empty cache; the floor is the "
        "time inside SentenceTransformer.encode during that run; warm = the `techmatch rank` command, whole "
        "process, every embedding cached",
        "table": table,
    }
    common.write_json(f"bench_batch_{args.model}.json", report, args.out)
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
