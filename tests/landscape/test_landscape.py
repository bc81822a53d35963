"""The demand landscape on small hand-made data whose clusters, gaps and duplicates are known."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from matcher.errors import MatcherError, NotFoundError, UnknownNameError
from matcher.landscape import (
    DemandLinks,
    DuplicateParams,
    build_landscape,
    calibrate_threshold,
    cluster_demands,
    coverage,
    demand_tokens,
    demand_vectors,
    name_clusters,
    near_duplicates,
    partner_scores,
    surface_forms,
    weak_clusters,
)
from matcher.records import Capability, Demand, Partner
from matcher.retrieval.encoders import FakeEncoder
from matcher.retrieval.engine import MatchEngine
from matcher.retrieval.text import Tokenizer

# Three topics whose texts repeat their own character pairs, so the FakeEncoder's hashed
# bigrams separate them; the partners cover coatings and dairy, nobody covers straw.
COAT = [
    (
        "铁路货车车体防腐涂层低温附着力",
        "货车车体防腐涂层在零下四十度低温下附着力下降，涂层剥落，耐盐雾性能不足，需要低温防腐涂层。",
    ),
    ("敞车涂层冬季剥落", "敞车车体防腐涂层冬季低温开裂剥落，希望提升涂层低温附着力和耐盐雾寿命。"),
    ("漏斗车防腐涂层耐盐雾", "漏斗车车体防腐涂层耐盐雾不足一千小时，涂层附着力差，寻求防腐涂层配方。"),
    ("货车涂装前处理改进", "货车车体涂装前处理喷砂后防腐涂层附着力不稳定，低温涂层剥落。"),
]
DAIRY = [
    ("婴幼儿配方奶粉乳清蛋白", "乳品企业婴幼儿配方奶粉需要乳清蛋白富集工艺，提高奶粉中乳清蛋白含量和奶粉品质。"),
    ("益生菌发酵乳菌株筛选", "乳品企业需要益生菌菌株筛选，益生菌发酵乳酸奶后酸化控制，提高乳品品质。"),
    ("奶粉喷雾干燥节能", "乳品企业奶粉喷雾干燥塔能耗高，奶粉粘壁，乳品加工节能改造，提高奶粉品质。"),
    ("原料奶体细胞检测", "乳品企业原料奶体细胞数偏高，奶粉原料奶抗生素残留快速检测，提高乳品品质。"),
]
STRAW = [
    ("秸秆成型燃料", "玉米秸秆成型燃料颗粒松散，秸秆打捆收储成本高，秸秆综合利用。"),
    ("秸秆沼气发酵", "秸秆沼气工程冬季产气率低，秸秆预处理发酵工艺需改进，秸秆综合利用。"),
    ("秸秆生物炭还田", "秸秆炭化制生物炭还田改良黑土，秸秆生物炭工艺设备，秸秆综合利用。"),
    ("秸秆饲料化利用", "秸秆青贮饲料化利用，秸秆揉丝发酵饲料品质不稳定，秸秆综合利用。"),
]
TOPICS = ((COAT, "轨道交通装备"), (DAIRY, "乳业"), (STRAW, "新能源与生物质"))
REGIONS = ["龙沙区", "建华区", "铁锋区", "讷河市"]
CAPS = [
    Capability(
        "c1", "p1", "低温防腐涂层体系", "货车车体防腐涂层，零下四十度低温附着力，耐盐雾一千小时，涂层剥落失效分析。"
    ),
    Capability("c2", "p1", "涂装前处理", "车体喷砂前处理与防腐涂层附着力提升。"),
    Capability("c3", "p2", "乳清蛋白与奶粉", "婴幼儿配方奶粉乳清蛋白富集，奶粉喷雾干燥节能，乳品加工。"),
    Capability("c4", "p2", "益生菌与发酵乳", "益生菌菌株筛选，发酵乳酸奶后酸化控制，原料奶体细胞与抗生素残留检测。"),
    Capability("c5", "p3", "工业机器人焊接", "机器人焊接工作站，焊缝跟踪，焊接变形控制。"),
]
PARTNERS = [
    Partner("p1", "涂层研究室", "institute", "大连市"),
    Partner("p2", "乳品研究所", "institute", "哈尔滨市"),
    Partner("p3", "焊接中心", "team", "齐齐哈尔市"),
]

# Near-duplicate cases around one demand: re-filed through another channel (duplicate), the
# same problem from another firm in its own words (related), same industry but another
# need (neither), and the topics above as background.
ORIGINAL = Demand(
    "X0",
    "铁路货车车体防腐涂层低温附着力提升",
    "我公司生产铁路货车车体，防腐涂层在零下四十度低温下附着力下降，运用两个冬季后涂层成片剥落，"
    "耐盐雾试验五百小时起泡。希望合作开发低温防腐涂层体系，要求冷热交变后附着力一级，耐盐雾一千小时。",
    industry="轨道交通装备",
    region="铁锋区",
    enterprise="朔风车辆配件",
)
RESUBMITTED = Demand(
    "X1",
    "铁路货车车体防腐涂层低温附着力提升",
    "我公司生产铁路货车车体，防腐涂层在零下四十度低温下附着力下降，运用两个冬季后涂层成片剥落，"
    "耐盐雾试验五百小时起泡。希望合作开发低温防腐涂层体系，要求冷热交变后附着力达到一级，"
    "耐盐雾一千小时以上。联系人王工。",
    industry="轨道交通装备",
    region="铁锋区",
    enterprise="朔风车辆配件（县科技局转报）",
)
OTHER_FIRM = Demand(
    "X2",
    "货车车体涂层冬季剥落问题",
    "本厂为货车主机厂配套车体，冬季零下四十度运行后防腐涂层剥落，附着力由一级降到三级，盐雾试验起泡。"
    "寻求低温附着力好的防腐涂层体系。",
    industry="轨道交通装备",
    region="富拉尔基区",
    enterprise="北疆车辆",
)
SAME_INDUSTRY = Demand(
    "X3",
    "漏斗车内壁耐磨食品级涂层",
    "粮食漏斗车内壁涂层磨损快，需要耐磨且符合食品接触要求的涂层，施工温度低于五度时固化慢。",
    industry="轨道交通装备",
    region="龙沙区",
    enterprise="粮运装备",
)


def topic_demands() -> list[Demand]:
    out = []
    for t, (group, industry) in enumerate(TOPICS):
        for i, (title, text) in enumerate(group):
            out.append(Demand(f"D{t}{i}", title, text, industry=industry, region=REGIONS[i], enterprise=f"企业{t}{i}"))
    return out


class _Task:
    def __init__(self, demands, qrels):
        self.demands, self.qrels = demands, qrels


def judged_task(demands) -> _Task:
    """Coating demands are met by p1, dairy demands by p2, straw demands by nobody."""
    grades = {"D0": {"p1": 3, "p2": 0, "p3": 0}, "D1": {"p1": 0, "p2": 3, "p3": 0}, "D2": {"p1": 0, "p2": 0, "p3": 0}}
    return _Task(demands, {d.id: grades[d.id[:2]] for d in demands})


@pytest.fixture(scope="module")
def engine():
    return MatchEngine(FakeEncoder()).fit(CAPS, topic_demands(), PARTNERS)


# -- clusters -----------------------------------------------------------------------------------
def blobs(n_per: int, k: int, dim: int = 16, seed: int = 0, spread: float = 0.05):
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:k]  # orthogonal directions
    x = np.concatenate([c + spread * rng.normal(size=(n_per, dim)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(k), n_per)


@pytest.mark.parametrize("k", [3, 5, 7])
def test_separated_blobs_are_recovered_with_their_number(k):
    x, truth = blobs(12, k, seed=k)
    cl = cluster_demands(x, k_range=range(2, 11))
    assert cl.k == k
    assert adjusted_rand_score(truth, cl.labels) == 1.0
    # the table has every method x k, and the chosen one is its best eligible silhouette
    methods = ("kmeans", "agglomerative-average", "agglomerative-ward")
    assert {(s.method, s.k) for s in cl.scores} == {(m, kk) for m in methods for kk in range(2, 11)}
    assert cl.silhouette == pytest.approx(max(s.silhouette for s in cl.scores if s.eligible))


def test_clusters_are_numbered_by_size_and_seeded():
    x, _ = blobs(5, 3, seed=1)
    x = np.concatenate([x, blobs(10, 1, seed=2)[0] + 3.0])
    a = cluster_demands(x, k_range=range(2, 6), seed=3)
    b = cluster_demands(x, k_range=range(2, 6), seed=3)
    assert np.array_equal(a.labels, b.labels)
    sizes = np.bincount(a.labels)
    assert list(sizes) == sorted(sizes, reverse=True)


def test_tiny_and_bad_inputs():
    assert cluster_demands(np.eye(2, dtype=np.float32)).k == 1
    assert cluster_demands(np.zeros((0, 4), np.float32)).labels.shape == (0,)
    with pytest.raises(UnknownNameError, match="kmeans"):
        cluster_demands(np.eye(5, dtype=np.float32), methods=("dbscan",))


def test_chinese_demands_cluster_by_topic_and_are_named_in_chinese(engine):
    ids = [d.id for d in topic_demands()]
    cl = cluster_demands(demand_vectors(engine, ids), k_range=range(2, 8))
    truth = [i // 4 for i in range(12)]
    assert cl.k == 3
    assert adjusted_rand_score(truth, cl.labels) == 1.0
    names = name_clusters(demand_tokens(engine, ids), cl.labels)
    by_topic = {truth[i]: names[cl.labels[i]] for i in range(12)}
    assert all(n.language == "zh" for n in names)
    assert {"防腐", "涂层", "附着力"} & set(by_topic[0].terms)
    assert {"奶粉", "乳品", "乳清蛋白"} & set(by_topic[1].terms)
    assert "秸秆" in by_topic[2].terms[:2]
    assert "、" in by_topic[0].label


def test_names_skip_subwords_and_show_surface_words():
    tok = Tokenizer()
    texts = [
        "Anti-corrosion coatings for freight wagons in cold climate",
        "Coatings peeling from wagons in cold winters",
        "Coatings adhesion of wagons at low temperature",
        "Probiotic strains for yoghurt fermentation",
        "Yoghurt fermentation with probiotic strains",
        "催化剂寿命与催化剂再生",
        "催化剂失活与催化剂再生工艺",
    ]
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    names = name_clusters([tok(t) for t in texts], labels, surface=surface_forms(texts))
    assert "coatings" in names[0].terms and "wagons" in names[0].terms  # words, not stems
    assert "coat" not in names[0].terms
    assert names[0].language == "en"
    assert {"probiotic", "yoghurt"} <= set(names[1].terms)
    assert names[2].terms[0] == "催化剂" and "化剂" not in names[2].terms  # no jieba sub-word


def test_mixed_cluster_is_named_in_its_majority_language():
    tok = Tokenizer()
    texts = ["防腐涂层低温附着力", "防腐涂层耐盐雾", "anti-corrosion coatings coatings"]
    names = name_clusters([tok(t) for t in texts], np.zeros(3, np.int64), languages=["zh", "zh", "en"])
    assert names[0].language == "zh"
    assert names[0].terms[0] in ("防腐涂层", "防腐", "涂层")


# -- coverage -----------------------------------------------------------------------------------
def test_dense_partner_scores_match_brute_force(engine):
    demands = topic_demands()
    ps = partner_scores(engine, demands, ("dense",))["dense"]
    q = engine.encoder.encode_queries([d.full_text for d in demands])
    caps = {c.id: c for c in CAPS}
    for j, pid in enumerate(ps.partner_ids):
        vecs = engine.encoder.encode_documents([c.full_text for c in caps.values() if c.partner_id == pid])
        assert np.allclose(ps.scores[:, j], (q @ vecs.T).max(axis=1), atol=1e-5)


def test_calibration_separates_judged_partners(engine):
    task = judged_task(topic_demands())
    cal = calibrate_threshold(engine, task)
    assert cal.kind == "fit"  # one score everywhere; never the per-query normalised "fused"
    assert cal.f1 == 1.0 and cal.precision == 1.0 and cal.recall == 1.0
    assert cal.n_demands == 12 and cal.n_pairs == 36 and cal.n_relevant == 8  # straw demands count too
    assert {t.kind for t in cal.table} == {"fit", "dense", "centred", "lexical", "hybrid", "fused"}
    chosen = next(t for t in cal.table if t.kind == cal.kind)
    assert chosen.demand_auc == 1.0  # best scores tell the uncovered straw demands apart
    with pytest.raises(MatcherError, match="grade"):
        calibrate_threshold(engine, _Task(topic_demands(), {}))


def test_uncovered_cluster_is_flagged(engine):
    demands = topic_demands()
    cal = calibrate_threshold(engine, judged_task(demands), kinds=("dense",))
    cov = coverage(engine, demands, cal.threshold, kind="dense")
    assert [c.covered for c in cov] == [True] * 8 + [False] * 4
    assert all(c.top_partners[0][0] == "p1" for c in cov[:4])
    labels = np.repeat(np.arange(3), 4)
    ranked = weak_clusters(labels, cov)
    assert ranked[0].cluster == 2 and ranked[0].flagged and ranked[0].weakness == 4
    assert [c.flagged for c in ranked[1:]] == [False, False]


def test_weak_cluster_rule_needs_several_uncovered():
    from matcher.landscape import DemandCoverage

    cov = [DemandCoverage(f"d{i}", 0.1, 0, ()) for i in range(3)] + [DemandCoverage("d3", 0.9, 2, ())]
    labels = np.array([0, 0, 1, 2])
    ranked = weak_clusters(labels, cov)
    assert [(c.cluster, c.flagged) for c in ranked] == [(0, True), (1, False), (2, False)]  # 1 alone: too few


# -- near-duplicates ----------------------------------------------------------------------------
def _dup_inputs():
    demands = [ORIGINAL, RESUBMITTED, OTHER_FIRM, SAME_INDUSTRY] + topic_demands()[4:]
    enc, tok = FakeEncoder(), Tokenizer()
    x = enc.encode_documents([d.full_text for d in demands])
    return demands, x, [tok(d.full_text) for d in demands]


def test_duplicates_and_related_demands_are_found_and_labelled():
    demands, x, toks = _dup_inputs()
    groups = near_duplicates(x, toks, ids=[d.id for d in demands])
    pairs = {(p.a, p.b): p for g in groups for p in g.pairs}
    assert pairs[("X0", "X1")].label == "duplicate"
    assert pairs[("X0", "X2")].label == "related"
    assert not any("X3" in k for k in pairs)  # same industry, another need
    assert not any(k[0].startswith("D") and k[1].startswith("X") for k in pairs)
    group = next(g for g in groups if "X0" in g.ids)
    assert set(group.ids) == {"X0", "X1", "X2"} and group.label == "related"


def test_duplicate_groups_are_connected_components():
    # a~b and b~c are duplicates (so one duplicate group a, b, c); d~e only related
    x = np.array([[1, 0, 0], [0.99, 0.14, 0], [0.97, 0.24, 0], [0, 1, 0], [0, 0.8, 0.6], [0, 0, 1]], np.float32)
    toks = [["a", "b"], ["a", "b"], ["a", "b"], ["x"], ["y"], ["z"]]
    params = DuplicateParams(duplicate_excess_alone=0.95, related_excess=0.7, related_jaccard=0.9, baseline=0.0)
    groups = near_duplicates(x, toks, ids=list("abcdef"), params=params)
    assert [(g.ids, g.label) for g in groups] == [(("a", "b", "c"), "duplicate"), (("d", "e"), "related")]


# -- staff decisions ----------------------------------------------------------------------------
def test_merge_keeps_every_original_and_round_trips(tmp_path):
    links = DemandLinks()
    merged = links.merge([ORIGINAL, RESUBMITTED, OTHER_FIRM], note="同一需求")
    assert merged.member_ids == ("X0", "X1", "X2")
    assert merged.originals == (ORIGINAL, RESUBMITTED, OTHER_FIRM)  # unchanged records
    one = merged.as_demand()
    assert one.id == "merge:X0" and one.title == ORIGINAL.title
    assert ORIGINAL.text in one.text and OTHER_FIRM.text in one.text
    assert one.extra["merged_from"] == "X0,X1,X2" and "北疆车辆" in one.extra["enterprises"]
    links.link("X3", "D00", note="相关")
    path = tmp_path / "links.json"
    links.save(path)
    again = DemandLinks.load(path)
    assert again.merges["merge:X0"].originals == merged.originals
    assert again.linked("X3") == ["D00"] and again.linked("D00") == ["X3"]
    assert json.loads(path.read_text(encoding="utf-8"))["version"] == 1
    with pytest.raises(MatcherError, match="already in merge"):
        links.merge([RESUBMITTED, SAME_INDUSTRY])
    with pytest.raises(MatcherError):
        links.merge([ORIGINAL])
    with pytest.raises(MatcherError):
        links.link("X3", "X3")
    links.unmerge("merge:X0")
    assert links.merge_of("X1") is None
    with pytest.raises(NotFoundError):
        links.unlink("X0", "X1")
    assert DemandLinks.load(tmp_path / "missing.json").merges == {}
    with pytest.raises(MatcherError, match="invalid"):
        DemandLinks.from_json("{")


# -- report and CLI -----------------------------------------------------------------------------
def test_report_is_written_escaped_and_formula_safe(tmp_path):
    from openpyxl import load_workbook

    from matcher.landscape.report import write_report

    demands = topic_demands()
    demands[0] = Demand("D00", "<script>alert(1)</script>防腐涂层", COAT[0][1], industry="轨道交通装备",
                        region="龙沙区", enterprise="=HYPERLINK(\"http://x\")")  # fmt: skip
    demands[5] = Demand("D11", DAIRY[1][0], DAIRY[1][1], industry="乳业", enterprise="秘密乳企", confidential=True)
    demands.append(ORIGINAL)
    demands.append(RESUBMITTED)
    eng = MatchEngine(FakeEncoder()).fit(CAPS, demands, PARTNERS)
    cal = calibrate_threshold(eng, judged_task([d for d in demands if d.id.startswith("D")]))
    land = build_landscape(eng, calibration=cal, k_range=range(2, 7))
    paths = write_report(land, tmp_path / "out")
    html = (tmp_path / "out" / "landscape.html").read_text(encoding="utf-8")
    assert [p.name for p in paths] == ["landscape.html", "landscape.xlsx"]
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("data:image/png;base64,") == 5
    assert "秘密乳企" not in html  # confidential enterprise redacted
    wb = load_workbook(tmp_path / "out" / "landscape.xlsx")
    assert wb.sheetnames[:7] == ["clusters", "demands", "coverage", "weak_clusters", "duplicates", "by_industry",
                                 "by_region"]  # fmt: skip
    cells = [c.value for row in wb["demands"].iter_rows() for c in row]
    assert '\'=HYPERLINK("http://x")' in cells
    assert not any(isinstance(v, str) and v.startswith("=") for v in cells)
    assert "秘密乳企" not in cells
    dups = [r for r in wb["duplicates"].iter_rows(values_only=True)][1:]
    assert any({r[2], r[5]} == {"X0", "X1"} and r[8] == "duplicate" for r in dups)
    flagged = [r for r in wb["clusters"].iter_rows(values_only=True)][1:]
    assert any(r[-1] == "yes" and "秸秆" in r[1] for r in flagged)


def test_cli_writes_files_and_prints_findings(tmp_path, capsys):
    from matcher.cli.landscape import add_landscape_parser
    from matcher.records import to_dict

    def jsonl(path, records):
        rows = []
        for r in records:
            d = to_dict(r)
            d.pop("extra", None)
            d["industries"] = ";".join(d["industries"]) if "industries" in d else None
            rows.append(json.dumps({k: v for k, v in d.items() if v not in (None, "", [], {})}, ensure_ascii=False))
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        return path

    dem = jsonl(tmp_path / "demands.jsonl", topic_demands())
    cap = jsonl(tmp_path / "capabilities.jsonl", CAPS)
    parser = argparse.ArgumentParser()
    add_landscape_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["landscape", "--demands", str(dem), "--capabilities", str(cap), "--model", "fake", "--threshold", "0.4",
         "--score", "dense", "--k-min", "2", "--k-max", "6", "--out", str(tmp_path / "out")]
    )  # fmt: skip
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "12 demands in 3 clusters" in out and "秸秆" in out and "landscape.xlsx" in out
    assert (tmp_path / "out" / "landscape.html").exists()
    # no judgements: "auto" takes the value calibrated on the demo corpus for the model
    args = parser.parse_args(
        ["landscape", "--demands", str(dem), "--capabilities", str(cap), "--model", "fake", "--k-max", "6",
         "--out", str(tmp_path / "out2")]
    )  # fmt: skip
    assert args.func(args) == 0
    assert "(lexical score)" in capsys.readouterr().out
    bad = parser.parse_args(["landscape", "--demands", str(dem), "--out", str(tmp_path), "--threshold", "x"])
    with pytest.raises(MatcherError, match="threshold"):
        bad.func(bad)


def test_report_files_respect_the_umask(engine, tmp_path):
    """Regression (issue 13.6): landscape.html/.xlsx were created 0600 whatever the umask."""
    import os
    import stat

    from matcher.landscape.report import write_report

    old = os.umask(0o022)
    try:
        cal = calibrate_threshold(engine, judged_task(topic_demands()))
        paths = write_report(build_landscape(engine, calibration=cal, k_range=range(2, 5)), tmp_path / "out")
    finally:
        os.umask(old)
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in paths} == {oct(0o644)}
