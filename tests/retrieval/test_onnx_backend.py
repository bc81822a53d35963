"""The ONNX Runtime backend: choosing it, naming it apart in the cache, building it once.

The build tests export a tiny random BERT made here (two layers, hidden size 32, a word-level
tokenizer), so they run offline in seconds; test_onnx_real_models.py checks the real models."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from matcher.errors import InputError, MatcherError, UnknownNameError
from matcher.retrieval import encoders
from matcher.retrieval.encoders import choose_backend, load_encoder, split_variant

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

WORDS = "rail freight car coating infant formula milk straw fuel cnc spindle thermal cow mastitis".split()
TEXTS = ["rail freight car coating", "infant formula milk", "straw fuel", "cnc spindle thermal cow mastitis rail"]


def torch_reference(folder, texts):
    """Mean-pooled, normalised float32 embeddings straight from transformers."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    model = AutoModel.from_pretrained(str(folder)).eval()
    out = []
    for text in texts:
        ids = torch.tensor([tok.encode(text).ids])
        with torch.no_grad():
            hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        vec = hidden.mean(1)[0].numpy()
        out.append(vec / np.linalg.norm(vec))
    return np.array(out)


# --------------------------------------------------------------------------- choosing


def test_variant_names_select_the_backend():
    assert split_variant("minilm-int8") == ("minilm", "onnx")
    assert split_variant("e5-multilingual-small-int8") == ("e5-multilingual-small", "onnx")
    assert split_variant("e5-multilingual-small-onnx-fp32") == ("e5-multilingual-small", "onnx-fp32")
    assert split_variant("some-folder-int8") == ("some-folder-int8", None)  # not a registered model
    assert choose_backend("minilm-int8") == "onnx"


def test_backend_from_argument_then_setting(monkeypatch):
    monkeypatch.setenv("TECHMATCH_BACKEND", "onnx-fp32")
    assert choose_backend("minilm") == "onnx-fp32"
    assert choose_backend("minilm", "torch") == "torch"
    monkeypatch.setenv("TECHMATCH_BACKEND", "auto")
    assert choose_backend("minilm") == encoders.DEFAULT_BACKENDS["minilm"]


def test_bad_backend_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("TECHMATCH_BACKEND", "tensorrt")
    with pytest.raises(MatcherError, match="TECHMATCH_BACKEND"):
        choose_backend("minilm")


def test_unknown_backend_argument_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="onnx"):
        choose_backend("minilm", "tensorrt")


def test_variant_name_and_other_backend_conflict():
    with pytest.raises(MatcherError, match="minilm-int8"):
        choose_backend("minilm-int8", "torch")


def test_onnx_default_falls_back_to_torch_without_the_runtime(monkeypatch):
    from matcher.retrieval import onnx_backend

    monkeypatch.delenv("TECHMATCH_BACKEND", raising=False)
    monkeypatch.setitem(encoders.DEFAULT_BACKENDS, "minilm", "onnx")
    assert choose_backend("minilm") == "onnx"
    monkeypatch.setattr(onnx_backend, "onnxruntime_available", lambda: False)
    assert choose_backend("minilm") == "torch"


def test_missing_runtime_error_says_what_to_install(monkeypatch):
    import builtins

    from matcher.errors import ModelUnavailableError
    from matcher.retrieval.onnx_backend import require_onnxruntime

    real_import = builtins.__import__

    def no_ort(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("no onnxruntime")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ort)
    with pytest.raises(ModelUnavailableError, match=r"techmatch\[onnx\]"):
        require_onnxruntime()


def test_backend_only_for_registered_models(tmp_path):
    from matcher.errors import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="registered models"):
        load_encoder(str(tmp_path), backend="onnx")


# --------------------------------------------------------------------------- building and naming


def test_backend_is_in_the_encoder_name_so_caches_never_mix(tiny_as_minilm):
    from matcher.retrieval.cache import EmbeddingCache
    from matcher.retrieval.encoders import CachedEncoder
    from matcher.settings import techmatch_home

    names = {b: load_encoder("minilm", backend=b).name for b in ("torch", "onnx", "onnx-fp32")}
    assert names == {"torch": "minilm", "onnx": "minilm+onnx-int8", "onnx-fp32": "minilm+onnx-fp32"}
    assert load_encoder("minilm-int8", max_seq_length=16).name == "minilm+onnx-int8@16"
    cache = EmbeddingCache(techmatch_home() / "embeddings.sqlite")
    int8 = CachedEncoder(load_encoder("minilm", backend="onnx"), cache)
    fp32 = CachedEncoder(load_encoder("minilm", backend="onnx-fp32"), cache)
    a = int8.encode_documents(TEXTS)
    b = fp32.encode_documents(TEXTS)
    assert not np.array_equal(a, b)  # the second did not read the first's vectors
    assert cache.count("minilm+onnx-int8") == cache.count("minilm+onnx-fp32") == len(TEXTS)
    assert cache.count("minilm") == 0


def test_onnx_queries_encodes_queries_on_int8_and_documents_on_torch_each_cached_under_its_own_name(
        tiny_as_minilm):
    from matcher.retrieval.cache import EmbeddingCache
    from matcher.retrieval.encoders import open_encoder
    from matcher.settings import techmatch_home

    split = open_encoder("minilm", backend="onnx-queries")
    assert split.name == open_encoder("minilm-q-int8").name == "minilm+q-onnx-int8"
    queries, documents = split.encode_queries(TEXTS), split.encode_documents(TEXTS)
    np.testing.assert_array_equal(queries, load_encoder("minilm", backend="onnx").encode_queries(TEXTS))
    np.testing.assert_allclose(documents, load_encoder("minilm", backend="torch").encode_documents(TEXTS),
                               atol=1e-6)
    cache = EmbeddingCache(techmatch_home() / "embeddings.sqlite")
    # documents share torch's cache (an index built on torch is not re-encoded), queries int8's
    assert cache.count("minilm") == cache.count("minilm+onnx-int8") == len(TEXTS)
    assert cache.count("minilm+q-onnx-int8") == 0


def test_exported_embeddings_match_torch(tiny_as_minilm):
    ref = torch_reference(tiny_as_minilm, TEXTS)
    fp32 = load_encoder("minilm", backend="onnx-fp32")
    int8 = load_encoder("minilm", backend="onnx")
    one_by_one = np.concatenate([fp32.encode_documents([t]) for t in TEXTS])
    batched = fp32.encode_documents(TEXTS)  # padded to the longest: padding must not count
    assert (one_by_one * ref).sum(1).min() > 0.99999
    assert (batched * ref).sum(1).min() > 0.99999
    assert (int8.encode_documents(TEXTS) * ref).sum(1).min() > 0.98
    assert int8.dim == 32


def test_build_is_reused_then_rebuilt_when_the_source_changes(tiny_folder, tmp_path):
    from matcher.retrieval.onnx_backend import BUILD_RECORD, build_onnx_folder, onnx_folder_is_current

    dest = tmp_path / "models" / "tiny-onnx-int8"
    build_onnx_folder(tiny_folder, dest)
    record = json.loads((dest / BUILD_RECORD).read_text())
    assert record["precision"] == "int8" and "model.safetensors" in record["source"]["files"]
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no temporary folder left
    stamp = (dest / "model.onnx").stat().st_mtime_ns
    build_onnx_folder(tiny_folder, dest)
    assert (dest / "model.onnx").stat().st_mtime_ns == stamp  # current: not rebuilt

    os.utime(tiny_folder / "config.json", ns=(1, 1))  # time moved, bytes the same: still current
    assert onnx_folder_is_current(dest, tiny_folder, "int8")
    config = json.loads((tiny_folder / "config.json").read_text())
    config["layer_norm_eps"] = 1e-5
    (tiny_folder / "config.json").write_text(json.dumps(config))
    assert not onnx_folder_is_current(dest, tiny_folder, "int8")
    assert not onnx_folder_is_current(dest, tiny_folder, "float32")
    build_onnx_folder(tiny_folder, dest)
    assert onnx_folder_is_current(dest, tiny_folder, "int8")


def test_build_refuses_a_folder_it_did_not_write(tiny_folder, tmp_path):
    from matcher.retrieval.onnx_backend import build_onnx_folder

    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a techmatch ONNX build"):
        build_onnx_folder(tiny_folder, dest)
    assert (dest / "notes.txt").read_text() == "keep me"


def test_failed_build_leaves_nothing(tiny_folder, tmp_path, monkeypatch):
    from matcher.retrieval import onnx_backend

    def broken(*args):
        raise RuntimeError("export failed")

    monkeypatch.setattr(onnx_backend, "_export_float32", broken)
    dest = tmp_path / "models" / "tiny-onnx-int8"
    with pytest.raises(RuntimeError):
        onnx_backend.build_onnx_folder(tiny_folder, dest)
    assert list(dest.parent.iterdir()) == []


def test_unsupported_pooling_is_refused_by_name(tiny_folder, tmp_path):
    from matcher.errors import ModelUnavailableError
    from matcher.retrieval.onnx_backend import build_onnx_folder

    (tiny_folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_max_tokens": True}))
    with pytest.raises(ModelUnavailableError, match="pooling_mode_max_tokens"):
        build_onnx_folder(tiny_folder, tmp_path / "out")
