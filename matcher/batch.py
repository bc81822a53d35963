"""Batch ranking of files: every demand against every capability, written as a TSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from matcher.fsutil import atomic_text
from matcher.io.ingest import load_capabilities, load_demands
from matcher.io.tables import MAX_CELL_CHARS
from matcher.retrieval.encoders import open_encoder
from matcher.retrieval.engine import DEMANDS_PER_CALL, MatchEngine

Ranker = Callable[..., list[list[tuple[str, float, float]]]]


def rank_demands(engine: MatchEngine, demands, *, level: str, k: int,
                 progress=None) -> list[list[tuple[str, float, float]]]:
    """``[(target_id, score, fit), ...]`` per demand in order, DEMANDS_PER_CALL demands per
    engine batch call."""
    out: list[list[tuple[str, float, float]]] = []
    engine.encode_demand_queries(demands)
    for start in range(0, len(demands), DEMANDS_PER_CALL):
        chunk = demands[start : start + DEMANDS_PER_CALL]
        out.extend(engine.ranked_targets_batch(chunk, k=k, level=level))
        if progress:
            progress(len(chunk))
    return out


def rank_files(
    demands_file: Path,
    capabilities_file: Path,
    out: Path,
    *,
    model: str,
    level: str = "partner",
    k: int = 10,
    progress: Callable | None = None,
    max_text_chars: int = MAX_CELL_CHARS,
    encoder=None,
    ranker: Ranker = rank_demands,
) -> int:
    """Writes `demand_id, target_id, score, fit, label, rank` rows (rank from 1): exactly k
    targets per demand, or all of them when fewer exist. score orders the list (fused, relative
    to its demand); fit is the calibrated fit, comparable across demands. Returns the row count.

    `max_text_chars` raises the per-cell guard for files the operator trusts (long call
    texts): the encoder still reads only its token window, BM25 reads the whole text.
    encoder and ranker replace the local ones (``matcher.distributed`` runs both on Ray)."""
    demands = load_demands(demands_file, max_cell=max_text_chars)
    capabilities = load_capabilities(capabilities_file, max_cell=max_text_chars)
    engine = MatchEngine(encoder if encoder is not None else open_encoder(model))
    bar = progress("embedding capabilities", len(capabilities)) if progress else None
    engine.upsert_capabilities(capabilities, bar.update if bar else None)
    if bar:
        bar.close()
    bar = progress("embedding demands", len(demands)) if progress else None
    engine.upsert_demands(demands, bar.update if bar else None)  # the fit sees each among the others
    if bar:
        bar.close()
    bar = progress("ranking demands", len(demands)) if progress else None
    ranked_all = ranker(engine, demands, level=level, k=k, progress=bar.update if bar else None)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(["demand_id", "target_id", "score", "fit", "label", "rank"])
    rows = 0
    label = engine.calibrator.label
    for demand, ranked in zip(demands, ranked_all):
        for i, (target, score, fit) in enumerate(ranked, start=1):
            writer.writerow([demand.id, target, f"{score:.6f}", f"{fit:.6f}", label(fit), i])
            rows += 1
    if bar:
        bar.close()
    atomic_text(out, buf.getvalue())
    return rows
