"""Where techmatch keeps derived files (built models, embedding cache)."""

from __future__ import annotations

import os
from pathlib import Path


def techmatch_home() -> Path:
    """$TECHMATCH_HOME, else ~/.cache/techmatch. Everything in it can be rebuilt."""
    home = os.environ.get("TECHMATCH_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "techmatch"
