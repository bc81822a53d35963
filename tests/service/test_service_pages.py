"""The web page through TestClient: sign-in, escaping, languages, demand page, feedback,
upload errors, the institute page."""

from __future__ import annotations

import io
import re

BROWSER = {"Accept": "text/html"}


def login(world, role: str) -> None:
    r = world.client.post("/login", data={"token": world.tokens[role], "next": "/demands"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/demands"
    cookie = r.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()


def test_pages_need_a_sign_in_and_come_back_after_it(world):
    c = world.client
    r = c.get("/demands/D1?lang=en", headers=BROWSER, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fdemands%2FD1%3Flang%3Den"
    page = c.get(r.headers["location"]).text
    assert 'value="/demands/D1?lang=en"' in page
    r = c.post("/login", data={"token": "wrong"}, follow_redirects=False)
    assert r.status_code == 401 and 'data-testid="login-error"' in r.text
    r = c.post("/login", data={"token": world.tokens["staff"], "next": "https://evil.example/"},
               follow_redirects=False)
    assert r.headers["location"] == "/"  # no open redirect
    r = c.post("/logout", follow_redirects=False)
    assert r.status_code == 303 and c.get("/demands", follow_redirects=False).status_code == 303


def test_the_api_ignores_the_page_cookie(world):
    login(world, "staff")
    assert world.client.get("/api/demands").status_code == 401


def test_cross_site_form_posts_are_refused(world):
    login(world, "staff")
    r = world.client.post("/demands/D1/feedback", data={"partner_id": "P1", "status": "contacted"},
                          headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403


def test_demand_list_searches_and_filters(world):
    login(world, "staff")
    c = world.client
    page = c.get("/demands").text
    assert page.count('data-testid="demand-row"') == 4 and "共 4 条" in page
    assert c.get("/demands?q=涂层").text.count('data-testid="demand-row"') == 1
    assert c.get("/demands?industry=乳业").text.count('data-testid="demand-row"') == 1
    assert c.get("/demands?region=铁锋区").text.count('data-testid="demand-row"') == 1
    semantic = c.get("/demands?q=乳品冷链&mode=semantic").text
    assert semantic.index(">乳品冷链保鲜<") < semantic.index(">货车涂层低温剥落<")


def test_titles_are_escaped_everywhere(world):
    evil = '<script>alert("x")</script>'
    world.client.post("/api/demands", json={"id": "DX", "title": evil, "text": evil + " 低温涂层"},
                      headers=world.h("staff"))
    world.client.post("/api/capabilities", json={"partner_id": "P1", "title": evil + "涂层"},
                      headers=world.h("staff"))
    login(world, "staff")
    for url in ("/demands", "/demands/DX", "/demands?q=script"):
        html = world.client.get(url).text
        assert "<script>" not in html and "&lt;script&gt;" in html, url


def test_demand_page_shows_ranked_partners_with_highlighted_reasons(world):
    login(world, "staff")
    html = world.client.get("/demands/D1").text
    assert html.count('data-testid="partner-match"') == 2
    first = html[html.index('data-testid="partner-match"'):]
    assert "寒地材料研究所" in first[:600]
    assert re.search(r"<mark[^>]*>[^<]*涂层</mark>", first)  # 涂层, or whole as 水性涂层
    assert 'data-testid="components"' in first and 'data-testid="feedback-form"' in first
    assert 'data-testid="demand-contact"' in html  # staff see contacts
    assert world.client.get("/demands/D1?partner_type=university").text.count('data-testid="partner-match"') == 1


def test_feedback_from_the_page_lands_in_the_history(world):
    login(world, "staff")
    c = world.client
    r = c.post("/demands/D1/feedback", data={"partner_id": "P1", "status": "rejected", "reason": ""},
               follow_redirects=False)
    assert r.status_code == 422 and 'data-testid="feedback-error"' in r.text
    r = c.post("/demands/D1/feedback", data={"partner_id": "P1", "status": "meeting_held", "reason": "已会谈"})
    assert r.status_code == 200 and 'data-testid="feedback-saved"' in r.text
    history = r.text[r.text.index('data-testid="feedback-history"'):]
    assert "已会谈" in history and "meeting" not in history and "test staff" in history
    assert "已会谈" in c.get("/demands/D1?lang=en").text
    csv = c.get("/feedback/export?demand_id=D1")
    assert csv.status_code == 200 and "meeting_held" in csv.text


def test_languages_switch_and_stick(world):
    login(world, "staff")
    c = world.client
    assert "技术需求" in c.get("/demands").text
    r = c.get("/demands?lang=en")
    assert "Demands" in r.text and 'lang="en"' in r.text and "techmatch_lang=en" in r.headers["set-cookie"]
    assert 'lang="en"' in c.get("/demands/D1").text  # remembered
    assert 'lang="zh-CN"' in c.get("/demands?lang=zh").text
    assert 'lang="zh-CN"' in c.get("/demands?lang=xx").text  # unknown: the remembered one


def test_upload_page_shows_row_errors_in_a_table(world):
    login(world, "staff")
    bad = "需求编号,需求名称,需求描述,是否保密\nQ1,甲,描述,否\nQ2,乙,描述,也许\n"
    r = world.client.post("/upload", data={"kind": "demands"},
                          files={"file": ("需求.csv", io.BytesIO(bad.encode()), "text/csv")})
    assert r.status_code == 422
    table = r.text[r.text.index('data-testid="upload-errors"'):]
    assert table.count('data-testid="upload-error-row"') == 1 and "是否保密" in table and ">3<" in table
    assert world.client.get("/api/demands/Q1", headers=world.h("staff")).status_code == 404
    good = bad.replace("也许", "是")
    r = world.client.post("/upload", data={"kind": "demands"},
                          files={"file": ("需求.csv", io.BytesIO(good.encode()), "text/csv")})
    assert r.status_code == 200 and 'data-testid="upload-ok"' in r.text
    assert world.client.get("/api/demands/Q2", headers=world.h("staff")).json()["confidential"] is True


def test_institute_page_lists_demands_for_its_profile_without_contacts(world):
    login(world, "institute")
    c = world.client
    home = c.get("/", follow_redirects=False)
    assert home.headers["location"] == "/institute"
    html = c.get("/institute").text
    assert 'data-testid="profile-results"' in html and 'href="/demands/D1"' in html
    assert 'href="/demands/D2"' not in html and 'href="/demands/D4"' not in html  # confidential, unpublished
    assert re.search(r"<mark>[^<]*涂层</mark>", html)  # 涂层, or whole as 水性涂层
    found = c.get("/institute?q=乳品冷链保鲜").text
    assert 'data-testid="free-search-results"' in found and 'href="/demands/D3"' in found
    detail = c.get("/demands/D1").text
    assert "刘建国" not in detail and 'data-testid="partner-match"' not in detail
    assert c.get("/demands/D2", headers=BROWSER).status_code == 404
    assert c.get("/upload", headers=BROWSER).status_code == 403


def test_enterprise_sees_matches_for_its_own_demands_only(world):
    login(world, "enterprise")
    c = world.client
    assert c.get("/demands").text.count('data-testid="demand-row"') == 3
    own = c.get("/demands/D2").text
    assert 'data-testid="partner-match"' in own and 'data-testid="feedback-form"' not in own
    assert c.get("/demands/D3", headers=BROWSER).status_code == 404
    assert 'data-testid="error-page"' in c.get("/demands/D3", headers=BROWSER).text
