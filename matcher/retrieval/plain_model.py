"""A sentence-transformers folder of Transformer + mean Pooling (+ Normalize), run without
sentence-transformers.

Importing sentence-transformers brings scikit-learn, pandas, SymPy, PyArrow and more: about
260 MB of a service's resident memory that encoding never uses (measured: torch alone 219 MB,
with sentence-transformers 479 MB). For the folders techmatch builds and ships (e5-multilingual-
small, MiniLM) the pipeline is short: tokenise (truncate, pad), the transformer, the mean of
the token vectors under the attention mask, L2-normalise. `PlainModel` does exactly those
steps, in sentence-transformers' order and precision (its rows sorted longest first, the mean
summed in float32), so the embeddings are the same bits (`tests/retrieval/test_plain_model.py`
compares them). The transformer is `transformer.TransformerEncoder` for BERT and XLM-RoBERTa
(without importing transformers: another 104 MB), transformers' model class for anything else;
the tokenizer `unigram.UnigramTokenizer` for e5, the tokenizers library's otherwise.

Any other folder (other pooling, extra modules, lower-casing) goes through sentence-transformers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


def plain_folder(folder: Path) -> bool:
    """Whether `folder` is a Transformer + mean Pooling (+ Normalize) stack that `PlainModel`
    runs exactly as sentence-transformers would."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"} or modules[0].get("path"):
            return False
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
        sbert = _read_json(folder / "sentence_bert_config.json")
        return (modes == ["pooling_mode_mean_tokens"] and not sbert.get("do_lower_case", False)
                and (folder / "tokenizer.json").is_file() and (folder / "config.json").is_file())
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False


class PlainModel:
    """Embeddings of texts from a folder `plain_folder` accepts."""

    def __init__(self, folder: str | Path, max_seq_length: int | None = None) -> None:
        import torch  # noqa: F401  (first: the forward pass and transformers' model classes need it)

        from matcher.retrieval.transformer import load_encoder
        from matcher.retrieval.unigram import load_tokenizer

        folder = Path(folder)
        sbert = _read_json(folder / "sentence_bert_config.json")
        config = _read_json(folder / "tokenizer_config.json")
        self.max_seq_length = int(max_seq_length or sbert.get("max_seq_length") or config.get("model_max_length", 512))
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        # The folder's Normalize module (when it has one), then the encoder's own normalisation
        # (sentence-transformers' normalize_embeddings=True): normalising twice moves last bits.
        self.normalizations = 1 + any(m["type"].endswith(".Normalize") for m in modules)
        self.tokenizer = load_tokenizer(folder)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        pad = _special(folder, "pad_token")
        self.pad_id = self.tokenizer.token_to_id(pad) if pad else None
        if self.pad_id is None:
            self.pad_id = 0
        self.model = load_encoder(folder) or _transformers_model(folder)
        self.model.eval()

    def token_count(self, text: str) -> int:
        """Tokens of `text` after truncation (special tokens included)."""
        return len(self.tokenizer.encode(text).ids)

    def encode(self, texts: Sequence[str], *, pad_to_multiple_of: int | None = None) -> NDArray[np.float32]:
        """(len(texts), dim) float32 L2-normalised embeddings, in one batch."""
        import torch
        import torch.nn.functional as F

        if not len(texts):
            return np.zeros((0, self.model.config.hidden_size), np.float32)
        order = np.argsort([-len(t) for t in texts])  # as sentence-transformers orders a batch
        encodings = self.tokenizer.encode_batch([texts[i] for i in order])
        width = max(len(e.ids) for e in encodings)
        if pad_to_multiple_of:
            width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        with torch.inference_mode():
            attention = torch.from_numpy(mask)
            tokens = self.model(input_ids=torch.from_numpy(ids), attention_mask=attention)[0]
            weights = attention.unsqueeze(-1).to(tokens.dtype)
            summed_in = torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype
            total = (tokens * weights).sum(dim=1, dtype=summed_in)
            count = torch.clamp(weights.sum(dim=1, dtype=summed_in), min=1e-9)
            vectors = (total / count).to(tokens.dtype)
            for _ in range(self.normalizations):
                vectors = F.normalize(vectors, p=2, dim=-1)
            out = vectors.float().numpy()
        return np.ascontiguousarray(out[np.argsort(order)], dtype=np.float32)


def _transformers_model(folder: Path):
    """The folder's model through transformers (a kind `transformer.load_encoder` does not run)."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # keeps service logs one JSON object a line
    return AutoModel.from_pretrained(str(folder))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _special(folder: Path, key: str) -> str | None:
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        value = _read_json(folder / name).get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            return value
    return None
