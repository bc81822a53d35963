"""Tests for matcher.io.ingest: tiny inline files only, written into tmp_path."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import string
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher.errors import InputError, InputErrors, UnknownNameError
from matcher.io import (
    Task,
    load_capabilities,
    load_demands,
    load_partners,
    load_qrels,
    load_task,
    parse_demands,
    partner_id_for,
    read_table,
    read_table_bytes,
)
from matcher.records import Capability, Demand


def write_csv(path: Path, rows: list[list[str]], *, encoding: str = "utf-8",
              delimiter: str = ",") -> Path:
    buf = io.StringIO(newline="")
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, rows: list[list[object]], *, title: str | None = None) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "需求"
    if title:
        ws.append([title])
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(rows[0]))
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def write_jsonl(path: Path, records: list[dict], *, gz: bool = False) -> Path:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


ZH_HEADER = ["需求编号", "需求名称", "需求描述", "所属行业", "所在县区", "企业名称", "联系人",
             "联系电话", "是否保密", "发布日期", "备注"]


# ---------------------------------------------------------------- formats and headers


def test_chinese_headers_xlsx_with_title_row(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "需求.xlsx", [
        ZH_HEADER,
        ["007", "货车涂层低温附着力", "-40 °C 下涂层脱落", "轨道交通装备", "富拉尔基区",
         "中车齐车", "张三", 13800000000, "否", dt.datetime(2024, 3, 1), "急"],
        [8, "玉米蛋白提取", "提高玉米蛋白得率", "绿色食品", "龙沙区", "某粮食公司", "李四",
         "0452-1234567", "是", "2024-03-02", None],
    ], title="齐齐哈尔市企业技术需求征集表")
    demands = load_demands(path)
    assert [d.id for d in demands] == ["007", "8"]
    d = demands[0]
    assert isinstance(d, Demand)
    assert (d.title, d.text, d.industry, d.region, d.enterprise) == (
        "货车涂层低温附着力", "-40 °C 下涂层脱落", "轨道交通装备", "富拉尔基区", "中车齐车")
    assert d.contact == "张三 13800000000"
    assert d.confidential is False and demands[1].confidential is True
    assert d.date == "2024-03-01"
    assert d.extra == {"备注": "急"}
    assert demands[1].extra == {}
    # the title row above the header counts: the first data row is spreadsheet row 3
    assert read_table(path).index.tolist() == [3, 4]


def test_xlsx_numbers_and_zero_padded_format(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["编号", "标题", "内容"])
    ws.append([7, "a", 1.5])
    ws.append([7.0, "b", "x"])
    ws.append(["007", "c", "y"])
    ws.cell(row=5, column=1, value=8).number_format = "000"
    ws.cell(row=5, column=2, value="d")
    ws.cell(row=5, column=3, value="z")
    wb.save(tmp_path / "n.xlsx")
    df = read_table(tmp_path / "n.xlsx")
    assert df["编号"].tolist() == ["7", "7", "007", "008"]
    assert df["内容"].tolist()[0] == "1.5"


def test_xlsx_sheet_selection(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["说明"])
    ws = wb.create_sheet("数据")
    ws.append(["ID", "title", "text"])
    ws.append(["1", "t", "x"])
    wb.save(tmp_path / "s.xlsx")
    assert load_demands(tmp_path / "s.xlsx", sheet="数据")[0].id == "1"
    assert load_demands(tmp_path / "s.xlsx", sheet=1)[0].id == "1"
    with pytest.raises(InputError, match="no sheet named 'x'; sheets: Sheet, 数据"):
        load_demands(tmp_path / "s.xlsx", sheet="x")


def test_gbk_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "gbk.csv", [
        ["序号", "需求标题", "需求内容", "行业"],
        ["1", "奶粉喷雾干燥节能", "降低喷雾干燥塔能耗", "乳业"],
        ["2", "秸秆成型燃料", "提高颗粒密度", "新能源"],
    ], encoding="gbk")
    demands = load_demands(path)
    assert [(d.id, d.title, d.industry) for d in demands] == [
        ("1", "奶粉喷雾干燥节能", "乳业"), ("2", "秸秆成型燃料", "新能源")]


def test_utf8_bom_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bom.csv", [["需求编号", "需求名称", "需求描述"],
                                            ["A-01", "风电叶片防冰", "低温结冰"]],
                     encoding="utf-8-sig")
    (d,) = load_demands(path)
    assert (d.id, d.title, d.text) == ("A-01", "风电叶片防冰", "低温结冰")


def test_english_headers_and_variants(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "en.csv", [
        [" ID ", "Title", "Description", "Industry", "County", "Company", "Contact Person",
         "Phone", "Confidential", "Date", "Language", "Budget"],
        ["d1", "Cold-start batteries", "Li-ion at -30 C", "energy", "Longsha", "ACME", "Li",
         "123", "no", "2024-01-01", "English", "1e6"],
    ])
    (d,) = load_demands(path)
    assert (d.id, d.text, d.region, d.enterprise, d.contact, d.language) == (
        "d1", "Li-ion at -30 C", "Longsha", "ACME", "Li 123", "en")
    assert d.extra == {"Budget": "1e6"}


def test_header_notes_and_required_markers(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h.csv", [
        ["*需求编号", "需求名称：", "需求描述（500字以内）"], ["1", "t", "x"]])
    assert load_demands(path)[0].text == "x"


def test_txt_sniffs_tab_and_ids_stay_strings(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.txt", [["id", "title", "text"], ["007", "a, b", "c, d"],
                                          ["0.10", "e", "f"]], delimiter="\t")
    assert [d.id for d in load_demands(path)] == ["007", "0.10"]
    assert load_demands(path)[0].title == "a, b"


def test_json_list_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text(json.dumps([{"id": 7, "title": "t", "text": "x",
                                                  "tags": ["a", "b"], "ok": True}]))
    (d,) = load_demands(tmp_path / "d.json")
    assert d.id == "7" and d.extra == {"tags": '["a","b"]', "ok": "true"}
    write_jsonl(tmp_path / "d.jsonl", [{"id": "007", "title": "", "text": "only text"}])
    assert load_demands(tmp_path / "d.jsonl")[0].id == "007"


def test_explicit_mapping(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [["Ticket", "Summary", "Problem", "描述"],
                                          ["T1", "s", "the problem", "other"]])
    (d,) = load_demands(path, mapping={"Ticket": "id", "Summary": "title", "Problem": "text"})
    assert (d.id, d.title, d.text) == ("T1", "s", "the problem")
    assert d.extra == {"描述": "other"}  # an explicit text mapping wins over synonyms
    with pytest.raises(InputError) as e:
        load_demands(path, mapping={"Nope": "text"})
    assert "Nope" in str(e.value) and "'Ticket'" in str(e.value) and "m.csv" in str(e.value)
    with pytest.raises(UnknownNameError) as e2:
        load_demands(path, mapping={"Problem": "body"})
    assert "body" in str(e2.value) and "text" in str(e2.value) and "enterprise" in str(e2.value)


def test_several_text_columns_are_joined(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [["编号", "标题", "需求描述", "问题描述"],
                                          ["1", "t", "主体", "细节"], ["2", "t", "", "只有细节"]])
    d1, d2 = load_demands(path)
    assert d1.text == "主体\n问题描述：细节"
    assert d2.text == "问题描述：只有细节"


def test_read_table_bytes_for_uploads(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "u.xlsx", [["编号", "需求名称", "需求描述"], ["1", "t", "x"]])
    df = read_table_bytes(path.read_bytes(), "upload.XLSX")
    assert parse_demands(df, source="upload.XLSX")[0].text == "x"
    df2 = read_table_bytes("编号,需求名称,需求描述\n1,t,x\n".encode("gb18030"), "u.csv")
    assert df2.to_dict("records") == [{"编号": "1", "需求名称": "t", "需求描述": "x"}]
    with pytest.raises(InputError, match="unsupported file type '.xls'.*save it as .xlsx"):
        read_table_bytes(b"x", "old.xls")


def test_parse_plain_dataframe_uses_spreadsheet_rows() -> None:
    import pandas as pd

    df = pd.DataFrame({"id": ["1", "1"], "title": ["a", "b"], "text": ["x", "y"]})
    with pytest.raises(InputErrors) as e:
        parse_demands(df, source="upload.csv")
    assert e.value.errors[0].row == 3 and "row 2" in str(e.value)


# ---------------------------------------------------------------- errors


def test_missing_required_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [["编号", "需求名称"], ["1", "t"]])
    with pytest.raises(InputError) as e:
        load_demands(path)
    assert e.value.file == str(path) and e.value.field == "text"
    assert "需求描述" in str(e.value) and "mapping=" in str(e.value)


def test_demand_id_is_never_invented(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [["需求名称", "需求描述"], ["t", "x"]])
    with pytest.raises(InputError) as e:
        load_demands(path)
    assert e.value.field == "id"
    with_seq = write_csv(tmp_path / "s.csv", [["序号", "需求名称", "需求描述"], ["1", "t", "x"]])
    assert load_demands(with_seq)[0].id == "1"


def test_row_errors_name_file_row_and_field(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", [
        ["需求编号", "需求名称", "需求描述", "是否保密"],
        ["1", "ok", "fine", "否"],
        ["2", "", "", "否"],            # row 3: empty title and text
        ["1", "dup", "x", "否"],         # row 4: duplicate of row 2
        ["4", "t", "x" * 20_001, "否"],  # row 5: too long
        ["5", "t", "x", "maybe"],        # row 6: bad confidential
        ["", "t", "x", "是"],            # row 7: empty id
    ])
    with pytest.raises(InputErrors) as e:
        load_demands(path)
    got = [(err.row, err.field) for err in e.value.errors]
    assert got == [(3, "需求描述"), (4, "需求编号"), (5, "需求描述"), (6, "是否保密"),
                   (7, "需求编号")]
    assert all(err.file == str(path) for err in e.value.errors)
    msg = str(e.value)
    assert "bad.csv" in msg and "row 4" in msg and "also in row 2" in msg
    assert "20,001 characters" in msg and "'maybe'" in msg


def test_all_or_nothing(tmp_path: Path) -> None:
    rows = [["id", "title", "text"]] + [[str(i), f"t{i}", f"x{i}"] for i in range(5)]
    rows[4] = ["3", "", ""]
    path = write_csv(tmp_path / "five.csv", rows)
    with pytest.raises(InputErrors) as e:
        load_demands(path)
    assert len(e.value.errors) == 1 and e.value.errors[0].row == 5


def test_error_cap(tmp_path: Path) -> None:
    rows = [["id", "title", "text"]] + [[str(i), "", ""] for i in range(250)]
    with pytest.raises(InputErrors) as e:
        load_demands(write_csv(tmp_path / "many.csv", rows))
    assert len(e.value.errors) == 100
    assert "151 more problem(s) not listed" in str(e.value.errors[-1])


def test_control_characters_are_stripped(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes('id,title,text\n1,"a\x00b\x1b","line1\r\nline2\x07\tend\x85"\n'.encode())
    (d,) = load_demands(path)
    assert (d.title, d.text) == ("ab", "line1\nline2\tend")
    write_jsonl(tmp_path / "c.jsonl", [{"id": "1", "title": "a\u0001b", "text": "x\u0080"}])
    (d,) = load_demands(tmp_path / "c.jsonl")
    assert (d.title, d.text) == ("ab", "x")


def test_a_row_of_only_a_stray_bom_is_blank(tmp_path: Path) -> None:
    """Found by the hostile-input property test: the row used to count as filled, then its
    cell was cleaned to nothing and the row rejected for an empty id."""
    rows = [["id", "title", "text"], ["D1", "涂层", "低温防腐"], ["\ufeff", "", ""]]
    assert [d.id for d in load_demands(write_xlsx(tmp_path / "b.xlsx", rows))] == ["D1"]
    rows.append(["", "\x07", "\ufeff"])  # a worksheet cannot hold \x07; a CSV can
    assert [d.id for d in load_demands(write_csv(tmp_path / "b.csv", rows))] == ["D1"]


def test_undecodable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"id,title,text\n1,t,ok\n2,t,\xff\xfe bad\n")
    with pytest.raises(InputError) as e:
        load_demands(path)
    msg = str(e.value)
    assert "bad.csv" in msg and "line 3" in msg and "byte offset 25" in msg and "0xFF" in msg
    assert e.value.row == 3


def test_corrupt_utf8_is_not_read_as_gbk(tmp_path: Path) -> None:
    good = "编号,需求名称,需求描述\n1,寒区光伏运维积雪清除,光伏组件积雪\n".encode()
    path = tmp_path / "u.csv"
    path.write_bytes(good + b"2,t,\xe4\xb8 broken\n")
    with pytest.raises(InputError, match=rf"line 3.*byte offset {len(good) + 4}"):
        load_demands(path)


def test_corrupt_and_non_object_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "1", "title": "t", "text": "x"}\n\n{"id": "2", "title": \n'
                    '[1, 2]\n"s"\n')
    with pytest.raises(InputErrors) as e:
        load_demands(path)
    assert [(err.row, err.file) for err in e.value.errors] == [(3, str(path)), (4, str(path)),
                                                               (5, str(path))]
    assert "invalid JSON" in str(e.value.errors[0]) and "a list" in str(e.value.errors[1])


@pytest.mark.parametrize("name,content,pattern", [
    ("missing.csv", None, "file not found"),
    ("empty.csv", b"", "empty"),
    ("blank.xlsx", None, "empty"),
    ("d.docx", b"x", "unsupported file type '.docx'"),
    ("broken.xlsx", b"not a zip", "not a valid .xlsx"),
    ("broken.jsonl.gz", b"not gzip", "not a valid gzip"),
    ("only_header.csv", b"id,title,text\n", "no data rows"),
])
def test_file_level_errors(tmp_path: Path, name: str, content: bytes | None,
                           pattern: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    elif name == "blank.xlsx":
        openpyxl.Workbook().save(path)
    with pytest.raises(InputError, match=pattern) as e:
        load_demands(path)
    assert e.value.file == str(path)


def test_unclosed_quote_is_reported_not_swallowed(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('id,title,text\n1,a,b\n2,"never closed\n3,c,d\n')
    with pytest.raises(InputError, match="never closed") as e:
        load_demands(path)
    assert e.value.row == 3 and e.value.file == str(path)


def test_too_many_cells_in_csv_row(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("id,title,text\n1,t,x\n2,t,x,y\n")
    with pytest.raises(InputErrors) as e:
        load_demands(path)
    assert e.value.errors[0].row == 3 and "not quoted" in str(e.value)


# ---------------------------------------------------------------- capabilities, partners


def test_bureau_capability_sheet(tmp_path: Path) -> None:
    header = ["单位名称", "团队", "研究方向", "成果简介", "专利", "行业"]
    rows = [
        ["齐齐哈尔大学", "玉米深加工团队", "玉米蛋白提取", "酶法提取玉米醇溶蛋白", "ZL2020-1",
         "食品、化工"],
        ["齐齐哈尔大学", "玉米深加工团队", "燃料乙醇副产物", "DDGS 高值化", "", "食品"],
        ["黑龙江省农科院齐齐哈尔分院", "", "寒地大豆育种", "", "", ""],
    ]
    path = write_xlsx(tmp_path / "能力.xlsx", [header, *rows])
    caps = load_capabilities(path)
    assert all(isinstance(c, Capability) for c in caps)
    c = caps[0]
    assert c.partner_name == "齐齐哈尔大学 / 玉米深加工团队"
    assert c.partner_id == partner_id_for("齐齐哈尔大学 / 玉米深加工团队") == caps[1].partner_id
    assert c.partner_id.startswith("p-") and len(c.partner_id) == 12
    assert c.title == "玉米蛋白提取"
    assert c.text == "酶法提取玉米醇溶蛋白\n专利：ZL2020-1"
    assert c.kind == "research line" and c.industries == ("食品", "化工")
    assert caps[2].partner_name == "黑龙江省农科院齐齐哈尔分院" and caps[2].text == ""
    # ids are content-derived (the sheet has none) and stable across loads
    assert [x.id for x in load_capabilities(path)] == [x.id for x in caps]
    assert len({x.id for x in caps}) == 3


def test_capabilities_jsonl_and_derived_partner_id(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl.gz", [
        {"id": "c1", "partner_id": "u1", "partner_name": "Uni", "title": "t", "text": "x",
         "industries": ["a", "b"], "year": 2016},
        {"id": "c2", "partner_name": " Lab  X", "title": "", "text": "y"},
    ], gz=True)
    c1, c2 = load_capabilities(path)
    assert c1.industries == ("a", "b") and c1.extra == {"year": "2016"}
    assert c2.partner_id == partner_id_for("lab x")


def test_capability_errors(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", [["成果编号", "单位名称", "成果名称", "成果简介"],
                                          ["1", "", "t", "x"], ["2", "U", "", ""]])
    with pytest.raises(InputErrors) as e:
        load_capabilities(path)
    assert [(x.row, x.field) for x in e.value.errors] == [(2, "单位名称"), (3, "成果简介")]
    with pytest.raises(InputError, match="no partner_name column"):
        load_capabilities(write_csv(tmp_path / "n.csv", [["编号", "标题"], ["1", "t"]]))


def test_partners(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [["单位名称", "类型", "所在地区"],
                                          ["齐齐哈尔大学", "高校", "建华区"],
                                          ["某研究院", "合作社", ""]])
    p1, p2 = load_partners(path)
    assert (p1.id, p1.type, p1.region) == (partner_id_for("齐齐哈尔大学"), "university", "建华区")
    assert p2.type == "other" and p2.extra == {"类型": "合作社"}
    # institution first even when the team column comes first; ids join with capabilities
    teams = write_csv(tmp_path / "t.csv", [["团队", "依托单位"], ["大豆团队", "齐齐哈尔大学"]])
    (p,) = load_partners(teams)
    assert (p.name, p.type) == ("齐齐哈尔大学 / 大豆团队", "team")
    caps = write_csv(tmp_path / "c.csv", [["依托单位", "团队", "研究方向"],
                                          ["齐齐哈尔大学", "大豆团队", "寒地大豆育种"]])
    assert load_capabilities(caps)[0].partner_id == p.id


# ---------------------------------------------------------------- qrels and tasks


def make_task(root: Path, *, gz: bool = True, task_json: bool = True) -> Path:
    root.mkdir()
    write_jsonl(root / "demands.jsonl", [{"id": "q1", "title": "", "text": "需求一"},
                                         {"id": "q2", "title": "t", "text": "需求二"}])
    write_jsonl(root / ("capabilities.jsonl.gz" if gz else "capabilities.jsonl"), [
        {"id": "c1", "partner_id": "p1", "partner_name": "P1", "title": "", "text": "one"},
        {"id": "c2", "partner_id": "p2", "partner_name": "P2", "title": "", "text": "two"},
    ], gz=gz)
    (root / "qrels.tsv").write_text("demand_id\ttarget_id\trelevance\nq1\tp1\t1\nq2\tp2\t2\n")
    if task_json:
        (root / "task.json").write_text(json.dumps(
            {"name": "tiny", "level": "partner", "language": "zh->en", "metric": "MRR"}))
    return root


def test_load_task(tmp_path: Path) -> None:
    task = load_task(make_task(tmp_path / "tiny"))
    assert isinstance(task, Task)
    assert (task.name, task.level, task.language, task.metric) == ("tiny", "partner", "zh->en",
                                                                   "MRR")
    assert [d.id for d in task.demands] == ["q1", "q2"]
    assert [c.id for c in task.capabilities] == ["c1", "c2"]
    assert task.qrels == {"q1": {"p1": 1}, "q2": {"p2": 2}}
    assert task.demands[0].language == "zh" and task.capabilities[0].language == "en"
    assert task.path == tmp_path / "tiny"


def test_load_task_without_task_json_or_capabilities(tmp_path: Path) -> None:
    root = make_task(tmp_path / "folder", gz=False, task_json=False)
    with pytest.raises(InputErrors, match="it is a partner id"):
        load_task(root)  # without task.json the level is "capability"
    (root / "qrels.tsv").write_text("demand_id\ttarget_id\trelevance\nq1\tc2\t1\n")
    task = load_task(root)
    assert (task.name, task.level, task.qrels) == ("folder", "capability", {"q1": {"c2": 1}})
    topics = tmp_path / "topics"
    topics.mkdir()
    write_jsonl(topics / "demands.jsonl.gz", [{"id": "t1", "title": "a", "text": "b"}], gz=True)
    (topics / "task.json").write_text('{"name": "topics", "level": null}')
    task = load_task(topics)
    assert task.capabilities == [] and task.qrels == {} and task.level == "capability"


def test_task_qrels_with_unknown_ids(tmp_path: Path) -> None:
    root = make_task(tmp_path / "tiny")
    (root / "qrels.tsv").write_text(
        "demand_id\ttarget_id\trelevance\nq1\tp1\t1\nq9\tp1\t1\nq2\tp7\t1\n")
    with pytest.raises(InputErrors) as e:
        load_task(root)
    assert [(x.row, x.field) for x in e.value.errors] == [(3, "demand_id"), (4, "target_id")]
    assert "qrels.tsv" in str(e.value) and "q9" in str(e.value)


def test_load_qrels_errors(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_text("demand_id\ttarget_id\trelevance\na\tb\t1\na\tc\tx\na\tb\t1\nonly\n")
    with pytest.raises(InputErrors) as e:
        load_qrels(path)
    assert [x.row for x in e.value.errors] == [3, 4, 5]
    path.write_text("query\tdoc\n")
    with pytest.raises(InputError, match="header"):
        load_qrels(path)


# ---------------------------------------------------------------- property test

_CELL = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=string.printable + "\x00\x01\x07\x0b\x1b\x7f\x85\u2028\ufeff", max_size=20),
    st.sampled_from(["", " ", '=HYPERLINK("http://x","y")', "=1+1", "@SUM(A1)", "007", "1.0",
                     "齐齐哈尔 Ρωσία Москва", "是", "否", '"', "a,b", "x\r\ny", "\t"]),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_CELL, min_size=3, max_size=5), min_size=0, max_size=6),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
def test_random_cells_load_or_raise_input_error(tmp_path: Path, rows: list[list[str]],
                                                encoding: str) -> None:
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows([["id", "title", "text", "是否保密", "备注"], *rows])
    path = tmp_path / "random.csv"
    path.write_bytes(buf.getvalue().encode(encoding, errors="replace"))
    try:
        demands = load_demands(path)
    except InputError:
        return
    for d in demands:
        assert d.id and (d.title or d.text)
        for value in (d.id, d.title, d.text, *d.extra.values()):
            assert not any(ord(ch) < 32 and ch not in "\t\n" for ch in value)


def test_demand_rows_with_no_description_bad_dates_or_unknown_places_are_refused_by_row_and_field(tmp_path):
    """Regression (issue 13.3): these were accepted and sorted to the top of the staff list."""
    from matcher.errors import InputErrors
    from matcher.io.ingest import load_demands

    path = tmp_path / "需求.csv"
    path.write_text(
        "需求编号,需求名称,需求描述,所属行业,所在县区,发布日期\n"
        "D1,好的,描述,轨道交通,讷河,2026年3月5日\n"
        "D2,空描述,,乳业,龙沙区,2026/3/5\n"
        "D3,日期,描述,乳业,龙沙区,not-a-date\n"
        "D4,日期,描述,乳业,龙沙区,明年三月\n"
        "D5,日期,描述,乳业,龙沙区,2026-13-45\n"
        "D6,行业,描述,不存在的行业,龙沙区,2026.03\n"
        "D7,县区,描述,乳业,火星区,2026-03-05\n", encoding="utf-8")
    with pytest.raises(InputErrors) as info:
        load_demands(path, known_values=True)
    got = {(e.row, e.field) for e in info.value.errors}
    assert got == {(3, "需求描述"), (4, "发布日期"), (5, "发布日期"), (6, "发布日期"), (7, "所属行业"), (8, "所在县区")}
    good = load_demands(_first_row(path), known_values=True)
    assert (good[0].industry, good[0].region, good[0].date) == ("轨道交通装备", "讷河市", "2026-03-05")
    free = load_demands(_first_row(path, "D7,县区,描述,乳业,外市某区,2026-03-05\n"))
    assert free[0].region == "外市某区"  # without known_values (another city's data, tasks) regions are free


def _first_row(path, row: str | None = None):
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out = path.with_name("one.csv")
    out.write_text(lines[0] + (row or lines[1]), encoding="utf-8")
    return out
