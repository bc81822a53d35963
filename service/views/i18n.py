"""The page's languages and `t(key)`: Chinese (the default), English and Russian.

The texts live in gettext catalogs, ``service/locales/<lang>/LC_MESSAGES/messages.po``
(:mod:`service.views.catalogs`). ``STRINGS`` below is an inbox for branches written before the
move: a key added here as ``{"zh": ..., "en": ..., "ru": ...}`` works on the page at once, and
``python -m service.views.catalogs import-dict`` folds it into the catalogs (CI fails until
that is done and the entry is removed again).
"""

from __future__ import annotations

from service.views.i18n_planning import PLANNING_STRINGS
from service.views.translations import DEFAULT_LANG, LANGS, catalogs

__all__ = ["DEFAULT_LANG", "LANGS", "LANG_NAMES", "STRINGS", "translator"]

LANG_NAMES = {"zh": "中文", "en": "English", "ru": "Русский"}
HTML_LANG = {"zh": "zh-CN", "en": "en", "ru": "ru"}

STRINGS: dict[str, dict[str, str]] = {
    **PLANNING_STRINGS,
}


def text_for(key: str, lang: str) -> str | None:
    """The text of `key` in `lang`: the catalog's, else an inbox entry's; None when neither has it."""
    found = catalogs()[lang].get(key)
    if found is None and key in STRINGS:
        found = STRINGS[key].get(lang)
    return found


def translator(lang: str):
    """A function key -> string in `lang` (falls back to Chinese, then to the key)."""
    lang = lang if lang in LANGS else DEFAULT_LANG

    def t(key: str, **kw: object) -> str:
        text = text_for(key, lang) or text_for(key, DEFAULT_LANG) or key
        if not kw:
            return text
        try:
            return text.format(**kw)
        except (KeyError, IndexError, ValueError):  # a translation with a wrong placeholder
            return text

    return t
