from __future__ import annotations

import json

import numpy as np
import pytest

from matcher.errors import MatcherError
from matcher.retrieval.collection import Collection
from matcher.retrieval.index import VectorIndex


def unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make(center: bool) -> Collection:
    """Two 'languages': each has a shared language direction (axis 0 or 1) plus a topic.

    Chinese rows all lean on axis 0, English rows on axis 1; the query is Chinese (axis 0)
    about topic A (axis 2). The only English row about topic A should beat the Chinese rows
    about other topics once the language direction is taken out."""
    rng = np.random.default_rng(0)
    rows, langs, ids = [], [], []
    for i in range(200):
        topic = np.zeros(8)
        topic[3 + i % 5] = 1.0
        rows.append(2.0 * np.eye(8)[0] + topic + 0.05 * rng.standard_normal(8))
        langs.append("zh")
        ids.append(f"zh{i}")
    for i in range(100):
        topic = np.zeros(8)
        topic[2 if i == 0 else 3 + i % 5] = 1.0
        rows.append(2.0 * np.eye(8)[1] + topic + 0.05 * rng.standard_normal(8))
        langs.append("en")
        ids.append(f"en{i}")
    c = Collection(8, center_languages=center)
    c.add(ids, [[] for _ in ids], unit(rows), langs)
    return c


def best(c: Collection, q) -> str:
    (cand,) = c.candidates(unit(q)[None, :], [[]], depth=5)
    return c.ids[int(cand.rows[np.argmax(cand.centred)])]


def test_language_centring_finds_the_cross_language_match():
    q = 2.0 * np.eye(8)[0] + np.eye(8)[2]
    assert best(make(center=False), q).startswith("zh")  # the same-language bias wins
    assert best(make(center=True), q) == "en0"


def test_small_language_groups_are_searched_separately():
    c = make(center=True)
    (cand,) = c.candidates(unit(2.0 * np.eye(8)[0] + np.eye(8)[3])[None, :], [[]], depth=3)
    langs = {c.langs[r] for r in cand.rows}
    assert langs == {"zh", "en"}  # the minority language still contributes candidates


def test_remove_updates_language_means_and_save_load(tmp_path):
    c = make(center=True)
    stats = c.language_stats()
    names, before = stats.names, stats.means
    c.remove([f"en{i}" for i in range(1, 100)])
    after = c.language_stats().means
    assert names == ["en", "zh"] and not np.allclose(before[0], after[0])
    c.save(tmp_path)
    again = Collection.load(tmp_path)
    np.testing.assert_allclose(again.language_stats().means, after, rtol=1e-5)
    q = 2.0 * np.eye(8)[0] + np.eye(8)[2]
    assert best(again, q) == best(c, q)


def test_a_request_and_a_batch_get_the_same_candidates():
    """Up to SMALL_BATCH queries take the dense lexical path, more take the sparse product:
    the candidates, lexical scores and the filter must not depend on which."""
    from matcher.retrieval.index import SMALL_BATCH

    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(40)]
    n = 120
    tokens = [list(rng.choice(words, size=rng.integers(0, 12))) for _ in range(n)]
    c = Collection(8)
    c.add([f"r{i}" for i in range(n)], tokens, unit(rng.standard_normal((n, 8))), ["en"] * n)
    queries = [list(rng.choice(words, size=5)) for _ in range(SMALL_BATCH + 3)] + [[]]
    qvecs = unit(rng.standard_normal((len(queries), 8)))
    allowed = rng.random(n) < 0.6
    for mask in (None, allowed):
        batch = c.candidates(qvecs, queries, depth=7, allowed=mask)
        for q, want in enumerate(batch):
            (got,) = c.candidates(qvecs[q : q + 1], [queries[q]], depth=7, allowed=mask)
            np.testing.assert_array_equal(got.rows, want.rows)
            np.testing.assert_allclose(got.lexical, want.lexical, rtol=1e-6)
            if mask is not None:
                assert mask[got.rows].all()
    assert any(len(b.rows) and b.lexical.max() > 0 for b in batch)


def test_one_string_object_per_word_after_add_and_after_load(tmp_path):
    """42k capability texts hold millions of tokens; a separate string object per occurrence
    (what tokenisers and json.loads produce) cost the service hundreds of megabytes."""
    tokens = [["".join(["coat", "ing"]), "rail"], ["".join(["coat", "ing"]), "rail", "rail"]]
    assert tokens[0][0] is not tokens[1][0]
    c = Collection(8)
    c.add(["a", "b"], tokens, unit(np.random.default_rng(0).standard_normal((2, 8))), ["en", "en"])
    assert c.tokens[0][0] is c.tokens[1][0] and c.tokens[1][1] is c.tokens[1][2]
    c.save(tmp_path / "c")
    again = Collection.load(tmp_path / "c")
    assert again.tokens == c.tokens and again.tokens[0][0] is again.tokens[1][0]


def test_a_collection_saved_with_json_token_lists_still_loads(tmp_path):
    c = Collection(8)
    c.add(["a", "b"], [["coat", "rail"], ["coat"]], unit(np.random.default_rng(0).standard_normal((2, 8))))
    c.remove(["b"])
    c.save(tmp_path / "c")
    meta_file = tmp_path / "c" / "collection.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    del meta["vocabulary"], meta["index"]
    meta["tokens"] = c.tokens  # the format before token_ids.npy
    meta_file.write_text(json.dumps(meta), encoding="utf-8")
    (tmp_path / "c" / "token_ids.npy").unlink()
    VectorIndex(8).build(c._vectors[:1], np.array([0])).save(tmp_path / "c")  # every kind had a FAISS index
    again = Collection.load(tmp_path / "c")
    assert again.tokens == [["coat", "rail"], []]
    assert again.index is None and again.index_params.kind == "exact"


def test_damaged_token_arrays_are_refused_by_name(tmp_path):
    c = Collection(8)
    c.add(["a", "b"], [["coat", "rail"], ["coat"]], unit(np.random.default_rng(0).standard_normal((2, 8))))
    c.save(tmp_path / "c")
    np.save(tmp_path / "c" / "token_offsets.npy", np.array([0, 2], dtype=np.int64))
    with pytest.raises(MatcherError, match="damaged collection"):
        Collection.load(tmp_path / "c")


def brute_force_top(c: Collection, q, depth: int) -> set[int]:
    """Each language's `depth` nearest live rows, by sorting every score."""
    scores = c._vectors @ q
    out: set[int] = set()
    for lang in set(c.langs):
        rows = [r for r in range(len(c.ids)) if c.alive[r] and c.langs[r] == lang]
        out.update(sorted(rows, key=lambda r: -scores[r])[:depth])
    return out


@pytest.mark.parametrize("languages", [["en"], ["en", "zh", "ru"]])
def test_exact_search_is_brute_force_per_language_after_removals_and_in_blocks(languages, monkeypatch, tmp_path):
    """The exact kind scores the collection's own matrix (no FAISS copy); a batch is cut into
    blocks of queries so the (queries x rows) scores stay bounded."""
    import matcher.retrieval.collection as collection_module

    rng = np.random.default_rng(3)
    n = 300
    c = Collection(16)
    c.add([f"r{i}" for i in range(n)], [[] for _ in range(n)], unit(rng.standard_normal((n, 16))),
          [languages[i % len(languages)] for i in range(n)])
    c.remove([f"r{i}" for i in range(0, n, 7)])
    c.add(["r3"], [[]], unit(rng.standard_normal((1, 16))), [languages[0]])  # an edit: old row dead, new appended
    assert c.index is None
    queries = unit(rng.standard_normal((10, 16)))
    monkeypatch.setattr(collection_module, "EXACT_SCORES_PER_BLOCK", 3 * len(c.ids))  # 3 queries per block
    stats, lang_idx = c._language_state()
    tops = c._dense_top(queries, 12, None, lang_idx, len(stats.names) if stats else 0)
    for q, top in zip(queries, tops):
        assert len(top) == len(set(top.tolist())) and set(top.tolist()) == brute_force_top(c, q, 12)
    allowed = c.alive & (np.arange(len(c.ids)) % 3 == 0)  # a filter: scored among its rows only
    filtered = c._dense_top(queries[:2], 5, allowed, lang_idx, len(stats.names) if stats else 0)
    for q, top in zip(queries[:2], filtered):
        scores = c._vectors @ q
        expected = set()
        for lang in set(c.langs):
            rows = [r for r in np.flatnonzero(allowed) if c.langs[r] == lang]
            expected.update(sorted(rows, key=lambda r: -scores[r])[:5])
        assert set(top.tolist()) == expected
    c.save(tmp_path / "c")
    assert not (tmp_path / "c" / "index.faiss").exists()
    again = Collection.load(tmp_path / "c")
    assert again.index is None and again.index_params.kind == "exact"
    for q in queries:
        (a,), (b,) = c.candidates(q[None, :], [[]], depth=12), again.candidates(q[None, :], [[]], depth=12)
        assert a.rows.tolist() == b.rows.tolist()


def test_approximate_kinds_keep_their_faiss_index_through_save_and_load(tmp_path):
    from matcher.retrieval.index import IndexParams

    rng = np.random.default_rng(4)
    c = Collection(16, index=IndexParams(kind="hnsw"))
    c.add([f"r{i}" for i in range(200)], [[] for _ in range(200)], unit(rng.standard_normal((200, 16))))
    c.save(tmp_path / "c")
    again = Collection.load(tmp_path / "c")
    assert again.index is not None and again.index_params.kind == "hnsw" and len(again.index) == 200


def test_live_ids_name_each_live_record_once_after_replacing_removing_and_loading(tmp_path):
    """Regression (issue 13.1): `ids` keeps dead rows, so readers of it saw a replaced record twice."""
    c = Collection(3)
    vec = unit(np.eye(3))
    c.add(["a", "b", "c"], [["x"], ["y"], ["z"]], vec)
    c.add(["a"], [["x2"]], vec[:1])
    c.add(["a", "b"], [["x3"], ["y3"]], vec[:2])
    c.remove(["c"])
    assert c.ids.count("a") == 3  # the dead rows stay (rows are never renumbered)
    assert c.live_ids() == ["a", "b"] and len(c) == 2
    c.save(tmp_path / "c")
    assert Collection.load(tmp_path / "c").live_ids() == ["a", "b"]


def test_population_scores_match_brute_force():
    """The rows' view of outside vectors: mean over the other rows of the text's language
    (its own row left out) and the spread over that language, as computed by hand."""
    rng = np.random.default_rng(3)
    rows = unit(rng.standard_normal((40, 8)))
    c = Collection(8)
    c.add([f"d{i}" for i in range(40)], [[] for _ in range(40)], rows, ["zh"] * 40)
    others = unit(rng.standard_normal((5, 8)))
    own = np.array([3, -1])
    pvecs = np.vstack([rows[3], unit(rng.standard_normal(8))])
    dense, offset, scale = c.population_scores(pvecs, ["zh", "zh"], own, others)
    cos_all = rows.astype(np.float64) @ others.T.astype(np.float64)  # (40, 5)
    np.testing.assert_allclose(dense, pvecs.astype(np.float64) @ others.T.astype(np.float64), atol=1e-12)
    np.testing.assert_allclose(offset[0], np.delete(cos_all, 3, axis=0).mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(offset[1], cos_all.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(scale[0], cos_all.std(axis=0), atol=1e-6)  # one language: no shrinkage
    # precomputed spreads give the same numbers; an unknown language falls back to all rows
    means, spreads = c.views_of(others)
    again = c.population_scores(pvecs, ["zh", "zh"], own, others, spreads=spreads, means=means)
    np.testing.assert_allclose(again[2], scale, atol=1e-12)
    _, off_unknown, _ = c.population_scores(pvecs[1:], ["ru"], np.array([-1]), others)
    np.testing.assert_allclose(off_unknown[0], cos_all.mean(axis=0), atol=1e-6)
    assert Collection(8).population_scores(pvecs, ["zh", "zh"], own, others) is None


def test_products64_are_float64_cosines_over_blocks_and_refuse_unknown_rows(monkeypatch):
    """Rows in any order, repeated, across several blocks: each block of vectors against each row
    in float64; a row number outside the collection is an error, not a clipped row."""
    import matcher.retrieval.collection as collection

    monkeypatch.setattr(collection, "PRODUCT_BLOCK", 7)
    rng = np.random.default_rng(5)
    vectors = unit(rng.standard_normal((30, 8)))
    c = Collection(8)
    c.add([f"c{i}" for i in range(30)], [[] for _ in range(30)], vectors, ["en"] * 30)
    rows = np.array([29, 0, 3, 3, 17, 8, 9, 10, 11, 12, 2, 28, 1, 5, 6, 7, 4])
    queries, others = unit(rng.standard_normal((2, 8))), unit(rng.standard_normal((3, 8)))
    a, b = c.products64(rows, [queries, others])
    wide = vectors[rows].astype(np.float64)
    np.testing.assert_allclose(a, queries.astype(np.float64) @ wide.T, rtol=0, atol=1e-15)
    np.testing.assert_allclose(b, others.astype(np.float64) @ wide.T, rtol=0, atol=1e-15)
    assert a.dtype == np.float64 and a.shape == (2, len(rows)) and b.shape == (3, len(rows))
    assert c.products64(rows[:0], [queries])[0].shape == (2, 0)
    for bad in ([30], [-1], [0, 31]):
        with pytest.raises(IndexError):
            c.products64(np.array(bad), [queries])
