"""Pipeline spreadsheets: rows of (demand, partner, status, reason code, amount, note) staff keep in
Excel, read into validated changes (all or nothing, each problem named by row and column), and
the pairs of a conference run's assignment.csv."""

from __future__ import annotations

import csv
import io

from pydantic import ValidationError

from matcher.errors import InputError, InputErrors
from service.schemas import FeedbackCreate

HEADERS = {
    "demand_id": ("demand_id", "demand", "demand id", "需求编号", "需求id", "需求"),
    "partner_id": ("partner_id", "partner", "partner id", "合作方编号", "合作方id", "合作方", "单位编号"),
    "status": ("status", "状态", "进展"),
    "reason_code": ("reason_code", "reason code", "原因代码", "原因类别", "拒绝原因"),
    "amount": ("amount", "contract amount", "金额", "合同金额"),
    "reason": ("reason", "note", "notes", "说明", "备注"),
}
STATUS_WORDS = {
    "已推荐": "suggested", "推荐": "suggested", "已联系": "contacted", "联系": "contacted",
    "已见面": "meeting_held", "已会谈": "meeting_held", "已对接": "meeting_held", "见面": "meeting_held",
    "达成合作": "agreed", "已签约": "agreed", "签约": "agreed", "合作": "agreed",
    "企业拒绝": "declined_enterprise", "企业放弃": "declined_enterprise",
    "合作方拒绝": "declined_partner", "单位拒绝": "declined_partner",
}
REASON_WORDS = {
    "领域不符": "wrong_field", "方向不符": "wrong_field", "距离太远": "too_far", "太远": "too_far",
    "费用太高": "too_expensive", "太贵": "too_expensive", "无力承接": "no_capacity", "没有能力": "no_capacity",
    "无能力承接": "no_capacity", "问题已解决": "already_solved", "已解决": "already_solved", "其他": "other",
}


def _column_map(columns: list[str], source: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for col in columns:
        key = col.strip().lower().replace("_", " ")
        for field, names in HEADERS.items():
            if key in {n.replace("_", " ") for n in names}:
                found[field] = col
    missing = [f for f in ("demand_id", "partner_id", "status") if f not in found]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; found: {', '.join(columns)}", file=source)
    return found


def parse_pipeline_sheet(data: bytes, name: str) -> tuple[list[FeedbackCreate], list[int]]:
    """Validated changes in row order and their row numbers; InputErrors naming every bad row and
    field otherwise."""
    from matcher.io.tables import read_table_bytes  # pandas: only when a sheet is imported

    frame = read_table_bytes(data, name)
    cols = _column_map([str(c) for c in frame.columns], name)
    items: list[FeedbackCreate] = []
    numbers: list[int] = []
    problems: list[InputError] = []
    for number, row in zip(frame.index, frame.to_dict("records")):
        raw = {f: str(row.get(c) or "").strip() for f, c in cols.items()}
        raw["status"] = STATUS_WORDS.get(raw["status"], raw["status"].lower())
        if "reason_code" in raw:
            raw["reason_code"] = REASON_WORDS.get(raw["reason_code"], raw["reason_code"].lower())
        amount = raw.pop("amount", "")
        body: dict = {k: v for k, v in raw.items()}
        if amount:
            try:
                body["amount"] = float(amount.replace(",", "").replace("，", ""))
            except ValueError:
                problems.append(InputError(f"not a number: {amount!r}", file=name, row=int(number),
                                           field=cols["amount"]))
                continue
        try:
            items.append(FeedbackCreate(**body))
            numbers.append(int(number))
        except ValidationError as exc:
            for e in exc.errors():
                field = str(e["loc"][0]) if e["loc"] else None
                problems.append(InputError(e["msg"].removeprefix("Value error, "), file=name, row=int(number),
                                           field=cols.get(field, field) if field else None))
    if problems:
        raise InputErrors(problems, file=name)
    if not items:
        raise InputError("no rows", file=name)
    return items, numbers


def read_conference_pairs(data: bytes) -> list[tuple[str, str]]:
    """(demand_id, partner_id) of every meeting in a conference run's assignment.csv."""
    text = data.decode("utf-8-sig")
    return [(r["demand_id"], r["partner_id"]) for r in csv.DictReader(io.StringIO(text))
            if r.get("demand_id") and r.get("partner_id")]
