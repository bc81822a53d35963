from __future__ import annotations

import numpy as np
import pytest

from matcher.cache import EmbeddingCache
from matcher.encoders import CachedEncoder, FakeEncoder, load_encoder, open_encoder
from matcher.errors import UnknownNameError


def test_fake_encoder_is_deterministic_normalised_and_counts_calls():
    enc = FakeEncoder(dim=32)
    enc.batch_size = 2
    a = enc.encode_documents(["铁路货车", "rail car", "молоко"])
    b = FakeEncoder(dim=32).encode_documents(["铁路货车", "rail car", "молоко"])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    assert enc.calls == 2 and enc.texts_encoded == 3


def test_fake_encoder_similarity_follows_shared_words():
    enc = FakeEncoder()
    q, near, far = enc.encode_queries(["防腐涂层 低温", "低温防腐涂层体系", "婴幼儿配方奶粉"])
    assert q @ near > q @ far


def test_cache_skips_texts_already_encoded(tmp_path):
    inner = FakeEncoder()
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    enc = CachedEncoder(inner, cache)
    first = enc.encode_documents(["a b", "c d", "a b"])
    assert inner.texts_encoded == 2  # the duplicate is encoded once
    second = CachedEncoder(inner, EmbeddingCache(tmp_path / "emb.sqlite")).encode_documents(["c d", "e f"])
    assert inner.texts_encoded == 3  # only "e f" is new, across cache instances
    np.testing.assert_array_equal(first[1], second[0])
    enc.encode_queries(["a b"])
    assert inner.texts_encoded == 4  # queries and passages are cached separately


def test_unknown_model_lists_registered_names():
    with pytest.raises(UnknownNameError, match="e5-multilingual-small"):
        load_encoder("no-such-model")


def test_open_encoder_fake_is_uncached():
    assert isinstance(open_encoder("fake"), FakeEncoder)
