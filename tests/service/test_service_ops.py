"""Operations: error bodies for every 4xx, health and readiness, logs, docs, limits, start-up."""

from __future__ import annotations

import json
import logging

import pytest
from service_testkit import running

from matcher.retrieval.encoders import FakeEncoder
from service.middleware import JsonFormatter


def _error(r) -> dict:
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message", "details"}
    assert body["error"]["status"] == r.status_code and body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize("method, path, code", [
    ("GET", "/api/no-such-thing", "not_found"),
    ("GET", "/nowhere", "not_found"),
    ("DELETE", "/api/match", "method_not_allowed"),
    ("PUT", "/api/demands/D1", "method_not_allowed"),
])
def test_unknown_routes_and_methods_have_the_error_body(world, method, path, code):
    r = world.client.request(method, path, headers=world.h("staff"))
    assert _error(r)["code"] == code


def test_every_4xx_kind_has_the_error_body(world):
    c = world.client
    assert _error(c.get("/api/demands"))["code"] == "unauthenticated"
    assert _error(c.get("/api/tokens", headers=world.h("staff")))["code"] == "forbidden"
    assert _error(c.get("/api/demands/D404", headers=world.h("staff")))["code"] == "not_found"
    assert _error(c.post("/api/partners", json={"id": "P1", "name": "x"}, headers=world.h("staff")))["code"] == \
        "conflict"
    err = _error(c.get("/api/demands?limit=abc", headers=world.h("staff")))
    assert err["code"] == "validation_error" and err["details"][0]["loc"] == ["query", "limit"]
    err = _error(c.post("/api/match", content=b"{not json", headers={**world.h("staff"),
                                                                      "Content-Type": "application/json"}))
    assert err["code"] == "validation_error"


def test_bodies_over_the_limit_get_413_also_when_streamed(make_world):
    world = make_world(max_upload_mb=0.001)  # about 1 KB
    big = json.dumps({"text": "低温" * 2000}).encode()
    r = world.client.post("/api/match", content=big, headers={**world.h("staff"), "Content-Type": "application/json"})
    assert r.status_code == 413 and _error(r)["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the limit applies while reading
        for i in range(0, len(big), 256):
            yield big[i:i + 256]

    r = world.client.post("/api/match", content=chunks(), headers={**world.h("staff"),
                                                                   "Content-Type": "application/json"})
    assert r.status_code == 413 and _error(r)["code"] == "payload_too_large"
    ok = world.client.post("/api/match", json={"text": "低温"}, headers=world.h("staff"))
    assert ok.status_code == 200


def test_health_and_readiness(world):
    assert world.client.get("/healthz").json() == {"status": "ok"}
    ready = world.client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["revision"] == ready["index_revision"] > 0
    assert ready["demands"] == 4 and ready["capabilities"] == 4 and ready["partners"] == 2
    assert ready["model"] == "fake"


def test_requests_are_logged_as_one_json_line_without_tokens(world, caplog):
    caplog.set_level(logging.INFO, logger="techmatch.service.access")
    world.client.get("/api/demands?q=涂层", headers=world.h("staff"))
    world.client.get("/api/demands")
    records = [r for r in caplog.records if r.name == "techmatch.service.access"]
    assert len(records) == 2
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["method"] == "GET" and line["path"] == "/api/demands" and line["status"] == 200
    assert line["role"] == "staff" and line["ms"] >= 0 and line["msg"] == "request"
    assert json.loads(JsonFormatter().format(records[1]))["role"] == "anonymous"
    text = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert not any(tok and tok in text for tok in world.tokens.values())


def test_openapi_and_offline_docs(world):
    spec = world.client.get("/openapi.json").json()
    assert "/api/demands/{demand_id}/matches" in spec["paths"]
    assert "/login" not in spec["paths"]  # pages are not part of the API
    docs = world.client.get("/docs").text
    assert "swagger-ui-bundle.js" in docs
    pytest.importorskip("fastapi_offline")  # its bundled assets let /docs work without internet
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn.jsdelivr" not in docs
    assert world.client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_pages_get_security_headers(world):
    r = world.client.get("/login")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "content-security-policy" not in world.client.get("/docs").headers


def test_startup_reuses_a_current_index_and_rebuilds_a_stale_one(make_world):

    from service.app import create_app

    world = make_world()
    settings = world.settings
    world.ctx.live.save()  # as at shutdown: the index is saved with its revision
    encoder = FakeEncoder()
    with running(create_app(settings, encoder=encoder)) as client:
        assert encoder.calls == 0  # loaded, nothing re-encoded
        assert client.get("/readyz").json()["status"] == "ready"
        r = client.post("/api/match", json={"text": "低温涂层"}, headers=world.h("staff"))
        assert r.json()["results"][0]["partner_id"] == "P1"
    stamp = settings.index_dir() / "revision.json"
    stamp.write_text(json.dumps({"revision": -5, "encoder": "fake"}))  # stale
    encoder = FakeEncoder()
    with running(create_app(settings, encoder=encoder)) as client:
        assert encoder.texts_encoded >= 8  # rebuilt from the database
        assert client.get("/readyz").status_code == 200
    (settings.index_dir() / "engine" / "engine.json").write_text("{broken")  # damaged: rebuilt too
    with running(create_app(settings, encoder=FakeEncoder())) as client:
        assert client.get("/readyz").status_code == 200


def test_a_saved_index_ahead_of_the_database_is_rebuilt_and_replaced(make_world):
    """A stamp from the future (the database restored from a backup, or the stamp damaged): the
    start rebuilds from the database and its save replaces the stale one (it was kept, found by
    the reliability soak: every start rebuilt, and the stale save would load once the database
    reached its revision again)."""
    from service.app import create_app

    world = make_world()
    settings = world.settings
    world.ctx.live.save()
    stamp_path = settings.index_dir() / "revision.json"
    stamp = json.loads(stamp_path.read_text())
    stamp_path.write_text(json.dumps({**stamp, "revision": stamp["revision"] + 1000}))
    encoder = FakeEncoder()
    with running(create_app(settings, encoder=encoder)) as client:
        assert encoder.texts_encoded >= 8  # rebuilt from the database
        ready = client.get("/readyz").json()
        assert ready["revision"] == ready["index_revision"] == stamp["revision"]
    assert json.loads(stamp_path.read_text())["revision"] == stamp["revision"]
    encoder = FakeEncoder()
    with running(create_app(settings, encoder=encoder)) as client:
        assert encoder.calls == 0  # the replaced save loads
        assert client.get("/readyz").json()["status"] == "ready"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(world):
    if world.ctx.db.dialect.name != "sqlite":
        pytest.skip("SQLite's pragmas; PostgreSQL enforces foreign keys itself")
    with world.ctx.db.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_schema_compiles_for_postgresql():
    from sqlalchemy import create_mock_engine
    from sqlalchemy.schema import CreateTable

    from service.storage.db import metadata

    engine = create_mock_engine("postgresql+psycopg2://", lambda *a, **k: None)
    ddl = "\n".join(str(CreateTable(t).compile(dialect=engine.dialect)) for t in metadata.sorted_tables)
    assert "CREATE TABLE demands" in ddl and "JSON" in ddl and "BOOLEAN" in ddl


def test_the_api_answers_while_the_index_builds_and_says_why_it_is_not_ready(make_world):
    import threading

    from fastapi.testclient import TestClient

    from service.app import create_app

    gate = threading.Event()

    class SlowEncoder(FakeEncoder):
        def embed_batch(self, texts):
            gate.wait(30)
            return super().embed_batch(texts)

    world = make_world()
    settings = world.settings
    (settings.index_dir() / "revision.json").unlink(missing_ok=True)  # force a rebuild
    with TestClient(create_app(settings, encoder=SlowEncoder())) as client:
        assert client.get("/healthz").status_code == 200
        r = client.get("/readyz")
        assert r.status_code == 503 and "loading" in _error(r)["message"]
        assert client.get("/api/demands", headers=world.h("staff")).json()["total"] == 4
        r = client.post("/api/match", json={"text": "低温"}, headers=world.h("staff"))
        assert r.status_code == 503 and _error(r)["code"] == "not_ready"
        gate.set()
        assert client.app.state.ctx.live.wait_ready(30)
        assert client.get("/readyz").status_code == 200


def test_a_model_that_cannot_load_is_reported(make_world):
    from fastapi.testclient import TestClient

    from service.app import create_app

    world = make_world()
    with TestClient(create_app(world.settings.model_copy(update={"model": "no-such-model"}))) as client:
        assert not client.app.state.ctx.live.wait_ready(30)
        r = client.get("/readyz")
        assert r.status_code == 503 and "no-such-model" in _error(r)["message"]


@pytest.mark.parametrize("threads", [1, 0])
def test_the_service_runs_blas_on_one_thread_and_puts_it_back(tmp_path, threads):
    """Set in the main thread, as uvicorn runs the lifespan (OpenBLAS ignores the setting from
    other threads); 0 leaves the library's default."""
    import asyncio

    from service_testkit import make_settings
    from threadpoolctl import ThreadpoolController

    from service.app import create_app

    def blas() -> set[int]:
        return {i["num_threads"] for i in ThreadpoolController().info() if i["user_api"] == "blas"}

    before = blas()
    app = create_app(make_settings(tmp_path, blas_threads=threads), encoder=FakeEncoder())
    seen = []

    async def serve_once():
        async with app.router.lifespan_context(app):
            seen.append(blas())

    asyncio.run(serve_once())
    assert seen == [{1} if threads else before]
    assert blas() == before


@pytest.mark.slow
def test_the_service_encodes_in_batches_of_its_own_setting(tmp_path, monkeypatch):
    """A service process encodes (a start's missing vectors, a write's records) in batches of
    TECHMATCH_ENCODE_BATCH texts, 16 unless set: a batch's activations are its largest
    transient. Opening the real MiniLM folder reads no weights."""
    from service.jobs.live import open_service_encoder
    from service.settings import Settings

    monkeypatch.setenv("TECHMATCH_HOME", str(tmp_path / "home"))
    assert Settings().encode_batch == 16
    monkeypatch.setenv("TECHMATCH_ENCODE_BATCH", "8")
    encoder = open_service_encoder(Settings(model="minilm"))
    assert encoder.inner.batch_size == 8 and encoder.inner._model is None
    monkeypatch.setenv("TECHMATCH_ENCODE_BATCH", "0")
    with pytest.raises(ValueError, match="encode_batch"):
        Settings()
