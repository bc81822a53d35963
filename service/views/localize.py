"""What a record says in the page's language: a demand's own English (or Russian) version, and
the names of industries and regions.

Demands may carry their text in another language in `extra` (``title_en``, ``text_en``; also
``title_ru``, ``text_ru``). The English page shows the English version; the Russian page shows a
Russian version, else the English one (closer to a Russian reader than the Chinese original);
the Chinese page shows the record as filed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_PREFERENCES = {"zh": (), "en": ("en",), "ru": ("ru", "en")}


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def localized(obj: Any, field: str, lang: str) -> str:
    """`obj.field` in `lang` where the record has a version in it, else as filed."""
    extra = _get(obj, "extra") or {}
    for suffix in _PREFERENCES.get(lang, ()):
        value = extra.get(f"{field}_{suffix}") if isinstance(extra, dict) else None
        if isinstance(value, str) and value.strip():
            return value
    return _get(obj, field) or ""


def shown_language(obj: Any, lang: str) -> str | None:
    """The language of the version `localized` shows, when it is not the one filed (else None)."""
    extra = _get(obj, "extra") or {}
    for suffix in _PREFERENCES.get(lang, ()):
        if isinstance(extra, dict) and str(extra.get(f"title_{suffix}") or "").strip():
            return suffix
    return None


def terms(kind: str, stored: Iterable[str], lang: str) -> list[tuple[str, str]]:
    """The industries (`kind` "industry") or regions ("region") the page offers and names, as
    (value, label in `lang`) pairs, from the values stored in the database.

    This is where the city's taxonomy plugs in: with `matcher.taxonomy`, the choices become its
    canonical list (``INDUSTRIES`` / ``REGIONS``) and each label
    ``taxonomy.label(kind, taxonomy.canonical_<kind>(value), lang)``. Until then a value is its
    own label.
    """
    return [(value, value) for value in dict.fromkeys(v for v in stored if v)]


def term_label(kind: str, value: str, lang: str) -> str:
    """The name of one industry or region in `lang` (see :func:`terms`)."""
    return dict(terms(kind, [value], lang)).get(value, value)
