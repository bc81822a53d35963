"""The layout rules: the engine never imports the web stack; the service never imports the
model or index libraries directly (it goes through the engine)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES = {
    "matcher": {"fastapi", "starlette", "uvicorn", "service"},
    "service": {"torch", "faiss", "sentence_transformers", "transformers"},
}
# The command line is the one place that offers `techmatch serve`: it registers the service's
# subcommand (service.cli imports the web stack only when the command runs).
ALLOWED = {"matcher/cli.py": {"service"}}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(RULES))
def test_forbidden_imports(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            imported_modules(path) & RULES[package] - ALLOWED.get(str(path.relative_to(ROOT)), set())
        )
        for path in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
