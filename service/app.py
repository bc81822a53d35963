"""The app factory. Nothing is created at import time: call `create_app(settings)`.

    uvicorn --factory service.app:create_app        # settings from TECHMATCH_* variables
    create_app(Settings(db_url=...), encoder=FakeEncoder())   # tests

Start-up (in the lifespan, off the event loop): create the tables, load the demo corpus and
tokens in demo mode, open the encoder, then load or rebuild the live index.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import IntegrityError
from threadpoolctl import threadpool_limits

from service.deps import Context, declared_query_table, known_query_parameters
from service.errors import install_error_handlers
from service.jobs import learning as learning_jobs
from service.jobs.conference import ConferenceJobs
from service.jobs.landscape import LandscapeCache
from service.jobs.live import LiveIndex, limit_malloc_arenas, open_service_encoder
from service.middleware import BodyLimitMiddleware, RequestLogMiddleware, SecurityHeadersMiddleware
from service.routers import (
    capabilities,
    conference,
    demands,
    directory,
    feedback,
    filing,
    health,
    imports,
    landscape,
    matching,
    pages,
    partners,
    review,
    tokens,
)
from service.routers import learning as learning_routes
from service.settings import Settings
from service.storage.db import init_db, make_engine
from service.storage.impressions import ImpressionLog
from service.views.render import LoginRequired, login_redirect, make_templates, render_error

log = logging.getLogger("techmatch.service")
VERSION = "0.1.0"
DESCRIPTION = """Technology demand-supply matchmaking for a city science and technology bureau.

Authenticate with `Authorization: Bearer <token>` (or `X-API-Key: <token>`). Roles: admin,
staff (bureau), institute (bound to a partner), enterprise (bound to its demands). Every 4xx
answer has the body `{"error": {"status", "code", "message", "details"}}`."""


def create_worker_app() -> FastAPI:
    """The app of one worker process of `techmatch serve --workers N` (settings from the
    environment, which `service.cli` sets)."""
    from service.middleware import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def create_app(settings: Settings | None = None, *, encoder=None) -> FastAPI:
    """Build the service. `encoder` overrides `settings.model` (tests pass a FakeEncoder)."""
    settings = settings or Settings()
    limit_malloc_arenas()  # before the request threads exist
    db = make_engine(settings.db_url)
    live = LiveIndex(db, encoder, settings.index_dir(), index=settings.index,
                     answer_cache_bytes=int(settings.answer_cache_mb * 2**20))
    jobs = ConferenceJobs(db, live, settings.jobs_dir(), max_k=settings.max_k)
    impressions = ImpressionLog(db, flush_seconds=settings.impression_flush_seconds,
                                retention_days=settings.impression_retention_days)
    jobs.impressions = impressions
    ctx = Context(settings=settings, db=db, live=live, jobs=jobs, landscape=LandscapeCache(live),
                  impressions=impressions)

    def startup() -> None:
        init_db(db)
        if settings.demo:
            from service.demo import ensure_demo_tokens, load_demo_corpus

            # several workers may start on one empty database at once: the loser of a race
            # finds the winner's rows on its second try
            for attempt in range(3):
                try:
                    load_demo_corpus(db)
                    demo_tokens = ensure_demo_tokens(db)
                    break
                except IntegrityError:
                    if attempt == 2:
                        raise
                    time.sleep(0.2 * (attempt + 1))
            for tok in demo_tokens:  # the secrets are printed by `techmatch serve`, not logged
                log.warning("demo token ready (see docs/service.md)", extra={"role": tok.role,
                                                                             "binding": tok.binding})
        jobs.recover()  # jobs a stopped process left queued or running become "interrupted"
        jobs.start()
        impressions.start()

    def build_index() -> None:
        """In the background: the API answers (/healthz, lists) while the model loads and the
        index is built; matching answers 503 and /readyz says why until it is done."""
        try:
            declared_query_table(app)  # not at the first request with a query, on the event loop
            if live.encoder is None:
                live.encoder = open_service_encoder(settings)
            if hasattr(live.encoder, "load"):
                live.encoder.load()  # free text needs the model: a broken one fails the start, not a request
            how = live.start()
            try:
                version = learning_jobs.load_deployed(db, live, settings.rankers_dir())
                log.info("ranker", extra={"version": version})
            except Exception:  # a damaged model folder leaves the default order live, loudly
                log.exception("the deployed ranker could not be loaded; the default order is live")
            log.info("ready", extra={"index": how, "revision": live.revision, "model": live.encoder.name})
        except Exception as exc:
            live.error = live.error or f"{type(exc).__name__}: {exc}"
            live.start_failed()
            log.exception("the index could not be built")

    def shutdown() -> None:
        try:
            jobs.stop()  # a running job ends after its current chunk, "interrupted" (resumable)
            ctx.landscape.stop()
            impressions.close()  # the last buffered lists are written
            live.save()
        finally:
            db.dispose()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        blas = threadpool_limits(limits=settings.blas_threads, user_api="blas") if settings.blas_threads else None
        try:
            await run_in_threadpool(startup)
            builder = threading.Thread(target=build_index, name="techmatch-index", daemon=True)
            builder.start()
            yield
            await run_in_threadpool(builder.join)  # a build in progress finishes before the final save
            await run_in_threadpool(shutdown)
        finally:
            if blas is not None:
                blas.restore_original_limits()

    app = FastAPI(title="techmatch", version=VERSION, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, dependencies=[Depends(known_query_parameters)])
    app.state.ctx = ctx
    app.state.templates = make_templates()
    install_error_handlers(app, html=render_error)
    app.add_exception_handler(LoginRequired, lambda request, exc: login_redirect(request))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestLogMiddleware)
    for module in (health, demands, matching, capabilities, partners, feedback, imports, tokens, conference,
                   landscape, filing, review, directory, learning_routes, pages):  # filing before demands/{id}
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    _declare_error_responses(app, settings)
    _add_docs(app)
    return app


_ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["status", "code", "message", "details"],
    "properties": {"status": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"},
                   "details": {"type": "array", "items": {}}}}}}
_ERRORS = {400: "bad request", 401: "a valid token is required", 403: "not allowed for this role",
           404: "no such record (or not visible to the caller)", 405: "method not allowed",
           409: "conflict with the stored state", 413: "request body too large", 415: "unsupported media type",
           422: "invalid input", 500: "server error (never expected: please report)",
           503: "not ready (the index is being built) or busy"}


def _declare_error_responses(app: FastAPI, settings: Settings) -> None:
    """Every error answer in the OpenAPI schema (the shared error body), so clients and schema
    checks know them: the routers declare only their successes. Limits this server's settings
    set are stated too (a conference job's `k` is at most `max_k`)."""
    make_schema = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = make_schema()
            job = schema.get("components", {}).get("schemas", {}).get("ConferenceJobCreate")
            if job is not None:
                job["properties"]["k"]["maximum"] = settings.max_k
            for operations in schema.get("paths", {}).values():
                for op in operations.values():
                    for param in op.get("parameters", []):
                        _not_nullable(param)
            for operations in schema.get("paths", {}).values():
                for op in operations.values():
                    responses = op.setdefault("responses", {})
                    for code, text in _ERRORS.items():
                        responses.setdefault(str(code), {
                            "description": text, "content": {"application/json": {"schema": _ERROR_SCHEMA}}})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def _not_nullable(param: dict) -> None:
    """A query parameter is absent or has a value: `null` is no value a query string can carry,
    so `anyOf: [X, {type: null}]` (Python's `X | None = None`) is stated as X, not required."""
    schema = param.get("schema", {})
    options = schema.get("anyOf")
    if param.get("in") == "query" and options and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del schema["anyOf"]
        schema.update(rest[0] if len(rest) == 1 else {"anyOf": rest})


def _add_docs(app: FastAPI) -> None:
    """Swagger UI at /docs and ReDoc at /redoc, served from local files when the
    `fastapi-offline` package is installed (no CDN), else from FastAPI's default CDN."""
    assets = None
    try:
        import fastapi_offline

        folder = Path(fastapi_offline.__file__).parent / "static"
        if (folder / "swagger-ui-bundle.js").exists():
            assets = folder
    except ImportError:
        pass
    if assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")
    swagger = {"swagger_js_url": "/docs-assets/swagger-ui-bundle.js",
               "swagger_css_url": "/docs-assets/swagger-ui.css",
               "swagger_favicon_url": "/docs-assets/favicon.png"} if assets else {}
    redoc = {"redoc_js_url": "/docs-assets/redoc.standalone.js", "redoc_favicon_url": "/docs-assets/favicon.png",
             "with_google_fonts": False} if assets else {}

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="techmatch API", **swagger)

    @app.get("/redoc", include_in_schema=False)
    def redoc_ui(request: Request) -> Response:
        return get_redoc_html(openapi_url="/openapi.json", title="techmatch API", **redoc)
