"""OpenVINO builds: the float32 ONNX export quantised to int8, activations included.

ONNX Runtime's dynamic int8 (`onnx_backend`) quantises activations on the fly, batch by batch;
on 256-token batches that costs what the int8 products save (docs/performance.md: about 1.0x
torch in bfloat16). Static quantisation fixes every activation's scale once, from calibration
texts, so whole layers run in int8 on the CPU's VNNI instructions. NNCF does it on OpenVINO's
graph (its transformer preset keeps softmax, layer norms and the embedding table in floating
point); OpenVINO then compiles the int8 graph for the CPU it runs on.

Calibration: every text of the bundled demo corpus, demands with the model's query prefix and
capabilities with its passage prefix, and the capabilities not in Chinese once more as queries
(the demo's demands are all Chinese; users type queries in English and Russian too), 4 texts a
batch, in file order: the same source files give the same build. The first recipe took 256 texts
of which 22 were not Chinese, and lost 0.011 accuracy@1 on Chinese-English pairs; this one 510
texts, 94 not Chinese (docs/performance.md, session 15).

Build-time needs `nncf` and `openvino` (`pip install techmatch[openvino]`); running needs
`openvino` only. Nothing is imported at module import time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from matcher.errors import ModelUnavailableError

INSTALL_HINT = "install techmatch[openvino] (pip install openvino nncf) to use the OpenVINO backend"
CALIBRATION_RECIPE = 2  # bump when `calibration_texts` changes: builds of another recipe are rebuilt
CALIBRATION_BATCH = 4
CALIBRATION_TOKENS = 256


def require_openvino(*, build: bool = False):
    """The openvino module (and nncf for a build), or a ModelUnavailableError saying what to install."""
    try:
        import openvino

        if build:
            import nncf  # noqa: F401
    except ImportError as exc:
        raise ModelUnavailableError(INSTALL_HINT) from exc
    return openvino


def calibration_texts(source: Path) -> list[str]:
    """Demo demands as queries, demo capabilities as passages, then the capabilities not in
    Chinese as queries too, each with the model's prefix (none for a model without prefixes,
    whose repeated texts are left out), in file order."""
    from corpora import demo_corpus_path

    query, passage = ("query: ", "passage: ") if "e5" in Path(source).name.lower() else ("", "")
    folder = demo_corpus_path()
    demands, capabilities = ([json.loads(line) for line in (folder / name).read_text(encoding="utf-8").splitlines()
                              if line.strip()] for name in ("demands.jsonl", "capabilities.jsonl"))

    def text(row: dict) -> str:
        return " ".join(filter(None, (row.get("title"), row.get("text"))))

    texts = [query + text(r) for r in demands] + [passage + text(r) for r in capabilities]
    texts += [query + text(r) for r in capabilities if r.get("language", "zh") != "zh"]
    return list(dict.fromkeys(texts))


def _token_limit(source: Path) -> int:
    """CALIBRATION_TOKENS, or fewer when the model has fewer positions (XLM-R reserves two)."""
    try:
        positions = int(json.loads((source / "config.json").read_text(encoding="utf-8"))["max_position_embeddings"])
    except (OSError, ValueError, KeyError, TypeError):
        return CALIBRATION_TOKENS
    return max(8, min(CALIBRATION_TOKENS, positions - 2))


def _batches(source: Path, texts: list[str]) -> Iterator[dict[str, Any]]:
    import numpy as np
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=_token_limit(source))
    for start in range(0, len(texts), CALIBRATION_BATCH):
        encodings = tokenizer.encode_batch(texts[start : start + CALIBRATION_BATCH])
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        yield {"input_ids": ids, "attention_mask": mask}


def quantize_openvino(onnx_file: Path, dest_xml: Path, source: Path) -> dict[str, Any]:
    """Read the float32 ONNX graph, quantise it with NNCF on the calibration texts, save the IR."""
    import contextlib
    import io
    import logging

    ov = require_openvino(build=True)
    import nncf

    texts = calibration_texts(source)
    batches = list(_batches(Path(source), texts))
    quiet = logging.getLogger("nncf").level
    logging.getLogger("nncf").setLevel(logging.ERROR)  # notes on every build
    try:
        # NNCF draws progress bars on the terminal; the caller reports progress its own way
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            model = ov.Core().read_model(str(onnx_file))
            quantized = nncf.quantize(
                model, nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(batches)
            )
    finally:
        logging.getLogger("nncf").setLevel(quiet)
    ov.save_model(quantized, str(dest_xml), compress_to_fp16=False)
    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
    return {"weights": "int8", "activations": "int8 static (NNCF, transformer preset)", "runtime": "openvino",
            "calibration": {"recipe": CALIBRATION_RECIPE, "texts": len(texts), "batch": CALIBRATION_BATCH,
                            "tokens": CALIBRATION_TOKENS,
                            "sha256": digest, "source": "corpora/qiqihar demands and capabilities"}}


def compile_openvino(xml: Path, threads: int | None = None, *, throughput: bool = False):
    """The IR compiled for this machine's CPU: for one request at a time at low latency, or
    (throughput) as parallel streams of one core each, `threads` of them when given.

    What is not int8 runs in float32, except in the throughput compilation on a CPU with native
    bfloat16, which runs it in bfloat16 as the torch path runs batches: 7 % faster on 256-token
    batches of e5, cosine 0.99984 to the float32 compilation (docs/performance.md)."""
    ov = require_openvino()
    core = ov.Core()
    native_bf16 = "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    config: dict[str, Any] = {"PERFORMANCE_HINT": "THROUGHPUT" if throughput else "LATENCY",
                              "INFERENCE_PRECISION_HINT": "bf16" if throughput and native_bf16 else "f32"}
    if threads and throughput:
        config["NUM_STREAMS"] = int(threads)
    elif threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    try:
        return core.compile_model(str(xml), "CPU", config)
    except Exception as exc:
        raise ModelUnavailableError(f"cannot load the OpenVINO model {xml}: {exc}") from exc
