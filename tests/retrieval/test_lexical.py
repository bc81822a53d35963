from __future__ import annotations

import math

import numpy as np
import pytest

from matcher.errors import NotFittedError
from matcher.retrieval.lexical import BM25

DOCS = [["rail", "coat", "cold"], ["milk", "powder"], ["rail", "weld"], ["coat", "coat", "paint", "rail"]]


def reference_bm25(docs, query, k1=1.2, b=0.75):
    n, avgdl = len(docs), sum(map(len, docs)) / len(docs)
    out = []
    for d in docs:
        s = 0.0
        for t in query:
            df = sum(1 for x in docs if t in x)
            if df == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = d.count(t)
            s += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / avgdl))
        out.append(s)
    return np.array(out)


def test_scores_match_reference_formula():
    bm = BM25().fit_tokens(DOCS)
    for q in (["rail"], ["coat", "cold"], ["milk", "rail", "unknown"]):
        got = bm.score_tokens([q]).toarray()[0]
        np.testing.assert_allclose(got, reference_bm25(DOCS, q), rtol=1e-5)


def test_partial_add_updates_idf_and_scores_new_docs():
    bm = BM25().fit_tokens(DOCS[:2])
    bm.partial_add(DOCS[2:])
    got = bm.score_tokens([["rail", "coat"]]).toarray()[0]
    assert got.shape == (4,) and got[3] > 0 and got[1] == 0
    assert bm.doc_freq_[bm.vocabulary_["rail"]] == 3


def test_forget_rows_zeroes_scores_and_frequencies():
    bm = BM25().fit_tokens(DOCS)
    bm.forget_rows(np.array([0, 2]))
    got = bm.score_tokens([["rail"]]).toarray()[0]
    assert got[0] == 0 and got[2] == 0 and got[3] > 0
    assert bm.doc_freq_[bm.vocabulary_["rail"]] == 1


def test_coverage_and_max_scores():
    bm = BM25().fit_tokens(DOCS)
    np.testing.assert_allclose(bm.coverage([["rail", "xyz"], [], ["milk"]]), [0.5, 0.0, 1.0])
    assert bm.max_scores([["rail"]])[0] >= bm.score_tokens([["rail"]]).toarray().max()


def test_save_load_roundtrip(tmp_path):
    bm = BM25(k1=1.5, b=0.6).fit_tokens(DOCS)
    bm.save(tmp_path)
    again = BM25.load(tmp_path)
    np.testing.assert_allclose(again.score_tokens([["coat"]]).toarray(), bm.score_tokens([["coat"]]).toarray())
    assert again.k1 == 1.5


def test_unfitted_raises_clear_error():
    with pytest.raises(NotFittedError, match="fit"):
        BM25().idf()


def test_fit_on_raw_text_uses_cjk_tokenizer():
    bm = BM25().fit(["铁路货车防腐涂层", "婴幼儿配方奶粉"])
    assert bm.score(["防腐涂层"]).toarray()[0, 0] > 0


def test_partial_add_in_slices_equals_one_fit():
    """Term frequencies from repeated tokens, empty documents and terms first seen late."""
    docs = [*DOCS, [], ["weld", "weld", "weld"], ["new", "rail", "new"]]
    whole = BM25().fit_tokens(docs)
    sliced = BM25().fit_tokens([])
    sliced.avgdl_ = whole.avgdl_  # partial_add keeps the fitted length normalisation
    sliced.partial_add(docs[:3])
    sliced.partial_add(docs[3:5])
    sliced.partial_add(docs[5:])
    assert sliced.vocabulary_ == whole.vocabulary_
    np.testing.assert_array_equal(sliced.doc_freq_, whole.doc_freq_)
    np.testing.assert_allclose(sliced.weights_.toarray(), whole.weights_.toarray(), rtol=1e-6)
    q = [["rail", "weld", "new"]]
    np.testing.assert_allclose(whole.score_tokens(q).toarray()[0], reference_bm25(docs, q[0]), rtol=1e-5)


def test_dense_scores_equal_the_sparse_product():
    bm = BM25().fit_tokens(DOCS)
    queries = [["rail"], ["coat", "coat", "cold"], ["unknown"], [], ["milk", "rail", "weld", "paint"]]
    qmat = bm.query_matrix(queries)
    np.testing.assert_allclose(bm.score_dense(qmat), bm.score_tokens(queries, qmat).toarray(), rtol=1e-6)


def test_score_rows_gives_the_same_bits_by_either_route(monkeypatch):
    """A request reads the query terms' postings, a batch slices document rows: a pair's BM25
    score must be bit-for-bit the same either way (fits are compared across lists)."""
    import matcher.retrieval.lexical as lexical

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    docs = [list(rng.choice(words, rng.integers(3, 40))) for _ in range(400)]
    bm = BM25().fit_tokens(docs)
    queries = [list(rng.choice(words, 25)) for _ in range(3)]
    qmat = bm.query_matrix(queries)
    rows = np.sort(rng.choice(400, 200, replace=False))
    dense = bm.score_rows(qmat, rows)
    monkeypatch.setattr(lexical, "DENSE_QUERIES", 0)  # forces the row slices
    sliced = bm.score_rows(qmat, rows)
    assert dense.dtype == sliced.dtype == np.float32
    assert np.array_equal(dense, sliced) and dense.any()


@pytest.mark.parametrize("block", [1, 2, 3, 1000])
def test_documents_weighted_in_blocks_give_the_same_bits_as_all_at_once(monkeypatch, block):
    """Blocks keep a first start's memory down; the matrix, vocabulary and frequencies must not
    depend on where they are cut (empty documents and a term first seen in a later block too)."""
    import matcher.retrieval.lexical as lexical

    docs = [*DOCS, [], ["new", "rail", "new"], ["powder"], [], ["weld", "later", "coat"]]
    whole = BM25().fit_tokens(docs)
    monkeypatch.setattr(lexical, "ADD_BLOCK", block)
    cut = BM25().fit_tokens(docs)
    cut.partial_add([["later", "again"], []])
    whole.partial_add([["later", "again"], []])
    assert cut.vocabulary_ == whole.vocabulary_
    np.testing.assert_array_equal(cut.doc_freq_, whole.doc_freq_)
    for name in ("data", "indices", "indptr"):
        a, b = getattr(cut.weights_, name), getattr(whole.weights_, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    assert cut.weights_.shape == whole.weights_.shape == (len(docs) + 2, len(whole.vocabulary_))
    assert BM25().fit_tokens([]).weights_.shape == (0, 0)
