"""Benchmark plumbing: a separate embedding cache where texts that were never encoded get
surrogate vectors, so timing runs at full corpus size need no hours of encoding.

Why this is sound for timing: exact vector search, BM25, fusion, aggregation, storage and
HTTP cost the same whatever the vector values are; only the ranking changes. So latency,
throughput, memory and warm batch time measured with surrogates are the real ones, while
quality is never measured on surrogates (bench_quality.py reads the real cache only).

Surrogates are mixed pairs of the model's real cached vectors (same rule as bench_index.py):
normalise(a * x_i + (1 - a) * x_j + 0.05 * g / sqrt(dim)), a ~ U(0.6, 0.95).

The copy lives in its own TECHMATCH_HOME (models linked, not copied), never in the real
cache, and records every surrogate key in a table `surrogates`, which the benchmarks read
to print how many vectors of each run were real.

    python benchmarks/surrogate_cache.py --home /tmp/tm-surrogate-home --models minilm
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402


def copy_cache(src: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite cache (WAL included) via the backup API."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=60)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def mixed(pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    i, j = rng.integers(0, len(pool), n), rng.integers(0, len(pool), n)
    a = rng.uniform(0.6, 0.95, n).astype(np.float32)[:, None]
    v = a * pool[i] + (1 - a) * pool[j]
    v += 0.05 * rng.standard_normal(v.shape).astype(np.float32) / np.sqrt(v.shape[1])
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def fill(db: Path, model: str, kind: str, texts: list[str], rng: np.random.Generator) -> dict:
    from matcher.retrieval.encoders import text_key

    conn = sqlite3.connect(db, timeout=60)
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS surrogates (model TEXT, kind TEXT, key BLOB, PRIMARY KEY (model, kind, key))"
        )
        have = {
            bytes(r[0]) for r in conn.execute("SELECT key FROM embeddings WHERE model = ? AND kind = ?", (model, kind))
        }
        keys = list(dict.fromkeys(text_key(t) for t in texts))
        missing = [k for k in keys if k not in have]
        pool_rows = conn.execute(
            "SELECT vec FROM embeddings WHERE model = ? AND kind = 'passage' AND key NOT IN "
            "(SELECT key FROM surrogates WHERE model = ?) LIMIT 50000",
            (model, model),
        ).fetchall()
        if not pool_rows:
            raise SystemExit(f"no real '{model}' embeddings in {db} to derive surrogates from")
        pool = np.stack([np.frombuffer(v, dtype=np.float32) for (v,) in pool_rows])
        if missing:
            vecs = mixed(pool, len(missing), rng)
            with conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)",
                    [(model, kind, k, v.tobytes()) for k, v in zip(missing, vecs)],
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO surrogates VALUES (?, ?, ?)", [(model, kind, k) for k in missing]
                )
        sur = {
            bytes(r[0]) for r in conn.execute("SELECT key FROM surrogates WHERE model = ? AND kind = ?", (model, kind))
        }
        n_sur = sum(1 for k in keys if k in sur)
        return {
            "model": model,
            "kind": kind,
            "texts": len(keys),
            "real": len(keys) - n_sur,
            "surrogate": n_sur,
            "added": len(missing),
            "pool": len(pool),
        }
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, required=True, help="the new TECHMATCH_HOME (must not be the real one)")
    ap.add_argument("--models", nargs="+", default=["minilm"])
    ap.add_argument("--keep", action="store_true", help="fill an existing surrogate cache instead of copying anew")
    args = ap.parse_args(argv)
    if common.missing_data(common.SBIR_FIRMS, common.SBIR_TOPICS):
        return 0
    common.setup_env()
    real_home = common.techmatch_home()
    if args.home.resolve() == real_home.resolve():
        raise SystemExit("--home must be a separate folder: surrogates never go into the real cache")
    args.home.mkdir(parents=True, exist_ok=True)
    if (real_home / "models").exists() and not (args.home / "models").exists():
        (args.home / "models").symlink_to(real_home / "models")
    db = args.home / "embeddings.sqlite"
    if not (args.keep and db.exists()):
        copy_cache(real_home / "embeddings.sqlite", db)
    caps = [c.full_text for c in common.load_task(common.SBIR_FIRMS).capabilities]
    topics = [d.full_text for d in common.load_topics()]
    rng = np.random.default_rng(0)
    for model in args.models:
        for kind, texts in (("passage", caps), ("query", topics)):
            facts = fill(db, model, kind, texts, rng)
            print(
                f"{model} {kind}: {facts['texts']} texts, {facts['real']} real, {facts['surrogate']} surrogate "
                f"({facts['added']} added now, mixed from {facts['pool']} real vectors)"
            )
    print(f"surrogate cache ready: TECHMATCH_HOME={args.home}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
