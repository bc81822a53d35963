from __future__ import annotations

import functools
import os
from pathlib import Path

import dbbackends
import pytest

# Tests never download anything and never touch the user's cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


# -- test workers (`bash run.sh test` runs pytest-xdist) -------------------------------------
TESTS = Path(__file__).parent


@functools.cache
def shared_groups() -> dict[str, str]:
    """Test files that share a session-wide thing, by path from the repository: real-model
    tests build models in `model_home` (files that name it), Ray tests start one local cluster.
    Each group runs on one worker, one test after another."""
    groups = {}
    for path in sorted(TESTS.rglob("test_*.py")):
        rel = path.relative_to(TESTS.parent).as_posix()
        if "distributed" in path.relative_to(TESTS).parts:
            groups[rel] = "ray"
        elif "model_home" in path.read_text(encoding="utf-8"):
            groups[rel] = "models"
    return groups


def shared_group(nodeid: str) -> str | None:
    if "bench_ray" in nodeid:  # the benchmark's smoke run starts a cluster of its own
        return "ray"
    return shared_groups().get(nodeid.split("::", 1)[0])


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, absent with -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    """Tests spread over the workers one by one, except each shared group, which goes whole to
    one worker (xdist's own --dist loadgroup reads marks through a node attribute pytest 9 no
    longer has)."""
    from xdist.scheduler import LoadScopeScheduling

    class SharedGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return shared_group(nodeid) or nodeid

    return SharedGroups(config, log)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The shared groups first, the longest (models) at the head: a worker starts on it while
    the others share the rest, instead of it running alone at the end."""
    rank = {"models": 0, "ray": 1}
    items.sort(key=lambda item: rank.get(shared_group(item.nodeid), 2))


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

