"""`techmatch learn`: train from judgements with the gate, list models, roll back; `techmatch match`
follows whatever is deployed (fake encoder, bundled demo corpus)."""

from __future__ import annotations

import json

import pytest

from corpora import demo_corpus_path
from matcher.cli.commands import main
from matcher.learning.features import BASE_FEATURES, FEATURES
from matcher.learning.registry import ModelRegistry


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    corpus = demo_corpus_path()
    assert main(["ingest", "-w", str(ws), "--kind", "capabilities", str(corpus / "capabilities.jsonl")]) == 0
    assert main(["ingest", "-w", str(ws), "--kind", "demands", str(corpus / "demands.jsonl")]) == 0
    assert main(["index", "-w", str(ws), "--model", "fake"]) == 0
    return ws


def _match(ws, capsys) -> list:
    capsys.readouterr()
    assert main(["match", "-w", str(ws), "--model", "fake", "D005", "--json"]) == 0
    return [(m["partner_id"], m["score"]) for m in json.loads(capsys.readouterr().out)]


def test_train_models_match_and_rollback(workspace, capsys):
    before = _match(workspace, capsys)
    code = main(["learn", "train", "-w", str(workspace), "--task", str(demo_corpus_path()), "--model", "fake",
                 "--depth", "20"])
    assert code == 0
    out = capsys.readouterr().out
    reg = ModelRegistry(workspace / "rankers")
    assert "beat the default" in out and reg.current() == "v0001" and "feature" in out
    assert reg.load("v0001").feature_names == BASE_FEATURES and "no evidence features" in out
    assert main(["learn", "models", "-w", str(workspace)]) == 0
    listed = capsys.readouterr().out
    assert "* v0001" in listed and "live: v0001" in listed
    learned = _match(workspace, capsys)
    assert learned != before
    assert main(["learn", "rollback", "-w", str(workspace)]) == 0
    assert "live: default order" in capsys.readouterr().out
    assert _match(workspace, capsys) == before
    assert main(["learn", "rollback", "-w", str(workspace)]) == 2
    assert "nothing to roll back" in capsys.readouterr().err


def test_train_with_evidence_features_stores_and_serves_them(workspace, capsys):
    code = main(["learn", "train", "-w", str(workspace), "--task", str(demo_corpus_path()), "--model", "fake",
                 "--depth", "20", "--evidence", "--no-deploy"])
    assert code == 0
    out = capsys.readouterr().out
    reg = ModelRegistry(workspace / "rankers")
    assert reg.versions() == ["v0001"] and reg.current() is None, out  # stored, not deployed
    assert reg.load("v0001").feature_names == FEATURES and "evidence features included" in out
    assert reg.info("v0001").meta["evidence"] is True
    before = _match(workspace, capsys)
    reg.deploy("v0001")
    assert _match(workspace, capsys) != before
    assert reg.rollback() is None and _match(workspace, capsys) == before


@pytest.mark.parametrize("correction", ["examined", "ipw"])
def test_simulate_prints_both_arms_with_their_spread_and_plots(tmp_path, capsys, correction):
    png, out_json = tmp_path / "curve.png", tmp_path / "curve.json"
    code = main(["learn", "simulate", "--task", str(demo_corpus_path()), "--model", "fake", "--depth", "20",
                 "--outcomes", "60", "--retrain-every", "30", "--seeds", "2", "--correction", correction,
                 "--plot", str(png), "--json", str(out_json)])
    assert code == 0
    out = capsys.readouterr().out
    assert f"correction: {correction}" in out and "mean (± standard error) of 2 simulated bureaus" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 2 and all("±" in row[2] and "±" in row[3] and "±" in row[4] for row in rows)
    summary = [line for line in out.splitlines() if line.startswith("at ")]
    assert len(summary) == 2 and all("of 2 bureaus run a learned model" in line for line in summary)
    assert "with correction" in summary[0] and "without" in summary[1]
    runs = json.loads(out_json.read_text())
    assert sorted(runs) == sorted([correction, "naive"]) and all(len(v) == 2 for v in runs.values())
    assert {r["params"]["estimator"] for r in runs[correction]} == {correction}
    assert png.stat().st_size > 1000
