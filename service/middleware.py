"""Pure ASGI middleware: one structured log line per request, and a request body size limit."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import HTTPException

from service.errors import error_body

log = logging.getLogger("techmatch.service.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus any `extra` fields."""

    _skip = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._skip and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send techmatch and uvicorn logs to stderr as JSON lines (called by `techmatch serve`)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for name in ("techmatch", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


class RequestLogMiddleware:
    """Logs method, path, status, duration (ms) and the caller's role; never headers or tokens.

    The role is what the auth dependency stored in ``scope["state"]["role"]``."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            state = scope.get("state") or {}
            log.info("request", extra={
                "method": scope["method"], "path": scope["path"], "status": status["code"],
                "ms": round((time.perf_counter() - start) * 1000, 1),
                "role": state.get("role", "anonymous"),
            })


class BodyLimitMiddleware:
    """Answers 413 when a request body exceeds `max_bytes` (by Content-Length or while streaming)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send)
                    return
        seen = {"bytes": 0, "started": False}

        async def limited_receive():
            message = await receive()
            if message["type"] == "http.request":
                seen["bytes"] += len(message.get("body", b""))
                if seen["bytes"] > self.max_bytes:
                    # An HTTPException raised while FastAPI reads the body passes through
                    # its parser unchanged and becomes our standard 413 error body.
                    raise HTTPException(413, detail=self._message())
            return message

        async def tracking_send(message) -> None:
            if message["type"] == "http.response.start":
                seen["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except HTTPException as exc:
            if exc.status_code != 413 or seen["started"]:
                raise
            await self._reject(send)

    def _message(self) -> str:
        return f"the request body is larger than {self.max_bytes / (1024 * 1024):g} MB"

    async def _reject(self, send) -> None:
        body = json.dumps(error_body(413, "payload_too_large", self._message())).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


_PAGE_CSP = (b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
             b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class SecurityHeadersMiddleware:
    """nosniff and no framing everywhere; a strict CSP except on the API docs pages (a response
    that sets its own CSP keeps it)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(("/docs", "/redoc"))
        public = scope["path"].startswith(("/static/", "/docs-assets/"))
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"").lower():
            body = json.dumps(error_body(422, "validation_error", "the URL contains a NUL character (U+0000)")).encode()
            await send({"type": "http.response.start", "status": 422,
                        "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # answers may carry confidential demands or contacts: no browser or proxy keeps them
                if not public and not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"x-frame-options", b"DENY"))
                headers.append((b"referrer-policy", b"same-origin"))
                # a response with its own policy keeps it (generated reports: inline styles, no scripts)
                if not docs and not any(k.lower() == b"content-security-policy" for k, _ in headers):
                    headers.append((b"content-security-policy", _PAGE_CSP))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_wrapper)
