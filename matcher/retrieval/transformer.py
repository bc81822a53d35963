"""The BERT and XLM-RoBERTa encoders (MiniLM, e5) in plain torch, without transformers.

Importing transformers' model classes pulls in torch.distributed, torch._dynamo, SymPy and
transformers' loss and generation code: 104 MB of a service's resident memory (measured:
torch 143 MB, then the XLM-RoBERTa modeling module 104 more), none of which an encoder's
forward pass uses. `TransformerEncoder` runs the same functional torch calls in the same order
as transformers 5's `BertModel` / `XLMRobertaModel` with their default attention (SDPA): the
embeddings (word + token type, + position, layer norm), then per layer SDPA self-attention
with the padding mask transformers builds (none without padding, else a boolean (batch, 1,
len, len) mask), the output projection and layer norm over the residual, GELU feed-forward,
layer norm over the residual. The embeddings are the same bits, in float32 and under bfloat16
autocast (`tests/retrieval/test_plain_model.py` compares them with sentence-transformers).

The weights are read-only views of `model.safetensors` mapped copy-on-write: pages are read
when a text first touches them (most of e5's 250,000-row token table never is), and stay file
pages the kernel can drop and worker processes share.

`load_encoder` returns None for a folder it does not know (another architecture, relative
positions, a decoder, other weight files): the caller then uses transformers.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np

KINDS = {"bert", "xlm-roberta"}
FLOAT_DTYPES = {"F32": np.float32}  # float16 weights (a half-precision model) are left to transformers
TOKEN_TABLE = "embeddings.word_embeddings.weight"


def safetensors_layout(path: Path) -> dict[str, tuple[int, tuple[int, ...], type]] | None:
    """Each float32 tensor of a safetensors file as (byte offset in the file, shape, dtype), or
    None when the file is missing, unreadable or a tensor is not aligned for its dtype (other
    dtypes, such as a stored position-id buffer, are left out: a weight the forward pass needs
    is then missing, and `load_encoder` declines).

    The format: an 8-byte little-endian header length, a JSON header (each tensor's dtype,
    shape and byte range after the header), the data."""
    try:
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
    except (OSError, ValueError, struct.error):
        return None
    base = 8 + size
    out = {}
    for key, entry in header.items():
        dtype = FLOAT_DTYPES.get(entry.get("dtype")) if isinstance(entry, dict) else None
        if key == "__metadata__" or dtype is None:
            continue
        start, _ = entry["data_offsets"]
        if (base + start) % np.dtype(dtype).itemsize:
            return None
        out[key] = (base + start, tuple(entry["shape"]), dtype)
    return out


def mapped_tensors(path: Path, layout: dict | None = None) -> dict | None:
    """The float32 tensors of a safetensors file as torch tensors over a copy-on-write mapping
    of it, or None (see `safetensors_layout`; `layout` when the caller has read it). A rebuilt
    model is a new file (builds are written aside and renamed), so a mapping keeps the file it
    opened."""
    import torch

    layout = safetensors_layout(path) if layout is None else layout
    if layout is None:
        return None
    try:
        data = np.memmap(path, dtype=np.uint8, mode="c")
    except (OSError, ValueError):
        return None
    out = {}
    for key, (offset, shape, dtype) in layout.items():
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        out[key] = torch.from_numpy(data[offset : offset + size].view(dtype).reshape(shape))
    return out


class RowReader:
    """The rows of a (rows, width) table in a file, read with pread when asked for.

    For the token table: a mapped page is mapped with its neighbours (the kernel's fault-around,
    64 KB; `MADV_RANDOM` does not stop it), so 100 English passages left 134 MB of e5's 384 MB
    table in a service's resident memory for the few thousand rows of 1.5 KB they used. Read
    rows are copies in the caller's tensor and the file's pages stay in the page cache."""

    def __init__(self, path: Path, offset: int, shape: tuple[int, int], dtype) -> None:
        self.rows, self.width = shape
        self.dtype = np.dtype(dtype)
        self.offset = offset
        self.row_bytes = self.width * self.dtype.itemsize
        self.fd = os.open(path, os.O_RDONLY)  # the file opened now, as a mapping keeps it

    def __del__(self) -> None:
        fd = getattr(self, "fd", None)
        if fd is not None:
            os.close(fd)

    def take(self, ids):
        """ids: an integer tensor; the rows as a float tensor of shape ids.shape + (width,),
        the same values `F.embedding(ids, table)` gives."""
        import torch

        flat = ids.reshape(-1).numpy()
        unique, inverse = np.unique(flat, return_inverse=True)
        if len(unique) and (unique[0] < 0 or unique[-1] >= self.rows):
            raise IndexError(f"token id out of range: the table has {self.rows} rows")
        table = np.empty((len(unique), self.width), dtype=self.dtype)
        for i, row in enumerate(unique.tolist()):
            got = os.preadv(self.fd, [table[i]], self.offset + row * self.row_bytes)
            if got != self.row_bytes:
                raise OSError(f"short read of token row {row}")
        return torch.from_numpy(table[inverse].reshape(*ids.shape, self.width))


class TransformerEncoder:
    """`encoder(input_ids=..., attention_mask=...)[0]`: the last hidden states, as the
    transformers model's first output."""

    def __init__(self, config: dict, weights: dict, tokens: RowReader | None = None) -> None:
        self.kind = config["model_type"]
        self.config = SimpleNamespace(hidden_size=int(config["hidden_size"]))
        self.head_size = self.config.hidden_size // int(config["num_attention_heads"])
        self.scaling = self.head_size**-0.5  # as transformers computes it
        self.eps = float(config["layer_norm_eps"])
        self.pad = int(config.get("pad_token_id") or 0)
        self.w = weights
        self.tokens = tokens  # the token table read row by row (else the mapped weight)
        self.layers = int(config["num_hidden_layers"])

    def eval(self) -> TransformerEncoder:
        return self

    def __call__(self, *, input_ids, attention_mask) -> tuple:
        import torch
        import torch.nn.functional as F

        w, size = self.w, (self.config.hidden_size,)
        batch, length = input_ids.shape
        if self.kind == "xlm-roberta":  # fairseq's positions: padding keeps the padding index
            mask = input_ids.ne(self.pad).int()
            positions = (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + self.pad
        else:
            positions = torch.arange(length).expand((1, -1))
        token_types = torch.zeros((positions.shape[0], length), dtype=torch.long).expand(batch, length)
        if self.tokens is not None:
            hidden = self.tokens.take(input_ids)
        else:
            hidden = F.embedding(input_ids, w["embeddings.word_embeddings.weight"])
        hidden = hidden + F.embedding(token_types, w["embeddings.token_type_embeddings.weight"])
        hidden = hidden + F.embedding(positions, w["embeddings.position_embeddings.weight"])
        hidden = F.layer_norm(hidden, size, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        keep = None
        if not bool(attention_mask.all()):
            keep = attention_mask.bool()[:, None, None, :].expand(batch, 1, length, length).contiguous()
        for i in range(self.layers):
            hidden = self._layer(f"encoder.layer.{i}.", hidden, keep)
        return (hidden,)

    def _layer(self, p: str, hidden, keep):
        import torch.nn.functional as F

        w, size = self.w, (self.config.hidden_size,)
        batch, length = hidden.shape[:2]
        shape = (batch, length, -1, self.head_size)
        q, k, v = (F.linear(hidden, w[f"{p}attention.self.{n}.weight"], w[f"{p}attention.self.{n}.bias"])
                   .view(*shape).transpose(1, 2) for n in ("query", "key", "value"))
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=0.0, scale=self.scaling,
                                             is_causal=False)
        att = att.transpose(1, 2).contiguous().reshape(batch, length, -1)
        att = F.linear(att, w[f"{p}attention.output.dense.weight"], w[f"{p}attention.output.dense.bias"])
        att = F.layer_norm(att + hidden, size, w[f"{p}attention.output.LayerNorm.weight"],
                           w[f"{p}attention.output.LayerNorm.bias"], self.eps)
        mid = F.gelu(F.linear(att, w[f"{p}intermediate.dense.weight"], w[f"{p}intermediate.dense.bias"]))
        out = F.linear(mid, w[f"{p}output.dense.weight"], w[f"{p}output.dense.bias"])
        return F.layer_norm(out + att, size, w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"],
                            self.eps)


def load_encoder(folder: str | Path) -> TransformerEncoder | None:
    """The folder's encoder, or None when it is not one this module runs exactly."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (config.get("model_type") not in KINDS or config.get("hidden_act") != "gelu"
            or config.get("position_embedding_type", "absolute") != "absolute" or config.get("is_decoder")
            or config.get("add_cross_attention") or config.get("chunk_size_feed_forward")
            or not all(isinstance(config.get(k), (int, float))
                       for k in ("hidden_size", "num_attention_heads", "num_hidden_layers", "layer_norm_eps"))):
        return None
    path = folder / "model.safetensors"
    layout = safetensors_layout(path)
    tensors = None if layout is None else mapped_tensors(path, layout)
    if tensors is None:
        return None
    prefix = {"bert": "bert.", "xlm-roberta": "roberta."}[config["model_type"]]
    weights = {k.removeprefix(prefix): v for k, v in tensors.items()}
    if not _complete(weights, config):
        return None
    offset, shape, dtype = layout[prefix + TOKEN_TABLE] if prefix + TOKEN_TABLE in layout else layout[TOKEN_TABLE]
    try:
        tokens = RowReader(path, offset, shape, dtype)
    except OSError:
        return None
    return TransformerEncoder(config, weights, tokens)


def _complete(weights: dict, config: dict) -> bool:
    """Every weight the forward pass reads is there, with the shape the config gives."""
    h, ff = int(config["hidden_size"]), int(config.get("intermediate_size") or 0)
    need = {"embeddings.word_embeddings.weight": (int(config.get("vocab_size") or 0), h),
            "embeddings.token_type_embeddings.weight": (int(config.get("type_vocab_size") or 0), h),
            "embeddings.position_embeddings.weight": (int(config.get("max_position_embeddings") or 0), h),
            "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,)}
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            need[f"{p}attention.self.{n}.weight"], need[f"{p}attention.self.{n}.bias"] = (h, h), (h,)
        need[f"{p}attention.output.dense.weight"], need[f"{p}attention.output.dense.bias"] = (h, h), (h,)
        need[f"{p}intermediate.dense.weight"], need[f"{p}intermediate.dense.bias"] = (ff, h), (ff,)
        need[f"{p}output.dense.weight"], need[f"{p}output.dense.bias"] = (h, ff), (h,)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            need[f"{p}{n}.weight"], need[f"{p}{n}.bias"] = (h,), (h,)
    return all(k in weights and tuple(weights[k].shape) == shape for k, shape in need.items())
