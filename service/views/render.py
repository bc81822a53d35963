"""Rendering helpers for the web page: templates, language, the <mark> highlighter, errors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from service.errors import ApiError
from service.views import localize
from service.views.i18n import DEFAULT_LANG, HTML_LANG, LANG_NAMES, LANGS, translator

HERE = Path(__file__).resolve().parents[1]  # the service package: templates/ and static/ live there
TOKEN_COOKIE = "techmatch_token"
LANG_COOKIE = "techmatch_lang"


class LoginRequired(Exception):
    """A page needs a signed-in user: answered with a redirect to /login."""


def make_templates() -> Jinja2Templates:
    """Jinja2 templates with autoescaping on for every template (a `<script>` title shows as text)."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["highlight"] = highlight
    env.filters["fmt"] = lambda value, spec=".3f": format(float(value), spec)
    return Jinja2Templates(env=env)


def highlight(text: str, terms: Iterable[str]) -> Markup:
    """`text` escaped, with every occurrence of `terms` wrapped in <mark> (longest first)."""
    text = text or ""
    words = sorted({t for t in terms if t and t.strip()}, key=len, reverse=True)
    if not words:
        return escape(text)
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    out: list[Markup] = []
    pos = 0
    for m in pattern.finditer(text):
        out.append(escape(text[pos:m.start()]))
        out.append(Markup("<mark>") + escape(m.group(0)) + Markup("</mark>"))
        pos = m.end()
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def page_lang(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or DEFAULT_LANG
    return lang if lang in LANGS else DEFAULT_LANG


def lang_url(request: Request, lang: str) -> str:
    params = dict(request.query_params)
    params["lang"] = lang
    return f"{request.url.path}?{urlencode(params)}"


def render(request: Request, name: str, context: dict | None = None, *, status: int = 200,
           principal=None) -> Response:
    """Render a page in the caller's language; a `?lang=` choice is remembered in a cookie."""
    lang = page_lang(request)
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(request, name, {
        "t": translator(lang), "lang": lang, "principal": principal, "html_lang": HTML_LANG[lang],
        "lang_names": LANG_NAMES,
        "loc": lambda obj, field: localize.localized(obj, field, lang),
        "shown_lang": lambda obj: localize.shown_language(obj, lang),
        "term": lambda kind, value: localize.term_label(kind, value or "", lang),
        "choices": lambda kind, stored: localize.terms(kind, stored, lang),
        "lang_urls": {code: lang_url(request, code) for code in LANGS}, **(context or {}),
    }, status_code=status)
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax")
    return response


def render_error(request: Request, err: ApiError) -> Response:
    """The HTML form of an error, for page requests."""
    if err.status == 401:
        return login_redirect(request)
    return render(request, "error.html", {"status": err.status, "message": err.message, "code": err.code,
                                          "key": err.key, "params": err.params, "details": err.details},
                  status=err.status)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)


def safe_next(value: str | None) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"
