"""Without Ray installed nothing changes, and --ray says what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

from corpora import demo_corpus_path
from matcher.cli.commands import main


@pytest.fixture
def no_ray(monkeypatch):
    """Every `import ray...` fails as if the package were absent."""
    for name in list(sys.modules):
        if name == "ray" or name.startswith("ray."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)


def _rank_args(tmp_path):
    task = demo_corpus_path()
    return [
        "rank",
        "--demands",
        str(task / "demands.jsonl"),
        "--capabilities",
        str(task / "capabilities.jsonl"),
        "--model",
        "fake",
        "--k",
        "3",
        "--out",
        str(tmp_path / "run.tsv"),
    ]


@pytest.mark.parametrize("command", ["rank", "index", "landscape", "conference"])
def test_ray_option_without_ray_names_the_extra(no_ray, tmp_path, capsys, command):
    task = str(demo_corpus_path())
    args = {
        "rank": _rank_args(tmp_path),
        "index": ["index", "--workspace", str(tmp_path / "ws"), "--model", "fake"],
        "landscape": ["landscape", "--task", task, "--model", "fake", "--out", str(tmp_path / "l")],
        "conference": ["conference", "--task", task, "--model", "fake", "--out", str(tmp_path / "c")],
    }[command]
    assert main([*args, "--ray", "local"]) == 2
    err = capsys.readouterr().err
    assert "install techmatch[ray] to use --ray" in err
    assert not (tmp_path / "run.tsv").exists()


def test_plain_run_needs_no_ray(no_ray, tmp_path):
    assert main(_rank_args(tmp_path)) == 0
    header = "demand_id\ttarget_id\tscore\tfit\tlabel\trank\n"
    assert (tmp_path / "run.tsv").read_text(encoding="utf-8").startswith(header)


def test_bad_address_is_refused_before_any_work(tmp_path, capsys):
    pytest.importorskip("ray")
    assert main([*_rank_args(tmp_path), "--ray", "http://head:8265"]) == 2
    assert "--ray expects 'local', 'auto' or 'ray://host:port'" in capsys.readouterr().err


def test_importing_the_engine_and_the_cli_does_not_import_ray():
    code = (
        "import sys, matcher.distributed, matcher.cli.commands, matcher.batch\n"
        "from matcher.cli.commands import build_parser; build_parser()\n"
        "assert not any(m == 'ray' or m.startswith('ray.') for m in sys.modules), 'ray imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
