"""Ranking demands on Ray: every actor holds the whole capability index and ranks its batches.

The driver builds the engine once (its capability embeddings come from :mod:`.embed`), saves it
with ``MatchEngine.save`` and puts the folder, packed, in Ray's object store: workers on other
machines need no shared disk for it. Each :class:`RankWorker` unpacks it once and calls
:func:`rank_chunk`, the same engine batch call the single-machine path makes. The conference
variant appends every finished batch to the ranking checkpoint, so a stopped run resumes.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from matcher.conference.run import RANK_CHUNK, _append, _open_checkpoint, match_from_json, match_to_json
from matcher.distributed.cluster import RayConfig, connect
from matcher.distributed.embed import (
    RayEncoder,
    aligned,
    cached_worker_encoder,
    chunk_positions,
    encode_columns,
    map_chunks,
)
from matcher.errors import InputError
from matcher.records import Demand
from matcher.retrieval.engine import DEMANDS_PER_CALL, MatchEngine
from matcher.retrieval.results import PartnerMatch

LEVELS = ("partner", "capability", "matches")
# Demands per engine call on each level, as the plain path calls it: the demands' queries are
# encoded together, so a call of other demands could move their vectors' last bits.
PER_CALL = {"partner": DEMANDS_PER_CALL, "capability": DEMANDS_PER_CALL, "matches": RANK_CHUNK}
Progress = Callable[[int], None]


def rank_chunk(engine: MatchEngine, demands: Sequence[Demand], level: str, k: int) -> list:
    """One batch of demands, ranked as the plain path ranks it.

    partner / capability: ``[(id, score, fit), ...]`` per demand (no reasons);
    matches: ``[PartnerMatch, ...]`` per demand (with reasons, for the conference)."""
    if level in ("partner", "capability"):
        return engine.ranked_targets_batch(demands, k=k, level=level)
    if level == "matches":
        by_id = engine.match_partners_batch(demands, k=k)
        return [by_id[d.id] for d in demands]
    raise InputError(f"level must be one of {', '.join(LEVELS)}, got '{level}'", field="level")


def pack_engine(engine: MatchEngine) -> bytes:
    """The engine's saved folder as an uncompressed tar (vectors do not compress)."""
    tmp = Path(tempfile.mkdtemp(prefix="techmatch-engine-"))
    try:
        engine.save(tmp / "engine")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(tmp / "engine", arcname="engine")
        return buf.getvalue()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def unpack_engine(data: bytes, encoder) -> MatchEngine:
    tmp = Path(tempfile.mkdtemp(prefix="techmatch-engine-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(tmp, filter="data")
        return MatchEngine.load(tmp / "engine", encoder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class RankWorker:
    """A Ray Data actor: unpacks the engine and loads the model once, then ranks batches.

    refs: ``[engine_ref, demands_ref]`` (in a list so Ray hands over the references, and the
    actor fetches each object once). Batches carry ``start``/``stop`` chunks of positions into the
    demands; results are ``id`` (int64 positions) and ``ranked`` (one JSON text per demand)."""

    def __init__(self, refs: list, make_encoder: Callable, cache_folder, level: str, k: int, per_call: int) -> None:
        import ray

        engine_bytes, self.demands = ray.get(refs[0]), ray.get(refs[1])
        encoder, self.counting = cached_worker_encoder(make_encoder, cache_folder)
        self.engine = unpack_engine(engine_bytes, encoder)
        self.level, self.k, self.per_call = level, k, per_call

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pos = chunk_positions(batch)
        self.counting.drain()
        # Chunks start at multiples of the plain path's call size: call it the same way.
        step, ranked = self.per_call, []
        for start in range(0, len(pos), step):
            part = [self.demands[int(p)] for p in pos[start : start + step]]
            ranked.extend(rank_chunk(self.engine, part, self.level, self.k))
        if self.level == "matches":
            texts = [json.dumps([match_to_json(m) for m in ms], ensure_ascii=False) for ms in ranked]
        else:
            texts = [json.dumps(r, ensure_ascii=False) for r in ranked]
        return {"id": pos, "ranked": np.asarray(texts, dtype=object), **encode_columns(len(pos), self.counting)}


def _stream(
    engine: MatchEngine,
    demands: Sequence[Demand],
    level: str,
    k: int,
    make_encoder: Callable,
    config: RayConfig,
    *,
    worker: type = RankWorker,
    per_call: int | None = None,
):
    """Yields ``(positions, json texts)`` per finished batch, in the order they finish. The
    queries the workers encode count in the engine's ``RayEncoder.stats`` when it has one.
    per_call: demands per engine call, as the plain path calls it (default ``PER_CALL``)."""
    if level not in LEVELS:
        raise InputError(f"level must be one of {', '.join(LEVELS)}, got '{level}'", field="level")
    if not demands:
        return
    ray = connect(config)
    refs = [ray.put(pack_engine(engine)), ray.put(list(demands))]
    kwargs = {"refs": refs, "make_encoder": make_encoder, "cache_folder": config.cache_folder, "level": level, "k": k}
    # Reasons cost more: conference chunks are one call each, so they reach the checkpoint sooner.
    unit = per_call or PER_CALL[level]
    chunk = unit if level == "matches" else aligned(config.batch_size, unit)
    kwargs["per_call"] = unit
    ds = map_chunks(ray, len(demands), chunk, worker, kwargs, config)
    stats = engine.encoder.stats if isinstance(engine.encoder, RayEncoder) else None
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        if stats is not None:
            stats.add(batch)
        yield batch["id"], batch["ranked"]


def warm_demand_queries(engine: MatchEngine, demands: Sequence[Demand], make_encoder: Callable,
                        config: RayConfig) -> None:
    """Every demand's query encoded on the cluster, together, before the ranking workers start
    (as the plain path's ``encode_demand_queries``): each worker then reads the same vector
    from the shared cache, whichever demands share its chunk."""
    encoder = engine.encoder if isinstance(engine.encoder, RayEncoder) else RayEncoder(make_encoder, config)
    encoder.warm_queries([d.full_text for d in demands])


def rank_on_ray(
    engine: MatchEngine,
    demands: Sequence[Demand],
    *,
    level: str,
    k: int,
    make_encoder: Callable,
    config: RayConfig,
    progress: Progress | None = None,
) -> list[list[tuple[str, float, float]]]:
    """``[(target_id, score, fit), ...]`` per demand, in ``demands`` order, ranked by Ray actors.

    level: ``partner`` or ``capability``, as ``techmatch rank --level``."""
    if level not in ("partner", "capability"):
        raise InputError(f"level must be 'partner' or 'capability', got '{level}'", field="level")
    out: list = [None] * len(demands)
    warm_demand_queries(engine, demands, make_encoder, config)
    for positions, texts in _stream(engine, demands, level, k, make_encoder, config):
        for p, t in zip(positions, texts):
            out[int(p)] = [(str(i), float(s), float(f)) for i, s, f in json.loads(t)]
        if progress:
            progress(len(positions))
    return out


def rank_batch_on_ray(
    engine: MatchEngine,
    demands: Sequence[Demand],
    k: int,
    checkpoint: Path | None,
    progress: Callable[[int, int], None] | None = None,
    *,
    make_encoder: Callable,
    config: RayConfig,
    worker: type = RankWorker,
    chunk: int = RANK_CHUNK,
) -> dict[str, list[PartnerMatch]]:
    """:func:`matcher.conference.run.rank_batch` on Ray: top-``k`` partners with reasons for every
    demand, in ``demands`` order, each finished batch appended to ``checkpoint`` as it arrives.

    Demands already in the checkpoint are not ranked again (the same file the plain path
    writes, so a run may stop on one path and resume on the other)."""
    if k < 1 or chunk < 1:
        raise InputError(f"k and chunk must be >= 1, got {k} and {chunk}", field="k")
    ids = [d.id for d in demands]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"duplicate demand id '{dup}'", field="id")
    warm_demand_queries(engine, demands, make_encoder, config)
    done = _open_checkpoint(Path(checkpoint), k) if checkpoint is not None else {}
    todo = [d for d in demands if d.id not in done]
    finished = len(set(ids) & done.keys())
    if progress:
        progress(finished, len(demands))
    for positions, texts in _stream(engine, todo, "matches", k, make_encoder, config, worker=worker, per_call=chunk):
        fresh = {todo[int(p)].id: [match_from_json(m) for m in json.loads(t)][:k] for p, t in zip(positions, texts)}
        if checkpoint is not None:
            _append(Path(checkpoint), fresh)
        done.update(fresh)
        finished += len(fresh)
        if progress:
            progress(finished, len(demands))
    return {i: done[i] for i in ids}
