"""techmatch engine: match enterprises' technology demands with research partners.

The top-level modules are the base every part shares: plain records (:mod:`.records`), one error
hierarchy (:mod:`.errors`), settings (:mod:`.settings`), atomic file writes (:mod:`.fsutil`) and
safe spreadsheet cells (:mod:`.sheets`). Then, each a subpackage that says what it owns:
:mod:`.io` (files people have -> records), :mod:`.retrieval` (the engine that finds and scores),
:mod:`.conference` (assignment, schedule, agendas), :mod:`.landscape` (clusters, coverage,
duplicates); above them :mod:`.evaluate`, :mod:`.batch` and :mod:`.workspace`, and :mod:`.cli`
on top. Imports point down that list only (``tests/test_layout.py`` checks it). Nothing here
imports the web stack, and importing any of it loads no model or index library.
"""

__version__ = "0.1.0"
