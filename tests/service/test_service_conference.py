"""Conference runs as background jobs: start, progress, files, validation, pin conflicts,
interruption and resume from the ranking checkpoint, path traversal, the /conference page."""

from __future__ import annotations

import io
import threading
import time

import pytest
from openpyxl import load_workbook
from service_testkit import ADMIN_TOKEN, E1
from sqlalchemy import select, update

from matcher.retrieval.engine import MatchEngine
from service.jobs.conference import CHECKPOINT_NAME
from service.storage.db import conference_jobs

JOBS = "/api/conference/jobs"
ALL = ["D1", "D2", "D3", "D4"]  # the test corpus, D4 unpublished
# min_score 0: the fake encoder's fits mean nothing, so the default floor (the calibration's
# "possible" threshold, which a real model's relevant pairs reach) would leave no meeting here
BODY = {"k": 3, "include_unpublished": True, "chunk_size": 1, "slots": "09:00-10:00", "tables": 2,
        "schedule_seconds": 2, "min_score": 0}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def wait_job(world, job_id: str, *, until=("done", "failed"), timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = world.client.get(f"{JOBS}/{job_id}", headers=ADMIN)
        assert r.status_code == 200, r.text
        if r.json()["status"] in until:
            return r.json()
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {r.json()['status']} after {timeout}s")


@pytest.fixture
def ranked(monkeypatch) -> list[list[str]]:
    """The demand ids of every `match_partners_batch` call (one list per chunk)."""
    calls: list[list[str]] = []
    original = MatchEngine.match_partners_batch

    def counting(self, demands, *, k=10):
        calls.append([d.id for d in demands])
        return original(self, demands, k=k)

    monkeypatch.setattr(MatchEngine, "match_partners_batch", counting)
    return calls


def test_job_runs_in_the_background_and_serves_its_files(world, ranked):
    r = world.client.post(JOBS, json=BODY, headers=world.h("staff"))
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("queued", "running") and r.headers["location"] == f"{JOBS}/{job['id']}"
    assert job["demand_ids"] == ALL and job["created_by"] == "test staff"

    done = wait_job(world, job["id"])
    assert done["status"] == "done", done["error"]
    assert done["progress"] == {"done": 4, "total": 4, "percent": 100.0}
    assert ranked == [[d] for d in ALL]  # every demand ranked once, one chunk at a time
    s = done["summary"]
    assert s["meetings"] >= 4 and s["explain"][0].startswith(f"{s['meetings']} meetings for 4 demands")
    assert done["objective"] == pytest.approx(s["objective"]) and done["gap"] == pytest.approx(
        done["objective"] - done["greedy_objective"])
    assert {"conference.xlsx", "assignment.csv", "schedule.csv", "unmet.csv", "agendas/index.html"} <= set(
        done["files"])

    listing = world.client.get(f"{JOBS}/{job['id']}/files", headers=world.h("staff")).json()
    assert [f["name"] for f in listing] == done["files"]
    xlsx = world.client.get(listing[[f["name"] for f in listing].index("conference.xlsx")]["url"],
                            headers=world.h("staff"))
    assert xlsx.status_code == 200 and xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert load_workbook(io.BytesIO(xlsx.content)).sheetnames == ["assignment", "schedule", "unmet"]
    csv = world.client.get(f"{JOBS}/{job['id']}/files/assignment.csv", headers=world.h("admin"))
    assert csv.content.startswith(b"\xef\xbb\xbfdemand_id,demand_title")
    agenda = world.client.get(f"{JOBS}/{job['id']}/files/agendas/index.html", headers=world.h("staff"))
    assert agenda.status_code == 200 and "text/html" in agenda.headers["content-type"]
    csp = agenda.headers["content-security-policy"]
    assert "style-src 'unsafe-inline'" in csp and "script" not in csp and "default-src 'none'" in csp
    ent_page = next(n for n in done["files"] if n.startswith("agendas/enterprise-"))
    assert world.client.get(f"{JOBS}/{job['id']}/files/{ent_page}", headers=world.h("staff")).status_code == 200

    page = world.client.get(JOBS, headers=world.h("staff")).json()
    assert page["total"] == 1 and page["items"][0]["id"] == job["id"]
    assert world.client.get(JOBS, params={"status": "failed"}, headers=world.h("staff")).json()["total"] == 0


def test_progress_increases_chunk_by_chunk(world, monkeypatch):
    seen: list[int] = []
    original = MatchEngine.match_partners_batch

    def watching(self, demands, *, k=10):  # runs in the worker: read the running job's progress
        with world.ctx.db.connect() as conn:
            seen.append(conn.execute(select(conference_jobs.c.progress_done)
                                     .where(conference_jobs.c.status == "running")).scalar_one())
        return original(self, demands, k=k)

    monkeypatch.setattr(MatchEngine, "match_partners_batch", watching)
    job_id = world.client.post(JOBS, json=BODY, headers=world.h("staff")).json()["id"]
    done = wait_job(world, job_id)
    assert seen == [0, 1, 2, 3] and done["progress"]["done"] == 4


def test_bad_parameters_are_rejected_before_anything_is_queued(world):
    def problems(body, status=422):
        r = world.client.post(JOBS, json={**BODY, **body}, headers=world.h("staff"))
        assert r.status_code == status, r.text
        err = r.json()["error"]
        assert set(err) == {"status", "code", "message", "details"}
        return {(".".join(str(p) for p in d["loc"][1:]), d["type"]) for d in err["details"]}

    assert problems({"slots": "9-12"}) == {("slots", "value_error")}
    assert problems({"slots": "09:00-09:10"}) == {("slots", "value_error")}  # no 20-minute slot fits
    # ids the database lacks: the request is well formed, the stored records disagree (409)
    assert problems({"demand_ids": ["D1", "NOPE"]}, 409) == {("demand_ids.1", "unknown_id")}
    assert problems({"pins": [{"demand_id": "D1", "partner_id": "PX"}],
                     "exclusions": [{"demand_id": "DX", "partner_id": "P1"}]}, 409) == {
        ("pins.0.partner_id", "unknown_id"), ("exclusions.0.demand_id", "unknown_id")}
    assert problems({"demand_ids": ["D1"], "pins": [{"demand_id": "D3", "partner_id": "P1"}]}, 409) == {
        ("pins.0.demand_id", "unknown_id")}  # D3 exists but is not selected
    assert problems({"availability": [{"side": "enterprise", "id": "无此企业", "windows": "09:00-09:40"},
                                      {"side": "partner", "id": "P1", "windows": "9点"}]}) == {
        ("availability.0.id", "unknown_id"), ("availability.1.windows", "value_error")}
    assert problems({"min_per_demand": 3, "max_per_demand": 2}) == {("min_per_demand", "value_error")}
    assert problems({"k": 101}) == {("k", "value_error")}  # above the service's max_k
    assert problems({"industry": ["无此行业"]}, 409) == {("demand_ids", "value_error")}  # nothing selected
    r = world.client.post(JOBS, json={**BODY, "exclusion_rules": ["enterprise owner"]}, headers=world.h("staff"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert problems({"exclusion_rules": ["at most many per partner type"]}) == {("exclusion_rules.0", "value_error")}
    assert problems({"quotas": {"D9": 2}}, 409) == {("quotas.D9", "unknown_id")}
    assert world.client.get(JOBS, headers=world.h("staff")).json()["total"] == 0


def test_demand_selection_by_industry_and_publication(world):
    def chosen(body):
        r = world.client.post(JOBS, json={**BODY, **body}, headers=world.h("staff"))
        assert r.status_code == 202, r.text
        return r.json()["demand_ids"]

    assert chosen({"include_unpublished": False}) == ["D1", "D2", "D3"]
    assert chosen({"industry": ["乳业", "绿色食品与粮食加工"]}) == ["D3", "D4"]
    assert chosen({"demand_ids": ["D3", "D1", "D3"]}) == ["D3", "D1"]


def test_conflicting_pins_fail_the_job_with_the_conflicts_explained(world):
    body = {**BODY, "capacity": 1, "pins": [{"demand_id": "D1", "partner_id": "P1"},
                                            {"demand_id": "D3", "partner_id": "P1"}]}
    job = world.client.post(JOBS, json=body, headers=world.h("staff")).json()
    failed = wait_job(world, job["id"])
    assert failed["status"] == "failed" and "pinned pair(s) break hard constraints" in failed["error"]
    conflicts = failed["summary"]["conflicts"]
    assert conflicts and {c["constraint"] for c in conflicts} == {"partner_capacity"}
    assert any("partner_capacity" in line for line in failed["summary"]["explain"])
    r = world.client.get(f"{JOBS}/{job['id']}/files", headers=world.h("staff"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    r = world.client.get(f"{JOBS}/{job['id']}/files/conference.xlsx", headers=world.h("staff"))
    assert r.status_code == 409


def test_a_stopped_service_interrupts_the_job_and_resume_ranks_only_the_rest(make_world, monkeypatch):
    first = make_world()
    ranked: list[str] = []
    reached, release = threading.Event(), threading.Event()
    original = MatchEngine.match_partners_batch

    def slow(self, demands, *, k=10):
        if len(ranked) == 2:  # the third chunk waits until the service is stopping
            reached.set()
            release.wait(30)
        ranked.extend(d.id for d in demands)
        return original(self, demands, k=k)

    monkeypatch.setattr(MatchEngine, "match_partners_batch", slow)
    job_id = first.client.post(JOBS, json=BODY, headers=first.h("staff")).json()["id"]
    assert reached.wait(30)
    stopping = threading.Thread(target=first.client.__exit__, args=(None, None, None))
    stopping.start()  # shutdown: the job stops after the chunk in progress
    time.sleep(0.2)
    release.set()
    stopping.join(60)
    assert ranked == ["D1", "D2", "D3"]

    second = make_world(seeded=False)
    job = second.client.get(f"{JOBS}/{job_id}", headers=ADMIN).json()
    assert job["status"] == "interrupted" and job["progress"]["done"] == 3 and job["files"] == []
    r = second.client.post(f"{JOBS}/{job_id}/resume", headers=ADMIN)
    assert r.status_code == 202 and r.json()["status"] in ("queued", "running", "done")
    done = wait_job(second, job_id)
    assert done["status"] == "done", done["error"]
    assert ranked == ["D1", "D2", "D3", "D4"]  # only D4 was ranked after the resume
    assert done["runs"] == 2 and done["summary"]["ranked_from_checkpoint"] == 3
    assert second.client.get(f"{JOBS}/{job_id}/files/schedule.csv", headers=ADMIN).status_code == 200
    r = second.client.post(f"{JOBS}/{job_id}/resume", headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"


def test_a_crash_leaves_the_job_running_and_a_restart_marks_it_interrupted(make_world, ranked):
    first = make_world()
    job_id = first.client.post(JOBS, json=BODY, headers=first.h("staff")).json()["id"]
    assert wait_job(first, job_id)["status"] == "done"
    folder = first.ctx.jobs.job_dir(job_id)
    first.client.__exit__(None, None, None)
    # as if the process died after two chunks: two demands in the checkpoint, the row "running"
    lines = (folder / CHECKPOINT_NAME).read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / CHECKPOINT_NAME).write_text("".join(lines[:3]), encoding="utf-8")
    with first.ctx.db.begin() as conn:
        conn.execute(update(conference_jobs).where(conference_jobs.c.id == job_id)
                     .values(status="running", stage="ranking", progress_done=2))
    ranked.clear()

    second = make_world(seeded=False)
    job = second.client.get(f"{JOBS}/{job_id}", headers=ADMIN).json()
    assert job["status"] == "interrupted" and "resume" in job["error"]
    assert second.client.post(f"{JOBS}/{job_id}/resume", headers=ADMIN).status_code == 202
    done = wait_job(second, job_id)
    assert done["status"] == "done" and done["summary"]["ranked_from_checkpoint"] == 2
    assert ranked == [["D3"], ["D4"]]


def test_file_names_cannot_escape_the_job_folder(world, tmp_path):
    job_id = world.client.post(JOBS, json=BODY, headers=world.h("staff")).json()["id"]
    assert wait_job(world, job_id)["status"] == "done"
    secret = world.ctx.jobs.folder / "secret.txt"
    secret.write_text("not for the web")
    staff = world.h("staff")
    for name in ("../secret.txt", "%2e%2e/secret.txt", "agendas/../../secret.txt", "%2e%2e%2fsecret.txt",
                 "agendas/%2e%2e/%2e%2e/secret.txt", "/etc/passwd", "%2Fetc%2Fpasswd", "..%5csecret.txt",
                 CHECKPOINT_NAME, "agendas", "agendas/", "nope.csv"):
        r = world.client.get(f"{JOBS}/{job_id}/files/{name}", headers=staff)
        assert r.status_code == 404, (name, r.status_code)
        assert b"not for the web" not in r.content
    r = world.client.get(f"/conference/jobs/{job_id}/files/%2e%2e/secret.txt", headers=world.cookie("staff"))
    assert r.status_code == 404
    for job in ("..", "%2e%2e", "..%2f.."):  # not a job id at all (the id rule refuses '..'): 422 or 404
        assert world.client.get(f"{JOBS}/{job}/files/secret.txt", headers=staff).status_code in (404, 422)


def test_resume_and_lookups_of_unknown_jobs(world):
    for method, url in (("GET", f"{JOBS}/CJ-none"), ("POST", f"{JOBS}/CJ-none/resume"),
                        ("GET", f"{JOBS}/CJ-none/files"), ("GET", f"{JOBS}/CJ-none/files/unmet.csv")):
        r = world.client.request(method, url, headers=world.h("staff"))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_conference_page_starts_a_job_and_lists_it_with_its_files(world):
    staff = world.cookie("staff")
    page = world.client.get("/conference", headers=staff)
    assert page.status_code == 200 and 'data-testid="conf-form"' in page.text and "对接会批量排程" in page.text
    form = {"k": "3", "capacity": "3", "min_per_demand": "1", "max_per_demand": "2", "slots": "09:00-10:00",
            "slot_minutes": "20", "tables": "2", "demand_ids": "D1, D3", "pins": "D1,P1\n",
            "availability": f"enterprise,{E1},09:00-09:40\npartner,P2,09:20-10:00"}
    r = world.client.post("/conference", data=form, headers=staff, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/conference?started=1"
    job = world.client.get(JOBS, headers=world.h("staff")).json()["items"][0]
    assert job["demand_ids"] == ["D1", "D3"] and job["params"]["pins"] == [{"demand_id": "D1", "partner_id": "P1"}]
    assert job["params"]["availability"][1] == {"side": "partner", "id": "P2", "windows": "09:20-10:00"}
    wait_job(world, job["id"])
    page = world.client.get("/conference?lang=en", headers=staff)
    assert 'data-status="done"' in page.text and "Done" in page.text
    assert f'href="/conference/jobs/{job["id"]}/files/conference.xlsx"' in page.text
    assert "data-poll" not in page.text  # nothing running: no polling
    r = world.client.get(f"/conference/jobs/{job['id']}/files/agendas/index.html", headers=staff)
    assert r.status_code == 200 and "style-src 'unsafe-inline'" in r.headers["content-security-policy"]

    bad = world.client.post("/conference", data={**form, "slots": "9-10", "pins": "DX,P1"}, headers=staff)
    assert bad.status_code == 422 and 'data-testid="conf-error-row"' in bad.text
    # in the page's language (Chinese by default), naming the field and the line
    assert "时间“9”无效" in bad.text and "bad time" not in bad.text and 'value="9-10"' in bad.text
    assert "需求 DX 不存在" in bad.text and "第 1 行" in bad.text
    bad = world.client.post("/conference", data={**form, "k": "many"}, headers=staff)
    assert bad.status_code == 422 and "应为整数（填写了“many”）" in bad.text and 'data-field="k"' in bad.text
    assert world.client.get(JOBS, headers=world.h("staff")).json()["total"] == 1


def test_page_shows_resume_for_failed_jobs_and_resumes(world):
    body = {**BODY, "capacity": 1, "pins": [{"demand_id": "D1", "partner_id": "P1"},
                                            {"demand_id": "D3", "partner_id": "P1"}]}
    job_id = world.client.post(JOBS, json=body, headers=world.h("staff")).json()["id"]
    wait_job(world, job_id)
    staff = world.cookie("staff")
    page = world.client.get("/conference", headers=staff)
    assert 'data-testid="conf-job-resume"' in page.text and 'data-testid="conf-job-error"' in page.text
    r = world.client.post(f"/conference/jobs/{job_id}/resume", headers=staff, follow_redirects=False)
    assert r.status_code == 303
    assert wait_job(world, job_id)["runs"] == 2


def test_job_with_quotas_group_rules_fairness_and_alternates(world):
    body = {**BODY, "quotas": {"D1": 1, "D2": 2}, "partner_min": 1, "fair": True, "alternates": 2,
            "exclusion_rules": ["at most 3 per partner type", "at most 2 per demand region and partner"]}
    r = world.client.post(JOBS, json=body, headers=world.h("staff"))
    assert r.status_code == 202, r.text
    done = wait_job(world, r.json()["id"])
    assert done["status"] == "done", done["error"]
    s = done["summary"]
    assert s["partner_min_required"] >= s["partner_min_filled"] >= 0
    assert s["schedule_bound"] >= s["scheduled"]
    assert s["fair_threshold"] is None or s["worst_best"] >= s["fair_threshold"] - 1e-12
    csv_text = world.client.get(f"{JOBS}/{done['id']}/files/assignment.csv", headers=world.h("staff")).text
    header = csv_text.lstrip("\ufeff").splitlines()[0].split(",")
    assert "alternates" in header
    rows = [line for line in csv_text.splitlines()[1:] if line.startswith("D1,")]
    assert len(rows) <= 1  # D1 wants one meeting


def test_page_form_sets_quotas_rules_fairness_floor_and_pdf_and_shows_the_result(world):
    """Everything the API takes, from the page: per-demand quotas, a partner minimum, group
    rules, max-min fairness, the quality floor as a fit label, alternates and PDF agendas; the
    result page shows both objectives, the meetings with their alternates and the PDF link."""
    staff = world.cookie("staff")
    page = world.client.get("/conference?lang=en", headers=staff)
    assert 'data-testid="conf-quotas"' in page.text and 'data-testid="conf-rules"' in page.text
    assert 'name="partner_min"' in page.text and 'data-testid="conf-fair"' in page.text
    assert 'data-testid="conf-pdf"' in page.text and 'name="alternates"' in page.text
    assert '<option value="possible" selected>' in page.text  # the default floor, named by its fit label
    form = {"k": "3", "capacity": "2", "min_per_demand": "1", "max_per_demand": "3", "slots": "09:00-10:00",
            "slot_minutes": "20", "tables": "2", "include_unpublished": "1", "floor": "none",
            "quotas": "D1,1\nD3 2\n", "partner_min": "1", "fair": "1", "alternates": "1", "pdf": "1",
            "exclusion_rules": "enterprise=owner\nat most 3 per partner type\nat most 2 per demand region and partner"}
    r = world.client.post("/conference", data=form, headers=staff, follow_redirects=False)
    assert r.status_code == 303, r.text
    job = world.client.get(JOBS, headers=world.h("staff")).json()["items"][0]
    p = job["params"]
    assert p["quotas"] == {"D1": 1, "D3": 2} and p["partner_min"] == 1 and p["fair"] and p["pdf"]
    assert p["min_score"] == 0 and p["alternates"] == 1
    assert p["exclusion_rules"] == ["enterprise=owner", "at most 3 per partner type",
                                    "at most 2 per demand region and partner"]
    done = wait_job(world, job["id"], timeout=120)
    assert done["status"] == "done", done["error"]
    assert "agendas/all.pdf" in done["files"]

    listing = world.client.get("/conference?lang=en", headers=staff).text
    assert f'href="/conference/jobs/{job["id"]}/files/agendas/all.pdf"' in listing and "All agendas (PDF)" in listing
    result = world.client.get(f"/conference/jobs/{job['id']}?lang=en", headers=staff)
    assert result.status_code == 200
    text = result.text
    assert 'data-testid="conf-result-pdf"' in text and "Worst-off demand&#39;s best fit" in text
    assert "Total fit (expected relevant meetings)" in text and "D1=1, D3=2" in text
    assert "at most 3 per partner type" in text and "no floor" in text
    meetings = world.client.get(f"{JOBS}/{job['id']}/files/assignment.csv", headers=world.h("staff")).text
    rows = meetings.lstrip("\ufeff").splitlines()[1:]
    assert text.count('data-testid="conf-meeting"') == len(rows) == done["summary"]["meetings"] > 0
    assert sum(1 for line in rows if line.startswith("D1,")) <= 1  # D1 wants one meeting
    pdf = world.client.get(f"/conference/jobs/{job['id']}/files/agendas/all.pdf", headers=staff)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    zh = world.client.get(f"/conference/jobs/{job['id']}?lang=zh", headers=staff).text
    assert "全部日程 PDF" in zh and "最差需求的最佳匹配度" in zh


def test_result_page_explains_shortfalls_and_says_what_would_fix_them(world, monkeypatch):
    body = {**BODY, "capacity": 1, "min_per_demand": 2, "max_per_demand": 2, "demand_ids": ["D1", "D3", "D4"],
            "slots": "09:00-09:20", "tables": 1}  # one table in one slot: a second meeting gets no time
    job_id = world.client.post(JOBS, json=body, headers=world.h("staff")).json()["id"]
    done = wait_job(world, job_id)
    assert done["status"] == "done" and done["summary"]["suggestions"], done
    staff = world.cookie("staff")
    en = world.client.get(f"/conference/jobs/{job_id}?lang=en", headers=staff).text
    assert 'data-testid="conf-shortfall"' in en and "What would meet every minimum" in en
    assert done["summary"]["suggestions"][0]["en"] in en.replace("&#39;", "'")
    zh = world.client.get(f"/conference/jobs/{job_id}", headers=staff).text
    assert done["summary"]["suggestions"][0]["zh"] in zh and "缺额" in zh
    assert "No PDFs in this run" in en  # pdf not asked for: the page says how to get them
    assert done["summary"]["meetings"] == 2 and done["summary"]["scheduled"] == 1
    assert en.count('data-testid="conf-unscheduled"') == 1 and "every common slot is taken or has no free table" in en
    monkeypatch.setattr("service.routers.conference.MEETINGS_SHOWN", 1)  # a long list is cut, and says so
    short = world.client.get(f"/conference/jobs/{job_id}?lang=en", headers=staff).text
    assert short.count('data-testid="conf-meeting"') == 1 and "The first 1 of 2 meetings are shown" in short


def test_the_russian_pages_tell_the_plan_and_the_diagnosis_in_russian(world):
    body = {**BODY, "capacity": 1, "min_per_demand": 2, "max_per_demand": 2, "demand_ids": ["D1", "D3", "D4"],
            "slots": "09:00-09:20", "tables": 1}
    job_id = world.client.post(JOBS, json=body, headers=world.h("staff")).json()["id"]
    done = wait_job(world, job_id)
    assert done["status"] == "done", done["error"]
    summary = done["summary"]
    assert set(summary["plain"]) == {"zh", "en", "ru"}
    assert summary["plain"]["ru"][0].startswith("2 встречи по 3 запросам")
    assert all(x["ru"] and x["ru"] != x["en"] for x in summary["suggestions"])
    staff = world.cookie("staff")
    ru = world.client.get(f"/conference/jobs/{job_id}?lang=ru", headers=staff).text
    for line in summary["plain"]["ru"] + [x["ru"] for x in summary["suggestions"]]:
        assert line in ru.replace("&#34;", '"')
    for line in summary["plain"]["en"] + [x["en"] for x in summary["suggestions"]]:
        assert line not in ru.replace("&#39;", "'")
    # the language chosen once (the switch sets a cookie) holds for the list of runs too
    listing = world.client.get("/conference", headers={**staff, "Cookie": staff["Cookie"] + "; techmatch_lang=ru"})
    assert summary["plain"]["ru"][0] in listing.text and summary["plain"]["en"][0] not in listing.text


@pytest.mark.parametrize(("lang", "expected"), [
    ("zh", ["各需求洽谈数 · D1", "应为整数（填写了“many”）", "不能小于 0", "每个合作方至少洽谈",
            "规则（每行一条） · 第 1 行", "无法识别规则“at most 2 per partner nonsense words”"]),
    ("en", ["Meetings per demand · D1", "must be a whole number (got &#39;many&#39;)", "must be at least 0",
            "Meetings per partner, at least", "Rules (one per line) · line 1",
            "bad rule &#39;at most 2 per partner nonsense words&#39;"]),
    ("ru", ["Встреч на запрос · D1", "нужно целое число (введено «many»)", "не меньше 0",
            "Встреч на партнёра, не меньше",
            "Правила (по одному в строке) · строка 1", "непонятное правило «at most 2 per partner nonsense words»"]),
])
def test_form_errors_are_in_the_page_language_and_name_the_field(world, lang, expected):
    staff = world.cookie("staff")
    form = {"k": "3", "slots": "09:00-10:00", "include_unpublished": "1", "quotas": "D1,many",
            "partner_min": "-1"}
    bad = world.client.post(f"/conference?lang={lang}", data=form, headers=staff)
    assert bad.status_code == 422
    for text in expected[:4]:
        assert text in bad.text, (lang, text)
    # problems found against the database, also translated: unknown ids, a bad rule, min > max
    form = {"k": "3", "slots": "09:00-10:00", "include_unpublished": "1", "quotas": "D9,2",
            "min_per_demand": "3", "max_per_demand": "2", "exclusion_rules": "at most 2 per partner nonsense words"}
    bad = world.client.post(f"/conference?lang={lang}", data=form, headers=staff)
    assert bad.status_code == 422 and 'data-field="quotas"' in bad.text and 'data-field="min_per_demand"' in bad.text
    for text in expected[4:]:
        assert text in bad.text, (lang, text)
    assert {"zh": "需求 D9 不存在", "en": "demand D9 does not exist", "ru": "запроса D9 нет"}[lang] in bad.text
    assert {"zh": "每个需求最少 3 场，超过了最多 2 场", "en": "the minimum per demand (3) exceeds the maximum (2)",
            "ru": "минимум на запрос (3) больше максимума (2)"}[lang] in bad.text
    assert world.client.get(JOBS, headers=world.h("staff")).json()["total"] == 0


def test_form_parsing_of_rules_quotas_and_the_floor():
    from service.routers.conference import fit_thresholds, floor_label, form_params, quota_lines, rule_lines

    lines = "enterprise=owner region = region\nat most 2 per partner organisation; 至少1个本地 region=region"
    assert rule_lines(lines) == ["enterprise=owner", "region=region", "at most 2 per partner organisation",
                                 "至少1个本地 region=region"]
    assert rule_lines("enterprise=owner,region=region") == ["enterprise=owner", "region=region"]
    assert quota_lines("D1,1\nD2 3\nD3=5\nD4：2\n\n") == {"D1": "1", "D2": "3", "D3": "5", "D4": "2"}
    th = fit_thresholds()
    assert form_params({"floor": "strong"})["min_score"] == th["strong"]
    assert form_params({"floor": "none"})["min_score"] == 0.0
    assert "min_score" not in form_params({"floor": "possible"})  # the service's default floor
    assert form_params({"floor": "strong", "min_score": "0.5"})["min_score"] == "0.5"  # a number wins
    assert floor_label(None) == {"label": "possible", "value": th["possible"]}
    assert floor_label(th["strong"])["label"] == "strong" and floor_label(0)["label"] == "none"
    assert floor_label(0.5)["label"] == "custom"
    assert 0 < th["possible"] < th["strong"] < 1


def test_a_merge_group_is_matched_and_scheduled_as_one_demand(world):
    """Staff merge D3 (enterprise E2) into D1 (E1): a conference over the database treats the
    group as D1, whose meetings both enterprises attend: D3 gets no meetings of its own, a pin or
    quota given for D3 applies to D1, both enterprises' agendas list D1's meetings, and E2 is
    never booked twice in a slot (its own demand D5 and the joint meetings share its timetable)."""
    from service_testkit import E2

    admin = world.h("admin")
    d5 = {"id": "D5", "title": "乳品包装低温脆裂", "text": "乳品包装膜在零下三十度运输时脆裂，需要耐寒包装材料。",
          "industry": "乳业", "region": "克东县", "enterprise": E2, "date": "2025-05-01", "language": "zh"}
    assert world.client.post("/api/demands", json=d5, headers=admin).status_code == 201
    staff = world.cookie("staff")
    r = world.client.post("/demands/D3/review", data={"action": "merge", "target": "D1", "note": "同一问题"},
                          headers=staff, follow_redirects=False)
    assert r.status_code == 303, r.text
    body = {**BODY, "capacity": 4, "max_per_demand": 2, "slots": "09:00-11:00", "tables": 4,
            "pins": [{"demand_id": "D3", "partner_id": "P2"}], "quotas": {"D3": 2}}
    r = world.client.post(JOBS, json=body, headers=world.h("staff"))
    assert r.status_code == 202, r.text
    assert r.json()["demand_ids"] == ["D1", "D2", "D4", "D5"]  # D3 is folded into D1
    done = wait_job(world, r.json()["id"])
    assert done["status"] == "done", done["error"]
    assert done["summary"]["merged"] == {"D1": {"demands": ["D3"], "enterprises": [E1, E2]}}

    def table(name):
        text = world.client.get(f"{JOBS}/{done['id']}/files/{name}", headers=world.h("staff")).text
        import csv

        return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))

    meetings = table("assignment.csv")
    assert not [m for m in meetings if m["demand_id"] == "D3"]
    d1 = [m for m in meetings if m["demand_id"] == "D1"]
    assert ("D1", "P2") in {(m["demand_id"], m["partner_id"]) for m in d1}  # the pin given for D3
    assert len(d1) == 2  # the quota given for D3
    assert all(m["enterprise"] == f"{E1}; {E2}" for m in d1)
    # D1 is matched with D3's words too (the fake encoder's shared terms show it)
    assert any("冷链" in m["shared_terms"] for m in d1)
    schedule = table("schedule.csv")
    assert len(schedule) == len(meetings)  # everything placed
    e2_slots = [m["slot"] for m in schedule if E2 in m["enterprise"]]
    assert len(e2_slots) == len(set(e2_slots)) >= 3  # D1's two joint meetings and D5's, never two at once
    e1_slots = [m["slot"] for m in schedule if E1 in m["enterprise"]]
    assert len(e1_slots) == len(set(e1_slots))
    agendas = [n for n in done["files"] if n.startswith("agendas/enterprise-") and n.endswith(".html")]
    texts = {n: world.client.get(f"{JOBS}/{done['id']}/files/{n}", headers=world.h("staff")).text for n in agendas}
    e2_agenda = next(t for t in texts.values() if f"<h1>{E2}</h1>" in t)
    assert e2_agenda.count('<span class="id">D1</span>') == 2 and "联合洽谈 Joint meeting" in e2_agenda
    assert "D3" in e2_agenda  # says which of its demands was merged
    page = world.client.get(f"/conference/jobs/{done['id']}?lang=en", headers=staff).text
    assert 'data-testid="conf-result-merged"' in page and "D3" in page.split('data-testid="conf-result-merged"')[1]


def test_form_errors_name_the_line_and_column_of_list_fields(world):
    staff = world.cookie("staff")
    form = {"k": "3", "slots": "09:00-10:00", "include_unpublished": "1", "pins": "D1,P1\nD3\n",
            "demand_ids": "D1 D3 ../x", "quotas": "bad/id,2"}
    bad = world.client.post("/conference?lang=en", data=form, headers=staff)
    assert bad.status_code == 422
    rows = bad.text.split('data-testid="conf-errors"')[1]
    assert "Pinned pairs (one per line: demand_id,partner_id) · line 2 · Partner</td><td>must not be empty" in rows
    assert "&#39;../x&#39; is not a valid id" in rows and "&#39;bad/id&#39; is not a valid id" in rows


def test_replan_from_the_result_page_keeps_the_ticked_meetings(world):
    """A partner cancels: staff untick its meeting, keep the others, and run again with the same
    demands and settings; the kept meetings are pins of the new run."""
    body = {**BODY, "demand_ids": ["D1", "D3"], "industry": [], "quotas": {"D1": 2}}
    first = wait_job(world, world.client.post(JOBS, json=body, headers=world.h("staff")).json()["id"])
    staff = world.cookie("staff")
    page = world.client.get(f"/conference/jobs/{first['id']}?lang=en", headers=staff).text
    assert 'data-testid="conf-replan-form"' in page
    assert page.count('data-testid="conf-keep"') == first["summary"]["meetings"]
    csv_text = world.client.get(f"{JOBS}/{first['id']}/files/assignment.csv", headers=world.h("staff")).text
    pairs = [tuple(line.split(",")[i] for i in (0, 3)) for line in csv_text.lstrip("\ufeff").splitlines()[1:]]
    keep = [f"{d},{p}" for d, p in pairs[:1]]
    r = world.client.post(f"/conference/jobs/{first['id']}/replan", data={"keep": keep}, headers=staff,
                          follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/conference?started=1"
    second = world.client.get(JOBS, headers=world.h("staff")).json()["items"][0]
    assert second["id"] != first["id"] and second["demand_ids"] == ["D1", "D3"]
    assert second["params"]["pins"] == [{"demand_id": pairs[0][0], "partner_id": pairs[0][1]}]
    assert second["params"]["quotas"] == {"D1": 2} and second["params"]["min_score"] == 0
    done = wait_job(world, second["id"])
    again = world.client.get(f"/conference/jobs/{done['id']}?lang=en", headers=staff).text
    assert f'value="{keep[0]}" data-testid="conf-keep" checked' in again  # the kept meeting, pinned and ticked


def test_job_ids_sort_in_creation_order_within_one_second():
    """Regression: the job list orders by a second-resolution time, then the id; random ids put
    a re-plan started in the same second as its first run below it."""
    from service.storage.store import ordered_id

    ids = [ordered_id("CJ") for _ in range(500)]
    assert sorted(ids) == ids and len(set(ids)) == len(ids)
