"""Encoding speed and agreement of the encoder backends, side by side in one process.

Backends per model: torch float32; torch with bfloat16 matrix products (today's default on a
CPU with native bfloat16: batches and texts of BFLOAT16_MIN_TOKENS+ in bfloat16); ONNX Runtime
int8 (`--backend onnx`), ONNX Runtime float32 (`--backend onnx-fp32`) and OpenVINO static int8
(`--backend openvino`).

Texts: short (sbir-topics titles, a few words), paragraph (the first 300 characters of a
topic) and 256-token (sbir-firms abstracts, which fill the 256-token window: abstract length).
For each, texts per second one text a call (batch 1, as a request encodes a free text; the
p50 latency too) and in batches of 64 (as `techmatch index` encodes). The measurements are
interleaved: every repeat runs each backend on each measure in turn, so load from other
processes falls on all of them alike; the table gives medians over repeats.

Agreement: cosine of each backend's embeddings to torch float32 on the same texts (lowest
and median), and whether each query's nearest abstract changes.

    python benchmarks/bench_encode.py                        # minilm and e5-multilingual-small
    python benchmarks/bench_encode.py --models minilm --repeats 5
    python benchmarks/bench_encode.py --smoke                # synthetic texts; every backend column is
                                                             # the fake encoder, no model loaded (CI)

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
from common import med, print_table  # noqa: E402

BACKENDS = ("torch-fp32", "torch-bf16", "onnx-int8", "onnx-fp32", "openvino-int8")
RUNTIME = {"onnx-int8": "onnx", "onnx-fp32": "onnx-fp32", "openvino-int8": "openvino"}
BATCH = 64


def read_records(path: Path, n: int) -> list[dict]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            out.append(json.loads(line))
            if len(out) == n:
                break
    return out


def open_backends(model: str, only: list[str]) -> dict:
    from matcher.retrieval.encoders import load_encoder

    encoders = {}
    for backend in only:
        if common.SMOKE:  # a smoke run loads no real model: each column is the fake encoder
            from matcher.retrieval.encoders import FakeEncoder

            encoders[backend] = FakeEncoder(name=f"fake as {backend}")
            continue
        if backend.startswith("torch"):
            enc = load_encoder(model, backend="torch", bfloat16=backend == "torch-bf16", batch_size=BATCH)
        else:
            enc = load_encoder(model, backend=RUNTIME[backend], batch_size=BATCH)
        enc.load()
        encoders[backend] = enc
    return encoders


def one_at_a_time_ms(enc, texts: list[str]) -> list[float]:
    times = []
    for text in texts:
        t0 = time.perf_counter()
        enc.encode_queries([text])
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def batched_per_s(enc, texts: list[str]) -> float:
    t0 = time.perf_counter()
    enc.encode_documents(texts)
    return len(texts) / (time.perf_counter() - t0)


def measure(encoders: dict, sets: dict[str, list[str]], singles: int, repeats: int) -> dict:
    """{backend: {set: {"b1_per_s", "b1_p50_ms", "b64_per_s"}}}, medians over interleaved repeats."""
    for enc in encoders.values():  # warm-up: first calls allocate and, for torch, pick kernels
        for texts in sets.values():
            enc.encode_queries(texts[:2])
            enc.encode_documents(texts[:BATCH])
    raw: dict = {b: {s: {"b1": [], "b64": []} for s in sets} for b in encoders}
    for _ in range(repeats):
        for label, texts in sets.items():
            for backend, enc in encoders.items():
                raw[backend][label]["b1"].extend(one_at_a_time_ms(enc, texts[:singles]))
                raw[backend][label]["b64"].append(batched_per_s(enc, texts))
    out: dict = {}
    for backend, per_set in raw.items():
        out[backend] = {}
        for label, r in per_set.items():
            p50 = med(r["b1"])
            out[backend][label] = {"b1_p50_ms": p50, "b1_per_s": 1e3 / float(np.mean(r["b1"])),
                                   "b64_per_s": med(r["b64"]), "b64_runs": r["b64"]}
    return out


def agreement(encoders: dict, queries: list[str], docs: list[str]) -> dict:
    ref = encoders["torch-fp32"]
    ref_q, ref_d = ref.encode_queries(queries), ref.encode_documents(docs)
    out = {}
    for backend, enc in encoders.items():
        if backend == "torch-fp32":
            continue
        q, d = enc.encode_queries(queries), enc.encode_documents(docs)
        cos = np.concatenate([(q * ref_q).sum(1), (d * ref_d).sum(1)])
        same = float(np.mean((q @ d.T).argmax(1) == (ref_q @ ref_d.T).argmax(1)))
        out[backend] = {"cosine_min": float(cos.min()), "cosine_median": float(np.median(cos)),
                        "same_nearest_document": same}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["minilm", "e5-multilingual-small"])
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    ap.add_argument("--texts", type=int, default=128, help="texts per set for batches of 64 (default %(default)s)")
    ap.add_argument("--singles", type=int, default=20, help="texts per set encoded one a call (default %(default)s)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help=common.SMOKE_HELP)
    ap.add_argument("--out", type=Path, help="JSON output (default: benchmarks/results/bench_encode.json)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.models, args.texts, args.singles, args.repeats = ["fake"], 16, 3, 1
        common.start_smoke("bench_encode.json", model=None)
        print("smoke: every backend column is the deterministic fake encoder; no torch or ONNX model is loaded")
    if common.missing_data(common.SBIR_FIRMS, common.SBIR_TOPICS):
        return 0
    if "torch-fp32" not in args.backends:
        args.backends.insert(0, "torch-fp32")  # the reference of the agreement columns
    common.setup_env()
    from matcher.settings import cpu_has_native_bfloat16

    info = common.machine()
    topics = read_records(common.SBIR_TOPICS / "demands.jsonl.gz", args.texts)
    abstracts = read_records(common.SBIR_FIRMS / "capabilities.jsonl.gz", args.texts)
    sets = {
        "short": [r.get("title") or r["text"][:60] for r in topics],
        "paragraph": [r["text"][:300] for r in topics],
        "256-token": [f"{r.get('title', '')}\n{r['text']}".strip() for r in abstracts],
    }
    print(common.describe_machine(info))
    print(f"native bfloat16: {cpu_has_native_bfloat16()}; {args.texts} texts a set in batches of {BATCH}, "
          f"{args.singles} one a call, {args.repeats} interleaved repeats", flush=True)
    rows, report = [], {"benchmark": "encode", "machine": info, "args": vars(args) | {"out": str(args.out)},
                        "models": {}}
    for model in args.models:
        encoders = open_backends(model, args.backends)
        speed = measure(encoders, sets, args.singles, args.repeats)
        agree = agreement(encoders, sets["paragraph"][:32], sets["256-token"][:64])
        report["models"][model] = {"speed": speed, "agreement": agree}
        ref = speed["torch-bf16"] if "torch-bf16" in speed else speed["torch-fp32"]
        for label in sets:
            for kind, key in (("batch 1", "b1_per_s"), (f"batch {BATCH}", "b64_per_s")):
                vals = [speed[b][label][key] for b in encoders]
                best = max(encoders, key=lambda b: speed[b][label][key])
                rows.append([model, f"{label}, {kind}, texts/s", *vals,
                             f"{best} {speed[best][label][key] / ref[label][key]:.2f}x"])
            rows.append([model, f"{label}, batch 1, p50 ms", *(speed[b][label]["b1_p50_ms"] for b in encoders), ""])
        rows.append([model, "cosine to torch-fp32, lowest", 1.0,
                     *(agree[b]["cosine_min"] for b in list(encoders)[1:]), ""])
        rows.append([model, "same nearest abstract as torch-fp32", 1.0,
                     *(agree[b]["same_nearest_document"] for b in list(encoders)[1:]), ""])
        print(f"{model} done", flush=True)
    report["table"] = print_table(
        ["model", "measure", *encoders, "best vs torch-bf16"],
        rows,
        title="Encoding speed by backend (interleaved repeats, medians; torch-bf16 = today's default path)"
        + ("; smoke: every column is the fake encoder" if args.smoke else ""),
    )
    common.write_json("bench_encode.json", report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
