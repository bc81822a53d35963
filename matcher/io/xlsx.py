"""Reading an .xlsx sheet's cells in a child process, bounded in time.

openpyxl's XML parsing can take minutes on a crafted sheet well under the size limit (time grows
faster than linearly with some layouts), and C code cannot be interrupted from Python. So the
sheet is read in a short-lived child process that is killed at the deadline: the caller gets a
clear error, and a server stays responsive and stops on SIGTERM whatever the upload holds.
The child is `xlsx_child.py`, run by path (it imports only the standard library and openpyxl).

A workbook whose parts unpack to at most `IN_PROCESS_MAX_BYTES` is read in this process by the
same function: such a sheet parses in well under a second (1 MB of sheet XML took 0.21 s in the
probe), while starting the child costs a fresh interpreter and openpyxl's import for every file.
Python's zipfile never inflates a member beyond the size its directory declares, so a workbook
that declares small parts cannot unpack to more.
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

from matcher.errors import InputError
from matcher.settings import xlsx_timeout_seconds

IN_PROCESS_MAX_BYTES = 2 * 1024 * 1024


def unpacked_size(data: bytes) -> int | None:
    """The bytes a workbook's parts declare they unpack to; None when it is not a zip file."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return sum(info.file_size for info in z.infolist())
    except Exception:  # a damaged directory raises BadZipFile, NotImplementedError, EOFError ... too
        return None


def read_rows(data: bytes, source: str, sheet: str | int | None,
              timeout: float | None = None) -> tuple[list[list[str]], list[int], str]:
    """(rows of cell strings, their 1-based row numbers, the sheet title) of one worksheet.
    `timeout`: seconds (default $TECHMATCH_XLSX_TIMEOUT, 30)."""
    size = unpacked_size(data)
    if size is None or size <= IN_PROCESS_MAX_BYTES:
        return _read_here(data, source, sheet)
    timeout = timeout or xlsx_timeout_seconds()
    # run by path: the child imports openpyxl and the standard library only, not this package
    child = Path(__file__).with_name("xlsx_child.py")
    proc = subprocess.Popen([sys.executable, "-I", str(child)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(pickle.dumps((data, sheet, timeout)), timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise InputError(f"reading the workbook took longer than {timeout:g} s; save it as CSV, or "
                         f"split it / 读取工作簿超过 {timeout:g} 秒，请另存为 CSV 或拆分", file=source) from None
    finally:
        if proc.poll() is None:  # interrupted (a server stopping): never leave the reader behind
            proc.kill()
            proc.wait()
    try:
        kind, payload = pickle.loads(out)
    except Exception:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise InputError(f"cannot read the workbook (the reader stopped: {tail[0][:200]})", file=source) from None
    if kind == "error":
        raise _error(payload, source)
    return payload


def _read_here(data: bytes, source: str, sheet: str | int | None) -> tuple[list[list[str]], list[int], str]:
    import matcher.io.xlsx_child as xlsx_child

    try:
        return xlsx_child.read_sheet(data, sheet)
    except xlsx_child.SheetError as e:
        raise _error(str(e), source) from None


def _error(message: str, source: str) -> InputError:
    return InputError(message, file=source, code="not_xlsx" if message.startswith("not a valid .xlsx") else None)
