"""Files people have, turned into records.

Owns reading CSV/TSV/XLSX/JSON(L)(.gz) in any of the encodings Chinese offices use into string
tables (:mod:`.tables`), matching their headers to our fields (:mod:`.columns`), validating rows
into demands, capabilities and partners, all or nothing (:mod:`.ingest`), and evaluation task
folders with their judgements (:mod:`.tasks`, built on :mod:`.ingest`).

May import: the top-level base modules (:mod:`matcher.records`, :mod:`matcher.errors`,
:mod:`matcher.fsutil`, :mod:`matcher.settings`, :mod:`matcher.sheets`). Nothing from
:mod:`matcher.retrieval` or later layers: reading a file never needs a model.
"""

from matcher.io.ingest import (
    load_capabilities,
    load_demands,
    load_partners,
    parse_capabilities,
    parse_demands,
    parse_partners,
    partner_id_for,
    read_table,
    read_table_bytes,
)
from matcher.io.tables import (
    MAX_CELL_CHARS,
    decode_text,
)
from matcher.io.tasks import (
    TASK_MAX_CELL_CHARS,
    Task,
    load_qrels,
    load_task,
)

__all__ = [
    "MAX_CELL_CHARS",
    "TASK_MAX_CELL_CHARS",
    "Task",
    "decode_text",
    "load_capabilities",
    "load_demands",
    "load_partners",
    "load_qrels",
    "load_task",
    "parse_capabilities",
    "parse_demands",
    "parse_partners",
    "partner_id_for",
    "read_table",
    "read_table_bytes",
]
