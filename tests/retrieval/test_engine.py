from __future__ import annotations

import pytest

from matcher.errors import MatcherError, NotFoundError
from matcher.records import Capability, Demand, Partner
from matcher.retrieval.encoders import FakeEncoder
from matcher.retrieval.engine import EngineParams, Filters, MatchEngine
from matcher.retrieval.rank import AggregationParams

CAPS = [
    Capability(
        "c1",
        "p1",
        "铁路货车防腐涂层",
        "低温 -40°C 附着力 耐盐雾 防腐涂层 体系",
        partner_name="寒地涂层课题组",
        industries=("轨道交通装备",),
        language="zh",
    ),
    Capability(
        "c2",
        "p2",
        "婴幼儿配方奶粉 OPO 结构脂",
        "OPO 结构脂 酶法 工艺",
        partner_name="乳品研究所",
        industries=("乳业",),
        language="zh",
    ),
    Capability(
        "c3",
        "p2",
        "乳清蛋白 膜分离",
        "乳清蛋白 浓缩 膜分离 节能",
        partner_name="乳品研究所",
        industries=("乳业",),
        language="zh",
    ),
    Capability(
        "c4",
        "p3",
        "Rail freight car coatings",
        "anti-corrosion coatings for rail freight cars in cold climate",
        partner_name="Cold Coatings Lab",
        industries=("轨道交通装备",),
        language="en",
    ),
    Capability(
        "c5",
        "p4",
        "焊接变形控制",
        "铝合金 车体 搅拌摩擦焊 焊接变形",
        partner_name="焊接中心",
        industries=("轨道交通装备",),
        language="zh",
    ),
]
PARTNERS = [
    Partner("p1", "寒地涂层课题组", "team", "齐齐哈尔市"),
    Partner("p2", "乳品研究所", "institute", "哈尔滨市"),
    Partner("p3", "Cold Coatings Lab", "university", "Новосибирск", "RU"),
    Partner("p4", "焊接中心", "institute", "齐齐哈尔市"),
]
DEMANDS = [
    Demand(
        "d1",
        "货车车体防腐涂层",
        "铁路货车在-40°C下涂层附着力下降，需要低温防腐涂层",
        industry="轨道交通装备",
        region="富拉尔基区",
    ),
    Demand("d2", "配方奶粉 OPO", "需要 OPO 结构脂 工艺", industry="乳业", region="克东县", confidential=True),
    Demand("d3", "车体焊接变形", "铝合金车体焊接变形大", industry="轨道交通装备", region="铁锋区"),
]


@pytest.fixture
def engine():
    return MatchEngine(FakeEncoder()).fit(CAPS, DEMANDS, PARTNERS)


def test_demand_finds_the_right_partner_with_reasons(engine):
    top = engine.match_partners(engine.demands["d1"], k=3)
    assert top[0].partner_id == "p1" and top[0].rank == 1
    assert top[0].evidence[0].capability_id == "c1"
    assert "防腐涂层" in top[0].shared_terms or "防腐" in top[0].shared_terms
    parts = top[0].evidence[0].parts
    assert parts.lexical > 0 and -1 <= parts.dense <= 1 and parts.fused == pytest.approx(top[0].evidence[0].score)
    assert {"partner", "best_capability", "dense", "lexical"} <= set(top[0].components)
    assert [m.rank for m in top] == list(range(1, len(top) + 1))
    assert all(a.score >= b.score for a, b in zip(top, top[1:]))


def test_free_text_and_capability_level(engine):
    assert engine.match_partners("OPO 结构脂 奶粉", k=1)[0].partner_id == "p2"
    hits = engine.match_capabilities("乳清蛋白 膜分离", k=2)
    assert hits[0].capability_id == "c3"


def test_english_reasons_show_words_not_stems(engine):
    top = engine.match_partners("coatings for freight cars", k=1)[0]
    assert top.partner_id == "p3"
    assert "coatings" in top.shared_terms and "coat" not in top.shared_terms


def test_filters(engine):
    only_dairy = engine.match_partners("防腐涂层", filters=Filters(industries=frozenset({"乳业"})))
    assert {m.partner_id for m in only_dairy} == {"p2"}
    teams = engine.match_partners("防腐涂层", filters=Filters(partner_types=frozenset({"university"})))
    assert [m.partner_id for m in teams] == ["p3"]
    english = engine.match_capabilities("coatings", filters=Filters(languages=frozenset({"en"})))
    assert [h.capability_id for h in english] == ["c4"]


def test_demands_both_directions_and_confidential_filter(engine):
    assert engine.search_demands("OPO 结构脂")[0].demand_id == "d2"
    public = engine.search_demands("OPO 结构脂", filters=Filters(include_confidential=False))
    assert "d2" not in {h.demand_id for h in public}
    assert engine.demands_for_partner("p4")[0].demand_id == "d3"
    with pytest.raises(NotFoundError):
        engine.demands_for_partner("nope")


def test_upsert_and_remove_without_rebuild(engine):
    enc = engine.encoder
    before = enc.texts_encoded
    engine.upsert_capabilities(
        [Capability("c6", "p5", "马铃薯育种", "寒地 马铃薯 脱毒 种薯 育种", partner_name="薯类所")]
    )
    assert enc.texts_encoded == before + 1  # only the new text was encoded
    assert engine.match_partners("马铃薯 种薯 育种", k=1)[0].partner_id == "p5"
    engine.upsert_capabilities([Capability("c6", "p5", "大豆育种", "高油 大豆 品种", partner_name="薯类所")])
    assert all(h.capability_id != "c6" or h.title == "大豆育种" for h in engine.match_capabilities("马铃薯", k=10))
    engine.remove_capabilities(["c1"])
    assert "c1" not in {h.capability_id for h in engine.match_capabilities("防腐涂层", k=10)}
    engine.remove_demands(["d1"])
    assert "d1" not in {h.demand_id for h in engine.search_demands("防腐涂层", k=10)}
    with pytest.raises(NotFoundError):
        engine.remove_capabilities(["c1"])


def test_specialist_not_drowned_by_big_institute():
    caps = [Capability("s1", "small", "低温防腐涂层", "低温 防腐涂层 附着力", partner_name="small")]
    caps += [Capability(f"b{i}", "big", f"涂料 {i}", f"建筑 涂料 装饰 {i}", partner_name="big") for i in range(10)]
    eng = MatchEngine(FakeEncoder(), EngineParams(aggregation=AggregationParams("decay", 3, 0.5))).fit(caps)
    assert eng.match_partners("低温防腐涂层 附着力", k=2)[0].partner_id == "small"


def test_save_and_load_roundtrip(engine, tmp_path):
    engine.save(tmp_path / "idx")
    again = MatchEngine.load(tmp_path / "idx", FakeEncoder())
    a = [(m.partner_id, round(m.score, 5)) for m in engine.match_partners("防腐涂层 低温")]
    b = [(m.partner_id, round(m.score, 5)) for m in again.match_partners("防腐涂层 低温")]
    assert a == b
    assert again.partners["p3"].country == "RU"
    with pytest.raises(MatcherError, match="built with model"):
        MatchEngine.load(tmp_path / "idx", FakeEncoder(name="other"))


def test_empty_query_and_duplicates_are_errors(engine):
    with pytest.raises(MatcherError, match="empty"):
        engine.match_partners("  ")
    with pytest.raises(MatcherError, match="duplicate"):
        engine.upsert_demands([DEMANDS[0], DEMANDS[0]])


@pytest.mark.parametrize("k", [0, -3, 2.5, True, "5"])
def test_k_below_one_or_not_a_whole_number_is_an_error_everywhere(engine, k):
    """k=-3 used to slice from the end and return every partner but the last three."""
    pid = next(iter(engine.partners))
    calls = [
        lambda: engine.match_partners("低温防腐涂层", k=k),
        lambda: engine.match_capabilities("低温防腐涂层", k=k),
        lambda: engine.rank_partners_batch(["低温防腐涂层"], k=k),
        lambda: engine.rank_capabilities_batch(["低温防腐涂层"], k=k),
        lambda: engine.match_partners_batch(list(engine.demands.values())[:1], k=k),
        lambda: engine.search_demands("低温防腐涂层", k=k),
        lambda: engine.demands_for_partner(pid, k=k),
    ]
    for call in calls:
        with pytest.raises(MatcherError, match="k must be a whole number of at least 1"):
            call()


def test_k_of_one_returns_exactly_one(engine):
    assert len(engine.match_partners("低温防腐涂层", k=1)) == 1
    assert [len(r) for r in engine.rank_partners_batch(["低温防腐涂层", "OPO"], k=1)] == [1, 1]


class _IndexWatchingEncoder(FakeEncoder):
    """The fake encoder, noting how many rows the engine had indexed at each call."""

    def __init__(self) -> None:
        super().__init__()
        self.engine: MatchEngine | None = None
        self.indexed_at_calls: list[int] = []

    def encode_documents(self, texts, progress=None):
        self.indexed_at_calls.append(len(self.engine.capabilities) + len(self.engine.demands))
        return super().encode_documents(texts, progress)


def test_fit_encodes_both_sides_before_indexing_either():
    """The encoder's activations are gone before the index grows, so a start's peak memory is
    the larger of the two and not their sum; and a failure while encoding leaves nothing half-built."""
    encoder = _IndexWatchingEncoder()
    engine = MatchEngine(encoder)
    encoder.engine = engine
    engine.fit(CAPS, DEMANDS, PARTNERS)
    assert encoder.indexed_at_calls == [0, 0]
    assert [m.partner_id for m in engine.match_partners(DEMANDS[0].full_text, k=1)] == ["p1"]
    plain = MatchEngine(FakeEncoder()).fit(CAPS, DEMANDS, PARTNERS)
    assert engine.match_partners(DEMANDS[0].full_text) == plain.match_partners(DEMANDS[0].full_text)


def test_fit_rejects_duplicate_demands_before_encoding_anything():
    encoder = _CountingEncoder()
    with pytest.raises(MatcherError, match="duplicate demand id 'd1'"):
        MatchEngine(encoder).fit(CAPS, [DEMANDS[0], DEMANDS[0]], PARTNERS)
    assert encoder.counts["passage"] == 0


class _CountingEncoder(FakeEncoder):
    """The fake encoder, counting the texts of each side it encodes; prefixes optional (e5 has
    them, MiniLM not)."""

    def __init__(self, query_prefix: str = "", passage_prefix: str = "") -> None:
        super().__init__()
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix
        self.counts = {"query": 0, "passage": 0}

    def encode_queries(self, texts, progress=None):
        self.counts["query"] += len(texts)
        return super().encode_queries(texts, progress)

    def encode_documents(self, texts, progress=None):
        self.counts["passage"] += len(texts)
        return super().encode_documents(texts, progress)


def test_a_typed_text_is_encoded_once_when_both_sides_share_a_vector_and_never_cached(tmp_path):
    from matcher.retrieval.cache import EmbeddingCache
    from matcher.retrieval.encoders import CachedEncoder

    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    counting = _CountingEncoder()
    engine = MatchEngine(CachedEncoder(counting, cache)).fit(CAPS, DEMANDS, PARTNERS)
    engine.search_demands("焊接", k=3)  # the stored demands' query vectors, once
    stored = cache.count()
    counting.counts = {"query": 0, "passage": 0}
    text = "低温 防腐涂层 附着力"
    report = engine.match_report(text, k=3)
    engine.search_demands(text, k=3)
    assert counting.counts == {"query": 2, "passage": 0}  # one per request, the passage side reused
    assert cache.count() == stored  # nothing someone typed is kept
    plain = MatchEngine(FakeEncoder()).fit(CAPS, DEMANDS, PARTNERS).match_report(text, k=3)
    assert [(m.partner_id, m.fit) for m in report.matches] == [(m.partner_id, m.fit) for m in plain.matches]
    encoded = dict(counting.counts)
    engine.match_report(engine.demands["d1"], k=3)  # a stored demand's vector comes from the cache
    assert counting.counts == encoded


def test_a_typed_text_gets_its_passage_vector_when_the_sides_differ():
    """With prefixes (as e5) a typed text needs its query and its passage vector: both come from
    one call of the model, so a request pays the model's per-call cost once."""
    counting = _CountingEncoder("query: ", "passage: ")
    engine = MatchEngine(counting).fit(CAPS, DEMANDS, PARTNERS)
    engine.search_demands("焊接", k=3)  # the stored demands' query vectors, once
    for search in (engine.match_report, engine.search_demands):
        calls, texts = counting.calls, counting.texts_encoded
        search("低温 防腐涂层 附着力", k=3)
        assert (counting.calls - calls, counting.texts_encoded - texts) == (1, 2)
