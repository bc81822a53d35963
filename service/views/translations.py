"""Reading and writing the page's gettext catalogs, ``service/locales/<lang>/LC_MESSAGES/messages.po``.

The `.po` files are read directly (no compiled `.mo`), once per process; see
:mod:`service.views.catalogs` for the commands that maintain them.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

SERVICE = Path(__file__).resolve().parents[1]
LOCALES = SERVICE / "locales"
LANGS = ("zh", "en", "ru")
DEFAULT_LANG = "zh"


def po_path(lang: str) -> Path:
    return LOCALES / lang / "LC_MESSAGES" / "messages.po"


def read_catalog(lang: str) -> Catalog:
    path = po_path(lang)
    if not path.exists():
        return Catalog(locale=lang, project="techmatch", charset="utf-8")
    with path.open("rb") as fh:
        return read_po(fh, locale=lang, charset="utf-8")


def write_catalog(lang: str, catalog: Catalog) -> None:
    path = po_path(lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    write_po(buf, catalog, width=0, omit_header=False)
    tmp = path.with_suffix(".po.tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


@lru_cache(maxsize=1)
def catalogs() -> dict[str, dict[str, str]]:
    """lang -> {key: text} for every language; untranslated (empty) entries are left out."""
    out: dict[str, dict[str, str]] = {}
    for lang in LANGS:
        out[lang] = {str(m.id): str(m.string) for m in read_catalog(lang) if m.id and m.string}
    return out


