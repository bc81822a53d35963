"""The reliability suite: bad input, API fuzzing, crashes, concurrency and access.

Long soak variants are marked ``@pytest.mark.soak`` and deselected unless asked for:

    python -m pytest tests/reliability -q                 # CI: a few minutes
    python -m pytest tests/reliability -q -m soak         # the soak variants only
    TECHMATCH_SOAK=1 python -m pytest tests/reliability   # everything

Every test writes its figures to ``test-artifacts/reliability/<test>.json``; at the end of a
session that ran any of them, ``summary.json`` adds them up (see docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from matcher.fsutil import atomic_text

HERE = Path(__file__).parent
# Reuse the service tests' tiny corpus, tokens and World (tests/service/service_testkit.py).
for folder in (HERE, HERE.parent / "service"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from dbbackends import db_backend  # noqa: E402,F401 - every test runs on each database
from reliability_kit import ARTIFACTS  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    if _soak_requested(config):
        os.environ["TECHMATCH_RELIABILITY_SOAK"] = "1"  # figures files get a _soak suffix
    config.addinivalue_line(
        "markers", "soak: a long reliability variant, deselected unless -m soak or TECHMATCH_SOAK=1")


def _soak_requested(config: pytest.Config) -> bool:
    expr = (config.getoption("markexpr", "") or "").replace(" ", "")
    return ("soak" in expr and "notsoak" not in expr) or os.environ.get("TECHMATCH_SOAK") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect this folder's soak tests unless they were asked for."""
    if _soak_requested(config):
        return
    keep, drop = [], []
    for item in items:
        in_here = HERE in Path(str(item.fspath)).parents
        (drop if in_here and item.get_closest_marker("soak") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", autouse=True)
def _figures_summary():
    """After a session, add up the latest figures of every test into summary.json (the CI
    variants) and summary_soak.json (the soak variants)."""
    yield
    if not ARTIFACTS.exists():
        return
    for soak in (False, True):
        files = [p for p in sorted(ARTIFACTS.glob("*.json"))
                 if not p.name.startswith("summary") and p.stem.endswith("_soak") == soak]
        if not files:
            continue
        totals = {"inputs_tried": 0, "requests_sent": 0, "kills_survived": 0, "records_lost": 0, "server_errors": 0}
        runs = {}
        for p in files:
            data = json.loads(p.read_text(encoding="utf-8"))
            runs[p.stem] = data.get("finished_utc", "")
            for key in totals:
                totals[key] += int(data.get(key, 0) or 0)
        out = ARTIFACTS / ("summary_soak.json" if soak else "summary.json")
        # Each test worker writes it at its end from every file there: the last one sees them all.
        atomic_text(out, json.dumps({"totals": totals, "tests": runs}, indent=2) + "\n")
