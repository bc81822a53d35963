"""A conference plan told in a bureau clerk's words, in Chinese or English.

`plain_summary` turns an Assignment and its Schedule into a few sentences: how many
enterprises got how many meetings, which demands got none and why, which partners were full
and how many more requests they had, what the greedy baseline is and what the plan gains over
it, and how many meetings found a time and a table. The numbers behind them (objective,
minimum slots, reason codes) stay in the detailed report (`Assignment.explain`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from matcher.conference.assign import Assignment
from matcher.conference.schedule import Schedule
from matcher.records import Demand, Partner

LANGS = ("zh", "en")
_SHORT = {
    "zh": {"no_candidates": "没有足够的候选合作方", "below_min_score": "候选合作方匹配分太低",
           "excluded": "合适的合作方因利益冲突或已有合同被排除", "at_capacity": "合适的合作方已约满",
           "no_common_availability": "双方没有共同的空闲时间", "no_free_slot": "共同时段里桌位或人员已排满"},
    "en": {"no_candidates": "too few candidate partners", "below_min_score": "candidates scored too low",
           "excluded": "suitable partners were excluded (conflict of interest or contract)",
           "at_capacity": "suitable partners were fully booked",
           "no_common_availability": "the two sides have no free time in common",
           "no_free_slot": "tables or people were busy at every common time"},
}


def plain_summary(result: Assignment, schedule: Schedule | None, demands: Sequence[Demand],
                  partners: Sequence[Partner] = (), *, lang: str = "zh", limit: int = 5) -> list[str]:
    """Sentences (one per point) describing the plan in `lang` ("zh" or "en")."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; use one of: {', '.join(LANGS)}")
    zh = lang == "zh"
    names = {p.id: p.name for p in partners}
    enterprise_of = {d.id: d.enterprise or d.id for d in demands if d.id in set(result.demand_ids)}
    per_demand = Counter(p.demand_id for p in result.pairs)
    per_enterprise = Counter({e: 0 for e in enterprise_of.values()})
    for p in result.pairs:
        per_enterprise[enterprise_of.get(p.demand_id, p.demand_id)] += 1
    lines = [_meetings_line(zh, len(result.pairs), per_enterprise, len(result.demand_ids))]
    none = [d for d in result.demand_ids if per_demand[d] == 0]
    if result.shortfalls:
        why = Counter(s.reason for s in result.shortfalls)
        reasons = ("；" if zh else "; ").join(
            f"{_SHORT[lang].get(r, r)} {n} 项" if zh else f"{_SHORT[lang].get(r, r)} ({n})"
            for r, n in why.most_common())
        lines.append(
            f"{len(result.shortfalls)} 项需求没有达到每项至少的洽谈数"
            f"（其中 {len(none)} 项一场也没有）。原因：{reasons}。"
            if zh else
            f"{len(result.shortfalls)} demands got fewer meetings than the minimum ({len(none)} got none). "
            f"Why: {reasons}.")
    if result.binding_partners:
        full = result.binding_partners
        shown = ("、" if zh else ", ").join(
            (f"{names.get(b.partner_id, b.partner_id)}（{b.partner_id}，另有 {len(b.wanted_by)} 项需求想约）" if zh else
             f"{names.get(b.partner_id, b.partner_id)} ({b.partner_id}, {len(b.wanted_by)} more requests)")
            for b in full[:limit])
        more = (f"等 {len(full)} 家" if zh else f" and {len(full) - limit} more") if len(full) > limit else ""
        lines.append(
            f"{len(full)} 家合作方约满了（每家最多 {full[0].capacity} 场），但还有需求想约它们：{shown}{more}。"
            "如能请它们多派人或多开一桌，能满足更多企业。" if zh else
            f"{len(full)} partners were fully booked (at most {full[0].capacity} meetings each) while more demands "
            f"wanted them: {shown}{more}. Asking them to send more people or take a second table would serve more "
            "enterprises.")
    lines.append(_baseline_line(zh, result))
    if schedule is not None:
        unplaced = Counter(u.reason for u in schedule.unplaced)
        line = (f"{len(schedule.meetings)} 场洽谈已排好时间和桌号"
                f"（{len(schedule.slots)} 个时段，{schedule.tables} 张桌）。"
                if zh else
                f"{len(schedule.meetings)} meetings have a time and a table ({len(schedule.slots)} sessions, "
                f"{schedule.tables} tables).")
        if schedule.unplaced:
            why = ("；" if zh else "; ").join(
                f"{_SHORT[lang].get(r, r)} {n} 场" if zh else f"{_SHORT[lang].get(r, r)} ({n})"
                for r, n in unplaced.most_common())
            line += (f"另有 {len(schedule.unplaced)} 场排不进去：{why}。" if zh else
                     f" {len(schedule.unplaced)} could not be placed: {why}.")
        lines.append(line)
    return lines


def _meetings_line(zh: bool, meetings: int, per_enterprise: Counter, n_demands: int) -> str:
    groups = Counter(per_enterprise.values())
    parts = [(f"{n} 家各 {m} 场" if zh else
              f"{n} {'enterprise gets' if n == 1 else 'enterprises get'} {m} {'meeting' if m == 1 else 'meetings'}")
             for m, n in sorted(groups.items(), reverse=True) if m > 0]
    if groups.get(0):
        parts.append(f"{groups[0]} 家没有安排" if zh else f"{groups[0]} get none")
    if zh:
        return f"共安排 {meetings} 场洽谈，涉及 {len(per_enterprise)} 家企业的 {n_demands} 项需求：{'，'.join(parts)}。"
    return (f"{meetings} meetings for {n_demands} demands from {len(per_enterprise)} enterprises: "
            f"{', '.join(parts)}.")


def _baseline_line(zh: bool, result: Assignment) -> str:
    """What the greedy baseline is, and what this plan gains over it."""
    what = ("对照办法是“先到先得”：按匹配分从高到低逐个配对，合作方约满就跳过（贪心法）。" if zh else
            "The baseline is first come, first served: pair demands and partners from the best score down and "
            "skip a partner once it is full (the greedy method).")
    more_min = result.min_slots_filled - result.greedy_min_slots_filled
    if more_min > 0:
        gain = (f"本方案比它多让 {more_min} 项需求达到至少的洽谈数，这是优先保证的。" if zh else
                f"This plan gives {more_min} more demands their minimum number of meetings, which comes first.")
    elif result.gap > 1e-9:
        gain = (f"在同样的限制下，本方案的总匹配分高 {result.gap_pct:.1f}%（{result.objective:.2f} 对 "
                f"{result.greedy_objective:.2f}），即整体上为企业约到了更对口的合作方。" if zh else
                f"Under the same limits this plan's total match score is {result.gap_pct:.1f}% higher "
                f"({result.objective:.2f} against {result.greedy_objective:.2f}): overall, enterprises meet "
                "better-suited partners.")
    else:
        gain = ("这次两种办法结果一样好：限制之间没有冲突。" if zh else
                "Here both give an equally good plan: the limits did not compete.")
    return what + gain if zh else f"{what} {gain}"
