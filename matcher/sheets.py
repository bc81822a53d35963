"""Spreadsheet cells that are safe to open: no formulas, nothing a worksheet cannot hold."""

from __future__ import annotations

import re
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def safe_cell(value: Any) -> Any:
    """Neutralise spreadsheet formula injection: text starting with = + - @ (or a tab or
    carriage return, which some spreadsheets skip) gets a leading apostrophe, and control
    characters a worksheet cannot hold are dropped. Numbers (numpy's too) and booleans pass
    through as plain Python values."""
    if isinstance(value, str):
        value = _NOT_IN_XML.sub("", value)
        return "'" + value if value[:1] in FORMULA_STARTS else value
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        return value.item()  # numpy scalar
    return value


def safe_text(value: object) -> str:
    """For CSV, where every cell is text and any character can be held: only the formula
    guard of `safe_cell`."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in FORMULA_STARTS else text
