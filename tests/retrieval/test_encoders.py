from __future__ import annotations

import json

import numpy as np
import pytest

from matcher.errors import ModelUnavailableError, UnknownNameError
from matcher.retrieval.cache import EmbeddingCache
from matcher.retrieval.encoders import (
    CachedEncoder,
    FakeEncoder,
    SentenceTransformerEncoder,
    folder_dimension,
    load_encoder,
    open_encoder,
)


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


def _st_folder(root, modules, pooling=None):
    root.mkdir()
    (root / "modules.json").write_text(json.dumps(modules))
    if pooling is not None:
        (root / "1_Pooling").mkdir()
        (root / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return root


TRANSFORMER = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
POOLING = {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
NORMALIZE = {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}


def test_folder_dimension_reads_the_pooling_config(tmp_path):
    mean = {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}
    assert folder_dimension(_st_folder(tmp_path / "a", [TRANSFORMER, POOLING, NORMALIZE], mean)) == 384
    both = {**mean, "pooling_mode_max_tokens": True}
    assert folder_dimension(_st_folder(tmp_path / "b", [TRANSFORMER, POOLING], both)) == 768
    dense = {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    assert folder_dimension(_st_folder(tmp_path / "c", [TRANSFORMER, POOLING, dense], mean)) is None
    assert folder_dimension(_st_folder(tmp_path / "d", [TRANSFORMER, POOLING])) is None  # no pooling config
    assert folder_dimension(tmp_path / "missing") is None
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "modules.json").write_text("{not json")
    assert folder_dimension(tmp_path / "e") is None


def test_model_loads_on_first_use_and_a_bad_folder_fails_then(tmp_path):
    pooling = {"word_embedding_dimension": 8, "pooling_mode_mean_tokens": True}
    folder = _st_folder(tmp_path / "m", [TRANSFORMER, POOLING, NORMALIZE], pooling)
    enc = SentenceTransformerEncoder(folder, name="broken")
    assert enc.dim == 8 and enc._model is None  # nothing imported or read yet
    with pytest.raises(ModelUnavailableError, match=str(folder)):
        enc.encode_documents(["x"])


def test_a_fully_cached_run_never_loads_the_model(tmp_path):
    class Lazy(FakeEncoder):
        loaded = False

        def load(self):
            self.loaded = True

    inner = Lazy()
    cached = CachedEncoder(inner, EmbeddingCache(tmp_path / "c.sqlite"))
    cached.encode_documents(["rail coating"])
    again = CachedEncoder(Lazy(), EmbeddingCache(tmp_path / "c.sqlite"))
    again.encode_documents(["rail coating"])
    assert again.inner.texts_encoded == 0 and not again.inner.loaded
    again.load()
    assert again.inner.loaded
