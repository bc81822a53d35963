"""``techmatch learn``: train, cross-validate, simulate, list and roll back learned rankers.

    techmatch learn cv --task DIR                 5-fold learning-to-rank from the judgements
    techmatch learn simulate --task DIR           simulated bureau outcomes, learning curves
    techmatch learn train --task DIR              train from judgements; deploy if it wins
    techmatch learn models                        versions, the deployed one, feature weights
    techmatch learn rollback                      back to the previous model (or the default)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from matcher.errors import InputError


def add_learn_parser(subparsers: Any, default_workspace: str) -> argparse.ArgumentParser:
    help_ = "learned ranker: cross-validate, simulate outcomes, train, list models, roll back"
    sp = subparsers.add_parser("learn", help=help_, description=help_)
    sub = sp.add_subparsers(title="learn commands", metavar="ACTION")

    def add(name: str, help_: str, func, task: bool) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        p.add_argument("--workspace", "-w", default=os.environ.get("TECHMATCH_WORKSPACE", default_workspace),
                       help="workspace folder; models live in WORKSPACE/rankers (default: %(default)s)")
        p.add_argument("--models", type=Path, help="model folder (default: WORKSPACE/rankers)")
        if task:
            p.add_argument("--task", type=Path, required=True, metavar="DIR", help="judged task folder")
            p.add_argument("--model", "-m", default=os.environ.get("TECHMATCH_MODEL", "e5-multilingual-small"),
                           help="embedding model (default: %(default)s)")
            p.add_argument("--depth", type=int, default=30, help="targets re-ranked per demand (%(default)s)")
            p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
            p.add_argument("--evidence", action="store_true",
                           help="also learn from the seven evidence features (dense and lexical ranks, raw gaps, "
                                "title, phrase and window overlap); a model trained on them costs a few ms more "
                                "per served list (default: the 30 base features)")
        return p

    p = add("cv", "cross-validated learning-to-rank from the task's judgements (folds over demands)", cmd_cv, True)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p = add("simulate", "replay the task as a bureau would; learning curves with and without the correction",
            cmd_simulate, True)
    p.add_argument("--outcomes", type=int, default=1000)
    p.add_argument("--retrain-every", type=int, default=100)
    p.add_argument("--seeds", type=int, default=3, help="independent simulated bureaus to average (%(default)s)")
    p.add_argument("--eta", type=float, default=1.0, help="true position bias exponent (%(default)s)")
    p.add_argument("--correction", choices=("examined", "ipw"), default="examined",
                   help="the corrected estimator compared with no correction: examined (learn from the "
                        "contacted rows only) or ipw (click-model inverse propensity weighting) (%(default)s)")
    p.add_argument("--plot", type=Path, metavar="PNG", help="write the learning curves as a PNG")
    p = add("train", "train from the task's judgements; deploy only if it beats the default on held-out demands",
            cmd_train, True)
    p.add_argument("--no-deploy", action="store_true", help="store the model without deploying it")
    add("models", "list ranker versions, the deployed one and its feature weights", cmd_models, False)
    add("rollback", "undo the last deployment (the previous model, or the default order)", cmd_rollback, False)
    return sp


def models_folder(args) -> Path:
    return Path(args.models) if args.models else Path(args.workspace) / "rankers"


def _task_table(args):
    from matcher.io import load_task
    from matcher.learning.table import build_table
    from matcher.retrieval.encoders import open_encoder
    from matcher.retrieval.engine import MatchEngine

    task = load_task(args.task)
    if not task.qrels:
        raise InputError("task has no judgements (qrels.tsv): nothing to learn from", file=str(args.task))
    partners_file = Path(args.task) / "partners.jsonl"
    partners = _read_partners(partners_file) if partners_file.exists() else []
    engine = MatchEngine(open_encoder(args.model)).fit(task.capabilities, [], partners)
    demands = [d for d in task.demands if d.id in task.qrels]
    print(f"task {task.name} ({task.level} level, {len(demands)} judged demands); features of the top "
          f"{args.depth} per demand{' with the evidence features' if args.evidence else ''} ...", file=sys.stderr)
    return task, build_table(engine, demands, task.level, depth=args.depth, evidence=args.evidence)


def _read_partners(path: Path) -> list:
    """A task's optional partners.jsonl (names, types, regions, countries); unknown fields are ignored."""
    from dataclasses import fields

    from matcher.records import Partner

    known = {f.name for f in fields(Partner)} - {"extra"}
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                out.append(Partner(**{k: str(v) for k, v in d.items() if k in known}))
            except (ValueError, TypeError) as exc:
                raise InputError(f"line {n}: {exc}", file=str(path)) from exc
    return out


def cmd_cv(args) -> int:
    from matcher.learning.train import cross_validate

    task, table = _task_table(args)
    folds = cross_validate(table, task.qrels, folds=args.folds, seed=args.seed, gate_metric=_metric(task))
    print(f"{'fold':>4} {'demands':>7}  {'default nDCG@10':>15} {'learned':>8}  {'default MRR':>11} {'learned':>8}"
          "  model")
    for f in folds:
        print(f"{f.fold:>4} {f.n_test:>7}  {f.default['ndcg@10']:>15.4f} {f.learned['ndcg@10']:>8.4f}  "
              f"{f.default['mrr']:>11.4f} {f.learned['mrr']:>8.4f}  {f.config}")
    n = sum(f.n_test for f in folds)

    def mean(key: str, m: str) -> float:
        return sum(getattr(f, key)[m] * f.n_test for f in folds) / n

    print(f"{'all':>4} {n:>7}  {mean('default', 'ndcg@10'):>15.4f} {mean('learned', 'ndcg@10'):>8.4f}  "
          f"{mean('default', 'mrr'):>11.4f} {mean('learned', 'mrr'):>8.4f}")
    worse = [f.fold for f in folds if f.learned[_metric(task)] < f.default[_metric(task)] - 1e-12]
    print(f"folds where learned < default on {_metric(task)}: {worse or 'none'}")
    if args.json:
        args.json.write_text(json.dumps([f.__dict__ for f in folds], indent=1), encoding="utf-8")
    return 0


def _metric(task) -> str:
    return "mrr" if task.metric.lower().startswith("mrr") else "ndcg@10"


def cmd_simulate(args) -> int:
    from dataclasses import asdict, replace

    from matcher.learning.simulate import SimParams, simulate

    task, table = _task_table(args)
    if task.level != "partner":
        raise InputError("the simulator replays partner-level tasks", file=str(args.task))
    base = SimParams(outcomes=args.outcomes, retrain_every=args.retrain_every, eta=args.eta)
    arms = (args.correction, "naive")
    runs: dict[str, list] = {a: [] for a in arms}
    for seed in range(args.seeds):
        for name in arms:
            runs[name].append(simulate(table, task.qrels, replace(base, seed=seed, estimator=name)))
            print(f"  seed {seed} {name}: done", file=sys.stderr)
    n = min(len(r.curve) for v in runs.values() for r in v)
    print(f"held-out nDCG@10 / MRR, mean (± standard error) of {args.seeds} simulated bureaus (eta {args.eta}); "
          f"correction: {args.correction}")
    d_ndcg = _stat([r.default["ndcg@10"] for r in runs[arms[0]]])[0]
    d_mrr = _stat([r.default["mrr"] for r in runs[arms[0]]])[0]
    print(f"{'outcomes':>8}  {'default':>13}  {'with correction':>22}  {'without':>22}  {'vs default':>13}  "
          f"{'nDCG@10 gain':>13}  {'learned':>7}")
    for i in range(n):
        row = [f"{_mean(runs[arms[0]], i, 'outcomes'):>8.0f}", f"{d_ndcg:.4f}/{d_mrr:.4f}"]
        for name in arms:
            m, se = _stat([r.curve[i].ndcg10 for r in runs[name]])
            row.append(f"{m:.4f}±{se:.4f}/{_mean(runs[name], i, 'mrr'):.4f}")
        lift, lse = _stat([r.curve[i].ndcg10 - r.default["ndcg@10"] for r in runs[arms[0]]])
        row.append(f"{lift:+.4f}±{lse:.4f}")
        gain, gse = _stat([a.curve[i].ndcg10 - b.curve[i].ndcg10 for a, b in zip(runs[arms[0]], runs[arms[1]])])
        row.append(f"{gain:+.4f}±{gse:.4f}")
        row.append("/".join(str(sum(r.curve[i].deployed for r in runs[name])) for name in arms))
        print(f"{row[0]}  {row[1]:>13}  {row[2]:>22}  {row[3]:>22}  {row[4]:>13}  {row[5]:>13}  {row[6]:>7}")
    print("vs default: nDCG@10 with correction minus the default's, same held-out demands; nDCG@10 gain: "
          "with correction minus without, same seed (both mean ± standard error over seeds); learned: "
          "bureaus running a learned model, with correction / without")
    last = n - 1
    if last >= 0:
        for name in arms:
            deployed = sum(r.curve[last].deployed for r in runs[name])
            lift, lse = _stat([r.curve[last].ndcg10 - r.default["ndcg@10"] for r in runs[name]])
            label = "with correction" if name != "naive" else "without"
            print(f"at {_mean(runs[name], last, 'outcomes'):.0f} outcomes, {label}: {deployed} of {len(runs[name])} "
                  f"bureaus run a learned model; nDCG@10 minus the default {lift:+.4f}±{lse:.4f}")
    if args.json:
        args.json.write_text(json.dumps({k: [{"default": r.default, "params": asdict(r.params),
                                              "curve": [asdict(p) for p in r.curve]} for r in v]
                                         for k, v in runs.items()}, indent=1), encoding="utf-8")
    if args.plot:
        _plot(runs, arms, d_ndcg, d_mrr, args.plot, task.name)
    return 0


def _mean(results, i: int, attr: str) -> float:
    vals = [getattr(r.curve[i], attr) for r in results if i < len(r.curve)]
    return sum(vals) / len(vals)


def _stat(vals: list[float]) -> tuple[float, float]:
    """Mean and its standard error over seeds (sample sd / sqrt(n); 0 for a single value): the
    bureaus are independent replicates, and the question is whether a mean differs from 0 (or
    from the default), not how far one bureau strays."""
    m = sum(vals) / len(vals)
    sd = (sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else 0.0
    return m, sd / len(vals) ** 0.5


def _plot(runs, arms, d_ndcg, d_mrr, path: Path, name: str) -> None:
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    n = min(len(r.curve) for v in runs.values() for r in v)
    for ax, attr, base, label in ((axes[0], "ndcg10", d_ndcg, "held-out nDCG@10"), (axes[1], "mrr", d_mrr, "MRR")):
        for key, style in zip(arms, ("-o", "--s")):
            xs = [_mean(runs[key], i, "outcomes") for i in range(n)]
            ys = np.array([[r.curve[i].__dict__[attr] for i in range(n)] for r in runs[key]])
            se = ys.std(axis=0, ddof=1) / np.sqrt(len(ys)) if len(ys) > 1 else np.zeros(n)
            ax.errorbar(xs, ys.mean(axis=0), yerr=se, fmt=style, capsize=3,
                        label=f"with correction ({key})" if key != "naive" else "without correction")
        ax.axhline(base, color="grey", linestyle=":", label="default (unlearned)")
        ax.set_xlabel("outcomes")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.suptitle(f"{name}: simulated outcomes")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def cmd_train(args) -> int:
    from matcher.learning.registry import ModelRegistry
    from matcher.learning.train import train_ranker

    task, table = _task_table(args)
    y = table.labels(task.qrels)
    res = train_ranker(table, y, task.qrels, gate_metric=_metric(task))
    print(res.reason)
    for name, m in res.validation.items():
        print(f"  {name:<36} nDCG@10 {m['ndcg@10']:.4f}  MRR {m['mrr']:.4f}")
    if res.model is None:
        print("not deployed: the default order stays")
        return 0
    reg = ModelRegistry(models_folder(args))
    version = reg.add(res.model, {"trained_on": f"judgements of {task.name}", "demands": len(table.query_ids),
                                  "evidence": args.evidence,
                                  "validation": res.validation, "gate": res.reason, "depth": args.depth})
    if not args.no_deploy:
        reg.deploy(version)
    print(f"model {version} stored in {reg.folder}{'' if args.no_deploy else ' and deployed'}")
    _print_weights(res.model)
    return 0


def _print_weights(model) -> None:
    from matcher.learning.features import uses_evidence

    kind = "gain importance" if model.backend == "lightgbm" else "standardised weight"
    print(f"{len(model.feature_names)} features, "
          f"{'evidence features included' if uses_evidence(model.feature_names) else 'no evidence features'}")
    if model.prior is not None:
        print(f"starts from the default order: {model.prior_weight_:.3f} x {model.prior}, plus a learned correction")
    print(f"feature {kind}s ({model.backend}{', of the correction' if model.prior else ''}):")
    for name, w in list(model.importances().items())[:12]:
        print(f"  {name:<20} {w:+.3f}")


def cmd_models(args) -> int:
    from matcher.learning.registry import ModelRegistry

    reg = ModelRegistry(models_folder(args))
    current = reg.current()
    versions = reg.versions()
    if not versions:
        print(f"no ranker models in {reg.folder}; the default order is live")
        return 0
    for v in versions:
        info = reg.info(v)
        print(f"{'*' if v == current else ' '} {v}  {info.created_at}  {info.backend:<8}  "
              f"{info.meta.get('trained_on', '')}")
    print(f"live: {current or 'default order'}")
    if current:
        _print_weights(reg.load(current))
    return 0


def cmd_rollback(args) -> int:
    from matcher.learning.registry import ModelRegistry

    now = ModelRegistry(models_folder(args)).rollback()
    print(f"rolled back; live: {now or 'default order'}")
    return 0
