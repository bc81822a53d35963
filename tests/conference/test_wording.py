"""The plan and the diagnosis in Russian: template tables, plural forms, no English left over."""

from __future__ import annotations

import re

import pytest

from matcher.conference.assign import AssignmentConstraints, InfeasibleError, assign
from matcher.conference.schedule import make_slots, schedule_meetings
from matcher.conference.summary import PHRASES, plain_summary
from matcher.conference.wording import LANGS, SUGGESTIONS, fill, plural
from matcher.records import Demand, Partner

FORMS = ("встреча", "встречи", "встреч")


@pytest.mark.parametrize(("n", "form"), [(0, 2), (1, 0), (2, 1), (4, 1), (5, 2), (11, 2), (12, 2), (14, 2),
                                         (21, 0), (22, 1), (25, 2), (101, 0), (111, 2), (112, 2), (1004, 1)])
def test_russian_plural_forms(n, form):
    assert plural("ru", n, *FORMS) == FORMS[form]


def test_english_and_chinese_plurals_and_numbers():
    assert [plural("en", n, "meeting", "meetings") for n in (0, 1, 2, 21)] == ["meetings", "meeting"] + ["meetings"] * 2
    assert plural("zh", 5, "场") == "场"
    assert fill("ru", "{n} {n:встреча|встречи|встреч}, {x:.1f}%", n=21, x=12.34) == "21 встреча, 12,3%"
    assert fill("en", "{n} {n:meeting|meetings}, {x:.1f}%", n=21, x=12.34) == "21 meetings, 12.3%"


@pytest.mark.parametrize("table", [PHRASES, SUGGESTIONS])
def test_every_template_has_every_language(table):
    for key, by_lang in table.items():
        assert set(by_lang) == set(LANGS), key
        fields = {lang: set(re.findall(r"\{(\w+)", text)) for lang, text in by_lang.items()}
        # a language may leave out a detail (the pin rule's name in zh) but never invent a field
        assert fields["ru"] <= fields["en"] | fields["zh"], key


def latin_words(text: str, allowed: set[str]) -> list[str]:
    """Latin-letter words in `text` that are not ids or names."""
    for word in sorted(allowed, key=len, reverse=True):
        text = text.replace(word, " ")
    return re.findall(r"[A-Za-z]+", text)


def one_each(n: int):
    """n demands from n enterprises, each with its own partner: n meetings, all scheduled."""
    ds = [Demand(id=f"d{i}", title=f"需求 {i}", text="冬季涂层剥落", enterprise=f"企业{i}") for i in range(n)]
    ps = [Partner(id=f"p{i}", name=f"Институт {i}") for i in range(n)]
    result = assign([(f"d{i}", f"p{i}", 0.8) for i in range(n)],
                    AssignmentConstraints(capacity=1, min_per_demand=1, max_per_demand=1), demands=ds, partners=ps)
    sched = schedule_meetings([(a.demand_id, a.partner_id) for a in result.pairs], make_slots("09:00-10:00", 20),
                              n, enterprise_of={d.id: d.enterprise for d in ds})
    return ds, ps, result, sched


@pytest.mark.parametrize(("n", "meetings", "demands", "enterprises", "each", "scheduled", "tables"), [
    (1, "встреча", "запросу", "предприятия", "предприятие", "встречи", "стол"),
    (2, "встречи", "запросам", "предприятий", "предприятия", "встреч", "стола"),
    (5, "встреч", "запросам", "предприятий", "предприятий", "встреч", "столов"),
    (21, "встреча", "запросу", "предприятия", "предприятие", "встречи", "стол"),
])
def test_russian_summary_counts_in_the_right_plural(n, meetings, demands, enterprises, each, scheduled, tables):
    ds, ps, result, sched = one_each(n)
    lines = plain_summary(result, sched, ds, ps, lang="ru")
    assert lines[0] == f"{n} {meetings} по {n} {demands} от {n} {enterprises}: {n} {each} — по 1 встрече."
    assert lines[-1] == f"Для {n} {scheduled} назначены время и стол (3 сеанса, {n} {tables})."
    assert "Здесь оба способа дают одинаково хороший план" in lines[1]
    assert not latin_words("\n".join(lines), {d.id for d in ds} | {p.id for p in ps})


def test_russian_summary_and_diagnosis_of_a_short_plan_have_no_english():
    # p1 is the only candidate of d1..d3 (capacity 1): two fall short and the diagnosis asks for +2;
    # d4 has no candidate at all; d5 meets p2; one table in one slot leaves a meeting unplaced
    ds = [Demand(id=f"d{i}", title=f"需求 {i}", text="涂层", enterprise=f"企业{i % 2}") for i in range(1, 6)]
    ps = [Partner(id="p1", name="Томский политехнический университет"), Partner(id="p2", name="齐齐哈尔大学")]
    rows = [("d1", "p1", 0.9), ("d2", "p1", 0.8), ("d3", "p1", 0.7), ("d5", "p2", 0.6), ("d5", "p1", 0.5)]
    result = assign(rows, AssignmentConstraints(capacity=1, min_per_demand=1, max_per_demand=1),
                    demands=ds, partners=ps)
    sched = schedule_meetings([(a.demand_id, a.partner_id) for a in result.pairs], make_slots("09:00-09:20", 20),
                              1, enterprise_of={d.id: d.enterprise for d in ds})
    assert result.shortfalls and result.binding_partners and sched.unplaced
    lines = plain_summary(result, sched, ds, ps, lang="ru")
    fixes = [s.text("ru") for s in result.suggestions]
    text = "\n".join(lines + fixes)
    assert not latin_words(text, {"d1", "d2", "d3", "d4", "d5", "p1", "p2"}), text
    assert "3 запроса получили меньше встреч" in text and "(3 из них — ни одной)" in text
    assert "1 партнёр расписан полностью (не более 1 встречи у каждого)" in text
    assert "Томский политехнический университет (p1, ещё 2 запроса)" in text
    assert lines[0] == ("2 встречи по 5 запросам от 2 предприятий: 1 предприятие — по 2 встречи; "
                        "1 предприятие — без встреч.")
    assert "Ещё 1 встречу не удалось разместить" in text
    assert "увеличьте число встреч партнёра p1 с 1 до 3 (+2 встречи)" in fixes
    assert ("у запроса d4 только 0 подходящих партнёров при минимуме 1 встреча: снизьте его минимум до 0"
            in "\n".join(fixes))
    # the same plan still reads as before in Chinese and English
    assert any("把伙伴 p1 的接待名额从 1 场增加到 3 场（+2）" == s.zh for s in result.suggestions)
    assert any("raise the capacity of partner p1 from 1 to 3 (+2 meetings)" == s.en for s in result.suggestions)


def test_pin_conflicts_are_worded_in_russian():
    rows = [("d1", "p1", 0.9), ("d2", "p1", 0.8), ("d3", "p1", 0.7)]
    with pytest.raises(InfeasibleError) as info:
        assign(rows, AssignmentConstraints(capacity=1, pins=(("d1", "p1"), ("d2", "p1"), ("d3", "p1"))))
    (fix,) = info.value.suggestions
    assert fix.ru == "увеличьте число встреч партнёра p1 с 1 до 3 или снимите закрепление 2 встреч"
    assert fix.en == "raise the capacity of partner p1 from 1 to 3, or unpin 2 of its meetings"
    assert fix.zh == "把伙伴 p1 的接待名额从 1 提高到 3，或取消其中 2 个确认对接"
    with pytest.raises(ValueError, match="unknown language 'de'"):
        fix.text("de")
