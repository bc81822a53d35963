"""One local Ray cluster (2 CPUs) for the whole test run, started by the first test that asks
for it and shut down at the end. Tests without Ray installed are skipped."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'techmatch[ray]')")
    os.environ.setdefault("RAY_ACCEPT_LOCAL_MODE_RISK", "1")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    yield ray
    ray.shutdown()
