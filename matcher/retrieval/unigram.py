"""The e5 tokenizer (`e5build.build_tokenizer`) in a tenth of the memory: the same ids.

The tokenizers library holds a SentencePiece-unigram vocabulary as a byte trie of hash maps:
for e5's 250,002 pieces that is 280 MB of a service's resident memory, more than the index
of 42k capabilities (docs/performance.md, session 12). This tokenizer keeps the pieces in one
dict and runs the same pipeline in Python:

1. literal special tokens (`<s>`, `</s>`, ...) are split off the raw text first, as the
   tokenizers library's added vocabulary does (leftmost, then longest);
2. each other section is normalised by e5.c's map, code point by code point (the file
   `NORMALIZATION_FILE` a build writes beside tokenizer.json; the library's normaliser is built
   to equal it), then runs of spaces become one;
3. spaces become U+2581, and one is prepended to a section that starts the text, does not start
   with one, and whose first character the map keeps (Metaspace, prepend scheme "first", which
   looks at where the normalised section starts in the text);
4. characters that occur in no piece are split off on their own (each one `<unk>`);
5. Viterbi over the pieces, as the library's Unigram does it: positions left to right, pieces
   from each position shortest first, a later candidate kept only when strictly better, one
   `<unk>` node over a character that starts no one-character piece, adjacent `<unk>` nodes
   fused into one token;
6. `<s>` ids `</s>`, the ids truncated to `max_length` - 2 first.

No piece has U+2581 but at its start, so every path breaks before each U+2581 and step 5 runs
word by word (one word: a U+2581 and what follows up to the next). Piece scores are float32
values and their sums are exact in float64 (checked on load: `_sums_are_exact`), so a word's
best path is the same alone as after the words before it, ties included; words are therefore
cached, and tokenising stops once `max_length` tokens are found.
`tests/retrieval/test_unigram.py` compares the ids with the tokenizers library's on generated
and real text.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

NORMALIZATION_FILE = "techmatch_normalization.json"
METASPACE = "\u2581"
UNKNOWN_PENALTY = 10.0  # the tokenizers library's kUnkPenalty, as e5.c's unknown score
WORD_CACHE_SIZE = 50_000
MAX_EXACT_CHARS = 1_000_000


@dataclass(frozen=True)
class Encoding:
    """The part of a tokenizers `Encoding` techmatch reads."""

    ids: list[int]


class UnigramTokenizer:
    """Token ids of texts, as `tokenizers.Tokenizer.from_file(folder / "tokenizer.json")` gives
    them for a folder `e5build` wrote. Thread-safe."""

    def __init__(self, pieces: Sequence[tuple[str, float]], *, unk_id: int, bos_id: int, eos_id: int,
                 specials: dict[str, int], normalization: dict[int, str]) -> None:
        self.vocab = {piece: i for i, (piece, _) in enumerate(pieces)}  # a repeated piece: its last id
        self.scores = [float(score) for _, score in pieces]
        self.unk_id, self.bos_id, self.eos_id = unk_id, bos_id, eos_id
        self.unk_score = min(self.scores) - UNKNOWN_PENALTY
        self.specials = dict(specials)
        self.max_length: int | None = None
        longest: dict[str, int] = {}
        for piece in self.vocab:
            if piece and len(piece) > longest.get(piece[0], 0):
                longest[piece[0]] = len(piece)
        self.longest = longest  # the longest piece starting with each character
        special_ids = set(specials.values())
        known = {ch for piece, i in self.vocab.items() if i not in special_ids for ch in piece}
        self._unknown = re.compile("([^" + "".join(_class_ranges(known)) + "])")
        self._specials = re.compile("(" + "|".join(re.escape(s) for s in sorted(specials, key=len, reverse=True))
                                    + ")") if specials else None
        self._table = dict(normalization)
        self._words: dict[str, tuple[int, ...]] = {}
        self._words_lock = threading.Lock()

    @classmethod
    def from_folder(cls, folder: str | Path) -> UnigramTokenizer | None:
        """The tokenizer of a folder `e5build` wrote, or None when the folder has no
        normalisation file or its tokenizer.json is not the pipeline described above."""
        folder = Path(folder)
        try:
            spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
            table = json.loads((folder / NORMALIZATION_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        model, post = spec.get("model") or {}, spec.get("post_processor") or {}
        steps = (spec.get("pre_tokenizer") or {}).get("pretokenizers") or []
        if (model.get("type") != "Unigram" or model.get("byte_fallback") or [s.get("type") for s in steps]
                != ["Metaspace", "Split"] or steps[0].get("prepend_scheme") != "first" or steps[0].get("split")
                or steps[0].get("replacement") != METASPACE or post.get("type") != "TemplateProcessing"):
            return None
        pieces = [(str(p), float(s)) for p, s in model["vocab"]]
        added = spec.get("added_tokens", [])
        if any(not t.get("special") or t.get("normalized") or t.get("single_word") or t.get("lstrip")
               or t.get("rstrip") for t in added):
            return None  # matched otherwise than split off the raw text as they are
        specials = {t["content"]: int(t["id"]) for t in added}
        single = [next(iter(item.values()))["id"] for item in post.get("single", [])]
        if len(single) != 3 or single[1] != "A" or not {single[0], single[2]} <= set(specials):
            return None
        if not _sums_are_exact([s for _, s in pieces]) or not {p for p, _ in pieces} - set(specials):
            return None
        normalization = {int(cp): str(out) for cp, out in table["map"]}
        return cls(pieces, unk_id=int(model["unk_id"]), bos_id=specials[single[0]], eos_id=specials[single[2]],
                   specials=specials, normalization=normalization)

    # -- the tokenizers.Tokenizer calls techmatch makes ---------------------------------------
    def no_padding(self) -> None:
        """Batches are never padded here (the callers pad)."""

    def enable_truncation(self, max_length: int) -> None:
        self.max_length = int(max_length)

    def token_to_id(self, token: str) -> int | None:
        return self.vocab.get(token)

    def encode(self, text: str) -> Encoding:
        limit = None if self.max_length is None else max(0, self.max_length - 2)
        return Encoding([self.bos_id, *self.content_ids(text, limit), self.eos_id])

    def encode_batch(self, texts: Sequence[str]) -> list[Encoding]:
        return [self.encode(t) for t in texts]

    # -- the pipeline -------------------------------------------------------------------------
    def content_ids(self, text: str, limit: int | None = None) -> list[int]:
        """The ids between `<s>` and `</s>`, the first `limit` of them when given."""
        out: list[int] = []
        sections = self._specials.split(text) if self._specials is not None else [text]
        start = 0
        for k, section in enumerate(sections):
            if limit is not None and len(out) >= limit:
                break
            if k % 2:
                out.append(self.specials[section])
            elif section:
                # "first" as the library decides it: the normalised section's first character
                # comes from the text's first (a deleted first character moves that start)
                first = start == 0 and self._table.get(ord(section[0])) != ""
                self._section_ids(section, first, out, limit)
            start += len(section)
        return out if limit is None else out[:limit]

    def _section_ids(self, section: str, first: bool, out: list[int], limit: int | None) -> None:
        normal = section.translate(self._table)
        if "  " in normal:
            normal = re.sub(" {2,}", " ", normal)
        if not normal:
            return
        normal = normal.replace(" ", METASPACE)
        if first and not normal.startswith(METASPACE):
            normal = METASPACE + normal
        for part in self._unknown.split(normal):
            if not part:
                continue
            cut = part.find(METASPACE, 1)
            begin = 0
            while begin < len(part):
                if limit is not None and len(out) >= limit:
                    return
                end = len(part) if cut < 0 else cut
                out.extend(self._word_ids(part[begin:end]))
                begin, cut = end, part.find(METASPACE, end + 1)

    def _word_ids(self, word: str) -> tuple[int, ...]:
        ids = self._words.get(word)
        if ids is None:
            ids = self._viterbi(word)
            with self._words_lock:
                if len(self._words) >= WORD_CACHE_SIZE:
                    self._words.clear()
                self._words[word] = ids
        return ids

    def _viterbi(self, word: str) -> tuple[int, ...]:
        n = len(word)
        vocab, scores, longest = self.vocab, self.scores, self.longest
        best = [0.0] + [-math.inf] * n
        reached = [True] + [False] * n
        piece_at = [0] * (n + 1)
        start_at = [0] * (n + 1)
        for i in range(n):
            base = best[i]
            single = False
            for end in range(i + 1, min(n, i + longest.get(word[i], 0)) + 1):
                pid = vocab.get(word[i:end])
                if pid is None:
                    continue
                single = single or end == i + 1
                score = scores[pid] + base
                if not reached[end] or score > best[end]:
                    best[end], piece_at[end], start_at[end], reached[end] = score, pid, i, True
            if not single:
                score = self.unk_score + base
                if not reached[i + 1] or score > best[i + 1]:
                    best[i + 1], piece_at[i + 1], start_at[i + 1], reached[i + 1] = score, self.unk_id, i, True
        tokens: list[int] = []
        unknown_end = None  # adjacent <unk> nodes become one token (the library's fuse_unk)
        end = n
        while end > 0:
            begin = start_at[end]
            if piece_at[end] == self.unk_id:
                unknown_end = end if unknown_end is None else unknown_end
                if begin == 0 or piece_at[begin] != self.unk_id:
                    tokens.append(vocab.get(word[begin:unknown_end], self.unk_id))
                    unknown_end = None
            else:
                tokens.append(piece_at[end])
            end = begin
        return tuple(reversed(tokens))


def _sums_are_exact(scores: Sequence[float]) -> bool:
    """Whether every path's score is exact in float64 for texts of up to MAX_EXACT_CHARS
    characters: all scores (the unknown one too) are multiples of one power of two, and no sum
    of that many of them needs more than float64's 53 bits. Then neither the order of the
    additions nor where a word's path starts can change a comparison."""
    if not scores:
        return True
    values = [*scores, min(scores) - UNKNOWN_PENALTY]
    denominator = max(Fraction(v).denominator for v in values)  # a power of two
    return max(abs(v) for v in values) * MAX_EXACT_CHARS * denominator < 2**53


def code_point_ranges(cps) -> list[tuple[int, int]]:
    """Sorted, merged (first, last) runs of the code points `cps`."""
    ranges: list[list[int]] = []
    for cp in sorted(set(cps)):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return [(a, b) for a, b in ranges]


def _class_ranges(chars) -> list[str]:
    """A regular-expression character class body matching exactly `chars`."""
    return [f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in code_point_ranges(map(ord, chars))]


def load_tokenizer(folder: str | Path):
    """The tokenizer of a model folder: `UnigramTokenizer` where the folder has what it needs
    (an e5 build), else the tokenizers library's from tokenizer.json."""
    ours = UnigramTokenizer.from_folder(folder)
    if ours is not None:
        return ours
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
