"""The page's translations: gettext catalogs (`service/locales/<lang>/LC_MESSAGES/messages.po`).

A message id is the key that templates pass to ``t(key)`` (``nav_demands``, ``err_not_yes_no``);
the message string is the text in that language. Translators edit the `.po` files with any PO
editor; the service reads them directly (no compiled `.mo` needed). Each entry of the Chinese and
Russian catalogs carries the English text as an extracted comment, for the translator's context.

Command line (``python -m service.views.catalogs <command>``):

``import-dict``
    Fold the entries of the legacy ``STRINGS`` dicts (:mod:`service.views.i18n`,
    :mod:`service.views.i18n_planning`) into the catalogs: new keys are added, changed texts
    replace the catalog's. Languages a dict entry lacks stay empty in that catalog, which the
    ``check`` command (and CI) then reports. Afterwards empty the dicts.
``extract``
    Write ``service/locales/messages.pot``: every literal key that a template or the service's
    Python code passes to ``t(...)``.
``check``
    Exit 1 listing every key without a translation in some language, every key the code uses
    that no catalog has, and every entry still waiting in the ``STRINGS`` dicts.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Mapping
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import write_po

from service.views import translations
from service.views.i18n import STRINGS
from service.views.translations import LANGS, SERVICE, catalogs, po_path, read_catalog, write_catalog

SOURCE_LANG = "en"  # the language of the extracted comments
METHOD_MAP = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
EXTRACT_OPTIONS = {"templates/**.html": {"trim_blocks": "true", "lstrip_blocks": "true"}}
KEYWORDS = {"t": None}

def all_keys() -> set[str]:
    return {str(m.id) for lang in LANGS for m in read_catalog(lang) if m.id}


def fold_dict(strings: Mapping[str, Mapping[str, str]]) -> dict[str, int]:
    """Add or update every key of `strings` (key -> {lang: text}) in every catalog; returns the
    number of messages written per language."""
    written: dict[str, int] = {}
    for lang in LANGS:
        catalog = read_catalog(lang)
        count = 0
        for key, texts in strings.items():
            source = texts.get(SOURCE_LANG, "")
            comments = [source] if lang != SOURCE_LANG and source else []
            old = catalog.get(key)
            text = texts.get(lang) or (old.string if old is not None else "")
            if old is None or old.string != text or list(old.auto_comments) != comments:
                catalog.delete(key)
                catalog.add(key, text, auto_comments=comments)
                count += 1
        write_catalog(lang, catalog)
        written[lang] = count
    catalogs.cache_clear()
    return written


def extracted_keys() -> dict[str, list[str]]:
    """Every literal key passed to ``t(...)`` in the templates and the service's Python code,
    with where it is used."""
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            SERVICE, METHOD_MAP, options_map=EXTRACT_OPTIONS, keywords=KEYWORDS):
        if isinstance(message, str) and message:
            found.setdefault(message, []).append(f"service/{filename}:{lineno}")
    return found


def write_template() -> Path:
    catalog = Catalog(project="techmatch", charset="utf-8")
    for key, places in sorted(extracted_keys().items()):
        catalog.add(key, locations=[(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in places])
    path = translations.LOCALES / "messages.pot"
    buf = io.BytesIO()
    write_po(buf, catalog, width=0)
    path.write_bytes(buf.getvalue())
    return path


def pending_dict_entries() -> dict[str, dict[str, str]]:
    """Entries still in the legacy ``STRINGS`` dicts (they belong in the catalogs)."""
    return {k: dict(v) for k, v in STRINGS.items()}


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(SERVICE.parent))
    except ValueError:
        return str(path)


def problems() -> list[str]:
    """Everything that makes a page show a key or another language instead of a translation."""
    out: list[str] = []
    keys = all_keys()
    for lang in LANGS:
        have = catalogs()[lang]
        for key in sorted(keys - have.keys()):
            out.append(f"{_shown(po_path(lang))}: '{key}' has no translation")
        for key, text in have.items():
            ref = catalogs()[SOURCE_LANG].get(key, "")
            if _fields(text) != _fields(ref):
                out.append(f"{_shown(po_path(lang))}: '{key}' uses placeholders "
                           f"{sorted(_fields(text))}, English uses {sorted(_fields(ref))}")
    for key, places in sorted(extracted_keys().items()):
        if key not in keys:
            out.append(f"{places[0]}: t('{key}') is in no catalog")
    for key in sorted(pending_dict_entries()):
        out.append(f"STRINGS['{key}'] is not in the catalogs yet: run python -m service.views.catalogs import-dict")
    return out


def _fields(text: str) -> set[str]:
    import string

    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.views.catalogs", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("import-dict", help="fold the STRINGS dicts' entries into the .po catalogs")
    sub.add_parser("extract", help="write service/locales/messages.pot from the templates and code")
    sub.add_parser("check", help="list missing translations and keys; exit 1 if there are any")
    args = parser.parse_args(argv)
    if args.command == "import-dict":
        entries = pending_dict_entries()
        written = fold_dict(entries)
        print(f"{len(entries)} dict entries folded into the catalogs; messages written: "
              + ", ".join(f"{lang} {n}" for lang, n in written.items()))
        missing = [p for p in problems() if "has no translation" in p]
        for line in missing:
            print("  " + line)
        if entries:
            print("Now remove these entries from the STRINGS dicts (service/views/i18n.py, i18n_planning.py).")
        return 0
    if args.command == "extract":
        print(f"wrote {write_template()}")
        return 0
    found = problems()
    for line in found:
        print(line)
    print(f"{len(found)} problem(s) in {', '.join(LANGS)} catalogs")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
