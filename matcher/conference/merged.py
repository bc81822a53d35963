"""Merged demands at a conference: when staff merge several enterprises' demands (the review
queue's merge), the group is matched and scheduled as one demand, the surviving (primary) one,
and every enterprise of the group attends its meetings.

    joint = joint_demand(primary, others)   # the primary, the others' titles and texts appended
    enterprises_of(joint)                   # ["E1", "E2"]: who attends
    JointRule(rule)                         # an exclusion rule holds for any member enterprise
    schedule_meetings(..., attendees=attendees(demands))   # nobody at two tables at once

Imports only the records and the conference's own modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from matcher.conference.assign import ExclusionRule, rule_name
from matcher.records import Demand

MERGED_FROM = "merged_from"  # extra: the merged demands' ids, comma separated
ENTERPRISES = "enterprises"  # extra: every enterprise of the group, ";" separated, the primary's first


def joint_demand(primary: Demand, others: Sequence[Demand]) -> Demand:
    """The one demand a merge group is matched as: the primary's id, title and fields; its text
    followed by each other member's title and text (where they add anything), so retrieval sees
    every enterprise's wording; confidential when any member is."""
    if not others:
        return primary
    seen = {primary.title.strip(), primary.text.strip()}
    parts = [primary.text]
    for d in others:
        extra = "\n".join(x for x in (d.title, d.text) if x and x.strip() not in seen)
        if extra:
            parts.append(extra)
            seen.update({d.title.strip(), d.text.strip()})
    enterprises = list(dict.fromkeys(e for e in (primary.enterprise, *(d.enterprise for d in others)) if e))
    return replace(primary, text="\n".join(p for p in parts if p),
                   confidential=primary.confidential or any(d.confidential for d in others),
                   extra={**primary.extra, MERGED_FROM: ",".join(d.id for d in others),
                          ENTERPRISES: ";".join(enterprises)})


def enterprises_of(demand: Demand) -> list[str]:
    """Who attends a demand's meetings: its enterprise, and for a merge group every member's."""
    listed = [e for e in (demand.extra or {}).get(ENTERPRISES, "").split(";") if e]
    return list(dict.fromkeys([e for e in (demand.enterprise, *listed) if e]))


def merged_ids(demand: Demand) -> list[str]:
    return [x for x in (demand.extra or {}).get(MERGED_FROM, "").split(",") if x]


@dataclass(frozen=True)
class JointRule:
    """An exclusion rule keyed by the enterprise (a contract, enterprise=owner) excludes a
    partner from a merge group's meetings when it excludes it for any member enterprise: every
    one of them sits at the table."""

    rule: ExclusionRule
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", rule_name(self.rule))

    def __call__(self, demand, partner) -> bool:
        if self.rule(demand, partner):
            return True
        return any(self.rule(replace(demand, enterprise=e), partner)
                   for e in enterprises_of(demand)[1:])


def attendees(demands: Sequence[Demand]) -> dict[str, list[str]]:
    """demand id -> the further enterprises at its meetings (for `schedule_meetings`): a merged
    demand's other member enterprises, so none of them is booked twice in a slot."""
    return {d.id: names[1:] for d in demands if len(names := enterprises_of(d)) > 1}
