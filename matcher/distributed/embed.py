"""Embedding on Ray: texts split into Ray Data batches, encoded by actors that load the model once.

Each actor wraps the model in :class:`CachedEncoder` over the shared :class:`FolderEmbeddingCache`
and calls ``encode_documents``/``encode_queries``: the very function the single-machine engine
calls, so vectors are the same. :class:`RayEncoder` has the encoder interface, so anything that
takes an encoder (the engine, the workspace index, the landscape) runs its encoding on Ray.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from matcher.distributed.cluster import RayConfig, connect, cpus_per_worker, worker_count
from matcher.distributed.store import FolderEmbeddingCache, default_cache_folder
from matcher.retrieval.cache import EmbeddingCache
from matcher.retrieval.encoders import CachedEncoder, load_encoder, text_key
from matcher.settings import techmatch_home

Progress = Callable[[int], None]
KINDS = ("query", "passage")


@dataclass(frozen=True)
class ModelRecipe:
    """How a worker makes its encoder: a registered name or folder, as ``load_encoder`` takes it.

    A recipe travels to the workers instead of the model: each loads its own copy once."""

    name: str
    max_seq_length: int | None = None
    batch_size: int = 32

    def __call__(self):
        return load_encoder(self.name, batch_size=self.batch_size, max_seq_length=self.max_seq_length)


@dataclass
class EmbedStats:
    """What a run did: texts asked for, texts really encoded (not in the cache), seconds the
    workers spent inside the encoder (summed over workers)."""

    texts: int = 0
    encoded: int = 0
    encode_seconds: float = 0.0
    batches: list[int] = field(default_factory=list)

    def add(self, batch: dict[str, np.ndarray]) -> None:
        """Counts one finished batch (its ``id``, ``encoded`` and ``seconds`` columns)."""
        self.encoded += int(batch["encoded"].sum())
        self.encode_seconds += float(batch["seconds"].sum())
        self.batches.append(len(batch["id"]))


class _Counting:
    """Passes calls to an encoder; counts the texts that reached it (the cache's misses) and the
    seconds it took."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.batch_size = getattr(inner, "batch_size", 1)
        self.encoded, self.seconds = 0, 0.0

    def encode_queries(self, texts: Sequence[str], progress: Progress | None = None) -> NDArray[np.float32]:
        return self._timed(self.inner.encode_queries, texts, progress)

    def encode_documents(self, texts: Sequence[str], progress: Progress | None = None) -> NDArray[np.float32]:
        return self._timed(self.inner.encode_documents, texts, progress)

    def _timed(self, encode, texts, progress) -> NDArray[np.float32]:
        start = time.perf_counter()
        try:
            return encode(texts, progress)
        finally:
            self.encoded += len(texts)
            self.seconds += time.perf_counter() - start

    def drain(self) -> tuple[int, float]:
        """Texts encoded and seconds spent since the last call."""
        out = (self.encoded, self.seconds)
        self.encoded, self.seconds = 0, 0.0
        return out

    def load(self) -> None:
        load = getattr(self.inner, "load", None)
        if load is not None:
            load()


def cached_worker_encoder(make_encoder: Callable, cache_folder) -> tuple[CachedEncoder, _Counting]:
    """The encoder a worker uses: the model behind the shared folder cache, and its miss counter."""
    counting = _Counting(make_encoder())
    return CachedEncoder(counting, FolderEmbeddingCache(cache_folder or default_cache_folder())), counting


def encode(encoder, texts: Sequence[str], kind: str) -> NDArray[np.float32]:
    """The batch function both paths call: (len(texts), dim) float32, L2-normalised."""
    if kind == "query":
        return encoder.encode_queries(list(texts))
    return encoder.encode_documents(list(texts))


class EmbedWorker:
    """A Ray Data actor: loads the model once, then encodes chunk after chunk.

    refs: ``[texts_ref]``, the distinct texts in the object store (in a list so the actor gets
    the reference and fetches the texts once). Batches carry ``start`` and ``stop``, each row a
    chunk of positions into the texts; it returns ``id`` (int64 positions), ``vec`` (n, dim)
    float32, and per call the texts really encoded and the seconds that took (in row 0)."""

    def __init__(self, refs: list, make_encoder: Callable, cache_folder, kind: str) -> None:
        import ray

        self.texts = ray.get(refs[0])
        self.encoder, self.counting = cached_worker_encoder(make_encoder, cache_folder)
        self.kind = kind

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.counting.drain()
        pos = chunk_positions(batch)
        vecs = encode(self.encoder, [self.texts[int(p)] for p in pos], self.kind)
        return {"id": pos, "vec": vecs, **encode_columns(len(pos), self.counting)}


def chunk_positions(batch: dict[str, np.ndarray]) -> np.ndarray:
    """The positions a batch of ``start``/``stop`` rows stands for, in order."""
    return np.concatenate([np.arange(int(a), int(b), dtype=np.int64) for a, b in zip(batch["start"], batch["stop"])])


def encode_columns(n: int, counting: _Counting) -> dict[str, np.ndarray]:
    """A batch's encoding work as two columns, all in row 0 (so summing a column adds it up)."""
    encoded, seconds = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.float64)
    if n:
        encoded[0], seconds[0] = counting.drain()
    return {"encoded": encoded, "seconds": seconds}


def aligned(size: int, unit: int) -> int:
    """``size`` rounded up to a whole number of ``unit`` (at least one)."""
    unit = max(1, int(unit))
    return max(unit, -(-int(size) // unit) * unit)


def map_chunks(ray, n: int, chunk: int, worker: type, kwargs: dict, config: RayConfig):
    """A Ray Data pipeline over positions 0..n-1 cut into chunks of ``chunk`` (the last one
    shorter), one chunk per call, mapped by a pool of ``worker`` actors.

    The driver decides where chunks start, not Ray Data's block splitting: a chunk is what one
    call sees, and where its model batches start decides, in bfloat16, the last bits of every
    vector. Each actor gets an equal share of the cluster's CPUs (a lone actor uses them all,
    as the plain run does); Ray restarts a dead actor and re-runs its chunk."""
    starts = list(range(0, n, chunk))
    items = [{"start": s, "stop": min(n, s + chunk)} for s in starts]
    actors = min(worker_count(config), len(items))
    # Chunks built here and put in the object store: a read task would need a CPU that the
    # actors never give back.
    return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        worker,
        fn_constructor_kwargs=kwargs,
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_worker(actors),
    )


def embed_on_ray(
    texts: Sequence[str],
    kind: str,
    make_encoder: Callable,
    dim: int,
    config: RayConfig,
    progress: Progress | None = None,
    *,
    worker: type = EmbedWorker,
) -> tuple[NDArray[np.float32], EmbedStats]:
    """(len(texts), dim) float32 vectors in ``texts`` order, encoded by Ray actors, and the stats.

    Each distinct text is sent once. A batch whose actor dies is re-run on a restarted actor;
    what finished before stays in the shared cache, so a stopped run resumes from there.
    worker: the actor class (tests pass a subclass that fails on purpose)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    stats = EmbedStats(texts=len(texts))
    out = np.empty((len(texts), dim), dtype=np.float32)
    if not len(texts):
        return out, stats
    ray = connect(config)
    # The distinct texts, shortest first, as the plain path's cached encoder orders what it
    # encodes; chunks of whole model batches then give every text the same batch neighbours.
    unique = sorted(dict.fromkeys(texts), key=len)
    slot = {t: i for i, t in enumerate(unique)}
    kwargs = {"refs": [ray.put(unique)], "make_encoder": make_encoder, "cache_folder": config.cache_folder}
    kwargs["kind"] = kind
    vecs = np.empty((len(unique), dim), dtype=np.float32)
    chunk = aligned(config.batch_size, getattr(make_encoder, "batch_size", 1))
    for batch in map_chunks(ray, len(unique), chunk, worker, kwargs, config).iter_batches(
        batch_format="numpy", batch_size=None
    ):
        vecs[batch["id"]] = batch["vec"]
        stats.add(batch)
        if progress:
            progress(len(batch["id"]))
    index = np.fromiter((slot[t] for t in texts), dtype=np.int64, count=len(texts))
    out[:] = vecs[index]
    return out, stats


class RayEncoder:
    """The encoder interface, with big calls encoded on Ray and small ones (a query, a handful of
    records) in this process over the local cache. ``stats`` adds up every Ray run.

    Before going to the cluster it looks the texts up itself: queries it already encoded in
    this process (the landscape asks for the same demands several times), then the shared
    cache folder when this machine sees it (not from a Ray Client laptop). Only the rest is
    sent, so a rerun over cached texts starts no Ray job at all."""

    def __init__(self, recipe: ModelRecipe, config: RayConfig, *, min_remote: int | None = None) -> None:
        self.recipe, self.config = recipe, config
        self.local = CachedEncoder(recipe(), EmbeddingCache(techmatch_home() / "embeddings.sqlite"))
        self.name, self.dim = self.local.name, self.local.dim
        self.min_remote = config.batch_size if min_remote is None else min_remote
        self.stats = EmbedStats()
        self._queries: dict[bytes, NDArray[np.float32]] = {}
        folder = config.cache_folder or (None if config.address.startswith("ray://") else default_cache_folder())
        self._shared = FolderEmbeddingCache(folder) if folder is not None and Path(folder).is_dir() else None

    def encode_queries(self, texts: Sequence[str], progress: Progress | None = None) -> NDArray[np.float32]:
        return self._encode(texts, "query", progress)

    def encode_documents(self, texts: Sequence[str], progress: Progress | None = None) -> NDArray[np.float32]:
        return self._encode(texts, "passage", progress)

    def load(self) -> None:
        """Nothing to load here: each worker loads its own model."""

    def warm_queries(self, texts: Sequence[str]) -> None:
        """Encode on the cluster, together, every query the shared cache lacks, however few:
        workers then read each from the cache, the vector a plain run's single call gives."""
        self._encode(texts, "query", None, min_remote=0)

    def _encode(self, texts: Sequence[str], kind: str, progress: Progress | None,
                min_remote: int | None = None) -> NDArray[np.float32]:
        min_remote = self.min_remote if min_remote is None else min_remote
        if len(texts) < min_remote:
            local = self.local.encode_queries if kind == "query" else self.local.encode_documents
            return local(texts, progress)
        keys = [text_key(t) for t in texts]
        have = {k: self._queries[k] for k in keys if k in self._queries} if kind == "query" else {}
        if self._shared is not None and len(have) < len(keys):
            have.update(self._shared.get_many(self.name, kind, [k for k in keys if k not in have]))
        todo = [i for i, k in enumerate(keys) if k not in have]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if progress and len(texts) > len(todo):
            progress(len(texts) - len(todo))
        if todo:
            rest = [texts[i] for i in todo]
            if len(todo) < min_remote:
                local = self.local.encode_queries if kind == "query" else self.local.encode_documents
                out[todo] = local(rest, progress)
            else:
                vecs, stats = embed_on_ray(rest, kind, self.recipe, self.dim, self.config, progress)
                out[todo] = vecs
                self.stats.texts += stats.texts
                self.stats.encoded += stats.encoded
                self.stats.encode_seconds += stats.encode_seconds
                self.stats.batches += stats.batches
        for i, k in enumerate(keys):
            vec = have.get(k)
            if vec is not None:
                out[i] = vec
        if kind == "query":
            self._queries.update(zip(keys, out))
        return out
