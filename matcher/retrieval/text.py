"""Text normalisation, language guess and tokenisation for Chinese, English and Russian.

Chinese runs are segmented with jieba; Latin and Cyrillic words are lower-cased, stop-worded
and stemmed (Snowball through PyStemmer). The same tokeniser serves lexical scoring and the
"shared terms" shown as match reasons, so what we show is what we scored.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Container, Iterable, Sequence
from functools import lru_cache

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = rf"[^\W\d_{_CJK}]"  # a letter that is not a Chinese character
_RUN = re.compile(rf"[{_CJK}]+|[0-9]+(?:\.[0-9]+)?|{_WORD}+(?:[-']{_WORD}+)*", re.UNICODE)
_CJK_RUN = re.compile(rf"^[{_CJK}]+$")
_CJK_ANY = re.compile(rf"[{_CJK}]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[a-zA-Z]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ASCII_RUN = re.compile(r"[0-9]+(?:\.[0-9]+)?|[a-z]+(?:[-'][a-z]+)*")  # _RUN restricted to ASCII

EN_STOP = frozenset(
    """a an and are as at be been but by can could do does for from has have how i if in into
    is it its may more most must need needs no not of on or our should so such than that the
    their them then there these they this those to up use used using was we were what when
    which while who will with within without would you your also other can via per based new
    all any each both between about after before over under out one two three""".split()
)
RU_STOP = frozenset(
    """и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только
    ее мне было вот от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть
    был него до вас нибудь опять уж вам ведь там потом себя ничего ей может они тут где есть
    надо ней для мы тебя их чем была сам чтоб без будто чего раз тоже себе под будет ж тогда
    кто этот того потому этого какой совсем ним здесь этом один почти мой тем чтобы нее сейчас
    были куда зачем всех никогда можно при наконец два об другой хоть после над больше тот
    через эти нас про всего них какая много разве три эту моя впрочем хорошо свою этой перед
    иногда лучше чуть том нельзя такой им более всегда конечно всю между также это является""".split()
)
ZH_STOP = frozenset(
    """的 了 和 与 及 或 在 是 对 为 等 中 上 下 将 把 被 从 以 于 其 并 且 而 也 就 都 这 那 有
    一 一种 一个 进行 通过 需要 需求 要求 我们 公司 企业 本 该 可 可以 能 能够 使 使用 采用 实现
    提供 目前 现有 相关 方面 问题 技术 研究 开发 主要 及其 以及 其中 如何 希望 具有 包括 方法
    之 所 个 年 月 日 万 元 由 向 至 到 后 前 内 外 各 每 已 未 不 无 非 很 较 更 最""".split()
)

# Words that are indexed and scored but make poor reasons: what nearly every demand or
# capability says about its process (produce, analyse, plan, cooperate, optimise, reach,
# exceed, verify, ...). Found as the most frequent shown terms on the demo corpus.
REASON_STOP = frozenset(
    """生产 分析 方案 合作 优化 达到 运行 现场 成本 利用 稳定 周期 改进 年产 超过 验证 评估 提出
    尝试 运用 大型 完成 解决 提高 提升 降低 满足 保证 开展 推广 应用 实施 具备 形成 建立 引进
    有效 显著 较高 良好 具有 相应 主要 一定 多种 各类 国内 国际 领先 先进 关键 核心 同时
    还是 严重 以下 以上 以内 用于 工作 次年 每年 期间 当年 今年 明年 冬季 夏季 春季 秋季 冬天 夏天
    设计 设备 时间 计划 服务 自动 安全 下降 减少 增加 保持 结合 对比 影响 导致 给出 作为 产生
    损失 不足 适合 平均 单位 提前 万元 小时 能力 功能 结果 用户 普通 项目 规模 覆盖 面积 作业
    支持 替代 进口 收购 配套 标准 评价 改造 管理 质量 工程 人工 管理水平 成熟技术 偶有 均匀 我县
    我市 我厂 我们 企业 公司 单位 地区 当地 本地 目前 现在 经常 一直 比较 非常 严重 情况 过程
    条件 效果 水平 程度 方式 办法 措施 环节 部分 整体 全部 大量 少量 较大 较小 左右 以及 其他
    原因 发现 并用 调整 两年 三年 分钟 内部 布置 批量 消费者 考核 注册 组合 增强 连续 环境
    缩短 适用 来源 状态 参数 记录 比例 品牌 工厂 风险 放大 策略 费用 传统 价格 优质 指标 技术支持
    国产化 研发 回收期 资源 数据 示范 销售 基于 一家 两家 为主 依据 一次 外部 一物 国家 市场 客户
    实验室 专家 团队 人员 经验 时候 低于 高于 不低于 不超过 至少 最多 左右 上下 范围 建议 指导
    技术含量 附加值 高附加值 价值链 产业链 转型 升级 技术水平 一流 龙头 厂里 有没有 投诉 国产 怎么办
    竞争力 产业 效益 经济效益 利润 附加 档次 产品结构 找能 科研 一带 乡镇
    寻求 寻找 求助 咨询 对接 方向 领域 发展 行业 规划 思路 想法 打算""".split()
)

# Units and other tokens that are measurements, not content (mm, kg, MW, ...).
UNIT_STOP = frozenset(
    """mm cm km m mg kg g t kw mw kwh w v kv a ma hz khz mpa kpa pa um μm nm ml l h min s ppm ppb
    rpm db lux""".split()
)

# jieba logs its dictionary load at INFO; we keep our own logs readable.
logging.getLogger("jieba").setLevel(logging.WARNING)


def normalize(text: str) -> str:
    """NFKC-normalise (full-width to half-width), drop control characters, collapse spaces."""
    text = unicodedata.normalize("NFKC", text or "")
    text = _CONTROL.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


def has_chinese(text: str) -> bool:
    """Whether the normalised text holds a Chinese character (NFKC makes some from other
    symbols: the Kangxi radical ⼈ becomes 人)."""
    return _CJK_ANY.search(normalize(text)) is not None


def is_chinese_word(token: str) -> bool:
    """Whether a token is written in Chinese characters only (a jieba word)."""
    return _CJK_RUN.match(token) is not None


def chinese_share(tokens: Sequence[str]) -> float:
    """The share of tokens that are Chinese words (0..1; 0 for no tokens)."""
    if not tokens:
        return 0.0
    return sum(1 for t in tokens if is_chinese_word(t)) / len(tokens)


def guess_language(text: str) -> str:
    """A cheap guess among zh, ru and en from the script of the letters; '' when no letters."""
    sample = text[:2000]
    if sample.isascii():  # most English texts: no need to count scripts
        return "en" if _LATIN.search(sample) else ""
    cjk = len(re.findall(rf"[{_CJK}]", sample))
    cyr = len(_CYRILLIC.findall(sample))
    lat = len(_LATIN.findall(sample))
    # One Chinese character carries about as much as a short word: weight it up.
    counts = {"zh": cjk * 3, "ru": cyr, "en": lat}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ""


@lru_cache(maxsize=2)
def _stemmer(language: str):
    import Stemmer  # PyStemmer; imported lazily so --help stays instant

    return Stemmer.Stemmer(language)


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


class Tokenizer:
    """Turns text into index terms. Callable; returns a list of str tokens.

    Chinese runs are segmented by jieba in search mode (words plus their sub-words, so that
    "防腐涂层" also matches "涂层"); single Chinese characters are dropped unless they stand
    alone as a run. Latin and Cyrillic words are stemmed; numbers are kept.
    """

    def __init__(self, *, stem: bool = True, keep_stopwords: bool = False) -> None:
        self.stem = stem
        self.keep_stopwords = keep_stopwords

    def __call__(self, text: str) -> list[str]:
        return self._ascii(text) if text.isascii() else self._any_script(text)

    def _any_script(self, text: str) -> list[str]:
        tokens: list[str] = []
        latin: list[str] = []
        cyrillic: list[str] = []
        for run in _RUN.findall(normalize(text).lower()):
            if _CJK_RUN.match(run):
                tokens.extend(self._chinese(run))
            elif run[0].isdigit():
                tokens.append(run)
            elif _CYRILLIC.search(run):
                if self.keep_stopwords or run not in RU_STOP:
                    cyrillic.append(run)
                    tokens.append("\0ru")
            elif len(run) > 1 and (self.keep_stopwords or run not in EN_STOP):
                latin.append(run)
                tokens.append("\0en")
        if not latin and not cyrillic:
            return tokens
        # Stem in two batched calls, then put the words back where they were.
        en = iter(_stemmer("english").stemWords(latin) if self.stem else latin)
        ru = iter(_stemmer("russian").stemWords(cyrillic) if self.stem else cyrillic)
        return [next(en) if t == "\0en" else next(ru) if t == "\0ru" else t for t in tokens]

    def _ascii(self, text: str) -> list[str]:
        """The same tokens for ASCII-only text (most English), without the per-script checks:
        NFKC leaves ASCII alone and control characters only ever separate runs."""
        words = [
            run
            for run in _ASCII_RUN.findall(text.lower())
            if run[0].isdigit() or (len(run) > 1 and (self.keep_stopwords or run not in EN_STOP))
        ]
        if not self.stem:
            return words
        stems = _stemmer("english").stemWords(words)
        return [w if w[0].isdigit() else s for w, s in zip(words, stems)]

    def whole_words(self, text: str) -> frozenset[str]:
        """The text's words as jieba cuts them without search mode's sub-words, plus every
        non-Chinese token: the terms a reason may show."""
        out: set[str] = set()
        for run in _RUN.findall(normalize(text).lower()):
            if _CJK_RUN.match(run):
                out.update(_jieba().lcut(run) if len(run) > 2 else [run])
        non_cjk = [t for t in self(text) if not _CJK_RUN.match(t)]
        return frozenset(out.union(non_cjk))

    def _chinese(self, run: str) -> list[str]:
        if len(run) <= 2:
            return [run]
        words = _jieba().lcut_for_search(run)
        return [w for w in words if len(w) > 1 and (self.keep_stopwords or w not in ZH_STOP)]

    def batch(self, texts: Iterable[str]) -> list[list[str]]:
        return [self(t) for t in texts]


def _showable(term: str, idf: dict[str, float], min_idf: float, show: Callable[[str], bool] | None) -> bool:
    """`shared_terms`' tests of a term that do not depend on the other text."""
    return (
        idf.get(term, min_idf) >= min_idf
        and term not in REASON_STOP
        and term not in UNIT_STOP
        and not term.replace(".", "").isdigit()
        and not (len(term) == 1 and _CJK_RUN.match(term))  # a lone 至 ("to") explains nothing
        and (show is None or show(term))
    )


class ShowableTerms(frozenset):
    """What `showable_terms` returns: the query's terms that passed its tests, and the idf,
    min_idf and show they passed them with, so `shared_terms` given the same three need not
    test them again for each document (a request shows some thirty documents)."""

    idf: dict[str, float]
    min_idf: float
    show: Callable[[str], bool] | None

    def tested_with(self, idf, min_idf: float, show) -> bool:
        return self.idf is idf and self.min_idf == min_idf and self.show == show


def showable_terms(
    tokens: Iterable[str], idf: dict[str, float] | None = None, min_idf: float = 0.0,
    show: Callable[[str], bool] | None = None,
) -> ShowableTerms:
    """The query's tokens `shared_terms` could show whatever the document (same arguments): a
    query shown with many documents passes this set instead of its tokens, and each document
    tests only the words it shares."""
    idf = idf or {}
    out = ShowableTerms(t for t in set(tokens) if _showable(t, idf, min_idf, show))
    out.idf, out.min_idf, out.show = idf, min_idf, show
    return out


def shared_terms(
    query_tokens: Sequence[str] | frozenset[str],
    doc_tokens: Sequence[str],
    idf: dict[str, float] | None = None,
    limit: int = 8,
    min_idf: float = 0.0,
    whole_words: Container[str] | None = None,
    compounds: dict[str, float] | None = None,
    show: Callable[[str], bool] | None = None,
) -> tuple[str, ...]:
    """Terms present in both token lists, most informative first (by idf when given).

    Bare numbers, lone Chinese characters, generic process words (REASON_STOP) and terms with
    idf below `min_idf` (words most documents use) are left out, as are sub-words of a longer
    shared term ("涂层" when "防腐涂层" is shared), so the reasons read as terms a person would
    underline. whole_words: when given, a Chinese term must be a whole word of one of the two
    texts (see `Tokenizer.whole_words`), not only a piece of longer words in both (哈尔 of
    齐齐哈尔 and 哈尔滨). compounds: dictionary terms both texts contain whole (see
    `vocabulary.TermVocabulary`) with their weight, shown before their pieces; show: a last
    test of a term (`TermVocabulary.shows`: technical content only). query_tokens may be a set,
    such as the query's `showable_terms` when it is shown with many documents.
    """
    idf = idf or {}
    # A term of a `showable_terms` set passed these tests with these weights (a compound's weight
    # may differ, but compounds are shown whatever their weight: the union below).
    tested = isinstance(query_tokens, ShowableTerms) and query_tokens.tested_with(idf, min_idf, show)
    if compounds:
        idf = dict(idf)
        for term, weight in compounds.items():
            idf[term] = max(idf.get(term, 0.0), weight)
    query_set = query_tokens if isinstance(query_tokens, (set, frozenset)) else set(query_tokens)
    common = {
        t
        for t in query_set.intersection(doc_tokens)
        if (whole_words is None or t in whole_words)
        and (tested or _showable(t, idf, min_idf, show))
    } | {t for t in (compounds or {}) if show is None or show(t)}
    if not common:
        return ()
    ordered = sorted(common, key=lambda t: (-idf.get(t, 0.0), -len(t), t))
    kept: list[str] = []
    for term in ordered:
        if any(term in longer for longer in kept):
            continue
        kept.append(term)
        if len(kept) == limit:
            break
    return tuple(kept)
