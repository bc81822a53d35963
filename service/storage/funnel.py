"""The funnel a bureau reports upward: suggestions -> contacts -> meetings -> agreements (and amounts),
by industry, by county or district, by partner and by month, with conversion rates.

A pair (demand, partner) counts once, at the furthest stage its pipeline reached (a pair declined
after a meeting still counts as a meeting). Every pair with any pipeline entry counts as a
suggestion. The month is the month of the pair's first entry. "accepted" (the first API's status)
counts as an agreement, "rejected" as a decline.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from matcher.sheets import safe_text
from service.storage.db import demands, feedback, partners

DIMENSIONS = ("industry", "region", "partner", "month")
STAGE = {"suggested": 0, "contacted": 1, "declined_enterprise": 1, "declined_partner": 1, "rejected": 1,
         "meeting_held": 2, "agreed": 3, "accepted": 3}
COLUMNS = ("group", "suggestions", "contacts", "meetings", "agreements", "amount", "declined",
           "contact_rate", "meeting_rate", "agreement_rate", "overall_rate")


@dataclass
class FunnelRow:
    group: str
    suggestions: int = 0
    contacts: int = 0
    meetings: int = 0
    agreements: int = 0
    amount: float = 0.0
    declined: int = 0

    @property
    def contact_rate(self) -> float | None:
        return _rate(self.contacts, self.suggestions)

    @property
    def meeting_rate(self) -> float | None:
        return _rate(self.meetings, self.contacts)

    @property
    def agreement_rate(self) -> float | None:
        return _rate(self.agreements, self.meetings)

    @property
    def overall_rate(self) -> float | None:
        return _rate(self.agreements, self.suggestions)

    def as_dict(self) -> dict:
        return {c: getattr(self, c) for c in COLUMNS}


def _rate(a: int, b: int) -> float | None:
    return a / b if b else None


def pairs(conn: Connection) -> list[dict]:
    """One dict per pair: industry, region, partner, month, stage, declined, amount."""
    rows = conn.execute(
        select(feedback.c.demand_id, feedback.c.partner_id, feedback.c.status, feedback.c.amount,
               feedback.c.created_at, demands.c.industry, demands.c.region, partners.c.name)
        .join(demands, demands.c.id == feedback.c.demand_id)
        .join(partners, partners.c.id == feedback.c.partner_id)
        .order_by(feedback.c.created_at, feedback.c.id))
    out: dict[tuple[str, str], dict] = {}
    for r in rows:
        p = out.get((r.demand_id, r.partner_id))
        if p is None:
            p = out[(r.demand_id, r.partner_id)] = {
                "industry": r.industry or "", "region": r.region or "", "partner": f"{r.name} ({r.partner_id})",
                "month": r.created_at.strftime("%Y-%m"), "stage": 0, "declined": False, "amount": None}
        p["stage"] = max(p["stage"], STAGE.get(r.status, 0))
        p["declined"] = r.status in ("declined_enterprise", "declined_partner", "rejected")
        if r.amount is not None:
            p["amount"] = float(r.amount)
    return list(out.values())


def report(conn: Connection, by: str) -> tuple[list[FunnelRow], FunnelRow]:
    """(rows by `by`, largest suggestion count first; the total row)."""
    if by not in DIMENSIONS:
        raise ValueError(f"unknown funnel dimension '{by}'; valid: {', '.join(DIMENSIONS)}")
    groups: dict[str, FunnelRow] = defaultdict(lambda: FunnelRow(""))
    total = FunnelRow("total")
    for p in pairs(conn):
        key = p[by] or "-"
        row = groups[key]
        row.group = key
        for r in (row, total):
            r.suggestions += 1
            r.contacts += p["stage"] >= 1
            r.meetings += p["stage"] >= 2
            r.agreements += p["stage"] >= 3
            r.declined += p["declined"]
            if p["stage"] >= 3 and p["amount"] is not None:
                r.amount += p["amount"]
    ordered = sorted(groups.values(), key=lambda r: (r.group if by == "month" else "", -r.suggestions, r.group))
    return ordered, total


def to_xlsx(conn: Connection, dimensions: Sequence[str] = DIMENSIONS) -> bytes:
    """One sheet per dimension, with the conversion rates as percentages and a total row."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    bold = wb.add_format({"bold": True})
    pct = wb.add_format({"num_format": "0.0%"})
    money = wb.add_format({"num_format": "#,##0.00"})
    for by in dimensions:
        rows, total = report(conn, by)
        ws = wb.add_worksheet(by)
        ws.write_row(0, 0, [by if c == "group" else c for c in COLUMNS], bold)
        for i, r in enumerate([*rows, total], start=1):
            d = r.as_dict()
            for j, c in enumerate(COLUMNS):
                v = d[c]
                if c == "group":
                    ws.write_string(i, j, str(safe_text(v)), bold if r is total else None)
                elif c.endswith("_rate"):
                    ws.write(i, j, v, pct) if v is not None else ws.write_blank(i, j, None)
                elif c == "amount":
                    ws.write_number(i, j, v, money)
                else:
                    ws.write_number(i, j, v)
        ws.set_column(0, 0, 36)
        ws.set_column(1, len(COLUMNS) - 1, 14)
        ws.freeze_panes(1, 1)
    wb.close()
    return buf.getvalue()
