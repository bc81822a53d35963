"""The calibrated fit: one number per pair, whichever way it is reached."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matcher.errors import MatcherError, NotFittedError
from matcher.records import Capability, Demand, Partner
from matcher.retrieval.calibration import (
    FEATURES,
    FitCalibrator,
    choose_thresholds,
    default_calibrator,
    expected_calibration_error,
)
from matcher.retrieval.encoders import FakeEncoder
from matcher.retrieval.engine import Filters, MatchEngine

TOPICS = ["防腐涂层 低温 附着力", "焊接 变形 铝合金", "乳清蛋白 膜分离", "OPO 结构脂 奶粉", "秸秆 成型燃料",
          "马铃薯 脱毒 种薯", "风电 叶片 防冰", "视觉 检测 缺陷"]


def _corpus(n_partners=12):
    rng = np.random.default_rng(0)
    caps, partners = [], []
    for p in range(n_partners):
        ptype = ("university", "institute", "team")[p % 3]
        partners.append(Partner(f"p{p}", f"单位{p}", ptype, "齐齐哈尔市"))
        for c in range(1 + p % 3):  # one to three lines each, some unrelated
            topic = TOPICS[(p + 3 * c) % len(TOPICS)]
            caps.append(Capability(f"c{p}_{c}", f"p{p}", topic.split()[0], f"{topic} 研究 {rng.integers(100)}",
                                   partner_name=f"单位{p}", industries=(("乳业", "轨道交通装备")[c % 2],),
                                   language="zh"))
    demands = [Demand(f"d{i}", t.split()[0], f"需要 {t} 技术", industry=("乳业", "轨道交通装备")[i % 2])
               for i, t in enumerate(TOPICS)]
    return caps, demands, partners


@pytest.fixture
def engine():
    caps, demands, partners = _corpus()
    return MatchEngine(FakeEncoder()).fit(caps, demands, partners)


def test_a_filter_never_changes_a_pairs_fit(engine):
    d = engine.demands["d0"]
    plain = {m.partner_id: m.fit for m in engine.match_partners(d, k=50)}
    for filters in (Filters(partner_types=frozenset({"university"})), Filters(industries=frozenset({"乳业"})),
                    Filters(exclude_ids=frozenset({"p1", "p2"}))):
        filtered = engine.match_partners(d, k=50, filters=filters)
        assert filtered, filters
        for m in filtered:
            assert m.fit == pytest.approx(plain[m.partner_id], abs=1e-12)
    by_demand = {h.demand_id: h.fit for h in engine.demands_for_partner("p3", k=50)}
    only_dairy = engine.demands_for_partner("p3", k=50, filters=Filters(industries=frozenset({"乳业"})))
    assert only_dairy and all(h.fit == pytest.approx(by_demand[h.demand_id], abs=1e-9) for h in only_dairy)


def test_same_pair_same_fit_in_every_direction(engine):
    for did in ("d0", "d3", "d5"):
        forward = {m.partner_id: m for m in engine.match_partners(engine.demands[did], k=50)}
        for pid, m in forward.items():
            reverse = {h.demand_id: h for h in engine.demands_for_partner(pid, k=50)}
            assert reverse[did].fit == pytest.approx(m.fit, abs=1e-9)
            assert engine.pair_fit(did, pid) == pytest.approx(m.fit, abs=1e-9)
            assert reverse[did].label == m.label
        for h in engine.match_capabilities(engine.demands[did], k=50):
            assert engine.pair_fit(did, h.capability_id) == pytest.approx(h.fit, abs=1e-9)


def test_a_partner_without_capabilities_fits_nothing_and_fails_nothing(engine):
    """A partner registered after the partners' rows were laid out (no capabilities yet) owns
    no rows: its fit is 0 and it leaves every other partner's fit as it was."""
    from matcher.records import Partner

    d = engine.demands["d0"]
    before = {m.partner_id: m.fit for m in engine.match_partners(d, k=50)}
    engine.upsert_partners([Partner(id="p-new", name="新伙伴")])
    assert engine.pair_fit("d0", "p-new") == 0.0
    fits, _, cols = engine.fits_against([d], ["p-new", *before])
    assert fits[0, 0] == 0.0 and len(cols[0]) == 0
    assert list(fits[0, 1:]) == pytest.approx(list(before.values()), abs=1e-12)
    assert {m.partner_id: m.fit for m in engine.match_partners(d, k=50)} == before


def test_k_is_honoured_and_pages_do_not_move_fits(engine):
    n = len(engine.partners)
    d = engine.demands["d1"]
    for k in (1, 3, n, n + 10):
        got = engine.match_partners(d, k=k)
        assert len(got) == min(k, n)
        assert len({m.partner_id for m in got}) == len(got)
    small, large = engine.match_partners(d, k=3), engine.match_partners(d, k=n)
    assert [(m.partner_id, m.fit) for m in small] == [(m.partner_id, m.fit) for m in large[:3]]
    assert len(engine.demands_for_partner("p0", k=100)) == len(engine.demands)
    assert len(engine.search_demands("防腐涂层", k=2)) == 2


def test_k_is_honoured_when_partners_have_no_candidate():
    # depth 1: only one capability per side is a candidate, yet k partners come back
    from matcher.retrieval.engine import EngineParams
    from matcher.retrieval.rank import FusionParams

    caps, demands, partners = _corpus()
    engine = MatchEngine(FakeEncoder(), EngineParams(fusion=FusionParams(depth=1))).fit(caps, demands, partners)
    got = engine.match_partners(demands[0], k=10)
    assert len(got) == 10 and [m.rank for m in got] == list(range(1, 11))
    assert all(m.fit == pytest.approx(engine.pair_fit("d0", m.partner_id), abs=1e-9) for m in got)


def test_partner_profile_is_its_capabilities_not_their_average(engine):
    # p5 has three lines on unrelated topics: each line's demand is found near the top
    lines = [c for c in engine.capabilities.values() if c.partner_id == "p5"]
    assert len(lines) == 3
    hits = engine.demands_for_partner("p5", k=len(engine.demands))
    top = [h.demand_id for h in hits[:3]]
    for c in lines:
        own = next(d.id for d in engine.demands.values() if c.text.split()[0] in d.text)
        assert own in top, (c.text, top)
    assert {h.capability_id for h in hits[:3]} == {c.id for c in lines}


def test_report_says_when_no_partner_is_suitable(engine):
    report = engine.match_report("完全无关的主题 造雪机 人工降雪", k=5)
    assert not report.suitable and report.best_fit < engine.calibrator.thresholds_.possible
    good = engine.match_report(engine.demands["d0"], k=5)
    assert good.best_fit == pytest.approx(max(m.fit for m in good.matches))
    assert all(m.reason and m.label in ("strong", "possible", "weak") for m in good.matches)


def test_calibrator_recovers_probabilities_on_synthetic_pairs(tmp_path):
    rng = np.random.default_rng(1)
    n = 4000
    feats = np.zeros((n, 1, len(FEATURES)), np.float32)
    feats[:, 0, 1] = rng.normal(0, 1.5, n)
    feats[:, 0, 2] = rng.uniform(0, 1, n)
    true = 1 / (1 + np.exp(-(1.5 * feats[:, 0, 1] + 3 * feats[:, 0, 2] - 3)))
    y = rng.uniform(size=n) < true
    cal = FitCalibrator().fit(list(feats), y)
    fits = cal.capability_fit(feats[:, 0])
    assert expected_calibration_error(fits, y) < 0.03
    assert np.abs(fits - true).mean() < 0.03
    assert cal.thresholds_.strong >= cal.thresholds_.possible
    cal.save(tmp_path / "cal.json")
    again = FitCalibrator.load(tmp_path / "cal.json")
    assert np.allclose(again.capability_fit(feats[:5, 0]), fits[:5], atol=1e-6)
    assert json.loads((tmp_path / "cal.json").read_text())["n_pairs"] == n


def test_partner_fits_equal_each_partner_alone_whatever_shares_the_call(monkeypatch):
    """Partners are scored in padded blocks: a partner's fit must not depend on which partners
    or queries share the call, nor on the block's size."""
    import matcher.retrieval.calibration as calibration

    rng = np.random.default_rng(3)
    sizes = [1, 2, 3, 4, 5, 7, 8, 9, 17, 1, 33]
    feats = rng.normal(0, 1, (6, sum(sizes), len(FEATURES)))
    bounds = np.cumsum([0, *sizes])
    groups = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    cal = default_calibrator()
    alone = np.array([[cal.partner_fits(feats[q : q + 1], [g])[0, 0] for g in groups] for q in range(len(feats))])
    together = cal.partner_fits(feats, groups)
    assert np.array_equal(together, alone)
    single = np.array([[cal.partner_fit(feats[q, g]) for g in groups] for q in range(len(feats))])
    assert np.allclose(together, single, rtol=0, atol=1e-12)
    reversed_order = cal.partner_fits(feats[::-1], groups[::-1])
    assert np.array_equal(reversed_order, together[::-1, ::-1])
    monkeypatch.setattr(calibration, "PAD_BUDGET", 1)  # one partner per block
    assert np.array_equal(cal.partner_fits(feats, groups), together)
    assert cal.partner_fits(feats, []).shape == (6, 0)


def test_partner_fits_of_consecutive_spans_are_the_padded_blocks_numbers():
    """A request's partners own consecutive columns and are scored with one sort
    (`partner_fits_spans`); the numbers must be the padded blocks' to the last bit, partners
    without rows included (fit 0)."""
    rng = np.random.default_rng(5)
    cal = default_calibrator()
    for trial in range(20):
        sizes = rng.integers(0, 12, rng.integers(1, 40))
        sizes[rng.integers(0, len(sizes))] = max(1, sizes.max())
        bounds = np.r_[0, np.cumsum(sizes)]
        feats = rng.normal(0, 1.5, (1, int(bounds[-1]), len(FEATURES)))
        groups = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        spans = cal.partner_fits_spans(feats, bounds)
        assert np.array_equal(spans, cal.partner_fits(feats, groups)), trial
        assert np.all(spans[0, sizes == 0] == 0.0)
    ties = np.zeros((1, 6, len(FEATURES)))  # equal logits within a partner
    assert np.array_equal(cal.partner_fits_spans(ties, np.array([0, 2, 2, 6])),
                          cal.partner_fits(ties, [np.arange(0, 2), np.arange(2, 2), np.arange(2, 6)]))
    many = rng.normal(0, 1, (3, 10, len(FEATURES)))  # several queries: the padded blocks
    bounds = np.array([0, 4, 10])
    assert np.array_equal(cal.partner_fits_spans(many, bounds),
                          cal.partner_fits(many, [np.arange(0, 4), np.arange(4, 10)]))
    assert cal.partner_fits_spans(many[:1, :0], np.array([0])).shape == (1, 0)


def test_calibrator_errors_are_clear(tmp_path):
    with pytest.raises(NotFittedError):
        FitCalibrator().capability_fit(np.zeros((1, 3)))
    with pytest.raises(MatcherError, match="both kinds"):
        FitCalibrator().fit([np.zeros((1, 3))] * 20, [False] * 20)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1, "coef": [1]}')
    with pytest.raises(MatcherError, match="bad.json"):
        FitCalibrator.load(bad)


def test_shipped_calibration_and_thresholds():
    cal = default_calibrator()
    assert cal.about_["task"] == "qiqihar" and cal.n_relevant_ > 100
    assert 0 < cal.thresholds_.possible <= cal.thresholds_.strong < 1
    assert cal.label(0.99) == "strong" and cal.label(0.0) == "weak"
    t = choose_thresholds(np.array([0.1, 0.2, 0.9, 0.95] * 10), np.array([0, 0, 1, 1] * 10))
    assert 0.2 < t.possible <= 0.9


def test_rank_and_conference_candidates_carry_the_same_fit(engine):
    from matcher.conference.run import candidate_table

    demands = [engine.demands[d] for d in ("d0", "d2")]
    for level in ("partner", "capability"):
        ranked = engine.ranked_targets_batch(demands, k=len(engine.capabilities) + 5, level=level)
        expected = len(engine.partners) if level == "partner" else len(engine.capabilities)
        for d, rows in zip(demands, ranked):
            assert len(rows) == expected and len({t for t, _, _ in rows}) == expected
            for target, _, fit in rows:
                assert fit == pytest.approx(engine.pair_fit(d.id, target), abs=1e-9)
    table = candidate_table(engine.match_partners_batch(demands, k=5))
    assert len(table) == 10
    for did, pid, fit in table:
        assert fit == pytest.approx(engine.pair_fit(did, pid), abs=1e-9)


def test_typed_text_search_gives_the_pairs_fit(engine):
    # an institute typing a capability's own text sees the fit that capability has with each
    # demand on the match page, in rank and in the conference (one pair, one fit)
    for cid in ("c0_0", "c3_0", "c5_2"):
        cap = engine.capabilities[cid]
        hits = engine.search_demands(cap.full_text, k=len(engine.demands))
        assert len(hits) == len(engine.demands)
        for h in hits:
            assert h.fit == pytest.approx(engine.pair_fit(h.demand_id, cid), abs=1e-6)
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))


def test_fit_is_standardised_from_both_sides(engine):
    """The capability's view of a pair (its cosine among the demands') is a feature of its own,
    the same from either direction; without indexed demands it falls back to the demand's view."""
    caps, demands, partners = _corpus()
    feats_with = engine.fits_against([engine.demands["d0"]], ["c0_0"], level="capability")[1]
    assert feats_with[0, 0, 3] != pytest.approx(feats_with[0, 0, 1])
    bare = MatchEngine(FakeEncoder()).fit(caps, [], partners)
    feats_bare = bare.fits_against([demands[0]], ["c0_0"], level="capability")[1]
    assert feats_bare[0, 0, 3] == pytest.approx(feats_bare[0, 0, 1])
    assert bare.match_report(demands[0], k=3).matches  # still a fit for every partner
    assert "demand_standardised" in default_calibrator().features


def test_lexical_weight_is_lower_for_chinese_words_and_scaled_by_coverage():
    from matcher.retrieval.collection import Candidates
    from matcher.retrieval.rank import FusionParams, fuse
    from matcher.retrieval.text import Tokenizer, chinese_share

    tokens = Tokenizer()("低温附着力 coating adhesion at -40")
    assert 0.0 < chinese_share(tokens) < 1.0
    assert chinese_share([]) == 0.0 and chinese_share(["涂料", "底漆"]) == 1.0
    dense = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    lexical = np.array([1.0, 4.0, 0.0, 2.0], np.float32)
    rows = np.arange(4)
    params = FusionParams(lexical_weight=0.5, chinese_lexical_weight=0.3)

    def weight(coverage, share):
        return fuse(Candidates(rows, dense, lexical, 8.0, coverage, chinese_share=share), params).lexical_weight

    assert weight(1.0, 0.0) == pytest.approx(0.5)
    assert weight(1.0, 1.0) == pytest.approx(0.3)
    assert weight(0.5, 0.5) == pytest.approx(0.5 * 0.4)
    assert weight(0.0, 1.0) == 0.0  # nothing the corpus knows: dense alone
    fused = fuse(Candidates(rows, dense, lexical, 8.0, 1.0, chinese_share=1.0), params)
    np.testing.assert_allclose(fused.score, 0.7 * fused.dense_norm + 0.3 * lexical / 4.0, rtol=1e-6)
    assert fuse(Candidates(rows, dense, np.zeros(4, np.float32), 8.0, 1.0), params).lexical_weight == 0.0


def test_candidates_carry_the_share_of_chinese_query_words():
    from matcher.retrieval.text import Tokenizer, chinese_share

    tok = Tokenizer()
    engine = MatchEngine(FakeEncoder()).fit(
        [Capability(id="c1", partner_id="p1", title="聚氨酯面漆 低温附着力", text="coating")], [],
        [Partner(id="p1", name="p1")],
    )
    for text in ("聚氨酯面漆的低温附着力", "coating adhesion", "聚氨酯 coating"):
        [cand] = engine._caps.candidates(engine.encoder.encode_queries([text]), [tok(text)])
        assert cand.chinese_share == pytest.approx(chinese_share(tok(text)))


def test_capability_views_in_slices_equal_one_pass(engine, monkeypatch):
    import matcher.retrieval.engine as engine_module

    whole_means, whole_spreads = engine._capability_views()
    engine._views_cache = None
    monkeypatch.setattr(engine_module, "VIEW_ROWS", 3)
    means, spreads = engine._capability_views()
    assert means.shape == whole_means.shape and spreads.shape == whole_spreads.shape
    np.testing.assert_allclose(means, whole_means, rtol=0, atol=1e-12)
    np.testing.assert_allclose(spreads, whole_spreads, rtol=0, atol=1e-12)


def test_capability_views_follow_demand_writes_without_a_full_pass(engine, monkeypatch):
    """Filing, editing and deleting demands (a new demand language appearing and vanishing
    included) moves the capabilities' demand-side views exactly as a full recomputation would,
    and only the changed demands are projected; fits stay those of a fresh engine."""
    from matcher.retrieval import collection as collection_module

    engine._capability_views()
    full_passes = []
    real = collection_module.Collection.projections
    monkeypatch.setattr(collection_module.Collection, "projections",
                        lambda self, others: full_passes.append(len(others)) or real(self, others))
    writes = [
        lambda: engine.upsert_demands([Demand("d_new", "焊接", "需要 焊接 变形 控制 技术")]),
        lambda: engine.upsert_demands([Demand("d1", "焊接", "铝合金 焊接 变形 的 新 需求")]),  # an edit
        lambda: engine.upsert_demands([Demand("d_en", "coating", "anti-icing coating for wind blades",
                                              language="en")]),  # a new language
        lambda: engine.remove_demands(["d2"]),
        lambda: engine.remove_demands(["d_en"]),  # the language vanishes again
    ]
    for write in writes:
        write()
        means, spreads = engine._capability_views()
        assert full_passes == []
        fresh_means, fresh_spreads = engine._dems.views_of(engine._caps.vectors)
        full_passes.clear()  # the reference's own pass
        np.testing.assert_allclose(means, fresh_means, rtol=0, atol=1e-12)
        np.testing.assert_allclose(spreads, fresh_spreads, rtol=0, atol=1e-12)
    caps, _, partners = _corpus()
    fresh = MatchEngine(FakeEncoder()).fit(caps, list(engine.demands.values()), partners)
    for did in ("d_new", "d1", "d0"):
        for pid in ("p0", "p4", "p7"):
            assert engine.pair_fit(did, pid) == pytest.approx(fresh.pair_fit(did, pid), abs=1e-9)


def test_capability_views_are_recomputed_when_the_changes_are_no_longer_kept(engine, monkeypatch):
    from matcher.retrieval import collection as collection_module

    before = engine._capability_views()[1].copy()
    monkeypatch.setattr(collection_module, "JOURNAL_ROWS", 1)
    engine.upsert_demands([Demand("x1", "焊接", "焊接 变形"), Demand("x2", "涂层", "防腐 涂层")])  # 2 rows > 1 kept
    assert engine._dems.changes_since(engine._views_cache.dems_version) is None
    _, spreads = engine._capability_views()
    assert not np.allclose(spreads, before)
    np.testing.assert_allclose(spreads, engine._dems.views_of(engine._caps.vectors)[1], rtol=0, atol=1e-12)


def test_a_typed_texts_fit_from_one_call_for_both_sides_equals_each_side_encoded_alone():
    """With prefixes (as e5), a free-text match takes the text's query and passage vectors from one
    encoder call (tests/retrieval/test_engine.py counts it); the fits equal those from encoding
    each side on its own."""
    caps, demands, partners = _corpus()
    encoder = FakeEncoder()
    encoder.query_prefix, encoder.passage_prefix = "query: ", "passage: "
    engine = MatchEngine(encoder).fit(caps, demands, partners)
    text = "铝合金 焊接 变形 控制"
    report = engine.match_report(text, k=len(partners))
    fits, *_ = engine.fits_against([text], [m.partner_id for m in report.matches])  # each side on its own
    assert [m.fit for m in report.matches] == pytest.approx(list(fits[0]), abs=1e-12)
