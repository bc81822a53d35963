"""`transformer.TransformerEncoder` against transformers' own BertModel and XLMRobertaModel on
small random models: the same bits, with and without padding, in float32 and under bfloat16
autocast. (The real MiniLM and e5 are compared through sentence-transformers in
test_plain_model.py, marked slow.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from matcher.retrieval.transformer import load_encoder, mapped_tensors

torch = pytest.importorskip("torch")


def _save(folder, kind: str):
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(0)
    common = dict(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  hidden_act="gelu")
    if kind == "bert":
        model = BertModel(BertConfig(**common, max_position_embeddings=64, pad_token_id=0))
    else:
        model = XLMRobertaModel(XLMRobertaConfig(**common, max_position_embeddings=66, pad_token_id=1,
                                                 type_vocab_size=1))
    for param in model.parameters():  # a trained model's spread, not the initialiser's near-zeros
        param.data.normal_(0, 0.5)
    model.eval().save_pretrained(str(folder))
    return model


@pytest.mark.parametrize("kind", ["bert", "xlm-roberta"])
def test_same_bits_as_transformers(tmp_path, kind):
    reference = _save(tmp_path, kind)
    ours = load_encoder(tmp_path)
    assert ours is not None
    pad = 0 if kind == "bert" else 1
    rng = np.random.default_rng(0)
    for lengths in ([7], [12, 12], [12, 5, 9], [3, 40]):
        width = max(lengths)
        ids = np.full((len(lengths), width), pad, np.int64)
        mask = np.zeros_like(ids)
        for row, n in enumerate(lengths):
            ids[row, :n] = rng.integers(3, 40, n)
            mask[row, :n] = 1
        for bf16 in (False, True):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                theirs = reference(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))[0]
                mine = ours(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))[0]
            assert mine.dtype == theirs.dtype and torch.equal(mine, theirs), (lengths, bf16)


def test_weights_are_mapped_not_copied(tmp_path):
    _save(tmp_path, "bert")
    tensors = mapped_tensors(tmp_path / "model.safetensors")
    word = tensors["embeddings.word_embeddings.weight"]
    assert not word.numpy().flags.owndata  # a view of the file's mapping
    word_again = mapped_tensors(tmp_path / "model.safetensors")["embeddings.word_embeddings.weight"]
    assert torch.equal(word, word_again)


@pytest.mark.parametrize("change", [{"model_type": "distilbert"}, {"hidden_act": "relu"},
                                    {"position_embedding_type": "relative_key"}, {"is_decoder": True}])
def test_other_models_are_left_to_transformers(tmp_path, change):
    _save(tmp_path, "bert")
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, **change}))
    assert load_encoder(tmp_path) is None


def test_a_missing_weight_is_left_to_transformers(tmp_path):
    from safetensors.torch import save_file

    _save(tmp_path, "bert")
    tensors = {k: v.clone() for k, v in mapped_tensors(tmp_path / "model.safetensors").items()}
    del tensors["encoder.layer.1.output.dense.bias"]
    save_file(tensors, str(tmp_path / "model.safetensors"))
    assert load_encoder(tmp_path) is None
    assert load_encoder(tmp_path / "missing") is None


def test_half_precision_weights_are_left_to_transformers(tmp_path):
    from safetensors.torch import save_file

    _save(tmp_path, "bert")
    tensors = {k: v.half() for k, v in mapped_tensors(tmp_path / "model.safetensors").items()}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    assert load_encoder(tmp_path) is None


def test_token_rows_are_read_from_the_file_not_the_mapping(tmp_path):
    """The token table is read row by row (a mapped row would bring its 64 KB neighbourhood into
    resident memory); the rows are the table's, in any shape and order, repeated or not."""
    from matcher.retrieval.transformer import RowReader

    _save(tmp_path, "bert")
    ours = load_encoder(tmp_path)
    assert isinstance(ours.tokens, RowReader)
    table = mapped_tensors(tmp_path / "model.safetensors")["embeddings.word_embeddings.weight"]
    ids = torch.tensor([[39, 0, 5, 5], [7, 39, 1, 2]])
    rows = ours.tokens.take(ids)
    assert rows.shape == (2, 4, 32) and rows.dtype == torch.float32
    assert torch.equal(rows, torch.nn.functional.embedding(ids, table))
    assert ours.tokens.take(torch.zeros((1, 0), dtype=torch.long)).shape == (1, 0, 32)
    for bad in (40, -1):
        with pytest.raises(IndexError, match="the table has 40 rows"):
            ours.tokens.take(torch.tensor([[3, bad]]))
