"""Benchmark the conference assignment step at realistic scale.

Demands: sbir-topics (first N); partners: sbir-firms firms through their capability abstracts.
Candidates come from TF-IDF (scikit-learn, sublinear tf) cosine with partner score = best
capability score, top K partners per demand, so the timing isolates the assignment step
(no embedding model involved). Then exact assignment (min-cost flow) is timed, median of
several runs, with the greedy baseline beside it.

    python benchmarks/bench_assign.py            # from the repository root
    python benchmarks/bench_assign.py --milp     # also cross-check with scipy MILP
    python benchmarks/bench_assign.py --large    # 5,000 demands x 3,000 partners, top 50,
                                                 # quotas and group constraints, MILP beside it
    python benchmarks/bench_assign.py --large --n 1000 --partners 1000 --k 20   # a smaller one
    python benchmarks/bench_assign.py --smoke [--large]   # synthetic corpus, seconds (CI)

``--large`` keeps the real TF-IDF scores and adds seeded organiser data: each demand wants 1, 3
or 5 meetings (quota) and comes from one of 20 counties; partners form organisations of 1-5
teams. Scenarios: (a) quotas + at most 8 meetings per organisation + at most 2 per county and
partner (a flow with side nodes); (b) quotas + partner minimum 2 + the county cap (flow);
(c) scenario (a) + fairness (max-min first). Each is solved by the flow and by the MILP at zero
gap (``--milp-seconds`` caps each MILP level; a level that does not finish is reported).

Skips with a message (exit 0) when the data folder is absent.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402

from matcher.conference.assign import (  # noqa: E402
    AssignmentConstraints,
    GroupPartnerCap,
    OrganisationCap,
    assign,
    greedy_assign,
)
from matcher.errors import MatcherError  # noqa: E402
from matcher.records import Demand, Partner  # noqa: E402


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def large_scenarios(rows, demand_ids: list[str], partner_ids: list[str], args) -> list[dict]:
    """Scenarios (a)-(c) of the module docstring on the same candidates, each solved by the
    flow and (within --milp-seconds per level) by the MILP at zero gap."""
    import random

    rng = random.Random(18)
    demands = [Demand(d, d, "", region=f"county {rng.randrange(20)}") for d in demand_ids]
    partners, org = [], 0
    for j, pid in enumerate(partner_ids):
        if j == 0 or rng.random() < 1 / 3:
            org += 1
        partners.append(Partner(pid, pid, extra={"organisation": f"org {org}"}))
    quotas = {d: rng.choice([1, 3, 5]) for d in demand_ids}
    county = GroupPartnerCap("region", 2)
    base = {"capacity": args.capacity, "min_per_demand": 1, "max_per_demand": args.max, "quotas": quotas}
    scenarios = {
        "(a) quotas, org cap 8, county cap 2": AssignmentConstraints(
            **base, group_rules=(OrganisationCap("organisation", 8), county)),
        "(b) quotas, partner min 2, county cap 2": AssignmentConstraints(
            **base, partner_min=2, group_rules=(county,)),
        "(c) = (a) + fair (max-min first)": AssignmentConstraints(
            **base, fair=True, group_rules=(OrganisationCap("organisation", 8), county)),
    }
    out = []
    for name, c in scenarios.items():
        t0 = time.perf_counter()
        flow = assign(rows, c, demands=demands, partners=partners)
        t_flow = time.perf_counter() - t0
        entry = {"scenario": name, "flow_seconds": t_flow, "flow_objective": flow.objective,
                 "meetings": len(flow.pairs), "min_slots": f"{flow.min_slots_filled}/{flow.min_slots_required}",
                 "partner_min": f"{flow.partner_min_filled}/{flow.partner_min_required}",
                 "worst_best": flow.worst_best, "greedy_objective": flow.greedy_objective}
        print(f"{name}: flow {t_flow:.1f} s, objective {flow.objective:.4f}", flush=True)
        if args.milp_seconds > 0:
            t0 = time.perf_counter()
            try:
                m = assign(rows, c, demands=demands, partners=partners, method="milp", alternates=0,
                           milp_seconds=args.milp_seconds)
                entry.update(milp_seconds=time.perf_counter() - t0, milp_objective=m.objective,
                             milp_min_slots=m.min_slots_filled, milp_partner_min=m.partner_min_filled)
            except MatcherError as exc:
                entry.update(milp_seconds=time.perf_counter() - t0, milp_objective=None, milp_error=str(exc)[:160])
            print(f"  milp {entry['milp_seconds']:.1f} s, objective {entry['milp_objective']}", flush=True)
        out.append(entry)
    return out


def tfidf_candidates(demands: list[dict], caps: list[dict], k: int) -> list[tuple[str, str, float]]:
    """Top-k partners per demand by best TF-IDF cosine over the partner's capabilities."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    caps = sorted(caps, key=lambda c: c["partner_id"])
    pids = np.array([c["partner_id"] for c in caps])
    starts = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1]])
    partner_ids = pids[starts]
    vec = TfidfVectorizer(sublinear_tf=True, stop_words="english", min_df=2, max_df=0.5, dtype=np.float32)
    cmat = vec.fit_transform(f"{c.get('title', '')}. {c.get('text', '')}" for c in caps)
    dmat = vec.transform(f"{d.get('title', '')}. {d.get('text', '')}" for d in demands)
    ct = cmat.T.tocsc()
    rows: list[tuple[str, str, float]] = []
    for lo in range(0, dmat.shape[0], 200):
        sims = (dmat[lo : lo + 200] @ ct).toarray()  # (chunk, n_capabilities)
        best = np.maximum.reduceat(sims, starts, axis=1)  # (chunk, n_partners)
        top = np.argpartition(-best, k, axis=1)[:, :k]
        for i, cols in enumerate(top):
            for j in cols:
                rows.append((demands[lo + i]["id"], str(partner_ids[j]), float(best[i, j])))
    return rows


def main(argv: list[str] | None = None) -> int:
    data = ROOT.parent / "shared" / "data"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demands", type=Path, default=data / "sbir-topics" / "demands.jsonl.gz")
    ap.add_argument("--capabilities", type=Path, default=data / "sbir-firms" / "capabilities.jsonl.gz")
    ap.add_argument("--n", type=int, default=2000, help="demands (first N)")
    ap.add_argument("--k", type=int, default=30, help="candidate partners per demand")
    ap.add_argument("--capacity", type=int, default=3)
    ap.add_argument("--min", type=int, default=2)
    ap.add_argument("--max", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--milp", action="store_true", help="cross-check with scipy MILP (slower)")
    ap.add_argument("--large", action="store_true",
                    help="5,000 demands x 3,000 partners, top 50, quotas and group constraints (see the docstring)")
    ap.add_argument("--partners", type=int, default=0, help="only the first N partners by id (0: all)")
    ap.add_argument("--milp-seconds", type=float, default=600.0, help="time limit per MILP level with --large")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds on a tiny synthetic corpus (CI), MILP cross-check included: the numbers mean nothing")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_assign.json")
    args = ap.parse_args(argv)
    if args.large:
        given = set(argv if argv is not None else sys.argv[1:])
        args.n = args.n if "--n" in given else 5000
        args.partners = args.partners if "--partners" in given else 3000
        args.k = args.k if "--k" in given else 50
        args.runs = 1
        args.max = max(args.max, 5)
        if args.out.name == "bench_assign.json":
            args.out = args.out.with_name(f"bench_assign_large_{args.n}x{args.partners}.json")
    if args.smoke:
        args.n, args.k, args.runs, args.partners, args.milp, args.milp_seconds = 40, 5, 1, 0, True, 30.0
        smoke_out = common.start_smoke("bench_assign_large.json" if args.large else "bench_assign.json", model=None)
        args.demands = common.SBIR_TOPICS / "demands.jsonl.gz"
        args.capabilities = common.SBIR_FIRMS / "capabilities.jsonl.gz"
        if args.out.resolve().is_relative_to(common.RESULTS.resolve()):
            args.out = smoke_out
    for path in (args.demands, args.capabilities):
        if not path.exists():
            print(f"skipped: {path} not found (the evaluation data lives in ../shared/data)")
            return 0

    t0 = time.perf_counter()
    demands = read_jsonl(args.demands)[: args.n]
    caps = read_jsonl(args.capabilities)
    if args.partners:
        keep = set(sorted({c["partner_id"] for c in caps})[: args.partners])
        caps = [c for c in caps if c["partner_id"] in keep]
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = tfidf_candidates(demands, caps, args.k)
    t_cand = time.perf_counter() - t0
    n_partners = len({c["partner_id"] for c in caps})
    print(
        f"loaded {len(demands)} demands, {len(caps)} capabilities of {n_partners} partners "
        f"in {t_load:.1f} s; TF-IDF candidates (top {args.k} partners per demand) in "
        f"{t_cand:.1f} s - the timings below are the assignment step only",
        flush=True,
    )

    if args.large:
        partner_ids = sorted({c["partner_id"] for c in caps})
        results = large_scenarios(rows, [d["id"] for d in demands], partner_ids, args)
        report = {"machine": common.machine(),
                  "demands": len(demands), "partners": n_partners, "candidate_pairs": len(rows), "k": args.k,
                  "capacity": args.capacity, "scenarios": results}
        print()
        if args.smoke:
            print("[SMOKE RUN: numbers mean nothing]")
        print("| scenario | meetings | min slots | partner min | flow s | flow objective | MILP s | MILP objective |")
        print("|---|---|---|---|---|---|---|---|")
        for e in results:
            milp_obj = ("not run" if "milp_seconds" not in e else "did not finish" if e.get("milp_objective") is None
                        else f"{e['milp_objective']:.4f}")
            print(f"| {e['scenario']} | {e['meetings']} | {e['min_slots']} | {e['partner_min']} | "
                  f"{e['flow_seconds']:.1f} | {e['flow_objective']:.4f} | {e.get('milp_seconds', 0):.1f} | "
                  f"{milp_obj} |")
        write_report(args.out, report)
        return 0

    c = AssignmentConstraints(capacity=args.capacity, min_per_demand=args.min, max_per_demand=args.max)
    walls, solves = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        result = assign(rows, c)
        walls.append(time.perf_counter() - t0)
        solves.append(result.seconds)
    greedy_walls = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        greedy = greedy_assign(rows, c)
        greedy_walls.append(time.perf_counter() - t0)
    t_greedy = statistics.median(greedy_walls)
    milp = None
    if args.milp:
        t0 = time.perf_counter()
        m = assign(rows, c, method="milp")
        milp = {"objective": m.objective, "min_slots_filled": m.min_slots_filled, "seconds": time.perf_counter() - t0}

    report = {
        "machine": common.machine(),
        "candidates": f"TF-IDF (sklearn, sublinear tf) cosine, partner = best capability, top {args.k}",
        "demands": len(demands),
        "partners": n_partners,
        "candidate_pairs": len(rows),
        "constraints": {"capacity": args.capacity, "min_per_demand": args.min, "max_per_demand": args.max},
        "meetings": len(result.pairs),
        "exact_objective": result.objective,
        "greedy_objective": result.greedy_objective,
        "gap": result.gap,
        "gap_pct": result.gap_pct,
        "min_slots_filled": result.min_slots_filled,
        "greedy_min_slots_filled": result.greedy_min_slots_filled,
        "min_slots_required": result.min_slots_required,
        "demands_below_min": len(result.shortfalls),
        "greedy_demands_below_min": len(greedy.shortfalls),
        "binding_partners": len(result.binding_partners),
        "assign_seconds_median": statistics.median(walls),
        "solver_seconds_median": statistics.median(solves),
        "greedy_seconds_median": t_greedy,
        "candidate_seconds": t_cand,
        "milp": milp,
    }
    table = [
        ("machine cores", f"{os.cpu_count()}"),
        ("demands", f"{len(demands)}"),
        ("partners", f"{n_partners}"),
        ("candidate pairs", f"{len(rows)}"),
        ("meetings assigned", f"{len(result.pairs)}"),
        ("exact objective", f"{result.objective:.4f}"),
        ("greedy objective", f"{result.greedy_objective:.4f}"),
        ("gap", f"{result.gap:.4f} ({result.gap_pct:.2f}%)"),
        (
            "minimum slots filled",
            f"{result.min_slots_filled}/{result.min_slots_required} (greedy {result.greedy_min_slots_filled})",
        ),
        ("demands below minimum", f"{len(result.shortfalls)} (greedy {len(greedy.shortfalls)})"),
        (
            "solve seconds (median)",
            f"{statistics.median(walls):.2f} total, {statistics.median(solves):.2f} in the solver ({args.runs} runs)",
        ),
        ("greedy seconds (median)", f"{t_greedy:.2f}"),
    ]
    if milp:
        table.append(
            ("MILP cross-check", f"{milp['objective']:.4f}, {milp['min_slots_filled']} slots, {milp['seconds']:.1f} s")
        )
    width = max(len(a) for a, _ in table)
    if args.smoke:
        print("[SMOKE RUN: numbers mean nothing]")
    for a, b in table:
        print(f"{a:<{width}}  {b}")
    write_report(args.out, report)
    return 0


def write_report(out: Path, report: dict) -> None:
    if common.SMOKE:
        report = common.smoke_report(report, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    raise SystemExit(main())
