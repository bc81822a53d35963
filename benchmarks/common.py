"""Shared helpers of the speed benchmarks: data, machine description, statistics, tables, JSON.

Every benchmark runs from the repository root as `python benchmarks/<name>.py`, prints the
machine (cores), model and corpus size, reports medians over repeated runs, writes one JSON
file under `benchmarks/results/`, and exits 0 with a "skipped" line when `../shared/data`
is absent (a fresh clone has no evaluation data).
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TECHMATCH_SHARED_DATA") or ROOT.parent / "shared" / "data")  # a clone elsewhere sets it
RESULTS = ROOT / "benchmarks" / "results"
SBIR_FIRMS = DATA / "sbir-firms"
SBIR_TOPICS = DATA / "sbir-topics"
SCIFACT = DATA / "scifact"


def setup_env() -> None:
    """Offline models; TECHMATCH_HOME as the caller set it (the embedding cache lives there)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def missing_data(*paths: Path) -> bool:
    """Print the skip line and return True when any path is absent."""
    for path in paths:
        if not path.exists():
            print(f"skipped: {path} not found (the evaluation data lives in ../shared/data)")
            return True
    return False


def machine() -> dict:
    """Cores, CPU model, memory and the load at the start: the context of every number."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        import psutil

        mem_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    from matcher.settings import use_bfloat16

    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "bfloat16": use_bfloat16(),
        "memory_gb": mem_gb,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def describe_machine(info: dict) -> str:
    return (
        f"machine: {info['cores']} cores ({info['cpu'] or 'unknown CPU'}), {info['memory_gb']} GB RAM, "
        f"bfloat16 encoding {'on' if info.get('bfloat16') else 'off'}, "
        f"load average {info['load_average_1m']} at start (shared machine: medians over repeats)"
    )


def load_task(path: Path):
    """A canonical task folder through the engine's own loader (so texts and ids are the
    ones the engine and its embedding cache see)."""
    from matcher.io import load_task as _load

    return _load(path)


def load_topics(limit: int | None = None):
    """sbir-topics demands (real agency needs, no judgements)."""
    task = load_task(SBIR_TOPICS)
    return task.demands[:limit] if limit else task.demands


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def med(values: Iterable[float]) -> float:
    values = list(values)
    return float(statistics.median(values)) if values else float("nan")


def print_table(headers: Sequence[str], rows: Sequence[Sequence], title: str | None = None) -> str:
    """Print an aligned text table (numbers right-aligned) and return it."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h)) for i, h in enumerate(headers)]
    lines = []
    if title:
        lines.append(title)
    lines.append(
        "  ".join(str(h).ljust(w) if i == 0 else str(h).rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    )
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "-"
        if abs(v) >= 100:
            return f"{v:.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3f}"
    return str(v)


def write_json(name: str, report: dict, out: Path | None = None) -> Path:
    path = out or RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)
    return path


def techmatch_home() -> Path:
    from matcher.settings import techmatch_home as _home

    return _home()


def cached_count(model: str, kind: str, texts: Sequence[str], db: Path | None = None) -> int:
    """How many distinct `texts` the embedding cache holds for (model, kind); read-only."""
    from matcher.retrieval.encoders import text_key

    db = db or techmatch_home() / "embeddings.sqlite"
    if not db.exists():
        return 0
    keys = list(dict.fromkeys(text_key(t) for t in texts))
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        have = 0
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            have += conn.execute(
                f"SELECT COUNT(*) FROM embeddings WHERE model = ? AND kind = ? AND key IN ({marks})",
                (model, kind, *chunk),
            ).fetchone()[0]
        return int(have)
    finally:
        conn.close()


def cached_vectors(model: str, kind: str, texts: Sequence[str]) -> np.ndarray:
    """(n, dim) float32 embeddings of `texts` read from the engine's cache; raises if any is missing."""
    from matcher.retrieval.cache import EmbeddingCache
    from matcher.retrieval.encoders import text_key

    cache = EmbeddingCache(techmatch_home() / "embeddings.sqlite")
    try:
        keys = [text_key(t) for t in texts]
        found = cache.get_many(model, kind, keys)
    finally:
        cache.close()
    missing = sum(1 for k in set(keys) if k not in found)
    if missing:
        raise SystemExit(
            f"{missing} of {len(set(keys))} texts have no cached '{model}' {kind} embedding: "
            "encode them first (e.g. `python benchmarks/bench_batch.py`, or `techmatch evaluate`)"
        )
    return np.stack([found[k] for k in keys]).astype(np.float32)


def proc_memory(pid: int) -> dict[str, float]:
    """Current and peak resident memory (MB) of a process, from /proc (VmRSS, VmHWM)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out["rss_mb" if key == "VmRSS" else "peak_rss_mb"] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def surrogate_count(model: str, kind: str, texts: Sequence[str]) -> int:
    """How many distinct `texts` have surrogate vectors in this cache (see surrogate_cache.py);
    0 in a real cache."""
    from matcher.retrieval.encoders import text_key

    db = techmatch_home() / "embeddings.sqlite"
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'surrogates'").fetchone():
            return 0
        keys = list(dict.fromkeys(text_key(t) for t in texts))
        n = 0
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            n += conn.execute(
                "SELECT COUNT(*) FROM surrogates WHERE model = ? AND kind = ? AND key IN "
                f"({','.join('?' * len(chunk))})",
                (model, kind, *chunk),
            ).fetchone()[0]
        return int(n)
    finally:
        conn.close()


def rank_ready_jsonl(src: Path, dst: Path, limit: int | None = None) -> tuple[Path, int]:
    """A plain JSONL copy of the first `limit` records of a task JSONL(.gz), unchanged, for
    `techmatch rank`. Returns (path, longest string field): sbir-topics has 55 texts over the
    20,000-character upload limit, so the caller passes `--max-text-chars` that long."""
    import gzip

    opener = gzip.open if src.suffix == ".gz" else open
    longest = 0
    with opener(src, "rt", encoding="utf-8") as fh, open(dst, "w", encoding="utf-8") as out:
        for i, line in enumerate(fh):
            if limit is not None and i >= limit:
                break
            if not line.strip():
                continue
            rec = json.loads(line)
            longest = max([longest, *(len(v) for v in rec.values() if isinstance(v, str))])
            out.write(line if line.endswith("\n") else line + "\n")
    return dst, longest
