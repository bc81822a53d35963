"""What the web page says and how: templates, the highlighter and the page's languages.

Owns rendering (:mod:`.render`: Jinja templates from ``service/templates``, the <mark>
highlighter, error pages) and the page's strings: gettext catalogs in ``service/locales``
(:mod:`.translations` reads them, :mod:`.catalogs` checks and maintains them), ``t(key)`` and the
legacy ``STRINGS`` inbox (:mod:`.i18n`, :mod:`.i18n_planning`).

May import: :mod:`service.errors`. Nothing that touches the database or the engine.
"""
