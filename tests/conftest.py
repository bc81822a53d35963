from __future__ import annotations

import os

import dbbackends
import pytest

# Tests never download anything and never touch the user's cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Each test gets its own TECHMATCH_HOME, except real-model tests, which share a session
    folder so the multilingual model is built once."""
    monkeypatch.setenv("TECHMATCH_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def model_home(tmp_path_factory):
    """A TECHMATCH_HOME shared by the slow tests (built models persist across them).

    Set TECHMATCH_TEST_HOME to reuse a folder across runs (CI points it at a cache)."""
    path = os.environ.get("TECHMATCH_TEST_HOME")
    return path or str(tmp_path_factory.mktemp("model-home"))


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases():
    yield
    dbbackends.drop_created()

