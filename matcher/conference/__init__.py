"""Matchmaking conferences: who meets whom, when, and the papers for the day.

Owns the assignment of demands to partners under capacities, minimums, quotas, exclusions,
group rules and pins (:mod:`.assign`, the records-level front; :mod:`.solve`, the exact flow and
MILP solvers on plain arrays; :mod:`.rules`, rule lines as staff write them), the meeting schedule
(:mod:`.schedule`), resumable ranking of every demand (:mod:`.run`) and the files organisers
use: CSV, XLSX and printable agendas (:mod:`.outputs`), and the plan told in a clerk's words
in Chinese, English or Russian (:mod:`.summary`, with the diagnosis's wording and plural forms
in :mod:`.wording`).

May import: the top-level base modules and :mod:`matcher.retrieval`'s result types. Not
:mod:`matcher.io` or :mod:`matcher.landscape`; ranking is handed in as a function.
"""

from matcher.conference.assign import (
    Assignment,
    AssignmentConstraints,
    GroupPartnerCap,
    InfeasibleError,
    LocalWish,
    OrganisationCap,
    PairListRule,
    SameValueRule,
    assign,
    greedy_assign,
)
from matcher.conference.outputs import (
    ConferenceView,
    render_agendas,
    write_outputs,
)
from matcher.conference.rules import parse_rule, parse_rules
from matcher.conference.run import (
    candidate_table,
    rank_batch,
)
from matcher.conference.schedule import (
    Schedule,
    make_slots,
    parse_windows,
    schedule_meetings,
    validate_schedule,
)

__all__ = [
    "Assignment",
    "AssignmentConstraints",
    "ConferenceView",
    "GroupPartnerCap",
    "InfeasibleError",
    "LocalWish",
    "OrganisationCap",
    "PairListRule",
    "SameValueRule",
    "Schedule",
    "assign",
    "candidate_table",
    "greedy_assign",
    "make_slots",
    "parse_rule",
    "parse_rules",
    "parse_windows",
    "rank_batch",
    "render_agendas",
    "schedule_meetings",
    "validate_schedule",
    "write_outputs",
]
