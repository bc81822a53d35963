"""Dates as people write them in the bureau's sheets, normalised to ISO 8601.

    normalise_date("2026年3月5日") -> "2026-03-05"
    normalise_date("2026/3/5")     -> "2026-03-05"
    normalise_date("2026.03")      -> "2026-03"       (a month is kept as a month)
    normalise_date("明年三月")      -> DateError

Accepted: year-month-day with ``-``, ``/`` or ``.`` (one- or two-digit month and day), the
Chinese 年/月/日 (or 号) form, 8 digits (20260305), the same without a day (a month) or a bare
year (2026, 2026年), a spreadsheet's date-time (``2026-03-05 00:00:00``, ``2026-03-05T08:30``),
and English month names ("March 5, 2026", "5 Mar 2026"). Full-width digits are fine. The date
must exist (2026-02-30 is refused) and lie in 1900..2100. Base layer: imports nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

FORMS_HINT = "2026-03-05, 2026/3/5, 2026年3月5日, 2026.03"

_YMD = re.compile(r"(\d{4})\s*(?:[-/.]\s*(\d{1,2})\s*(?:[-/.]\s*(\d{1,2}))?)?")
_CHINESE = re.compile(r"(\d{4})\s*年\s*(?:(\d{1,2})\s*月\s*(?:(\d{1,2})\s*[日号]?)?)?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})?")
_TIME = re.compile(r"(?:[T\s]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)$")
_MONTHS = {m: i + 1 for i, names in enumerate(
    ("january jan", "february feb", "march mar", "april apr", "may", "june jun", "july jul",
     "august aug", "september sep sept", "october oct", "november nov", "december dec"))
    for m in names.split()}
_EN_MDY = re.compile(r"([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})")
_EN_DMY = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]+)\.?,?\s+(\d{4})")
_EN_MY = re.compile(r"([a-z]+)\.?,?\s+(\d{4})")


class DateError(ValueError):
    """A value that is not a date in any accepted form (the message says which forms are)."""


def normalise_date(value: str) -> str:
    """ISO 8601 ("YYYY-MM-DD", "YYYY-MM" or "YYYY") for a date in an accepted form; "" stays ""."""
    text = unicodedata.normalize("NFKC", value or "").strip()
    if not text:
        return ""
    parts = _parse(_TIME.sub("", text).strip().casefold())
    if parts is None:
        raise DateError(f"'{value}' is not a date (日期无法识别); write it like {FORMS_HINT}")
    year, month, day = parts
    if not 1900 <= year <= 2100:
        raise DateError(f"'{value}': the year {year} is out of range (年份超出范围)")
    try:
        dt.date(year, month or 1, day or 1)
    except ValueError:
        raise DateError(f"'{value}' is not a real date (日期不存在); write it like {FORMS_HINT}") from None
    if month is None:
        return f"{year:04d}"
    return f"{year:04d}-{month:02d}" if day is None else f"{year:04d}-{month:02d}-{day:02d}"


def _parse(text: str) -> tuple[int, int | None, int | None] | None:
    for pattern in (_CHINESE, _YMD, _COMPACT):
        m = pattern.fullmatch(text)
        if m:
            y, mo, d = m.groups()
            return int(y), int(mo) if mo else None, int(d) if d else None
    m = _EN_MDY.fullmatch(text)
    if m and m.group(1) in _MONTHS:
        return int(m.group(3)), _MONTHS[m.group(1)], int(m.group(2))
    m = _EN_DMY.fullmatch(text)
    if m and m.group(2) in _MONTHS:
        return int(m.group(3)), _MONTHS[m.group(2)], int(m.group(1))
    m = _EN_MY.fullmatch(text)
    if m and m.group(1) in _MONTHS:
        return int(m.group(2)), _MONTHS[m.group(1)], None
    return None
