"""The demand landscape as files: a self-contained HTML report with charts, and XLSX tables.

    paths = write_report(landscape, out_dir)   # landscape.html, landscape.xlsx
    html = render_html(landscape)              # for the service's page
    data = xlsx_bytes(landscape)

Charts are drawn by matplotlib (Agg backend, imported lazily) as inline PNG; Chinese labels
need a CJK font, found through matplotlib's font manager (a warning, and ASCII-only chart
labels, when the machine has none). Every value in the HTML is escaped by jinja2's
autoescape; text cells of the spreadsheet that start with = + - @ get a leading apostrophe.
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from matcher.fsutil import atomic_bytes, atomic_text
from matcher.landscape.build import Landscape
from matcher.landscape.clusters import crosstab
from matcher.sheets import safe_cell

Table = tuple[list[str], list[list[Any]]]
CJK_FONT_NAMES = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Heiti SC",
    "AR PL UMing CN",
)
CONFIDENTIAL = "(保密 confidential)"
EXAMPLES_PER_CLUSTER = 5


# -- tables shared by the HTML and the XLSX --------------------------------------------------
def cluster_code(cluster: int) -> str:
    return f"C{cluster + 1}"


class _View:
    """Row builders over a Landscape; confidential demands lose enterprise and text when redacting."""

    def __init__(self, land: Landscape, redact: bool) -> None:
        self.land, self.redact = land, redact
        self.labels = land.clustering.labels
        self.k = int(self.labels.max()) + 1 if len(self.labels) else 0
        self.cov = {c.demand_id: c for c in land.coverage}
        self.cluster_of = {d.id: int(lab) for d, lab in zip(land.demands, self.labels)}
        self.group_of = {did: i + 1 for i, g in enumerate(land.duplicates) for did in g.ids}
        self.by_id = {d.id: d for d in land.demands}
        self.ind_cats, self.ind = crosstab(self.labels, [d.industry for d in land.demands], self.k)
        self.reg_cats, self.reg = crosstab(self.labels, [d.region for d in land.demands], self.k)
        self.cc = {c.cluster: c for c in land.clusters}

    def enterprise(self, d) -> str:
        return CONFIDENTIAL if (self.redact and d.confidential) else d.enterprise

    def text(self, d, limit: int = 300) -> str:
        if self.redact and d.confidential:
            return CONFIDENTIAL
        return d.text if len(d.text) <= limit else d.text[:limit] + "…"

    def partner(self, pid: str) -> str:
        return self.land.partner_names.get(pid, pid)

    def name(self, c: int) -> str:
        label = self.land.names[c].label if c < len(self.land.names) else ""
        return label or "(no distinctive terms)"

    def top(self, cats: list[str], counts, n: int = 3) -> str:
        order = np.argsort(-counts, kind="stable")[:n]
        return "; ".join(f"{cats[j]} {int(counts[j])}" for j in order if counts[j] > 0)

    def clusters(self) -> Table:
        cols = [
            "cluster", "name", "terms", "language", "size", "industries", "regions",
            "covered_share", "mean_best_score", "median_partners_above", "uncovered", "flagged",
        ]  # fmt: skip
        rows = []
        for c in range(self.k):
            cc, nm = self.cc[c], self.land.names[c]
            rows.append([
                cluster_code(c), nm.label, " ".join(nm.terms), nm.language, cc.size,
                self.top(self.ind_cats, self.ind[c]), self.top(self.reg_cats, self.reg[c]),
                round(cc.covered_share, 3), round(cc.mean_best, 4), cc.median_above,
                int(round(cc.weakness)), "yes" if cc.flagged else "",
            ])  # fmt: skip
        return cols, rows

    def demands(self) -> Table:
        cols = [
            "demand_id", "title", "cluster", "cluster_name", "industry", "region", "enterprise",
            "confidential", "best_score", "partners_above", "covered", "best_partner_id",
            "best_partner", "duplicate_group",
        ]  # fmt: skip
        rows = []
        for d in self.land.demands:
            c, cov = self.cluster_of[d.id], self.cov[d.id]
            best = cov.top_partners[0][0] if cov.top_partners else ""
            rows.append([
                d.id, d.title, cluster_code(c), self.name(c), d.industry, d.region, self.enterprise(d),
                "yes" if d.confidential else "", round(cov.best_score, 4), cov.n_above,
                "yes" if cov.covered else "no", best, self.partner(best) if best else "",
                self.group_of.get(d.id, ""),
            ])  # fmt: skip
        return cols, rows

    def coverage(self) -> Table:
        cols = ["demand_id", "rank", "partner_id", "partner", "partner_region", "score", "above_threshold"]
        rows = []
        for cov in self.land.coverage:
            for rank, (pid, score) in enumerate(cov.top_partners, start=1):
                rows.append([
                    cov.demand_id, rank, pid, self.partner(pid), self.land.partner_regions.get(pid, ""),
                    round(score, 4), "yes" if score >= self.land.threshold else "",
                ])  # fmt: skip
        return cols, rows

    def weak(self) -> Table:
        cols = [
            "rank", "cluster", "name", "size", "uncovered", "covered_share", "mean_best_score", "flagged",
            "example_demands",
        ]  # fmt: skip
        rows = []
        for rank, cc in enumerate(self.land.clusters, start=1):
            ex = self.examples(cc.cluster)
            rows.append([
                rank, cluster_code(cc.cluster), self.name(cc.cluster), cc.size, int(round(cc.weakness)),
                round(cc.covered_share, 3), round(cc.mean_best, 4), "yes" if cc.flagged else "",
                " | ".join(f"{d.id} {d.title}" for d, _ in ex),
            ])  # fmt: skip
        return cols, rows

    def examples(self, cluster: int, n: int = EXAMPLES_PER_CLUSTER) -> list[tuple[Any, Any]]:
        """The cluster's worst-covered demands first."""
        members = self.land.members(cluster)
        members.sort(key=lambda d: (self.cov[d.id].n_above, self.cov[d.id].best_score, d.id))
        return [(d, self.cov[d.id]) for d in members[:n]]

    def duplicates(self) -> Table:
        cols = [
            "group", "group_label", "demand_a", "title_a", "enterprise_a", "demand_b", "title_b", "enterprise_b",
            "pair_label", "cosine", "excess_cosine", "jaccard",
        ]  # fmt: skip
        rows = []
        for gi, g in enumerate(self.land.duplicates, start=1):
            for p in g.pairs:
                a, b = self.by_id[p.a], self.by_id[p.b]
                rows.append([
                    gi, g.label, a.id, a.title, self.enterprise(a), b.id, b.title, self.enterprise(b),
                    p.label, round(p.cosine, 4), round(p.excess, 4), round(p.jaccard, 4),
                ])  # fmt: skip
        return cols, rows

    def crosstab_table(self, cats: list[str], counts) -> Table:
        cols = ["cluster", "name", *cats, "total"]
        rows = [[cluster_code(c), self.name(c), *map(int, counts[c]), int(counts[c].sum())] for c in range(self.k)]
        return cols, rows

    def silhouette(self) -> Table:
        cl = self.land.clustering
        cols = ["method", "k", "silhouette", "largest_share", "eligible", "chosen"]
        rows = [
            [s.method, s.k, round(s.silhouette, 4), round(s.largest_share, 3), "yes" if s.eligible else "no",
             "yes" if (s.method, s.k) == (cl.method, cl.k) else ""]
            for s in cl.scores
        ]  # fmt: skip
        return cols, rows

    def calibration(self) -> Table:
        cal = self.land.calibration
        cols = [
            "kind", "pair_auc", "demand_auc", "threshold_f1", "precision", "recall", "f1", "youden_threshold",
            "youden_j", "absolute", "chosen",
        ]  # fmt: skip
        if cal is None:
            return cols, []
        rows = [
            [
                t.kind, round(t.auc, 4), round(t.demand_auc, 4), round(t.threshold, 4), round(t.precision, 4),
                round(t.recall, 4), round(t.f1, 4), round(t.youden_threshold, 4), round(t.youden_j, 4),
                "yes" if t.absolute else "no", "yes" if t.kind == cal.kind else "",
            ]
            for t in cal.table
        ]  # fmt: skip
        return cols, rows

    def tables(self) -> dict[str, Table]:
        return {
            "clusters": self.clusters(),
            "demands": self.demands(),
            "coverage": self.coverage(),
            "weak_clusters": self.weak(),
            "duplicates": self.duplicates(),
            "by_industry": self.crosstab_table(self.ind_cats, self.ind),
            "by_region": self.crosstab_table(self.reg_cats, self.reg),
            "silhouette": self.silhouette(),
            "calibration": self.calibration(),
        }


# -- findings -----------------------------------------------------------------------------------
def findings(land: Landscape, *, top: int = 5) -> list[str]:
    """The report's headline findings as short sentences (the CLI prints them)."""
    cl = land.clustering
    n = len(land.demands)
    covered = sum(c.covered for c in land.coverage)
    flagged = [c for c in land.clusters if c.flagged]
    out = [
        f"{n} demands in {cl.k} clusters ({cl.method}, k chosen by silhouette {cl.silhouette:.3f})",
        f"{covered} of {n} demands ({covered / max(n, 1):.0%}) have a partner scoring >= {land.threshold:.3f} "
        f"({land.score_kind} score)",
    ]
    if flagged:
        out.append(f"{len(flagged)} weakly covered cluster(s) to recruit partners for from outside the city:")
    else:
        out.append("no cluster is flagged as weakly covered; the weakest are:")
    for cc in (flagged or list(land.clusters))[:top]:
        out.append(
            f"  {cluster_code(cc.cluster)} {land.names[cc.cluster].label}: {cc.size} demands, "
            f"{int(round(cc.weakness))} uncovered ({cc.covered_share:.0%} covered)"
        )
    dups = [g for g in land.duplicates if g.label == "duplicate"]
    out.append(
        f"{len(dups)} near-duplicate group(s) and {len(land.duplicates) - len(dups)} related group(s) "
        "for staff to merge or link"
    )
    return out


# -- charts -------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs, or None (with a warning)."""
    from matplotlib import font_manager

    def known() -> set[str]:
        return {f.name for f in font_manager.fontManager.ttflist}

    names = known()
    if not any(n in names for n in CJK_FONT_NAMES):
        # fonts installed after matplotlib built its cache: register them now
        for path in font_manager.findSystemFonts():
            low = path.lower()
            if any(s in low for s in ("cjk", "wqy", "sourcehan", "droidsansfallback", "simhei", "msyh")):
                try:
                    font_manager.fontManager.addfont(path)
                except Exception:  # noqa: BLE001 - an unreadable font file is just skipped
                    continue
        names = known()
    for n in CJK_FONT_NAMES:
        if n in names:
            return n
    other = sorted(n for n in names if "CJK" in n or "Han" in n)
    if other:
        return other[0]
    warnings.warn(
        "no CJK font found (install fonts-noto-cjk); chart labels will show cluster codes only",
        stacklevel=2,
    )
    return None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    font = cjk_font()
    plt.rcParams["font.family"] = ["sans-serif"]
    plt.rcParams["font.sans-serif"] = ([font] if font else []) + ["DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    plt.rcParams["svg.fonttype"] = "none"
    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _chart_label(view: _View, c: int, width: int = 14) -> str:
    code = cluster_code(c)
    if cjk_font() is None:
        return code
    name = view.name(c)
    return f"{code} {name[:width]}{'…' if len(name) > width else ''}"


def _axis_labels(cats: Sequence[str]) -> list[str]:
    if cjk_font() is not None:
        return list(cats)
    return [c if c.isascii() else f"#{i + 1}" for i, c in enumerate(cats)]


def chart_heatmap(view: _View, cats: list[str], counts, title: str) -> str:
    plt = _pyplot()
    k = view.k
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(cats) + 3.5), max(3.0, 0.34 * k + 1.6)))
    im = ax.imshow(counts, aspect="auto", cmap="Blues")
    ax.set_xticks(range(len(cats)), _axis_labels(cats), rotation=50, ha="right", fontsize=8)
    ax.set_yticks(range(k), [_chart_label(view, c) for c in range(k)], fontsize=8)
    for i in range(k):
        for j in range(len(cats)):
            if counts[i, j]:
                dark = counts[i, j] > counts.max() * 0.6
                ax.text(
                    j, i, int(counts[i, j]), ha="center", va="center", fontsize=7, color="white" if dark else "black"
                )
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    return _png(fig)


def chart_coverage(view: _View) -> str:
    plt = _pyplot()
    land = view.land
    best = np.array([c.best_score for c in land.coverage])
    above = np.array([c.n_above for c in land.coverage])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.2))
    bins = np.linspace(min(best.min(), land.threshold) - 0.01, max(best.max(), land.threshold) + 0.01, 25)
    a1.hist([best[best >= land.threshold], best[best < land.threshold]], bins=bins, stacked=True,
            color=["#4c8bc9", "#d9534f"], label=["covered", "uncovered"])  # fmt: skip
    a1.axvline(land.threshold, color="black", ls="--", lw=1)
    a1.set_xlabel(f"best partner score ({land.score_kind})")
    a1.set_ylabel("demands")
    a1.legend(fontsize=8)
    counts = np.bincount(np.minimum(above, 10), minlength=11)
    a2.bar(range(11), counts, color=["#d9534f"] + ["#4c8bc9"] * 10)
    a2.set_xticks(range(11), [str(i) for i in range(10)] + ["10+"])
    a2.set_xlabel(f"partners with score >= {land.threshold:.3f}")
    a2.set_ylabel("demands")
    fig.tight_layout()
    return _png(fig)


def chart_weak(view: _View, n: int = 12) -> str:
    plt = _pyplot()
    rows = list(view.land.clusters[:n])[::-1]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.36 * len(rows) + 1)))
    y = np.arange(len(rows))
    unc = np.array([c.weakness for c in rows])
    cov = np.array([c.size for c in rows]) - unc
    ax.barh(y, unc, color=["#d9534f" if c.flagged else "#f0ad4e" for c in rows], label="uncovered")
    ax.barh(y, cov, left=unc, color="#4c8bc9", label="covered")
    ax.set_yticks(y, [_chart_label(view, c.cluster) + (" (!)" if c.flagged else "") for c in rows],
                  fontsize=8)  # fmt: skip
    ax.set_xlabel("demands (red: flagged, recruit partners)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def chart_silhouette(view: _View) -> str:
    plt = _pyplot()
    cl = view.land.clustering
    fig, ax = plt.subplots(figsize=(7, 3))
    for m in dict.fromkeys(s.method for s in cl.scores):
        pts = [(s.k, s.silhouette) for s in cl.scores if s.method == m]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=m)
    if cl.scores:
        ax.plot([cl.k], [cl.silhouette], marker="o", ms=10, mfc="none", mec="black", label="chosen")
    ax.set_xlabel("k")
    ax.set_ylabel("silhouette (cosine)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


# -- HTML ---------------------------------------------------------------------------------------
_TEMPLATE = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:1.5em auto;max-width:1200px;
padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 6px;
vertical-align:top}th{background:#f3f3f3;text-align:left}.num{text-align:right}.flag{color:#c9302c;font-weight:bold}
.sub{color:#666}.id{color:#888;font-size:.85em}img{max-width:100%}.dup td{width:33%}.findings li{margin:.2em 0}
details{margin:.3em 0}
</style></head><body>
<h1>{{ title }}</h1>
<div class="sub">{{ n }} 项需求 demands · {{ n_partners }} 家合作方 partners · 模型 model {{ model }} ·
{{ today }}</div>
<h2 id="findings">主要发现 Top findings</h2>
<ul class="findings">{% for f in findings %}<li>{{ f }}</li>{% endfor %}</ul>

<h2 id="clusters">需求聚类 Clusters</h2>
<p>{{ method }}, k = {{ k }}, silhouette {{ "%.3f"|format(silhouette) }} (best of {{ n_candidates }} candidates).
{{ "Demands with no partner scoring >= %.3f (%s score) are uncovered."|format(threshold, kind) }}</p>
<img alt="clusters by industry" src="{{ charts.industry }}">
<img alt="clusters by county or district" src="{{ charts.region }}">
<table><thead><tr>{% for c in clusters.cols %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for r in clusters.rows %}<tr>{% for v in r %}<td{% if v is number %} class="num"{% endif %}>{{ v }}</td>{% endfor %}
</tr>{% endfor %}</tbody></table>

<h2 id="coverage">合作方覆盖 Coverage</h2>
<img alt="coverage distribution" src="{{ charts.coverage }}">
{% if calibration %}<p>Threshold calibrated on {{ calibration.n_demands }} judged demands
({{ calibration.n_pairs }} demand-partner pairs, {{ calibration.n_relevant }} with grade >=
{{ calibration.min_grade }}):
{{ calibration.kind }} score >= {{ "%.3f"|format(calibration.threshold) }}, precision
{{ "%.2f"|format(calibration.precision) }}, recall {{ "%.2f"|format(calibration.recall) }},
F1 {{ "%.2f"|format(calibration.f1) }}.</p>
<table><thead><tr>{% for c in cal.cols %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for r in cal.rows %}<tr>{% for v in r %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>
{% else %}<p>Threshold {{ "%.3f"|format(threshold) }} ({{ kind }} score), given.</p>{% endif %}

<h2 id="weak">覆盖最弱的方向 Weakest-covered clusters</h2>
<p>Ranked by size × (1 − covered share). <span class="flag">Flagged</span>: at most half covered and
at least two uncovered demands: recruit partners from outside the city or abroad.</p>
<img alt="weakest clusters" src="{{ charts.weak }}">
{% for w in weak %}<h3>{% if w.flagged %}<span class="flag">⚑</span> {% endif %}{{ w.code }} {{ w.name }}
<span class="sub">{{ w.size }} demands, {{ w.uncovered }} uncovered,
{{ "%.0f"|format(100 * w.share) }}% covered</span></h3>
<table><thead><tr><th>demand</th><th>title</th><th>industry</th><th>region</th><th>enterprise</th>
<th>best score</th><th>partners above</th><th>best partner</th></tr></thead><tbody>
{% for e in w.examples %}<tr><td class="id">{{ e.id }}</td><td>{{ e.title }}</td><td>{{ e.industry }}</td>
<td>{{ e.region }}</td><td>{{ e.enterprise }}</td><td class="num">{{ "%.3f"|format(e.best) }}</td>
<td class="num">{{ e.above }}</td><td>{{ e.partner }}</td></tr>{% endfor %}</tbody></table>{% endfor %}

<h2 id="duplicates">近似重复需求 Near-duplicate and related demands</h2>
{% if not groups %}<p>None found.</p>{% endif %}
{% for g in groups %}<details{% if loop.index <= 10 %} open{% endif %}><summary><b>#{{ g.no }} {{ g.label }}</b>
<span class="sub">{{ g.ids|join(", ") }}</span></summary>
<table class="dup"><tr>{% for d in g.demands %}<td><b>{{ d.title }}</b> <span class="id">{{ d.id }}</span><br>
<span class="sub">{{ d.enterprise }} · {{ d.region }} · {{ d.industry }}</span><br>{{ d.text }}</td>{% endfor %}
</tr></table>
<div class="sub">{% for p in g.pairs %}{{ p.a }}–{{ p.b }} {{ p.label }}: cosine {{ "%.3f"|format(p.cosine) }},
Jaccard {{ "%.2f"|format(p.jaccard) }}{% if not loop.last %}; {% endif %}{% endfor %}</div></details>{% endfor %}

<h2 id="method">方法 Method</h2>
<img alt="silhouette per k and method" src="{{ charts.silhouette }}">
<details><summary>silhouette table</summary><table><thead><tr>{% for c in sil.cols %}<th>{{ c }}</th>{% endfor %}
</tr></thead><tbody>{% for r in sil.rows %}<tr>{% for v in r %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}
</tbody></table></details>
</body></html>
"""


def render_html(
    land: Landscape, *, title: str = "技术需求图谱 Demand landscape", redact_confidential: bool = True
) -> str:
    """The report as one self-contained HTML page (charts inline)."""
    from jinja2 import Environment, select_autoescape

    view = _View(land, redact_confidential)
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    cols, rows = view.clusters()
    weak = []
    for cc in land.clusters[:10]:
        examples = []
        for d, cov in view.examples(cc.cluster):
            pid = cov.top_partners[0][0] if cov.top_partners else ""
            examples.append(
                {
                    "id": d.id,
                    "title": d.title,
                    "industry": d.industry,
                    "region": d.region,
                    "enterprise": view.enterprise(d),
                    "best": cov.best_score,
                    "above": cov.n_above,
                    "partner": view.partner(pid) if pid else "",
                }
            )
        weak.append(
            {
                "code": cluster_code(cc.cluster),
                "name": view.name(cc.cluster),
                "size": cc.size,
                "uncovered": int(round(cc.weakness)),
                "share": cc.covered_share,
                "flagged": cc.flagged,
                "examples": examples,
            }
        )
    groups = []
    for no, g in enumerate(land.duplicates, start=1):
        members = [view.by_id[i] for i in g.ids]
        groups.append(
            {
                "no": no,
                "label": g.label,
                "ids": g.ids,
                "pairs": g.pairs,
                "demands": [
                    {
                        "id": d.id,
                        "title": d.title,
                        "enterprise": view.enterprise(d),
                        "region": d.region,
                        "industry": d.industry,
                        "text": view.text(d),
                    }
                    for d in members
                ],  # fmt: skip
            }
        )
    charts = {
        "industry": chart_heatmap(view, view.ind_cats, view.ind, "按行业 clusters by industry"),
        "region": chart_heatmap(view, view.reg_cats, view.reg, "按县区 clusters by county / district"),
        "coverage": chart_coverage(view),
        "weak": chart_weak(view),
        "silhouette": chart_silhouette(view),
    }
    sil_cols, sil_rows = view.silhouette()
    cal_cols, cal_rows = view.calibration()
    return env.from_string(_TEMPLATE).render(
        title=title,
        n=len(land.demands),
        n_partners=len(land.partner_names),
        model=land.model,
        today=date.today().isoformat(),
        findings=findings(land),
        method=land.clustering.method,
        k=land.clustering.k,
        silhouette=land.clustering.silhouette,
        n_candidates=len(land.clustering.scores),
        threshold=land.threshold,
        kind=land.score_kind,
        clusters={"cols": cols, "rows": rows},
        calibration=land.calibration,
        cal={"cols": cal_cols, "rows": cal_rows},
        weak=weak,
        groups=groups,
        charts=charts,
        sil={"cols": sil_cols, "rows": sil_rows},
    )


# -- XLSX ---------------------------------------------------------------------------------------
def tables(land: Landscape, *, redact_confidential: bool = True) -> dict[str, Table]:
    """Sheet name -> (columns, rows): clusters, demands, coverage, weak_clusters, duplicates,
    by_industry, by_region, silhouette, calibration."""
    return _View(land, redact_confidential).tables()


def xlsx_bytes(land: Landscape, *, redact_confidential: bool = True) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for name, (cols, rows) in tables(land, redact_confidential=redact_confidential).items():
        ws = wb.create_sheet(name)
        ws.append([safe_cell(c) for c in cols])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append([safe_cell(v) for v in row])
        ws.freeze_panes = "A2"
        for j, col in enumerate(cols, start=1):
            width = max([len(str(col))] + [len(str(r[j - 1])) for r in rows[:200]])
            ws.column_dimensions[ws.cell(1, j).column_letter].width = min(50, width + 2)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_report(
    land: Landscape,
    out_dir: str | Path,
    *,
    title: str = "技术需求图谱 Demand landscape",
    redact_confidential: bool = True,
) -> list[Path]:
    """Write landscape.html and landscape.xlsx into out_dir (atomically); returns their paths."""
    out = Path(out_dir)
    html_path, xlsx_path = out / "landscape.html", out / "landscape.xlsx"
    atomic_text(html_path, render_html(land, title=title, redact_confidential=redact_confidential))
    atomic_bytes(xlsx_path, xlsx_bytes(land, redact_confidential=redact_confidential))
    return [html_path, xlsx_path]
