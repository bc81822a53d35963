"""Read demands, capabilities, partners and evaluation tasks from the files people have.

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

Headers are matched to fields through English and Chinese synonyms, ignoring case, spaces,
``_``/``-``, a required-marker ``*``, a trailing colon and (as a fallback) a parenthesised
note such as ``需求描述（500字以内）``. A title line above the header (a row with a single
filled cell, as in ``齐齐哈尔市企业技术需求征集表``) and blank leading rows are skipped.
``mapping`` overrides the synonyms: ``{"Problem": "text"}`` maps the column ``Problem`` to the
field ``text`` (and then only mapped columns feed ``text``); mapping a column to ``"extra"``
keeps it out of every field.

Row numbers in errors are what a person sees: for CSV/TSV/XLSX the spreadsheet row (the
header is row 1 in a plain file, the first data row row 2; rows above a skipped title line
count too); for JSONL the line number; for a ``.json`` list the 1-based position of the
object. Row-level problems are collected for the whole file (up to 100) and raised together
as one :class:`InputErrors`; nothing from that file is returned. Field names in row errors
are the column header as written in the file; in missing-column errors, our field name.

Control characters other than tab and newline are removed from every cell, carriage returns
become newlines, and cells are stripped of surrounding white space. Cells longer than
20,000 characters are an error.
"""

from __future__ import annotations

import codecs
import csv
import datetime as _dt
import gzip
import hashlib
import io
import json
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InputError, InputErrors, UnknownNameError
from .records import PARTNER_TYPES, Capability, Demand, Partner

__all__ = [
    "Task",
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

MAX_CELL_CHARS = 20_000  # user files; a spreadsheet cell beyond this is a paste accident
TASK_MAX_CELL_CHARS = 1_000_000  # canonical task files hold real texts up to ~33k characters
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
_CTRL_OR_CR = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff]")
_LIST_SPLIT = re.compile(r"[,，;；、|]")


# --------------------------------------------------------------------------------------
# field synonyms


def _norm(header: str) -> str:
    """Header key: NFKC, case-folded, without spaces, ``_ - * :`` and surrounding dots."""
    h = unicodedata.normalize("NFKC", str(header)).casefold()
    return re.sub(r"[\s_\-*:：.。]+", "", h)


def _norm_loose(header: str) -> str:
    """Header key with parenthesised notes removed: ``需求描述(500字以内)`` -> ``需求描述``."""
    h = unicodedata.normalize("NFKC", str(header))
    h = re.sub(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】|〔[^〕]*〕|<[^>]*>|《[^》]*》", "", h)
    return _norm(h)


@dataclass(frozen=True)
class _Syn:
    field: str
    rank: int
    tag: str  # a hint: partner-name class, title kind, contact role ...


def _syn_index(table: dict[str, list[str | tuple[str, str]]]) -> dict[str, list[_Syn]]:
    index: dict[str, list[_Syn]] = {}
    for fld, names in table.items():
        for rank, item in enumerate(names):
            name, tag = item if isinstance(item, tuple) else (item, "")
            hits = index.setdefault(_norm(name), [])
            if all(h.field != fld for h in hits):
                hits.append(_Syn(fld, rank, tag))
    return index


_DEMAND_SYNONYMS: dict[str, list[str | tuple[str, str]]] = {
    "id": ["需求编号", "编号", "序号", "ID", "demand id", "需求ID", "No"],
    "title": ["需求名称", "需求标题", "项目名称", "标题", "title", "名称", "name"],
    "text": [
        "需求描述", "需求内容", "技术需求", "问题描述", "描述", "内容", "text",
        "description", "problem", "需求详情", "具体需求", "技术难题", "需求简介", "details",
        "content", "body", "abstract",
    ],
    "industry": [
        "所属行业", "行业", "产业", "所属产业", "industry", "sector", "行业领域", "所属领域",
        "技术领域", "领域",
    ],
    "region": [
        "所在县区", "县区", "所在地区", "地区", "区县", "county", "district", "region",
        "所属县区", "所在地", "县(市、区)", "县市区",
    ],
    "enterprise": [
        "企业名称", "单位名称", "需求单位", "企业", "enterprise", "company", "公司名称",
        "需求企业", "需求方", "organization", "organisation",
    ],
    "contact": [
        ("联系人", "person"), ("contact", "person"), ("contact person", "person"),
        ("负责人", "person"), ("联系方式", "phone"), ("联系电话", "phone"),
        ("联系人电话", "phone"), ("电话", "phone"), ("手机", "phone"), ("手机号", "phone"),
        ("phone", "phone"), ("telephone", "phone"), ("tel", "phone"), ("邮箱", "email"),
        ("电子邮箱", "email"), ("email", "email"), ("e-mail", "email"),
    ],
    "confidential": ["是否保密", "保密", "密级", "confidential", "保密要求", "是否公开"],
    "date": [
        "日期", "发布日期", "提交日期", "征集日期", "date", "发布时间", "提交时间", "填报日期",
        "时间",
    ],
    "language": ["语言", "lang", "language", "语种"],
}

# Capability columns whose text is appended, labelled, to the capability text.
_AUX_TEXT: list[str | tuple[str, str]] = [
    ("研究方向", ""), ("主要研究方向", ""), ("研究领域", ""), ("专利", "patent"),
    ("发明专利", "patent"), ("授权专利", "patent"), ("专利情况", "patent"),
    ("专利名称", "patent"), ("知识产权", "patent"), ("patents", "patent"),
    ("patent", "patent"), ("设备", "equipment"), ("仪器设备", "equipment"),
    ("主要设备", "equipment"), ("科研设备", "equipment"), ("仪器", "equipment"),
    ("equipment", "equipment"), ("平台", ""), ("科研平台", ""), ("研究平台", ""),
    ("代表性成果", ""), ("主要成果", ""), ("技术优势", ""), ("应用领域", ""),
    ("应用范围", ""), ("应用前景", ""), ("关键词", ""), ("keywords", ""),
    ("research direction", ""), ("research area", ""), ("research line", ""),
]

_INSTITUTION_NAMES = [
    "单位名称", "依托单位", "机构名称", "所属单位", "单位", "机构", "institute",
    "university", "institution", "organization", "organisation", "partner", "partner name",
    "高校", "院校", "学校",
]
_TEAM_NAMES = ["团队", "团队名称", "team", "team name", "科研团队", "创新团队", "课题组", "实验室"]

_CAPABILITY_SYNONYMS: dict[str, list[str | tuple[str, str]]] = {
    "id": ["成果编号", "编号", "ID", "序号", "capability id", "成果ID", "No"],
    "partner_id": ["单位编号", "团队编号", "partner id", "机构编号", "团队ID", "单位ID"],
    "partner_name": [(n, "inst") for n in _INSTITUTION_NAMES] + [(n, "team") for n in _TEAM_NAMES],
    "title": [
        ("成果名称", "achievement"), ("研究方向", "research line"), ("名称", ""), ("标题", ""),
        ("title", ""), ("name", ""), ("项目名称", "achievement"), ("技术名称", "achievement"),
        ("专利名称", "patent"), ("设备名称", "equipment"), ("主要研究方向", "research line"),
        ("research direction", "research line"),
    ],
    "text": [
        "成果简介", "简介", "技术内容", "描述", "研究内容", "内容", "text", "description",
        "abstract", "content", "成果描述", "成果内容", "技术简介", "团队简介", "details",
    ],
    "kind": ["类型", "成果类型", "kind", "type", "类别"],
    "industries": [
        "行业标签", "所属行业", "应用行业", "行业", "industries", "industry", "产业",
        "sector", "行业领域",
    ],
    "language": ["语言", "lang", "language", "语种"],
    "aux": _AUX_TEXT,
}

_PARTNER_SYNONYMS: dict[str, list[str | tuple[str, str]]] = {
    "id": ["单位编号", "团队编号", "机构编号", "partner id", "编号", "ID"],
    "name": [(n, "inst") for n in _INSTITUTION_NAMES + ["名称", "name"]]
    + [(n, "team") for n in _TEAM_NAMES],
    "type": ["类型", "单位类型", "机构类型", "单位性质", "type", "kind", "类别"],
    "region": ["所在地区", "地区", "所在地", "县区", "所在县区", "region", "city", "城市", "省份",
               "province"],
    "country": ["国家", "国别", "country", "国家/地区"],
}

_KIND_FIELDS = {
    "demand": ["id", "title", "text", "industry", "region", "enterprise", "contact",
               "confidential", "date", "language"],
    "capability": ["id", "partner_id", "partner_name", "title", "text", "kind", "industries",
                   "language"],
    "partner": ["id", "name", "type", "region", "country"],
}
_MULTI_FIELDS = {"text", "contact", "industries", "aux", "partner_name", "name"}
_SYNONYMS = {"demand": _DEMAND_SYNONYMS, "capability": _CAPABILITY_SYNONYMS,
             "partner": _PARTNER_SYNONYMS}
_INDEX = {kind: _syn_index(table) for kind, table in _SYNONYMS.items()}

_CONFIDENTIAL = {
    "是": True, "否": False, "yes": True, "no": False, "true": True, "false": False, "1": True,
    "0": False, "y": True, "n": False, "保密": True, "公开": False, "": False, "不保密": False,
    "非保密": False, "t": True, "f": False,
}
_LANGUAGES = {
    "中文": "zh", "汉语": "zh", "简体中文": "zh", "chinese": "zh", "zh-cn": "zh", "zh_cn": "zh",
    "zh-hans": "zh", "英文": "en", "英语": "en", "english": "en", "俄语": "ru", "俄文": "ru",
    "russian": "ru",
}
_KINDS = {
    "专利": "patent", "发明专利": "patent", "实用新型": "patent", "实用新型专利": "patent",
    "设备": "equipment", "仪器": "equipment", "仪器设备": "equipment", "成果": "achievement",
    "科技成果": "achievement", "研究方向": "research line",
}
_PARTNER_TYPES = {
    "高校": "university", "大学": "university", "学院": "university", "高等院校": "university",
    "院校": "university", "college": "university", "研究所": "institute",
    "研究院": "institute", "科研院所": "institute", "院所": "institute",
    "research institute": "institute", "团队": "team", "创新团队": "team", "科研团队": "team",
    "企业": "enterprise", "公司": "enterprise", "company": "enterprise", "其他": "other",
}


# --------------------------------------------------------------------------------------
# reading tables


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
        raise InputError("file not found", file=source) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a file", file=source) from None
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
            file=source,
        )
    return ext


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
            raise InputError(f"not a valid gzip file: {e}", file=source) from None
        ext = ext[: -len(".gz")]
    if sheet is not None and ext not in _EXCEL_EXTS:
        raise InputError(f"a sheet ({sheet!r}) was given but {ext} files have no sheets",
                         file=source)
    if not re.search(rb"\S", data):
        raise InputError("the file is empty", file=source)
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
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise _decode_error(data, bad, source, "UTF-8 or GB18030/GBK") from None


def _decode_error(data: bytes, offset: int, source: str, tried: str) -> InputError:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return InputError(
        f"cannot decode as {tried}: byte 0x{data[offset]:02X} at line {line}, column {column} "
        f"(byte offset {offset} from the start of the file, counting from 0) is invalid; "
        "save the file as UTF-8 (Excel: 'CSV UTF-8') and try again",
        file=source,
        row=line,
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
    import openpyxl  # imported lazily: only Excel uploads need it

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # a damaged zip raises zlib.error, EOFError, NotImplementedError ... too
        raise InputError(f"not a valid .xlsx file ({type(e).__name__}: {e})", file=source) from None
    try:
        names = wb.sheetnames
        if sheet is None:
            ws = wb.worksheets[0] if wb.worksheets else None
            if ws is None:
                raise InputError("the workbook has no worksheet", file=source)
        elif isinstance(sheet, int):
            if not 0 <= sheet < len(wb.worksheets):
                raise InputError(f"no sheet number {sheet} (0-based); sheets: {', '.join(names)}",
                                 file=source)
            ws = wb.worksheets[sheet]
        elif sheet in names:
            ws = wb[sheet]
        else:
            raise InputError(f"no sheet named '{sheet}'; sheets: {', '.join(names)}", file=source)
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()  # some writers store a wrong <dimension>
        rows: list[list[str]] = []
        numbers: list[int] = []
        for r, cells in enumerate(ws.iter_rows(min_row=1), start=1):
            values = [_excel_cell(c) for c in cells]
            while values and values[-1] == "":
                values.pop()
            rows.append(values)
            numbers.append(r)
    except InputError:
        raise
    except Exception as e:  # openpyxl raises many types on malformed parts
        raise InputError(f"cannot read the workbook ({type(e).__name__}: {e})",
                         file=source) from None
    finally:
        wb.close()
    if not any(rows):
        raise InputError(f"sheet '{ws.title}' is empty", file=source)
    return _table_from_rows(rows, numbers, source, strict_width=False)


def _excel_cell(cell: Any) -> str:
    v = getattr(cell, "value", None)
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        fmt = getattr(cell, "number_format", "") or ""
        if re.fullmatch(r"0+", fmt) and v >= 0:
            return str(v).zfill(len(fmt))
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return ""
        if v.is_integer() and abs(v) < 1e16:
            return str(int(v))
        return format(v, ".15g")
    if isinstance(v, _dt.datetime):
        if v.time() == _dt.time(0):
            return v.date().isoformat()
        return v.isoformat(sep=" ")
    if isinstance(v, (_dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, _dt.timedelta):
        return str(v)
    return str(v)


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
    nonempty = [sum(1 for c in r if c.strip()) for r in rows]
    header_at = None
    for i, n in enumerate(nonempty[:10]):
        if n >= 2:
            header_at = i
            break
    if header_at is None:
        header_at = next((i for i, n in enumerate(nonempty) if n), None)
    if header_at is None:
        raise InputError("the file has no header row (it is blank)", file=source)
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
            if any(c.strip() for c in r[width:]):
                errors.append(InputError(
                    f"has {len(r)} cells but the header has {width}: is a comma or tab inside "
                    "a cell not quoted?", file=source, row=num))
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
        if name in unnamed and not any(c.strip() for c in col):
            continue
        frame[name] = col
    return _frame(frame, keep_numbers)


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


# --------------------------------------------------------------------------------------
# column resolution


@dataclass
class _Columns:
    fields: dict[str, list[str]]  # field -> columns feeding it, in use order
    tags: dict[str, str]  # column -> synonym tag
    extra: list[str]
    mapped: set[str]  # fields set by the caller's mapping


def _resolve(df: pd.DataFrame, kind: str, mapping: Mapping[str, str] | None,
             source: str) -> _Columns:
    valid = _KIND_FIELDS[kind]
    columns = [str(c) for c in df.columns]
    if len(set(columns)) != len(columns):
        dups = sorted({c for c in columns if columns.count(c) > 1})
        raise InputError(f"duplicate column names: {', '.join(dups)}", file=source)
    fields: dict[str, list[str]] = {}
    tags: dict[str, str] = {}
    used: set[str] = set()
    mapped: set[str] = set()
    extra_forced: list[str] = []
    for their, ours in (mapping or {}).items():
        if ours not in valid and ours != "extra":
            raise UnknownNameError("field", str(ours), valid + ["extra"])
        col = _find_column(str(their), columns)
        if col is None:
            raise InputError(
                f"mapping names column '{their}', which is not in the file; columns: "
                + ", ".join(repr(c) for c in columns),
                file=source, field=str(ours))
        if col in used:
            raise InputError(f"mapping uses column '{col}' twice", file=source, field=str(ours))
        used.add(col)
        if ours == "extra":
            extra_forced.append(col)
            continue
        if ours in fields and ours not in _MULTI_FIELDS:
            raise InputError(f"mapping maps both '{fields[ours][0]}' and '{col}' to '{ours}'",
                             file=source, field=ours)
        fields.setdefault(ours, []).append(col)
        mapped.add(ours)

    index = _INDEX[kind]
    candidates: dict[str, list[tuple[int, int, str, str]]] = {}
    for pos, col in enumerate(columns):
        if col in used:
            continue
        hits = index.get(_norm(col)) or index.get(_norm_loose(col)) or []
        for h in hits:
            if h.field not in mapped:
                candidates.setdefault(h.field, []).append((h.rank, pos, col, h.tag))
    order = [f for f in valid if f not in ("text",)] + ["text", "aux"]
    if kind == "capability" and "text" in mapped:
        order.remove("aux")  # the caller said exactly what the text is
    for fld in order:
        cands = [c for c in candidates.get(fld, []) if c[2] not in used]
        if not cands:
            continue
        if fld in ("partner_name", "name"):
            chosen = []
            for cls in ("inst", "team"):
                best = min((c for c in cands if c[3] == cls), default=None)
                if best:
                    chosen.append(best)  # institution before team, whatever the column order
        elif fld == "contact":
            chosen = sorted(cands)  # person before phone before e-mail
        elif fld in ("aux", "industries"):
            chosen = sorted(cands, key=lambda c: c[1])
        elif fld == "text":
            best = min(cands)
            chosen = [best] + sorted((c for c in cands if c is not best), key=lambda c: c[1])
        else:
            chosen = [min(cands)]
        fields[fld] = [c[2] for c in chosen]
        for c in chosen:
            used.add(c[2])
            tags[c[2]] = c[3]
    extra = [c for c in columns if c not in used] + extra_forced
    return _Columns(fields, tags, extra, mapped)


def _find_column(name: str, columns: list[str]) -> str | None:
    if name in columns:
        return name
    hits = [c for c in columns if c.strip().casefold() == name.strip().casefold()]
    if len(hits) == 1:
        return hits[0]
    hits = [c for c in columns if _norm(c) == _norm(name)]
    return hits[0] if len(hits) == 1 else None


def _missing(source: str, field: str, kind: str, df: pd.DataFrame, why: str = "") -> InputError:
    names = [n if isinstance(n, str) else n[0] for n in _SYNONYMS[kind].get(field, [])][:6]
    cols = ", ".join(repr(str(c)) for c in df.columns)
    return InputError(
        f"no {field} column{why}: name one {' / '.join(names)} or pass "
        f"mapping={{'<your column>': '{field}'}}; the file's columns are: {cols}",
        file=source, field=field)


# --------------------------------------------------------------------------------------
# cleaning and validating cells


class _Checker:
    """Collects row errors for one file and cleans columns in bulk."""

    def __init__(self, df: pd.DataFrame, source: str, max_cell: int = MAX_CELL_CHARS) -> None:
        self.source = source
        self.max_cell = max_cell
        self.n = len(df)
        if df.index.name == ROW_INDEX_NAME and pd.api.types.is_integer_dtype(df.index):
            self.rows = [int(r) for r in df.index]
        else:
            self.rows = list(range(2, self.n + 2))  # spreadsheet convention: header is row 1
        self.df = df
        self._pos = {str(c): i for i, c in enumerate(df.columns)}
        self.errors: list[InputError] = []
        self._cache: dict[str, list[str]] = {}

    def col(self, name: str) -> list[str]:
        """The cleaned cells of a column: str, control characters removed, stripped."""
        if name in self._cache:
            return self._cache[name]
        s = self.df.iloc[:, self._pos[name]]
        values = [v if type(v) is str else _any_cell(v) for v in s.tolist()]
        joined = "\n".join(values)
        if _CTRL_OR_CR.search(joined):
            values = [_CTRL.sub("", v).replace("\r\n", "\n").replace("\r", "\n")
                      if _CTRL_OR_CR.search(v) else v for v in values]
        values = [v.strip() for v in values]
        if max(map(len, values), default=0) > self.max_cell:
            for i, v in enumerate(values):
                if len(v) > self.max_cell:
                    self.error(i, name, f"cell has {len(v):,} characters; the limit is "
                               f"{self.max_cell:,}")
        self._cache[name] = values
        return values

    def error(self, i: int, field: str, message: str) -> None:
        self.errors.append(InputError(message, file=self.source, row=self.rows[i], field=field))

    def duplicates(self, ids: list[str], field: str) -> None:
        first: dict[str, int] = {}
        for i, v in enumerate(ids):
            if not v:
                continue
            j = first.setdefault(v, i)
            if j != i:
                self.error(i, field, f"duplicate id '{v}' (also in row {self.rows[j]})")

    def raise_if_any(self) -> None:
        if self.errors:
            raise _errors(self.errors, self.source)


def _any_cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    try:
        if pd.isna(v):
            return ""
    except (TypeError, ValueError):
        pass
    return _json_cell(v) if isinstance(v, (bool, int, float, list, dict)) else str(v)


def _label(header: str, value: str) -> str:
    sep = ": " if header.isascii() else "："
    return f"{header}{sep}{value}"


def _combine(chk: _Checker, cols: list[str], *, labelled_from: int) -> list[str]:
    """Join several columns row-wise; columns from ``labelled_from`` on get their header."""
    if not cols:
        return [""] * chk.n
    if len(cols) == 1 and labelled_from >= 1:
        return chk.col(cols[0])
    parts = [chk.col(c) for c in cols]
    out = []
    for i in range(chk.n):
        pieces = []
        for j, c in enumerate(cols):
            v = parts[j][i]
            if v:
                pieces.append(v if j < labelled_from else _label(c, v))
        out.append("\n".join(pieces))
    return out


def _first(chk: _Checker, cols: _Columns, field: str) -> list[str]:
    names = cols.fields.get(field)
    return chk.col(names[0]) if names else [""] * chk.n


def _extras(chk: _Checker, cols: _Columns) -> list[dict[str, str]]:
    if not cols.extra:
        return [{} for _ in range(chk.n)]
    values = [(c, chk.col(c)) for c in cols.extra]
    return [{c: v[i] for c, v in values if v[i]} for i in range(chk.n)]


def _require_rows(df: pd.DataFrame, source: str) -> None:
    if len(df) == 0:
        raise InputError("the file has a header but no data rows", file=source)


def _language(value: str) -> str:
    v = value.strip()
    return _LANGUAGES.get(v.casefold(), v.lower() if v.isascii() else v)


# --------------------------------------------------------------------------------------
# demands


def load_demands(
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    sheet: str | int | None = None,
) -> list[Demand]:
    """Read and validate a demand file (see :func:`parse_demands` for the rules)."""
    return parse_demands(read_table(path, sheet=sheet), source=str(path), mapping=mapping)


def parse_demands(
    df: pd.DataFrame, *, source: str, mapping: Mapping[str, str] | None = None
) -> list[Demand]:
    """Validate an already-read table into demands; all-or-nothing.

    Required columns: ``id``, ``title`` and ``text`` (after synonyms and ``mapping``). Every
    row needs a non-empty id, unique in the file, and a non-empty title or text.

    The id is never invented: a demand's id is how the bureau, the enterprise and the
    feedback log refer to it, and an id derived from the row's content would silently change
    whenever someone fixes a typo. So the table must have an id column: one of the id
    synonyms (需求编号, 编号, ID ...), a ``序号`` (row sequence number) column, which is
    accepted as the id, or any column the caller names with ``mapping={"工单号": "id"}``.

    Several text columns (e.g. 需求描述 and 问题描述) are joined: the best-matching one first,
    the others labelled with their header. Contact person, phone and e-mail columns are
    joined with spaces ("张三 13800000000"). ``confidential`` accepts 是/否, yes/no,
    true/false, 1/0, Y/N, 保密/公开 (empty means not confidential). Unknown columns go into
    ``extra`` (non-empty cells only). ``df``'s index gives row numbers when it is
    :func:`read_table`'s ``"row"`` index; otherwise row i (0-based) is reported as i + 2.
    """
    return _parse_demands(df, source=source, mapping=mapping)


def _parse_demands(df: pd.DataFrame, *, source: str, mapping: Mapping[str, str] | None,
                   default_language: str = "", max_cell: int = MAX_CELL_CHARS) -> list[Demand]:
    cols = _resolve(df, "demand", mapping, source)
    for fld in ("id", "title", "text"):
        if fld not in cols.fields:
            raise _missing(source, fld, "demand", df)
    _require_rows(df, source)
    chk = _Checker(df, source, max_cell)
    id_col = cols.fields["id"][0]
    ids = chk.col(id_col)
    title_col = cols.fields["title"][0]
    titles = chk.col(title_col)
    texts = _combine(chk, cols.fields["text"], labelled_from=1)
    for i in range(chk.n):
        if not ids[i]:
            chk.error(i, id_col, "empty id")
        if not titles[i] and not texts[i]:
            chk.error(i, cols.fields["text"][0], f"empty: needs a title ('{title_col}') or a text")
    chk.duplicates(ids, id_col)
    confidential = [False] * chk.n
    if "confidential" in cols.fields:
        c = cols.fields["confidential"][0]
        for i, v in enumerate(chk.col(c)):
            flag = _CONFIDENTIAL.get(v.casefold())
            if flag is None:
                chk.error(i, c, f"'{v}' is not a yes/no value (是/否, 保密/公开, yes/no, 1/0)")
            else:
                confidential[i] = flag
    contact = _contact(chk, cols.fields.get("contact", []))
    industry = _first(chk, cols, "industry")
    region = _first(chk, cols, "region")
    enterprise = _first(chk, cols, "enterprise")
    date = _first(chk, cols, "date")
    language = _first(chk, cols, "language")
    extras = _extras(chk, cols)
    chk.raise_if_any()
    lang_cache: dict[str, str] = {}
    out = []
    for i in range(chk.n):
        lang = language[i]
        if lang:
            lang = lang_cache.get(lang) or lang_cache.setdefault(lang, _language(lang))
        out.append(Demand(
            id=ids[i], title=titles[i], text=texts[i], industry=industry[i], region=region[i],
            enterprise=enterprise[i], contact=contact[i], confidential=confidential[i],
            date=date[i], language=lang or default_language, extra=extras[i]))
    return out


def _contact(chk: _Checker, cols: list[str]) -> list[str]:
    if not cols:
        return [""] * chk.n
    parts = [chk.col(c) for c in cols]
    out = []
    for i in range(chk.n):
        seen: list[str] = []
        for p in parts:
            if p[i] and p[i] not in seen:
                seen.append(p[i])
        out.append(" ".join(seen))
    return out


# --------------------------------------------------------------------------------------
# capabilities and partners


def partner_id_for(name: str) -> str:
    """The stable id derived from a partner name: ``"p-"`` + 10 hex digits of its SHA-1.

    The name is NFKC-normalised, case-folded and its white space collapsed first, so
    ``"齐齐哈尔大学 "`` and ``"齐齐哈尔大学"`` give the same id.
    """
    key = " ".join(unicodedata.normalize("NFKC", name).casefold().split())
    return "p-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]


def _partner_names(chk: _Checker, cols: list[str]) -> list[str]:
    """Institution and team columns joined: "齐齐哈尔大学 / 玉米深加工团队"."""
    if len(cols) == 1:
        return chk.col(cols[0])
    parts = [chk.col(c) for c in cols]
    return [" / ".join(p[i] for p in parts if p[i]) for i in range(chk.n)]


def load_capabilities(
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    sheet: str | int | None = None,
) -> list[Capability]:
    """Read and validate a capability file (see :func:`parse_capabilities` for the rules)."""
    return parse_capabilities(read_table(path, sheet=sheet), source=str(path), mapping=mapping)


def parse_capabilities(
    df: pd.DataFrame, *, source: str, mapping: Mapping[str, str] | None = None
) -> list[Capability]:
    """Validate an already-read table into capabilities; all-or-nothing.

    Required columns: a partner name or a partner id, and a title or a text. Each row needs
    a partner (name or id) and a non-empty title or text.

    * ``partner_name``: an institution column (单位名称, 依托单位, 机构名称 ...) and a team
      column (团队, 团队名称 ...) are joined as ``"齐齐哈尔大学 / 玉米深加工团队"``.
    * ``partner_id``: when the column is missing or a cell is empty it is derived from the
      partner name with :func:`partner_id_for`, so one name always gives one id (also in
      :func:`parse_partners`).
    * ``id``: 成果编号, 编号, ID or ``序号``; a capability table without any id column
      (a bureau sheet of 单位名称, 团队, 研究方向, 成果简介, 专利) gets content-derived ids
      ``"c-"`` + 12 hex digits of SHA-1(partner id, title, text): stable while the row's text
      is unchanged; identical rows then show up as duplicate ids.
    * ``text``: the main text column (成果简介, 简介, 描述 ...) unlabelled, then every other
      text-ish column (研究方向 when it is not the title, 专利, 设备, 平台, 代表性成果 ...)
      as ``"header：value"`` lines.
    * ``kind``: 类型/成果类型 when present (专利 -> patent, 设备 -> equipment, 成果 ->
      achievement, others as given); otherwise inferred from the table: a 研究方向 title
      means "research line", 成果名称 "achievement", 专利名称 / only patent columns "patent",
      设备名称 / only equipment columns "equipment".
    * ``industries``: split on , ， ; ； 、 | (or a JSON list).

    Unknown columns go into ``extra`` (non-empty cells only). Row numbers as in
    :func:`parse_demands`.
    """
    return _parse_capabilities(df, source=source, mapping=mapping)


def _parse_capabilities(
    df: pd.DataFrame, *, source: str, mapping: Mapping[str, str] | None,
    default_language: str = "", max_cell: int = MAX_CELL_CHARS,
) -> list[Capability]:
    cols = _resolve(df, "capability", mapping, source)
    f = cols.fields
    if "partner_name" not in f and "partner_id" not in f:
        raise _missing(source, "partner_name", "capability", df, " (nor a partner_id column)")
    if "title" not in f and "text" not in f and "aux" not in f:
        raise _missing(source, "text", "capability", df, " (nor a title column)")
    _require_rows(df, source)
    chk = _Checker(df, source, max_cell)
    pnames = _partner_names(chk, f["partner_name"]) if "partner_name" in f else [""] * chk.n
    pid_col = f["partner_id"][0] if "partner_id" in f else None
    pids = list(chk.col(pid_col)) if pid_col else [""] * chk.n
    title_col = f["title"][0] if "title" in f else None
    titles = chk.col(title_col) if title_col else [""] * chk.n
    text_cols = f.get("text", []) + f.get("aux", [])
    texts = _combine(chk, text_cols, labelled_from=len(f.get("text", [])[:1]))
    partner_field = (f.get("partner_name") or [pid_col])[0]
    id_cache: dict[str, str] = {}
    for i in range(chk.n):
        if not pids[i]:
            if pnames[i]:
                pid = id_cache.get(pnames[i])
                if pid is None:
                    pid = id_cache.setdefault(pnames[i], partner_id_for(pnames[i]))
                pids[i] = pid
            else:
                chk.error(i, partner_field, "empty: needs a partner name or partner id")
        if not titles[i] and not texts[i]:
            chk.error(i, (text_cols or [title_col])[0], "empty: needs a title or a text")
    if "id" in f:
        id_col = f["id"][0]
        ids = chk.col(id_col)
        for i, v in enumerate(ids):
            if not v:
                chk.error(i, id_col, "empty id")
    else:
        id_col = "id"
        ids = [
            "c-" + hashlib.sha1("\x1f".join((pids[i], titles[i], texts[i])).encode("utf-8"))
            .hexdigest()[:12]
            for i in range(chk.n)
        ]
    chk.duplicates(ids, id_col)
    kinds = _kinds(chk, cols)
    industries = _industries(chk, f.get("industries", []))
    language = _first(chk, cols, "language")
    extras = _extras(chk, cols)
    chk.raise_if_any()
    out = []
    for i in range(chk.n):
        lang = language[i]
        out.append(Capability(
            id=ids[i], partner_id=pids[i], title=titles[i], text=texts[i],
            partner_name=pnames[i], kind=kinds[i], industries=industries[i],
            language=_language(lang) if lang else default_language, extra=extras[i]))
    return out


def _kinds(chk: _Checker, cols: _Columns) -> list[str]:
    f = cols.fields
    hint = ""
    if "title" in f and "title" not in cols.mapped:
        hint = cols.tags.get(f["title"][0], "")
    elif "title" not in f and "text" not in f and f.get("aux"):
        aux_tags = {cols.tags.get(c, "") for c in f["aux"]}
        hint = aux_tags.pop() if len(aux_tags) == 1 else ""
    if "kind" not in f:
        return [hint] * chk.n
    return [_KINDS.get(v, v) if v else hint for v in chk.col(f["kind"][0])]


def _industries(chk: _Checker, cols: list[str]) -> list[tuple[str, ...]]:
    if not cols:
        return [()] * chk.n
    parts = [chk.col(c) for c in cols]
    cache: dict[str, tuple[str, ...]] = {}
    out = []
    for i in range(chk.n):
        items: list[str] = []
        for p in parts:
            v = p[i]
            if not v:
                continue
            if v not in cache:
                cache[v] = _split_list(v)
            for x in cache[v]:
                if x not in items:
                    items.append(x)
        out.append(tuple(items))
    return out


def _split_list(value: str) -> tuple[str, ...]:
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return tuple(dict.fromkeys(s for s in (_json_cell(x).strip() for x in parsed) if s))
    return tuple(dict.fromkeys(s for s in (x.strip() for x in _LIST_SPLIT.split(value)) if s))


def load_partners(
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    sheet: str | int | None = None,
) -> list[Partner]:
    """Read and validate a partner file (see :func:`parse_partners` for the rules)."""
    return parse_partners(read_table(path, sheet=sheet), source=str(path), mapping=mapping)


def parse_partners(
    df: pd.DataFrame, *, source: str, mapping: Mapping[str, str] | None = None
) -> list[Partner]:
    """Validate an already-read table into partners; all-or-nothing.

    Required: a name column or an id column; every row needs a name or an id, ids unique.
    A missing id is derived from the name with :func:`partner_id_for` (the same id the
    capability loader derives, so the two files join); institution and team columns are
    joined as in :func:`parse_capabilities`. ``type`` values are mapped onto
    ``PARTNER_TYPES`` (高校/大学 -> university, 研究所/研究院 -> institute, 团队 -> team,
    企业/公司 -> enterprise); an unrecognised value becomes "other" and is kept verbatim in
    ``extra`` under the column's header; with no type given it is guessed from the name
    (…大学/学院, …研究所/研究院, …公司, a team column) or left empty.
    """
    cols = _resolve(df, "partner", mapping, source)
    f = cols.fields
    if "name" not in f and "id" not in f:
        raise _missing(source, "name", "partner", df, " (nor an id column)")
    _require_rows(df, source)
    chk = _Checker(df, source)
    names = _partner_names(chk, f["name"]) if "name" in f else [""] * chk.n
    has_team = any(cols.tags.get(c) == "team" for c in f.get("name", []))
    id_col = f["id"][0] if "id" in f else "id"
    ids = list(chk.col(id_col)) if "id" in f else [""] * chk.n
    for i in range(chk.n):
        if not ids[i]:
            if names[i]:
                ids[i] = partner_id_for(names[i])
            else:
                chk.error(i, (f.get("name") or [id_col])[0], "empty: needs a name or an id")
    chk.duplicates(ids, id_col)
    type_col = f["type"][0] if "type" in f else None
    raw_types = chk.col(type_col) if type_col else [""] * chk.n
    region = _first(chk, cols, "region")
    country = _first(chk, cols, "country")
    extras = _extras(chk, cols)
    chk.raise_if_any()
    out = []
    for i in range(chk.n):
        ptype, extra = _partner_type(raw_types[i], names[i], has_team), extras[i]
        if raw_types[i] and ptype == "other" and raw_types[i].casefold() not in ("other", "其他"):
            extra = {**extra, str(type_col): raw_types[i]}
        out.append(Partner(id=ids[i], name=names[i] or ids[i], type=ptype, region=region[i],
                           country=country[i], extra=extra))
    return out


def _partner_type(raw: str, name: str, has_team: bool) -> str:
    if raw:
        v = raw.casefold()
        if v in PARTNER_TYPES:
            return v
        return _PARTNER_TYPES.get(v, _PARTNER_TYPES.get(raw, "other"))
    last = name.split(" / ")[-1] if name else ""
    if (has_team and " / " in name) or last.endswith(("团队", "课题组", "实验室")):
        return "team"
    if last.endswith(("大学", "学院", "学校", "University", "College")):
        return "university"
    if last.endswith(("研究所", "研究院", "研究中心", "科学院", "Institute")):
        return "institute"
    if last.endswith(("公司", "集团", "厂", "Inc.", "Ltd.", "LLC", "Corp.")):
        return "enterprise"
    return ""


# --------------------------------------------------------------------------------------
# qrels and tasks

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
