"""Encoding speed and agreement: float32 against bfloat16 matrix products (TECHMATCH_BF16).

For each model and precision: the latency of one query (a typed paragraph of 300 characters,
600 characters, and a text that fills the 256-token window), the throughput of batched
documents (sbir-firms abstracts, the engine's batch size 32), and how far the bfloat16
embeddings are from the float32 ones (cosine per text, and whether each query's nearest
document changes). Three precisions: float32; bfloat16 for every call; and the default with
bfloat16 on (bfloat16 for batches and for single texts of at least BFLOAT16_MIN_TOKENS).

    python benchmarks/bench_encode.py                      # minilm and e5-multilingual-small
    python benchmarks/bench_encode.py --models minilm --docs 256

Skips cleanly without ../shared/data.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
from common import med, pct, print_table  # noqa: E402

PRECISIONS = ("float32", "bfloat16", "default")


def first_texts(path: Path, n: int) -> list[str]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            out.append(f"{rec.get('title', '')}\n{rec['text']}".strip())
            if len(out) == n:
                break
    return out


def query_latency_ms(encoder, texts: list[str], repeats: int) -> list[float]:
    """One text per call, as a request encodes a free text; warm-up call first."""
    encoder.encode_queries(texts[:1])
    times = []
    for _ in range(repeats):
        for text in texts:
            t0 = time.perf_counter()
            encoder.encode_queries([text])
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def docs_per_second(encoder, docs: list[str]) -> float:
    encoder.encode_documents(docs[:32])
    t0 = time.perf_counter()
    encoder.encode_documents(docs)
    return len(docs) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["minilm", "e5-multilingual-small"])
    ap.add_argument("--queries", type=int, default=30, help="distinct query texts per length")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--docs", type=int, default=512, help="abstracts for the batch throughput")
    ap.add_argument("--out", type=Path, help="JSON output (default: benchmarks/results/bench_encode.json)")
    args = ap.parse_args(argv)
    if common.missing_data(common.SBIR_FIRMS, common.SBIR_TOPICS):
        return 0
    common.setup_env()
    from matcher.retrieval.encoders import load_encoder
    from matcher.settings import cpu_has_native_bfloat16

    info = common.machine()
    topics = first_texts(common.SBIR_TOPICS / "demands.jsonl.gz", args.queries)
    queries = {f"{n} chars": [t[:n] for t in topics] for n in (300, 600, 2000)}
    docs = first_texts(common.SBIR_FIRMS / "capabilities.jsonl.gz", args.docs)
    print(common.describe_machine(info))
    print(f"native bfloat16 on this CPU: {cpu_has_native_bfloat16()}; {args.queries} queries x {args.repeats}, "
          f"{len(docs)} sbir-firms abstracts in batches of 32", flush=True)
    rows, report = [], {"benchmark": "encode", "machine": info, "models": {}}
    for model in args.models:
        encoders = {}
        for precision in PRECISIONS:
            enc = load_encoder(model, bfloat16=precision != "float32")
            if precision == "bfloat16":
                enc.bfloat16_min_tokens = 0
            enc.load()
            encoders[precision] = enc
        result = {}
        for precision, enc in encoders.items():
            cell = {"docs_per_s": docs_per_second(enc, docs)}
            for label, texts in queries.items():
                times = query_latency_ms(enc, texts, args.repeats)
                cell[label] = {"p50_ms": med(times), "p99_ms": pct(times, 99)}
            result[precision] = cell
            print(f"{model} {precision}: {cell['docs_per_s']:.1f} docs/s, one query "
                  + ", ".join(f"{k} p50 {cell[k]['p50_ms']:.1f} ms" for k in queries), flush=True)
        # Agreement: the same texts both ways; nearest document of each query both ways.
        a_docs = encoders["float32"].encode_documents(docs)
        b_docs = encoders["bfloat16"].encode_documents(docs)
        a_q = encoders["float32"].encode_queries(queries["2000 chars"])
        b_q = encoders["bfloat16"].encode_queries(queries["2000 chars"])
        cos = np.concatenate([(a_docs * b_docs).sum(1), (a_q * b_q).sum(1)])
        same_top = float(np.mean((a_q @ a_docs.T).argmax(1) == (b_q @ b_docs.T).argmax(1)))
        result["agreement"] = {"cosine_min": float(cos.min()), "cosine_median": float(np.median(cos)),
                               "same_nearest_document": same_top}
        report["models"][model] = result
        f32, b16, auto = (result[p] for p in PRECISIONS)
        for label in ("docs/s (batch 32)", *queries):
            if label in queries:
                x, y, z = (r[label]["p50_ms"] for r in (f32, b16, auto))
                rows.append([model, f"one query, {label}, p50 ms", x, y, z, x / z])
            else:
                x, y, z = (r["docs_per_s"] for r in (f32, b16, auto))
                rows.append([model, label, x, y, z, z / x])
        rows.append([model, "cosine to float32, lowest", 1.0, float(cos.min()), "-", "-"])
        rows.append([model, "same nearest document as float32", 1.0, same_top, "-", "-"])
    report["table"] = print_table(
        ["model", "measure", "float32", "bfloat16", "default", "default speed-up"],
        rows,
        title="Encoding: float32 against bfloat16 matrix products (autocast); default = bfloat16 for batches "
        "and texts of 128+ tokens; one process, medians",
    )
    common.write_json("bench_encode.json", report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
