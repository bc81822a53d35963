"""The shared-folder embedding cache (no Ray needed)."""

from __future__ import annotations

import numpy as np

from matcher.distributed.store import FolderEmbeddingCache
from matcher.retrieval.encoders import CachedEncoder, FakeEncoder, text_key


def _vecs(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_writes_of_one_process_are_read_by_another(tmp_path):
    a, b = FolderEmbeddingCache(tmp_path), FolderEmbeddingCache(tmp_path)
    keys = [text_key(f"t{i}") for i in range(5)]
    assert b.get_many("m", "passage", keys) == {}  # b has listed the (empty) folder
    vecs = _vecs(5)
    a.put_many("m", "passage", keys, vecs)
    found = b.get_many("m", "passage", keys)  # b must look again, not trust its old listing
    assert set(found) == set(keys)
    np.testing.assert_array_equal(np.stack([found[k] for k in keys]), vecs)
    assert b.get_many("m", "query", keys) == {} and b.get_many("other", "passage", keys) == {}


def test_half_written_segment_is_ignored_and_compaction_keeps_every_key(tmp_path):
    cache = FolderEmbeddingCache(tmp_path)
    keys = [text_key(f"t{i}") for i in range(30)]
    vecs = _vecs(30)
    for s in range(0, 30, 10):
        cache.put_many("path:/x y@128", "passage", keys[s : s + 10], vecs[s : s + 10])
    seg_dir = next(tmp_path.glob("*/passage"))
    (seg_dir / ".abc.npz.123.tmp").write_bytes(b"cut short")  # what a killed writer leaves
    reader = FolderEmbeddingCache(tmp_path)
    assert len(reader.get_many("path:/x y@128", "passage", keys)) == 30
    assert cache.compact("path:/x y@128", "passage") == 3
    assert len(list(seg_dir.glob("*.npz"))) == 1
    found = reader.get_many("path:/x y@128", "passage", keys)  # its segments are gone: re-lists
    np.testing.assert_array_equal(np.stack([found[k] for k in keys]), vecs)
    assert cache.count() == 30


def test_cached_encoder_over_the_folder_encodes_each_text_once(tmp_path):
    inner = FakeEncoder()
    enc = CachedEncoder(inner, FolderEmbeddingCache(tmp_path))
    first = enc.encode_documents(["低温涂层", "rail coating", "低温涂层"])
    assert inner.texts_encoded == 2
    again = CachedEncoder(FakeEncoder(), FolderEmbeddingCache(tmp_path))
    np.testing.assert_array_equal(again.encode_documents(["rail coating", "低温涂层"]), first[[1, 0]])
    assert again.inner.texts_encoded == 0
