"""Reliability diagram of the calibrated fit: held-out fits (5-fold cross-validation over
demands) against the share of pairs judged relevant, per task given; writes a PNG.

    python docs/make_reliability.py corpora/qiqihar [../shared/data/csl-disciplines ...] \\
        --out docs/reliability-fit.png

Needs matplotlib (not a techmatch dependency: `pip install matplotlib`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tasks", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/reliability-fit.png"))
    ap.add_argument("--model", default="e5-multilingual-small")
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matcher.calibrate import cross_validate, judged_pairs
    from matcher.io import load_task
    from matcher.retrieval.calibration import reliability_table
    from matcher.retrieval.encoders import open_encoder
    from matcher.retrieval.engine import MatchEngine

    encoder = open_encoder(args.model)
    fig, axes = plt.subplots(1, len(args.tasks), figsize=(5.2 * len(args.tasks), 5), squeeze=False)
    for ax, path in zip(axes[0], args.tasks):
        task = load_task(path)
        engine = MatchEngine(encoder)
        engine.upsert_capabilities(task.capabilities)
        engine.upsert_demands(task.demands)
        report = cross_validate(engine, task, pairs=judged_pairs(engine, task))
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
        for fits, rel, name, colour in (
            (report.fits.ravel(), report.relevant.ravel(), f"all pairs (ECE {report.ece_all:.3f})", "C0"),
            (report.fits[report.judged], report.relevant[report.judged],
             f"judged pairs (ECE {report.ece_judged:.3f})", "C1"),
        ):
            table = reliability_table(fits, rel)
            x = [t[1] for t in table]
            y = [t[2] for t in table]
            n = np.array([t[3] for t in table], dtype=float)
            ax.plot(x, y, marker="o", color=colour, label=name)
            ax.scatter(x, y, s=20 + 200 * np.sqrt(n / n.max()), color=colour, alpha=0.25)
        ax.set_title(f"{task.name}: held-out fit, {len(report.fits)} demands x {report.fits.shape[1]} targets\n"
                     f"top-10 ECE {report.ece_top10:.3f}", fontsize=10)
        ax.set_xlabel("mean fit in bin (10 equal-width bins)")
        ax.set_ylabel("share judged relevant")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="upper left", fontsize=8)
        print(f"{task.name}: ECE all {report.ece_all:.4f}, judged {report.ece_judged:.4f}, "
              f"top-10 {report.ece_top10:.4f}")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
