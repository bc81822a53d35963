"""Request and response schemas: one family per resource (Create, Update, Public ...)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, model_validator

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


# Ids travel in URL paths and are printed: no white space, slashes, '?', '#' or '%', no control,
# format or bidirectional-override characters (two ids must never print the same), not '.' or '..'.
ID_RULE = ("ids are 1-128 characters without white space, control or bidi characters or / \\ ? # %, "
           "and not '.' or '..'")
_ID_RE = re.compile(r"[^\s/\\?#%\x00-\x1f\x7f-\x9f\u00ad\u061c\u200b-\u200f\u202a-\u202e\u2060-\u206f"
                    r"\ufeff\ufff9-\ufffb]{1,128}")


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


def _text_schema(max_length: int) -> WithJsonSchema:
    """The OpenAPI form of a text field, its no-NUL rule included, so clients (and schema-driven
    fuzzers) know the rule rather than learn it from a 422."""
    return WithJsonSchema({"type": "string", "maxLength": max_length, "pattern": NO_NUL_PATTERN})


# The id rule as the schema's pattern ('.' and '..' are refused by the validator only: a
# look-ahead would keep schema-driven generators from using the pattern).
ID_PATTERN = f"^{_ID_RE.pattern}$"
NO_NUL_PATTERN = r"^[^\x00]*$"
NO_NUL = AfterValidator(_no_nul)
IdStr = Annotated[str, AfterValidator(_valid_id),
                  WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 128, "pattern": ID_PATTERN})]
Short = Annotated[str, StringConstraints(max_length=500), AfterValidator(_no_nul), _text_schema(500)]
# industry, region: indexed columns
Tag = Annotated[str, StringConstraints(max_length=200), AfterValidator(_no_nul), _text_schema(200)]
LongText = Annotated[str, StringConstraints(max_length=20_000), AfterValidator(_no_nul), _text_schema(20_000)]
MAX_EXTRA_KEYS = 100
MAX_EXTRA_CHARS = 100_000


def _bounded_extra(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_EXTRA_KEYS:
        raise ValueError(f"extra has {len(value)} fields; the limit is {MAX_EXTRA_KEYS}")
    size = sum(len(k) + len(v) for k, v in value.items())
    if size > MAX_EXTRA_CHARS:
        raise ValueError(f"extra holds {size:,} characters; the limit is {MAX_EXTRA_CHARS:,}")
    return value


Extra = Annotated[dict[Annotated[str, StringConstraints(max_length=200), AfterValidator(_no_nul)],
                       Annotated[str, StringConstraints(max_length=20_000), AfterValidator(_no_nul)]],
                  AfterValidator(_bounded_extra)]



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


# A demand's industry and county/district: empty or a known value (`matcher.taxonomy`), stored
# under its canonical name; its date: any accepted form (`matcher.dates`), stored as ISO 8601.
# industry, region: indexed columns of 200 characters; canonical names from the taxonomy
Industry = Annotated[str, StringConstraints(max_length=200), NO_NUL, _canonical("industry")]
Region = Annotated[str, StringConstraints(max_length=200), NO_NUL, _canonical("region")]
DateStr = Annotated[str, StringConstraints(max_length=32), NO_NUL, AfterValidator(_iso_date)]

T = TypeVar("T")


class Strict(BaseModel):
    """Request bodies reject unknown fields, so a typo is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """One page of a list, with the total count of matching rows."""

    items: list[T]
    total: int
    limit: int
    offset: int


# -- demands ------------------------------------------------------------------------------
class DemandBase(Strict):
    title: Short = ""
    text: LongText = ""
    industry: Industry = ""
    region: Region = ""
    enterprise: Short = ""
    contact: Short = ""
    confidential: bool = False
    date: DateStr = ""
    language: Annotated[str, StringConstraints(max_length=16), NO_NUL] = ""
    extra: Extra = Field(default_factory=dict)


class DemandCreate(DemandBase):
    """A new demand. `id` is generated when omitted. `owner` and `published` are set by
    staff; an enterprise's demands are owned by it and start unpublished."""

    id: IdStr | None = None
    owner: Short | None = None
    published: bool | None = None

    @model_validator(mode="after")
    def _has_text(self) -> DemandCreate:
        if not self.text.strip():
            raise ValueError("a demand needs a description (text, 需求描述); a title alone cannot be matched")
        return self


class DemandUpdate(Strict):
    """Partial update: only the fields given change."""

    title: Short | None = None
    text: LongText | None = None
    industry: Industry | None = None
    region: Region | None = None
    enterprise: Short | None = None
    contact: Short | None = None
    confidential: bool | None = None
    date: DateStr | None = None
    language: Annotated[str, StringConstraints(max_length=16), NO_NUL] | None = None
    extra: Extra | None = None
    owner: Short | None = None
    published: bool | None = None

    @model_validator(mode="after")
    def _keeps_text(self) -> DemandUpdate:
        if self.text is not None and not self.text.strip():
            raise ValueError("a demand needs a description (text, 需求描述); it cannot be emptied")
        return self


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
    name: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True), NO_NUL]
    type: PartnerType = ""
    region: Tag = ""
    country: Annotated[str, StringConstraints(max_length=64), NO_NUL] = ""
    extra: Extra = Field(default_factory=dict)


class PartnerUpdate(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True), NO_NUL] | None = None
    type: PartnerType | None = None
    region: Tag | None = None
    country: Annotated[str, StringConstraints(max_length=64), NO_NUL] | None = None
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

    id: IdStr | None = None
    partner_id: IdStr | None = None
    title: Short = ""
    text: LongText = ""
    kind: Annotated[str, StringConstraints(max_length=100), NO_NUL] = ""
    industries: list[Tag] = Field(
        default_factory=list, max_length=50)
    language: Annotated[str, StringConstraints(max_length=16), NO_NUL] = ""
    extra: Extra = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_text(self) -> CapabilityCreate:
        if not self.title.strip() and not self.text.strip():
            raise ValueError("a capability needs a title or a text")
        return self


class CapabilityUpdate(Strict):
    partner_id: IdStr | None = None
    title: Short | None = None
    text: LongText | None = None
    kind: Annotated[str, StringConstraints(max_length=100), NO_NUL] | None = None
    industries: list[Tag] | None = Field(
        default=None, max_length=50)
    language: Annotated[str, StringConstraints(max_length=16), NO_NUL] | None = None
    extra: Extra | None = None


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

    k: int | None = Field(default=None, ge=1, le=1000)
    industry: list[str] = Field(default_factory=list, max_length=50)
    region: list[str] = Field(default_factory=list, max_length=50)
    partner_type: list[str] = Field(default_factory=list, max_length=10)
    language: list[str] = Field(default_factory=list, max_length=10)


class TextMatchRequest(MatchOptions):
    text: Annotated[str, StringConstraints(min_length=1, max_length=20_000), NO_NUL]


class DemandSearchRequest(Strict):
    text: Annotated[str, StringConstraints(min_length=1, max_length=20_000), NO_NUL]
    k: int | None = Field(default=None, ge=1, le=1000)
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
    rejected_at: dt.datetime | None = None


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
class FeedbackCreate(Strict):
    demand_id: IdStr
    partner_id: IdStr
    status: FeedbackStatus
    reason: Annotated[str, StringConstraints(max_length=2000, strip_whitespace=True), NO_NUL] = ""
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
    reason: Annotated[str, StringConstraints(max_length=2000, strip_whitespace=True)] = ""


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

    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True), NO_NUL]
    role: Role
    partner_id: IdStr | None = None
    enterprise: Annotated[str, StringConstraints(min_length=1, max_length=500), NO_NUL] | None = None
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)

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
