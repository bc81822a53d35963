"""Demand filling and review in headless Chromium, on the demo corpus (fake encoder).

An enterprise files a vague demand, sees the assistant's questions, adds specifics and sees its
matches change; staff find it first in the review queue, edit it, merge it into the similar
demand already filed and publish it; an institute then finds it. Screenshots go to
test-artifacts/ (filing-*.png). TECHMATCH_SKIP_BROWSER=1 skips, as in test_service_browser.
"""

from __future__ import annotations

import re

import pytest
from test_service_browser import ARTIFACTS, browser, server  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

VAGUE_TITLE = "想做一款家用康复训练器"
SPECIFICS = ("想做一款适合老年人在家用的上肢康复训练器。目前样机采用单电机驱动，阻力调节只有3档，患者反馈力度突变、"
             "关节不适。要求阻力0-30N连续可调，整机重量不超过8kg，成本控制在2000元以内。预算30万元，12个月内完成样机。")


def sign_in(browser, server, role: str, next_path: str = "/"):  # noqa: F811 - the fixture's value
    page = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
    page.goto(f"{server.url}/login?next={next_path}")
    page.get_by_test_id("login-token").fill(server.tokens()[role])
    page.get_by_test_id("login-submit").click()
    page.wait_for_load_state()
    return page


def partner_list(page) -> str:
    return " | ".join(page.get_by_test_id("assist-partner").all_inner_texts())


def test_enterprise_files_staff_review_merge_publish_institute_finds(browser, server):  # noqa: F811
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    page = sign_in(browser, server, "enterprise")
    page.get_by_test_id("nav-new-demand").click()
    expect(page.get_by_test_id("assist-empty")).to_be_visible()

    # a vague demand: the assistant says so and asks staff's questions, live as the user types
    page.get_by_test_id("form-title").type(VAGUE_TITLE)
    check = page.get_by_test_id("assist-check")
    expect(check).to_have_attribute("data-vague", "true", timeout=15_000)
    expect(page.get_by_test_id("assist-vague")).to_be_visible()
    assert page.get_by_test_id("assist-question").count() == 6
    expect(page.get_by_test_id("assist-questions")).to_contain_text("具体是什么出了问题")
    expect(page.get_by_test_id("assist-partner").first).to_be_visible()
    before = partner_list(page)
    expect(page.get_by_test_id("assist-similar")).to_contain_text("想做一款家用康复训练器")  # D107, filed before
    page.screenshot(path=str(ARTIFACTS / "filing-vague.png"), full_page=True)

    # specifics: the flag goes, fewer questions, and the matches change
    page.get_by_test_id("form-text").fill(SPECIFICS)
    expect(check).to_have_attribute("data-vague", "false", timeout=15_000)
    expect(page.locator("[data-aspect=constraints]")).to_have_attribute("data-found", "true")
    expect(page.locator("[data-aspect=target]")).to_have_attribute("data-found", "true")
    expect(page.locator("[data-aspect=budget]")).to_have_attribute("data-found", "true")
    assert page.get_by_test_id("assist-question").count() < 6
    page.wait_for_function("b => document.querySelector('#assistant').innerText.indexOf(b) < 0",
                           arg=before[:40], timeout=15_000) if before else None
    after = partner_list(page)
    assert after and after != before
    page.screenshot(path=str(ARTIFACTS / "filing-specific.png"), full_page=True)

    page.get_by_role("link", name="Русский").click()
    expect(page.get_by_test_id("assist-empty")).to_contain_text("Начните вводить текст")
    page.get_by_test_id("form-title").type(VAGUE_TITLE)
    expect(page.get_by_test_id("assist-questions")).to_contain_text("Что именно не так", timeout=15_000)
    page.get_by_test_id("form-text").fill(SPECIFICS)
    expect(page.get_by_test_id("assist-check")).to_have_attribute("data-vague", "false", timeout=15_000)
    page.get_by_test_id("form-submit").click()
    expect(page.get_by_test_id("demand-filed")).to_be_visible()
    expect(page.get_by_test_id("review-state")).to_have_text("Ожидает проверки")
    demand_id = re.search(r"/demands/([^/?#]+)", page.url).group(1)
    page.screenshot(path=str(ARTIFACTS / "filing-submitted-ru.png"), full_page=True)

    # staff: pending first, with who and when; edit, merge into D107, publish
    staff = sign_in(browser, server, "staff", "/review")
    first = staff.get_by_test_id("review-row").first
    expect(first).to_contain_text(demand_id)
    expect(first).to_have_attribute("data-state", "pending")
    expect(first.get_by_test_id("review-who")).to_have_text("demo enterprise")
    staff.screenshot(path=str(ARTIFACTS / "filing-review-queue.png"), full_page=True)
    first.get_by_test_id("review-link").click()
    staff.get_by_test_id("edit-demand").click()
    staff.get_by_test_id("form-title").fill("家用上肢康复训练器阻力连续可调")
    staff.get_by_test_id("form-industry").fill("生物医药")
    staff.get_by_test_id("form-submit").click()
    expect(staff.get_by_test_id("demand-saved")).to_be_visible()
    expect(staff.get_by_test_id("demand-title")).to_have_text("家用上肢康复训练器阻力连续可调")
    staff.get_by_test_id("review-merge-target").fill("D107")
    staff.get_by_test_id("review-merge").click()
    expect(staff.get_by_test_id("review-done")).to_be_visible()
    expect(staff.get_by_test_id("merge-group")).to_contain_text("D107")
    staff.get_by_test_id("review-publish").click()
    expect(staff.get_by_test_id("review-done")).to_have_text("已发布。")
    rows = staff.get_by_test_id("change-row")
    assert [rows.nth(i).get_attribute("data-action") for i in range(rows.count())] == [
        "published", "merged_into", "edited", "created"]
    expect(rows.nth(2)).to_contain_text("家用上肢康复训练器阻力连续可调")
    expect(rows.nth(3)).to_contain_text("demo enterprise")
    staff.screenshot(path=str(ARTIFACTS / "filing-staff-demand.png"), full_page=True)
    evidence = staff.get_by_test_id("evidence-link").first
    cap_title = evidence.inner_text()
    evidence.click()
    expect(staff.get_by_test_id("capability-title")).to_have_text(cap_title)
    staff.get_by_test_id("capability-partner").click()
    expect(staff.get_by_test_id("partner-capabilities")).to_contain_text(cap_title)
    expect(staff.get_by_test_id("partner-contacts")).to_be_visible()
    staff.screenshot(path=str(ARTIFACTS / "filing-partner.png"), full_page=True)

    # an institute now finds it
    inst = sign_in(browser, server, "institute")
    inst.get_by_test_id("free-search-input").fill("上肢康复训练器 阻力连续可调")
    inst.get_by_test_id("free-search-submit").click()
    link = inst.get_by_test_id("free-search-results").locator(f'a[href="/demands/{demand_id}"]')
    expect(link).to_be_visible()
    link.click()
    expect(inst.get_by_test_id("demand-title")).to_have_text("家用上肢康复训练器阻力连续可调")
    assert inst.get_by_test_id("review-panel").count() == 0 and inst.get_by_test_id("change-history").count() == 0
    inst.screenshot(path=str(ARTIFACTS / "filing-institute.png"), full_page=True)
