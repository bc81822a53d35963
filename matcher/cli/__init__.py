"""The command line, ``techmatch``: the only place in :mod:`matcher` that prints.

Owns argument parsing and the commands (:mod:`.commands`), with the conference and landscape
commands in their own modules (:mod:`.conference`, :mod:`.landscape`). Every command imports
what it needs when it runs, so ``techmatch --help`` loads no model, index or web library.
Domain errors are translated into messages and exit codes here and nowhere else.

May import: everything in :mod:`matcher`, and :mod:`service.cli` to register ``techmatch serve``.
"""

from matcher.cli.commands import main

__all__ = ["main"]
