"""The bureau's industries and counties/districts, and the date forms accepted (issue 13.3)."""

from __future__ import annotations

import json

import pytest

from matcher import taxonomy
from matcher.dates import DateError, normalise_date
from matcher.taxonomy import INDUSTRIES, REGIONS, canonical_industry, canonical_region, label, regions_within


def test_the_lists_hold_the_twelve_industries_and_the_city_with_its_sixteen_parts():
    assert len(INDUSTRIES) == 12 and len(set(INDUSTRIES)) == 12
    assert REGIONS[0] == "齐齐哈尔市" and len(REGIONS) == 17
    assert REGIONS[1:8] == ("龙沙区", "建华区", "铁锋区", "昂昂溪区", "富拉尔基区", "碾子山区", "梅里斯达斡尔族区")
    assert REGIONS[8] == "讷河市" and all(r.endswith("县") for r in REGIONS[9:])


def test_every_value_of_the_demo_corpus_is_known_and_canonical():
    from corpora import demo_corpus_path

    rows = [json.loads(line) for line in (demo_corpus_path() / "demands.jsonl").open(encoding="utf-8")]
    assert {canonical_industry(r["industry"]) for r in rows} == set(INDUSTRIES)
    assert {r["industry"] for r in rows} == set(INDUSTRIES)
    assert {canonical_region(r["region"]) for r in rows} == set(REGIONS[1:])
    assert {r["region"] for r in rows} == set(REGIONS[1:])


@pytest.mark.parametrize("written, canonical", [
    ("讷河", "讷河市"), ("讷河市", "讷河市"), ("齐齐哈尔市富拉尔基区", "富拉尔基区"),
    ("黑龙江省齐齐哈尔市讷河市", "讷河市"),
    ("富拉尔基", "富拉尔基区"), ("梅里斯区", "梅里斯达斡尔族区"), ("Fularji District", "富拉尔基区"),
    (" fularji ", "富拉尔基区"), ("Нэхэ", "讷河市"), ("齐齐哈尔", "齐齐哈尔市"), ("Qiqihar", "齐齐哈尔市"),
])
def test_region_aliases(written, canonical):
    assert canonical_region(written) == canonical


@pytest.mark.parametrize("written, canonical", [
    ("轨道交通", "轨道交通装备"), ("乳制品", "乳业"), ("Dairy", "乳业"), ("dairy", "乳业"), ("冶金", "冶金与特钢"),
    ("Молочная промышленность", "乳业"), ("新能源", "新能源与生物质"), ("寒区技术", "寒地技术"),
])
def test_industry_aliases(written, canonical):
    assert canonical_industry(written) == canonical


@pytest.mark.parametrize("value", ["火星区", "不存在的行业", "", "哈尔滨市南岗区", "区", "县"])
def test_unknown_values_are_none(value):
    assert canonical_region(value) is None and canonical_industry(value) is None


def test_regions_within_a_city_and_a_county():
    city = regions_within("齐齐哈尔市")
    assert city == frozenset(REGIONS) and "讷河市" in city and "龙沙区" in city
    assert regions_within("讷河") == frozenset({"讷河市"}) and regions_within("火星区") == frozenset()


def test_labels_in_three_languages():
    assert label("region", "讷河市", "en") == "Nehe City"
    assert label("industry", "乳业", "ru") == "Молочная промышленность" and label("industry", "乳业", "zh") == "乳业"
    assert all(label("region", r, lang) for r in REGIONS for lang in ("zh", "en", "ru"))
    assert label("industry", "旧的值", "en") == "旧的值"
    with pytest.raises(ValueError):
        label("industry", "乳业", "fr")
    with pytest.raises(ValueError):
        label("colour", "乳业", "en")
    assert "火星区" in taxonomy.unknown_message("region", "火星区")


@pytest.mark.parametrize("written, iso", [
    ("2026年3月5日", "2026-03-05"), ("2026/3/5", "2026-03-05"), ("2026.03", "2026-03"), ("2026-03-05", "2026-03-05"),
    ("2026.3.5", "2026-03-05"), ("2026年3月", "2026-03"), ("2026年3月5号", "2026-03-05"), ("20260305", "2026-03-05"),
    ("２０２６－０３－０５", "2026-03-05"), ("2025-03-12 00:00:00", "2025-03-12"), ("2026", "2026"),
    ("January 10, 2017", "2017-01-10"), ("5 Mar 2026", "2026-03-05"), ("", ""),
])
def test_dates_in_the_usual_forms(written, iso):
    assert normalise_date(written) == iso


@pytest.mark.parametrize("bad", ["not-a-date", "明年三月", "2026-13-45", "2026-02-30", "2026.13", "3/5/2026",
                                 "0001-01-01"])
def test_dates_that_are_not_dates_are_refused(bad):
    with pytest.raises(DateError, match="date|year"):
        normalise_date(bad)
