"""Filing and reviewing demands on the page: an enterprise files or resubmits; bureau staff edit,
publish, return to the enterprise with a note, or merge into an existing demand.

Every change runs in one transaction with its history row (`storage.changes`): who, when, what
changed. A merge keeps both original records: the merged demand stays in the database,
unpublished and marked ``extra.review = "merged"``, and the pair is stored as a staff merge
decision (the landscape's `DemandLinks`), so both are matched and shown as one group.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from matcher.errors import InputError
from service.auth import policy
from service.auth.tokens import Principal
from service.deps import Context
from service.errors import NotFound
from service.jobs.landscape import DemandLinksChange, change_links, load_links
from service.jobs.live import Change
from service.storage import changes, store

LIMITS = {"title": 500, "text": 20_000, "industry": 200, "region": 200, "contact": 500, "enterprise": 500}
FORM_FIELDS = ("title", "text", "industry", "region", "contact", "enterprise")
# extra.review: where a demand stands in review ("" for published or imported ones).
PENDING, RETURNED, MERGED = "pending", "returned", "merged"


def detect_language(text: str) -> str:
    """zh, ru or en from the script most of the letters are in."""
    han = len(re.findall(r"[\u4e00-\u9fff]", text))
    cyr = len(re.findall(r"[\u0400-\u04ff]", text))
    lat = len(re.findall(r"[A-Za-z]", text))
    if han and han * 3 >= max(cyr, lat):  # one CJK character carries about as much as three letters
        return "zh"
    return "ru" if cyr > lat else ("en" if lat else "")


def clean_form(form: dict[str, Any]) -> dict[str, Any]:
    """The form's demand fields, stripped and checked (InputError with a code on a problem)."""
    values: dict[str, Any] = {k: str(form.get(k) or "").strip() for k in FORM_FIELDS}
    for key, limit in LIMITS.items():
        if len(values[key]) > limit:
            raise InputError(f"{key} has {len(values[key])} characters; the limit is {limit}", field=key,
                             code="too_long", params={"limit": limit})
    if not values["title"] and not values["text"]:
        raise InputError("a demand needs a title or a text", field="title", code="demand_empty")
    values["confidential"] = str(form.get("confidential") or "").lower() in ("1", "on", "true", "yes")
    values["language"] = detect_language(values["title"] + values["text"])
    return values


def file_demand(ctx: Context, principal: Principal, form: dict[str, Any], *, publish: bool = False) -> dict:
    """A new demand from the form: an enterprise's is its own and waits for review; staff may
    publish at once."""
    values = clean_form(form)
    if principal.role == "enterprise":
        values["enterprise"] = principal.enterprise or ""
        owner, published = principal.enterprise or "", False
    else:
        owner, published = values["enterprise"], bool(publish)
    demand_id = store.new_id("D")
    values.update(id=demand_id, owner=owner, published=published, date=dt.date.today().isoformat(),
                  extra={"review": "" if published else PENDING})

    def tx(conn):
        row = store.insert_demand(conn, values)
        changes.record(conn, demand_id, "created", who=principal.name, role=principal.role)
        if published:
            changes.record(conn, demand_id, "published", who=principal.name, role=principal.role)
        return row, Change(demands=[store.demand_record(row)])

    return ctx.live.write(tx)


def _editable(conn, principal: Principal, demand_id: str) -> dict:
    row = store.get_demand(conn, demand_id)
    if row is None or not policy.can_edit_demand(principal, row):
        raise NotFound(f"no demand '{demand_id}'", key="err_no_demand", params={"id": demand_id})
    if principal.role == "enterprise" and row["published"]:
        raise InputError("a published demand is changed by bureau staff; ask them", code="not_editable")
    return row


def edit_demand(ctx: Context, principal: Principal, demand_id: str, form: dict[str, Any]) -> dict:
    """Save the form's fields. An enterprise's edit of a returned demand resubmits it."""
    values = clean_form(form)
    if principal.role == "enterprise":
        values.pop("enterprise")

    def tx(conn):
        row = _editable(conn, principal, demand_id)
        extra = dict(row["extra"] or {})
        action = "edited"
        if principal.role == "enterprise" and extra.get("review") in (RETURNED, PENDING):
            action = "resubmitted" if extra.get("review") == RETURNED else "edited"
            extra["review"] = PENDING
        new = {**values, "extra": extra}
        diff = changes.diff(row, new)
        if not diff:
            return row, Change()
        row = store.update_demand(conn, demand_id, new)
        changes.record(conn, demand_id, action, who=principal.name, role=principal.role, changes=diff)
        return row, Change(demands=[store.demand_record(row)])

    return ctx.live.write(tx)


def _set_review(ctx: Context, principal: Principal, demand_id: str, action: str, *, published: bool,
                review: str, note: str = "", extra_updates: dict[str, Any] | None = None) -> dict:
    def tx(conn):
        row = _editable(conn, principal, demand_id)
        extra = {**(row["extra"] or {}), "review": review, **(extra_updates or {})}
        new = {"published": published, "extra": extra}
        diff = changes.diff(row, new)
        row = store.update_demand(conn, demand_id, new)
        changes.record(conn, demand_id, action, who=principal.name, role=principal.role, changes=diff, note=note)
        return row, Change(demands=[store.demand_record(row)])

    return ctx.live.write(tx)


def publish(ctx: Context, principal: Principal, demand_id: str) -> dict:
    return _set_review(ctx, principal, demand_id, "published", published=True, review="",
                       extra_updates={"review_note": ""})


def unpublish(ctx: Context, principal: Principal, demand_id: str, note: str = "") -> dict:
    return _set_review(ctx, principal, demand_id, "unpublished", published=False, review=PENDING, note=note)


def return_to_enterprise(ctx: Context, principal: Principal, demand_id: str, note: str) -> dict:
    note = note.strip()
    if not note:
        raise InputError("say what the enterprise should add or change", field="note", code="return_note_needed")
    return _set_review(ctx, principal, demand_id, "returned", published=False, review=RETURNED, note=note[:2000],
                       extra_updates={"review_note": note[:2000]})


def merge_into(ctx: Context, principal: Principal, demand_id: str, target_id: str, note: str = "") -> dict:
    """Merge `demand_id` into the existing demand `target_id` (which stays the primary); both
    records are kept. The merged demand is unpublished and points at its target."""
    target_id = target_id.strip()
    if target_id == demand_id:
        raise InputError("a demand cannot be merged into itself", field="target", code="merge_self")
    with ctx.db.connect() as conn:
        target = store.get_demand(conn, target_id)
        links, _ = load_links(conn)
    if target is None:
        raise InputError(f"no demand '{target_id}' to merge into", field="target", code="merge_target_missing",
                         params={"id": target_id})
    existing = links.merge_of(target_id)
    members = [target_id]
    primary = target_id
    if existing is not None:  # the target already heads (or is in) a merge: extend it
        members, primary = list(existing.member_ids), existing.primary_id
        change_links(ctx.db, DemandLinksChange(action="unmerge", merge_id=existing.id), who=principal.name)
    if (own := links.merge_of(demand_id)) is not None and own is not existing:
        # the demand heads a merge of its own: its whole group joins the target's
        members += [m for m in own.member_ids if m not in members]
        change_links(ctx.db, DemandLinksChange(action="unmerge", merge_id=own.id), who=principal.name)
    if demand_id not in members:
        members.append(demand_id)
    change_links(ctx.db, DemandLinksChange(action="merge", demand_ids=members, primary=primary, note=note[:2000]),
                 who=principal.name)
    row = _set_review(ctx, principal, demand_id, "merged_into", published=False, review=MERGED, note=note,
                      extra_updates={"merged_into": target_id})

    def tx(conn):
        changes.record(conn, target_id, "merged_from", who=principal.name, role=principal.role,
                       changes={"merged": [None, demand_id]}, note=note)
        return None, Change()

    ctx.live.write(tx)
    return row


def review_state(row) -> str:
    """pending, returned, merged or "" (published or imported); `row` is a dict or a demand model."""
    get = row.get if isinstance(row, dict) else (lambda name: getattr(row, name, None))
    extra = get("extra") or {}
    state = extra.get("review") or ("" if get("published") in (True, None) else PENDING)
    return state if state in (PENDING, RETURNED, MERGED) else ""
