"""Plain records the engine works on. Ids are strings; optional fields default to empty."""

from __future__ import annotations

from dataclasses import dataclass, field

PARTNER_TYPES = ("university", "institute", "team", "enterprise", "other")


@dataclass(frozen=True)
class Demand:
    """An enterprise's technical problem."""

    id: str
    title: str
    text: str
    industry: str = ""
    region: str = ""  # county or district
    enterprise: str = ""
    contact: str = ""
    confidential: bool = False
    date: str = ""  # ISO 8601 date, as given
    language: str = ""  # ISO 639-1 when known ("zh", "en", "ru")
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def full_text(self) -> str:
        """Title and description together: what gets embedded and scored."""
        return join_title_text(self.title, self.text)


@dataclass(frozen=True)
class Capability:
    """One thing a partner can do: a research line, an achievement, a patent, equipment."""

    id: str
    partner_id: str
    title: str
    text: str
    partner_name: str = ""
    kind: str = ""  # research line, achievement, patent, equipment ...
    industries: tuple[str, ...] = ()
    language: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def full_text(self) -> str:
        return join_title_text(self.title, self.text)


@dataclass(frozen=True)
class Partner:
    """A university, institute, team or enterprise that owns capabilities."""

    id: str
    name: str
    type: str = ""  # one of PARTNER_TYPES when known
    region: str = ""
    country: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


def updated_record(old, new, fields: frozenset[str] | set[str], extra_keys: frozenset[str] | set[str]):
    """`old` with only what a file carries taken from `new` (same id and kind).

    fields: the record fields the file has a column for (an empty cell there empties the
    field: the file says so); extra_keys: the file's extra columns (an empty cell removes the
    key). Everything else, e.g. another sheet's ``title_en`` or a language the file has no
    column for, keeps its stored value."""
    from dataclasses import replace

    changes = {f: getattr(new, f) for f in fields if f not in ("id", "extra")}
    extra = {k: v for k, v in old.extra.items() if k not in extra_keys}
    extra.update(new.extra)
    return replace(old, **changes, extra=extra)


def join_title_text(title: str, text: str) -> str:
    title, text = (title or "").strip(), (text or "").strip()
    if not title:
        return text
    if not text or text.startswith(title):
        return text or title
    return f"{title}. {text}" if title[-1:].isascii() else f"{title}。{text}"


def partners_from_capabilities(capabilities: list[Capability]) -> list[Partner]:
    """The partners named by a list of capabilities, in first-seen order."""
    seen: dict[str, Partner] = {}
    for cap in capabilities:
        if cap.partner_id not in seen:
            seen[cap.partner_id] = Partner(id=cap.partner_id, name=cap.partner_name or cap.partner_id)
    return list(seen.values())


RECORD_TYPES = {"demands": Demand, "capabilities": Capability, "partners": Partner}


def to_dict(record: Demand | Capability | Partner) -> dict:
    """A JSON-ready dict (tuples become lists)."""
    from dataclasses import asdict

    return asdict(record)


def from_dict(kind: str, data: dict) -> Demand | Capability | Partner:
    """Inverse of `to_dict` for kind 'demands', 'capabilities' or 'partners'."""
    cls = RECORD_TYPES[kind]
    if cls is Capability:
        data = {**data, "industries": tuple(data.get("industries") or ())}
    return cls(**data)


def write_records(path, records) -> None:
    """Write records as JSONL, atomically."""
    import json

    from matcher.fsutil import atomic_file

    with atomic_file(path) as fh:  # a line at a time: 42k capabilities are 67 MB of JSON
        for r in records:
            fh.write((json.dumps(to_dict(r), ensure_ascii=False) + "\n").encode("utf-8"))


def read_records(path, kind: str) -> list:
    """Records written by `write_records` (our own files; user files go through `ingest`)."""
    import json

    with open(path, encoding="utf-8") as fh:
        return [from_dict(kind, json.loads(line)) for line in fh if line.strip()]
