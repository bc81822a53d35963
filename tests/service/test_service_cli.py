"""Settings from the environment, the `serve` command line, demo loading, import hygiene."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from service_testkit import REPO

from service.settings import DEFAULT_DB_URL, Settings, db_url_from_arg, sqlite_path


def test_settings_come_from_techmatch_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("TECHMATCH_DB_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("TECHMATCH_ADMIN_TOKEN", "s3cret")
    monkeypatch.setenv("TECHMATCH_MAX_UPLOAD_MB", "2.5")
    monkeypatch.setenv("TECHMATCH_DEMO", "true")
    monkeypatch.setenv("TECHMATCH_WORKSPACE", "ignored")  # the CLI's variable, not a setting
    s = Settings()
    assert s.db_url == f"sqlite:///{tmp_path}/x.db" and s.demo is True
    assert s.admin_token.get_secret_value() == "s3cret" and "s3cret" not in repr(s)
    assert s.max_body_bytes == int(2.5 * 1024 * 1024)
    assert s.index_dir() == tmp_path / "x-index"
    assert Settings(data_dir=tmp_path / "d").index_dir() == tmp_path / "d" / "index"


def test_database_arguments(tmp_path):
    assert db_url_from_arg("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert db_url_from_arg(str(tmp_path / "a.db")) == f"sqlite:///{tmp_path / 'a.db'}"
    assert sqlite_path(DEFAULT_DB_URL) == Path("./techmatch-data/techmatch.db")
    assert sqlite_path("sqlite:///:memory:") is None and sqlite_path("postgresql://h/db") is None


def test_serve_is_a_techmatch_command():
    from matcher.cli.commands import build_parser

    args = build_parser().parse_args(["serve", "--port", "9000", "--db", "x.db", "--model", "fake", "--demo"])
    assert (args.host, args.port, args.db, args.model, args.demo) == ("127.0.0.1", 9000, "x.db", "fake", True)
    assert args.func.__module__ == "service.cli"


def test_importing_the_service_loads_neither_torch_nor_faiss():
    code = ("import sys, service.app, service.cli, service.routers.pages; "
            "print(sorted(m for m in ('torch', 'faiss', 'sentence_transformers', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_demo_mode_loads_the_corpus_once_and_makes_tokens(make_world):
    world = make_world(seeded=False, demo=True)
    c = world.client
    ready = c.get("/readyz").json()
    assert ready["demands"] > 0 and ready["capabilities"] > 0
    for role in ("admin", "staff", "institute", "enterprise"):
        assert c.get("/api/me", headers={"Authorization": f"Bearer demo-{role}"}).json()["role"] == role
    me = c.get("/api/me", headers={"Authorization": "Bearer demo-institute"}).json()
    assert me["partner_id"]
    from service.demo import ensure_demo_tokens, load_demo_corpus

    assert load_demo_corpus(world.ctx.db) is False  # not empty any more: nothing reloaded
    assert len(ensure_demo_tokens(world.ctx.db)) == 4


@pytest.mark.slow
def test_service_with_the_real_multilingual_model(make_world, model_home, monkeypatch, tmp_path):
    monkeypatch.setenv("TECHMATCH_HOME", model_home)  # the built model and embedding cache, shared
    from service_testkit import make_settings, running, seed

    from service.app import create_app

    settings = make_settings(tmp_path, model="e5-multilingual-small")  # a new database every run
    with running(create_app(settings), timeout=300) as client:
        tokens = seed(client)
        staff = {"Authorization": f"Bearer {tokens['staff']}"}
        assert client.get("/readyz").json()["model"] == "e5-multilingual-small"
        top = client.get("/api/demands/D3/matches?k=1", headers=staff).json()["results"][0]
        assert top["partner_id"] == "P2"
        english = client.post("/api/match", json={"text": "anti-corrosion coating for rail freight cars at -40 °C"},
                              headers=staff).json()["results"][0]
        assert english["partner_id"] == "P1"
