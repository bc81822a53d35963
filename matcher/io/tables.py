"""Read the table files people have into DataFrames whose cells are all strings.

Formats (decided by the file name's extension, case-insensitive):

* ``.csv`` (comma), ``.tsv`` (tab), ``.txt`` (tab if the first lines hold a tab, else comma);
* ``.xlsx`` / ``.xlsm`` (first sheet unless ``sheet`` names one by name or 0-based index);
* ``.jsonl`` (one JSON object a line), ``.json`` (a list of objects);
* any of these gzip-compressed with a trailing ``.gz`` (``.jsonl.gz`` is the canonical one).

Every cell is read as a string: ``007`` stays ``007``, an Excel number 7 becomes ``7`` (not
``7.0``; a zero-padded number format such as ``000`` is honoured), an Excel date becomes
``2024-03-01``; JSON numbers and booleans become their JSON text, JSON lists/objects their
compact JSON text.

Text files are decoded as UTF-8 (with or without a byte-order mark), else as GB18030 (which
covers GBK/GB2312, what Chinese Excel writes for "CSV"). A file that is clearly UTF-8 (at
least a few valid multi-byte characters before the first bad byte) is not re-read as
GB18030, because that would turn one corrupt byte into a silently garbled file. A file with a
UTF-16 byte-order mark (Excel's "Unicode text") is decoded as UTF-16. Anything else is an
:class:`InputError` naming the line and byte offset of the first undecodable byte.

A title line above the header (a row with a single filled cell, as in
``齐齐哈尔市企业技术需求征集表``) and blank leading rows are skipped.

Row numbers (the ``"row"`` index, and in errors) are what a person sees: for CSV/TSV/XLSX the
spreadsheet row (the header is row 1 in a plain file, the first data row row 2; rows above a
skipped title line count too); for JSONL the line number; for a ``.json`` list the 1-based
position of the object. Row-level problems are collected for the whole file (up to 100) and
raised together as one :class:`InputErrors`; nothing from that file is returned.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import unicodedata
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pandas as pd

from matcher.errors import InputError, InputErrors

MAX_CELL_CHARS = 20_000  # user files; a spreadsheet cell beyond this is a paste accident
MAX_ERRORS = 100
ROW_INDEX_NAME = "row"  # read_table's index: the human row (or line) number of each record

_TEXT_EXTS = (".csv", ".tsv", ".txt")
_EXCEL_EXTS = (".xlsx", ".xlsm")
_JSON_EXTS = (".jsonl", ".json")
SUPPORTED_EXTENSIONS = _TEXT_EXTS + _EXCEL_EXTS + _JSON_EXTS + tuple(
    e + ".gz" for e in _TEXT_EXTS + _JSON_EXTS
)

# C0/C1 control characters except tab, newline, carriage return; plus stray BOMs.
_CTRL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff]")


def read_table(path: str | Path, *, sheet: str | int | None = None) -> pd.DataFrame:
    """Read a table file into a DataFrame whose cells are all ``str`` (no NaN).

    The index, named ``"row"``, holds each record's human row number (see the module doc);
    fully blank rows are dropped. Raises :class:`InputError` for a missing, unreadable, empty
    or undecodable file or an unsupported extension, and :class:`InputErrors` for bad JSONL
    lines or CSV rows with more cells than the header.
    """
    p = Path(path)
    source = str(path)
    _check_extension(p.name, source)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", file=source, code="file_not_found") from None
    except IsADirectoryError:
        raise InputError("is a folder, not a file", file=source, code="is_folder") from None
    except OSError as e:
        raise InputError(f"cannot read the file: {e.strerror or e}", file=source) from None
    return _read_bytes(data, p.name, source, sheet)


def read_table_bytes(data: bytes, filename: str, *, sheet: str | int | None = None) -> pd.DataFrame:
    """Like :func:`read_table` for uploaded bytes; ``filename``'s extension decides the format."""
    _check_extension(filename, filename)
    return _read_bytes(bytes(data), filename, filename, sheet)


def _check_extension(name: str, source: str) -> str:
    ext = _extension(name)
    if ext not in SUPPORTED_EXTENSIONS:
        hint = " (save it as .xlsx)" if ext in (".xls", ".et", ".ods", ".numbers") else ""
        raise InputError(
            f"unsupported file type '{ext or name}'{hint}; supported: "
            + ", ".join(SUPPORTED_EXTENSIONS),
            file=source, code="unsupported_type",
            params={"ext": ext or name, "supported": ", ".join(SUPPORTED_EXTENSIONS)},
        )
    return ext


def file_extension(name: str) -> str:
    """The extension that decides how `name` is read (".csv", ".csv.gz", ...), lower case."""
    return _extension(name)


def _extension(name: str) -> str:
    lower = name.lower()
    for ext in sorted(SUPPORTED_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext):
            return ext
    suffixes = Path(lower).suffixes
    return "".join(suffixes[-2:]) if suffixes[-1:] == [".gz"] else "".join(suffixes[-1:])


def _read_bytes(data: bytes, name: str, source: str, sheet: str | int | None) -> pd.DataFrame:
    ext = _extension(name)
    if ext.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise InputError(f"not a valid gzip file: {e}", file=source, code="not_gzip") from None
        ext = ext[: -len(".gz")]
    if sheet is not None and ext not in _EXCEL_EXTS:
        raise InputError(f"a sheet ({sheet!r}) was given but {ext} files have no sheets",
                         file=source)
    if not re.search(rb"\S", data):
        raise InputError("the file is empty", file=source, code="file_empty")
    if ext in _EXCEL_EXTS:
        return _read_xlsx(data, source, sheet)
    text = decode_text(data, source)
    if ext == ".jsonl":
        return _read_jsonl(text, source)
    if ext == ".json":
        return _read_json(text, source)
    return _read_delimited(text, source, ext)


def decode_text(data: bytes, source: str) -> str:
    """Decode a text file: UTF-8 (BOM-aware), then GB18030; else InputError with the position."""
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[3:].decode("utf-8")
        except UnicodeDecodeError as e:
            raise _decode_error(data, 3 + e.start, source, "UTF-8 (it starts with a UTF-8 "
                                "byte-order mark)") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise _decode_error(data, e.start, source, "UTF-16") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = e.start
    # Valid multi-byte UTF-8 before the bad byte: a UTF-8 file with a corrupt byte, not GBK.
    if bad - len(data[:bad].decode("utf-8")) >= 16:
        raise _decode_error(data, bad, source, "UTF-8 (the text before it is UTF-8)")
    japanese = _shift_jis_line(data)
    if japanese is not None:
        raise InputError(
            f"the file looks like Shift-JIS (Japanese Windows) text, not UTF-8 or GB18030/GBK (first "
            f"non-ASCII text at line {japanese}); save the file as UTF-8 (Excel: 'CSV UTF-8') and try again",
            file=source, row=japanese, code="shift_jis", params={"line": japanese})
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise _decode_error(data, bad, source, "UTF-8 or GB18030/GBK") from None


_KANA = re.compile("[\u3041-\u3096\u30a1-\u30fa]")
_HALFWIDTH_KANA = re.compile("[\uff61-\uff9f]")


def _shift_jis_line(data: bytes) -> int | None:
    """The line of the first non-ASCII byte if `data` reads as Japanese Shift-JIS text, else None.

    GB18030 decodes almost any byte string, so a Shift-JIS file would otherwise come out as
    mojibake column names. Chinese GBK text read as Shift-JIS either fails or turns into
    half-width katakana (GBK's lead bytes 0xA1-0xDF are single half-width kana in Shift-JIS);
    Japanese text has kana of the full-width kind.
    """
    try:
        text = data.decode("shift_jis")
    except UnicodeDecodeError:
        return None
    kana = len(_KANA.findall(text))
    if kana < 2 or kana <= 4 * len(_HALFWIDTH_KANA.findall(text)):
        return None
    first = next(i for i, b in enumerate(data) if b >= 0x80)
    return data.count(b"\n", 0, first) + 1


def _decode_error(data: bytes, offset: int, source: str, tried: str) -> InputError:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return InputError(
        f"cannot decode as {tried}: byte 0x{data[offset]:02X} at line {line}, column {column} "
        f"(byte offset {offset} from the start of the file, counting from 0) is invalid; "
        "save the file as UTF-8 (Excel: 'CSV UTF-8') and try again",
        file=source,
        row=line,
        code="cannot_decode",
        params={"encoding": tried.split(" (")[0].replace(" or ", " / "), "byte": f"0x{data[offset]:02X}",
                "line": line, "column": column},
    )


def _strip_controls(text: str) -> str:
    """Remove control characters; searching first is ~100x faster than sub on clean text."""
    return _CTRL.sub("", text) if _CTRL.search(text) else text


def _read_delimited(text: str, source: str, ext: str) -> pd.DataFrame:
    text = _strip_controls(text).replace("\r\n", "\n").replace("\r", "\n")
    if ext == ".tsv":
        delimiter = "\t"
    elif ext == ".csv":
        delimiter = ","
    else:
        head = [ln for ln in text[:20_000].split("\n") if ln.strip()][:5]
        tabs, commas = sum(ln.count("\t") for ln in head), sum(ln.count(",") for ln in head)
        delimiter = "\t" if tabs and tabs >= commas else ","
    # Strict parsing first, to catch a quote that is never closed (it would swallow the rest
    # of the file into one cell); other strictness complaints (text after a closing quote,
    # as in "abc"def) are accepted the lenient way, as Excel does.
    rows: list[list[str]] = []
    for strict in (True, False):
        rows = []
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=strict)
        try:
            for row in reader:
                rows.append(row)
            break
        except csv.Error as e:
            msg = str(e)
            if "field larger than field limit" in msg:
                msg = (f"a cell is longer than {csv.field_size_limit():,} characters "
                       f"(the limit is {MAX_CELL_CHARS:,})")
            elif "unexpected end of data" in msg:
                msg = "a quoted cell (starting with \") in this row is never closed"
            elif strict:
                continue
            raise InputError(f"cannot parse: {msg}", file=source, row=len(rows) + 1) from None
    return _table_from_rows(rows, list(range(1, len(rows) + 1)), source, strict_width=True)


def _read_xlsx(data: bytes, source: str, sheet: str | int | None) -> pd.DataFrame:
    from matcher.io.xlsx import read_rows  # in a child process, bounded in time (see its docstring)

    rows, numbers, title = read_rows(data, source, sheet)
    if not any(rows):
        raise InputError(f"sheet '{title}' is empty", file=source)
    return _table_from_rows(rows, numbers, source, strict_width=False)


def _col_letter(j: int) -> str:
    s = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(65 + r) + s
    return s


def _table_from_rows(
    rows: list[list[str]], numbers: list[int], source: str, *, strict_width: bool
) -> pd.DataFrame:
    """Header detection, unique column names, blank-row dropping, row-number index."""
    nonempty = [sum(1 for c in r if _filled(c)) for r in rows]
    header_at = None
    for i, n in enumerate(nonempty[:10]):
        if n >= 2:
            header_at = i
            break
    if header_at is None:
        header_at = next((i for i, n in enumerate(nonempty) if n), None)
    if header_at is None:
        raise InputError("the file has no header row (it is blank)", file=source, code="no_header_row")
    header = [c.strip() for c in rows[header_at]]
    data_rows = rows[header_at + 1 :]
    data_numbers = numbers[header_at + 1 :]
    if strict_width:
        width = len(header)
    else:
        width = max([len(header)] + [len(r) for r in data_rows])
    errors: list[InputError] = []
    names: list[str] = []
    unnamed: set[str] = set()
    seen: dict[str, int] = {}
    for j in range(width):
        name = unicodedata.normalize("NFC", header[j]) if j < len(header) else ""
        name = _CTRL.sub("", name).replace("\n", " ").strip()
        if not name:
            name = f"column {_col_letter(j)}"
            unnamed.add(name)
        key = name.casefold()
        if key in seen:
            seen[key] += 1
            name = f"{name} ({seen[key]})"
        else:
            seen[key] = 1
        names.append(name)
    keep_rows: list[list[str]] = []
    keep_numbers: list[int] = []
    for r, num, n in zip(data_rows, data_numbers, nonempty[header_at + 1 :], strict=True):
        if not n:
            continue
        if len(r) > width:
            if any(_filled(c) for c in r[width:]):
                errors.append(InputError(
                    f"has {len(r)} cells but the header has {width}: is a comma or tab inside "
                    "a cell not quoted?", file=source, row=num, code="row_too_wide",
                    params={"cells": len(r), "width": width}))
                continue
            r = r[:width]
        elif len(r) < width:
            r = r + [""] * (width - len(r))
        keep_rows.append(r)
        keep_numbers.append(num)
    if errors:
        raise _errors(errors, source)
    frame: dict[str, list[str]] = {}
    for j, name in enumerate(names):
        col = [r[j] for r in keep_rows]
        # an unnamed column with nothing in it: Excel's formatted-but-empty columns
        if name in unnamed and not any(_filled(c) for c in col):
            continue
        frame[name] = col
    return _frame(frame, keep_numbers)


def _filled(cell: str) -> bool:
    """Whether a cell keeps anything once cleaned: a stray BOM or control character is blank."""
    return bool(cell.strip()) and bool(_CTRL.sub("", cell).strip())


def _frame(columns: dict[str, list[str]], numbers: list[int]) -> pd.DataFrame:
    index = pd.Index(numbers, name=ROW_INDEX_NAME, dtype="int64")
    return pd.DataFrame({k: pd.Series(v, index=index, dtype=object) for k, v in columns.items()},
                        index=index)


def _json_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return ""
        return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _records_frame(records: list[dict[str, Any]], numbers: list[int]) -> pd.DataFrame:
    keys: dict[str, None] = {}
    for rec in records:
        for k in rec:
            if k not in keys:
                keys[k] = None
    columns: dict[str, list[str]] = {}
    for k in keys:
        col = [rec.get(k, "") for rec in records]
        columns[k] = [v if type(v) is str else _json_cell(v) for v in col]
    return _frame(columns, numbers)


# Records are flat tables: a cell may hold a list or an object (kept as JSON text), but nesting
# deeper than this is refused (it would exhaust the parser's recursion, or be no table at all).
MAX_JSON_DEPTH = 32
_TOO_DEEP = f"JSON nested more than {MAX_JSON_DEPTH} levels deep: records must be flat objects"


def _too_deep(obj: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `obj` nests lists/objects more than `limit` levels (iterative: no recursion)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _read_jsonl(text: str, source: str) -> pd.DataFrame:
    # Raw control characters can only sit inside strings (accepted with strict=False); remove
    # them here, and escaped ones later in _clean.
    lines = text.split("\n")
    if _CTRL.search(text):  # clean only the affected lines: sub over 60 MB costs 0.3 s
        lines = [_CTRL.sub("", ln) if _CTRL.search(ln) else ln for ln in lines]
    decoder = json.JSONDecoder(strict=False)
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    errors: list[InputError] = []
    for i, line in enumerate(lines, start=1):
        if not line or line.isspace():
            continue
        try:
            obj = decoder.decode(line)
        except ValueError as e:
            msg = getattr(e, "msg", str(e))
            col = getattr(e, "colno", None)
            errors.append(InputError(f"invalid JSON ({msg}{f' at column {col}' if col else ''})",
                                     file=source, row=i))
            continue
        except RecursionError:
            errors.append(InputError(_TOO_DEEP, file=source, row=i))
            continue
        if _too_deep(obj):
            errors.append(InputError(_TOO_DEEP, file=source, row=i))
            continue
        if not isinstance(obj, dict):
            errors.append(InputError(f"expected a JSON object, found {_json_type(obj)}",
                                     file=source, row=i))
            continue
        records.append(obj)
        numbers.append(i)
        if len(errors) > MAX_ERRORS:
            break
    if errors:
        raise _errors(errors, source)
    if not records:
        raise InputError("the file has no JSON objects", file=source)
    return _records_frame(records, numbers)


def _read_json(text: str, source: str) -> pd.DataFrame:
    try:
        obj = json.JSONDecoder(strict=False).decode(_strip_controls(text).strip())
    except ValueError as e:
        line = getattr(e, "lineno", None)
        raise InputError(f"invalid JSON ({getattr(e, 'msg', e)})", file=source, row=line) from None
    except RecursionError:
        raise InputError(_TOO_DEEP, file=source) from None
    if _too_deep(obj, MAX_JSON_DEPTH + 1):  # the list of records is one level more
        bad = next((i for i, o in enumerate(obj, start=1) if _too_deep(o)), None) if isinstance(obj, list) else None
        raise InputError(_TOO_DEEP, file=source, row=bad)
    if not isinstance(obj, list):
        raise InputError(f"expected a JSON list of objects, found {_json_type(obj)}", file=source)
    errors = [
        InputError(f"item {i} is {_json_type(o)}, expected a JSON object", file=source, row=i)
        for i, o in enumerate(obj, start=1)
        if not isinstance(o, dict)
    ]
    if errors:
        raise _errors(errors, source)
    if not obj:
        raise InputError("the JSON list is empty", file=source)
    return _records_frame(obj, list(range(1, len(obj) + 1)))


def _json_type(obj: Any) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null", dict: "an object"}.get(type(obj), "a value")


def _errors(errors: list[InputError], source: str) -> InputErrors:
    errors = sorted(errors, key=lambda e: (e.row is None, e.row or 0))
    if len(errors) > MAX_ERRORS:
        more = len(errors) - (MAX_ERRORS - 1)
        errors = errors[: MAX_ERRORS - 1] + [
            InputError(f"{more} more problem(s) not listed; fix the ones above first",
                       file=source)
        ]
    return InputErrors(errors, file=source)
