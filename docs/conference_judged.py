"""Count a conference run's meetings by their judgement in a task's qrels.

    python docs/conference_judged.py conference/assignment.csv corpora/qiqihar/qrels.tsv [D002 ...]

Prints the meetings that are judged relevant (grade 2-3), near misses (grade 1), judged
irrelevant (grade 0) and unjudged, and the partners (with fit and grade) of the demands named.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter


def main(argv: list[str]) -> int:
    assignment, qrels, *show = argv
    with open(qrels, encoding="utf-8") as f:
        grade = {(r["demand_id"], r["target_id"]): int(r["relevance"]) for r in csv.DictReader(f, delimiter="\t")}
    with open(assignment, encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    kinds = Counter()
    for r in rows:
        g = grade.get((r["demand_id"], r["partner_id"]))
        kinds["unjudged" if g is None else "relevant" if g >= 2 else "near miss" if g == 1 else "irrelevant"] += 1
    print(f"meetings {len(rows)}: " + ", ".join(f"{k} {kinds[k]}" for k in
                                              ("relevant", "near miss", "irrelevant", "unjudged")))
    for did in show:
        got = [f"{r['partner_id']} fit {float(r['score']):.2f} grade {grade.get((did, r['partner_id']), '-')}"
               for r in rows if r["demand_id"] == did]
        print(f"{did}: " + ("; ".join(got) or "no meeting"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
