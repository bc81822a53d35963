"""Demo mode: the bundled Qiqihar corpus in an empty database, and one token per role.

The demo tokens are fixed and public (documented in docs/service.md): never use demo mode
for real data.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Engine

from matcher.records import Partner
from service.auth import tokens as auth
from service.storage import store
from service.storage.db import bump_revision, capabilities, demands, partners

log = logging.getLogger("techmatch.service.demo")

DEMO_SECRETS = {"admin": "demo-admin", "staff": "demo-staff", "institute": "demo-institute",
                "enterprise": "demo-enterprise"}


@dataclass(frozen=True)
class DemoToken:
    role: str
    token: str
    binding: str = ""


def load_demo_corpus(db: Engine) -> bool:
    """Load the bundled corpus if the database holds no records. Returns whether it loaded."""
    with db.connect() as conn:
        if any(store.counts(conn).values()):
            return False
    from corpora import demo_corpus_path
    from matcher.io import load_partners, load_task

    folder = demo_corpus_path()
    task = load_task(folder)
    known = load_partners(folder / "partners.jsonl") if (folder / "partners.jsonl").exists() else []
    by_id = {p.id: p for p in known}
    for cap in task.capabilities:
        by_id.setdefault(cap.partner_id, Partner(id=cap.partner_id, name=cap.partner_name or cap.partner_id))
    with db.begin() as conn:
        store.upsert_rows(conn, partners, [store.partner_values(p) for p in by_id.values()])
        store.upsert_rows(conn, capabilities, [store.capability_values(c) for c in task.capabilities])
        store.upsert_rows(conn, demands, [store.demand_values(d, owner=d.enterprise, published=True)
                                          for d in task.demands])
        bump_revision(conn)
    log.info("demo corpus loaded", extra={"demands": len(task.demands), "capabilities": len(task.capabilities),
                                          "partners": len(by_id)})
    return True


def ensure_demo_tokens(db: Engine) -> list[DemoToken]:
    """Create the fixed demo tokens when missing; the institute token is bound to the first
    partner with capabilities, the enterprise token to the enterprise with most demands."""
    with db.begin() as conn:
        caps, dems, _ = store.all_records(conn)
        partner_id = caps[0].partner_id if caps else None
        owners = Counter(d.enterprise for d in dems if d.enterprise)
        enterprise = owners.most_common(1)[0][0] if owners else None
        out = []
        for role, secret in DEMO_SECRETS.items():
            binding = {"institute": partner_id, "enterprise": enterprise}.get(role)
            if role in ("institute", "enterprise") and not binding:
                continue
            if not auth.token_exists(conn, secret):
                auth.create_token(conn, name=f"demo {role}", role=role, secret=secret,
                                  partner_id=binding if role == "institute" else None,
                                  enterprise=binding if role == "enterprise" else None)
            out.append(DemoToken(role, secret, binding or ""))
    return out
