"""The words reasons and cluster names may show: a user dictionary rebuilt from the corpus.

Lexical scoring keeps jieba's plain segmentation (search mode, see `text.Tokenizer`); what is
*shown* is segmented with a dictionary of

- place names (`taxonomy.place_names`: the city's counties and districts with their aliases,
  the province's cities, China's large cities), so that 齐齐哈尔 and 哈尔滨 stay whole and never
  share a "哈尔"; places are never shown as shared terms (a place says where, not what);
- the taxonomy's industry names and the corpus's own technical terms (`corpus_terms`: runs of
  jieba words that recur in several texts, always as the same unit, and are made of content
  words), kept whole *and* with their pieces, so that "低温防腐涂层" can be shared as such and
  "防腐" still matches a text that only says "防腐涂料";

and filtered by `is_generic`: the stop lists of `text` plus jieba's own part-of-speech tags
(prepositions, conjunctions, adverbs, pronouns, numerals, time and locative words: 基于, 还是,
以下, 期间, 每年, 次年) and the most common adjectives and verbs of general Chinese (严重, 均匀,
用于, 为主). A `TermVocabulary` is built from the texts of the indexed capabilities and demands
(the database's rows), never from a hand list of the corpus's words.

Imports: matcher.taxonomy, matcher.retrieval.text.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache

from matcher.retrieval.text import REASON_STOP, UNIT_STOP, ZH_STOP, has_chinese, is_chinese_word, normalize
from matcher.taxonomy import industry_names, place_names

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_ANY_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[^\W_]+", re.UNICODE)

# jieba's part-of-speech tags (first letter) of words that never carry technical content:
# prepositions, conjunctions, particles, adverbs, pronouns, numerals, measure words, time and
# locative words, modal and onomatopoeic words, prefixes and suffixes, status words.
_FUNCTION_TAGS = frozenset("pcudrmqtfyeokhz")
# Adjectives and verbs this common in general Chinese (jieba's dictionary counts; 严重 10445,
# 用于 8181, 均匀 1213) say how, not what; rarer ones (耐寒 162, 发酵 358) are kept.
_COMMON_ADJECTIVE = 1000
_COMMON_VERB = 5000

# A corpus term: 2 to 4 jieba words, 3 to 10 characters, in at least MIN_DF texts but at most
# MAX_DF_SHARE of them (a phrase every text uses is boilerplate), always seen as this unit
# (at least two different neighbours on each side).
MIN_DF = 2
MAX_DF_SHARE = 0.1
_MAX_PIECES = 4


@lru_cache(maxsize=1)
def _place_segmenter():
    """A jieba tokenizer of its own (lexical scoring's stays untouched) that knows every place."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()  # the default dictionary, which lexical scoring loads anyway
    seg = jieba.Tokenizer()
    # Its words and frequencies without reading the dictionary a second time: the copy shares
    # the strings, only the table is new (15 MB; a second load held 75). Lexical scoring's
    # tokenizer never adds words, so this is the dictionary as jieba ships it.
    seg.FREQ, seg.total, seg.initialized = dict(jieba.dt.FREQ), jieba.dt.total, True
    for name in sorted(place_names(), key=len):
        seg.add_word(name, max(seg.suggest_freq(name, tune=False), 1000), "ns")
    return seg


@lru_cache(maxsize=1)
def _tags() -> dict[str, str]:
    import jieba.posseg

    return jieba.posseg.dt.word_tag_tab


def _general_frequency(word: str) -> int:
    return int(_place_segmenter().FREQ.get(word, 0))


@lru_cache(maxsize=65536)
def is_generic(word: str) -> bool:
    """A word that explains no technical match: stop lists, function words by jieba's tags,
    common adjectives and verbs of general Chinese, single characters."""
    if word in REASON_STOP or word in ZH_STOP or word in UNIT_STOP:
        return True
    if not is_chinese_word(word):
        return False
    if len(word) < 2:
        return True
    tag = _tags().get(word, "")
    if not tag:
        return False
    if tag[0] in _FUNCTION_TAGS:
        return True
    freq = _general_frequency(word)
    return (tag[0] == "a" and freq >= _COMMON_ADJECTIVE) or (tag[0] == "v" and freq >= _COMMON_VERB)


def is_place(word: str) -> bool:
    return word in _places()


@lru_cache(maxsize=1)
def _places() -> frozenset[str]:
    return place_names()


def _segment(run: str) -> list[str]:
    return _place_segmenter().lcut(run) if len(run) > 2 else [run]


def corpus_terms(texts: Iterable[str], *, min_df: int = MIN_DF, max_df_share: float = MAX_DF_SHARE) -> frozenset[str]:
    """Multi-word technical terms the corpus itself uses: runs of 2..4 jieba words (3..10
    characters, no generic word or place among them) found in at least `min_df` texts and at
    most `max_df_share` of them (in a corpus of 50 texts or more), with at least two different
    neighbours on each side (so a piece that only ever occurs inside one longer phrase is not a
    term of its own); a run whose every text also has a longer kept run around it is dropped."""
    df: Counter[str] = Counter()
    left: dict[str, set] = defaultdict(set)
    right: dict[str, set] = defaultdict(set)
    tags: dict[str, str] = {}  # jieba's tags (40 MB), read at the first Chinese run: not for an English corpus
    inner: dict[str, bool] = {}  # word -> may stand inside a term
    n = 0
    for text in texts:
        n += 1
        seen: set[str] = set()
        for run in _CJK_RUN.findall(normalize(text)):
            tags = tags or _tags()
            words = _segment(run)
            ok = [inner[w] if w in inner else inner.setdefault(w, _inner_word(w, tags)) for w in words]
            for i in range(len(words)):
                if not ok[i] or len(words[i]) < 2:  # a term starts on a content word
                    continue
                term = words[i]
                for j in range(i + 1, min(i + _MAX_PIECES, len(words))):
                    if not ok[j]:
                        break
                    term += words[j]
                    if len(term) > 10:
                        break
                    last = words[j]
                    if len(last) < 2 or tags.get(last, "") == "v":
                        continue  # a term is named by what it is, not by a plain verb
                    seen.add(term)
                    left[term].add(words[i - 1] if i else ("^", n, i))
                    right[term].add(words[j + 1] if j + 1 < len(words) else ("$", n, j))
        df.update(seen)
    # Below 50 texts a share means little (as for the reasons' idf floor): no upper bound.
    cap = max(min_df, int(max_df_share * n)) if n >= 50 else n
    kept = {t for t, c in df.items() if min_df <= c <= cap and len(left[t]) >= 2 and len(right[t]) >= 2}
    # A run inside a longer kept one that is just as frequent is that longer term's fragment.
    fragments = {u[a:b] for u in kept for a in range(len(u)) for b in range(a + 3, len(u) + (a > 0))
                 if u[a:b] in kept and df[u] >= df[u[a:b]]}
    return frozenset(kept - fragments)


def _inner_word(word: str, tags: dict[str, str]) -> bool:
    """A word that may stand in a term: no place, no generic word, no function character."""
    if is_place(word):
        return False
    return not is_generic(word) if len(word) > 1 else tags.get(word, "x")[0] not in _FUNCTION_TAGS


class TermVocabulary:
    """The dictionary reasons are segmented with: places, industries and the corpus's terms.

        vocab = TermVocabulary.build(texts)
        vocab.whole_words("齐齐哈尔低温防腐涂层")  -> {"齐齐哈尔", "低温防腐涂层", "低温", "防腐", "涂层"}
        vocab.shows("以下"), vocab.shows("哈尔滨"), vocab.shows("涂层")  -> False, False, True
    """

    SHOWS_MEMO_SIZE = 200_000  # words whose `shows` answer is kept (a long query asks for hundreds)

    def __init__(self, terms: Iterable[str] = ()) -> None:
        self.terms = frozenset(terms) | industry_names()
        self._longest = max((len(t) for t in self.terms), default=0)
        self._shows: dict[str, bool] = {}

    @classmethod
    def build(cls, texts: Iterable[str]) -> TermVocabulary:
        return cls(corpus_terms(texts))

    def whole_words(self, text: str, extra: Iterable[str] = ()) -> frozenset[str]:
        """The words of `text` a reason may show: the place-aware segmentation's words, each
        dictionary term found as a run of them, and that term's pieces; plus `extra`
        (the non-Chinese tokens, from the index tokenizer)."""
        out: set[str] = set(extra)
        for run in _CJK_RUN.findall(normalize(text).lower()):
            words = _segment(run)
            out.update(words)
            for i in range(len(words)):
                joined = words[i]
                for j in range(i + 1, len(words)):
                    joined += words[j]
                    if len(joined) > self._longest:
                        break
                    if joined in self.terms:
                        out.add(joined)
        return frozenset(out)

    def whole_words_of_tokens(self, text: str, tokens: Sequence[str]) -> frozenset[str]:
        """`whole_words` of a text given all its index tokens. A text without a Chinese character
        has no Chinese token and no Chinese run: its tokens are its whole words, without testing
        each (3 ms of a stored demand's first match at 42k English capabilities)."""
        if not has_chinese(text):
            return frozenset(tokens)
        return self.whole_words(text, [t for t in tokens if not is_chinese_word(t)])

    def compounds(self, words: frozenset[str]) -> frozenset[str]:
        """The dictionary terms among `words`."""
        return frozenset(w for w in words if w in self.terms)

    def shows(self, word: str) -> bool:
        """Whether `word` may be shown as a shared technical term."""
        known = self._shows.get(word)
        if known is None:
            if len(self._shows) >= self.SHOWS_MEMO_SIZE:
                self._shows = {}
            known = self._shows[word] = word in self.terms or (not is_generic(word) and not is_place(word))
        return known
