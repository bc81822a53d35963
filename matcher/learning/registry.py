"""Versioned ranker models on disk, which one is deployed, and rollback.

    <folder>/v0001/model.json (+ booster.txt)   one folder per trained model, never changed
    <folder>/deployed.json                      {"history": ["v0001", null, "v0003"]}: last is live

`null` in the history means the default (unlearned) order. Deploying appends; `rollback`
drops the last entry, so the previous state (a model or the default) is live again, exactly:
the same model files, hence the same ranking.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

from matcher.errors import MatcherError, NotFoundError
from matcher.fsutil import atomic_text
from matcher.learning.ranker import LearnedRanker

VERSION_RE = re.compile(r"^v(\d{4,})$")


@dataclass(frozen=True)
class ModelInfo:
    version: str
    created_at: str
    backend: str
    features: tuple[str, ...]
    meta: dict
    deployed: bool


class ModelRegistry:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def versions(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        found = [p.name for p in self.folder.iterdir() if p.is_dir() and VERSION_RE.match(p.name)
                 and (p / "model.json").exists()]
        return sorted(found, key=lambda v: int(v[1:]))

    def add(self, model: LearnedRanker, meta: dict) -> str:
        """Store a fitted model as the next version (not deployed). Returns its version."""
        existing = self.versions()
        n = int(existing[-1][1:]) + 1 if existing else 1
        version = f"v{n:04d}"
        meta = {**meta, "version": version,
                "created_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()}
        model.save(self.folder / version, meta)
        return version

    def load(self, version: str) -> LearnedRanker:
        if version not in self.versions():
            raise NotFoundError(f"no ranker model '{version}' in {self.folder}")
        return LearnedRanker.load(self.folder / version)

    def info(self, version: str) -> ModelInfo:
        model = self.load(version)
        meta = getattr(model, "meta_", {})
        return ModelInfo(version, meta.get("created_at", ""), model.backend, model.feature_names, meta,
                         self.current() == version)

    def history(self) -> list[str | None]:
        path = self.folder / "deployed.json"
        if not path.exists():
            return []
        try:
            return list(json.loads(path.read_text(encoding="utf-8"))["history"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MatcherError(f"{path} is damaged: {exc}") from exc

    def current(self) -> str | None:
        """The deployed version, or None for the default order."""
        h = self.history()
        return h[-1] if h else None

    def deploy(self, version: str | None) -> None:
        """Make `version` live (None: back to the default order)."""
        if version is not None and version not in self.versions():
            raise NotFoundError(f"no ranker model '{version}' in {self.folder}")
        self._write(self.history() + [version])

    def rollback(self) -> str | None:
        """Return to the state before the last deployment; returns what is live now."""
        h = self.history()
        if not h:
            raise MatcherError("nothing to roll back: the default order is live and no model was ever deployed")
        self._write(h[:-1])
        return self.current()

    def current_model(self) -> LearnedRanker | None:
        v = self.current()
        return None if v is None else self.load(v)

    def _write(self, history: list[str | None]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_text(self.folder / "deployed.json", json.dumps({"history": history}))
