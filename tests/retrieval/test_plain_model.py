"""`PlainModel` (a sentence-transformers folder run without sentence-transformers) against
sentence-transformers itself: the same bits, in float32 and bfloat16, one text or a batch.
Marked slow (real models); CI runs them too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from matcher.retrieval.plain_model import plain_folder

pytestmark = pytest.mark.slow

TEXTS = [
    "铁路货车车体需要在零下四十度保持附着力的防腐涂层",
    "An anti-corrosion coating for rail freight cars that keeps adhesion at -40 °C",
    "Быстрая диагностика мастита у дойных коров",
    "玉米",
    "query: infant formula",
    "passage: Human milk oligosaccharides in infant formula, produced by fermentation " * 30,  # past 256 tokens
    "ÀÉÎ naïve café  ✓ 😀\ttabs  and   spaces",
    "秸秆压块成型燃料的生产工艺，年产十万吨。" * 20,
]


def _pairs(folder: Path, max_seq_length: int):
    from sentence_transformers import SentenceTransformer

    from matcher.retrieval.plain_model import PlainModel
    from matcher.retrieval.transformer import TransformerEncoder

    reference = SentenceTransformer(str(folder), device="cpu")
    reference.max_seq_length = max_seq_length
    plain = PlainModel(folder, max_seq_length)
    assert isinstance(plain.model, TransformerEncoder)  # transformers' model class is only the reference
    return plain, reference


def _same_bits(plain, reference, batches) -> None:
    import torch

    for texts in batches:
        for bf16, bucket in ((False, None), (True, 32), (True, None)):
            extra = {"processing_kwargs": {"text": {"pad_to_multiple_of": bucket}}} if bucket else {}
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                ours = plain.encode(texts, pad_to_multiple_of=bucket)
                theirs = reference.encode(texts, batch_size=len(texts), normalize_embeddings=True,
                                          convert_to_numpy=True, show_progress_bar=False, **extra)
            assert ours.dtype == np.float32 and ours.shape == theirs.shape
            assert np.array_equal(ours, theirs), (texts[:2], bf16, bucket)
            tokens = [len(reference.tokenizer(t, truncation=True, max_length=reference.max_seq_length)["input_ids"])
                      for t in texts]
            assert [plain.token_count(t) for t in texts] == tokens


BATCHES = [[t] for t in TEXTS] + [TEXTS, TEXTS[2:5], list(reversed(TEXTS))]


def test_minilm_same_embeddings_as_sentence_transformers():
    from matcher.retrieval.encoders import model_path

    folder = model_path("minilm")
    assert plain_folder(folder)
    plain, reference = _pairs(folder, 256)
    _same_bits(plain, reference, BATCHES)


def test_e5_same_embeddings_as_sentence_transformers(model_home, monkeypatch):
    from matcher.retrieval.encoders import prepare_model

    monkeypatch.setenv("TECHMATCH_HOME", model_home)
    folder = prepare_model("e5-multilingual-small")
    assert plain_folder(folder)
    plain, reference = _pairs(folder, 256)
    from matcher.retrieval.unigram import UnigramTokenizer

    assert isinstance(plain.tokenizer, UnigramTokenizer)  # the library's tokenizer is only the reference
    _same_bits(plain, reference, BATCHES)


def test_the_service_encoder_does_not_import_sentence_transformers():
    """What the memory savings rest on (a fresh interpreter: this one may have imported them)."""
    import subprocess
    import sys

    code = ("import sys; from matcher.retrieval.encoders import load_encoder; "
            "e = load_encoder('minilm'); e.encode_documents(['a text']); "
            "heavy = ('sentence_transformers', 'sklearn', 'pandas', 'transformers', 'sympy'); "
            "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_other_stacks_go_through_sentence_transformers(tmp_path):
    """CLS pooling, lower-casing or an extra module: not a plain folder."""
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "config.json").write_text("{}")
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    pooling = {"word_embedding_dimension": 8, "pooling_mode_mean_tokens": True}
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    assert plain_folder(tmp_path)
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps({"do_lower_case": True}))
    assert not plain_folder(tmp_path)
    (tmp_path / "sentence_bert_config.json").write_text("{}")
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({**pooling, "pooling_mode_mean_tokens": False,
                                                                    "pooling_mode_cls_token": True}))
    assert not plain_folder(tmp_path)
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    assert not plain_folder(tmp_path)
