"""A conference plan told in a bureau clerk's words, in Chinese, English or Russian.

`plain_summary` turns an Assignment and its Schedule into a few sentences: how many
enterprises got how many meetings, which demands got none and why, which partners were full
and how many more requests they had, what the greedy baseline is and what the plan gains over
it, and how many meetings found a time and a table. The numbers behind them (objective,
minimum slots, reason codes) stay in the detailed report (`Assignment.explain`). Each language
is a table of templates (`PHRASES`), with plural forms resolved by :mod:`.wording`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from matcher.conference.assign import Assignment
from matcher.conference.schedule import Schedule
from matcher.conference.wording import LANGS, check_lang, fill
from matcher.records import Demand, Partner

__all__ = ["LANGS", "PHRASES", "plain_summary"]

_SHORT = {
    "zh": {"no_candidates": "没有足够的候选合作方", "below_min_score": "候选合作方匹配分太低",
           "excluded": "合适的合作方因利益冲突或已有合同被排除", "at_capacity": "合适的合作方已约满",
           "no_common_availability": "双方没有共同的空闲时间", "no_free_slot": "共同时段里桌位或人员已排满"},
    "en": {"no_candidates": "too few candidate partners", "below_min_score": "candidates scored too low",
           "excluded": "suitable partners were excluded (conflict of interest or contract)",
           "at_capacity": "suitable partners were fully booked",
           "no_common_availability": "the two sides have no free time in common",
           "no_free_slot": "tables or people were busy at every common time"},
    "ru": {"no_candidates": "слишком мало подходящих партнёров",
           "below_min_score": "у кандидатов слишком низкая оценка соответствия",
           "excluded": "подходящие партнёры исключены (конфликт интересов или действующий договор)",
           "at_capacity": "у подходящих партнёров не осталось свободных встреч",
           "no_common_availability": "у сторон нет общего свободного времени",
           "no_free_slot": "в общее время заняты все столы или участники"},
}

# One template per sentence (or part of one) and language; "{n:a|b|c}" picks n's plural form.
PHRASES: dict[str, dict[str, str]] = {
    "meetings": {
        "zh": "共安排 {meetings} 场洽谈，涉及 {enterprises} 家企业的 {demands} 项需求：{parts}。",
        "en": "{meetings} meetings for {demands} demands from {enterprises} enterprises: {parts}.",
        "ru": "{meetings} {meetings:встреча|встречи|встреч} по {demands} {demands:запросу|запросам|запросам} "
              "от {enterprises} {enterprises:предприятия|предприятий|предприятий}: {parts}.",
    },
    "enterprises_get": {
        "zh": "{n} 家各 {m} 场",
        "en": "{n} {n:enterprise gets|enterprises get} {m} {m:meeting|meetings}",
        "ru": "{n} {n:предприятие|предприятия|предприятий} — по {m} {m:встрече|встречи|встреч}",
    },
    "enterprises_none": {"zh": "{n} 家没有安排", "en": "{n} get none",
                         "ru": "{n} {n:предприятие|предприятия|предприятий} — без встреч"},
    "parts_sep": {"zh": "，", "en": ", ", "ru": "; "},
    "reasons_sep": {"zh": "；", "en": "; ", "ru": "; "},
    "shortfall_reason": {"zh": "{reason} {n} 项", "en": "{reason} ({n})", "ru": "{reason} ({n})"},
    "shortfalls": {
        "zh": "{short} 项需求没有达到每项至少的洽谈数（其中 {none} 项一场也没有）。原因：{reasons}。",
        "en": "{short} demands got fewer meetings than the minimum ({none} got none). Why: {reasons}.",
        "ru": "{short} {short:запрос получил|запроса получили|запросов получили} меньше встреч, чем положено "
              "по минимуму ({none} из них — ни одной). Причины: {reasons}.",
    },
    "full_partner": {
        "zh": "{name}（{id}，另有 {n} 项需求想约）",
        "en": "{name} ({id}, {n} more requests)",
        "ru": "{name} ({id}, ещё {n} {n:запрос|запроса|запросов})",
    },
    "full_sep": {"zh": "、", "en": ", ", "ru": ", "},
    "full_more": {"zh": "等 {total} 家", "en": " and {rest} more", "ru": " и ещё {rest}"},
    "full_partners": {
        "zh": "{full} 家合作方约满了（每家最多 {cap} 场），但还有需求想约它们：{shown}{more}。"
              "如能请它们多派人或多开一桌，能满足更多企业。",
        "en": "{full} partners were fully booked (at most {cap} meetings each) while more demands "
              "wanted them: {shown}{more}. Asking them to send more people or take a second table would serve more "
              "enterprises.",
        "ru": "{full} {full:партнёр расписан|партнёра расписаны|партнёров расписаны} полностью (не более {cap} "
              "{cap:встречи|встреч|встреч} у каждого), а с ними хотели встретиться и по другим запросам: "
              "{shown}{more}. Если попросить их прислать больше людей или занять второй стол, встречи получат "
              "больше предприятий.",
    },
    "baseline": {
        "zh": "对照办法是“先到先得”：按匹配分从高到低逐个配对，合作方约满就跳过（贪心法）。",
        "en": "The baseline is first come, first served: pair demands and partners from the best score down and "
              "skip a partner once it is full (the greedy method).",
        "ru": "Для сравнения взят порядок «кто первым пришёл, того первым и обслужили»: запросы и партнёров "
              "соединяют в пары от самой высокой оценки соответствия к низкой и пропускают партнёра, как только "
              "его расписание заполнено (жадный способ).",
    },
    "gain_minimum": {
        "zh": "本方案比它多让 {n} 项需求达到至少的洽谈数，这是优先保证的。",
        "en": "This plan gives {n} more demands their minimum number of meetings, which comes first.",
        "ru": "Этот план позволяет ещё {n} {n:запросу|запросам|запросам} получить минимальное число встреч, "
              "а это важнее всего.",
    },
    "gain_score": {
        "zh": "在同样的限制下，本方案的总匹配分高 {pct:.1f}%（{objective:.2f} 对 {greedy:.2f}），"
              "即整体上为企业约到了更对口的合作方。",
        "en": "Under the same limits this plan's total match score is {pct:.1f}% higher "
              "({objective:.2f} against {greedy:.2f}): overall, enterprises meet better-suited partners.",
        "ru": "При тех же ограничениях суммарная оценка соответствия в этом плане выше на {pct:.1f}% "
              "({objective:.2f} против {greedy:.2f}): в целом предприятия встречаются с более подходящими "
              "партнёрами.",
    },
    "gain_none": {
        "zh": "这次两种办法结果一样好：限制之间没有冲突。",
        "en": "Here both give an equally good plan: the limits did not compete.",
        "ru": "Здесь оба способа дают одинаково хороший план: ограничения не мешали друг другу.",
    },
    "sentence_sep": {"zh": "", "en": " ", "ru": " "},
    "scheduled": {
        "zh": "{n} 场洽谈已排好时间和桌号（{slots} 个时段，{tables} 张桌）。",
        "en": "{n} meetings have a time and a table ({slots} sessions, {tables} tables).",
        "ru": "Для {n} {n:встречи|встреч|встреч} назначены время и стол ({slots} {slots:сеанс|сеанса|сеансов}, "
              "{tables} {tables:стол|стола|столов}).",
    },
    "unplaced_reason": {"zh": "{reason} {n} 场", "en": "{reason} ({n})", "ru": "{reason} ({n})"},
    "unplaced": {
        "zh": "另有 {n} 场排不进去：{why}。",
        "en": " {n} could not be placed: {why}.",
        "ru": " Ещё {n} {n:встречу|встречи|встреч} не удалось разместить: {why}.",
    },
}


def plain_summary(result: Assignment, schedule: Schedule | None, demands: Sequence[Demand],
                  partners: Sequence[Partner] = (), *, lang: str = "zh", limit: int = 5) -> list[str]:
    """Sentences (one per point) describing the plan in `lang` ("zh", "en" or "ru")."""
    say = _Speaker(check_lang(lang))
    names = {p.id: p.name for p in partners}
    enterprise_of = {d.id: d.enterprise or d.id for d in demands if d.id in set(result.demand_ids)}
    per_demand = Counter(p.demand_id for p in result.pairs)
    per_enterprise = Counter({e: 0 for e in enterprise_of.values()})
    for p in result.pairs:
        per_enterprise[enterprise_of.get(p.demand_id, p.demand_id)] += 1
    lines = [_meetings_line(say, len(result.pairs), per_enterprise, len(result.demand_ids))]
    none = [d for d in result.demand_ids if per_demand[d] == 0]
    if result.shortfalls:
        why = Counter(s.reason for s in result.shortfalls)
        reasons = say("reasons_sep").join(say("shortfall_reason", reason=say.reason(r), n=n)
                                          for r, n in why.most_common())
        lines.append(say("shortfalls", short=len(result.shortfalls), none=len(none), reasons=reasons))
    if result.binding_partners:
        full = result.binding_partners
        shown = say("full_sep").join(
            say("full_partner", name=names.get(b.partner_id, b.partner_id), id=b.partner_id, n=len(b.wanted_by))
            for b in full[:limit])
        more = say("full_more", total=len(full), rest=len(full) - limit) if len(full) > limit else ""
        lines.append(say("full_partners", full=len(full), cap=full[0].capacity, shown=shown, more=more))
    lines.append(_baseline_line(say, result))
    if schedule is not None:
        unplaced = Counter(u.reason for u in schedule.unplaced)
        line = say("scheduled", n=len(schedule.meetings), slots=len(schedule.slots), tables=schedule.tables)
        if schedule.unplaced:
            why = say("reasons_sep").join(say("unplaced_reason", reason=say.reason(r), n=n)
                                          for r, n in unplaced.most_common())
            line += say("unplaced", n=len(schedule.unplaced), why=why)
        lines.append(line)
    return lines


class _Speaker:
    """`PHRASES` in one language: ``say(key, **params)``."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, key: str, **params: object) -> str:
        return fill(self.lang, PHRASES[key][self.lang], **params)

    def reason(self, code: str) -> str:
        return _SHORT[self.lang].get(code, code)


def _meetings_line(say: _Speaker, meetings: int, per_enterprise: Counter, n_demands: int) -> str:
    groups = Counter(per_enterprise.values())
    parts = [say("enterprises_get", n=n, m=m) for m, n in sorted(groups.items(), reverse=True) if m > 0]
    if groups.get(0):
        parts.append(say("enterprises_none", n=groups[0]))
    return say("meetings", meetings=meetings, enterprises=len(per_enterprise), demands=n_demands,
               parts=say("parts_sep").join(parts))


def _baseline_line(say: _Speaker, result: Assignment) -> str:
    """What the greedy baseline is, and what this plan gains over it."""
    more_min = result.min_slots_filled - result.greedy_min_slots_filled
    if more_min > 0:
        gain = say("gain_minimum", n=more_min)
    elif result.gap > 1e-9:
        gain = say("gain_score", pct=result.gap_pct, objective=result.objective, greedy=result.greedy_objective)
    else:
        gain = say("gain_none")
    return say("baseline") + say("sentence_sep") + gain

