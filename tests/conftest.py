from __future__ import annotations

import os

import dbbackends
import pytest

# Tests never download anything and never touch the user's cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With several test workers (`bash run.sh test`: pytest-xdist, --dist loadgroup), the tests
    that share a session-wide thing run on one worker, one after another: real-model tests the
    models they build in `model_home`, Ray tests one local cluster (and no second one beside it)."""
    for item in items:
        if "model_home" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("models"))
        elif "distributed" in item.path.parts or "bench_ray" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("ray"))


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

