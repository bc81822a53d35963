"""Inbox for strings of the planning pages (/conference, /landscape), merged into
`i18n.STRINGS`. Their texts now live in the gettext catalogs (`service/locales`); an entry added
here works at once and is folded into the catalogs by
``python -m service.views.catalogs import-dict``."""

from __future__ import annotations

PLANNING_STRINGS: dict[str, dict[str, str]] = {
}
