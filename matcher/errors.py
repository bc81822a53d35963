"""One error hierarchy for the engine; the CLI and the service translate it at their edge."""

from __future__ import annotations


class MatcherError(Exception):
    """Base class of every error the engine raises on purpose."""


class InputError(MatcherError):
    """Bad input data. Names the file, the row (1-based data row) and the field when known.

    `code` (e.g. ``not_yes_no``) and `params` (e.g. ``{"value": "也许"}``) say the same as the
    English `message` in a form a user interface can translate (the service's catalogs have one
    ``err_<code>`` text per code); errors without a code are shown as their message.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
        code: str | None = None,
        params: dict[str, object] | None = None,
    ) -> None:
        self.file = file
        self.row = row
        self.field = field
        self.code = code
        self.params = dict(params or {})
        self.reason = message
        super().__init__(self.located())

    def located(self, without_file: str | None = None) -> str:
        """The message prefixed by where it happened ("file, row 3, field 'x': ...")."""
        where = []
        if self.file is not None and str(self.file) != str(without_file):
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


class InputErrors(InputError):
    """Several row-level problems found in one file; nothing from the file was loaded."""

    def __init__(self, errors: list[InputError], *, file: str | None = None) -> None:
        self.errors = list(errors)
        head = "; ".join(e.located(without_file=file) for e in self.errors[:10])
        more = f" (and {len(self.errors) - 10} more)" if len(self.errors) > 10 else ""
        MatcherError.__init__(self, f"{len(self.errors)} problem(s) in {file}: {head}{more}")
        self.file = file
        self.row = self.errors[0].row if self.errors else None
        self.field = self.errors[0].field if self.errors else None
        self.code = None
        self.params = {}
        self.reason = head


class UnknownNameError(MatcherError):
    """An unknown model, method or option name; the message lists the valid ones."""

    def __init__(self, kind: str, name: str, valid: list[str]) -> None:
        self.kind, self.name, self.valid = kind, name, list(valid)
        super().__init__(f"unknown {kind} '{name}'; valid: {', '.join(sorted(valid))}")


class NotFittedError(MatcherError):
    """A scorer or index was used before fit/build."""


class NotFoundError(MatcherError):
    """A demand, capability or partner id that does not exist."""


class ModelUnavailableError(MatcherError):
    """An embedding model cannot be loaded from disk (we never download at run time)."""
