"""One-line reasons in words for a fit, for staff: no raw scores.

    partner_reason("strong", "低温防腐涂层", ["涂层", "附着力"], "zh")
    -> '很匹配：其能力"低温防腐涂层"对口（共同技术词：涂层、附着力）'
"""

from __future__ import annotations

from collections.abc import Sequence

LABEL_WORDS = {
    "en": {"strong": "Strong fit", "possible": "Possible fit", "weak": "Weak fit"},
    "zh": {"strong": "很匹配", "possible": "可能匹配", "weak": "匹配度低"},
    "ru": {"strong": "Хорошо подходит", "possible": "Может подойти", "weak": "Слабо подходит"},
}

_PARTNER = {
    "en": {"strong": 'its capability "{t}" addresses this demand', "possible": 'its capability "{t}" is related',
           "weak": 'even its closest capability "{t}" is far from this demand'},
    "zh": {"strong": "其能力“{t}”对口", "possible": "其能力“{t}”相关", "weak": "最接近的能力“{t}”也相差较远"},
    "ru": {"strong": "компетенция «{t}» отвечает запросу", "possible": "компетенция «{t}» близка к запросу",
           "weak": "даже ближайшая компетенция «{t}» далека от запроса"},
}
_DEMAND = {
    "en": {"strong": "the demand asks for what {s} offers", "possible": "the demand is related to {s}",
           "weak": "the demand has little to do with {s}"},
    "zh": {"strong": "需求正对{s}的方向", "possible": "需求与{s}相关", "weak": "需求与{s}关系不大"},
    "ru": {"strong": "запрос ровно о том, что предлагает {s}", "possible": "запрос связан с {s}",
           "weak": "запрос мало связан с {s}"},
}
_SUBJECT = {"en": ('capability "{t}"', "this text"), "zh": ("能力“{t}”", "该描述"), "ru": ("«{t}»", "этим текстом")}
_SHARED = {"en": " (shared terms: {x})", "zh": "（共同技术词：{x}）", "ru": " (общие термины: {x})"}
_SEP = {"en": ", ", "zh": "、", "ru": ", "}


def _lang(lang: str) -> str:
    return lang if lang in LABEL_WORDS else "en"


def label_words(label: str, lang: str = "en") -> str:
    return LABEL_WORDS[_lang(lang)].get(label, label)


def _shared(terms: Sequence[str], lang: str, limit: int = 4) -> str:
    terms = list(terms)[:limit]
    return _SHARED[lang].format(x=_SEP[lang].join(terms)) if terms else ""


def partner_reason(label: str, capability_title: str, terms: Sequence[str], lang: str = "en") -> str:
    """Why a partner fits a demand: the fit label, its best capability and the technical terms shared."""
    lang = _lang(lang)
    colon = "：" if lang == "zh" else ": "
    body = _PARTNER[lang].get(label, _PARTNER[lang]["weak"]).format(t=capability_title)
    return f"{label_words(label, lang)}{colon}{body}{_shared(terms, lang)}"


def demand_reason(label: str, capability_title: str, terms: Sequence[str], lang: str = "en") -> str:
    """Why a demand fits a partner (its best capability) or a typed text."""
    lang = _lang(lang)
    colon = "：" if lang == "zh" else ": "
    with_cap, plain = _SUBJECT[lang]
    subject = with_cap.format(t=capability_title) if capability_title else plain
    body = _DEMAND[lang].get(label, _DEMAND[lang]["weak"]).format(s=subject)
    return f"{label_words(label, lang)}{colon}{body}{_shared(terms, lang)}"
