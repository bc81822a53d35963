"""Institute search by typed text, measured: fused order against the fit's order.

No judged typed queries exist, so each judged partner of a task "types" a text and the
partner's judgements (inverted: demand grades for that partner) score the list of demands
`MatchEngine.search_demands` returns:

- ``--text profile``: the partner's capabilities, all pasted into one text (an institute
  pasting what it does);
- ``--text first``: its first capability only, with new words added so it is not a stored
  capability's exact text (an institute typing one line in its own words; the partner's other
  lines' demands still count as relevant, so absolute figures are low for every order).

Both orders rank the same hits (all demands the fused candidates hold, k = every judged
demand), so only the order differs.

    python docs/typed_search_proxy.py corpora/qiqihar --text profile
"""

from __future__ import annotations

import argparse
import collections
import time

from matcher.evaluate import all_metrics, invert, wrongly_ordered
from matcher.io.tasks import load_task
from matcher.retrieval.encoders import open_encoder
from matcher.retrieval.engine import MatchEngine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task")
    ap.add_argument("--text", choices=("profile", "first"), default="profile")
    ap.add_argument("--model", default="e5-multilingual-small")
    args = ap.parse_args()
    task = load_task(args.task)
    judged = [d for d in task.demands if d.id in task.qrels]
    engine = MatchEngine(open_encoder(args.model)).fit(task.capabilities, judged)
    qrels = invert(task.qrels)
    caps = collections.defaultdict(list)
    for c in task.capabilities:
        caps[c.partner_id].append(c)
    runs: dict[str, dict[str, dict[str, float]]] = {"fused": {}, "fit": {}}
    start = time.perf_counter()
    for pid in qrels:
        if not caps.get(pid):
            continue
        if args.text == "profile":
            text = "\n".join(c.full_text for c in caps[pid])
        else:
            text = f"我们团队可以做：{caps[pid][0].full_text}"
        hits = engine.search_demands(text, k=len(judged))
        runs["fused"][pid] = {h.demand_id: float(len(hits) - h.rank) for h in hits}
        runs["fit"][pid] = {h.demand_id: h.fit for h in hits}
    print(f"task {task.name}, typed text = {args.text}, {len(runs['fit'])} partners, "
          f"{time.perf_counter() - start:.0f} s")
    print(f"{'order':<8}{'nDCG@10':>10}{'MRR':>10}{'Recall@10':>11}{'acc@1':>8}{'wrong':>8}")
    for name, run in runs.items():
        m = all_metrics(run, qrels)
        print(f"{name:<8}{m['ndcg@10']:>10.4f}{m['mrr']:>10.4f}{m['recall@10']:>11.4f}{m['accuracy@1']:>8.4f}"
              f"{wrongly_ordered(run, qrels):>8.4f}")


if __name__ == "__main__":
    main()
