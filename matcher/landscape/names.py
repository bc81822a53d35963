"""Naming clusters: their distinctive terms by class-based TF-IDF, in the cluster's own language.

Terms are the demands' index terms, shown as written; words of the demand form never name a topic.

    names = name_clusters(tokens, clustering.labels, languages=..., surface=surface_forms(texts))
    names[c].label                                  # its first three terms, "、"-joined for Chinese
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matcher.errors import MatcherError
from matcher.retrieval.text import REASON_STOP, UNIT_STOP, Tokenizer, guess_language
from matcher.retrieval.vocabulary import is_generic, is_place

# Words of the demand form itself (how to cooperate, what is wanted), never a topic's name.
NAME_STOP = frozenset(
    """合作 合作方 合作方式 联合 联合开发 委托 委托开发 经费 面议 费用 投入 万元 希望 要求 方案 解决
    解决方案 提出 提供 承接 直接 同时 出现 提高 提升 改进 降低 优化 改善 目前 现在 已经 左右 以上 以下
    单位 团队 高校 院所 专家 我们 我厂 我司 本厂 本公司 公司 企业 产品 生产 工艺 项目 情况 效果 问题
    能否 是否 想要 想找 想做 怎么 一些 这个 那个 没有 不够 较高 较低 严重 成本 一是 二是 三是 什么 无法
    不能 只能 大量 不到 办法 解决办法 技术水平 水平 市场 需要 主要 如何 怎样 看看 有时 明显 产生
    结果 发展 整体 逐年 用于 现场 时候 经常 一直 总是 方面 影响 造成 导致 存在 进行 客户 不满意 作为
    全部 分钟 合作开发 建立 一次 实际 其他 部分 帮忙 给出 为主 保持""".split()
)


@dataclass(frozen=True)
class ClusterName:
    """Distinctive terms of one cluster, in the language most of its demands are written in."""

    cluster: int
    language: str
    terms: tuple[str, ...]

    @property
    def label(self) -> str:
        sep = "、" if self.language == "zh" else ", "
        return sep.join(self.terms[:3])


def surface_forms(texts: Sequence[str]) -> dict[str, str]:
    """Index term -> the word most often written for it ("coat" -> "coating")."""
    stem, word = Tokenizer(), Tokenizer(stem=False)
    seen: dict[str, Counter] = {}
    for text in texts:
        stems, words = stem(text), word(text)
        if len(stems) == len(words):
            for s, w in zip(stems, words):
                if s != w:
                    seen.setdefault(s, Counter())[w] += 1
    return {s: c.most_common(1)[0][0] for s, c in seen.items()}


def name_clusters(
    tokens: Sequence[Sequence[str]],
    labels: NDArray[np.int64],
    *,
    languages: Sequence[str] | None = None,
    surface: Mapping[str, str] | None = None,
    n_terms: int = 6,
    exclude: Collection[str] = (),
) -> list[ClusterName]:
    """Distinctive terms per cluster by class-based TF-IDF over the demands' index terms.

    score(t, c) = (demands of c containing t / |c|) * log(1 + n / demands containing t),
    counting each term once per demand so one long text cannot dominate; a term must occur
    in two demands of its cluster when any does. Terms are taken in
    the script of the cluster's majority language (languages: per-demand ISO codes, guessed
    from the terms when absent), shown as written (`surface`: term -> word), and a term
    inside an already chosen one (or containing it) is skipped ("涂层" after "防腐涂层").
    `exclude`: terms never used (build_landscape passes the words of the county and district
    names: a place says where, not what). Returns one ClusterName per cluster 0..k-1."""
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if len(tokens) != n:
        raise MatcherError("tokens and labels must have the same length")
    sets = [set(t) for t in tokens]
    df = Counter(t for s in sets for t in s)
    surface = surface or {}
    out = []
    for c in range(int(labels.max()) + 1 if n else 0):
        idx = np.flatnonzero(labels == c)
        langs = [(languages[i] if languages and languages[i] else guess_language(" ".join(tokens[i]))) for i in idx]
        lang = Counter(langs).most_common(1)[0][0] if langs else ""
        cdf = Counter(t for i in idx for t in sets[i])
        scored = [
            ((cdf[t] / len(idx)) * math.log(1 + n / df[t]), t) for t in cdf if _is_name_term(t) and t not in exclude
        ]
        if len(idx) > 1 and any(cdf[t] >= 2 for _, t in scored):
            scored = [(s, t) for s, t in scored if cdf[t] >= 2]
        ranked = [t for _, t in sorted(scored, key=lambda st: (-st[0], -len(st[1]), st[1]))]
        native = [t for t in ranked if _in_script(t, lang)]
        chosen: list[str] = []
        for t in native + [t for t in ranked if t not in native]:
            if _piece_of_excluded(t, cdf, exclude):
                continue
            t = _promote(t, cdf)
            if any(t in u or u in t for u in chosen):
                continue
            chosen.append(t)
            if len(chosen) == n_terms:
                break
        out.append(ClusterName(c, lang, tuple(surface.get(t, t) for t in chosen)))
    return out


def _promote(term: str, cdf: Counter) -> str:
    """A longer word of the cluster that holds most occurrences of `term`, else `term`
    (jieba's search mode also emits sub-words: "化剂" inside "催化剂")."""
    best = max((u for u in cdf if term in u and u != term and _is_name_term(u)), key=lambda u: cdf[u], default=None)
    return best if best is not None and cdf[best] >= 0.6 * cdf[term] else term


def _piece_of_excluded(term: str, cdf: Counter, exclude: Collection[str]) -> bool:
    """Whether most occurrences of `term` sit inside a longer word that may not name a
    cluster ("加值" of "高附加值"): the piece would name the cluster by a stop word's part."""
    return any(term in u and u != term and cdf[u] >= 0.6 * cdf[term] and (not _is_name_term(u) or u in exclude)
               for u in cdf)


def _is_name_term(t: str) -> bool:
    # is_generic: function words by jieba's tags and common adjectives/verbs (均匀, 偶有), as in reasons.
    return (len(t) > 1 and not t.replace(".", "").isdigit() and t not in NAME_STOP and t not in REASON_STOP
            and t not in UNIT_STOP and not is_generic(t) and not is_place(t))


def _in_script(term: str, lang: str) -> bool:
    script = guess_language(term)
    return script == lang if lang in ("zh", "en", "ru") else True
