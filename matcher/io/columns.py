"""Match a table's headers to our fields: synonym tables and column resolution.

Headers are matched to fields through English and Chinese synonyms, ignoring case, spaces,
``_``/``-``, a required-marker ``*``, a trailing colon and (as a fallback) a parenthesised
note such as ``需求描述（500字以内）``. ``mapping`` overrides the synonyms:
``{"Problem": "text"}`` maps the column ``Problem`` to the field ``text`` (and then only
mapped columns feed ``text``); mapping a column to ``"extra"`` keeps it out of every field.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from matcher.errors import InputError, UnknownNameError

if TYPE_CHECKING:
    import pandas as pd


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
        raise InputError(f"duplicate column names: {', '.join(dups)}", file=source, code="duplicate_columns",
                         params={"names": ", ".join(dups)})
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
        file=source, field=field, code="missing_column",
        params={"field": field, "names": " / ".join(names), "columns": cols})
