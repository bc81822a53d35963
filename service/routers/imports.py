"""Bulk import of CSV / XLSX / JSONL files by upload (staff), all or nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from service.deps import CtxDep, StaffDep
from service.importer import UPLOAD_OPENAPI, import_file, parse_mapping, upload_name
from service.schemas import ImportKind, ImportMode, ImportResult

router = APIRouter(prefix="/api/imports", tags=["imports"])


@router.post("/{kind}", response_model=ImportResult, openapi_extra=UPLOAD_OPENAPI,
             responses={422: {"description": "the file has problems; `error.details` lists each one as "
                                             "{file, row, field, message}; nothing was imported"}})
def upload(ctx: CtxDep, principal: StaffDep, kind: ImportKind, file: Annotated[UploadFile, File()],
           mapping: Annotated[str | None, Form(description="COLUMN=FIELD lines or a JSON object")] = None,
           sheet: Annotated[str | None, Form(description="XLSX sheet name")] = None,
           mode: Annotated[ImportMode, Form(description="update: a known id changes only the columns the file "
                                                        "has; replace: a known id becomes exactly the file's row")
                           ] = "update") -> ImportResult:
    """Import demands, capabilities or partners. Records are matched by id: new ids are
    added; a known id is updated with only the fields the file has columns for (`mode=update`,
    the default) or replaced whole (`mode=replace`). Capabilities naming a new partner create it."""
    data = file.file.read()
    return import_file(ctx, kind, data, upload_name(file.filename, file.content_type), mapping=parse_mapping(mapping),
                       sheet=sheet or None, mode=mode)
