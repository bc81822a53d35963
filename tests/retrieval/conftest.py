"""Fixtures of the encoder backend tests: a tiny random sentence-transformers folder, and the
registered name `minilm` pointing at it."""

from __future__ import annotations

import json

import pytest

from matcher.retrieval import encoders

WORDS = "rail freight car coating infant formula milk straw fuel cnc spindle thermal cow mastitis".split()


@pytest.fixture
def tiny_folder(tmp_path):
    """A sentence-transformers folder (BERT + mean pooling + Normalize) with random weights."""
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    folder = tmp_path / "tiny"
    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).eval().save_pretrained(str(folder))
    tok.save(str(folder / "tokenizer.json"))
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}))
    return folder


@pytest.fixture
def tiny_as_minilm(tiny_folder, monkeypatch):
    """The registered name `minilm` pointing at the tiny folder, so load_encoder's naming runs."""
    monkeypatch.setattr(encoders, "prepare_model", lambda name, force=False: tiny_folder)
    monkeypatch.setattr(encoders, "model_path", lambda name: tiny_folder)
    return tiny_folder
