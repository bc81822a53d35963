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

from matcher import taxonomy

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
    (value, label in `lang`) pairs: the city's taxonomy (`matcher.taxonomy`: ``INDUSTRIES`` /
    ``REGIONS`` in their order, named in `lang`), then any value stored in the database that
    the taxonomy does not know even as an alias (a record from before it), as its own label.
    """
    known = taxonomy.known_values(kind)
    pairs = [(value, taxonomy.label(kind, value, lang)) for value in known]
    extra = [v for v in dict.fromkeys(v for v in stored if v) if not taxonomy.canonical(kind, v)]
    return pairs + [(value, _stored_label(kind, value, lang)) for value in extra]


def _stored_label(kind: str, value: str, lang: str) -> str:
    canon = taxonomy.canonical(kind, value)
    return taxonomy.label(kind, canon, lang) if canon else value


def term_label(kind: str, value: str, lang: str) -> str:
    """The name of one industry or region in `lang` (see :func:`terms`)."""
    return _stored_label(kind, value, lang) if value else value
