"""Shared helpers of the speed benchmarks: data, machine description, statistics, tables, JSON.

Every benchmark runs from the repository root as `python benchmarks/<name>.py`, prints the
machine (cores), model and corpus size, reports medians over repeated runs, writes one JSON
file under `benchmarks/results/`, and exits 0 with a "skipped" line when `../shared/data`
is absent (a fresh clone has no evaluation data).

`--smoke` (every script has it) runs the same code on a tiny synthetic corpus written to a
temporary folder (`start_smoke`), with the fake encoder, in a temporary TECHMATCH_HOME: CI
runs it to prove each benchmark works end to end. Its numbers mean nothing, every table and
JSON says so, and its JSON never goes to `benchmarks/results/`.
"""

from __future__ import annotations

import argparse
import atexit
import gzip
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout; TECHMATCH_SHARED_DATA points elsewhere (e.g. from a worktree).
DATA = Path(os.environ.get("TECHMATCH_SHARED_DATA") or ROOT.parent / "shared" / "data")
RESULTS = ROOT / "benchmarks" / "results"
SBIR_FIRMS = DATA / "sbir-firms"
SBIR_TOPICS = DATA / "sbir-topics"
SCIFACT = DATA / "scifact"


SMOKE = False  # set by start_smoke: a smoke run, its numbers mean nothing
SMOKE_NOTE = ("SMOKE RUN: a tiny synthetic corpus and the fake encoder, to check that the benchmark runs end to "
              "end; its numbers mean nothing")
SMOKE_HELP = "a few seconds on a tiny synthetic corpus with the fake encoder (CI): the numbers mean nothing"


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
        "probe_start": speed_probe(),
    }


def describe_machine(info: dict) -> str:
    return (
        f"machine: {info['cores']} cores ({info['cpu'] or 'unknown CPU'}), {info['memory_gb']} GB RAM, "
        f"bfloat16 encoding {'on' if info.get('bfloat16') else 'off'}, "
        f"load average {info['load_average_1m']} at start (shared machine: medians over repeats)\n"
        f"{describe_probe(info['probe_start'], 'at start')}"
    )


PROBE_ROWS, PROBE_DIM = 42_000, 384  # the exact index's scan at the full sbir-firms corpus


def speed_probe(repeats: int = 5) -> dict:
    """How fast the machine is right now: two fixed workloads, medians of `repeats` (about half
    a second in all). `python_ms`: a dict of 200,000 string keys filled and summed (what the
    service's Python steps do); `scan_ms`: 42,000 x 384 float32 vectors against one (the exact
    index's memory-bound scan). The load average cannot show it, but the build machine is a
    shared virtual machine: the same probe took 50 and 101 ms half a minute apart (session
    18), so a latency is read beside the probes taken with it. Its 64 MB are freed on return:
    a benchmark that reads its own memory is not changed by it."""
    vectors = np.full((PROBE_ROWS, PROBE_DIM), 0.05, dtype=np.float32)
    query = vectors[:1].T.copy()

    def python_work() -> float:
        t0 = time.perf_counter()
        table = {str(i): i for i in range(200_000)}
        sum(table.values())
        return (time.perf_counter() - t0) * 1e3

    def scan() -> float:
        t0 = time.perf_counter()
        vectors @ query
        return (time.perf_counter() - t0) * 1e3

    return {"python_ms": round(med([python_work() for _ in range(repeats)]), 2),
            "scan_ms": round(med([scan() for _ in range(repeats)]), 3),
            "at": time.strftime("%H:%M:%S")}


def describe_probe(probe: dict, when: str) -> str:
    return (f"speed probe {when} ({probe['at']}): Python {probe['python_ms']:.0f} ms, vector scan "
            f"{probe['scan_ms']:.2f} ms (a quiet moment of the 2-core build machine: about 50 and 2.4)")


def load_task(path: Path):
    """A canonical task folder through the engine's own loader (so texts and ids are the
    ones the engine and its embedding cache see)."""
    from matcher.io import load_task as _load

    return _load(path)


def load_topics(limit: int | None = None):
    """sbir-topics demands (real agency needs, no judgements)."""
    task = load_task(SBIR_TOPICS)
    return task.demands[:limit] if limit else task.demands


def engine_bench_args(description: str, name: str, repeats: int, argv: list[str] | None) -> argparse.Namespace:
    """The arguments of the in-process engine benchmarks over sbir-firms capabilities and stored
    sbir-topics demands (`bench_engine`, `bench_demand_write`), `--smoke` applied: results go to
    `results/<name>_<model>.json` unless `--out` says otherwise."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--capabilities", type=int, default=42461)
    ap.add_argument("--stored", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=repeats)
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    ap.add_argument("--out", type=Path, help=f"JSON output (default: benchmarks/results/{name}_<model>.json)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.model, args.stored, args.repeats = "fake", 10, 1
        start_smoke(f"{name}_{args.model}.json")
    return args


def sbir_corpus(capabilities: int, stored: int) -> tuple[list, list]:
    """The first `capabilities` sbir-firms capabilities and the first `stored` sbir-topics demands."""
    return load_task(SBIR_FIRMS).capabilities[:capabilities], load_topics(stored)


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def med(values: Iterable[float]) -> float:
    values = list(values)
    return float(statistics.median(values)) if values else float("nan")


def print_table(headers: Sequence[str], rows: Sequence[Sequence], title: str | None = None) -> str:
    """Print an aligned text table (numbers right-aligned) and return it."""
    if SMOKE:
        title = f"[SMOKE RUN: numbers mean nothing] {title or ''}".rstrip()
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
    if SMOKE:
        path = out or smoke_json(name)
        report = smoke_report(report, path)
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


# -- smoke runs: a tiny synthetic corpus, the fake encoder, nothing outside a temp folder -----
SMOKE_PARTNERS = 12  # 6 Chinese institutes, 6 English-speaking labs
SMOKE_FIELDS = [  # (Chinese words, English words) of one technical field
    ("铁路 货车 车体 防腐 涂层 低温 附着力 剥落", "rail freight car anticorrosion coating low temperature adhesion"),
    ("乳制品 冷链 杀菌 发酵 酸奶 保质期 菌种", "dairy cold chain sterilisation fermentation yogurt shelf life culture"),
    ("玉米 深加工 淀粉 酶解 燃料 乙醇 秸秆", "corn processing starch enzymatic hydrolysis fuel ethanol straw"),
    ("重型 机床 数控 主轴 热变形 误差 补偿", "heavy machine tool numerical control spindle thermal error compensation"),
    ("风电 齿轮箱 轴承 寒区 润滑 故障 诊断", "wind turbine gearbox bearing cold region lubrication fault diagnosis"),
    ("湿地 水质 监测 遥感 生态 修复 污染", "wetland water quality monitoring remote sensing ecological restoration"),
]


def start_smoke(name: str, model: str | None = "fake") -> Path:
    """Turn this process into a smoke run and return the default JSON path (a temp folder).

    DATA and the task paths point at a synthetic corpus written now (sbir-firms, sbir-topics
    and scifact shaped: a few dozen Chinese and English demands, capabilities and partners);
    TECHMATCH_HOME is a fresh temp folder whose embedding cache holds `model`'s vectors of every
    text (as a real run's cache does after `bench_batch.py`). Both are removed at exit."""
    global SMOKE, DATA, SBIR_FIRMS, SBIR_TOPICS, SCIFACT
    SMOKE = True
    print(SMOKE_NOTE, flush=True)
    base = Path(tempfile.mkdtemp(prefix="tm-smoke-"))
    atexit.register(shutil.rmtree, base, True)
    DATA = write_smoke_data(base / "data")
    SBIR_FIRMS, SBIR_TOPICS, SCIFACT = DATA / "sbir-firms", DATA / "sbir-topics", DATA / "scifact"
    home = base / "home"
    home.mkdir()
    os.environ["TECHMATCH_HOME"] = str(home)
    setup_env()
    if model:
        fill_smoke_cache(model)
    return smoke_json(name)


def smoke_json(name: str) -> Path:
    return Path(tempfile.gettempdir()) / "techmatch-smoke" / name


def smoke_report(report: dict, path: Path) -> dict:
    """The report marked as a smoke run; refuses a path under benchmarks/results/."""
    if path.resolve().is_relative_to(RESULTS.resolve()):
        raise SystemExit(f"a smoke run does not write under {RESULTS}: its numbers mean nothing ({path})")
    return {"smoke": SMOKE_NOTE, **report}


def write_smoke_data(data: Path, seed: int = 13) -> Path:
    """Three task folders in the shared data's layout, from SMOKE_FIELDS (deterministic)."""
    rng = random.Random(seed)
    partners, caps = [], []
    for p in range(SMOKE_PARTNERS):
        zh = p % 2 == 0
        field = SMOKE_FIELDS[p % len(SMOKE_FIELDS)]
        name = f"第{p + 1}研究所" if zh else f"Laboratory {p + 1}"
        partners.append((f"firm-{p:03d}", name, zh, field))
        for c in range(5):
            caps.append({"id": f"cap-{p:03d}-{c}", "partner_id": f"firm-{p:03d}", "partner_name": name,
                         "title": _smoke_text(rng, field, zh, 4), "text": _smoke_text(rng, field, zh, 40),
                         "language": "zh" if zh else "en"})
    held_out = [caps.pop(5 * p) for p in reversed(range(SMOKE_PARTNERS))][::-1]  # each partner's first
    firm_demands = [{"id": f"award-{c['id']}", "title": c["title"], "text": c["text"], "language": c["language"]}
                    for c in held_out]
    topics = []
    for t in range(64):
        zh = t % 2 == 0
        field = SMOKE_FIELDS[t % len(SMOKE_FIELDS)]
        topics.append({"id": f"topic-{t}", "title": _smoke_text(rng, field, zh, 5),
                       "text": _smoke_text(rng, field, zh, 60), "language": "zh" if zh else "en"})
    firm_qrels = [(d["id"], c["partner_id"]) for d, c in zip(firm_demands, held_out)]
    _write_task(data / "sbir-firms", {"name": "sbir-firms", "level": "partner"}, firm_demands, caps, firm_qrels)
    _write_task(data / "sbir-topics", {"name": "sbir-topics", "level": None}, topics, None, None)
    # scifact-shaped: capability level, each topic relevant to two capabilities of its field
    scifact = topics[:24]
    cap_qrels = []
    for t, d in enumerate(scifact):
        own = [c for c in caps if c["partner_id"] == f"firm-{t % len(SMOKE_FIELDS):03d}"]
        cap_qrels += [(d["id"], c["id"]) for c in own[t % 2 : t % 2 + 2]]
    _write_task(data / "scifact", {"name": "scifact", "level": "capability"}, scifact, caps, cap_qrels, gz=False)
    return data


def _smoke_text(rng: random.Random, field: tuple[str, str], zh: bool, words: int) -> str:
    own = field[0 if zh else 1].split()
    other = rng.choice(SMOKE_FIELDS)[0 if zh else 1].split()  # some overlap between fields
    picked = [rng.choice(own if rng.random() < 0.8 else other) for _ in range(words)]
    return ("".join(picked) + "。") if zh else (" ".join(picked).capitalize() + ".")


def _write_task(folder: Path, meta: dict, demands: list[dict], caps: list[dict] | None, qrels, gz: bool = True):
    folder.mkdir(parents=True)
    (folder / "task.json").write_text(json.dumps({**meta, "note": SMOKE_NOTE}, ensure_ascii=False), encoding="utf-8")
    suffix = ".jsonl.gz" if gz else ".jsonl"
    for stem, rows in (("demands", demands), ("capabilities", caps)):
        if rows is None:
            continue
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        (folder / (stem + suffix)).write_bytes(gzip.compress(lines, mtime=0) if gz else lines)
    if qrels:
        unique = list(dict.fromkeys(qrels))
        (folder / "qrels.tsv").write_text("demand_id\ttarget_id\trelevance\n"
                                          + "".join(f"{d}\t{t}\t1\n" for d, t in unique), encoding="utf-8")


def fill_smoke_cache(model: str) -> None:
    """Every smoke text's query and passage vectors in the temp home's embedding cache, written
    by the engine's own cached encoder."""
    from matcher.retrieval.cache import EmbeddingCache
    from matcher.retrieval.encoders import CachedEncoder, load_encoder

    texts = []
    for folder in (SBIR_FIRMS, SBIR_TOPICS, SCIFACT):
        task = load_task(folder)
        texts += [r.full_text for r in (*task.demands, *task.capabilities)]
    texts = list(dict.fromkeys(texts))
    cache = EmbeddingCache(techmatch_home() / "embeddings.sqlite")
    try:
        enc = CachedEncoder(load_encoder(model), cache)
        enc.encode_queries(texts)
        enc.encode_documents(texts)
    finally:
        cache.close()


class SmokeSentenceModel:
    """What the naive stack calls on a SentenceTransformer (`encode`, `max_seq_length`), answered
    by the fake encoder: smoke runs never load a real model."""

    max_seq_length = 256

    def __init__(self) -> None:
        from matcher.retrieval.encoders import FakeEncoder

        self.encoder = FakeEncoder()

    def encode(self, texts, **_):
        return self.encoder.embed_batch(list(texts))
