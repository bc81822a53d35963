"""Reasons show technical terms only: the corpus-built dictionary, places kept whole, generic words out."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.io.tasks import load_task
from matcher.records import Capability, Demand
from matcher.retrieval.encoders import FakeEncoder
from matcher.retrieval.engine import MatchEngine
from matcher.retrieval.text import Tokenizer, has_chinese, is_chinese_word
from matcher.retrieval.vocabulary import TermVocabulary, corpus_terms, is_generic

ROOT = Path(__file__).resolve().parents[2]
# Shown as "shared terms" before issue 14 (function words, fragments, units, time words) and
# as landscape cluster names.
JUNK = ("还是", "严重", "以下", "用于", "工作", "mm", "次年", "每年", "期间", "哈尔", "管理水平", "成熟技术",
        "偶有", "均匀", "我县", "基于", "为主")


@pytest.mark.parametrize("word", [w for w in JUNK if w not in ("哈尔", "mm")])
def test_generic_words_are_recognised(word):
    assert is_generic(word)


@pytest.mark.parametrize("word", ["涂层", "发酵", "耐寒", "玉米", "淬火", "铁路", "附着力", "玄武岩"])
def test_technical_words_are_not_generic(word):
    assert not is_generic(word)


def test_places_stay_whole_and_are_not_shown():
    vocab = TermVocabulary()
    words = vocab.whole_words("齐齐哈尔市的低温防腐涂层已在哈尔滨和梅里斯达斡尔族区试用")
    assert "哈尔" not in words
    assert {"齐齐哈尔市", "哈尔滨"} <= words
    assert not vocab.shows("哈尔滨") and not vocab.shows("齐齐哈尔") and not vocab.shows("讷河")
    assert vocab.shows("涂层")


def test_corpus_terms_are_recurring_multiword_units_not_fragments():
    texts = [f"{pre}玄武岩纤维{post}" for pre, post in
             [("采用", "增强"), ("开发", "制品"), ("研究", "复合"), ("生产", "布")]] + ["低温冲击", "焊接工艺"]
    terms = corpus_terms(texts, min_df=2, max_df_share=1.0)
    assert "玄武岩纤维" in terms
    vocab = TermVocabulary(terms)
    words = vocab.whole_words("玄武岩纤维增强复合材料")
    assert {"玄武岩纤维", "玄武岩", "纤维"} <= words  # whole, and its pieces still match elsewhere


def test_a_shared_compound_is_shown_before_its_pieces():
    caps = [Capability(f"c{i}", f"p{i}", t, t, partner_name=f"单位{i}", language="zh") for i, t in enumerate([
        "玄武岩纤维增强复合材料的制备", "玄武岩纤维布的织造与应用", "玄武岩纤维筋用于寒区道路", "铝合金焊接变形控制",
        "乳清蛋白膜分离", "秸秆成型燃料", "视觉检测缺陷", "风电叶片防冰涂层", "马铃薯脱毒种薯", "奶粉罐封口卷边"])]
    demands = [Demand("d1", "纤维", "需要玄武岩纤维增强的管材"), Demand("d2", "纤维2", "玄武岩纤维格栅的生产线")]
    engine = MatchEngine(FakeEncoder(dim=64)).fit(caps, demands)
    top = engine.match_capabilities(demands[0], k=3)
    shown = [t for h in top for t in h.shared_terms]
    assert "玄武岩纤维" in shown
    assert not any(t in ("玄武岩", "纤维") for h in top for t in h.shared_terms if "玄武岩纤维" in h.shared_terms)


def test_haer_is_never_shared_between_qiqihar_and_harbin():
    caps = [Capability("c1", "p1", "哈尔滨冰雕", "哈尔滨冰雪大世界冰雕建筑施工", partner_name="哈尔滨某院",
                       language="zh"),
            Capability("c2", "p2", "齐齐哈尔涂层", "齐齐哈尔大学低温涂层研究", partner_name="齐齐哈尔大学",
                       language="zh")]
    demand = Demand("d1", "冰雪", "齐齐哈尔市冰雪建筑需要哈尔滨的冰雕施工经验")
    engine = MatchEngine(FakeEncoder(dim=32)).fit(caps, [demand])
    for m in engine.match_partners(demand, k=2):
        terms = set(m.shared_terms) | {t for h in m.evidence for t in h.shared_terms}
        assert "哈尔" not in terms and "哈尔滨" not in terms and "齐齐哈尔" not in terms
        assert "哈尔," not in m.reason and "哈尔)" not in m.reason  # the title names 哈尔滨 itself
    for hit in engine.search_demands("哈尔滨冰雕施工", k=1):
        assert "哈尔" not in hit.shared_terms


def test_demo_corpus_reasons_hold_no_junk():
    task = load_task(ROOT / "corpora" / "qiqihar")
    engine = MatchEngine(FakeEncoder(dim=64)).fit(task.capabilities, task.demands)
    shown = set()
    for demand in task.demands:
        for m in engine.match_partners(demand, k=5):
            shown.update(m.shared_terms)
            shown.update(t for h in m.evidence for t in h.shared_terms)
            assert not any(j in m.reason for j in ("哈尔、", "、哈尔）", "：哈尔"))
    assert shown, "the demo corpus's reasons name some shared terms"
    assert not shown & set(JUNK), shown & set(JUNK)
    assert not {t for t in shown if is_generic(t)}


# Latin, Cyrillic, digits, Chinese, full-width forms and symbols NFKC turns into Chinese
# characters (the Kangxi radical ⼈, the compatibility ideograph 豈, the circled 一 of ㊀)
MIXED = st.text(alphabet=st.sampled_from(list("ab Cd-3.5\u0436\u0451低温涂层哈尔滨ＡＢ１⼈豈㊀、。 ")), max_size=60)


@settings(max_examples=300, deadline=None)
@given(text=MIXED)
def test_whole_words_of_tokens_is_whole_words_of_the_non_chinese_tokens(text):
    """The shortcut for texts without Chinese gives what the long way gives, for any text."""
    vocab = TermVocabulary(["低温涂层", "哈尔滨"])
    tokens = Tokenizer()(text)
    assert vocab.whole_words_of_tokens(text, tokens) == vocab.whole_words(
        text, [t for t in tokens if not is_chinese_word(t)])


def test_has_chinese_sees_characters_normalisation_makes():
    assert not has_chinese("Low-temperature coatings, 3.5 mm; покрытия")
    assert has_chinese("coating 涂层") and has_chinese("⼈") and has_chinese("㊀")
