"""The files people use on the day of a conference.

``write_outputs`` writes the assignment, the schedule and the unmet demands as CSV (UTF-8 with
BOM, so Excel shows Chinese correctly) and as one XLSX workbook, plus printable A4 agendas in
HTML and, with ``pdf=True`` (WeasyPrint, the ``pdf`` extra), as PDF. Every file is written to
a temporary name and moved into place.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matcher.conference.assign import Assignment
from matcher.conference.merged import enterprises_of, merged_ids
from matcher.conference.schedule import Schedule
from matcher.errors import MatcherError
from matcher.fsutil import atomic_bytes, atomic_text
from matcher.records import Demand, Partner
from matcher.retrieval.results import PartnerMatch
from matcher.sheets import safe_cell

ASSIGNMENT_COLUMNS = [
    "demand_id",
    "demand_title",
    "enterprise",
    "partner_id",
    "partner_name",
    "score",
    "candidate_rank",
    "pinned",
    "slot",
    "table",
    "shared_terms",
    "best_capabilities",
    "alternates",
]
SCHEDULE_COLUMNS = [
    "slot",
    "start",
    "end",
    "table",
    "partner_id",
    "partner_name",
    "demand_id",
    "demand_title",
    "enterprise",
]
UNMET_COLUMNS = [
    "stage",
    "demand_id",
    "demand_title",
    "enterprise",
    "partner_id",
    "partner_name",
    "assigned",
    "required",
    "reason",
    "detail",
]


def write_outputs(
    out_dir: Path,
    assignment: Assignment,
    schedule: Schedule,
    demands: Sequence[Demand],
    partners: Sequence[Partner],
    candidates: Mapping[str, Sequence[PartnerMatch]],
    *,
    title: str = "Technology matchmaking conference",
    pdf: bool = False,
) -> list[Path]:
    """Write every output file under ``out_dir``; returns the paths written.

    pdf: also write A4 PDF agendas (agendas/*.pdf, one per enterprise and per partner, and
    agendas/all.pdf with every agenda), Chinese fonts embedded; needs techmatch[pdf].

    conference.xlsx (sheets assignment, schedule, unmet), assignment.csv, schedule.csv,
    unmet.csv, agendas/enterprise-<id>.html, agendas/partner-<id>.html, agendas/index.html.
    candidates: the ranked matches, for the reasons shown beside each meeting.
    """
    out_dir = Path(out_dir)
    view = ConferenceView(assignment, schedule, demands, partners, candidates)
    tables = {
        "assignment": (ASSIGNMENT_COLUMNS, view.assignment_rows()),
        "schedule": (SCHEDULE_COLUMNS, view.schedule_rows()),
        "unmet": (UNMET_COLUMNS, view.unmet_rows()),
    }
    written: list[Path] = []
    for name, (cols, rows) in tables.items():
        path = out_dir / f"{name}.csv"
        atomic_bytes(path, _csv_bytes(cols, rows))
        written.append(path)
    path = out_dir / "conference.xlsx"
    atomic_bytes(path, _xlsx_bytes(tables))
    written.append(path)
    pages = render_agendas(view, title=title)
    pdfs = render_pdfs(pages) if pdf else {}  # rendered before anything else is replaced
    for rel, html in pages.items():
        atomic_text(out_dir / "agendas" / rel, html)
        written.append(out_dir / "agendas" / rel)
    for rel, data in pdfs.items():
        atomic_bytes(out_dir / "agendas" / rel, data)
        written.append(out_dir / "agendas" / rel)
    return written


def render_pdfs(pages: Mapping[str, str]) -> dict[str, bytes]:
    """A4 PDFs of the agenda pages (not the index): name.pdf per page and all.pdf, every
    agenda in one file, enterprises first. WeasyPrint embeds the (subset) CJK fonts."""
    try:
        from weasyprint import HTML
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MatcherError(
            "PDF agendas need WeasyPrint: install techmatch[pdf] (pip install 'techmatch[pdf]') "
            "/ 生成 PDF 日程需要 WeasyPrint：请安装 techmatch[pdf]"
        ) from exc

    out: dict[str, bytes] = {}
    docs = []
    for rel in sorted((r for r in pages if r != "index.html"), key=lambda r: (not r.startswith("enterprise-"), r)):
        doc = HTML(string=pages[rel]).render()
        docs.append(doc)
        out[rel.removesuffix(".html") + ".pdf"] = doc.write_pdf()
    if docs:
        out["all.pdf"] = docs[0].copy([page for doc in docs for page in doc.pages]).write_pdf()
    return out


def _csv_bytes(cols: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(cols)
    w.writerows([safe_cell(v) for v in row] for row in rows)
    return buf.getvalue().encode("utf-8-sig")


def _xlsx_bytes(tables: Mapping[str, tuple[list[str], list[list[Any]]]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for name, (cols, rows) in tables.items():
        ws = wb.create_sheet(name)
        ws.append(cols)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append([safe_cell(v) for v in row])
        ws.freeze_panes = "A2"
        for j, col in enumerate(cols, start=1):
            width = max([len(col)] + [len(str(r[j - 1])) for r in rows[:200]])
            ws.column_dimensions[ws.cell(1, j).column_letter].width = min(60, width + 2)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def file_id(text: str) -> str:
    """A file-name-safe id: letters (CJK included), digits, '.', '_', '-'; anything else
    becomes '_' and a short hash keeps distinct ids distinct."""
    safe = re.sub(r"[^\w.-]", "_", text).lstrip(".")[:80]
    if safe != text or not safe:
        safe = f"{safe}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}"
    return safe


class ConferenceView:
    """Lookups and table rows shared by the CSV/XLSX writers and the agendas."""

    def __init__(
        self,
        assignment: Assignment,
        schedule: Schedule,
        demands: Sequence[Demand],
        partners: Sequence[Partner],
        candidates: Mapping[str, Sequence[PartnerMatch]],
    ) -> None:
        self.assignment, self.schedule = assignment, schedule
        self.demands = {d.id: d for d in demands}
        self.partners = {p.id: p for p in partners}
        self.matches = {(d, m.partner_id): m for d, ms in candidates.items() for m in ms}
        self.names = {m.partner_id: m.partner_name for m in self.matches.values()}
        self.names.update({p.id: p.name for p in partners})
        self.placed = {(m.demand_id, m.partner_id): m for m in schedule.meetings}

    def enterprise(self, demand_id: str) -> str:
        d = self.demands.get(demand_id)
        return (d.enterprise if d else "") or demand_id

    def enterprises(self, demand_id: str) -> list[str]:
        """Everyone at the demand's meetings: for a merged demand, every member's enterprise."""
        d = self.demands.get(demand_id)
        return (enterprises_of(d) if d else []) or [self.enterprise(demand_id)]

    def attendees(self, demand_id: str) -> str:
        return "; ".join(self.enterprises(demand_id))

    def merged_from(self, demand_id: str) -> str:
        d = self.demands.get(demand_id)
        return ", ".join(merged_ids(d)) if d else ""

    def demand_title(self, demand_id: str) -> str:
        d = self.demands.get(demand_id)
        return d.title if d else ""

    def partner_name(self, partner_id: str) -> str:
        return self.names.get(partner_id) or partner_id

    def reasons(self, demand_id: str, partner_id: str) -> tuple[list[str], list[str]]:
        """(shared terms, best capability titles) from the match evidence."""
        m = self.matches.get((demand_id, partner_id))
        if m is None:
            return [], []
        terms = list(m.shared_terms) or list(dict.fromkeys(t for h in m.evidence for t in h.shared_terms))
        return terms[:6], [h.title for h in m.evidence[:2] if h.title]

    def slot_label(self, demand_id: str, partner_id: str) -> tuple[str, Any]:
        x = self.placed.get((demand_id, partner_id))
        return (self.schedule.slots[x.slot].label, x.table) if x else ("", "")

    def assignment_rows(self) -> list[list[Any]]:
        rows = []
        for a in self.assignment.pairs:
            terms, caps = self.reasons(a.demand_id, a.partner_id)
            m = self.matches.get((a.demand_id, a.partner_id))
            slot, table = self.slot_label(a.demand_id, a.partner_id)
            rows.append(
                [
                    a.demand_id,
                    self.demand_title(a.demand_id),
                    self.attendees(a.demand_id),
                    a.partner_id,
                    self.partner_name(a.partner_id),
                    round(a.score, 6),
                    m.rank if m else "",
                    a.pinned,
                    slot,
                    table,
                    "; ".join(terms),
                    " | ".join(caps),
                    "; ".join(
                        f"{self.partner_name(pid)} ({pid}) {sc:.4f}"
                        for pid, sc in self.assignment.alternates.get((a.demand_id, a.partner_id), ())
                    ),
                ]
            )
        return rows

    def schedule_rows(self) -> list[list[Any]]:
        rows = []
        for x in self.schedule.meetings:
            s = self.schedule.slots[x.slot]
            start, end = s.label.split("-")
            rows.append(
                [
                    s.label,
                    start,
                    end,
                    x.table,
                    x.partner_id,
                    self.partner_name(x.partner_id),
                    x.demand_id,
                    self.demand_title(x.demand_id),
                    self.attendees(x.demand_id),
                ]
            )
        return rows

    def unmet_rows(self) -> list[list[Any]]:
        rows = []
        for s in self.assignment.shortfalls:
            rows.append(
                [
                    "assignment",
                    s.demand_id,
                    self.demand_title(s.demand_id),
                    self.attendees(s.demand_id),
                    "",
                    "",
                    s.assigned,
                    s.required,
                    s.reason,
                    s.detail,
                ]
            )
        for ps in self.assignment.partner_shortfalls:
            rows.append(
                ["partner_minimum", "", "", "", ps.partner_id, self.partner_name(ps.partner_id), ps.assigned,
                 ps.required, "below_partner_minimum", ps.detail]
            )
        for x in self.assignment.suggestions:
            is_demand = x.kind == "quota"
            rows.append(
                ["suggestion", x.target if is_demand else "", self.demand_title(x.target) if is_demand else "",
                 self.attendees(x.target) if is_demand else "",
                 x.target if x.kind == "capacity" else "",
                 self.partner_name(x.target) if x.kind == "capacity" else "",
                 x.current, x.proposed, x.kind, f"{x.zh} / {x.en}"]
            )
        for u in self.schedule.unplaced:
            rows.append(
                [
                    "schedule",
                    u.demand_id,
                    self.demand_title(u.demand_id),
                    self.attendees(u.demand_id),
                    u.partner_id,
                    self.partner_name(u.partner_id),
                    "",
                    "",
                    u.reason,
                    u.detail,
                ]
            )
        return rows

    def agenda_lines(self) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
        """Meeting lines grouped by enterprise and by partner, in time order; unplaced
        meetings come last with an empty time."""
        by_ent: dict[str, list[dict]] = defaultdict(list)
        by_partner: dict[str, list[dict]] = defaultdict(list)
        order = {(x.demand_id, x.partner_id): (x.slot, x.table) for x in self.schedule.meetings}
        pairs = sorted(
            self.assignment.pairs,
            key=lambda a: order.get((a.demand_id, a.partner_id), (len(self.schedule.slots), 0)),
        )
        for a in pairs:
            slot, table = self.slot_label(a.demand_id, a.partner_id)
            terms, caps = self.reasons(a.demand_id, a.partner_id)
            line = {
                "time": slot,
                "table": table,
                "demand_id": a.demand_id,
                "demand_title": self.demand_title(a.demand_id),
                "enterprise": "、".join(self.enterprises(a.demand_id)),
                "merged_from": self.merged_from(a.demand_id),
                "partner_id": a.partner_id,
                "partner_name": self.partner_name(a.partner_id),
                "score": a.score,
                "terms": terms,
                "capabilities": caps,
            }
            for ent in self.enterprises(a.demand_id):  # a merged demand's meeting is on every member's agenda
                by_ent[ent].append(line)
            by_partner[a.partner_id].append(line)
        return dict(by_ent), dict(by_partner)


# ---------------------------------------------------------------------------- agendas

_CSS = """
@page { size: A4; margin: 15mm 12mm; }
html { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC",
  sans-serif; font-size: 10.5pt; color: #111; }
body { margin: 0; }
h1 { font-size: 16pt; margin: 0 0 2mm; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; break-after: avoid; page-break-after: avoid; }
.sub { color: #555; margin-bottom: 4mm; }
table { width: 100%; border-collapse: collapse; }
th, td { border-bottom: 0.3mm solid #bbb; padding: 1.5mm 2mm; text-align: left;
  vertical-align: top; }
thead { display: table-header-group; }
tr, li { break-inside: avoid; page-break-inside: avoid; }
.time { white-space: nowrap; font-weight: bold; }
.why, .id { color: #555; font-size: 9pt; }
@media screen { body { max-width: 186mm; margin: 10mm auto; } }
@media print { a { color: inherit; text-decoration: none; } .noprint { display: none; } }
"""

_TEMPLATES = {
    "base.html": """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{% block name %}{% endblock %} · {{ title }}</title>
<style>"""
    + _CSS
    + """</style></head>
<body>{% block body %}{% endblock %}</body></html>
""",
    "agenda.html": """{% extends "base.html" %}{% block name %}{{ heading }}{% endblock %}
{% block body %}<p class="noprint"><a href="index.html">&larr; 目录 Index</a></p>
<h1>{{ heading }}</h1>
<div class="sub">{{ title }} · {{ kind }} · {{ lines|length }} 场对接 meetings</div>
{% if lines %}<table><thead><tr><th>时间 Time</th><th>桌号 Table</th><th>{{ other_label }}</th>
<th>需求 Demand</th><th>匹配理由 Why</th></tr></thead><tbody>
{% for l in lines %}<tr><td class="time">{{ l.time or "待定 TBA" }}</td><td>{{ l.table }}</td>
<td>{{ l[other_key] }}</td><td>{{ l.demand_title }} <span class="id">{{ l.demand_id }}</span>
{% if l.merged_from %}<br><span class="id">联合洽谈 Joint meeting: {{ l.enterprise }}
{{- " · 已并入 merged " ~ l.merged_from }}</span>{% endif %}</td>
<td class="why">{% if l.terms %}共同术语 Shared terms: {{ l.terms|join("、") }}{% endif %}
{% if l.capabilities %}<br>相关成果 Capabilities: {{ l.capabilities|join("；") }}{% endif %}
</td></tr>
{% endfor %}</tbody></table>{% endif %}
{% if unmet %}<h2>未达最少对接数的需求 Demands below the minimum</h2><ul>
{% for u in unmet %}<li>{{ u.title }} <span class="id">{{ u.demand_id }}</span>:
{{ u.reason }} ({{ u.detail }})</li>{% endfor %}</ul>{% endif %}
{% endblock %}
""",
    "index.html": """{% extends "base.html" %}{% block name %}目录 Index{% endblock %}
{% block body %}<h1>{{ title }}</h1>
<div class="sub">{{ n_meetings }} 场对接 meetings · {{ n_unplaced }} 未排期 unscheduled ·
{{ n_short }} 需求未达最少对接数 demands below minimum</div>
{% for group in groups %}<h2>{{ group.label }}</h2><table><tbody>
{% for e in group.entries %}<tr><td><a href="{{ e.href }}">{{ e.name }}</a></td>
<td>{{ e.count }}</td></tr>{% endfor %}</tbody></table>{% endfor %}
{% endblock %}
""",
}


def render_agendas(view: ConferenceView, *, title: str) -> dict[str, str]:
    """File name (relative to agendas/) -> HTML, every value escaped by jinja2 autoescape."""
    from jinja2 import DictLoader, Environment, select_autoescape

    env = Environment(loader=DictLoader(_TEMPLATES), autoescape=select_autoescape(default=True))
    agenda = env.get_template("agenda.html")
    by_ent, by_partner = view.agenda_lines()
    unmet: dict[str, list[dict]] = defaultdict(list)
    for s in view.assignment.shortfalls:
        for ent in view.enterprises(s.demand_id):
            unmet[ent].append(
                {
                    "demand_id": s.demand_id,
                    "title": view.demand_title(s.demand_id),
                    "reason": s.reason,
                    "detail": s.detail,
                }
            )
    pages: dict[str, str] = {}
    ent_entries, partner_entries = [], []
    for ent in sorted(set(by_ent) | set(unmet)):
        href = f"enterprise-{file_id(ent)}.html"
        lines = by_ent.get(ent, [])
        pages[href] = agenda.render(
            title=title,
            heading=ent,
            kind="企业日程 Enterprise agenda",
            lines=lines,
            other_label="对接方 Partner",
            other_key="partner_name",
            unmet=unmet.get(ent, []),
        )
        ent_entries.append({"href": href, "name": ent, "count": len(lines)})
    for pid in sorted(by_partner):
        href = f"partner-{file_id(pid)}.html"
        name = view.partner_name(pid)
        pages[href] = agenda.render(
            title=title,
            heading=name if name == pid else f"{name} ({pid})",
            kind="专家/院所日程 Partner agenda",
            lines=by_partner[pid],
            other_label="企业 Enterprise",
            other_key="enterprise",
            unmet=[],
        )
        partner_entries.append({"href": href, "name": name, "count": len(by_partner[pid])})
    pages["index.html"] = env.get_template("index.html").render(
        title=title,
        n_meetings=len(view.schedule.meetings),
        n_unplaced=len(view.schedule.unplaced),
        n_short=len(view.assignment.shortfalls),
        groups=[
            {"label": "企业 Enterprises", "entries": ent_entries},
            {"label": "院所 Partners", "entries": partner_entries},
        ],
    )
    return pages
