"""The learned ranker in the service: train it from the database's impressions and pipeline
outcomes, deploy it only when it wins on held-out demands, roll it back.

Training data. For each stored demand with a list served, the list that counts is the last one
served before staff first contacted any of its partners (what they were looking at when they
chose), else the latest. A pair's label is the furthest stage it reached: 2 for a cooperation
agreement, 1 for a meeting, 0 otherwise. Contacting is examination and it is logged, so the
default estimator ("examined", `matcher.learning.logged`) learns from the contacted pairs only
and an uncontacted pair carries no label; the gate scores held-out demands on their contacted
pairs against the default order of those pairs. "ipw" (the click-model correction) and "naive"
can be chosen for comparison.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from sqlalchemy import Engine

from service.jobs.live import LiveIndex
from service.storage import feedback, impressions

log = logging.getLogger("techmatch.learning")

STAGE = {"suggested": 0, "contacted": 1, "declined_enterprise": 1, "declined_partner": 1, "rejected": 1,
         "meeting_held": 2, "agreed": 3, "accepted": 3}
LABEL = {2: 1.0, 3: 2.0}  # furthest stage -> relevance label


def pair_states(changes: list[dict]) -> dict[tuple[str, str], dict]:
    """(demand, partner) -> {"stage", "first_contact", "status", "amount"} from the change log."""
    out: dict[tuple[str, str], dict] = {}
    for c in changes:
        st = out.setdefault((c["demand_id"], c["partner_id"]),
                            {"stage": 0, "first_contact": None, "status": "", "amount": None})
        st["stage"] = max(st["stage"], STAGE.get(c["status"], 0))
        st["status"] = c["status"]
        if c["status"] != "suggested" and st["first_contact"] is None:
            st["first_contact"] = c["created_at"]
        if c.get("amount") is not None:
            st["amount"] = c["amount"]
    return out


def history_from(states: dict[tuple[str, str], dict]):
    from matcher.learning.features import History

    h = History()
    for (demand_id, partner_id), st in states.items():
        if st["stage"] == 0:
            continue
        closed = st["stage"] >= 3 or st["status"] in ("declined_enterprise", "declined_partner", "rejected")
        h.add(demand_id, partner_id, accepted=st["stage"] >= 2, contract=st["stage"] >= 3, open_=not closed)
    return h


def load_deployed(db: Engine, live: LiveIndex, folder: Path) -> str:
    """Attach the deployed ranker (if any) to the live index; returns its version or "default"."""
    from matcher.learning.registry import ModelRegistry
    from matcher.learning.table import Reranker

    reg = ModelRegistry(folder)
    version = reg.current()
    if version is None:
        live.set_reranker(None, "default")
        return "default"
    with db.connect() as conn:
        history = history_from(pair_states(feedback.all_changes(conn)))
    live.set_reranker(Reranker(reg.load(version), history=history), version)
    return version


def train(db: Engine, live: LiveIndex, folder: Path, *, who: str, deploy: bool = True,
          estimator: str = "examined", evidence: bool = False) -> dict:
    """Train from outcomes; deploy when the gate passes. Returns a summary for the API and page.
    evidence: also train on the seven evidence features (`matcher.learning.features`)."""
    from matcher.learning.logged import LoggedList, training_rows
    from matcher.learning.registry import ModelRegistry
    from matcher.learning.table import build_table
    from matcher.learning.train import train_from_outcomes

    with db.connect() as conn:
        lists = impressions.shown_lists(conn)
        states = pair_states(feedback.all_changes(conn))
    history = history_from(states)
    first_contact: dict[str, object] = {}
    for (d, _), st in states.items():
        if st["first_contact"] is not None and (d not in first_contact or st["first_contact"] < first_contact[d]):
            first_contact[d] = st["first_contact"]
    by_demand: dict[str, list[dict]] = defaultdict(list)
    for lst in lists:  # oldest first
        by_demand[lst["demand_id"]].append(lst)
    chosen: dict[str, dict] = {}
    for d, ls in by_demand.items():
        fc = first_contact.get(d)
        before = [x for x in ls if fc is not None and x["served_at"] <= fc]
        chosen[d] = before[-1] if before else ls[-1]
    with live.read() as engine:
        demands = [engine.demands[d] for d in chosen if d in engine.demands]
        depth = max([len(chosen[d.id]["rows"]) for d in demands] + [10])
        table = build_table(engine, demands, "partner", depth=depth, history=history,
                            evidence=evidence) if demands else None
    summary = {"lists": len(lists), "demands": len(demands), "outcomes": sum(1 for s in states.values()
                                                                             if s["stage"] > 0)}
    if table is None:
        return {**summary, "deployed": False, "version": None, "reason": "no served lists of stored demands yet"}
    logged = []
    off = table.offsets
    for i, d in enumerate(table.query_ids):
        pos = {p: off[i] + j for j, p in enumerate(table.target_ids[i])}
        shown = [(r, p) for r, p in sorted(chosen[d]["rows"]) if p in pos]
        if not shown:
            continue
        stages = [states.get((d, p), {"stage": 0})["stage"] for _, p in shown]
        logged.append(LoggedList(d, [p for _, p in shown], table.X[[pos[p] for _, p in shown]],
                                 [st > 0 for st in stages], [LABEL.get(st, 0.0) for st in stages],
                                 [r for r, _ in shown]))
    rows = training_rows(logged, table.feature_names, estimator) if logged else None
    if rows is None:
        return {**summary, "deployed": False, "version": None,
                "reason": "no contacted pair is still a candidate" if logged else
                "no shown partner is still a candidate"}
    prop = rows.propensity
    res = train_from_outcomes(rows)
    summary.update({"estimator": estimator, "propensity": {"p1": prop.p1, "eta": prop.eta}, "reason": res.reason,
                    "validation": res.validation})
    if res.model is None:
        return {**summary, "deployed": False, "version": None}
    reg = ModelRegistry(folder)
    version = reg.add(res.model, {"trained_on": "outcomes", "by": who, "demands": len(logged),
                                  "estimator": estimator, "evidence": evidence,
                                  "validation": res.validation, "gate": res.reason,
                                  "propensity": summary["propensity"]})
    if deploy:
        reg.deploy(version)
        live.set_reranker(_reranker(res.model, history), version)
    log.info("ranker trained", extra={"version": version, "deployed": deploy})
    return {**summary, "deployed": deploy, "version": version, "importances": res.model.importances()}


def _reranker(model, history):
    from matcher.learning.table import Reranker

    return Reranker(model, history=history)


def rollback(db: Engine, live: LiveIndex, folder: Path) -> str:
    """Undo the last deployment; returns what is live now ("default" for the unlearned order)."""
    from matcher.learning.registry import ModelRegistry

    ModelRegistry(folder).rollback()
    return load_deployed(db, live, folder)


def models(folder: Path) -> list[dict]:
    from matcher.learning.registry import ModelRegistry

    reg = ModelRegistry(folder)
    out = []
    for v in reversed(reg.versions()):
        info = reg.info(v)
        out.append({"version": v, "created_at": info.created_at, "backend": info.backend,
                    "deployed": info.deployed, "trained_on": info.meta.get("trained_on", ""),
                    "gate": info.meta.get("gate", ""),
                    "importances": reg.load(v).importances()})
    return out


