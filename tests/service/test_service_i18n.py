"""The page's gettext catalogs: complete in every language, and in step with the code."""

from __future__ import annotations

import re
import shutil

import pytest

from service.views import catalogs, i18n, translations


def test_no_string_lacks_a_translation_and_no_used_key_is_missing():
    assert catalogs.problems() == []


def test_extraction_finds_the_templates_and_python_keys():
    found = catalogs.extracted_keys()
    assert "nav_demands" in found and "login_title" in found
    assert any(place.startswith("service/templates/") for place in found["nav_demands"])
    assert all(key in catalogs.all_keys() for key in found)


def test_every_language_has_every_key_with_the_same_placeholders():
    keys = catalogs.all_keys()
    assert len(keys) > 150
    for lang in catalogs.LANGS:
        assert set(catalogs.catalogs()[lang]) == keys, lang
    assert i18n.translator("ru")("results_total", n=3) == "Всего: 3"
    assert i18n.translator("en")("results_total", n=3) == "3 in total"
    assert i18n.translator("zh")("results_total", n=3) == "共 3 条"
    assert i18n.translator("xx")("nav_demands") == "技术需求"  # unknown language: Chinese


def test_russian_is_written_not_copied():
    ru, en, zh = (catalogs.catalogs()[lang] for lang in ("ru", "en", "zh"))
    cyrillic = [k for k, v in ru.items() if any("\u0400" <= ch <= "\u04ff" for ch in v)]
    assert len(cyrillic) >= 0.9 * len(ru)
    assert sum(ru[k] == en[k] for k in ru) <= 0.05 * len(ru)
    assert not any(ru[k] == zh[k] for k in ru if any("\u4e00" <= ch <= "\u9fff" for ch in zh[k]))


@pytest.fixture
def scratch_locales(tmp_path, monkeypatch):
    shutil.copytree(translations.LOCALES, tmp_path / "locales")
    monkeypatch.setattr(translations, "LOCALES", tmp_path / "locales")
    catalogs.catalogs.cache_clear()
    yield tmp_path / "locales"
    catalogs.catalogs.cache_clear()


def test_import_dict_folds_new_and_changed_entries(scratch_locales, monkeypatch, capsys):
    monkeypatch.setitem(i18n.STRINGS, "brand_new", {"zh": "新的", "en": "Brand new"})
    monkeypatch.setitem(i18n.STRINGS, "apply", {"zh": "应用筛选", "en": "Filter", "ru": "Фильтр"})
    assert i18n.translator("en")("brand_new") == "Brand new"  # works before folding
    assert any("STRINGS['brand_new']" in p for p in catalogs.problems())
    assert catalogs.main(["import-dict"]) == 0
    out = capsys.readouterr().out
    assert "2 dict entries folded" in out and "'brand_new' has no translation" in out  # no Russian yet
    po = (scratch_locales / "zh" / "LC_MESSAGES" / "messages.po").read_text(encoding="utf-8")
    assert '#. Brand new\nmsgid "brand_new"\nmsgstr "新的"' in po
    assert catalogs.catalogs()["ru"]["apply"] == "Фильтр"
    assert "brand_new" not in catalogs.catalogs()["ru"]
    assert catalogs.main(["check"]) == 1


def test_every_error_code_has_a_text_in_every_language():
    root = catalogs.SERVICE.parent
    # every InputError raised by the engine or the upload page
    sources = [*root.glob("matcher/**/*.py"), root / "service/importer.py", root / "service/routers/pages.py"]
    codes = {m for path in sources for m in re.findall(r'code="([a-z_]+)"', path.read_text(encoding="utf-8"))}
    codes -= {"invalid_input", "unknown_name", "matcher_error", "internal_error"}  # API body codes, not texts
    assert {"not_yes_no", "cannot_decode", "shift_jis", "missing_column"} <= codes
    for lang in catalogs.LANGS:
        missing = sorted(c for c in codes if f"err_{c}" not in catalogs.catalogs()[lang])
        assert missing == [], (lang, missing)
    http = {k.removeprefix("http_") for k in catalogs.all_keys() if k.startswith("http_")}
    from service.errors import _CODES

    assert set(_CODES.values()) | {"invalid_input", "unknown_name", "matcher_error", "http_error"} <= http
