"""The README's output blocks are what their stored runs printed (issue 13.7)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("readme_outputs", REPO / "docs" / "readme_outputs.py")
readme_outputs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme_outputs)


def test_every_generated_block_matches_its_source():
    assert readme_outputs.check() == []


def test_the_landscape_sample_is_generated_with_its_command_and_date():
    blocks = readme_outputs.readme_blocks()
    assert "landscape" in blocks
    fields, output = readme_outputs.read_source("landscape")
    assert fields["command"] == readme_outputs.COMMANDS["landscape"][0] and fields["date"] >= "2026-12-06"
    assert output.startswith("threshold calibrated on 166 judged demands")
    assert "files written" not in output


def test_a_stale_block_is_caught(tmp_path, monkeypatch):
    text = readme_outputs.README.read_text(encoding="utf-8")
    first_line = text.split("<!-- output: landscape -->\n```\n", 1)[1].split("\n", 1)[0]
    text = text.replace(first_line, first_line + " (edited by hand)", 1)
    stale = tmp_path / "README.md"
    stale.write_text(text, encoding="utf-8")
    monkeypatch.setattr(readme_outputs, "README", stale)
    assert any("landscape" in p for p in readme_outputs.check())
