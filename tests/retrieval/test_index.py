from __future__ import annotations

import numpy as np
import pytest

from matcher.errors import UnknownNameError
from matcher.retrieval.index import SMALL_BATCH, IndexParams, VectorIndex, inner_products


def unit(rng, n, d=32):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(x, ids, q, k):
    s = q @ x.T
    order = np.argsort(-s, axis=1)[:, :k]
    return np.take_along_axis(s, order, axis=1), ids[order]


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_search_agrees_with_brute_force(kind):
    rng = np.random.default_rng(0)
    x, q = unit(rng, 2000), unit(rng, 50)
    ids = np.arange(2000, dtype=np.int64) * 3
    idx = VectorIndex(32, IndexParams(kind=kind, nprobe=64)).build(x, ids)
    scores, got = idx.search(q, 10)
    ref_s, ref_i = brute(x, ids, q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, ref_i)])
    assert recall >= (1.0 if kind == "exact" else 0.9)
    if kind == "exact":
        np.testing.assert_allclose(scores, ref_s, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_removed_ids_never_come_back(kind):
    rng = np.random.default_rng(1)
    x = unit(rng, 500)
    idx = VectorIndex(32, IndexParams(kind=kind, nprobe=64)).build(x, np.arange(500))
    idx.remove(np.arange(0, 500, 2))
    _, got = idx.search(x[:20], 10)
    assert not np.any((got >= 0) & (got % 2 == 0))
    assert len(idx) == 250


def test_add_after_build_and_save_load(tmp_path):
    rng = np.random.default_rng(2)
    x = unit(rng, 100)
    idx = VectorIndex(32).build(x[:50], np.arange(50))
    idx.add(x[50:], np.arange(50, 100))
    idx.save(tmp_path)
    again = VectorIndex.load(tmp_path)
    _, got = again.search(x[70:71], 1)
    assert got[0, 0] == 70
    assert not list(tmp_path.glob("*.tmp"))


def test_small_index_pads_with_minus_one():
    idx = VectorIndex(32).build(unit(np.random.default_rng(3), 3), np.arange(3))
    s, i = idx.search(unit(np.random.default_rng(4), 1), 5)
    assert list(i[0, 3:]) == [-1, -1]


def test_unknown_kind_lists_valid():
    with pytest.raises(UnknownNameError, match="exact, hnsw, ivf"):
        IndexParams(kind="annoy")


def test_a_small_search_leaves_the_callers_thread_setting_alone():
    """FAISS shares the OpenMP runtime with torch: a one-query search that left the calling
    thread at one OpenMP thread made the next query encoding run single-threaded."""
    import faiss

    from matcher.retrieval.index import SMALL_BATCH

    x = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    idx = VectorIndex(8).build(x, np.arange(50))
    faiss.omp_set_num_threads(2)
    idx.search(x[:1], 5)
    assert faiss.omp_get_max_threads() == 2
    idx.search(x[: SMALL_BATCH + 1], 5, subset=np.arange(20))
    assert faiss.omp_get_max_threads() == 2


@pytest.mark.parametrize("n_queries", [1, SMALL_BATCH, SMALL_BATCH + 1])
def test_inner_products_match_numpy_for_requests_and_batches(n_queries):
    """Requests take FAISS's single-threaded loop, batches BLAS: the scores must not differ."""
    rng = np.random.default_rng(7)
    matrix = rng.standard_normal((500, 24)).astype(np.float32)
    queries = rng.standard_normal((n_queries, 48)).astype(np.float32)[:, ::2]  # not contiguous
    got = inner_products(queries, matrix)
    assert got.shape == (n_queries, 500) and got.dtype == np.float32
    np.testing.assert_allclose(got, queries @ matrix.T, rtol=1e-5, atol=1e-5)
