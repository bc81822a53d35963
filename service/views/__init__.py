"""What the web page says and how: templates, the highlighter and the page's languages.

Owns rendering (:mod:`.render`: Jinja templates from ``service/templates``, the <mark>
highlighter, error pages) and the page's strings (:mod:`.i18n`, :mod:`.i18n_planning`).

May import: :mod:`service.errors`. Nothing that touches the database or the engine.
"""
