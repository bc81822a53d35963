"""The OpenVINO backend: its name, its build (static int8 from the ONNX export, calibrated on the
demo corpus) reused until its source changes, embeddings close to torch's, one inference
request per thread. On the tiny random BERT of test_onnx_backend.py, so offline and quick;
test_onnx_real_models.py checks the real models."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from matcher.errors import ModelUnavailableError
from matcher.retrieval.encoders import load_encoder, split_variant

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("openvino")
pytest.importorskip("nncf")

from tests.retrieval.test_onnx_backend import TEXTS, torch_reference  # noqa: E402


def test_variant_name_and_argument_select_openvino(tiny_as_minilm):
    assert split_variant("minilm-ov-int8") == ("minilm", "openvino")
    assert split_variant("e5-multilingual-small-ov-int8") == ("e5-multilingual-small", "openvino")
    # the calibration recipe is in the name: another recipe, other embeddings
    assert load_encoder("minilm", backend="openvino").name == "minilm+openvino-int8-c2"
    assert load_encoder("minilm-ov-int8", max_seq_length=16).name == "minilm+openvino-int8-c2@16"


def test_int8_embeddings_are_close_to_torch_and_padding_does_not_count(tiny_as_minilm):
    ref = torch_reference(tiny_as_minilm, TEXTS)
    enc = load_encoder("minilm", backend="openvino")
    batched = enc.encode_documents(TEXTS)
    one_by_one = np.concatenate([enc.encode_documents([t]) for t in TEXTS])
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, rtol=1e-4)
    assert (batched * ref).sum(1).min() > 0.97
    assert (batched * one_by_one).sum(1).min() > 0.999
    assert enc.dim == 32


def test_inputs_are_padded_to_a_few_widths_all_prepared_when_the_model_loads(tiny_as_minilm, monkeypatch):
    """OpenVINO prepares (and keeps) a compilation for each input shape: every input is padded to
    a multiple of LENGTH_STEP tokens, requests run at most LATENCY_TEXTS texts at a time, and
    loading runs every padded width once; padding leaves the embeddings as they were."""
    from matcher.retrieval.encoders import OpenVinoEncoder, uncached

    seen: list[tuple[int, int]] = []
    padded = OpenVinoEncoder._padded

    def recording(self, ids, mask, rows=None):
        out = padded(self, ids, mask, rows)
        seen.append(out["input_ids"].shape)
        assert out["attention_mask"][: len(ids)].sum() == mask.sum()  # every token kept, none added
        return out

    monkeypatch.setattr(OpenVinoEncoder, "_padded", recording)
    enc = uncached(load_encoder("minilm-ov-int8", max_seq_length=40))
    enc.load()
    assert enc.padded_widths() == [16, 32, 40]  # the window's end: no position past it
    texts = [" ".join(["word"] * n) for n in (1, 3, 7, 12, 15, 16, 17, 25, 31, 33, 39, 60)]
    single = np.concatenate([enc.encode_documents([t]) for t in texts])
    together = enc.encode_documents(texts[:5])  # five texts: three calls of at most two
    assert {w for _, w in seen} <= set(enc.padded_widths())
    assert max(n for n, _ in seen) <= OpenVinoEncoder.LATENCY_TEXTS
    seen.clear()
    big = enc.encode_documents(texts * 2)  # the throughput streams: 24 texts, a batch of 32
    odd = enc.encode_documents(texts[:9])  # a shorter batch: its slices padded to a power of two
    assert {w for _, w in seen} <= set(enc.padded_widths())
    assert {n for n, _ in seen} <= {1, 2, 4, 8, 16, 32}  # a few row counts on the streams
    assert (together * single[:5]).sum(1).min() > 0.9999
    assert (big[: len(texts)] * single).sum(1).min() > 0.999
    assert odd.shape == (9, enc.dim) and (odd * single[:9]).sum(1).min() > 0.999
    unpadded = OpenVinoEncoder._padded_width
    monkeypatch.setattr(OpenVinoEncoder, "_padded_width", lambda self, n: min(n, self.max_seq_length))
    exact = uncached(load_encoder("minilm-ov-int8", max_seq_length=40))
    assert (exact.encode_documents(texts) * single).sum(1).min() > 0.9999
    monkeypatch.setattr(OpenVinoEncoder, "_padded_width", unpadded)


def test_build_is_reused_then_rebuilt_when_the_source_changes(tiny_folder, tmp_path):
    from matcher.retrieval.onnx_backend import BUILD_RECORD, build_onnx_folder, onnx_folder_is_current

    dest = tmp_path / "tiny-openvino"
    build_onnx_folder(tiny_folder, dest, precision="openvino-int8")
    assert (dest / "model.xml").is_file() and (dest / "model.bin").is_file() and not (dest / "model.onnx").exists()
    record = (dest / BUILD_RECORD).read_text(encoding="utf-8")
    assert '"runtime": "openvino"' in record and "corpora/qiqihar" in record
    assert onnx_folder_is_current(dest, tiny_folder, "openvino-int8")
    assert not onnx_folder_is_current(dest, tiny_folder, "int8")  # another recipe: not this build
    stamp = (dest / "model.xml").stat().st_mtime_ns
    build_onnx_folder(tiny_folder, dest, precision="openvino-int8")
    assert (dest / "model.xml").stat().st_mtime_ns == stamp  # reused, not rebuilt
    (tiny_folder / "config.json").write_text((tiny_folder / "config.json").read_text() + " ")
    assert not onnx_folder_is_current(dest, tiny_folder, "openvino-int8")


def test_a_build_of_an_earlier_calibration_recipe_is_rebuilt(tiny_folder, tmp_path):
    import json

    from matcher.retrieval.onnx_backend import BUILD_RECORD, build_onnx_folder, onnx_folder_is_current

    dest = build_onnx_folder(tiny_folder, tmp_path / "tiny-openvino", precision="openvino-int8")
    record = json.loads((dest / BUILD_RECORD).read_text(encoding="utf-8"))
    del record["quantisation"]["calibration"]["recipe"]  # as the first recipe wrote it
    (dest / BUILD_RECORD).write_text(json.dumps(record), encoding="utf-8")
    assert not onnx_folder_is_current(dest, tiny_folder, "openvino-int8")
    build_onnx_folder(tiny_folder, dest, precision="openvino-int8")
    assert onnx_folder_is_current(dest, tiny_folder, "openvino-int8")


@pytest.mark.parametrize("model", ["e5-multilingual-small", "minilm"])
def test_calibration_covers_the_demo_corpus_in_its_three_languages(model, tmp_path):
    """Every demand as a query, every capability as a passage, and the capabilities written in
    English or Russian also as queries (the demo's demands are all Chinese); no text twice."""
    import json

    from corpora import demo_corpus_path
    from matcher.retrieval.openvino_backend import calibration_texts

    folder = demo_corpus_path()
    rows = {name: [json.loads(line) for line in (folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
                   if line.strip()] for name in ("demands", "capabilities")}
    texts = calibration_texts(tmp_path / model)
    assert len(texts) == len(set(texts))
    other = [r for r in rows["capabilities"] if r.get("language", "zh") != "zh"]
    assert {r.get("language") for r in other} == {"en", "ru"}
    if model.startswith("e5"):
        assert len(texts) == len(rows["demands"]) + len(rows["capabilities"]) + len(other)
        assert sum(t.startswith("query: ") for t in texts) == len(rows["demands"]) + len(other)
        assert all(t.startswith(("query: ", "passage: ")) for t in texts)
    else:  # no prefixes: a capability's text once
        assert len(texts) == len(rows["demands"]) + len(rows["capabilities"])


def test_the_same_calibration_gives_the_same_build(tiny_folder, tmp_path):
    from matcher.retrieval.onnx_backend import build_onnx_folder

    a = build_onnx_folder(tiny_folder, tmp_path / "a", precision="openvino-int8")
    b = build_onnx_folder(tiny_folder, tmp_path / "b", precision="openvino-int8")
    assert (a / "model.bin").read_bytes() == (b / "model.bin").read_bytes()


def _in_threads(encode, threads: int, repeats: int = 1) -> list[np.ndarray]:
    """`encode()` from `threads` threads at once, `repeats` times each: the last result of each."""
    got, errors = {}, []

    def run(n: int) -> None:
        try:
            for _ in range(repeats):
                got[n] = encode()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    started = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join()
    assert not errors
    return list(got.values())


def test_threads_each_get_their_own_request(tiny_as_minilm):
    enc = load_encoder("minilm", backend="openvino")
    want = enc.encode_documents(TEXTS)
    for vecs in _in_threads(lambda: enc.encode_documents(TEXTS), threads=4, repeats=20):
        np.testing.assert_allclose(vecs, want, atol=1e-6)


def _batch_texts(n: int) -> list[str]:
    return [f"{TEXTS[i % len(TEXTS)]} {i}" for i in range(n)]


def test_large_batches_run_on_streams_and_agree_with_single_texts_in_every_thread(tiny_as_minilm):
    from matcher.retrieval.encoders import OpenVinoEncoder, uncached

    enc = uncached(load_encoder("minilm", backend="openvino"))
    texts = _batch_texts(2 * OpenVinoEncoder.THROUGHPUT_MIN_TEXTS + 1)  # uneven slices
    single = np.concatenate([enc.encode_documents([t]) for t in texts])
    results = _in_threads(lambda: enc.encode_documents(texts), threads=3)
    assert enc._throughput is not None  # the streams' compilation was used
    for vecs in results:
        assert vecs.shape == single.shape
        assert (vecs * single).sum(1).min() > 0.999  # same texts, same order


def test_a_lost_part_of_a_batch_is_an_error_not_zeros(tiny_as_minilm, monkeypatch):
    import openvino

    from matcher.retrieval.encoders import OpenVinoEncoder, uncached

    class DroppingQueue(openvino.AsyncInferQueue):
        """Never delivers the last part of a batch (the only part, with one stream)."""

        def set_callback(self, callback):
            def all_but_last(request, start):
                if start + len(request.get_output_tensor(0).data) < self.total:
                    callback(request, start)
            super().set_callback(all_but_last)

        def start_async(self, inputs, userdata):
            self.total = userdata + len(inputs["input_ids"])
            super().start_async(inputs, userdata)

    monkeypatch.setattr(openvino, "AsyncInferQueue", DroppingQueue)
    enc = uncached(load_encoder("minilm", backend="openvino"))
    with pytest.raises(ModelUnavailableError, match="parts of a batch"):
        enc.encode_documents(_batch_texts(OpenVinoEncoder.THROUGHPUT_MIN_TEXTS))


def test_missing_runtime_says_what_to_install(monkeypatch):
    import builtins

    from matcher.retrieval.openvino_backend import require_openvino

    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name.split(".")[0] in ("openvino", "nncf"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(ModelUnavailableError, match=r"install techmatch\[openvino\]"):
        require_openvino(build=True)
