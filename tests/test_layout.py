"""The layout rules.

The engine never imports the web stack; the service never imports the model or index libraries
directly (it goes through the engine). Inside each package, imports point one way: every module
belongs to a layer (a subpackage or a top-level module), a layer imports only from layers listed
before it, and two layers of the same rank never import each other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES = {
    "matcher": {"fastapi", "starlette", "uvicorn", "service"},
    "service": {"torch", "faiss", "sentence_transformers", "transformers"},
}
# The command line is the one place that offers `techmatch serve`: it registers the service's
# subcommand (service.cli imports the web stack only when the command runs).
ALLOWED = {"matcher/cli/commands.py": {"service"}}

# Ranks: a layer may import from layers of a lower rank only (and from itself).
LAYERS = {
    "matcher": {
        "matcher.errors": 0, "matcher.fsutil": 0, "matcher.sheets": 0,
        "matcher.settings": 1, "matcher.records": 1, "matcher.taxonomy": 1, "matcher.dates": 1,
        "matcher.filling": 1,
        "matcher.io": 2, "matcher.retrieval": 2,
        "matcher.conference": 3, "matcher.landscape": 3, "matcher.learning": 3,
        "matcher.evaluate": 4, "matcher.batch": 4, "matcher.workspace": 4, "matcher.calibrate": 4,
        "matcher.distributed": 4,
        "matcher.filling_eval": 5,
        "matcher.cli": 6,
    },
    "service": {
        "service.settings": 0, "service.schemas": 0, "service.views.i18n_planning": 0,
        "service.errors": 1, "service.storage": 1,
        "service.middleware": 2, "service.views": 2, "service.auth": 2,
        "service.jobs": 3,
        "service.deps": 4, "service.matching": 5, "service.review": 5, "service.importer": 5, "service.demo": 5,
        "service.pipeline_sheet": 5,
        "service.routers": 6, "service.app": 7, "service.cli": 8,
    },
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[str]:
    """Absolute names of every module `path` imports (lazy imports inside functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
    return names


def layer_of(module: str, package: str) -> str | None:
    """The longest layer name that `module` is or lies inside."""
    best = None
    for layer in LAYERS[package]:
        if (module == layer or module.startswith(layer + ".")) and (best is None or len(layer) > len(best)):
            best = layer
    return best


@pytest.mark.parametrize("package", sorted(RULES))
def test_forbidden_imports(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            {n.split(".")[0] for n in imports_of(path)} & RULES[package]
            - ALLOWED.get(str(path.relative_to(ROOT)), set())
        )
        for path in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_every_module_has_a_layer(package):
    missing = [module_name(p) for p in (ROOT / package).rglob("*.py")
               if p.name != "__init__.py" or p.parent != ROOT / package
               if layer_of(module_name(p), package) is None]
    assert missing == []


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_imports_point_one_way(package):
    ranks = LAYERS[package]
    wrong = []
    for path in (ROOT / package).rglob("*.py"):
        if path == ROOT / package / "__init__.py":
            continue
        mine = layer_of(module_name(path), package)
        for name in imports_of(path):
            theirs = layer_of(name, package)
            if theirs is None or theirs == mine:
                continue
            if ranks[theirs] >= ranks[mine]:
                wrong.append(f"{module_name(path)} ({mine}, rank {ranks[mine]}) imports {name} "
                             f"({theirs}, rank {ranks[theirs]})")
    assert sorted(set(wrong)) == []


def module_graph(package: str) -> dict[str, set[str]]:
    modules = {module_name(p): p for p in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for imported in imports_of(path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and imported != package:
                deps.add(imported)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_no_import_cycle_between_modules(package):
    """Packages' own __init__ re-exports are edges too: a cycle through them is still a cycle."""
    assert find_cycle(module_graph(package)) == []


def test_the_checks_catch_a_cycle_and_a_wrong_direction():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []
    assert layer_of("matcher.retrieval.engine", "matcher") == "matcher.retrieval"
    assert layer_of("service.views.i18n_planning", "service") == "service.views.i18n_planning"


@pytest.mark.parametrize("package", ["matcher", "matcher.io", "matcher.retrieval", "matcher.conference",
                                     "matcher.landscape", "matcher.cli", "matcher.evaluate", "matcher.batch",
                                     "matcher.distributed"])
def test_importing_the_engine_loads_no_heavy_library(package):
    heavy = ("torch", "faiss", "fastapi", "sentence_transformers", "ray")
    code = f"import sys, {package}; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("folder", ["matcher", "service"])
def test_every_subpackage_says_what_it_owns(folder):
    for init in (ROOT / folder).rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert len(doc) > 80, f"{init.relative_to(ROOT)} needs a docstring saying what it owns"
        if init.parent != ROOT / folder and init.parent.name != "routers":
            assert "May import" in doc, f"{init.relative_to(ROOT)}: say what it may import"
