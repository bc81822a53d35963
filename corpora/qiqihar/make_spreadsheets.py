"""Turn the Qiqihar demo corpus (JSONL) into the spreadsheets a bureau would actually send.

Writes, next to the JSONL files by default:

* ``spreadsheets/demands.xlsx``       demands with Chinese headers (需求编号 ... 发布日期)
* ``spreadsheets/capabilities.xlsx``  capabilities with Chinese headers (成果编号 ... 语言)
* ``spreadsheets/capabilities_gbk.csv``  the Chinese-language capabilities only, GBK-encoded,
  as Excel on a Chinese Windows would export them (GBK cannot encode Russian)

Every output is written to a temporary file in the target folder and moved into place with
``os.replace``, so a failed run never leaves a half-written spreadsheet behind.

Usage::

    python corpora/qiqihar/make_spreadsheets.py [--corpus DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent

DEMAND_COLUMNS: dict[str, str] = {
    "id": "需求编号",
    "title": "需求名称",
    "text": "需求描述",
    "industry": "所属行业",
    "region": "所在县区",
    "enterprise": "企业名称",
    "contact": "联系人",
    "confidential": "是否保密",
    "date": "发布日期",
}

CAPABILITY_COLUMNS: dict[str, str] = {
    "id": "成果编号",
    "partner_id": "单位编号",
    "partner_name": "单位名称",
    "title": "成果名称",
    "text": "成果简介",
    "kind": "成果类型",
    "industries": "行业标签",
    "language": "语言",
}

# Characters outside GBK that hand-typed Chinese text commonly contains, and the plain
# substitute a GBK export would need. Anything else outside GBK is an error, not a guess.
GBK_SUBSTITUTES: dict[str, str] = {
    "\u00a0": " ",  # no-break space
    "\u2009": " ",  # thin space
    "\u202f": " ",  # narrow no-break space
    "\u2013": "-",  # en dash
    "\u2212": "-",  # minus sign
    "\u00b2": "2",  # superscript two
    "\u00b3": "3",  # superscript three
    "\u207b": "-",  # superscript minus
    "\u00b9": "1",  # superscript one
}


def read_jsonl(path: Path) -> list[dict[str, object]]:
    """Read one JSON object per non-blank line; name the line on a parse error."""
    records: list[dict[str, object]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
    return records


def _cell(value: object) -> str:
    """Flatten a JSON value into spreadsheet text (lists become ';'-joined tags)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return str(value)


def to_frame(records: Iterable[dict[str, object]], columns: dict[str, str]) -> pd.DataFrame:
    """Keep the given fields in order, renamed to their Chinese headers."""
    rows = [{header: _cell(rec.get(key)) for key, header in columns.items()} for rec in records]
    return pd.DataFrame(rows, columns=list(columns.values()))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a temporary path in the target's folder, then move it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}-", suffix=target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_xlsx(frame: pd.DataFrame, target: Path, sheet: str) -> None:
    """One sheet, frozen header row, column widths roughly fitted to Chinese text."""

    def write(tmp: Path) -> None:
        with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
            frame.to_excel(writer, sheet_name=sheet, index=False)
            ws = writer.sheets[sheet]
            ws.freeze_panes = "A2"
            for idx, header in enumerate(frame.columns, start=1):
                longest = max([len(header), *(len(v) for v in frame[header].head(200))])
                letter = ws.cell(row=1, column=idx).column_letter
                ws.column_dimensions[letter].width = min(max(8, longest * 2 + 2), 80)

    atomic_write(target, write)


def gbk_safe(frame: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """Substitute the known stray characters; fail naming the record if any other is left."""
    table = str.maketrans(GBK_SUBSTITUTES)
    clean = frame.apply(lambda column: column.str.translate(table))
    for col in clean.columns:
        for row, value in clean[col].items():
            try:
                value.encode("gbk")
            except UnicodeEncodeError as exc:
                bad = value[exc.start : exc.end]
                raise SystemExit(
                    f"capability {ids[row]}, column {col}: {bad!r} (U+{ord(bad[0]):04X}) "
                    "cannot be encoded in GBK"
                ) from exc
    return clean


def write_gbk_csv(frame: pd.DataFrame, target: Path) -> None:
    """GBK, comma-separated, CRLF line ends, no BOM: what Excel's 'CSV (逗号分隔)' produces."""

    def write(tmp: Path) -> None:
        frame.to_csv(tmp, index=False, encoding="gbk", lineterminator="\r\n")

    atomic_write(target, write)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=Path, default=HERE, help="folder with demands.jsonl and capabilities.jsonl"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: CORPUS/spreadsheets)"
    )
    args = parser.parse_args(argv)
    corpus: Path = args.corpus
    out: Path = args.out or corpus / "spreadsheets"

    for name in ("demands.jsonl", "capabilities.jsonl"):
        if not (corpus / name).is_file():
            parser.error(f"{corpus / name} not found")
    demands = read_jsonl(corpus / "demands.jsonl")
    capabilities = read_jsonl(corpus / "capabilities.jsonl")

    demand_frame = to_frame(demands, DEMAND_COLUMNS)
    cap_frame = to_frame(capabilities, CAPABILITY_COLUMNS)
    zh_mask = cap_frame["语言"] == "zh"
    zh_frame = gbk_safe(cap_frame[zh_mask], cap_frame.loc[zh_mask, "成果编号"])

    write_xlsx(demand_frame, out / "demands.xlsx", "技术需求")
    write_xlsx(cap_frame, out / "capabilities.xlsx", "科技成果")
    write_gbk_csv(zh_frame, out / "capabilities_gbk.csv")

    print(
        f"{len(demand_frame)} demands, {len(cap_frame)} capabilities "
        f"({len(zh_frame)} in Chinese, written to the GBK CSV) -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
