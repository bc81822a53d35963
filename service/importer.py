"""Bulk import of the bureau's spreadsheets: validated whole, stored in one transaction.

Parsing and row-level validation are the engine's (`matcher.io.ingest`), so the service reports
exactly the problems the CLI reports. A file with any problem changes nothing.

A record whose id is already stored is updated: by default (``mode="update"``) only the fields
the file has a column for change (a sheet without 英文标题 or 语言 columns leaves those as they
were); ``mode="replace"`` makes the stored record exactly the file's row, as a new record would
be. New ids are added the same way in both modes.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
import zlib

from matcher.errors import InputError, InputErrors
from service.deps import Context
from service.jobs.live import Change
from service.schemas import ID_RULE, ImportResult, id_is_valid
from service.storage import store
from service.storage.db import capabilities, capability_industries, demands, partners

IMPORT_MODES = ("update", "replace")


# The media types an uploaded table may declare for its file part (stated in the OpenAPI schema as
# the part's `contentType`): a file whose name has no known extension is read by its media type.
UPLOAD_MEDIA_TYPES = {"text/csv": ".csv", "text/tab-separated-values": ".tsv",
                      "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
                      "application/json": ".json", "application/x-ndjson": ".jsonl", "application/jsonl": ".jsonl"}
UPLOAD_OPENAPI = {"requestBody": {"content": {"multipart/form-data": {"encoding": {"file": {
    "contentType": ", ".join(UPLOAD_MEDIA_TYPES)}}}}}}


def upload_name(filename: str | None, content_type: str | None) -> str:
    """The name an upload is read under: its own when its extension is known, else one with the
    extension of its part's media type (a file sent as `text/csv` named "table" reads as CSV)."""
    from matcher.io.tables import SUPPORTED_EXTENSIONS, file_extension

    name = filename or "upload"
    if file_extension(name) in SUPPORTED_EXTENSIONS or "." in name.rpartition("/")[2].lstrip("."):
        return name  # a known extension, or one that is not (report.xls) and is refused by name
    ext = UPLOAD_MEDIA_TYPES.get((content_type or "").split(";")[0].strip().lower())
    return name + ext if ext else name


def parse_mapping(text: str | None) -> dict[str, str] | None:
    """A column mapping from a form field: a JSON object, or lines / ';'-separated COLUMN=FIELD."""
    if not text or not text.strip():
        return None
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"mapping is not valid JSON: {exc}", field="mapping", code="mapping_json") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise InputError("mapping must be a JSON object of column -> field", field="mapping",
                             code="mapping_object")
        return {str(k): v for k, v in data.items()}
    out = {}
    for item in text.replace(";", "\n").splitlines():
        if not item.strip():
            continue
        if "=" not in item:
            raise InputError(f"mapping expects COLUMN=FIELD, got '{item.strip()}'", field="mapping")
        col, fld = item.split("=", 1)
        out[col.strip()] = fld.strip()
    return out or None


def import_file(ctx: Context, kind: str, data: bytes, filename: str, *, mapping: dict[str, str] | None = None,
                sheet: str | None = None, mode: str = "update") -> ImportResult:
    """Validate `data` as a `kind` table and upsert every record by id, all or nothing
    (`mode`: "update" changes only the columns the file has, "replace" whole records)."""
    from matcher.io import ingest  # pandas: imported on first use, not at start-up
    from matcher.records import updated_record

    if mode not in IMPORT_MODES:
        raise InputError(f"unknown import mode '{mode}'; use one of: {', '.join(IMPORT_MODES)}", field="mode")

    filename = filename or "upload"
    _check_unpacked_size(data, filename, ctx.settings.max_body_bytes * UNPACKED_FACTOR)
    df = ingest.read_table_bytes(data, filename, sheet=sheet)
    parse = {"demands": ingest.parse_demands, "capabilities": ingest.parse_capabilities,
             "partners": ingest.parse_partners}[kind]
    records = parse(df, source=filename, mapping=mapping, **({"known_values": True} if kind == "demands" else {}))
    carried = ingest.carried_fields(df, kind, source=filename, mapping=mapping)
    row_numbers = [int(r) if str(r).isdigit() else i + 2 for i, r in enumerate(df.index)]
    _check_ids(records, row_numbers, filename)
    _check_column_sizes(kind, records, row_numbers, filename)
    if kind != "partners":
        ctx.live.prewarm([r.full_text for r in records])  # embed before taking the write lock

    def merged(current: dict, as_record) -> list:
        """The file's records, each stored one updated with only what the file carries."""
        if mode == "replace":
            return list(records)
        return [updated_record(as_record(current[r.id]), r, carried.fields, carried.extra_columns)
                if r.id in current else r for r in records]

    def tx(conn):
        ids = [r.id for r in records]
        if kind == "partners":
            recs = merged(store.get_partners(conn, ids), store.partner_record)
            created, updated = store.upsert_rows(conn, partners, [store.partner_values(p) for p in recs])
            return (created, updated), Change(partners=recs)
        if kind == "demands":
            current = store.get_demands(conn, ids)
            recs = merged(current, store.demand_record)
            rows = [store.demand_values(d, owner=current[d.id]["owner"] if d.id in current else d.enterprise,
                                        published=current[d.id]["published"] if d.id in current else True)
                    for d in recs]
            created, updated = store.upsert_rows(conn, demands, rows)
            return (created, updated), Change(demands=recs)
        recs = merged(store.get_capabilities(conn, ids), store.capability_record)
        new_partners = _partners_for(conn, recs, row_numbers, filename)
        store.upsert_rows(conn, partners, [store.partner_values(p) for p in new_partners])
        created, updated = store.upsert_rows(conn, capabilities, [store.capability_values(c) for c in recs])
        return (created, updated), Change(partners=new_partners, capabilities=recs)

    created, updated = ctx.live.write(tx)
    ctx.live.save()
    return ImportResult(kind=kind, file=filename, created=created, updated=updated, total=len(records),
                        revision=ctx.live.revision)


# A compressed upload (.gz, or the zipped parts of an .xlsx) may unpack to this many times the
# request body limit; beyond that it is a decompression bomb, refused before it is unpacked.
UNPACKED_FACTOR = 10


def _check_unpacked_size(data: bytes, filename: str, limit: int) -> None:
    name = filename.lower()
    if name.endswith(".gz"):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
                data = fh.read(limit + 1)
        except (OSError, EOFError, zlib.error):
            return  # not valid gzip: the reader reports it
        if len(data) > limit:
            raise InputError(f"the file unpacks to more than {limit / 2**20:g} MB", file=filename,
                             code="unpacks_too_large", params={"mb": f"{limit / 2**20:g}"})
        name = name[:-3]
    if name.endswith((".xlsx", ".xlsm")):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:  # a member never unpacks beyond its declared size
                size = sum(info.file_size for info in zf.infolist())
        except Exception:
            return  # not a valid zip: the reader reports it
        if size > limit:
            raise InputError(f"the workbook unpacks to more than {limit / 2**20:g} MB", file=filename,
                             code="unpacks_too_large", params={"mb": f"{limit / 2**20:g}"})


def _check_ids(records, row_numbers: list[int], filename: str) -> None:
    """Ids the API could not address or print unambiguously (`schemas.IdStr`) are row errors."""
    errors = [InputError(f"id {value[:60]!r} cannot be used: {ID_RULE}", file=filename, row=row, field=name,
                         code="bad_id", params={"value": value[:60]})
              for rec, row in zip(records, row_numbers)
              for name, value in (("id", rec.id), ("partner_id", getattr(rec, "partner_id", "")))
              if (value or name == "id") and not id_is_valid(value)]
    if errors:
        raise InputErrors(errors, file=filename)


def _check_column_sizes(kind: str, records, row_numbers: list[int], filename: str) -> None:
    """Values longer than their database column (e.g. `industry`, `region`: 200 characters) are row
    errors here, as the API's 422: the database never sees a value the checks have not accepted."""
    from matcher.io.tables import MAX_ERRORS

    table = {"demands": demands, "capabilities": capabilities, "partners": partners}[kind]
    limits = {c.name: c.type.length for c in table.columns if getattr(c.type, "length", None)}
    errors = []
    for rec, row in zip(records, row_numbers):
        values = {"demands": lambda r: store.demand_values(r, owner=r.enterprise, published=True),
                  "capabilities": store.capability_values, "partners": store.partner_values}[kind](rec)
        checks = [(name, values.get(name), limit) for name, limit in limits.items()]
        checks += [("industries", tag, capability_industries.c.industry.type.length)
                   for tag in values.get("industries", ())]
        errors += [InputError(f"{len(value):,} characters; the limit is {limit}", file=filename, row=row, field=name)
                   for name, value, limit in checks if isinstance(value, str) and len(value) > limit]
    if errors:
        raise InputErrors(errors[:MAX_ERRORS], file=filename)


def _partners_for(conn, caps, row_numbers: list[int], filename: str):
    """Partners the capabilities name that the database lacks, made from their names.

    A capability naming an unknown partner by id alone is a row error (import partners first)."""
    from matcher.records import Partner

    have = store.existing_ids(conn, partners, sorted({c.partner_id for c in caps}))
    new: dict[str, Partner] = {}
    errors = []
    for cap, row in zip(caps, row_numbers):
        if cap.partner_id in have or cap.partner_id in new:
            continue
        if cap.partner_name:
            new[cap.partner_id] = Partner(id=cap.partner_id, name=cap.partner_name)
        else:
            errors.append(InputError(f"unknown partner id '{cap.partner_id}': import the partners first or "
                                     "add a partner name column", file=filename, row=row, field="partner_id",
                                     code="unknown_partner", params={"id": cap.partner_id}))
    if errors:
        raise InputErrors(errors, file=filename)
    return list(new.values())
