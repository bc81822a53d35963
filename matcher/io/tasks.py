"""Read evaluation tasks: canonical task folders and their relevance judgements (qrels)."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matcher.errors import InputError
from matcher.io.tables import _errors, decode_text, read_table
from matcher.records import Capability, Demand

TASK_MAX_CELL_CHARS = 1_000_000  # canonical task files hold real texts up to ~33k characters

_QRELS_HEADERS = (
    ("demand_id", "target_id", "relevance"),
    ("query-id", "corpus-id", "score"),  # BEIR
)


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read ``qrels.tsv``: header ``demand_id<TAB>target_id<TAB>relevance``, one judgement a line.

    Returns ``{demand_id: {target_id: relevance}}`` in file order. Relevance must be an
    integer. Malformed lines and repeated (demand, target) pairs are collected and raised
    together as :class:`InputErrors` (row = line number).
    """
    qrels, _ = _read_qrels(path)
    return qrels


def _read_qrels(
    path: str | Path,
) -> tuple[dict[str, dict[str, int]], dict[tuple[str, str], int]]:
    p, source = Path(path), str(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", file=source) from None
    except OSError as e:
        raise InputError(f"cannot read the file: {e.strerror or e}", file=source) from None
    if p.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise InputError(f"not a valid gzip file: {e}", file=source) from None
    if not re.search(rb"\S", data):
        raise InputError("the file is empty", file=source)
    text = decode_text(data, source)
    lines = text.replace("\r\n", "\n").split("\n")
    qrels: dict[str, dict[str, int]] = {}
    pair_line: dict[tuple[str, str], int] = {}
    errors: list[InputError] = []
    header_seen = False
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = [x.strip() for x in (line.split("\t") if "\t" in line else line.split())]
        if not header_seen:
            header_seen = True
            if tuple(x.lower() for x in parts) not in _QRELS_HEADERS:
                raise InputError("expected the header 'demand_id<TAB>target_id<TAB>relevance', "
                                 f"found {line.strip()[:80]!r}", file=source, row=no)
            continue
        if len(parts) != 3:
            errors.append(InputError(f"expected 3 tab-separated fields, found {len(parts)}",
                                     file=source, row=no))
            continue
        did, tid, rel = parts
        try:
            relevance = int(rel)
        except ValueError:
            errors.append(InputError(f"relevance '{rel}' is not an integer", file=source,
                                     row=no, field="relevance"))
            continue
        if not did or not tid:
            errors.append(InputError("empty id", file=source, row=no,
                                     field="demand_id" if not did else "target_id"))
            continue
        if (did, tid) in pair_line:
            errors.append(InputError(f"judgement ({did}, {tid}) repeats line "
                                     f"{pair_line[did, tid]}", file=source, row=no))
            continue
        pair_line[did, tid] = no
        qrels.setdefault(did, {})[tid] = relevance
    if not header_seen:
        raise InputError("the file is empty", file=source)
    if errors:
        raise _errors(errors, source)
    return qrels, pair_line


@dataclass(frozen=True)
class Task:
    """One evaluation task folder in the canonical format (see ../shared/data/README.md)."""

    name: str
    level: str  # "partner" or "capability"
    language: str
    metric: str
    demands: list[Demand]
    capabilities: list[Capability]
    qrels: dict[str, dict[str, int]]
    path: Path


def load_task(task_dir: str | Path) -> Task:
    """Load a canonical task folder.

    ``task.json`` gives name, level, language and metric; without it the name is the folder's
    and the level "capability" (a null level, as in sbir-topics, also means "capability").
    ``demands.jsonl`` or ``demands.jsonl.gz`` is required; ``capabilities.jsonl[.gz]`` and
    ``qrels.tsv`` are optional (empty list / dict). Cells may be up to 1,000,000 characters
    here (real abstracts exceed the 20,000 limit for user files). Records without a
    ``language`` get the task's: ``"zh"`` for both sides; ``"zh->en"`` gives demands "zh"
    and capabilities "en".
    Every qrels demand id must be a loaded demand; when capabilities are loaded, every target
    must be a capability id (level capability) or a partner id (level partner). Violations
    are one :class:`InputErrors` naming the qrels lines.
    """
    # imported here, not at the top: matcher.io.ingest re-exports this module's names
    from matcher.io.ingest import _parse_capabilities, _parse_demands

    d = Path(task_dir)
    if not d.is_dir():
        raise InputError("task folder not found", file=str(d))
    meta: dict[str, Any] = {}
    meta_path = d / "task.json"
    if meta_path.exists():
        try:
            meta = json.loads(decode_text(meta_path.read_bytes(), str(meta_path)))
        except ValueError as e:
            raise InputError(f"invalid JSON ({getattr(e, 'msg', e)})", file=str(meta_path),
                             row=getattr(e, "lineno", None)) from None
        if not isinstance(meta, dict):
            raise InputError("expected a JSON object", file=str(meta_path))
    name = str(meta.get("name") or d.resolve().name)
    level = meta.get("level") or "capability"
    if level not in ("partner", "capability"):
        raise InputError(f"level '{level}' is not 'partner' or 'capability'",
                         file=str(meta_path), field="level")
    language = str(meta.get("language") or "")
    metric = str(meta.get("metric") or "")
    demand_lang, capability_lang = _split_languages(language)

    demands_path = _task_file(d, "demands", required=True)
    assert demands_path is not None
    demands = _parse_demands(read_table(demands_path), source=str(demands_path), mapping=None,
                             default_language=demand_lang, max_cell=TASK_MAX_CELL_CHARS)
    capabilities: list[Capability] = []
    cap_path = _task_file(d, "capabilities", required=False)
    if cap_path is not None:
        capabilities = _parse_capabilities(read_table(cap_path), source=str(cap_path),
                                           mapping=None, default_language=capability_lang,
                                           max_cell=TASK_MAX_CELL_CHARS)
    qrels: dict[str, dict[str, int]] = {}
    qrels_path = d / "qrels.tsv"
    if qrels_path.exists():
        qrels, lines = _read_qrels(qrels_path)
        _check_qrels(str(qrels_path), lines, level, demands, capabilities)
    return Task(name=name, level=level, language=language, metric=metric, demands=demands,
                capabilities=capabilities, qrels=qrels, path=d)


def _split_languages(language: str) -> tuple[str, str]:
    parts = re.split(r"\s*(?:->|→|\bto\b)\s*", language.strip())
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    if re.fullmatch(r"[a-z]{2}", language.strip()):
        return language.strip(), language.strip()
    return "", ""


def _task_file(d: Path, stem: str, *, required: bool) -> Path | None:
    found = [p for p in (d / f"{stem}.jsonl", d / f"{stem}.jsonl.gz") if p.exists()]
    if len(found) > 1:
        raise InputError(f"both {found[0].name} and {found[1].name} exist; keep one", file=str(d))
    if not found:
        if required:
            raise InputError(f"no {stem}.jsonl or {stem}.jsonl.gz in the task folder",
                             file=str(d))
        return None
    return found[0]


def _check_qrels(source: str, lines: dict[tuple[str, str], int], level: str,
                 demands: list[Demand], capabilities: list[Capability]) -> None:
    demand_ids = {dm.id for dm in demands}
    targets: set[str] | None = None
    if capabilities:
        targets = ({c.partner_id for c in capabilities} if level == "partner"
                   else {c.id for c in capabilities})
    partner_ids = {c.partner_id for c in capabilities}
    what = "partner id" if level == "partner" else "capability id"
    errors: list[InputError] = []
    for (did, tid), no in lines.items():
        if did not in demand_ids:
            errors.append(InputError(f"demand id '{did}' is not in the task's demands",
                                     file=source, row=no, field="demand_id"))
        elif targets is not None and tid not in targets:
            hint = ""
            if level == "capability" and tid in partner_ids:
                hint = " (it is a partner id: set \"level\": \"partner\" in task.json)"
            errors.append(InputError(f"target '{tid}' is not a {what} of the task's "
                                     f"capabilities{hint}", file=source, row=no,
                                     field="target_id"))
    if errors:
        raise _errors(errors, source)
