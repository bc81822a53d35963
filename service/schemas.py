"""Request and response schemas: one family per resource (Create, Update, Public ...)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from matcher import taxonomy
from matcher.dates import DateError, normalise_date

Role = Literal["admin", "staff", "institute", "enterprise"]
ROLES: tuple[str, ...] = ("admin", "staff", "institute", "enterprise")
# The pipeline of a pair. "accepted" and "rejected" are the first API's statuses, still accepted
# (an agreement and a decline whose side is not known).
FeedbackStatus = Literal["suggested", "contacted", "meeting_held", "agreed", "declined_enterprise",
                         "declined_partner", "accepted", "rejected"]
FEEDBACK_STATUSES: tuple[str, ...] = ("suggested", "contacted", "meeting_held", "agreed", "declined_enterprise",
                                      "declined_partner", "accepted", "rejected")
PIPELINE_STATUSES: tuple[str, ...] = FEEDBACK_STATUSES[:6]  # what the pages offer
DECLINES: frozenset[str] = frozenset({"declined_enterprise", "declined_partner", "rejected"})
ReasonCode = Literal["", "wrong_field", "too_far", "too_expensive", "no_capacity", "already_solved", "other"]
REASON_CODES: tuple[str, ...] = ("wrong_field", "too_far", "too_expensive", "no_capacity", "already_solved", "other")
PartnerType = Literal["university", "institute", "team", "enterprise", "other", ""]
ImportKind = Literal["demands", "capabilities", "partners"]
ImportMode = Literal["update", "replace"]


# Every input rule that JSON Schema can say is said in the OpenAPI schema, in a form every regex
# engine reads alike (ECMA 262 for clients, Python for the server, ASCII-only classes in some
# generators): white space is spelled out as exactly the characters Python's str.isspace() and
# re's \s take, never `\s`. A request the schema allows is then never refused as invalid.
WS = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NO_NUL_PATTERN = r"^[^\x00]*$"
# some character that is neither white space nor NUL, and no NUL anywhere
NONBLANK_PATTERN = rf"^[^\x00]*[^\x00{WS}][^\x00]*$"

# Ids travel in URL paths and are printed: no white space, slashes, '?', '#' or '%', no control,
# format or bidirectional-override characters (two ids must never print the same), not '.' or '..'.
ID_RULE = ("ids are 1-128 characters without white space, control or bidi characters or / \\ ? # %, "
           "and not '.' or '..'")
_ID_CHAR = (rf"[^{WS}/\\?#%\x00-\x1f\x7f-\x9f\u00ad\u061c\u200b-\u200f\u202a-\u202e\u2060-\u206f"
            r"\ufeff\ufff9-\ufffb]")
_ID_RE = re.compile(_ID_CHAR + "{1,128}")
ID_PATTERN = f"^{_ID_CHAR}{{1,128}}$"
ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": ID_PATTERN,
             "not": {"enum": [".", ".."]}, "description": ID_RULE}


def id_is_valid(value: str) -> bool:
    return bool(_ID_RE.fullmatch(value)) and value not in (".", "..")


def _valid_id(value: str) -> str:
    if not id_is_valid(value):
        raise ValueError(ID_RULE)
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text cannot contain the NUL character (U+0000)")
    return value


def _nonblank(message: str):
    def check(value: str) -> str:
        if not value.strip():
            raise ValueError(message)
        return value
    return AfterValidator(check)


def free_text(max_length: int, *, nonblank: bool = False, strip: bool = False, description: str | None = None,
              blank_message: str = "cannot be empty or only white space"):
    """A free-text type: at most `max_length` characters and never a NUL (PostgreSQL cannot store
    one); `nonblank`: some character other than white space; `strip`: stored without surrounding
    white space (the length is that of the text as sent). Its OpenAPI schema states each rule."""
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length,
                              "pattern": NONBLANK_PATTERN if nonblank else NO_NUL_PATTERN}
    if nonblank:
        schema["minLength"] = 1
    if description:
        schema["description"] = description
    parts: list[Any] = [StringConstraints(max_length=max_length), AfterValidator(_no_nul)]
    if strip:
        parts.append(AfterValidator(str.strip))
    if nonblank:
        parts.append(_nonblank(blank_message))
    return Annotated[(str, *parts, WithJsonSchema(schema))]


NO_NUL = AfterValidator(_no_nul)
IdStr = Annotated[str, AfterValidator(_valid_id), WithJsonSchema(ID_SCHEMA)]
Short = free_text(500)
# industry, region: indexed columns
Tag = free_text(200)
LongText = free_text(20_000)
Language = free_text(16)
MAX_EXTRA_KEYS = 100
MAX_EXTRA_CHARS = 100_000


def _bounded_extra(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_EXTRA_KEYS:
        raise ValueError(f"extra has {len(value)} fields; the limit is {MAX_EXTRA_KEYS}")
    size = sum(len(k) + len(v) for k, v in value.items())
    if size > MAX_EXTRA_CHARS:
        raise ValueError(f"extra holds {size:,} characters; the limit is {MAX_EXTRA_CHARS:,}")
    return value


# The total size (MAX_EXTRA_CHARS over keys and values together) is the one rule of `extra` JSON
# Schema cannot state; the description says it.
Extra = Annotated[dict[Annotated[str, StringConstraints(max_length=200), NO_NUL],
                       Annotated[str, StringConstraints(max_length=20_000), NO_NUL]],
                  AfterValidator(_bounded_extra),
                  WithJsonSchema({"type": "object", "maxProperties": MAX_EXTRA_KEYS,
                                  "propertyNames": {"type": "string", "maxLength": 200, "pattern": NO_NUL_PATTERN},
                                  "additionalProperties": {"type": "string", "maxLength": 20_000,
                                                           "pattern": NO_NUL_PATTERN},
                                  "description": f"free fields; keys and values together at most "
                                                 f"{MAX_EXTRA_CHARS:,} characters"})]


def _as_utc(value: dt.datetime) -> dt.datetime:
    """The database stores UTC without a zone; answers say so (`...Z`/`+00:00`)."""
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


UtcDateTime = Annotated[dt.datetime, AfterValidator(_as_utc)]


def _canonical(kind: str):
    def check(value: str) -> str:
        canon = taxonomy.canonical(kind, value)
        if canon is None:
            raise ValueError(taxonomy.unknown_message(kind, value))
        return canon
    return AfterValidator(check)


def _iso_date(value: str) -> str:
    try:
        return normalise_date(value)
    except DateError as exc:
        raise ValueError(str(exc)) from None


def _taxonomy_schema(kind: str) -> WithJsonSchema:
    what = {"industry": "an industry of the bureau's list", "region": "a county or district of the city"}[kind]
    return WithJsonSchema({"type": "string", "enum": ["", *taxonomy.spellings(kind)],
                           "description": f"empty, or {what} in any of its names (stored as its canonical "
                                          "Chinese name; case and spacing do not matter)"})


# An ISO 8601 year, month or day that exists, 1900-2100 (leap years included); the server also
# takes the other forms `matcher.dates` reads (2026/3/5, 2026年3月5日, ...) and stores them as these.
_YEAR = "(?:19[0-9][0-9]|20[0-9][0-9]|2100)"
_LEAP = "(?:(?:19|20)(?:0[48]|[2468][048]|[13579][26])|2000)"
DATE_PATTERN = (f"^(?:{_YEAR}(?:-(?:0[1-9]|1[0-2]))?"
                f"|{_YEAR}-(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
                f"|{_YEAR}-(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
                f"|{_YEAR}-02-(?:0[1-9]|1[0-9]|2[0-8])"
                f"|{_LEAP}-02-29)?$")
_DATE_SCHEMA = WithJsonSchema({"type": "string", "maxLength": 32, "pattern": DATE_PATTERN,
                               "description": "empty, or YYYY, YYYY-MM or YYYY-MM-DD (1900-2100); also accepted: "
                                              "2026/3/5, 2026.3.5, 2026年3月5日, 20260305, March 5, 2026"})

# A demand's industry and county/district: empty or a known value (`matcher.taxonomy`), stored
# under its canonical name; its date: any accepted form (`matcher.dates`), stored as ISO 8601.
# industry, region: indexed columns of 200 characters; canonical names from the taxonomy
Industry = Annotated[str, StringConstraints(max_length=200), NO_NUL, _canonical("industry"),
                     _taxonomy_schema("industry")]
Region = Annotated[str, StringConstraints(max_length=200), NO_NUL, _canonical("region"), _taxonomy_schema("region")]
PartnerName = free_text(500, nonblank=True, strip=True)
QueryText = free_text(20_000, nonblank=True)
Reason = free_text(2000, strip=True)
Country = free_text(64)
Kind = free_text(100)
TokenName = free_text(200, nonblank=True, strip=True)
EnterpriseName = free_text(500, nonblank=True)
DEMAND_NEEDS_TEXT = "a demand needs a description (text, 需求描述); a title alone cannot be matched"
DemandText = free_text(20_000, nonblank=True, blank_message=DEMAND_NEEDS_TEXT,
                       description="the demand's description (需求描述): a title alone cannot be matched")
# "some text" over two fields, for `json_schema_extra`: a request without it fails the schema
BLANK_PATTERN = f"^[{WS}]*$"


def _nonblank_field(name: str) -> dict:
    return {"required": [name], "properties": {name: {"type": "string", "pattern": NONBLANK_PATTERN}}}
DateStr = Annotated[str, StringConstraints(max_length=32), NO_NUL, AfterValidator(_iso_date), _DATE_SCHEMA]

T = TypeVar("T")


def _integral(value: Any) -> Any:
    """JSON Schema's `integer` includes 20.0, which strict validation would refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer of a request body (strict: `true` and `"20"` are refused, 20.0 is 20).
JsonInt = Annotated[int, BeforeValidator(_integral)]


def json_int(**bounds: int) -> Any:
    """JsonInt with bounds, for an optional field: inside `X | None` the bounds must come before
    the validator, or the JSON schema gets pydantic's `ge`/`le` instead of minimum/maximum."""
    return Annotated[int, Field(**bounds), BeforeValidator(_integral)]


class Strict(BaseModel):
    """Request bodies reject unknown fields, so a typo is an error, not a silent no-op, and take
    each value as the type the schema states: `"published": 0` or `"amount": false` is a 422,
    not a quiet False or 0.0 (a number is still a valid float). Code that builds a body from form
    fields (strings) validates it with `strict=False`."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Page(BaseModel, Generic[T]):
    """One page of a list, with the total count of matching rows."""

    items: list[T]
    total: int
    limit: int
    offset: int


# -- demands ------------------------------------------------------------------------------
def _without_default(schema: dict) -> None:
    schema.pop("default", None)


class DemandBase(Strict):
    title: Short = ""
    # required (the schema says so: DemandCreate); a default only so that a missing text gets the
    # rule's own message
    text: DemandText = Field("", json_schema_extra=_without_default)
    industry: Industry = ""
    region: Region = ""
    enterprise: Short = ""
    contact: Short = ""
    confidential: bool = False
    date: DateStr = ""
    language: Language = ""
    extra: Extra = Field(default_factory=dict)


class DemandCreate(DemandBase):
    """A new demand. `id` is generated when omitted. `owner` and `published` are set by
    staff; an enterprise's demands are owned by it and start unpublished."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=lambda schema: schema.update(
        required=sorted({*schema.get("required", []), "text"})))

    id: IdStr | None = None
    owner: Short | None = None
    published: bool | None = None

    @model_validator(mode="after")
    def _has_text(self) -> DemandCreate:  # a missing text: the rule in words rather than "Field required"
        if not self.text.strip():
            raise ValueError(DEMAND_NEEDS_TEXT)
        return self


class DemandUpdate(Strict):
    """Partial update: only the fields given change."""

    title: Short | None = None
    text: DemandText | None = None
    industry: Industry | None = None
    region: Region | None = None
    enterprise: Short | None = None
    contact: Short | None = None
    confidential: bool | None = None
    date: DateStr | None = None
    language: Language | None = None
    extra: Extra | None = None
    owner: Short | None = None
    published: bool | None = None


class DemandPublicRedacted(BaseModel):
    """A demand as an institute sees it: no contact fields, no owner account."""

    id: str
    title: str
    text: str
    industry: str
    region: str
    enterprise: str
    confidential: bool
    date: str
    language: str
    extra: dict[str, str]
    published: bool
    created_at: UtcDateTime
    updated_at: UtcDateTime


class DemandPublic(DemandPublicRedacted):
    """A demand as staff, admin and the owning enterprise see it."""

    contact: str
    owner: str


DemandOut = DemandPublic | DemandPublicRedacted


class MergePublic(BaseModel):
    """Demands staff merged into one (`merge:<primary id>`); the original records stay as they are."""

    id: str
    primary_id: str
    member_ids: list[str]
    note: str
    created: str


class DemandLinkInfo(BaseModel):
    """Staff decisions on one demand: the merge it belongs to, the demands linked to it."""

    merge: MergePublic | None
    linked: list[str]


class DemandDetail(DemandPublic):
    """One demand with its merge and links (null unless the caller is staff)."""

    links: DemandLinkInfo | None = None


# -- partners and capabilities ------------------------------------------------------------
class PartnerCreate(Strict):
    id: IdStr | None = None
    name: PartnerName
    type: PartnerType = ""
    region: Tag = ""
    country: Country = ""
    extra: Extra = Field(default_factory=dict)


class PartnerUpdate(Strict):
    name: PartnerName | None = None
    type: PartnerType | None = None
    region: Tag | None = None
    country: Country | None = None
    extra: Extra | None = None


class PartnerPublic(BaseModel):
    id: str
    name: str
    type: str
    region: str
    country: str
    extra: dict[str, str]
    capabilities: int = 0
    created_at: UtcDateTime
    updated_at: UtcDateTime


class CapabilityCreate(Strict):
    """A new capability. An institute's `partner_id` defaults to (and must be) its own."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "anyOf": [_nonblank_field("title"), _nonblank_field("text")],
        "description": "a capability needs a title or a text"})

    id: IdStr | None = None
    partner_id: IdStr | None = None
    title: Short = ""
    text: LongText = ""
    kind: Kind = ""
    industries: list[Tag] = Field(
        default_factory=list, max_length=50)
    language: Language = ""
    extra: Extra = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_text(self) -> CapabilityCreate:
        if not self.title.strip() and not self.text.strip():
            raise ValueError("a capability needs a title or a text")
        return self


class CapabilityUpdate(Strict):
    """Partial update: only the fields given change; a capability keeps a title or a text."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "not": {"required": ["title", "text"], "properties": {"title": {"type": "string", "pattern": BLANK_PATTERN},
                                                              "text": {"type": "string", "pattern": BLANK_PATTERN}}}})

    partner_id: IdStr | None = None
    title: Short | None = None
    text: LongText | None = None
    kind: Kind | None = None
    industries: list[Tag] | None = Field(
        default=None, max_length=50)
    language: Language | None = None
    extra: Extra | None = None

    @model_validator(mode="after")
    def _keeps_text(self) -> CapabilityUpdate:
        if self.title is not None and self.text is not None and not self.title.strip() and not self.text.strip():
            raise ValueError("a capability needs a title or a text; both cannot be emptied")
        return self


class CapabilityPublic(BaseModel):
    id: str
    partner_id: str
    partner_name: str
    title: str
    text: str
    kind: str
    industries: list[str]
    language: str
    extra: dict[str, str]
    created_at: UtcDateTime
    updated_at: UtcDateTime


# -- matching -----------------------------------------------------------------------------
class MatchOptions(Strict):
    """How many results and which filters (empty lists mean no restriction)."""

    k: json_int(ge=1, le=1000) | None = None
    industry: list[str] = Field(default_factory=list, max_length=50)
    region: list[str] = Field(default_factory=list, max_length=50)
    partner_type: list[str] = Field(default_factory=list, max_length=10)
    language: list[str] = Field(default_factory=list, max_length=10)


class TextMatchRequest(MatchOptions):
    text: QueryText


class DemandSearchRequest(Strict):
    text: QueryText
    k: json_int(ge=1, le=1000) | None = None
    industry: list[str] = Field(default_factory=list, max_length=50)
    region: list[str] = Field(default_factory=list, max_length=50)
    language: list[str] = Field(default_factory=list, max_length=10)


class ScorePartsPublic(BaseModel):
    """dense: cosine (-1..1); lexical: raw BM25; *_norm: per-query scaled (0..1);
    lexical_weight: weight of lexical evidence for this query; fused: final score;
    language_offset / language_scale: how the engine standardised `dense` for the
    document's language (0 and 1 when it does not)."""

    dense: float
    lexical: float
    dense_norm: float
    lexical_norm: float
    lexical_weight: float
    fused: float
    language_offset: float = 0.0
    language_scale: float = 1.0


class EvidencePublic(BaseModel):
    """One of a partner's best-matching capabilities: the reason it ranks."""

    capability_id: str
    title: str
    score: float
    parts: ScorePartsPublic
    shared_terms: list[str]
    fit: float = 0.0
    label: str = "weak"


class PartnerMatchPublic(BaseModel):
    rank: int
    partner_id: str
    partner_name: str
    partner_type: str
    region: str
    score: float
    shared_terms: list[str]
    components: dict[str, float]
    evidence: list[EvidencePublic]
    fit: float = Field(0.0, description="calibrated probability that staff would judge the pair relevant; "
                                          "the same for this pair in every list, filter and direction")
    label: str = Field("weak", description="strong / possible / weak (thresholds on the fit)")
    reason: str = Field("", description="one line in words")
    rejected: bool = False
    rejected_reason: str = ""
    rejected_at: UtcDateTime | None = None


class MatchResult(BaseModel):
    demand_id: str | None = None
    text: str | None = None
    k: int
    revision: int
    results: list[PartnerMatchPublic]
    suitable: bool = Field(True, description="whether any partner the filters allow reaches 'possible'")
    best_fit: float = 0.0
    advice: str | None = Field(None, description="what to do when no partner is suitable")


class DemandHitPublic(BaseModel):
    rank: int
    score: float
    shared_terms: list[str]
    parts: ScorePartsPublic
    fit: float = 0.0
    label: str = "weak"
    capability_id: str = Field("", description="searching by partner: its capability that fits best")
    reason: str = ""
    demand: DemandOut


class DemandSearchResult(BaseModel):
    partner_id: str | None = None
    text: str | None = None
    k: int
    revision: int
    results: list[DemandHitPublic]


# -- feedback -----------------------------------------------------------------------------
def _when(field: str, values: list[str], then: dict) -> dict:
    """JSON Schema's "if `field` is one of `values`, then `then`"."""
    return {"if": {"required": [field], "properties": {field: {"enum": values}}}, "then": then}


_REASON_CODE_GIVEN = {"required": ["reason_code"], "properties": {"reason_code": {"enum": list(REASON_CODES)}}}


class FeedbackCreate(Strict):
    """One pipeline change. A rejection needs a reason or a reason code, a decline a reason code,
    reason code 'other' a free-text reason; an amount belongs to an agreement."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": [
        _when("status", ["rejected"], {"anyOf": [_nonblank_field("reason"), _REASON_CODE_GIVEN]}),
        _when("status", ["declined_enterprise", "declined_partner"], _REASON_CODE_GIVEN),
        _when("reason_code", ["other"], _nonblank_field("reason")),
        {"if": {"required": ["amount"], "properties": {"amount": {"type": "number"}}},
         "then": {"required": ["status"], "properties": {"status": {"enum": ["agreed", "accepted"]}}}},
    ]})

    demand_id: IdStr
    partner_id: IdStr
    status: FeedbackStatus
    reason: Reason = ""
    reason_code: ReasonCode = ""
    amount: Annotated[float, Field(ge=0, le=1e13, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _reason_for_rejection(self) -> FeedbackCreate:
        if self.status == "rejected" and not self.reason and not self.reason_code:
            raise ValueError("a rejection needs a reason")
        if self.status in ("declined_enterprise", "declined_partner") and not self.reason_code:
            raise ValueError(f"a decline needs a reason code ({', '.join(REASON_CODES)})")
        if self.reason_code == "other" and not self.reason:
            raise ValueError("reason code 'other' needs a free-text reason")
        if self.amount is not None and self.status not in ("agreed", "accepted"):
            raise ValueError("an amount belongs to a cooperation agreement (status 'agreed')")
        return self


class FeedbackBulk(Strict):
    """Several pipeline changes, recorded all or nothing."""

    items: Annotated[list[FeedbackCreate], Field(min_length=1, max_length=5000)]


class FeedbackBulkResult(BaseModel):
    recorded: int


class FeedbackFromConference(Strict):
    """Mark every pair a conference run assigned (or the ones listed) with one status."""

    status: FeedbackStatus = "suggested"
    reason: Reason = ""


class FeedbackPublic(BaseModel):
    id: int
    demand_id: str
    demand_title: str
    partner_id: str
    partner_name: str
    status: str
    reason: str
    who: str
    created_at: UtcDateTime
    reason_code: str = ""
    amount: float | None = None
    source: str = ""


# -- tokens and identity ------------------------------------------------------------------
class TokenCreate(Strict):
    """A new API token. Institutes are bound to a partner, enterprises to an enterprise name."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": [
        {"if": {"properties": {"role": {"const": "institute"}}},
         "then": {"required": ["partner_id"], "properties": {"partner_id": {"type": "string"}}},
         "else": {"properties": {"partner_id": {"type": "null"}}}},
        {"if": {"properties": {"role": {"const": "enterprise"}}},
         "then": {"required": ["enterprise"], "properties": {"enterprise": {"type": "string"}}},
         "else": {"properties": {"enterprise": {"type": "null"}}}},
    ]})

    name: TokenName
    role: Role
    partner_id: IdStr | None = None
    enterprise: EnterpriseName | None = None
    expires_in_days: json_int(ge=1, le=3650) | None = None

    @model_validator(mode="after")
    def _bindings(self) -> TokenCreate:
        if self.role == "institute" and not self.partner_id:
            raise ValueError("an institute token needs a partner_id")
        if self.role == "enterprise" and not self.enterprise:
            raise ValueError("an enterprise token needs an enterprise")
        if self.role != "institute" and self.partner_id:
            raise ValueError("only institute tokens are bound to a partner_id")
        if self.role != "enterprise" and self.enterprise:
            raise ValueError("only enterprise tokens are bound to an enterprise")
        return self


class TokenPublic(BaseModel):
    id: str
    name: str
    role: str
    partner_id: str | None
    enterprise: str | None
    created_at: UtcDateTime
    expires_at: UtcDateTime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret; shown once, only its hash is stored")


class Me(BaseModel):
    role: str
    name: str
    partner_id: str | None = None
    enterprise: str | None = None


# -- imports and operations ---------------------------------------------------------------
class ImportResult(BaseModel):
    kind: str
    file: str
    created: int
    updated: int
    total: int
    revision: int


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    revision: int
    index_revision: int
    demands: int
    capabilities: int
    partners: int
    model: str
