"""Demand filling and review on the page (TestClient): the form and its assistant, the review
queue with its change history, partner and capability pages, and the page's languages."""

from __future__ import annotations

import io

from service_testkit import E1, E2

BROWSER = {"Accept": "text/html"}
VAGUE = {"title": "想做一款家用康复训练器", "text": "找能设计的团队。"}
SPECIFIC = {"title": "铁路货车水性涂层低温剥落",
            "text": "目前采用水性环氧底漆，冬季-40℃运用一个冬季后成片剥落，附着力降到3级。要求冷热交变50次后附着力"
                    "不低于1级，耐盐雾≥1000h。经费50万元，12个月内完成。"}


def as_(world, role):
    world.client.cookies.clear()
    world.client.cookies.set("techmatch_token", world.tokens[role])
    return world.client


def test_the_assistant_flags_a_vague_demand_and_asks_staff_questions(world):
    c = as_(world, "enterprise")
    page = c.post("/demands/assist", data=VAGUE).text
    assert 'data-vague="true"' in page and 'data-testid="assist-vague"' in page
    assert page.count('data-testid="assist-question"') == 6
    assert "具体是什么出了问题" in page
    page = c.post("/demands/assist", data=SPECIFIC).text
    assert 'data-vague="false"' in page and 'data-testid="assist-complete"' in page
    assert 'data-testid="assist-question"' not in page
    assert page.count('data-testid="assist-partner"') >= 1 and "寒地材料研究所" in page  # C1 matches
    en = c.post("/demands/assist?lang=en", data=VAGUE).text
    assert "What exactly goes wrong" in en
    ru = c.post("/demands/assist?lang=ru", data=VAGUE).text
    assert "Что именно не так" in ru


def test_similar_demands_never_reveal_another_enterprises_confidential_or_pending_ones(world):
    probe = {"title": "特种钢冶炼夹杂物控制 玉米发酵乳酸转化率",
             "text": "高强度特种钢冶炼夹杂物控制；玉米发酵生产乳酸的转化率低。"}
    other = as_(world, "other_enterprise").post("/demands/assist", data=probe).text
    assert "特种钢冶炼工艺改进" not in other  # D2: E1's, confidential
    assert "玉米发酵新工艺" not in other  # D4: E1's, unpublished
    own = as_(world, "enterprise").post("/demands/assist", data=probe).text
    assert "特种钢冶炼工艺改进" in own and "玉米发酵新工艺" in own  # its own, linked
    assert 'href="/demands/D2"' in own
    staff = as_(world, "staff").post("/demands/assist", data=probe).text
    assert "特种钢冶炼工艺改进" in staff


def test_file_review_return_resubmit_merge_publish_with_history(world):
    c = as_(world, "enterprise")
    r = c.post("/demands/new", data={**VAGUE, "action": "save"}, follow_redirects=False)
    assert r.status_code == 303
    did = r.headers["location"].split("/demands/")[1].split("?")[0]
    assert c.get(f"/demands/{did}").status_code == 200
    institute = as_(world, "institute")
    assert institute.get(f"/demands/{did}", headers=BROWSER).status_code == 404  # pending: hidden

    staff = as_(world, "staff")
    queue = staff.get("/review").text
    first = queue.index('data-testid="review-row"')
    assert did in queue[first:first + 400] and 'data-state="pending"' in queue[first:first + 100]
    assert "enterprise" in queue  # who submitted (the enterprise token's name)

    r = staff.post(f"/demands/{did}/review", data={"action": "return", "note": "请写明目标用户和功能指标"},
                   follow_redirects=False)
    assert r.status_code == 303
    mine = as_(world, "enterprise").get("/demands").text
    assert 'data-testid="list-review-state">已退回修改<' in mine
    page = as_(world, "enterprise").get(f"/demands/{did}").text
    assert 'data-testid="return-note"' in page and "请写明目标用户和功能指标" in page
    assert 'data-testid="edit-demand"' in page

    c = as_(world, "enterprise")
    r = c.post(f"/demands/{did}/edit", data={**SPECIFIC, "action": "save"}, follow_redirects=False)
    assert r.status_code == 303
    staff = as_(world, "staff")
    r = staff.post(f"/demands/{did}/edit", data={**SPECIFIC, "title": SPECIFIC["title"] + "（寒区）",
                                                "industry": "轨道交通装备", "region": "铁锋区", "action": "save"},
                   follow_redirects=False)
    assert r.status_code == 303
    r = staff.post(f"/demands/{did}/review", data={"action": "merge", "target": "D1", "note": "同一问题"},
                   follow_redirects=False)
    assert r.status_code == 303
    page = staff.get(f"/demands/{did}").text
    assert 'data-testid="merged-into"' in page and 'data-testid="merge-group"' in page
    actions = [a.split('"')[0] for a in page.split('data-testid="change-row" data-action="')[1:]]
    assert actions == ["merged_into", "edited", "resubmitted", "returned", "created"]
    assert "（寒区）" in page and "<del>" in page  # what changed, old and new
    merge = world.client.get("/api/demands/D1", headers=world.h("staff")).json()["links"]["merge"]
    assert set(merge["member_ids"]) == {"D1", did} and merge["primary_id"] == "D1"
    d1 = staff.get("/demands/D1").text
    assert 'data-action="merged_from"' in d1

    r = staff.post(f"/demands/{did}/review", data={"action": "publish"}, follow_redirects=False)
    assert r.status_code == 303
    found = as_(world, "institute").get("/institute", params={"q": "水性涂层低温剥落"}).text
    assert did in found


def test_review_errors_are_in_the_page_language(world):
    staff = as_(world, "staff")
    r = staff.post("/demands/D4/review?lang=en", data={"action": "return", "note": " "})
    assert r.status_code == 422 and "Say what the enterprise should add or change." in r.text
    r = staff.post("/demands/D4/review?lang=ru", data={"action": "merge", "target": "D404"})
    assert r.status_code == 422 and "Запроса «D404» для объединения нет." in r.text
    r = as_(world, "enterprise").post("/demands/new?lang=en", data={"title": " ", "text": "", "action": "save"})
    assert r.status_code == 422 and "A demand needs a title or a text." in r.text


def test_enterprises_cannot_edit_published_demands_or_review(world):
    c = as_(world, "enterprise")
    r = c.get("/demands/D1/edit", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/demands/D1"
    r = c.post("/demands/D1/edit", data={**SPECIFIC, "action": "save"})
    assert r.status_code == 422
    assert c.post("/demands/D4/review", data={"action": "publish"}, headers=BROWSER).status_code == 403


def test_api_changes_are_recorded_too(world):
    h = world.h("staff")
    assert world.client.patch("/api/demands/D3", json={"title": "乳品冷链保鲜期短"}, headers=h).status_code == 200
    page = as_(world, "staff").get("/demands/D3").text
    assert 'data-action="edited"' in page and "乳品冷链保鲜期短" in page


def test_partner_and_capability_pages(world):
    h = world.h("staff")
    extra = {"联系人": "张研究员 0452-1234567", "description": "寒地材料"}
    world.client.patch("/api/partners/P1", json={"extra": extra}, headers=h)
    world.client.post("/api/feedback", json={"demand_id": "D1", "partner_id": "P1", "status": "meeting_held",
                                             "reason": "线上会谈"}, headers=h)
    staff = as_(world, "staff")
    page = staff.get("/partners/P1").text
    assert "张研究员 0452-1234567" in page and 'data-testid="partner-meeting"' in page and "线上会谈" in page
    assert page.count('data-testid="partner-capability"') == 2 and "盐雾试验一千小时" in page  # full texts
    inst = as_(world, "other_institute").get("/partners/P1").text
    assert "张研究员" not in inst and 'data-testid="partner-feedback"' not in inst
    staff = as_(world, "staff")
    cap = staff.get("/capabilities/C1").text
    assert "水性涂层在零下四十度的附着力提升" in cap and 'href="/partners/P1"' in cap
    demand = staff.get("/demands/D1").text
    assert 'href="/capabilities/C1"' in demand and 'href="/partners/P1"' in demand
    assert as_(world, "staff").get("/partners/NOPE?lang=ru", headers=BROWSER).text.count("Партнёра «NOPE» нет.") == 1


def test_english_page_shows_the_english_version_and_dates_do_not_wrap(world):
    h = world.h("staff")
    world.client.patch("/api/demands/D1", json={"extra": {"title_en": "Wagon coating peels in the cold",
                                                          "text_en": "Waterborne wagon coating peels in winter."}},
                       headers=h)
    c = as_(world, "staff")
    en = c.get("/demands/D1?lang=en").text
    assert 'data-testid="demand-title">Wagon coating peels in the cold<' in en
    assert "Waterborne wagon coating peels in winter." in en and 'data-testid="demand-original-title"' in en
    assert "Wagon coating peels in the cold" in c.get("/demands?lang=en").text
    ru = c.get("/demands/D1?lang=ru").text
    assert "Wagon coating peels in the cold" in ru and 'lang="ru"' in ru and "Оригинал" in ru
    zh = c.get("/demands/D1?lang=zh").text
    assert 'data-testid="demand-title">货车涂层低温剥落<' in zh
    assert 'class="mono date">2025-03-12' in c.get("/demands").text
    css = c.get("/static/style.css").text
    assert ".date, td.mono, dd.mono { white-space: nowrap; }" in css


def test_taxonomy_labels_plug_in_through_one_function(world, monkeypatch):
    from service.views import localize

    labels = {("industry", "轨道交通装备", "en"): "Rail transit equipment",
              ("region", "铁锋区", "en"): "Tiefeng District"}
    monkeypatch.setattr(localize, "terms", lambda kind, stored, lang: [
        (v, labels.get((kind, v, lang), v)) for v in dict.fromkeys(stored) if v])
    c = as_(world, "staff")
    page = c.get("/demands/D1?lang=en").text
    assert "Rail transit equipment" in page and "Tiefeng District" in page
    assert ">Rail transit equipment</option>" in c.get("/demands?lang=en").text
    assert "Rail transit equipment" in c.get("/demands/new?lang=en").text


def upload(world, data: bytes, name: str, lang: str) -> str:
    c = as_(world, "staff")
    r = c.post(f"/upload?lang={lang}", data={"kind": "demands"}, files={"file": (name, io.BytesIO(data), "text/csv")})
    assert r.status_code == 422
    return r.text


def test_upload_errors_are_in_the_page_language(world):
    sheet = "需求编号,需求名称,需求描述,是否保密\nX1,涂层剥落,低温剥落,也许\n".encode()
    zh = upload(world, sheet, "d.csv", "zh")
    assert "“也许”不是“是/否”值" in zh and "is not a yes/no value" not in zh
    ru = upload(world, sheet, "d.csv", "ru")
    assert "«也许» — не значение да/нет" in ru
    en = upload(world, sheet, "d.csv", "en")
    assert "&#39;也许&#39; is not a yes/no value" in en
    bad = "需求编号,需求名称\nX1,涂层".encode() + b"\xff\xfe\x80" + "剥落\n".encode()
    zh = upload(world, bad, "d.csv", "zh")
    assert "无法按" in zh and "cannot decode" not in zh


def test_a_shift_jis_file_is_an_encoding_problem_not_a_missing_column(world):
    sheet = "番号,タイトル,内容\nJ1,塗装のはく離,低温でのはく離を防ぎたい\n".encode("shift_jis")
    zh = upload(world, sheet, "jp.csv", "zh")
    assert "Shift-JIS" in zh and "缺少" not in zh and "title" not in zh.split('data-testid="upload-errors"')[1]
    en = upload(world, sheet, "jp.csv", "en")
    assert "The file is Japanese Shift-JIS text" in en
    assert E1 and E2  # the seeded enterprises own D1-D4


def test_merging_into_a_demand_that_already_heads_a_merge_extends_it(world):
    staff = as_(world, "staff")
    for did in ("D3", "D4"):
        r = staff.post(f"/demands/{did}/review", data={"action": "merge", "target": "D1"}, follow_redirects=False)
        assert r.status_code == 303
    merge = world.client.get("/api/demands/D1", headers=world.h("staff")).json()["links"]["merge"]
    assert merge["member_ids"] == ["D1", "D3", "D4"] and merge["primary_id"] == "D1"
    assert 'data-testid="merged-into"' in staff.get("/demands/D4").text
