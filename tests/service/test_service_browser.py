"""The web page in headless Chromium (Debian's /usr/bin/chromium, installed by .ci/run).

Sign in as bureau staff, search demands, open one, see ranked partners with their reasons,
record feedback and find it in the history; saves test-artifacts/demand-page.png. Staff open
the demand landscape (test-artifacts/landscape-page.png) and run a conference job from its
page, which follows the job until it is done (test-artifacts/conference-page.png).
Set TECHMATCH_SKIP_BROWSER=1 to skip; otherwise a missing Chromium is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from service_testkit import REPO, Server

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("TECHMATCH_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture
def browser():
    if os.environ.get("TECHMATCH_SKIP_BROWSER") == "1":
        pytest.skip("TECHMATCH_SKIP_BROWSER=1")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium "
                    "(or set TECHMATCH_SKIP_BROWSER=1 to skip the browser test)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path, "--demo")
    yield srv
    srv.stop()


def test_staff_search_open_demand_and_record_feedback(browser, server):
    from playwright.sync_api import expect

    tokens = server.tokens()
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    offsite: list[str] = []
    page.on("request", lambda req: None if req.url.startswith((server.url, "data:")) else offsite.append(req.url))

    page.goto(server.url + "/")
    expect(page).to_have_url(server.url + "/login?next=%2F")
    page.get_by_test_id("login-token").fill(tokens["staff"])
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("demand-list")).to_be_visible()

    page.get_by_test_id("search-input").fill("涂层")
    page.get_by_test_id("search-submit").click()
    rows = page.get_by_test_id("demand-row")
    expect(rows.first).to_be_visible()
    assert "q=%E6%B6%82%E5%B1%82" in page.url
    title = rows.first.get_by_test_id("demand-link").inner_text()
    rows.first.get_by_test_id("demand-link").click()

    expect(page.get_by_test_id("demand-title")).to_have_text(title)
    matches = page.get_by_test_id("partner-match")
    expect(matches.first).to_be_visible()
    assert matches.count() >= 3
    first = matches.first
    partner = first.get_by_test_id("partner-name").inner_text()
    expect(first.get_by_test_id("evidence").first).to_be_visible()
    assert first.get_by_test_id("shared-term").count() >= 1
    assert page.locator("[data-testid=demand-text] mark").count() >= 1  # reasons highlighted in the text

    first.get_by_test_id("feedback-status").select_option("meeting_held")
    first.get_by_test_id("feedback-reason").fill("已安排线上会谈")
    first.get_by_test_id("feedback-submit").click()
    expect(page.get_by_test_id("feedback-saved")).to_be_visible()
    row = page.get_by_test_id("feedback-row").first
    expect(row).to_contain_text("已安排线上会谈")
    expect(row).to_contain_text(partner)
    expect(row).to_contain_text("已会谈")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demand-page.png"), full_page=True)

    page.get_by_role("link", name="English").click()
    expect(page.get_by_test_id("feedback-history")).to_contain_text("Meeting held")
    assert offsite == []  # everything is served locally: no CDN


def test_institute_sees_demands_for_its_profile(browser, server):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server.url + "/login")
    page.get_by_test_id("login-token").fill(server.tokens()["institute"])
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("profile-results")).to_be_visible()
    page.get_by_test_id("free-search-input").fill("低温涂层附着力")
    page.get_by_test_id("free-search-submit").click()
    results = page.get_by_test_id("free-search-results")
    expect(results).to_be_visible()
    results.get_by_test_id("demand-link").first.click()
    expect(page.get_by_test_id("demand-detail")).to_be_visible()
    assert page.get_by_test_id("demand-contact").count() == 0  # no contact fields for institutes
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "institute-demand.png"), full_page=True)


def test_staff_open_the_landscape_and_run_a_conference(browser, server):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    offsite: list[str] = []
    page.on("request", lambda req: None if req.url.startswith((server.url, "data:")) else offsite.append(req.url))
    blocked: list[str] = []  # the page's CSP must not block anything the page uses
    page.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(server.url + "/login?next=/landscape")
    page.get_by_test_id("login-token").fill(server.tokens()["staff"])
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("landscape")).to_be_visible()
    report = page.get_by_test_id("landscape-report")
    expect(report).to_be_visible(timeout=120_000)  # built in the background; the page follows it
    expect(report).to_contain_text("主要发现 Top findings")
    assert report.locator("img").count() >= 4
    assert report.locator("img").first.evaluate("img => img.naturalWidth") > 0  # charts drawn
    expect(page.get_by_test_id("landscape-decisions")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "landscape-page.png"), full_page=True)

    page.get_by_test_id("nav-conference").click()
    page.get_by_test_id("conf-industry").select_option(index=1)
    page.get_by_test_id("conf-k").fill("5")
    page.get_by_test_id("conf-submit").click()
    expect(page.get_by_test_id("conf-started")).to_be_visible()
    job = page.get_by_test_id("conf-job").first
    expect(job).to_have_attribute("data-status", "done", timeout=120_000)  # poll.js swaps the list in
    expect(job.get_by_test_id("conf-job-file").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "conference-page.png"), full_page=True)
    job.get_by_role("link", name="日程目录").click()
    expect(page).to_have_url(re.compile(r"/files/agendas/index\.html$"))
    expect(page.locator("h1")).to_contain_text("技术需求对接会")
    assert offsite == [] and blocked == []


def test_staff_plan_a_conference_with_quotas_and_a_group_rule_and_download_the_pdf(browser, server):
    """The form's constraints from the page: per-demand quotas, a group rule, no quality floor and
    PDF agendas; the run's result page shows them with the meetings and their alternates, the
    combined PDF downloads with its Chinese text, and a re-plan keeps all but one meeting
    (test-artifacts/conference-form.png and
    conference-result.png)."""
    from playwright.sync_api import expect
    from pypdf import PdfReader

    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page.goto(server.url + "/login?next=/conference")
    page.get_by_test_id("login-token").fill(server.tokens()["staff"])
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("conf-form")).to_be_visible()
    page.get_by_test_id("conf-demand_ids").fill("D001 D002 D003 D004 D005 D006")
    page.get_by_test_id("conf-k").fill("5")
    page.get_by_test_id("conf-quotas").fill("D001,1\nD002,2")
    page.get_by_test_id("conf-rules").fill("at most 2 per demand region and partner")
    page.get_by_test_id("conf-floor-select").select_option("none")
    page.get_by_test_id("conf-pdf").check()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "conference-form.png"), full_page=True)
    page.get_by_test_id("conf-submit").click()
    expect(page.get_by_test_id("conf-started")).to_be_visible()
    job = page.get_by_test_id("conf-job").first
    expect(job).to_have_attribute("data-status", "done", timeout=180_000)
    job.get_by_test_id("conf-job-open").click()
    expect(page.get_by_test_id("conf-result-quotas")).to_have_text("D001=1, D002=2")
    expect(page.get_by_test_id("conf-result-rules")).to_contain_text("at most 2 per demand region and partner")
    expect(page.get_by_test_id("conf-result-floor")).to_have_text("不设下限")
    meetings = page.get_by_test_id("conf-meeting")
    assert meetings.count() > 0
    assert page.get_by_test_id("conf-meeting").filter(has_text="D001").count() <= 1
    alternates = page.get_by_test_id("conf-meeting-alternates").all_inner_texts()
    assert any(re.search(r"\(P\d{3}\) 0\.\d{4}", a) for a in alternates), alternates  # swaps for cancellations
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "conference-result.png"), full_page=True)
    with page.expect_download() as info:
        page.get_by_test_id("conf-result-pdf").click()
    path = info.value.path()
    assert Path(path).read_bytes().startswith(b"%PDF")
    text = "".join(p.extract_text() or "" for p in PdfReader(path).pages)
    assert "技术需求对接会" in text and "D001" in text
    # a partner cancels: keep every other meeting and re-plan the rest
    n = meetings.count()
    boxes = page.get_by_test_id("conf-keep")
    for k in range(1, n):  # nothing is pinned yet, so nothing is ticked: tick all but the cancelled one
        boxes.nth(k).check()
    page.get_by_test_id("conf-replan").click()
    expect(page.get_by_test_id("conf-started")).to_be_visible()
    rerun = page.get_by_test_id("conf-job").first
    expect(rerun).to_have_attribute("data-status", "done", timeout=180_000)
    rerun.get_by_test_id("conf-job-open").click()
    expect(page.locator("[data-testid=conf-keep]:checked")).to_have_count(n - 1)
