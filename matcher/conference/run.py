"""Conference ranking: every demand ranked in resumable chunks.

``rank_batch`` ranks all demands in chunks and appends each finished chunk to a JSONL
checkpoint (fsynced), so an interrupted run resumes where it stopped. ``candidate_table`` turns
the ranked lists into the (demand, partner, score) rows the assignment takes. The files of the
day are :mod:`matcher.conference.outputs`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from matcher.errors import InputError
from matcher.fsutil import atomic_bytes, atomic_text
from matcher.records import Demand
from matcher.retrieval.calibration import default_calibrator
from matcher.retrieval.results import CapabilityHit, PartnerMatch, ScoreParts
from matcher.sheets import safe_cell  # noqa: F401  (re-exported: part of this module's API)

RankFn = Callable[[list[Demand]], Mapping[str, Sequence[PartnerMatch]]]
ProgressFn = Callable[[int, int], None]
CHECKPOINT_FORMAT = "techmatch-rank-checkpoint"
CHECKPOINT_VERSION = 2  # 2: matches carry their calibrated fit
RANK_CHUNK = 64  # demands ranked (with reasons) per call, then appended to the checkpoint


# ---------------------------------------------------------------------------- batch ranking


def rank_batch(
    rank_fn: RankFn,
    demands: Sequence[Demand],
    k: int,
    checkpoint: Path | None = None,
    progress: ProgressFn | None = None,
    *,
    chunk_size: int = RANK_CHUNK,
) -> dict[str, list[PartnerMatch]]:
    """Top-``k`` partners for every demand, in ``demands`` order.

    rank_fn: ranks a list of demands, returns demand_id -> matches (best first); a demand it
    leaves out gets no candidates. checkpoint: a JSONL file; demands already in it are not
    ranked again, finished chunks are appended and fsynced. A checkpoint written with another
    ``k`` is refused. progress: called as ``progress(done, total)`` at start and per chunk.
    """
    if k < 1 or chunk_size < 1:
        raise InputError(f"k and chunk_size must be >= 1, got {k} and {chunk_size}", field="k")
    ids = [d.id for d in demands]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"duplicate demand id '{dup}'", field="id")
    done: dict[str, list[PartnerMatch]] = {}
    if checkpoint is not None:
        done = _open_checkpoint(Path(checkpoint), k)
    wanted = set(ids)
    todo = [d for d in demands if d.id not in done]
    total, finished = len(demands), len(wanted & done.keys())
    if progress:
        progress(finished, total)
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        ranked = rank_fn(list(chunk))
        fresh = {d.id: list(ranked.get(d.id, ()))[:k] for d in chunk}
        if checkpoint is not None:
            _append(Path(checkpoint), fresh)
        done.update(fresh)
        finished += len(chunk)
        if progress:
            progress(finished, total)
    return {i: done[i] for i in ids}


def default_floor() -> float:
    """The default quality floor of an assignment: the fit from which a pair is a "possible"
    match under the calibration in use (no meeting is proposed with a partner judged weak)."""
    return default_calibrator().thresholds_.possible


def candidate_table(ranked: Mapping[str, Sequence[PartnerMatch]]) -> list[tuple[str, str, float]]:
    """``(demand_id, partner_id, fit)`` rows for :func:`matcher.conference.assign.assign`: the
    calibrated fit, so the objective is the expected number of meetings staff would judge
    relevant, comparable across demands (a fused score is relative to its own demand)."""
    return [(d, m.partner_id, m.fit) for d, ms in ranked.items() for m in ms]


def match_to_json(m: PartnerMatch) -> dict[str, Any]:
    return dataclasses.asdict(m)


def match_from_json(obj: Mapping[str, Any]) -> PartnerMatch:
    evidence = tuple(
        CapabilityHit(
            **{
                **h,
                "parts": ScoreParts(**h["parts"]),
                "shared_terms": tuple(h.get("shared_terms", ())),
            }
        )
        for h in obj.get("evidence", ())
    )
    return PartnerMatch(
        **{
            **obj,
            "evidence": evidence,
            "shared_terms": tuple(obj.get("shared_terms", ())),
            "components": dict(obj.get("components", {})),
        }
    )


def _open_checkpoint(path: Path, k: int) -> dict[str, list[PartnerMatch]]:
    header = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "k": k}
    raw = path.read_bytes() if path.exists() else b""
    if not raw.strip():
        atomic_text(path, json.dumps(header) + "\n")
        return {}
    # A last line without its newline is a write cut short: drop it, it gets ranked again.
    lines = raw.split(b"\n")[:-1]
    torn = not raw.endswith(b"\n")
    done: dict[str, list[PartnerMatch]] = {}
    good: list[bytes] = []
    for row, line in enumerate(lines, start=1):
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise InputError(f"not JSON: {exc}", file=str(path), row=row) from exc
        if not isinstance(obj, dict):
            raise InputError("expected a JSON object", file=str(path), row=row)
        if row == 1:
            if obj.get("format") != CHECKPOINT_FORMAT or obj.get("version") != CHECKPOINT_VERSION:
                raise InputError("not a ranking checkpoint", file=str(path), row=1)
            if obj.get("k") != k:
                raise InputError(
                    f"checkpoint was written with k={obj.get('k')}, now k={k}; use the same k or start afresh",
                    file=str(path),
                    row=1,
                )
        else:
            try:
                done[obj["demand_id"]] = [match_from_json(m) for m in obj["matches"]]
            except (KeyError, TypeError) as exc:
                raise InputError(f"bad checkpoint line: {exc}", file=str(path), row=row) from exc
        good.append(line)
    if torn:
        good = good or [json.dumps(header).encode()]
        atomic_bytes(path, b"".join(g + b"\n" for g in good))
    return done


def _append(path: Path, chunk: Mapping[str, list[PartnerMatch]]) -> None:
    text = "".join(
        json.dumps({"demand_id": d, "matches": [match_to_json(m) for m in ms]}, ensure_ascii=False) + "\n"
        for d, ms in chunk.items()
    )
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
