"""Read demands, capabilities and partners from the files people have.

Reading a file into a table of strings (formats, text decoding, title lines, row numbers) is
:mod:`matcher.io.tables`; matching its headers to our fields (synonyms, ``mapping``) is
:mod:`matcher.io.columns`; evaluation tasks and qrels are :mod:`matcher.io.tasks`, which builds
on this module (never the other way round). This module cleans and validates the cells into
records, and re-exports the table readers.

Row numbers in errors, and how a file's row-level problems are raised together (nothing from
that file is returned), are as :mod:`matcher.io.tables` describes. Field names in row errors are
the column header as written in the file; in missing-column errors, our field name.

Control characters other than tab and newline are removed from every cell, carriage returns
become newlines, and cells are stripped of surrounding white space. Cells longer than
20,000 characters are an error.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from matcher import taxonomy
from matcher.dates import DateError, normalise_date
from matcher.errors import InputError
from matcher.io.columns import _Columns, _missing, _resolve
from matcher.io.tables import _CTRL, MAX_CELL_CHARS, ROW_INDEX_NAME, _errors, _json_cell, read_table, read_table_bytes
from matcher.io.tables import MAX_ERRORS as MAX_ERRORS
from matcher.io.tables import SUPPORTED_EXTENSIONS as SUPPORTED_EXTENSIONS
from matcher.io.tables import decode_text as decode_text
from matcher.records import PARTNER_TYPES, Capability, Demand, Partner

__all__ = [
    "Carried",
    "carried_fields",
    "load_capabilities",
    "load_demands",
    "load_partners",
    "parse_capabilities",
    "parse_demands",
    "parse_partners",
    "partner_id_for",
    "read_table",
    "read_table_bytes",
]

# _CTRL plus carriage returns, which cells turn into newlines.
_CTRL_OR_CR = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff]")
_LIST_SPLIT = re.compile(r"[,，;；、|]")

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
                               f"{self.max_cell:,}", code="cell_too_long", length=len(v), limit=self.max_cell)
        self._cache[name] = values
        return values

    def error(self, i: int, field: str, message: str, code: str | None = None, **params: object) -> None:
        self.errors.append(InputError(message, file=self.source, row=self.rows[i], field=field, code=code,
                                      params=params))

    def duplicates(self, ids: list[str], field: str) -> None:
        first: dict[str, int] = {}
        for i, v in enumerate(ids):
            if not v:
                continue
            j = first.setdefault(v, i)
            if j != i:
                self.error(i, field, f"duplicate id '{v}' (also in row {self.rows[j]})", code="duplicate_id",
                           value=v, other_row=self.rows[j])

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
        raise InputError("the file has a header but no data rows", file=source, code="no_data_rows")


def _language(value: str) -> str:
    v = value.strip()
    return _LANGUAGES.get(v.casefold(), v.lower() if v.isascii() else v)


# --------------------------------------------------------------------------------------
# what a file carries (for updates that change only that)


@dataclass(frozen=True)
class Carried:
    """The record fields a table has columns for, and its extra (unknown) columns."""

    fields: frozenset[str]
    extra_columns: frozenset[str]


_KIND_NAMES = {"demands": "demand", "capabilities": "capability", "partners": "partner"}


def carried_fields(df: pd.DataFrame, kind: str, *, source: str = "",
                   mapping: Mapping[str, str] | None = None) -> Carried:
    """Which fields of `kind` ("demands", "capabilities", "partners") a table fills, as the
    parser resolves its headers. A capability's ``text`` is carried by any text-ish column,
    its ``partner_id`` by a partner id or name column (the id is derived from the name), its
    ``kind`` by a kind column or a header that implies one (研究方向, 专利名称 ...)."""
    name = _KIND_NAMES[kind]
    cols = _resolve(df, name, mapping, source)
    fields = set(cols.fields)
    if name == "capability":
        if "aux" in fields:
            fields.add("text")
        if "partner_name" in fields:
            fields.add("partner_id")
        if _kind_hint(cols):
            fields.add("kind")
        fields &= {"id", "partner_id", "partner_name", "title", "text", "kind", "industries", "language"}
    return Carried(frozenset(fields), frozenset(cols.extra))


# --------------------------------------------------------------------------------------
# demands


def load_demands(
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    sheet: str | int | None = None,
    max_cell: int = MAX_CELL_CHARS,
    known_values: bool = False,
) -> list[Demand]:
    """Read and validate a demand file (see :func:`parse_demands` for the rules)."""
    return parse_demands(read_table(path, sheet=sheet), source=str(path), mapping=mapping, max_cell=max_cell,
                         known_values=known_values)


def parse_demands(
    df: pd.DataFrame, *, source: str, mapping: Mapping[str, str] | None = None, max_cell: int = MAX_CELL_CHARS,
    known_values: bool = False,
) -> list[Demand]:
    """Validate an already-read table into demands; all-or-nothing.

    Required columns: ``id``, ``title`` and ``text`` (after synonyms and ``mapping``). Every
    row needs a non-empty id, unique in the file, and a non-empty description (``text``): a
    title alone says too little to match and would still get confident-looking matches.

    ``date`` is normalised to ISO 8601 (:func:`matcher.dates.normalise_date`: 2026年3月5日,
    2026/3/5, 2026.03 ...); a value that is not a date is a row error. With
    ``known_values=True`` (the bureau's own sheets: the service and ``techmatch ingest``)
    ``industry`` and ``region`` must be empty or one of :mod:`matcher.taxonomy`'s values,
    written any known way, and are stored under their canonical names; anything else is a row
    error naming the known values.

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
    return _parse_demands(df, source=source, mapping=mapping, max_cell=max_cell, known_values=known_values)


def _parse_demands(df: pd.DataFrame, *, source: str, mapping: Mapping[str, str] | None,
                   default_language: str = "", max_cell: int = MAX_CELL_CHARS,
                   known_values: bool = False) -> list[Demand]:
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
            chk.error(i, id_col, "empty id", code="empty_id")
        if not texts[i]:
            chk.error(i, cols.fields["text"][0], "empty description (需求描述为空): describe the problem; "
                      "a title alone cannot be matched", code="empty_text")
    chk.duplicates(ids, id_col)
    confidential = [False] * chk.n
    if "confidential" in cols.fields:
        c = cols.fields["confidential"][0]
        for i, v in enumerate(chk.col(c)):
            flag = _CONFIDENTIAL.get(v.casefold())
            if flag is None:
                chk.error(i, c, f"'{v}' is not a yes/no value (是/否, 保密/公开, yes/no, 1/0)", code="not_yes_no",
                          value=v)
            else:
                confidential[i] = flag
    contact = _contact(chk, cols.fields.get("contact", []))
    industry = _first(chk, cols, "industry")
    region = _first(chk, cols, "region")
    enterprise = _first(chk, cols, "enterprise")
    date = _dates(chk, cols)
    if known_values:
        industry = _known(chk, cols, "industry", industry)
        region = _known(chk, cols, "region", region)
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


def _dates(chk: _Checker, cols: _Columns) -> list[str]:
    """The date column normalised to ISO 8601; a value that is not a date is a row error."""
    values = _first(chk, cols, "date")
    if "date" not in cols.fields:
        return values
    out, cache = [], {}
    for i, v in enumerate(values):
        if v not in cache:
            try:
                cache[v] = normalise_date(v)
            except DateError as exc:
                cache[v] = None
                chk.error(i, cols.fields["date"][0], str(exc), code="bad_date", value=v)
                continue
        elif cache[v] is None:
            chk.error(i, cols.fields["date"][0], f"'{v}' is not a date (日期无法识别); write it like "
                      "2026-03-05, 2026/3/5, 2026年3月5日, 2026.03", code="bad_date", value=v)
        out.append(cache[v] or "")
    return out


def _known(chk: _Checker, cols: _Columns, field: str, values: list[str]) -> list[str]:
    """Industry or region values as their canonical taxonomy names; unknown ones are row errors."""
    if field not in cols.fields:
        return values
    out = []
    for i, v in enumerate(values):
        canon = taxonomy.canonical(field, v)
        if canon is None:
            chk.error(i, cols.fields[field][0], taxonomy.unknown_message(field, v), code=f"unknown_{field}",
                      value=v, known="、".join(taxonomy.known_values(field)))
        out.append(canon or "")
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
    max_cell: int = MAX_CELL_CHARS,
) -> list[Capability]:
    """Read and validate a capability file (see :func:`parse_capabilities` for the rules)."""
    return parse_capabilities(read_table(path, sheet=sheet), source=str(path), mapping=mapping, max_cell=max_cell)


def parse_capabilities(
    df: pd.DataFrame, *, source: str, mapping: Mapping[str, str] | None = None, max_cell: int = MAX_CELL_CHARS
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
    return _parse_capabilities(df, source=source, mapping=mapping, max_cell=max_cell)


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
                chk.error(i, partner_field, "empty: needs a partner name or partner id", code="empty_partner")
        if not titles[i] and not texts[i]:
            chk.error(i, (text_cols or [title_col])[0], "empty: needs a title or a text", code="empty_title_text")
    if "id" in f:
        id_col = f["id"][0]
        ids = chk.col(id_col)
        for i, v in enumerate(ids):
            if not v:
                chk.error(i, id_col, "empty id", code="empty_id")
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


def _kind_hint(cols: _Columns) -> str:
    """The kind a table's headers imply (研究方向 -> research line ...), or ""."""
    f = cols.fields
    if "title" in f and "title" not in cols.mapped:
        return cols.tags.get(f["title"][0], "")
    if "title" not in f and "text" not in f and f.get("aux"):
        aux_tags = {cols.tags.get(c, "") for c in f["aux"]}
        return aux_tags.pop() if len(aux_tags) == 1 else ""
    return ""


def _kinds(chk: _Checker, cols: _Columns) -> list[str]:
    f = cols.fields
    hint = _kind_hint(cols)
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
                chk.error(i, (f.get("name") or [id_col])[0], "empty: needs a name or an id", code="empty_name_or_id")
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
