"""Real models, loaded from disk (never downloaded). Marked slow; CI runs them too."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.retrieval.engine import MatchEngine

pytestmark = pytest.mark.slow

PAIRS = [
    (
        "铁路货车车体需要在零下四十度保持附着力的防腐涂层",
        "An anti-corrosion coating for rail freight cars that keeps adhesion at -40 °C",
    ),
    ("婴幼儿配方奶粉中的母乳低聚糖", "Human milk oligosaccharides in infant formula"),
    ("秸秆压块成型燃料的生产工艺", "Production process of pelletised straw biomass fuel"),
    ("奶牛乳房炎的快速诊断", "Rapid diagnosis of mastitis in dairy cows"),
    ("数控机床主轴热变形补偿", "Thermal deformation compensation for CNC machine tool spindles"),
]


@pytest.fixture(scope="module")
def e5(model_home):
    from matcher.retrieval.encoders import load_encoder

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TECHMATCH_HOME", model_home)
        return load_encoder("e5-multilingual-small")


def test_minilm_loads_offline_and_embeds():
    from matcher.retrieval.encoders import load_encoder

    enc = load_encoder("minilm")
    assert enc._model is None and enc.dim == 384  # read from the folder; weights load on first use
    vecs = enc.encode_documents(["rail freight car coating", "infant formula"])
    assert vecs.shape == (2, 384) and enc._model is not None
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-4)


def test_e5_matches_chinese_to_english_translations(e5):
    zh = e5.encode_queries([p[0] for p in PAIRS])
    en = e5.encode_documents([p[1] for p in PAIRS])
    top1 = (zh @ en.T).argmax(axis=1)
    assert list(top1) == list(range(len(PAIRS)))


def test_language_standardisation_lifts_foreign_partners(e5):
    """On the demo corpus, the Russian partners judged relevant (grade >= 2) to Chinese demands
    rank far higher once dense scores are standardised per language: e5 rates any Chinese
    text above a relevant Russian one otherwise."""
    from corpora import demo_corpus_path
    from matcher.io import load_partners, load_task
    from matcher.retrieval.engine import EngineParams

    task = load_task(demo_corpus_path())
    partners = load_partners(demo_corpus_path() / "partners.jsonl")
    russian = {p.id for p in partners if p.country == "RU"}
    wanted = {d.id: [p for p, r in task.qrels.get(d.id, {}).items() if r >= 2 and p in russian] for d in task.demands}
    demands = [d for d in task.demands if wanted[d.id]]
    median_rank = {}
    for center in (False, True):
        engine = MatchEngine(e5, EngineParams(center_languages=center)).fit(task.capabilities, [], partners)
        ranks = []
        for d in demands:
            got = [m.partner_id for m in engine.match_partners(d, k=len(partners))]
            ranks += [got.index(p) + 1 if p in got else len(partners) for p in wanted[d.id]]
        median_rank[center] = float(np.median(ranks))
    assert len(demands) >= 5
    assert median_rank[True] <= 15 and median_rank[True] <= median_rank[False] / 3, median_rank


def test_bfloat16_products_give_the_same_embeddings():
    """What TECHMATCH_BF16 trades: speed on CPUs with native bfloat16 against a cosine of
    at least 0.9995 to the float32 embeddings (0.99998 measured on sbir-topics texts)."""
    from matcher.retrieval.encoders import load_encoder

    texts = [p[1] for p in PAIRS] + ["rail freight car " * 120]  # the last one fills the window
    fp32, bf16 = load_encoder("minilm", bfloat16=False), load_encoder("minilm", bfloat16=True)
    a, b = fp32.encode_documents(texts), bf16.encode_documents(texts)  # a batch: bfloat16, padded
    assert b.dtype == np.float32 and b.shape == a.shape
    assert (a * b).sum(axis=1).min() >= 0.9995
    assert bf16._worth_bfloat16(bf16.model, texts) and not bf16._worth_bfloat16(bf16.model, texts[:1])
    assert bf16._worth_bfloat16(bf16.model, texts[-1:])  # one text that fills the window
    assert not bf16._worth_bfloat16(bf16.model, ["rail coating " * 12])  # 156 characters, ~26 tokens
    assert bf16._worth_bfloat16(bf16.model, ["铁路货车防腐涂层" * 25])  # 200 characters, ~200 tokens
    one = bf16.encode_queries(texts[-1:])
    assert float(one[0] @ fp32.encode_queries(texts[-1:])[0]) >= 0.9995


def test_calibrated_fit_on_the_demo_corpus(e5):
    """The shipped calibration with e5: the deliberate gap demand D161 (a snowmaker) has no
    suitable partner, a well-covered demand has a strong one, held-out ECE stays under 0.05 on
    each demand's ten best partners, and a partner's fit is the same from both directions."""
    from corpora import demo_corpus_path
    from matcher.calibrate import cross_validate, judged_pairs
    from matcher.io import load_partners, load_task

    task = load_task(demo_corpus_path())
    partners = load_partners(demo_corpus_path() / "partners.jsonl")
    engine = MatchEngine(e5).fit(task.capabilities, task.demands, partners)
    gap = engine.match_report(engine.demands["D161"], k=5)
    assert not gap.suitable and gap.best_fit < engine.calibrator.thresholds_.possible
    good = engine.match_report(engine.demands["D001"], k=5)
    assert good.suitable and good.matches[0].label == "strong"
    top = good.matches[0]
    back = {h.demand_id: h.fit for h in engine.demands_for_partner(top.partner_id, k=len(task.demands))}
    assert back["D001"] == pytest.approx(top.fit, abs=1e-9)
    report = cross_validate(engine, task, pairs=judged_pairs(engine, task))
    assert report.ece_top10 <= 0.05 and report.ece_all <= 0.05
    assert report.flag_recall >= 0.5
