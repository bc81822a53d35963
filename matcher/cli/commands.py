"""The `techmatch` command line. The only module of the engine that prints.

Heavy imports (numpy, torch, faiss, pandas) happen inside the commands, so `--help` is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from matcher.cli.ray_option import add_ray_arguments, encoder_for, ranker_for

DEFAULT_WORKSPACE = "techmatch-data"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from matcher.errors import MatcherError

    if getattr(args, "backend", None):
        # Through the setting, so every encoder this command opens (and a server it starts) uses it.
        os.environ["TECHMATCH_BACKEND"] = args.backend
    try:
        return int(args.func(args) or 0)
    except MatcherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="techmatch",
        description="Match enterprises' technology demands with research partners.",
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    def add(name: str, help_: str, func, workspace: bool = True, model: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        if workspace:
            sp.add_argument(
                "--workspace",
                "-w",
                default=os.environ.get("TECHMATCH_WORKSPACE", DEFAULT_WORKSPACE),
                help="folder holding ingested records and the index (default: %(default)s)",
            )
        if model:
            sp.add_argument(
                "--model",
                "-m",
                default=os.environ.get("TECHMATCH_MODEL", "e5-multilingual-small"),
                help="registered model name (see `techmatch models`) or local folder (default: %(default)s)",
            )
            sp.add_argument(
                "--backend",
                choices=("auto", "torch", "onnx", "onnx-fp32", "onnx-queries", "openvino"),
                default=None,
                help="encoder runtime: torch, onnx (int8 ONNX Runtime), onnx-fp32, onnx-queries (documents on "
                "torch, queries on int8), openvino (static int8 on OpenVINO), or auto, each model's measured "
                "default (default: $TECHMATCH_BACKEND, else auto)",
            )
        return sp

    sp = add(
        "ingest",
        "validate spreadsheets or JSONL and add them to the workspace (all or nothing)",
        cmd_ingest,
        model=False,
    )
    sp.add_argument("files", nargs="+", type=Path)
    sp.add_argument("--kind", choices=("demands", "capabilities", "partners"), required=True)
    sp.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="COLUMN=FIELD",
        help="explicit column mapping, e.g. --map 'Problem=text' (repeatable)",
    )
    sp.add_argument("--sheet", help="XLSX sheet name (default: the first)")
    sp.add_argument("--free-values", action="store_true",
                    help="accept a demand industry or region outside the bureau's lists (matcher/taxonomy.py)")

    sp = add("index", "embed the workspace's records and build the search index", cmd_index)
    sp.add_argument("--index", choices=("exact", "hnsw", "ivf"), default="exact", help="vector index kind")
    add_ray_arguments(sp)

    sp = add("match", "ranked partners (or capabilities) for a demand id or a free text, with reasons", cmd_match)
    sp.add_argument("query", help="a demand id from the workspace, or any text")
    sp.add_argument("--k", type=_positive_int, default=10)
    sp.add_argument("--level", choices=("partner", "capability"), default="partner")
    _add_filters(sp)
    sp.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sp = add("search", "demands relevant to a text or to a partner's capability profile", cmd_search)
    sp.add_argument("text", nargs="?", help="free text (omit with --partner)")
    sp.add_argument("--partner", help="a partner id: search with its whole capability profile")
    sp.add_argument("--k", type=_positive_int, default=10)
    sp.add_argument("--public-only", action="store_true", help="hide confidential demands")
    _add_filters(sp)
    sp.add_argument("--json", action="store_true")

    sp = add("rank", "batch: rank every demand of a file against capabilities, write a TSV", cmd_rank, workspace=False)
    sp.add_argument("--demands", type=Path, required=True)
    sp.add_argument("--capabilities", type=Path, required=True)
    sp.add_argument("--level", choices=("partner", "capability"), default="partner")
    sp.add_argument("--k", type=_positive_int, default=10)
    sp.add_argument("--out", type=Path, required=True, help="output TSV: demand_id, target_id, score, fit, label, rank")
    sp.add_argument("--max-text-chars", type=_positive_int, metavar="N",
                    help="longest accepted cell (default 20,000, the upload limit; raise it for long call texts)")
    add_ray_arguments(sp)

    sp = add("evaluate", "lexical, dense and fused quality on a canonical task folder", cmd_evaluate, workspace=False)
    sp.add_argument("task", type=Path, help="folder with demands.jsonl, capabilities.jsonl, qrels.tsv, task.json")
    sp.add_argument("--methods", default="lexical,dense,fused",
                    help="demand-to-target methods: lexical, dense, fused, fit (ranked by the calibrated fit)")
    sp.add_argument("--direction", choices=("forward", "reverse", "both"), default="both",
                    help="forward: each demand ranks the targets; reverse: each judged target ranks the demands")
    sp.add_argument("--reverse-methods", default="fit", help="reverse methods: fit, cosine (best raw cosine)")
    sp.add_argument("--lexical-weight", type=float,
                    help="override the fusion weight of lexical evidence (Chinese and other words alike)")
    sp.add_argument("--fusion", choices=("convex", "rrf"), help="override the fusion method")
    sp.add_argument("--aggregation", choices=("max", "decay"), help="override partner aggregation")
    sp.add_argument("--json", action="store_true", help="one JSON object per method")
    sp.add_argument("--max-seq-length", type=_positive_int,
                    help="truncate texts to this many tokens (default: the model's)")

    sp = add("check-demands", "the filling check on a task's demands: vague flag vs the authors' marks, and nDCG",
             cmd_check_demands, workspace=False)
    sp.add_argument("task", help="task folder with authoring/demand_topics.tsv marks (e.g. corpora/qiqihar)")
    sp.add_argument("--english", action="store_true",
                    help="check the demands' English versions (extra.title_en/text_en)")
    sp.add_argument("--list", action="store_true", help="also list every flagged demand with its title")

    sp = add("calibrate", "fit the calibrated fit on a judged task folder (a bureau's own judgements), "
             "report its held-out calibration, and write it as JSON", cmd_calibrate, workspace=False)
    sp.add_argument("task", type=Path, help="folder with demands, capabilities and qrels.tsv (grades 0-3, or 0/1)")
    sp.add_argument("--out", type=Path, help="write the fitted calibration here (use it with TECHMATCH_CALIBRATION)")
    sp.add_argument("--folds", type=_positive_int, default=5, help="cross-validation folds over demands")
    sp.add_argument("--check", type=Path, metavar="JSON",
                    help="measure this calibration on the task instead of fitting one (transfer)")

    sp = add("models", "list the registered models, or prepare one on disk", cmd_models, workspace=False, model=False)
    sp.add_argument("action", nargs="?", choices=("list", "prepare"), default="list")
    sp.add_argument("name", nargs="?", default="e5-multilingual-small")
    sp.add_argument("--force", action="store_true", help="rebuild even if present")

    sp = add(
        "demo", "load the bundled Qiqihar demo corpus and print matches for a few demands", cmd_demo, workspace=False
    )
    sp.add_argument("--demands", type=_positive_int, default=3, help="how many demands to show")

    try:
        from matcher.cli.conference import add_conference_parser
    except ImportError:  # pragma: no cover - the module ships with the package
        pass
    else:
        add_ray_arguments(add_conference_parser(sub, build_engine=_conference_engine))
    try:
        from matcher.cli.landscape import add_landscape_parser
    except ImportError:  # pragma: no cover - the module ships with the package
        pass
    else:
        add_ray_arguments(add_landscape_parser(sub))
    try:
        from matcher.cli.learn import add_learn_parser
    except ImportError:  # pragma: no cover - the module ships with the package
        pass
    else:
        add_learn_parser(sub, DEFAULT_WORKSPACE)
    try:
        from service.cli import add_db_parser, add_serve_parser
    except ImportError:  # pragma: no cover - the service ships with the package
        pass
    else:
        add_serve_parser(sub)
        add_db_parser(sub)
    return p


def _add_filters(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--industry", action="append", default=[], help="filter (repeatable)")
    sp.add_argument("--region", action="append", default=[], help="county or district (repeatable)")
    sp.add_argument("--partner-type", action="append", default=[], help="university, institute, team, enterprise")
    sp.add_argument("--language", action="append", default=[], help="zh, en, ru")


def _filters(args, *, public_only: bool = False):
    from matcher.retrieval.engine import Filters

    return Filters(
        industries=frozenset(args.industry),
        regions=frozenset(args.region),
        partner_types=frozenset(args.partner_type),
        languages=frozenset(args.language),
        include_confidential=not public_only,
    )


def _progress(desc: str, total: int):
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="text", file=sys.stderr, disable=total < 64, mininterval=2.0)
    return bar


# -- commands -----------------------------------------------------------------------------
def cmd_ingest(args) -> int:
    from matcher.workspace import Workspace

    mapping = _parse_mapping(args.map)
    ws = Workspace(args.workspace)
    for f in args.files:
        added, replaced = ws.ingest(f, args.kind, mapping=mapping, sheet=args.sheet,
                                    known_values=not args.free_values)
        print(f"{f}: {added} new, {replaced} replaced {args.kind} -> {ws.path}")
    print(ws.summary())
    return 0


def _parse_mapping(items: list[str]) -> dict[str, str] | None:
    from matcher.errors import InputError

    mapping = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--map expects COLUMN=FIELD, got '{item}'")
        col, fld = item.split("=", 1)
        mapping[col.strip()] = fld.strip()
    return mapping or None


def _open_engine(args, *, rebuild: bool = False):
    from matcher.retrieval.encoders import open_encoder
    from matcher.workspace import Workspace

    ws = Workspace(args.workspace)
    encoder = open_encoder(args.model)
    engine = ws.engine(encoder, rebuild=rebuild, progress=_progress)
    _use_deployed_ranker(engine, Path(args.workspace) / "rankers")
    return ws, engine


def _use_deployed_ranker(engine, folder: Path) -> None:
    """Match with the deployed learned ranker when there is one (`techmatch learn`)."""
    if not (folder / "deployed.json").exists():
        return
    from matcher.learning.registry import ModelRegistry
    from matcher.learning.table import Reranker

    model = ModelRegistry(folder).current_model()
    engine.reranker = Reranker(model) if model is not None else None


def cmd_index(args) -> int:
    from matcher.retrieval.index import IndexParams
    from matcher.workspace import Workspace

    ws = Workspace(args.workspace)
    engine = ws.build_index(encoder_for(args, args.model), IndexParams(kind=args.index), progress=_progress)
    print(
        f"indexed {len(engine.capabilities)} capabilities, {len(engine.demands)} demands, "
        f"{len(engine.partners)} partners with {engine.encoder.name} ({args.index}) -> {ws.index_path}"
    )
    return 0


def cmd_match(args) -> int:
    from matcher.records import Demand

    ws, engine = _open_engine(args)
    query = engine.demands.get(args.query, args.query)
    filters = _filters(args)
    if args.level == "capability":
        hits = engine.match_capabilities(query, k=args.k, filters=filters)
        if args.json:
            print(json.dumps([_asdict(h) for h in hits], ensure_ascii=False, indent=1))
        else:
            _print_capability_hits(engine, hits)
        return 0
    report = engine.match_report(query, k=args.k, filters=filters)
    if args.json:
        print(json.dumps([_asdict(m) for m in report.matches], ensure_ascii=False, indent=1))
        if not report.suitable:  # stdout stays the list it always was
            print(NO_SUITABLE.format(best=report.best_fit, possible=engine.calibrator.thresholds_.possible),
                  file=sys.stderr)
        return 0
    print(f"Partners for: {query.title or query.id if isinstance(query, Demand) else query}")
    _print_partner_matches(engine, report.matches)
    if not report.suitable:
        print(NO_SUITABLE.format(best=report.best_fit, possible=engine.calibrator.thresholds_.possible))
    return 0


NO_SUITABLE = ("No suitable partner: none reaches a possible fit (best {best:.0%}, possible from {possible:.0%}). "
               "See the recruiting directions of `techmatch landscape` for partners from outside the city.")


def _print_partner_matches(engine, matches) -> None:
    if not matches:
        print("  (no match)")
    for m in matches:
        ptype = engine.partners[m.partner_id].type if m.partner_id in engine.partners else ""
        print(f"{m.rank:>3}. {m.partner_name} [{m.partner_id}{', ' + ptype if ptype else ''}]  "
              f"fit {m.fit:.0%} ({m.label})")
        print(f"      {m.reason}")
        for h in m.evidence:
            print(f"      - {h.title} [{h.capability_id}]  {h.label}")


def _print_capability_hits(engine, hits) -> None:
    for i, h in enumerate(hits, start=1):
        partner = engine.partners.get(h.partner_id)
        print(
            f"{i:>3}. {h.title} [{h.capability_id}] - {partner.name if partner else h.partner_id}  "
            f"fit {h.fit:.0%} ({h.label})"
        )
        if h.shared_terms:
            print(f"      shared terms: {', '.join(h.shared_terms)}")


def cmd_search(args) -> int:
    from matcher.errors import InputError

    ws, engine = _open_engine(args)
    filters = _filters(args, public_only=args.public_only)
    if args.partner:
        hits = engine.demands_for_partner(args.partner, k=args.k, filters=filters)
    elif args.text:
        hits = engine.search_demands(args.text, k=args.k, filters=filters)
    else:
        raise InputError("give a text or --partner ID")
    if args.json:
        print(json.dumps([_asdict(h) for h in hits], ensure_ascii=False, indent=1))
        return 0
    for h in hits:
        d = engine.demands[h.demand_id]
        print(f"{h.rank:>3}. {h.title} [{h.demand_id}] {d.industry} {d.region}  fit {h.fit:.0%} ({h.label})")
        print(f"      {h.reason}")
    return 0


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return n


def cmd_rank(args) -> int:
    from matcher.batch import rank_files
    from matcher.errors import InputErrors
    from matcher.io.tables import MAX_CELL_CHARS

    limit = args.max_text_chars or MAX_CELL_CHARS
    try:
        n = rank_files(
            args.demands, args.capabilities, args.out, model=args.model, level=args.level, k=args.k,
            progress=_progress, max_text_chars=limit,
            encoder=encoder_for(args, args.model), ranker=ranker_for(args, args.model),
        )
    except InputErrors as exc:
        if any("; the limit is" in e.reason for e in exc.errors):
            print(f"hint: if these long texts are meant, raise the limit with --max-text-chars "
                  f"(now {limit:,})", file=sys.stderr)
        raise
    print(f"wrote {n} rows to {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    from dataclasses import replace

    from matcher.evaluate import METHODS, evaluate_task
    from matcher.io import load_task
    from matcher.retrieval.encoders import open_encoder
    from matcher.retrieval.engine import EngineParams

    task = load_task(args.task)
    if not task.qrels:
        from matcher.errors import InputError

        raise InputError("task has no judgements (qrels.tsv): nothing to evaluate", file=str(args.task))
    params = EngineParams()
    if args.lexical_weight is not None:
        w = args.lexical_weight
        params.fusion = replace(params.fusion, lexical_weight=w, chinese_lexical_weight=w)
    if args.fusion:
        params.fusion = replace(params.fusion, method=args.fusion)
    if args.aggregation:
        params.aggregation = replace(params.aggregation, method=args.aggregation)
    from matcher.errors import UnknownNameError
    from matcher.evaluate import REVERSE_METHODS, evaluate_reverse

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            raise UnknownNameError("method", m, list(METHODS))
    reverse_methods = [m.strip() for m in args.reverse_methods.split(",") if m.strip()]
    for m in reverse_methods:
        if m not in REVERSE_METHODS:
            raise UnknownNameError("reverse method", m, list(REVERSE_METHODS))
    bars: dict[str, object] = {}

    def progress(label: str, done: int, total: int) -> None:
        bar = bars.get(label) or bars.setdefault(label, _progress(label, total))
        bar.update(done - bar.n)

    encoder = open_encoder(args.model, max_seq_length=args.max_seq_length)
    results, reverse = [], []
    if args.direction in ("forward", "both"):
        results = evaluate_task(task, encoder, params=params, methods=methods, progress=progress)
    if args.direction in ("reverse", "both"):
        reverse = evaluate_reverse(task, encoder, params=params, methods=reverse_methods, progress=progress)
    for bar in bars.values():
        bar.close()
    if args.json:
        for direction, r in [("forward", r) for r in results] + [("reverse", r) for r in reverse]:
            print(
                json.dumps(
                    {
                        "task": task.name,
                        "level": task.level,
                        "model": encoder.name,
                        "direction": direction,
                        "method": r.method,
                        **{k: round(v, 4) for k, v in r.metrics.items()},
                        "seconds": round(r.seconds, 2),
                    }
                )
            )
        return 0
    n_judged = sum(1 for d in task.demands if d.id in task.qrels)
    print(
        f"task {task.name} ({task.level} level, {n_judged} judged demands, {len(task.capabilities)} capabilities), "
        f"model {encoder.name}"
    )
    columns = ("nDCG@10", "MRR", "Recall@10", "acc@1")
    keys = ("ndcg@10", "mrr", "recall@10", "accuracy@1")
    if results:
        print(f"{'method':<10}" + "".join(f"{m:>12}" for m in columns))
        for r in results:
            print(f"{r.method:<10}" + "".join(f"{r.metrics[m]:>12.4f}" for m in keys))
    if reverse:
        graded = max((g for j in task.qrels.values() for g in j.values()), default=1) > 1
        n_targets = len({t for j in task.qrels.values() for t in j})
        targets = {"partner": "partners", "capability": "capabilities"}.get(task.level, task.level)
        print(f"reverse: each of {n_targets} judged {targets} ranks the {n_judged} demands")
        print(f"{'method':<10}" + "".join(f"{m:>12}" for m in columns) + (f"{'wrong':>12}" if graded else ""))
        for r in reverse:
            wrong = f"{r.metrics['wrong_order']:>12.4f}" if graded else ""
            print(f"{r.method:<10}" + "".join(f"{r.metrics[m]:>12.4f}" for m in keys) + wrong)
    return 0


def cmd_calibrate(args) -> int:
    from matcher.calibrate import cross_validate, fit_on_task, judged_pairs
    from matcher.errors import InputError
    from matcher.io import load_task
    from matcher.retrieval.calibration import FitCalibrator, default_calibrator
    from matcher.retrieval.encoders import open_encoder
    from matcher.retrieval.engine import MatchEngine

    task = load_task(args.task)
    if not task.qrels:
        raise InputError("task has no judgements (qrels.tsv): nothing to calibrate on", file=str(args.task))
    fixed = FitCalibrator.load(args.check) if args.check else None
    engine = MatchEngine(open_encoder(args.model), calibrator=fixed or default_calibrator())
    bar = _progress("encode capabilities", len(task.capabilities))
    engine.upsert_capabilities(task.capabilities, bar.update)
    bar.close()
    engine.upsert_demands(task.demands)  # the fit's capability-side view standardises over them
    pairs = judged_pairs(engine, task)
    n_pairs = pairs.grades.size
    report = cross_validate(engine, task, folds=args.folds, pairs=pairs, fixed=fixed)
    how = f"calibration {args.check}" if fixed else f"{args.folds}-fold cross-validation over demands"
    print(f"task {task.name}: {len(pairs.demand_ids)} judged demands x {len(pairs.target_ids)} {task.level}s "
          f"= {n_pairs} pairs, {int(report.relevant.sum())} relevant; {how}")
    print(f"ECE (held-out fits): all pairs {report.ece_all:.4f}, judged pairs {report.ece_judged:.4f}, "
          f"each demand's 10 best {report.ece_top10:.4f}")
    print(f"{'fit bin':<10}{'mean fit':>10}{'relevant':>10}{'pairs':>8}")
    for centre, mean_fit, share, n in report.table:
        print(f"{centre - 0.05:.1f}-{centre + 0.05:.1f}   {mean_fit:>10.3f}{share:>10.3f}{n:>8}")
    print(f"no suitable partner flag: {report.flagged} flagged, {report.without_relevant} demands without a "
          f"relevant {task.level}; precision {report.flag_precision:.3f}, recall {report.flag_recall:.3f}")
    if fixed is None:
        cal = fit_on_task(engine, task, pairs=pairs)
        t = cal.thresholds_
        terms = " + ".join(f"{c:.3f}*{f}" for c, f in zip(cal.coef_, [*cal.features, "support"]))
        print(f"fitted on all: logit = {terms}"
              f" {cal.intercept_:+.3f}; strong >= {t.strong:.2f}, possible >= {t.possible:.2f}")
        if args.out:
            cal.save(args.out)
            print(f"wrote {args.out}")
    return 0


def cmd_check_demands(args) -> int:
    from pathlib import Path

    from matcher.filling_eval import filling_report
    from matcher.io import load_task
    from matcher.retrieval.encoders import open_encoder

    task = load_task(args.task)
    encoder = open_encoder(args.model)
    rep = filling_report(task, Path(args.task), encoder, english=args.english)
    which = "English versions" if args.english else "texts as filed"
    print(f"task {task.name}: {rep.demands} demands ({which}), model {encoder.name}; flagged vague: {len(rep.flagged)}")
    print(f"{'compared with':<20}{'marked':>8}{'flagged':>9}{'both':>6}{'precision':>11}{'recall':>8}")
    for a in rep.agreements:
        print(f"{a.name:<20}{a.marked:>8}{a.flagged:>9}{a.true_positives:>6}{a.precision:>11.3f}{a.recall:>8.3f}")
    print(f"nDCG@10 (fused): flagged {rep.ndcg_flagged:.4f} ({rep.judged_flagged} judged demands), "
          f"rest {rep.ndcg_rest:.4f} ({rep.judged_rest} judged demands)")
    print("nDCG@10 by substance aspects named (problem, current approach, constraints, target):")
    for found, (n, value) in rep.ndcg_by_found.items():
        print(f"  {found} of 4: {n:>4} demands  nDCG@10 {value:.4f}")
    print("demands lacking each aspect: " + ", ".join(f"{k} {n}" for k, n in rep.missing_counts.items()))
    if args.list:
        titles = {d.id: d.title for d in task.demands}
        for i in rep.flagged:
            print(f"  {i}  {titles[i]}")
    return 0


def cmd_models(args) -> int:
    from matcher.retrieval.encoders import REGISTRY, model_path, prepare_model

    if args.action == "prepare":
        path = prepare_model(args.name, force=args.force)
        print(f"{args.name}: ready at {path}")
        return 0
    rows = [("name", "ready", "languages", "description")]
    for spec in REGISTRY.values():
        if spec.name == "fake":
            ready = "yes"
        else:
            try:
                ready = "yes" if (model_path(spec.name) / "modules.json").exists() else "no"
            except Exception:
                ready = "no"
        rows.append((spec.name, ready, spec.languages, spec.description))
    print(_columns(rows))
    print("\nAny local sentence-transformers folder also works: --model /path/to/folder")
    print("ONNX Runtime backends (techmatch[onnx]): --backend onnx (int8), onnx-fp32 or onnx-queries (int8")
    print("queries, torch documents), TECHMATCH_BACKEND, or a")
    print("variant name: minilm-int8, e5-multilingual-small-int8 (exported once on first use or by `models prepare`)")
    print("OpenVINO (techmatch[openvino]): --backend openvino or minilm-ov-int8, e5-multilingual-small-ov-int8")
    print("(static int8, calibrated on the demo corpus when first built)")
    return 0


def _columns(rows: list[tuple[str, ...]], gap: int = 2) -> str:
    """Rows as left-aligned columns, each as wide as its longest cell plus `gap` spaces."""
    widths = [max(len(r[i]) for r in rows) + gap for i in range(len(rows[0]) - 1)]
    return "\n".join("".join(c.ljust(w) for c, w in zip(r, widths)) + r[-1] for r in rows)


def cmd_demo(args) -> int:
    from corpora import demo_corpus_path
    from matcher.io import load_task
    from matcher.retrieval.encoders import open_encoder
    from matcher.retrieval.engine import MatchEngine

    task = load_task(demo_corpus_path())
    engine = MatchEngine(open_encoder(args.model))
    bar = _progress("embedding the demo corpus", len(task.capabilities) + len(task.demands))
    engine.fit(task.capabilities, task.demands, _demo_partners(), progress=bar.update)
    bar.close()
    print(
        f"demo corpus: {len(task.demands)} demands, {len(task.capabilities)} capabilities, "
        f"{len(engine.partners)} partners; model {engine.encoder.name}\n"
    )
    for demand in task.demands[: args.demands]:
        print(f"[{demand.id}] {demand.title} ({demand.industry}, {demand.region})")
        _print_partner_matches(engine, engine.match_partners(demand, k=3))
        print()
    return 0


class _ConferenceEngine:
    """What `techmatch conference` needs: the partners and a batch rank function."""

    def __init__(self, engine, k: int) -> None:
        self.engine, self.k = engine, k
        self.partners = engine.partners

    def rank_batch_fn(self):
        return lambda demands: self.engine.match_partners_batch(demands, k=self.k)

    def encode_demand_queries(self, demands) -> None:
        self.engine.encode_demand_queries(demands)


def _conference_engine(args) -> _ConferenceEngine:
    from matcher.errors import InputError
    from matcher.io import load_capabilities, load_partners, load_task
    from matcher.retrieval.engine import MatchEngine

    partners = []
    if args.task is not None:
        capabilities = load_task(args.task).capabilities
        if (Path(args.task) / "partners.jsonl").exists():
            partners = load_partners(Path(args.task) / "partners.jsonl")
    elif args.capabilities is not None:
        capabilities = load_capabilities(args.capabilities)
    else:
        raise InputError("give --capabilities FILE or --task DIR", field="capabilities")
    from matcher.cli.conference import _load_demands

    engine = MatchEngine(encoder_for(args, args.model))
    bar = _progress("embedding capabilities", len(capabilities))
    engine.fit(capabilities, (), partners, progress=bar.update)
    bar.close()
    demands = _load_demands(args)  # indexed: a pair's fit sees the demand among the other demands
    bar = _progress("embedding demands", len(demands))
    engine.upsert_demands(demands, progress=bar.update)
    bar.close()
    return _ConferenceEngine(engine, args.k)


def _demo_partners():
    from corpora import demo_corpus_path
    from matcher.io.ingest import load_partners

    path = demo_corpus_path() / "partners.jsonl"
    return load_partners(path) if path.exists() else []


def _asdict(obj):
    from dataclasses import asdict

    return asdict(obj)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
