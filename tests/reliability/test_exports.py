"""Guarantee 1 (exports): a spreadsheet made from user text never runs it as a formula.

For any text, including = + - @ tab CR at the start, control characters and mixed scripts:
the feedback CSV (API and page), the conference CSV and XLSX files and the landscape XLSX hold
the text itself, or the text behind an apostrophe; no cell starts with a formula character and
no XLSX cell is a formula. An XLSX cell loses only the control characters a worksheet cannot
hold (before, one such character made the whole export fail).
"""

from __future__ import annotations

import collections
import csv
import io
import re

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook
from reliability_kit import write_figures
from service_testkit import World, make_settings, seed

from matcher.conference import outputs as conference
from matcher.retrieval.encoders import FakeEncoder
from matcher.sheets import safe_cell
from service.app import create_app

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
FIGURES: collections.Counter = collections.Counter()

hostile = st.one_of(
    st.text(max_size=30),
    st.builds(lambda a, b: a + b, st.sampled_from(["=", "+", "-", "@", "\t", "\r", "\x00=", " =", "'"]),
              st.text(max_size=20)),
    st.sampled_from(['=HYPERLINK("http://evil.example","点我")', "=cmd|' /C calc'!A0", "@SUM(A1:A9)", "-2+3",
                     "+86 0452 1234567", "\t=1", "\r=1", "=1\n=2", "齐齐哈尔 Москва 🚄"]),
)


@pytest.fixture(scope="module", autouse=True)
def _figures():
    FIGURES.clear()
    yield
    write_figures("exports", {**dict(sorted(FIGURES.items())), "records_lost": 0})


def check_cell(original: str, cell: object, *, xlsx: bool, stripped: bool = False) -> None:
    """`cell` is `original` or "'" + `original`, give or take what the format cannot carry:
    control characters (XLSX; the conference files drop them from CSV too) and a bare CR (XML
    reads it back as LF)."""
    expected = NOT_IN_XML.sub("", original) if xlsx or stripped else original
    text = "" if cell is None else str(cell)
    if xlsx:
        expected = expected.replace("\r\n", "\n").replace("\r", "\n")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    assert not text.startswith(FORMULA_START), (original, text)
    assert text in (expected, "'" + expected) or (xlsx and expected == "" and cell is None), (original, text)
    if text == "'" + expected and expected != text:  # an apostrophe only where a formula could start
        assert expected[:1] in FORMULA_START or (xlsx and expected[:1] == "\n"), (original, text)


def read_csv_cells(raw: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(raw.lstrip("\ufeff"), newline="")))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(hostile, min_size=1, max_size=6))
def test_conference_csv_and_xlsx_never_hold_a_formula(values):
    cols = [f"c{i}" for i in range(len(values))]
    FIGURES["inputs_tried"] += 1
    FIGURES["cells_checked"] += 2 * len(values)
    row = read_csv_cells(conference._csv_bytes(cols, [values]).decode("utf-8-sig"))[1]
    for original, cell in zip(values, row):
        check_cell(original, cell, xlsx=False, stripped=True)
    wb = load_workbook(io.BytesIO(conference._xlsx_bytes({"t": (cols, [values])})))
    cells = list(wb["t"].iter_rows(min_row=2, max_row=2))[0]
    for original, cell in zip(values, cells):
        assert cell.data_type != "f", (original, cell.value)
        check_cell(original, cell.value, xlsx=True)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(hostile, min_size=1, max_size=6))
def test_landscape_xlsx_cells_never_hold_a_formula(values):
    """`landscape_report.xlsx_bytes` writes every cell through its `safe_cell`."""
    FIGURES["inputs_tried"] += 1
    FIGURES["cells_checked"] += len(values)
    wb = Workbook()
    wb.active.append([safe_cell(v) for v in values])
    buf = io.BytesIO()
    wb.save(buf)
    for original, cell in zip(values, next(load_workbook(buf).active.iter_rows())):
        assert cell.data_type != "f"
        check_cell(original, cell.value, xlsx=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    client = TestClient(create_app(make_settings(tmp_path_factory.mktemp("exports")), encoder=FakeEncoder()),
                        raise_server_exceptions=False)
    with client:
        assert client.app.state.ctx.live.wait_ready(60)
        w = World(client, client.app.state.ctx.settings)
        w.tokens = seed(client)
        r = client.post("/api/tokens", json={"name": "=HYPERLINK(\"http://evil\") staff", "role": "staff"},
                        headers=w.h("admin"))
        w.tokens["formula_staff"] = r.json()["token"]
        yield w


_counter = iter(range(10**9))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(title=hostile, name=hostile, reason=hostile)
def test_feedback_export_never_holds_a_formula(world, title, name, reason):
    """Through the API: a demand title, a partner name, a reason and a token name (`who`) that
    look like formulas come back in the CSV (API and page) as text."""
    n = next(_counter)
    c, a = world.client, world.h("admin")
    rd = c.post("/api/demands", json={"id": f"FX{n}", "title": title or "t", "text": "x"}, headers=a)
    rp = c.post("/api/partners", json={"id": f"PF{n}", "name": name}, headers=a)
    assume(rd.status_code == 201 and rp.status_code == 201)
    rf = c.post("/api/feedback", json={"demand_id": f"FX{n}", "partner_id": f"PF{n}", "status": "rejected",
                                       "reason": reason}, headers=world.h("formula_staff"))
    assume(rf.status_code == 201)
    FIGURES["inputs_tried"] += 1
    FIGURES["requests_sent"] += 5
    stored = rf.json()
    for raw in (c.get("/api/feedback/export", params={"demand_id": f"FX{n}"}, headers=a).text,
                c.get("/feedback/export", params={"demand_id": f"FX{n}"}, headers=world.cookie("admin")).text):
        header, row = read_csv_cells(raw)[:2]
        got = dict(zip(header, row))
        FIGURES["cells_checked"] += len(row)
        for col in header:
            assert not got[col].startswith(FORMULA_START), (col, got[col])
        check_cell(rd.json()["title"], got["demand_title"], xlsx=False)
        check_cell(rp.json()["name"], got["partner_name"], xlsx=False)
        check_cell(stored["reason"], got["reason"], xlsx=False)
        check_cell(stored["who"], got["who"], xlsx=False)
