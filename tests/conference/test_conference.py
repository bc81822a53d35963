"""Resumable batch ranking, output files, and the conference command with a fake engine."""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections import Counter

import pytest
from openpyxl import load_workbook

from matcher.cli.conference import CHECKPOINT_NAME, add_conference_parser, run_conference_command
from matcher.conference.assign import AssignmentConstraints, assign
from matcher.conference.outputs import file_id, safe_cell, write_outputs
from matcher.conference.run import candidate_table, match_from_json, match_to_json, rank_batch
from matcher.conference.schedule import make_slots, schedule_meetings
from matcher.errors import InputError
from matcher.records import Demand, Partner
from matcher.retrieval.results import CapabilityHit, PartnerMatch, ScoreParts

PARTNERS = [Partner(id=f"p{j}", name=f"齐齐哈尔大学 团队{j}") for j in range(4)]


def match(demand_id: str, j: int, rank: int) -> PartnerMatch:
    parts = ScoreParts(0.5, 3.0, 0.6, 0.4, 0.3, 0.55)
    score = round(0.9 - 0.1 * rank - int(demand_id[1:]) / 1000, 4)
    hit = CapabilityHit(f"c{j}", f"p{j}", f"低温涂层 <b>成果</b> {j}", score, parts, ("涂层", "低温"))
    return PartnerMatch(f"p{j}", PARTNERS[j].name, score, rank, (hit,), ("涂层", "附着力"), {"dense": 0.5},
                        fit=score)


class FakeRanker:
    """rank_fn that records what it was asked and can fail on a chosen call."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on_call = fail_on_call

    def __call__(self, demands: list[Demand]) -> dict[str, list[PartnerMatch]]:
        self.calls.append([d.id for d in demands])
        if self.fail_on_call == len(self.calls):
            raise KeyboardInterrupt("simulated interruption")
        return {d.id: [match(d.id, (int(d.id[1:]) + r) % 4, r + 1) for r in range(4)] for d in demands}


def demands(n: int) -> list[Demand]:
    return [Demand(id=f"d{i}", title=f"需求 {i}", text="冬季涂层剥落", enterprise=f"企业{i % 3}") for i in range(n)]


def test_rank_batch_resumes_after_an_interruption(tmp_path):
    ds = demands(10)
    ckpt = tmp_path / "ckpt.jsonl"
    first = FakeRanker(fail_on_call=2)
    seen = []
    with pytest.raises(KeyboardInterrupt):
        rank_batch(first, ds, k=3, checkpoint=ckpt, progress=lambda a, b: seen.append((a, b)), chunk_size=4)
    assert seen == [(0, 10), (4, 10)]
    done_first = set(first.calls[0])
    second = FakeRanker()
    seen.clear()
    got = rank_batch(second, ds, k=3, checkpoint=ckpt, progress=lambda a, b: seen.append((a, b)), chunk_size=4)
    assert not done_first & {i for call in second.calls for i in call}
    assert [i for call in second.calls for i in call] == [f"d{i}" for i in range(4, 10)]
    assert seen == [(4, 10), (8, 10), (10, 10)]
    assert list(got) == [d.id for d in ds]
    assert all(len(ms) == 3 for ms in got.values())
    fresh = rank_batch(FakeRanker(), ds, k=3, checkpoint=None)
    assert got == fresh  # resumed results equal an uninterrupted run
    third = FakeRanker()
    assert rank_batch(third, ds, k=3, checkpoint=ckpt) == fresh and third.calls == []


def test_checkpoint_survives_a_torn_line_and_refuses_another_k(tmp_path):
    ds = demands(3)
    ckpt = tmp_path / "ckpt.jsonl"
    rank_batch(FakeRanker(), ds[:2], k=2, checkpoint=ckpt, chunk_size=1)
    with open(ckpt, "ab") as fh:
        fh.write(b'{"demand_id": "d2", "matc')  # power cut mid-write
    again = FakeRanker()
    got = rank_batch(again, ds, k=2, checkpoint=ckpt)
    assert again.calls == [["d2"]] and len(got) == 3
    assert all(json.loads(line) for line in ckpt.read_text("utf-8").splitlines())
    with pytest.raises(InputError, match="k=2"):
        rank_batch(FakeRanker(), ds, k=5, checkpoint=ckpt)


def test_match_json_round_trip():
    m = match("d1", 2, 1)
    assert match_from_json(json.loads(json.dumps(match_to_json(m)))) == m


def test_safe_cell_and_file_id():
    assert safe_cell("=1+1") == "'=1+1"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("-2") == "'-2"
    assert safe_cell(-2) == -2 and safe_cell("ok") == "ok"
    assert file_id("p1") == "p1"
    assert file_id("a/b") != file_id("a_b") and "/" not in file_id("a/b")
    assert file_id("齐齐哈尔重工").startswith("齐齐哈尔重工")


@pytest.fixture
def conference(tmp_path):
    ds = demands(6) + [
        Demand(id="d6", title='=HYPERLINK("http://x")', text="", enterprise="+Evil"),
        Demand(id="d7", title="<script>alert(1)</script>", text="", enterprise="企业1"),
        Demand(id="d8", title="孤立需求", text="", enterprise="企业2"),
    ]
    ranked = rank_batch(FakeRanker(), ds[:8], k=4)
    result = assign(
        candidate_table(ranked),
        AssignmentConstraints(capacity=3, min_per_demand=1, max_per_demand=2),
        demands=ds,
        partners=PARTNERS,
    )
    ent = {d.id: d.enterprise for d in ds}
    sched = schedule_meetings(
        [(a.demand_id, a.partner_id) for a in result.pairs], make_slots("09:00-10:00", 20), 2, enterprise_of=ent
    )
    out = tmp_path / "out"
    written = write_outputs(out, result, sched, ds, PARTNERS, ranked, title="对接会 <2025>")
    return out, written, result, sched


def test_write_outputs_files_sheets_and_csv(conference):
    out, written, result, sched = conference
    for name in ("conference.xlsx", "assignment.csv", "schedule.csv", "unmet.csv", "agendas/index.html"):
        assert (out / name).is_file() and out / name in written
    assert not list(out.rglob("*.tmp"))
    wb = load_workbook(out / "conference.xlsx")
    assert wb.sheetnames == ["assignment", "schedule", "unmet"]
    assert wb["assignment"].max_row == len(result.pairs) + 1
    assert wb["schedule"].max_row == len(sched.meetings) + 1
    raw = (out / "assignment.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert {r["demand_id"] for r in rows} == {a.demand_id for a in result.pairs}
    assert "齐齐哈尔大学" in raw.decode("utf-8-sig")
    unmet = list(csv.DictReader(io.StringIO((out / "unmet.csv").read_text("utf-8-sig"))))
    d8 = [r for r in unmet if r["demand_id"] == "d8"]
    assert d8 and d8[0]["reason"] == "no_candidates" and d8[0]["stage"] == "assignment"
    assert len(unmet) == (len(result.shortfalls) + len(result.partner_shortfalls) + len(result.suggestions)
                          + len(sched.unplaced))
    (fix,) = [r for r in unmet if r["stage"] == "suggestion"]
    assert fix["demand_id"] == "d8" and fix["reason"] == "quota" and "最少对接数" in fix["detail"]


def test_formula_cells_are_neutralised(conference):
    out, *_ = conference
    wb = load_workbook(out / "conference.xlsx")
    values = [c.value for ws in wb for row in ws.iter_rows() for c in row]
    assert '\'=HYPERLINK("http://x")' in values and "'+Evil" in values
    assert not any(isinstance(v, str) and v[:1] in "=+-@" for v in values)
    assert all(c.data_type != "f" for ws in wb for row in ws.iter_rows() for c in row)
    text = (out / "assignment.csv").read_text("utf-8-sig")
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text


def test_agendas_escape_and_print_on_a4(conference):
    out, written, result, sched = conference
    pages = {p.name: p.read_text("utf-8") for p in (out / "agendas").glob("*.html")}
    ent_page = pages[f"enterprise-{file_id('企业1')}.html"]
    assert "<script>alert" not in ent_page and "&lt;script&gt;alert(1)&lt;/script&gt;" in ent_page
    assert "&lt;b&gt;成果&lt;/b&gt;" in ent_page  # capability titles are escaped too
    assert "对接会 &lt;2025&gt;" in ent_page
    assert "size: A4" in ent_page and '"Noto Sans CJK SC"' in ent_page
    assert "page-break-inside: avoid" in ent_page
    assert "涂层" in ent_page  # shared terms shown as reasons
    first = sched.meetings[0]
    partner_page = pages[f"partner-{first.partner_id}.html"]
    assert sched.slots[first.slot].label in partner_page
    assert "孤立需求" in pages[f"enterprise-{file_id('企业2')}.html"]  # unmet demand listed
    index = pages["index.html"]
    for name in pages:
        if name != "index.html":
            assert f'href="{name}"' in index


def test_conference_command_end_to_end(tmp_path, monkeypatch):
    src = tmp_path / "demands.jsonl"
    src.write_text(
        "\n".join(
            json.dumps({"id": d.id, "title": d.title, "text": d.text, "enterprise": d.enterprise}, ensure_ascii=False)
            for d in demands(7)
        )
        + "\n",
        encoding="utf-8",
    )
    pins = tmp_path / "pins.csv"
    pins.write_text("demand_id,partner_id\nd0,p3\n", encoding="utf-8")
    excl = tmp_path / "contracts.csv"
    excl.write_text("enterprise,partner_id\n企业1,p1\n", encoding="utf-8")

    ranker = FakeRanker()

    class Engine:
        partners = {p.id: p for p in PARTNERS}

        def rank_batch_fn(self):
            return ranker

    parser = argparse.ArgumentParser()
    add_conference_parser(parser.add_subparsers(), lambda args: Engine())
    out = tmp_path / "out"
    args = parser.parse_args(
        [
            "conference",
            "--demands",
            str(src),
            "--k",
            "3",
            "--capacity",
            "2",
            "--min-per-demand",
            "1",
            "--max-per-demand",
            "2",
            "--pin",
            str(pins),
            "--exclude",
            str(excl),
            "--slots",
            "09:00-10:00",
            "--tables",
            "3",
            "--out",
            str(out),
            "--chunk-size",
            "4",
        ]
    )
    stream = io.StringIO()
    assert run_conference_command(args, lambda a: Engine(), stream=stream) == 0
    text = stream.getvalue()
    assert "objective (exact)" in text and "files written" in text
    rows = list(csv.DictReader(io.StringIO((out / "assignment.csv").read_text("utf-8-sig"))))
    got = {(r["demand_id"], r["partner_id"]) for r in rows}
    assert ("d0", "p3") in got
    assert not {(f"d{i}", "p1") for i in (1, 4)} & got  # 企业1 has a contract with p1
    assert (out / CHECKPOINT_NAME).exists() and len(ranker.calls) == 2
    args.resume = True
    assert run_conference_command(args, lambda a: Engine(), stream=io.StringIO()) == 0
    assert len(ranker.calls) == 2  # nothing ranked twice
    assert args.func(args) == 0  # the wired default runs the same way


def test_outputs_respect_the_umask(tmp_path):
    """Regression (issue 13.6): conference files were created 0600 whatever the umask."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        ds = demands(4)
        ranked = rank_batch(FakeRanker(), ds, k=4)
        result = assign(candidate_table(ranked), AssignmentConstraints(capacity=3, min_per_demand=1,
                        max_per_demand=2), demands=ds, partners=PARTNERS)
        sched = schedule_meetings([(a.demand_id, a.partner_id) for a in result.pairs],
                                  make_slots("09:00-10:00", 20), 2, enterprise_of={d.id: d.enterprise for d in ds})
        written = write_outputs(tmp_path / "out", result, sched, ds, PARTNERS, ranked)
    finally:
        os.umask(old)
    assert written and {oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {oct(0o644)}


def _crowded_plan():
    """Eight demands of four enterprises who all want p0 first; p0 takes two meetings."""
    ds = demands(8)
    ranked = {d.id: [match(d.id, j, r + 1) for r, j in enumerate((0, 1, 2, 3))] for d in ds}
    result = assign(candidate_table(ranked), AssignmentConstraints(capacity=2, min_per_demand=1, max_per_demand=2),
                    demands=ds, partners=PARTNERS)
    sched = schedule_meetings([(a.demand_id, a.partner_id) for a in result.pairs], make_slots("09:00-10:00", 20), 2,
                              enterprise_of={d.id: d.enterprise for d in ds})
    return ds, result, sched


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_summary_speaks_a_clerks_language(lang):
    """Regression (issue 13.9): "full partners still wanted 67 P019 (112)" and 目标值/贪心基线/差距."""
    from matcher.conference.summary import plain_summary

    ds, result, sched = _crowded_plan()
    lines = plain_summary(result, sched, ds, PARTNERS, lang=lang)
    text = "\n".join(lines)
    assert result.binding_partners and PARTNERS[0].name in text
    wanted = len(next(b for b in result.binding_partners if b.partner_id == "p0").wanted_by)
    per_ent = Counter(ds_.enterprise for ds_ in ds for p in result.pairs if p.demand_id == ds_.id)
    if lang == "zh":
        assert lines[0].startswith(f"共安排 {len(result.pairs)} 场洽谈，涉及 {len(per_ent)} 家企业")
        assert f"另有 {wanted} 项需求想约" in text and "先到先得" in text and "约满" in text
        for jargon in ("目标值", "贪心基线", "差距", "objective", "binding"):
            assert jargon not in text
    else:
        assert lines[0].startswith(f"{len(result.pairs)} meetings for 8 demands from {len(per_ent)} enterprises")
        assert f"{wanted} more requests" in text and "first come, first served" in text
        assert "fully booked" in text and "objective" not in text and "still wanted" not in text
    assert any(str(len(sched.meetings)) in line for line in lines[-1:])


def test_the_command_prints_the_plain_summary_before_the_details(tmp_path):
    import argparse

    from matcher.cli.conference import add_conference_parser, run_conference_command

    ds, _, _ = _crowded_plan()
    src = tmp_path / "d.jsonl"
    src.write_text("".join(json.dumps({"id": d.id, "title": d.title, "text": d.text, "enterprise": d.enterprise},
                                      ensure_ascii=False) + "\n" for d in ds), encoding="utf-8")

    class Engine:
        partners = {p.id: p for p in PARTNERS}

        def rank_batch_fn(self):
            return FakeRanker()

    parser = argparse.ArgumentParser()
    add_conference_parser(parser.add_subparsers(), lambda args: Engine())
    args = parser.parse_args(["conference", "--demands", str(src), "--out", str(tmp_path / "out"), "--lang", "zh"])
    stream = io.StringIO()
    assert run_conference_command(args, lambda a: Engine(), stream=stream) == 0
    text = stream.getvalue()
    assert text.startswith("共安排 ")
    assert text.index("先到先得") < text.index("详细数据：") < text.index("files written")


def test_the_command_speaks_russian(tmp_path):
    from matcher.cli.conference import add_conference_parser, run_conference_command

    ds = demands(8)
    src = tmp_path / "d.jsonl"
    src.write_text("".join(json.dumps({"id": d.id, "title": d.title, "text": d.text, "enterprise": d.enterprise},
                                      ensure_ascii=False) + "\n" for d in ds), encoding="utf-8")

    class Engine:
        partners = {p.id: p for p in PARTNERS}

        def rank_batch_fn(self):
            return FakeRanker()

    parser = argparse.ArgumentParser()
    add_conference_parser(parser.add_subparsers(), lambda args: Engine())
    # two candidates each and one place per partner: the minimum of 2 cannot be met, so there is a diagnosis
    args = parser.parse_args(["conference", "--demands", str(src), "--out", str(tmp_path / "out"), "--lang", "ru",
                              "--k", "2", "--capacity", "1", "--min-per-demand", "2", "--max-per-demand", "2"])
    stream = io.StringIO()
    assert run_conference_command(args, lambda a: Engine(), stream=stream) == 0
    text = stream.getvalue()
    plain, detail = text.split("\nПодробно:\n")
    assert plain.startswith("4 встречи по 8 запросам от 3 предприятий")
    assert "кто первым пришёл" in plain and "meetings" not in plain
    assert "to meet every minimum  увеличьте число встреч партнёра" in detail


def test_pdf_agendas_embed_chinese_fonts_and_extract_back(tmp_path):
    pypdf = pytest.importorskip("pypdf")
    pytest.importorskip("weasyprint")
    ds = demands(4)
    ranked = rank_batch(FakeRanker(), ds, k=3)
    result = assign(candidate_table(ranked), AssignmentConstraints(capacity=2, max_per_demand=2),
                    demands=ds, partners=PARTNERS)
    sched = schedule_meetings([(a.demand_id, a.partner_id) for a in result.pairs], make_slots("09:00-10:00", 20), 2,
                              enterprise_of={d.id: d.enterprise for d in ds})
    out = tmp_path / "out"
    written = write_outputs(out, result, sched, ds, PARTNERS, ranked, title="技术需求对接会", pdf=True)
    pdfs = sorted(p.name for p in written if p.suffix == ".pdf")
    ents = {d.enterprise for d in ds if any(a.demand_id == d.id for a in result.pairs)}
    partners = {a.partner_id for a in result.pairs}
    assert "all.pdf" in pdfs
    assert sum(n.startswith("enterprise-") for n in pdfs) == len(ents)
    assert sum(n.startswith("partner-") for n in pdfs) == len(partners)
    combined = pypdf.PdfReader(out / "agendas" / "all.pdf")
    assert len(combined.pages) >= len(ents) + len(partners)
    first = pypdf.PdfReader(next(p for p in written if p.name.startswith("partner-") and p.suffix == ".pdf"))
    box = first.pages[0].mediabox
    assert (round(float(box.width) / 72 * 25.4), round(float(box.height) / 72 * 25.4)) == (210, 297)  # A4
    text = "".join(page.extract_text() for page in combined.pages)
    assert "技术需求对接会" in text and "专家/院所日程" in text and "企业日程" in text
    fonts = set()
    for page in combined.pages:
        for f in (page["/Resources"].get("/Font") or {}).values():
            obj = f.get_object()
            desc = obj.get("/FontDescriptor") or obj["/DescendantFonts"][0].get_object().get("/FontDescriptor")
            desc = desc.get_object()
            assert any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3"))  # embedded, not referenced
            fonts.add(str(obj.get("/BaseFont")))
    assert any("CJK" in f for f in fonts), fonts


def test_pin_file_keeps_only_confirmed_rows_and_quotas_come_from_a_column(tmp_path):
    from matcher.cli.conference import _pairs, _quotas

    prev = tmp_path / "assignment.csv"
    prev.write_text("demand_id,partner_id,score,confirmed\nd1,p1,0.9,是\nd2,p2,0.8,\nd3,p3,0.7,yes\n",
                    encoding="utf-8-sig")
    assert _pairs(prev) == [("d1", "p1"), ("d3", "p3")]
    plain = tmp_path / "pins.csv"
    plain.write_text("demand_id,partner_id\nd1,p1\nd2,p2\n", encoding="utf-8")
    assert _pairs(plain) == [("d1", "p1"), ("d2", "p2")]
    ds = [Demand("d1", "a", "", extra={"meetings": "3"}), Demand("d2", "b", ""),
          Demand("d3", "c", "", extra={"meetings": "1.0"})]
    assert _quotas(ds, "meetings") == {"d1": 3, "d3": 1}
    with pytest.raises(InputError, match="whole number") as info:
        _quotas([Demand("d1", "a", "", extra={"meetings": "two"})], "meetings")
    assert info.value.row == 1 and info.value.field == "meetings"


def test_docs_counts_a_runs_meetings_by_judgement(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "docs" / "conference_judged.py"
    spec = importlib.util.spec_from_file_location("conference_judged", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "a.csv").write_text("\ufeffdemand_id,partner_id,score\nD1,P1,0.9\nD1,P2,0.4\nD2,P1,0.5\nD2,P3,0.2\n",
                                    encoding="utf-8")
    (tmp_path / "q.tsv").write_text("demand_id\ttarget_id\trelevance\nD1\tP1\t3\nD1\tP2\t1\nD2\tP1\t0\n",
                                    encoding="utf-8")
    assert module.main([str(tmp_path / "a.csv"), str(tmp_path / "q.tsv"), "D1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "meetings 4: relevant 1, near miss 1, irrelevant 1, unjudged 1",
        "D1: P1 fit 0.90 grade 3; P2 fit 0.40 grade 1"]
