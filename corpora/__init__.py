"""Bundled corpora. `qiqihar/` is the demo corpus in the canonical task format."""

from __future__ import annotations

from pathlib import Path


def demo_corpus_path() -> Path:
    """The folder of the bundled Qiqihar demo corpus (demands, capabilities, partners, qrels)."""
    return Path(__file__).parent / "qiqihar"
