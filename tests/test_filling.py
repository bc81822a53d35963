"""The demand filling check (matcher.filling) and its measurement on the demo corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from matcher.filling import ASPECTS, check_demand

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("title, text", [
    ("想做一款家用康复训练器", ""),
    ("希望提升我公司产品整体技术水平",
     "近年来市场竞争激烈，利润下降，希望与高校合作提升产品竞争力，具体合作内容可以面谈。"),
    ("Improve our competitiveness", "We want to cooperate with universities to upgrade our products."),
    ("Повысить технический уровень продукции", "Хотим сотрудничать с институтами и повысить конкурентоспособность."),
])
def test_a_wish_without_substance_is_vague_with_every_question(title, text):
    check = check_demand(title, text)
    assert check.vague
    assert {"problem", "current", "constraints", "target"} <= set(check.missing)
    assert len(check.questions) == len(check.missing)
    assert all(q.endswith("?") for q in check.questions)


def test_a_specific_demand_names_every_aspect():
    check = check_demand(
        "货车水性涂层低温剥落",
        "目前采用水性环氧底漆，冬季-40℃下运用一个冬季后成片剥落，划格法附着力降到3级。要求冷热交变50次后附着力"
        "不低于1级，耐盐雾≥1000h。经费50万元，希望12个月内完成。")
    assert not check.vague
    assert check.missing == ()
    ev = check.as_dict()["evidence"]
    assert ev["problem"] == "剥落" and ev["current"] == "采用" and "-40℃" in ev["constraints"]
    assert ev["budget"] == "经费50万元" and "12个月" in ev["timeline"]


def test_english_and_russian_aspects():
    en = check_demand("Coating peels in winter", "We currently use a waterborne epoxy process; it cracks at -40 °C. "
                      "Target: adhesion at least grade 1. Budget 500k CNY, within 12 months.")
    assert en.missing == ()
    ru = check_demand("Отслаивание покрытия", "Сейчас используем эпоксидную систему, при -40 °C появляются трещины. "
                      "Нужна адгезия не менее 1 балла. Бюджет 2 млн руб, срок 12 месяцев.")
    assert ru.missing == ()


def test_business_complaints_are_not_technical_problems():
    check = check_demand("提高附加值", "现在主要卖原粮，附加值低，利润下降。")
    assert "problem" not in check.found and "current" not in check.found and check.vague


def test_budget_or_timeline_alone_does_not_make_a_demand_specific():
    check = check_demand("养殖场环保达标", "希望有单位帮我们做整体方案，费用不要太高，今年内完成。")
    assert check.found == ("budget", "timeline") and check.vague


def test_counters_and_years_are_not_constraints():
    assert "constraints" not in check_demand("上一个项目", "我们有一台设备，2025年想上一个新项目。").found
    assert check_demand("", "浸泡水每天约800立方米").as_dict()["evidence"]["constraints"] == "800立方米"


def test_every_aspect_has_a_question():
    assert list(ASPECTS) == ["problem", "current", "constraints", "target", "budget", "timeline"]


def test_check_demands_command_on_the_demo_corpus(capsys):
    from matcher.cli import main

    assert main(["check-demands", str(ROOT / "corpora/qiqihar"), "--model", "fake"]) == 0
    out = capsys.readouterr().out
    assert "flagged vague:" in out and "precision" in out and "nDCG@10 (fused): flagged" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("vague "))
    marked, flagged, both, precision, recall = line.split()[1:]
    assert int(marked) == 13 and float(recall) >= 0.9 and float(precision) >= 0.5
