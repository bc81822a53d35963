"""Every command the README shows runs here, in a quick form (issue 13.11).

The command-line block runs end to end on the bundled demo corpus with the fake encoder. Every
benchmark (each README benchmark line and every `benchmarks/bench_*.py`) runs end to end with
`--smoke`: the same code that makes the real table and JSON, on a tiny synthetic corpus with
the fake encoder, in a subprocess (tests never read ../shared). Besides, each must parse its
arguments, every third-party module the benchmarks import must be declared in pyproject.toml
(a dependency or an extra), and the naive stack they compare against must build and answer.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from matcher.cli.commands import main

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def readme_commands(prefix: str) -> list[str]:
    """Command lines starting with `prefix` inside the README's ```bash blocks, comments dropped."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(prefix):
                out.append(" ".join(line.split()))
    return out


# The README's command-line lines, each with the quick form that runs here ({ws}, {tmp} are
# filled in). Every README `techmatch` line must be listed: a new one without a CI run fails.
CLI_RUNS = {
    "techmatch models": "models",
    "techmatch ingest --kind capabilities 成果.xlsx":
        "ingest --kind capabilities corpora/qiqihar/spreadsheets/capabilities.xlsx -w {ws}",
    'techmatch ingest --kind demands demands.csv --map "Problem=text"':
        "ingest --kind demands {tmp}/demands.csv --map Problem=text -w {ws}",
    "techmatch index": "index -w {ws} --model fake",
    "techmatch match D001": "match D001 -w {ws} --model fake",
    "techmatch match \"低温环境下铁路货车车体防腐涂层\" --industry 轨道交通装备":
        "match 低温环境下铁路货车车体防腐涂层 --industry 轨道交通装备 -w {ws} --model fake",
    'techmatch match "rail car coating" --level capability':
        "match 'rail car coating' --level capability -w {ws} --model fake",
    'techmatch search "我们做寒区材料低温性能测试"': "search 我们做寒区材料低温性能测试 -w {ws} --model fake",
    "techmatch search --partner P012 --public-only": "search --partner P012 --public-only -w {ws} --model fake",
    "techmatch rank --demands d.jsonl --capabilities c.jsonl --level partner --k 10 --out run.tsv":
        "rank --demands corpora/qiqihar/demands.jsonl --capabilities corpora/qiqihar/capabilities.jsonl "
        "--level partner --k 10 --out {tmp}/run.tsv --model fake",
    "techmatch evaluate ../shared/data/scifact": "evaluate corpora/qiqihar --model fake",
    "techmatch serve --db tm.db --port 8000": None,  # a server: tests/service/test_service_cli.py starts it
    "techmatch conference --task corpora/qiqihar --out conference/":
        "conference --task corpora/qiqihar --out {tmp}/conference --model fake",
    "techmatch conference --task corpora/qiqihar --out conference/ --capacity 3 --min-per-demand 1 "
    '--max-per-demand 3 --slots "09:00-12:00,14:00-17:00" --tables 20':
        "conference --task corpora/qiqihar --out {tmp}/conference2 --capacity 3 --min-per-demand 1 "
        "--max-per-demand 3 --slots 09:00-12:00,14:00-17:00 --tables 20 --model fake",
    "techmatch landscape --task corpora/qiqihar --out landscape/":
        "landscape --task corpora/qiqihar --out {tmp}/landscape --model fake",
    "techmatch calibrate corpora/qiqihar --out cal.json": "calibrate corpora/qiqihar --out {tmp}/cal.json --model fake",
    "techmatch check-demands corpora/qiqihar": "check-demands corpora/qiqihar --model fake",
    "techmatch db upgrade --db tm.db": "db upgrade --db {tmp}/tm.db",
    # these need a trained model, a Ray cluster or a server: their own tests run them
    "techmatch learn cv --task corpora/qiqihar": None,  # tests/learning/test_learning.py
    "techmatch learn models": None,  # tests/cli/test_cli_learn.py (train, models, rollback)
    "techmatch learn rollback": None,
    "techmatch learn simulate --task corpora/qiqihar --plot curve.png": None,  # tests/cli/test_cli_learn.py
    "techmatch learn train --task corpora/qiqihar": None,  # tests/cli/test_cli_learn.py
    "techmatch learn train --task corpora/qiqihar --evidence": None,  # tests/cli/test_cli_learn.py
    "techmatch rank ... --ray local": None,  # tests/distributed/test_ray.py
    "techmatch serve --db tm.db --workers 4": None,  # tests/service/test_service_workers.py
}


def test_every_readme_command_line_has_a_quick_run():
    assert set(readme_commands("techmatch ")) <= set(CLI_RUNS), set(readme_commands("techmatch ")) - set(CLI_RUNS)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_readme_command_line_runs_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    (tmp_path / "demands.csv").write_text("需求编号,需求名称,Problem,所属行业,所在县区\n"
                                          "D001,货车车体防腐,铁路货车车体在低温下涂层剥落,轨道交通装备,富拉尔基区\n",
                                          encoding="utf-8")
    ws = tmp_path / "ws"
    for readme, run in CLI_RUNS.items():
        if run is None:
            continue
        argv = shlex.split(run.format(ws=ws, tmp=tmp_path))
        code = main(argv)
        out = capsys.readouterr()
        assert code == 0, f"{readme}\n{out.err[-2000:]}"
        assert "<built-in method" not in out.out


def benchmark_scripts() -> list[Path]:
    return sorted((REPO / "benchmarks").glob("bench_*.py"))


def test_every_readme_benchmark_command_is_a_script_that_parses_its_arguments():
    listed = readme_commands("python benchmarks/")
    assert listed, "the README lists the benchmarks"
    for line in listed:
        script = REPO / line.split()[1]
        assert script.is_file(), line
        proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=REPO,
                              timeout=300)
        assert proc.returncode == 0 and "usage" in proc.stdout, f"{line}\n{proc.stderr[-2000:]}"
        assert "--quick" in proc.stdout or script.name in ("bench_quality.py", "bench_encode.py",
                                                           "bench_assign.py"), line
        assert "--smoke" in proc.stdout, line


# The benchmarks that start servers or a Ray cluster (the rest take a few seconds each).
SERVERS = {"bench_online.py", "bench_workers.py", "bench_ray.py"}


def smoke_runs() -> list:
    """Every README benchmark line, then every other bench_*.py, each as argv after the script."""
    runs = {}
    for line in readme_commands("python benchmarks/"):
        parts = shlex.split(line)
        runs.setdefault(" ".join(parts[1:]), parts[1:])
    listed = {argv[0] for argv in runs.values()}
    for script in benchmark_scripts():
        rel = f"benchmarks/{script.name}"
        if rel not in listed:
            runs[rel] = [rel]
    return [pytest.param(argv, id=key, marks=[pytest.mark.e2e] if Path(argv[0]).name in SERVERS else [])
            for key, argv in runs.items()]


TABLE_ROW = re.compile(r"^[ \t]*\S[^\n]*?(?:[ \t]{2,}|[ \t]\|[ \t])\S", re.M)  # two or more aligned columns


def test_every_benchmark_has_a_smoke_run():
    covered = {argv[0] for p in smoke_runs() for argv in p.values[:1]}
    assert covered == {f"benchmarks/{s.name}" for s in benchmark_scripts()}


@pytest.mark.parametrize("argv", smoke_runs())
def test_the_benchmark_runs_end_to_end_in_smoke_form(argv, tmp_path):
    """Issue 13.11: the README's benchmark commands failed on a fresh set-up; `--smoke` runs each
    one's real code path (corpus, engine or server, table, JSON) on synthetic data in seconds."""
    results = REPO / "benchmarks" / "results"
    before = {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")}
    out = tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "TECHMATCH_HOME": str(tmp_path / "home"),
           "TECHMATCH_SHARED_DATA": str(tmp_path / "no-shared-data")}
    proc = subprocess.run([sys.executable, *argv, "--smoke", "--out", str(out)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)
    shown = f"{' '.join(argv)} --smoke\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, shown
    if "skipped: Ray is not installed" in proc.stdout:
        pytest.importorskip("ray")  # then it is a failure: Ray is installed
    assert "SMOKE RUN" in proc.stdout and "its numbers mean nothing" in proc.stdout, shown
    table = proc.stdout.split("[SMOKE RUN: numbers mean nothing]", 1)
    assert len(table) == 2, f"no table marked as a smoke run\n{shown}"
    assert len(TABLE_ROW.findall(table[1])) >= 3, f"no table after the smoke mark\n{shown}"
    report = json.loads(out.read_text(encoding="utf-8"))
    assert "numbers mean nothing" in report["smoke"], report
    probe = report["machine"]["probe_start"]  # every result says how fast the shared machine was
    assert probe["python_ms"] > 0 and probe["scan_ms"] > 0, report["machine"]
    assert {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")} == before, "a smoke run wrote results/"


def _declared() -> set[str]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    # a benchmark's import may come from any extra that says what it is for (bench, ray, onnx ...)
    reqs = list(meta["dependencies"]) + [r for extra in meta["optional-dependencies"].values() for r in extra]
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def test_every_module_the_benchmarks_import_is_declared():
    """Regression (issue 13.11): bench_online stopped with `No module named 'rank_bm25'`."""
    local = {p.stem for p in (REPO / "benchmarks").glob("*.py")} | {"matcher", "service", "corpora"}
    dists = importlib.metadata.packages_distributions()
    declared = _declared()
    missing = {}
    for script in (REPO / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for name in names:
                top = name.split(".")[0]
                if top in local or top in sys.stdlib_module_names or top == "__future__":
                    continue
                providers = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
                if not providers & _transitive(declared):
                    missing.setdefault(top, []).append(script.name)
    assert missing == {}


def _transitive(names: set[str]) -> set[str]:
    """Declared distributions and what they require (sentence-transformers brings transformers ...)."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [re.split(r"[<>=!~\[ ;(]", r, maxsplit=1)[0].lower().replace("_", "-")
                 for r in requires if "extra ==" not in r]
    return seen


def test_the_naive_stack_builds_and_answers():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from naive import NaiveStack
    finally:
        sys.path.remove(str(REPO / "benchmarks"))

    class Model:
        max_seq_length = 256

        def encode(self, texts, **_):
            return np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(texts), 1))

    docs = ["low temperature coating for rail cars", "dairy cold chain", "corn fermentation"]
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    stack = NaiveStack(Model(), docs, ["p1", "p2", "p3"], emb)
    assert stack.match_partners("rail coating", k=2)[0][0] == "p1"
