"""Regression tests for the outside probe's findings (issue 15): every one answered 500, leaked
or hung before; each now gets a clear 4xx, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from service_testkit import REPO

CONTACTS = {"QQ": "12345678", "邮件": "a@b.cn", "对接人": "张三", "座机": "0452-1234567", "mail": "x@y.cn",
            "负责人": "李四", "技术领域": "涂层"}


def _err(r) -> str:
    return r.json()["error"]["message"]


def _upload(world, kind: str, name: str, data: bytes, role: str = "staff"):
    files = {"file": (name, io.BytesIO(data), "application/octet-stream")}
    return world.client.post(f"/api/imports/{kind}", files=files, headers=world.h(role))


# -- PostgreSQL answered 500 to ordinary input --------------------------------------------
@pytest.mark.parametrize("field", ["title", "text", "enterprise", "industry", "region"])
def test_a_nul_character_in_stored_text_is_a_422(world, field):
    body = {"title": "标题", field: "a\u0000b"}
    role = "enterprise" if field != "enterprise" else "staff"
    r = world.client.post("/api/demands", json=body, headers=world.h(role))
    assert r.status_code == 422, r.text
    r = world.client.post("/api/demands", json={"title": "t", "extra": {"k\0": "v"}}, headers=world.h("staff"))
    assert r.status_code == 422


@pytest.mark.parametrize("path", ["/api/demands", "/api/capabilities", "/api/partners", "/api/demands/D%001",
                                  "/demands"])
def test_a_nul_character_in_a_url_is_a_422(world, path):
    r = world.client.get(path, params={"q": "a\u0000b"} if "%00" not in path else None,
                         headers={**world.h("staff"), **world.cookie("staff")})
    assert r.status_code == 422, r.text


def test_industry_and_region_over_their_column_size_are_refused_by_the_api_and_the_spreadsheet_path(world):
    for field in ("industry", "region"):
        r = world.client.post("/api/demands", json={"title": "t", "text": "d", field: "行" * 201},
                              headers=world.h("staff"))
        assert r.status_code == 422 and field in r.text
    # an industry within the column size passes the size check (the taxonomy then names it)
    assert world.client.post("/api/demands", json={"title": "t", "text": "d", "industry": "重型机械"},
                             headers=world.h("staff")).status_code == 201
    r = world.client.post("/api/partners", json={"name": "n", "region": "区" * 201}, headers=world.h("staff"))
    assert r.status_code == 422
    csv = "需求编号,需求名称,需求描述,所属行业\nL1,甲,描述,重型机械\nL2,乙,描述," + "行" * 300 + "\n"
    r = _upload(world, "demands", "长.csv", csv.encode())
    assert r.status_code == 422, r.text
    detail = r.json()["error"]["details"][0]
    assert detail["row"] == 3 and detail["field"] == "所属行业"  # row errors name the header as written
    assert world.client.get("/api/demands/L1", headers=world.h("staff")).status_code == 404  # all or nothing


# -- contact details leaked through extra columns -----------------------------------------
@pytest.mark.parametrize("public,seen", [("", set()), ("技术领域, 备注", {"技术领域"})])
def test_extra_fields_are_staff_only_unless_the_bureau_makes_them_public(make_world, public, seen):
    if True:
        world = make_world(public_extra_fields=public)
        r = world.client.post("/api/demands", json={"id": f"X{len(public)}", "title": "涂层", "text": "涂层脱落",
                                                    "extra": CONTACTS}, headers=world.h("staff"))
        assert r.status_code == 201
        did = r.json()["id"]
        got = world.client.get(f"/api/demands/{did}", headers=world.h("institute")).json()
        assert set(got["extra"]) == seen
        listed = world.client.get("/api/demands", params={"q": "涂层"}, headers=world.h("institute")).json()
        assert all(set(d["extra"]) <= seen for d in listed["items"])
        assert world.client.get(f"/api/demands/{did}", headers=world.h("staff")).json()["extra"] == CONTACTS
        world.client.patch("/api/partners/P2", json={"extra": CONTACTS}, headers=world.h("staff"))
        assert set(world.client.get("/api/partners/P2", headers=world.h("institute")).json()["extra"]) == seen
        assert set(world.client.get("/api/partners/P2", headers=world.h("enterprise")).json()["extra"]) == seen
        # an institute sees all of its own partner's fields
        assert world.client.get("/api/partners/P2", headers=world.h("other_institute")).json()["extra"] == CONTACTS


def test_contact_columns_of_a_staff_upload_are_not_shown_to_institutes(world):
    csv = "需求编号,需求名称,需求描述,QQ,邮件,对接人,座机\nU1,甲,描述,123,a@b.cn,张三,0452-1\n"
    assert _upload(world, "demands", "需求.csv", csv.encode()).status_code == 200
    got = world.client.get("/api/demands/U1", headers=world.h("institute")).json()
    assert got["extra"] == {}
    assert set(world.client.get("/api/demands/U1", headers=world.h("staff")).json()["extra"]) == {
        "QQ", "邮件", "对接人", "座机"}


# -- an enterprise could learn that a hidden demand exists ----------------------------------
def test_posting_an_existing_hidden_id_answers_as_for_any_chosen_id(world):
    answers = []
    for did in ("D2", "D4", "NEVER-USED-ID"):  # confidential, unpublished (not its own owner's view), absent
        r = world.client.post("/api/demands", json={"id": did, "title": "t", "text": "d"},
                              headers=world.h("other_enterprise"))
        answers.append((r.status_code, _err(r)))
    assert len(set(answers)) == 1 and answers[0][0] == 403, answers
    r = world.client.post("/api/demands", json={"title": "t", "text": "d"}, headers=world.h("other_enterprise"))
    assert r.status_code == 201 and r.json()["id"]


# -- unbounded queries ---------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/demands", "/api/capabilities", "/api/partners"])
def test_a_query_over_the_bound_is_a_422_for_every_list(world, path):
    r = world.client.get(path, params={"q": "q" * 50_001}, headers=world.h("staff"))
    assert r.status_code == 422 and "q" in r.text
    assert world.client.get(path, params={"q": "涂" * 500}, headers=world.h("staff")).status_code == 200


def test_the_demands_page_answers_an_over_long_query_with_its_html_error_page(world):
    headers = {**world.cookie("staff"), "Accept": "text/html"}
    r = world.client.get("/demands", params={"q": "q" * 50_001}, headers=headers)
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")


# -- deeply nested JSON --------------------------------------------------------------------
@pytest.mark.parametrize("name,data", [
    ("deep.json", b"[" * 50_000),
    ("deep.jsonl", b'{"id": "N1", "title": "t", "extra": ' + b"[" * 2_000 + b"]" * 2_000 + b"}\n"),
])
def test_deeply_nested_json_uploads_are_a_clear_422(world, name, data):
    r = _upload(world, "demands", name, data)
    assert r.status_code == 422 and "nested" in r.text, r.text
    r = world.client.post("/upload", data={"kind": "demands"}, files={"file": (name, io.BytesIO(data), "text/plain")},
                          headers={**world.cookie("staff"), "Origin": "http://testserver"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html") and "nested" in r.text


def test_techmatch_ingest_reports_deep_nesting_without_a_traceback(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b'{"id": "N1", "title": "t", "extra": ' + b"[" * 5_000 + b"]" * 5_000 + b"}\n")
    r = subprocess.run([sys.executable, "-m", "matcher.cli.commands", "ingest", "--kind", "demands", str(path),
                        "--workspace", str(tmp_path / "ws")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "nested" in r.stderr and "Traceback" not in r.stderr, r.stderr


# -- an XLSX that unpacks into quadratic parsing time ----------------------------------------
def _xlsx_bomb() -> bytes:
    """A ~0.2 MB workbook whose sheet unpacks to ~76 MB: one row of two million cells."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["需求名称", "需求描述"])
    buf = io.BytesIO()
    wb.save(buf)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                head, _, rest = data.decode().partition("<sheetData>")
                cells = '<c t="inlineStr"><is><t>x</t></is></c>' * 2_000_000
                data = (head + f'<sheetData><row r="1">{cells}</row></sheetData>'
                        + rest.partition("</sheetData>")[2]).encode()
            z.writestr(info.filename, data)
    return out.getvalue()


def test_an_xlsx_that_would_parse_for_minutes_is_refused_at_the_deadline(world, monkeypatch):
    monkeypatch.setenv("TECHMATCH_XLSX_TIMEOUT", "10")
    bomb = _xlsx_bomb()
    assert len(bomb) < 400_000
    started = time.monotonic()
    r = _upload(world, "demands", "bomb.xlsx", bomb)
    took = time.monotonic() - started
    assert r.status_code == 422 and "longer than 10 s" in r.text, r.text
    assert took < 40  # the deadline plus start-up on a loaded machine, not the half hour it took


# -- minor findings ----------------------------------------------------------------------
def test_form_posts_with_origin_null_are_refused(world):
    r = world.client.post("/login", data={"token": world.tokens["staff"]}, headers={"Origin": "null"},
                          follow_redirects=False)
    assert r.status_code == 403
    r = world.client.post("/login", data={"token": world.tokens["staff"]}, headers={"Origin": "http://testserver"},
                          follow_redirects=False)
    assert r.status_code == 303


def test_answers_with_confidential_data_are_not_stored_by_caches(world):
    for path in ("/api/demands/D2", "/api/demands", "/api/tokens"):
        r = world.client.get(path, headers=world.h("admin"))
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store", path
    assert world.client.get("/demands/D2", headers=world.cookie("staff")).headers["cache-control"] == "no-store"
    assert "no-store" not in world.client.get("/static/style.css").headers.get("cache-control", "")


@pytest.mark.parametrize("bad", ["a\u0000b", "a\u0001b", "a\u007fb", "a\u202eb", "a\u200bb", "a\u2066b", "a\u0085b"])
def test_ids_refuse_nul_control_and_bidi_characters(world, bad):
    for path, body in (("/api/demands", {"id": bad, "title": "t"}), ("/api/partners", {"id": bad, "name": "n"}),
                       ("/api/capabilities", {"id": bad, "partner_id": "P1", "title": "t"})):
        r = world.client.post(path, json=body, headers=world.h("staff"))
        assert r.status_code == 422, (path, r.text)
    csv = f"需求编号,需求名称,需求描述\n{bad},甲,描述\n"
    r = _upload(world, "demands", "ids.csv", csv.encode())
    assert r.status_code == 422 or bad not in json.dumps(
        world.client.get("/api/demands", headers=world.h("staff")).json(), ensure_ascii=False)


def test_extra_is_bounded_in_fields_and_size(world):
    many = {f"k{i}": "v" for i in range(101)}
    for role in ("staff", "enterprise"):
        r = world.client.post("/api/demands", json={"title": "t", "text": "d", "extra": many}, headers=world.h(role))
        assert r.status_code == 422 and "extra" in r.text
    big = {f"k{i}": "v" * 19_000 for i in range(6)}
    assert world.client.post("/api/demands", json={"title": "t", "text": "d", "extra": big},
                             headers=world.h("staff")).status_code == 422
    ok = {f"k{i}": "v" for i in range(100)}
    assert world.client.post("/api/demands", json={"title": "t", "text": "d", "extra": ok},
                             headers=world.h("staff")).status_code == 201


def test_timestamps_in_answers_carry_a_time_zone(world):
    for path in ("/api/demands/D1", "/api/partners/P1", "/api/capabilities/C1", "/api/tokens"):
        body = world.client.get(path, headers=world.h("admin")).json()
        items = body if isinstance(body, list) else body.get("items", [body])
        for item in items:
            for key in ("created_at", "updated_at"):
                if key in item:
                    assert item[key].endswith(("Z", "+00:00")), (path, key, item[key])


def test_every_status_the_api_answers_is_declared_in_the_openapi_schema(world):
    schema = world.client.get("/openapi.json").json()
    checked = 0
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            codes = set(op["responses"])
            want = {"422", "500"} | ({"401", "403"} if op.get("security") else set())
            want |= {"404"} if "{" in path else set()
            want |= {"413"} if method in ("post", "put", "patch") else set()
            assert want <= codes, (method, path, sorted(want - codes))
            checked += 1
    assert checked > 30


@pytest.mark.e2e
def test_a_server_parsing_a_hostile_workbook_stops_on_sigterm_within_seconds(tmp_path, monkeypatch):
    import signal
    import threading

    import httpx
    from service_testkit import Server

    monkeypatch.setenv("TECHMATCH_XLSX_TIMEOUT", "600")  # the deadline is not what stops it
    srv = Server(tmp_path, "--demo")
    bomb = _xlsx_bomb()
    token = srv.tokens()["admin"]

    def upload() -> None:
        try:
            httpx.post(srv.url + "/api/imports/demands", files={"file": ("bomb.xlsx", bomb)},
                       headers={"Authorization": f"Bearer {token}"}, timeout=120)
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=upload, daemon=True)
    thread.start()
    time.sleep(3)  # the reader is busy with the sheet
    started = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(60)
    assert time.monotonic() - started < 20, "the server took too long to stop"
    time.sleep(2)
    import matcher.io

    child = str(Path(matcher.io.__file__).with_name("xlsx_child.py"))  # this checkout's readers only
    readers = subprocess.run(["pgrep", "-f", child], capture_output=True, text=True).stdout.split()
    assert not [p for p in readers if int(p) != srv.proc.pid], "an xlsx reader outlived the server"
