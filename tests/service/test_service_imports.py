"""Bulk import by upload: all or nothing, the CLI's row-level errors, matchable at once."""

from __future__ import annotations

import io

import pytest

GOOD_DEMANDS = """需求编号,需求名称,需求描述,所属行业,所在县区,企业名称,联系人,是否保密
Q1,风电叶片覆冰,叶片 覆冰 除冰 寒区风电,新能源与生物质,泰来县,泰来风电公司,孙工,否
Q2,秸秆还田,秸秆 腐熟 菌剂,现代农业与畜牧业,依安县,依安农场,钱工,是
"""

BAD_DEMANDS = """需求编号,需求名称,需求描述,是否保密
Q1,风电叶片覆冰,叶片 覆冰,否
Q2,秸秆还田,秸秆 腐熟,也许
,无编号,描述,否
"""


def _upload(world, kind: str, text: str, filename: str = "需求.csv", role: str = "staff", **form):
    files = {"file": (filename, io.BytesIO(text.encode("utf-8")), "text/csv")}
    return world.client.post(f"/api/imports/{kind}", files=files, data=form, headers=world.h(role))


def _snapshot(world) -> tuple[int, int, int]:
    page = world.client.get("/api/demands?limit=500", headers=world.h("staff")).json()
    return page["total"], world.ctx.live.db_revision(), len(world.ctx.live.engine.demands)


def test_demand_import_adds_records_that_match_at_once(world):
    r = _upload(world, "demands", GOOD_DEMANDS)
    assert r.status_code == 200, r.text
    assert r.json() | {"revision": 0} == {"kind": "demands", "file": "需求.csv", "created": 2, "updated": 0,
                                          "total": 2, "revision": 0}
    q2 = world.client.get("/api/demands/Q2", headers=world.h("staff")).json()
    assert q2["confidential"] is True and q2["owner"] == "依安农场" and q2["contact"] == "钱工"
    hits = world.client.post("/api/demands/search", json={"text": "风电叶片覆冰除冰"},
                             headers=world.h("staff")).json()["results"]
    assert hits[0]["demand"]["id"] == "Q1"
    again = _upload(world, "demands", GOOD_DEMANDS.replace("钱工", "钱工 139"))
    assert again.json()["created"] == 0 and again.json()["updated"] == 2
    assert world.client.get("/api/demands/Q2", headers=world.h("staff")).json()["contact"] == "钱工 139"


def test_a_file_with_one_bad_row_changes_nothing(world):
    before = _snapshot(world)
    r = _upload(world, "demands", BAD_DEMANDS)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_input" and "nothing was imported" in err["message"]
    rows = {(d["row"], d["field"]) for d in err["details"]}
    assert (3, "是否保密") in rows and (4, "需求编号") in rows
    assert all(d["file"] == "需求.csv" and d["message"] for d in err["details"])
    assert _snapshot(world) == before
    assert world.client.get("/api/demands/Q1", headers=world.h("staff")).status_code == 404


def test_errors_are_the_same_as_the_cli_reports(world, tmp_path):
    from matcher.errors import InputErrors
    from matcher.io.ingest import load_demands

    path = tmp_path / "需求.csv"
    path.write_text(BAD_DEMANDS, encoding="utf-8")
    with pytest.raises(InputErrors) as cli:
        load_demands(path)
    api = _upload(world, "demands", BAD_DEMANDS).json()["error"]["details"]
    assert [(d["row"], d["field"], d["message"]) for d in api] == \
        [(e.row, e.field, e.reason) for e in cli.value.errors]


def test_capability_import_creates_named_partners_and_rejects_unknown_ids(world):
    good = "成果编号,单位名称,成果名称,成果简介,行业\nK1,鹤城大学,叶片除冰,风电叶片 覆冰 除冰,新能源\n"
    r = _upload(world, "capabilities", good, "成果.csv")
    assert r.status_code == 200, r.text
    cap = world.client.get("/api/capabilities/K1", headers=world.h("staff")).json()
    assert cap["partner_name"] == "鹤城大学" and cap["industries"] == ["新能源"]
    top = world.client.post("/api/match", json={"text": "叶片覆冰除冰"}, headers=world.h("staff")).json()
    assert top["results"][0]["partner_id"] == cap["partner_id"]
    before = _snapshot(world)
    bad = "成果编号,单位编号,成果名称\nK2,P1,好的\nK3,P404,未知单位\n"
    r = _upload(world, "capabilities", bad, "成果.csv")
    assert r.status_code == 422
    assert [(d["row"], d["field"]) for d in r.json()["error"]["details"]] == [(3, "partner_id")]
    assert world.client.get("/api/capabilities/K2", headers=world.h("staff")).status_code == 404
    assert _snapshot(world) == before


def test_partner_import_with_a_mapping_and_xlsx(world):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Code", "Unit", "类型"])
    ws.append(["PX1", "齐齐哈尔大学", "高校"])
    buf = io.BytesIO()
    wb.save(buf)
    files = {"file": ("partners.xlsx", buf.getvalue(),
                      "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")}
    r = world.client.post("/api/imports/partners", files=files, data={"mapping": "Code=id\nUnit=name"},
                          headers=world.h("staff"))
    assert r.status_code == 200, r.text
    p = world.client.get("/api/partners/PX1", headers=world.h("staff")).json()
    assert p["name"] == "齐齐哈尔大学" and p["type"] == "university"


def test_unsupported_files_and_bad_kinds(world):
    r = _upload(world, "demands", "x", "demands.xls")
    assert r.status_code == 422 and "save it as .xlsx" in r.json()["error"]["message"]
    assert _upload(world, "widgets", GOOD_DEMANDS).status_code == 422
    r = _upload(world, "demands", GOOD_DEMANDS, mapping="no equals sign")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "mapping"
    r = world.client.post("/api/imports/demands", headers=world.h("staff"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


def test_uploads_over_the_size_limit_are_refused(make_world):
    world = make_world(max_upload_mb=0.01)
    big = GOOD_DEMANDS + "Q3,大," + "很" * 20_000 + ",x,x,x,x,否\n"
    r = _upload(world, "demands", big)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert world.client.get("/api/demands/Q1", headers=world.h("staff")).status_code == 404


def test_reimporting_the_bundled_sheet_changes_only_the_columns_it_has(make_world):
    """Regression (issue 13.2): re-importing demands.xlsx wiped extra.title_en/text_en and the
    language of D001, which the sheet has no column for."""
    from corpora import demo_corpus_path

    world = make_world(seeded=False, demo=True)
    staff = {"Authorization": "Bearer demo-staff"}
    before = world.client.get("/api/demands/D001", headers=staff).json()
    assert before["language"] == "zh" and before["extra"]["title_en"] and before["extra"]["text_en"]
    sheet = (demo_corpus_path() / "spreadsheets" / "demands.xlsx").read_bytes()
    r = world.client.post("/api/imports/demands", files={"file": ("demands.xlsx", sheet)}, headers=staff)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 0 and r.json()["updated"] == 166
    after = world.client.get("/api/demands/D001", headers=staff).json()
    for key in ("language", "extra", "title", "text", "industry", "region", "date", "confidential"):
        assert after[key] == before[key], key
    assert world.ctx.live.engine.demands["D001"].extra["title_en"] == before["extra"]["title_en"]


def test_an_update_sets_the_columns_the_file_has_and_replace_mode_sets_the_whole_record(world):
    staff = world.h("staff")
    d1 = world.client.get("/api/demands/D1", headers=staff).json()
    assert d1["language"] == "zh" and d1["contact"]
    r = _upload(world, "demands", "需求编号,需求名称,需求描述,所在县区,备注\nD1,新标题,新的描述,,第一次\n")
    assert r.status_code == 200 and r.json()["updated"] == 1
    got = world.client.get("/api/demands/D1", headers=staff).json()
    assert (got["title"], got["text"], got["region"], got["extra"]) == ("新标题", "新的描述", "", {"备注": "第一次"})
    assert {k: got[k] for k in ("language", "contact", "industry", "date", "enterprise")} == \
        {k: d1[k] for k in ("language", "contact", "industry", "date", "enterprise")}
    r = _upload(world, "demands", "需求编号,需求名称,需求描述,备注\nD1,新标题,新的描述,\n")
    assert world.client.get("/api/demands/D1", headers=staff).json()["extra"] == {}  # an empty cell clears it
    r = _upload(world, "demands", "需求编号,需求名称,需求描述\nD1,替换,整条替换\n", mode="replace")
    assert r.status_code == 200, r.text
    got = world.client.get("/api/demands/D1", headers=staff).json()
    assert (got["title"], got["language"], got["contact"], got["industry"], got["date"]) == ("替换", "", "", "", "")
    assert world.ctx.live.engine.demands["D1"].title == "替换"
    assert _upload(world, "demands", GOOD_DEMANDS, mode="merge").status_code == 422


def test_the_upload_page_offers_and_explains_both_modes(world):
    page = world.client.get("/upload", headers=world.cookie("staff")).text
    assert 'data-testid="upload-mode-update"' in page and 'data-testid="upload-mode-replace"' in page
    assert "只更新文件中有的列" in page or "Update only the columns the file has" in page
