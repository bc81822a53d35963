"""Sentences in Chinese, English and Russian from tables of templates, with plural forms.

A template is a `str.format` string whose fields may carry their plural forms as the format
spec, separated by "|": ``"{n} {n:встреча|встречи|встреч}"``. Russian takes three forms (one,
few, many: 1 встреча, 2 встречи, 5 встреч, 21 встреча), English two (one, other); Chinese
has none. Numbers keep their usual format specs (``{pct:.1f}``); Russian writes a decimal
comma.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

LANGS = ("zh", "en", "ru")


def plural_index(lang: str, n: int) -> int:
    """Which plural form `n` takes in `lang`: 0 (one), 1 (few / other) or 2 (many)."""
    n = abs(int(n))
    if lang == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return 0
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return 1
        return 2
    if lang == "en":
        return 0 if n == 1 else 1
    return 0


def plural(lang: str, n: int, *forms: str) -> str:
    """The form of a word for `n`: ``plural("ru", 5, "встреча", "встречи", "встреч") == "встреч"``."""
    return forms[min(plural_index(lang, n), len(forms) - 1)]


class _Formatter(string.Formatter):
    def __init__(self, lang: str) -> None:
        self.lang = lang

    def format_field(self, value: Any, format_spec: str) -> str:
        if "|" in format_spec:
            return plural(self.lang, value, *format_spec.split("|"))
        text = super().format_field(value, format_spec)
        if self.lang == "ru" and isinstance(value, float):
            text = text.replace(".", ",")
        return text


def fill(lang: str, template: str, **params: Any) -> str:
    """`template` with `params` filled in, plural specs resolved for `lang`."""
    return _Formatter(lang).format(template, **params)


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; use one of: {', '.join(LANGS)}")
    return lang


def texts(table: Mapping[str, Mapping[str, str]], key: str, **params: Any) -> dict[str, str]:
    """``table[key]`` filled in every language: {lang: sentence}."""
    return {lang: fill(lang, table[key][lang], **params) for lang in LANGS}


# What to change so that every minimum can be met (`assign.Suggestion`). The pin templates get
# ", or unpin N of its meetings" appended (PIN_UNPIN).
SUGGESTIONS: dict[str, dict[str, str]] = {
    "pin_excluded_pair": {
        "zh": "取消 {demand} 与 {partner} 的确认对接，或取消排除名单",
        "en": "unpin {demand} with {partner}, or lift the excluded pair list",
        "ru": "снимите закрепление встречи {demand} с {partner} или уберите эту пару из списка исключений",
    },
    "pin_excluded_rule": {
        "zh": "取消 {demand} 与 {partner} 的确认对接，或取消排除规则",
        "en": "unpin {demand} with {partner}, or lift the rule '{rule}'",
        "ru": "снимите закрепление встречи {demand} с {partner} или отмените правило исключения «{rule}»",
    },
    "pin_partner_capacity": {
        "zh": "把伙伴 {k} 的接待名额从 {lim} 提高到 {n}",
        "en": "raise the capacity of partner {k} from {lim} to {n}",
        "ru": "увеличьте число встреч партнёра {k} с {lim} до {n}",
    },
    "pin_max_per_demand": {
        "zh": "把需求 {k} 的对接上限从 {lim} 提高到 {n}",
        "en": "raise the maximum of demand {k} from {lim} to {n}",
        "ru": "увеличьте наибольшее число встреч запроса {k} с {lim} до {n}",
    },
    "pin_organisation_cap": {
        "zh": "把单位 {k} 的对接上限从 {lim} 提高到 {n}",
        "en": "raise the cap of organisation {k} from {lim} to {n}",
        "ru": "увеличьте предел встреч организации {k} с {lim} до {n}",
    },
    "pin_group_cap": {
        "zh": "把 {k} 的同一伙伴对接上限从 {lim} 提高到 {n}",
        "en": "raise the per-partner cap of {k} from {lim} to {n}",
        "ru": "увеличьте предел встреч {k} с одним партнёром с {lim} до {n}",
    },
    "quota": {
        "zh": "需求 {demand} 只有 {have} 个合格伙伴，达不到最少 {need} 场：把它的最少对接数降到 {have}，"
              "或增加候选伙伴（加大 k、降低最低分、减少排除）",
        "en": "demand {demand} has only {have} eligible partners for a minimum of {need}: lower its "
              "minimum to {have}, or give it more candidates (larger k, lower min_score, fewer exclusions)",
        "ru": "у запроса {demand} только {have} {have:подходящий партнёр|подходящих партнёра|подходящих партнёров} "
              "при минимуме {need} {need:встреча|встречи|встреч}: снизьте его минимум до {have} или дайте ему "
              "больше кандидатов (длиннее список кандидатов, ниже минимальная оценка, меньше исключений)",
    },
    "capacity": {
        "zh": "把伙伴 {partner} 的接待名额从 {cur} 场增加到 {new} 场（+{n}）",
        "en": "raise the capacity of partner {partner} from {cur} to {new} (+{n} meetings)",
        "ru": "увеличьте число встреч партнёра {partner} с {cur} до {new} (+{n} {n:встреча|встречи|встреч})",
    },
    "organisation_cap": {
        "zh": "允许单位 {name} 对接 {new} 场（原上限 {cur}，+{n}）",
        "en": "allow organisation {name} {new} meetings instead of {cur} (+{n})",
        "ru": "разрешите организации {name} {new} {new:встречу|встречи|встреч} вместо {cur} (+{n})",
    },
    "group_cap": {
        "zh": "允许 {group} 的企业与伙伴 {partner} 对接 {new} 场（原上限 {cur}，+{n}）",
        "en": "allow {new} meetings between {group} and partner {partner} instead of {cur} (+{n})",
        "ru": "разрешите {new} {new:встречу|встречи|встреч} между предприятиями группы {group} и партнёром "
              "{partner} вместо {cur} (+{n})",
    },
}
PIN_UNPIN = {
    "zh": "，或取消其中 {extra} 个确认对接",
    "en": ", or unpin {extra} of its meetings",
    "ru": " или снимите закрепление {extra} {extra:встречи|встреч|встреч}",
}
