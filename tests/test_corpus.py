"""The bundled demo corpus loads through the same ingest path as a bureau's files."""

from __future__ import annotations

from collections import Counter

from corpora import demo_corpus_path
from matcher.io import load_capabilities, load_demands, load_partners, load_task

ROOT = demo_corpus_path()


def test_canonical_task_loads_and_meets_the_brief():
    task = load_task(ROOT)
    partners = load_partners(ROOT / "partners.jsonl")
    assert task.level == "partner"
    assert len(task.demands) >= 150 and len(task.capabilities) >= 250 and len(partners) >= 60
    assert len(task.qrels) >= 80
    assert sum(1 for d in task.demands if d.extra.get("text_en")) >= len(task.demands) / 3
    langs = Counter(c.language for c in task.capabilities)
    assert langs["ru"] >= 15 and langs["en"] > 0 and langs["zh"] > langs["en"]
    assert any(d.confidential for d in task.demands)
    grades = Counter(r for judged in task.qrels.values() for r in judged.values())
    assert grades[0] > 0 and grades[3] > 0  # near misses are judged explicitly
    ids = {p.id for p in partners}
    assert all(t in ids for judged in task.qrels.values() for t in judged)


def test_bureau_spreadsheets_load_like_the_jsonl():
    task = load_task(ROOT)
    xlsx_demands = load_demands(ROOT / "spreadsheets" / "demands.xlsx")
    assert [d.id for d in xlsx_demands] == [d.id for d in task.demands]
    assert xlsx_demands[0].title == task.demands[0].title
    assert xlsx_demands[0].industry == task.demands[0].industry
    gbk = load_capabilities(ROOT / "spreadsheets" / "capabilities_gbk.csv")
    by_id = {c.id: c for c in task.capabilities}
    assert len(gbk) >= 200 and all(c.id in by_id for c in gbk)
    assert gbk[0].partner_name == by_id[gbk[0].id].partner_name
    xlsx_caps = load_capabilities(ROOT / "spreadsheets" / "capabilities.xlsx")
    assert len(xlsx_caps) == len(task.capabilities)
