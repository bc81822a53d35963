"""A folder of ingested records plus the index derived from them (the CLI's storage).

The record files are the source of truth; `index/` is derived, rebuilt when missing or when
the records or the model changed (a fingerprint of both is stored beside it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from matcher.errors import MatcherError, UnknownNameError
from matcher.records import RECORD_TYPES, read_records, write_records
from matcher.retrieval.engine import EngineParams, MatchEngine
from matcher.retrieval.index import IndexParams

KINDS = tuple(RECORD_TYPES)


class Workspace:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.index_path = self.path / "index"

    def records_file(self, kind: str) -> Path:
        if kind not in RECORD_TYPES:
            raise UnknownNameError("record kind", kind, list(RECORD_TYPES))
        return self.path / f"{kind}.jsonl"

    def records(self, kind: str) -> list:
        f = self.records_file(kind)
        return read_records(f, kind) if f.exists() else []

    def ingest(self, file: str | Path, kind: str, *, mapping=None, sheet=None,
               known_values: bool = True) -> tuple[int, int]:
        """Validate a whole file, then merge it by id into the workspace. Returns (new, replaced).

        A file with any bad row raises `InputErrors` and changes nothing. known_values: a
        demand's industry and region must be in `matcher.taxonomy` (False for another city)."""
        from matcher.io import ingest

        loader = {
            "demands": ingest.load_demands,
            "capabilities": ingest.load_capabilities,
            "partners": ingest.load_partners,
        }[kind]
        extra = {"known_values": known_values} if kind == "demands" else {}
        incoming = loader(file, mapping=mapping, sheet=sheet, **extra)
        current = {r.id: r for r in self.records(kind)}
        replaced = sum(1 for r in incoming if r.id in current)
        current.update({r.id: r for r in incoming})
        self.path.mkdir(parents=True, exist_ok=True)
        write_records(self.records_file(kind), current.values())
        return len(incoming) - replaced, replaced

    def summary(self) -> str:
        counts = {k: len(self.records(k)) for k in KINDS}
        return f"workspace {self.path}: " + ", ".join(f"{n} {k}" for k, n in counts.items())

    def fingerprint(self, encoder_name: str) -> str:
        h = hashlib.sha256(encoder_name.encode())
        for kind in KINDS:
            f = self.records_file(kind)
            h.update(f.read_bytes() if f.exists() else b"-")
        return h.hexdigest()

    def build_index(self, encoder, index: IndexParams | None = None, progress: Callable | None = None) -> MatchEngine:
        caps, demands, partners = (self.records(k) for k in ("capabilities", "demands", "partners"))
        if not caps:
            raise MatcherError(
                f"workspace {self.path} has no capabilities: run `techmatch ingest --kind capabilities FILE` first"
            )
        engine = MatchEngine(encoder, EngineParams(index=index or IndexParams()))
        bar = progress("embedding", len(caps) + len(demands)) if progress else None
        engine.fit(caps, demands, partners, progress=bar.update if bar else None)
        if bar:
            bar.close()
        engine.save(self.index_path)
        (self.path / "index.fingerprint").write_text(self.fingerprint(encoder.name))
        return engine

    def engine(self, encoder, *, rebuild: bool = False, progress: Callable | None = None) -> MatchEngine:
        """The saved index if it is current for these records and this model, else a new build."""
        stamp = self.path / "index.fingerprint"
        fresh = stamp.exists() and stamp.read_text() == self.fingerprint(encoder.name)
        if fresh and not rebuild and (self.index_path / "engine.json").exists():
            params = json.loads((self.index_path / "engine.json").read_text(encoding="utf-8"))
            if params.get("encoder") == encoder.name:
                return MatchEngine.load(self.index_path, encoder)
        return self.build_index(encoder, progress=progress)
