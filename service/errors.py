"""The service's error hierarchy and its translation into one error body at the edge.

Every 4xx (and 5xx) answer of the API has the body::

    {"error": {"status": 404, "code": "not_found", "message": "...", "details": [...]}}

Routers raise `ApiError` subclasses; the engine's `MatcherError`s, FastAPI's validation
errors and Starlette's HTTP errors (unknown route, wrong method) are translated here, once.
Page routes (HTML) get the same information rendered as a page (see `routers.pages`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from matcher.errors import InputError, InputErrors, MatcherError, NotFoundError, UnknownNameError

log = logging.getLogger("techmatch.service")

_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "too_many_requests",
    500: "internal_error", 503: "not_ready",
}


class ApiError(Exception):
    """Base of the service's errors: an HTTP status, a stable code and a readable message."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None,
                 key: str | None = None, params: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The page's catalog key and its parameters for the same message, e.g. "err_no_demand",
        # {"id": "D9"}: the page shows it in its language (the API answers `message`).
        self.key = key
        self.params = params or {}
        self.details = details or []
        self.headers = headers
        if code:
            self.code = code


class Unauthenticated(ApiError):
    status, code = 401, "unauthenticated"

    def __init__(self, message: str = "a valid token is required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class Invalid(ApiError):
    status, code = 422, "validation_error"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class NotReady(ApiError):
    """503 while the index or a derived view is being built: by design, and worth a retry."""

    status, code = 503, "not_ready"

    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": "2"})
        super().__init__(message, **kw)


def error_body(status: int, code: str, message: str, details: list[Any] | None = None) -> dict:
    return {"error": {"status": status, "code": code, "message": message,
                      "details": jsonable_encoder(details or [])}}


def error_response(status: int, code: str, message: str, details: list[Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, code, message, details), status_code=status,
                        headers=headers)


def input_error_details(exc: InputError) -> list[dict[str, Any]]:
    """Row-level problems of an ingest error as ``[{file, row, field, message}]``."""
    errors = exc.errors if isinstance(exc, InputErrors) else [exc]
    return [{"file": e.file, "row": e.row, "field": e.field, "message": e.reason, "code": e.code,
             "params": e.params} for e in errors]


def translate(exc: Exception) -> ApiError:
    """The `ApiError` for any exception the service knows how to explain."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, InputError):
        return Invalid(str(exc) if not isinstance(exc, InputErrors) else
                       f"{len(exc.errors)} problem(s) in {exc.file}; nothing was imported",
                       details=input_error_details(exc), code="invalid_input",
                       key=f"err_{exc.code}" if exc.code else None, params=exc.params)
    if isinstance(exc, NotFoundError):
        return NotFound(str(exc))
    if isinstance(exc, UnknownNameError):
        return Invalid(str(exc), code="unknown_name")
    if isinstance(exc, MatcherError):
        return Invalid(str(exc), code="matcher_error")
    if isinstance(exc, RequestValidationError):
        details = [{"loc": list(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
                   for e in exc.errors()]
        return Invalid("the request is not valid: " + "; ".join(
            f"{'.'.join(str(p) for p in d['loc'])}: {d['message']}" for d in details[:5]), details=details)
    if isinstance(exc, IntegrityError):
        return Conflict("the change conflicts with stored data (a duplicate id or a missing reference)")
    if isinstance(exc, StarletteHTTPException):
        err = ApiError(_http_message(exc), code=_CODES.get(exc.status_code, "http_error"),
                       headers=dict(exc.headers) if exc.headers else None)
        err.status = exc.status_code
        return err
    err = ApiError("internal error", code="internal_error")
    err.status = 500
    return err


def _http_message(exc: StarletteHTTPException) -> str:
    if exc.status_code == 404:
        return "no such resource or route"
    if exc.status_code == 405:
        return "method not allowed on this route"
    return str(exc.detail)


HtmlRenderer = Callable[[Request, ApiError], Response]


def install_error_handlers(app: FastAPI, html: HtmlRenderer | None = None) -> None:
    """Register one handler for every error kind; `html` renders errors of page requests."""

    async def handle(request: Request, exc: Exception) -> Response:
        err = translate(exc)
        if err.status == 405:
            err.headers = {**(err.headers or {}), "Allow": allowed_methods(request)}
        if err.status >= 500 and not isinstance(exc, ApiError):  # a 503 NotReady is by design
            log.error("unhandled error on %s %s", request.method, request.url.path,
                      exc_info=(type(exc), exc, exc.__traceback__))
        if html is not None and wants_html(request):
            return html(request, err)
        return error_response(err.status, err.code, err.message, err.details, err.headers)

    for kind in (ApiError, MatcherError, RequestValidationError, StarletteHTTPException, IntegrityError,
                 Exception):
        app.add_exception_handler(kind, handle)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> str:
    """Every method of the resource at the request's path, for a 405's `Allow` (Starlette names
    only those of the first route whose path matched, and a resource's GET and its PATCH are
    routes of their own): the methods the router would take there. A path the schema names
    literally (`/api/demands/links`) is that resource alone, as OpenAPI matches concrete paths
    before templated ones (`/api/demands/{demand_id}` would also take it)."""
    app = request.app
    paths = app.openapi().get("paths", {})
    if request.scope["path"] in paths:
        declared = {m.upper() for m in paths[request.scope["path"]]} & set(_METHODS)
        return ", ".join(sorted(declared | ({"HEAD"} if "GET" in declared else set())))
    routed = [m for m in _METHODS
              if any(route.matches({**request.scope, "method": m})[0] == Match.FULL for route in app.router.routes)]
    return ", ".join(sorted(routed))


def wants_html(request: Request) -> bool:
    """Page requests (not /api, not the docs) from a browser get HTML errors."""
    path = request.url.path
    if path.startswith(("/api", "/openapi", "/docs", "/redoc", "/healthz", "/readyz", "/static")):
        return False
    return "text/html" in request.headers.get("accept", "")
