"""The child process of `matcher.io.xlsx`: reads one worksheet's cells with openpyxl.

Run by path (`python -I xlsx_child.py`), so it imports nothing of techmatch: a pickled
(bytes, sheet) on stdin, a pickled ("ok", (rows, row numbers, title)) or ("error", message) on
stdout. Only the standard library and openpyxl.
"""

from __future__ import annotations

import datetime as _dt
import os
import pickle
import re
import signal
import sys
import threading
import time
from typing import Any


def _main() -> None:
    """The child: a pickled (bytes, sheet) on stdin, a pickled ("ok", rows) or ("error", message) on stdout."""
    parent = os.getppid()
    data, sheet, timeout = pickle.loads(sys.stdin.buffer.read())
    # Never outlive the deadline or the parent (a server stopped on SIGTERM): SIGALRM's default
    # action ends the process even inside C code; the watchdog notices an orphaned reader.
    signal.alarm(int(timeout) + 2)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    try:
        result = ("ok", read_sheet(data, sheet))
    except SheetError as e:
        result = ("error", str(e))
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(3)


class SheetError(Exception):
    """A workbook that cannot be read, with the message for the user."""


def read_sheet(data: bytes, sheet: str | int | None) -> tuple[list[list[str]], list[int], str]:
    """(rows of cell strings, 1-based row numbers, title) of one worksheet; every failure is a
    SheetError with a message for the user."""
    try:
        return _read(data, sheet)
    except SheetError:
        raise
    except Exception as e:  # openpyxl raises many types on malformed parts
        raise SheetError(f"cannot read the workbook ({type(e).__name__}: {e})") from None


def _read(data: bytes, sheet: str | int | None) -> tuple[list[list[str]], list[int], str]:
    import io

    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # a damaged zip raises zlib.error, EOFError, NotImplementedError ... too
        raise SheetError(f"not a valid .xlsx file ({type(e).__name__}: {e})") from None
    try:
        names = wb.sheetnames
        if sheet is None:
            if not wb.worksheets:
                raise SheetError("the workbook has no worksheet")
            ws = wb.worksheets[0]
        elif isinstance(sheet, int):
            if not 0 <= sheet < len(wb.worksheets):
                raise SheetError(f"no sheet number {sheet} (0-based); sheets: {', '.join(names)}")
            ws = wb.worksheets[sheet]
        elif sheet in names:
            ws = wb[sheet]
        else:
            raise SheetError(f"no sheet named '{sheet}'; sheets: {', '.join(names)}")
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()  # some writers store a wrong <dimension>
        rows: list[list[str]] = []
        numbers: list[int] = []
        for r, cells in enumerate(ws.iter_rows(min_row=1), start=1):
            values = [excel_cell(c) for c in cells]
            while values and values[-1] == "":
                values.pop()
            rows.append(values)
            numbers.append(r)
        return rows, numbers, ws.title
    finally:
        wb.close()


def excel_cell(cell: Any) -> str:
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


if __name__ == "__main__":
    _main()
