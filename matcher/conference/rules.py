"""Assignment rules written as short lines, as staff type them in a file, the CLI or the API.

    enterprise=owner                           exclude pairs whose fields are equal (as before)
    at most 6 per partner organisation         an organisation's teams together take <= 6 meetings
    at most 2 per demand region and partner    one partner meets <= 2 enterprises of one county
    at least 1 local region=region             each demand gets a partner of its own county
    at least 1 foreign region=country          ... or one from elsewhere (where one qualifies)

Chinese forms are accepted too: ``最多 6 场 每个单位 organisation``, ``最多 2 场 每县每伙伴 region``,
``至少 1 个本地 region=region``, ``至少 1 个外地 region=country``. Field names are record attributes
or keys of ``extra``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from matcher.conference.assign import GroupPartnerCap, LocalWish, OrganisationCap, SameValueRule
from matcher.errors import InputError

_FIELD = r"([\w.-]+)"
_FORMS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"^at most (\S+) per partner {_FIELD}$"), "org"),
    (re.compile(rf"^最多 *(\S+?) *场? *每个?单位 *{_FIELD}$"), "org"),
    (re.compile(rf"^at most (\S+) per demand {_FIELD} and partner$"), "group"),
    (re.compile(rf"^最多 *(\S+?) *场? *每县每伙伴 *{_FIELD}$"), "group"),
    (re.compile(rf"^at least 1 (local|foreign) {_FIELD} *= *{_FIELD}$"), "wish"),
    (re.compile(rf"^至少 *1 *个?(本地|外地) *{_FIELD} *= *{_FIELD}$"), "wish"),
    (re.compile(rf"^{_FIELD} *= *{_FIELD}$"), "same"),
]
SYNTAX = (
    "DEMAND_FIELD=PARTNER_FIELD, 'at most N per partner FIELD', 'at most N per demand FIELD and partner', "
    "'at least 1 local DEMAND_FIELD=PARTNER_FIELD' or 'at least 1 foreign DEMAND_FIELD=PARTNER_FIELD'"
)


def parse_rule(spec: str):
    """One rule line -> SameValueRule, OrganisationCap, GroupPartnerCap or LocalWish."""
    text = " ".join(str(spec).split())
    for pattern, kind in _FORMS:
        m = pattern.match(text)
        if not m:
            continue
        if kind == "same":
            return SameValueRule(m[1], m[2])
        if kind == "wish":
            which = {"本地": "local", "外地": "foreign"}.get(m[1], m[1])
            return LocalWish(which, m[2], m[3])
        if not m[1].isdecimal():  # isdigit() takes '²', which int() refuses
            break
        return OrganisationCap(m[2], int(m[1])) if kind == "org" else GroupPartnerCap(m[2], int(m[1]))
    raise InputError(f"bad rule '{spec}', expected {SYNTAX}", field="rules", code="bad_rule",
                     params={"rule": text})


def parse_rules(specs: Iterable[str]) -> list:
    return [parse_rule(s) for s in specs if str(s).strip()]


def split_rules(rules: Iterable) -> tuple[list, list]:
    """(exclusion rules, group rules) of parsed rules."""
    rules = list(rules)
    excl = [r for r in rules if isinstance(r, SameValueRule)]
    return excl, [r for r in rules if not isinstance(r, SameValueRule)]
