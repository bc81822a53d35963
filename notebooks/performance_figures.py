"""Figures of the speed benchmarks, drawn from `benchmarks/results/*.json`.

Used by `notebooks/performance.ipynb`; also runs on its own (no Jupyter needed):

    python notebooks/performance_figures.py            # writes notebooks/figures/*.png

Every function takes the loaded results and returns a matplotlib Figure; missing result
files just leave their figure out.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FIGURES = ROOT / "notebooks" / "figures"
KIND_LABEL = {
    "stored": "stored demand",
    "free": "free text, 2,000 chars",
    "short": "free text, 300 chars",
}


def load_results(folder: Path = RESULTS) -> dict[str, dict]:
    """{file stem: parsed JSON} for every benchmark result."""
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("bench_*.json"))}


def latency_vs_size(online: dict, clients: str = "1"):
    """p50 (solid) and p99 (dotted) latency against corpus size, ours and the naive stack.

    Sizes whose capability vectors are partly surrogates (timing only) get hollow markers."""
    import matplotlib.pyplot as plt

    sizes = online["sizes"]
    kinds = [k for k in KIND_LABEL if k in sizes[0]["ours"]]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 4), sharey=True)
    axes = [axes] if len(kinds) == 1 else list(axes)
    x = [s["capabilities"] for s in sizes]
    real = [s.get("surrogate_vectors", 0) == 0 for s in sizes]
    for ax, kind in zip(axes, kinds):
        for who, colour in (("ours", "tab:blue"), ("naive", "tab:red")):
            if who == "naive" and "naive" not in sizes[0]:
                continue
            p50 = [s[who][kind][clients]["p50_ms"] for s in sizes]
            p99 = [s[who][kind][clients]["p99_ms"] for s in sizes]
            label = "techmatch (HTTP)" if who == "ours" else "naive stack (in-process)"
            ax.plot(x, p50, "-", color=colour, label=f"{label} p50")
            ax.plot(x, p99, ":", color=colour, label=f"{label} p99")
            for xi, yi, r in zip(x, p50, real):
                ax.plot(xi, yi, "o", color=colour, markerfacecolor=colour if r else "white")
        if kind == "stored":
            ax.axhline(20, color="grey", lw=0.8, ls="--")
            ax.axhline(80, color="grey", lw=0.8, ls="-.")
        elif kind in ("free", "short"):
            ax.axhline(60, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("capabilities")
        ax.set_title(f"{KIND_LABEL[kind]}, {clients} client(s)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("latency, ms")
    axes[0].legend(fontsize=7)
    fig.suptitle(
        f"Online matching latency, model {online['model']}, index {online.get('index', 'exact')} "
        "(hollow: surrogate vectors, timing only)"
    )
    fig.tight_layout()
    return fig


def index_tradeoff(index: dict):
    """Recall@10 against query time for each index setting, one panel per corpus size."""
    import matplotlib.pyplot as plt

    sizes = sorted({r["n"] for r in index["results"]})
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes), 4))
    axes = [axes] if len(sizes) == 1 else list(axes)
    colours = {"exact": "black", "hnsw": "tab:green", "ivf": "tab:purple"}
    for ax, n in zip(axes, sizes):
        for r in (r for r in index["results"] if r["n"] == n):
            ax.plot(r["single_ms"], r["recall@10"], "o", color=colours[r["kind"]])
            ax.annotate(
                r["setting"].replace("efC=80 ", "") or "exact",
                (r["single_ms"], r["recall@10"]),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.axhline(0.95, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("ms per query (one query, one thread, k=200)")
        ax.set_ylabel("recall@10 against exact")
        ax.set_title(f"{n:,} vectors")
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"Index choice, model {index['model']}: exact (black), HNSW (green), IVF (purple)")
    fig.tight_layout()
    return fig


def quality_vs_speed(results: dict):
    """Quality (scifact nDCG@10, sbir-firms MRR) against stored-demand p50 at the largest size,
    for each model with both result files, techmatch fused against the naive stack's RRF."""
    import matplotlib.pyplot as plt

    tasks = [("scifact", "ndcg@10"), ("sbir-firms", "mrr")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (task, metric) in zip(axes, tasks):
        for stem, q in results.items():
            if not stem.startswith("bench_quality_") or "techmatch" not in q["tasks"].get(task, {}):
                continue
            model = q["model"]
            online = results.get(f"bench_online_{model}")
            if not online:
                continue
            big = online["sizes"][-1]
            t = q["tasks"][task]
            for who, method, marker in (("techmatch", "fused", "o"), ("naive", "rrf", "s"), ("naive", "minmax", "^")):
                y = t[who][method][metric]
                src = "ours" if who == "techmatch" else "naive"
                if src not in big:
                    continue
                xval = big[src]["stored"]["1"]["p50_ms"]
                ax.plot(xval, y, marker, ms=8, label=f"{model}: {who} {method}")
        ax.set_xscale("log")
        ax.set_xlabel("stored-demand p50, ms (largest online size)")
        ax.set_ylabel(metric)
        ax.set_title(
            task
            + (
                " (cached subset)"
                if any(
                    r.get("tasks", {}).get(task, {}).get("subset")
                    for k, r in results.items()
                    if k.startswith("bench_quality")
                )
                else ""
            )
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Quality against speed: up and to the left is better")
    fig.tight_layout()
    return fig


def memory_vs_size(online: dict):
    import matplotlib.pyplot as plt

    sizes = online["sizes"]
    x = [s["capabilities"] for s in sizes]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(x, [s["memory_after_start"].get("rss_mb", 0) for s in sizes], "o-", label="RSS after start")
    ax.plot(x, [s["memory_after_load"].get("peak_rss_mb", 0) for s in sizes], "s-", label="peak RSS after load")
    if all("restart" in s for s in sizes):  # measured since session 3
        restart_peaks = [s["restart"]["memory_after_load"].get("peak_rss_mb", 0) for s in sizes]
        ax.plot(x, restart_peaks, "^-", label="peak after a restart (saved index)")
    ax.axhline(1536, color="grey", lw=0.8, ls="--", label="1.5 GB target")
    ax.set_xscale("log")
    ax.set_xlabel("capabilities")
    ax.set_ylabel("MB")
    ax.set_title(f"Service memory, model {online['model']}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def batch_bars(batch: dict):
    import matplotlib.pyplot as plt

    cold = batch["cold"]
    labels = [f"floor\n{cold['demands']}x{cold['capabilities']}", "cold", "warm"]
    values = [batch["cold"]["encode_seconds"], cold["seconds"], batch["warm_same_size_median"]]
    if batch.get("full"):
        f = batch["full"]
        labels += [f"floor (est.)\n{f['demands']}x{f['capabilities']}", "cold (est.)", "warm"]
        values += [f["floor_estimate_seconds"], f["cold_estimate_seconds"], f["warm_seconds_median"]]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(range(len(values)), values, color=["grey", "tab:blue", "tab:green"] * 2)
    ax.set_xticks(range(len(values)), labels, fontsize=7)
    ax.set_ylabel("seconds")
    ax.set_yscale("log")
    ax.set_title(f"Batch ranking, model {batch['model']}")
    fig.tight_layout()
    return fig


def encoding_precision(enc: dict):
    """Batch throughput and one-query latency per model, float32 against bfloat16 and the default."""
    import matplotlib.pyplot as plt

    models = list(enc["models"])
    precisions = ("float32", "bfloat16", "default")
    lengths = [k for k in enc["models"][models[0]]["float32"] if k.endswith("chars")]
    fig, axes = plt.subplots(1, 1 + len(lengths), figsize=(4 * (1 + len(lengths)), 3.5))
    width = 0.8 / len(precisions)
    for j, precision in enumerate(precisions):
        xs = [i + j * width for i in range(len(models))]
        axes[0].bar(xs, [enc["models"][m][precision]["docs_per_s"] for m in models], width, label=precision)
        for ax, length in zip(axes[1:], lengths):
            ax.bar(xs, [enc["models"][m][precision][length]["p50_ms"] for m in models], width, label=precision)
    axes[0].set_title("batch of 32: texts/s (higher is better)")
    for ax, length in zip(axes[1:], lengths):
        ax.set_title(f"one query, {length}: p50 ms")
    for ax in axes:
        ax.set_xticks([i + width for i in range(len(models))], models, fontsize=7)
        ax.legend(fontsize=7)
    fig.suptitle("Encoding precision")
    fig.tight_layout()
    return fig


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    results = load_results()
    FIGURES.mkdir(parents=True, exist_ok=True)
    made = []
    for stem, res in results.items():
        if stem.startswith("bench_online_") and len(res["sizes"]) > 1:  # one size: nothing to plot against
            tag = stem.removeprefix("bench_online_")  # model, plus the index or size variant
            for clients in ("1", "8"):
                fig = latency_vs_size(res, clients)
                made.append(FIGURES / f"latency_{tag}_{clients}client.png")
                fig.savefig(made[-1], dpi=110)
            made.append(FIGURES / f"memory_{tag}.png")
            memory_vs_size(res).savefig(made[-1], dpi=110)
        elif stem.startswith("bench_index_"):
            made.append(FIGURES / f"index_{res['model']}.png")
            index_tradeoff(res).savefig(made[-1], dpi=110)
        elif stem.startswith("bench_batch_"):
            made.append(FIGURES / f"batch_{res['model']}.png")
            batch_bars(res).savefig(made[-1], dpi=110)
        elif stem == "bench_encode":
            made.append(FIGURES / "encoding_precision.png")
            encoding_precision(res).savefig(made[-1], dpi=110)
    if any(s.startswith("bench_quality_") for s in results):
        made.append(FIGURES / "quality_vs_speed.png")
        quality_vs_speed(results).savefig(made[-1], dpi=110)
    for p in made:
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
