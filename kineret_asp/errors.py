"""Errors the package reports to its users.

Every error a user can cause (a bad case, a broken KB) carries enough to be
printed as one line that names the file, the place in it and what was
expected, so the CLI never shows a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional, Sequence


class KineretError(Exception):
    """Base class of the errors this package raises on purpose."""


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a KB file, printed as ``file:line:col: severity: message``."""

    file: str
    line: int
    column: int
    severity: str  # "error" | "warning" | "info"
    message: str
    code: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }


class KbError(KineretError):
    """The knowledge base cannot be used: missing, unreadable or not valid clingo."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__(str(self.diagnostics[0]) if self.diagnostics else "invalid knowledge base")

    def __reduce__(self):  # picklable, so that a worker process can hand it back
        return (type(self), (self.diagnostics,))

    def summary_line(self) -> str:
        """The first problem, and how many more there are, in one line."""
        first = str(self.diagnostics[0]) if self.diagnostics else str(self)
        more = len(self.diagnostics) - 1
        return first + (f" (and {more} more; run 'kineret-asp check' to see all)" if more > 0 else "")


class KbChoiceError(KineretError):
    """Which version of a KB tree to use cannot be settled from what was given: one line naming what to pass."""


class CaseError(KineretError):
    """A case that does not follow the case format.

    ``source`` names the file (or ``<stdin>``, ``<dict>``), ``path`` the field
    (``medication_history[2].drug``); the message says what was expected and,
    for a near miss, the closest known value.
    """

    def __init__(self, source: str, path: str, message: str, errors: "Sequence[CaseError] | None" = None):
        self.source = source
        self.path = path
        self.message = message
        self.errors: list[CaseError] = list(errors) if errors else [self]
        super().__init__(self.summary_line())

    def __reduce__(self):  # picklable, so that a worker process can hand it back
        return (type(self), (self.source, self.path, self.message, self.errors if len(self.errors) > 1 else None))

    @classmethod
    def many(cls, errors: "Sequence[CaseError]") -> "CaseError":
        """One error standing for several found in one case (the first is its message)."""
        first = errors[0]
        return cls(first.source, first.path, first.message, errors)

    def lines(self) -> list[str]:
        """Every error found, one line each."""
        return [e.line() for e in self.errors]

    def summary_line(self) -> str:
        """The first error, and how many more were found (``... (+2 more)``): what ``str()`` of the error says."""
        more = len(self.errors) - 1
        return self.line() + (f" (+{more} more)" if more > 0 else "")

    def line(self) -> str:
        """The error as one line (any line break a value smuggled in is escaped)."""
        where = f"{self.source}: {self.path}" if self.path else self.source
        return f"{where}: {self.message}".replace("\r", "\\r").replace("\n", "\\n")

    def to_dict(self) -> dict:
        return {"source": self.source, "path": self.path, "message": self.message}


class NotFound(KineretError):
    """What a request names is not there: a logged decision, a reviewer's note, or the decision log itself (HTTP 404)."""


class SolveTimeout(KineretError):
    """The solver did not finish within the per-case time limit."""


def did_you_mean(value: str, known: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest known value, or ``""``."""
    import difflib  # imported when a message needs it, not by every command

    matches = difflib.get_close_matches(value.lower(), list(known), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""


FEW = 3
"""How many items an error about many shows before saying how many more there are."""


_LIST_MORE = "{shown}{separator}and {more} more ({total} in all)"


def list_more(words: "Mapping[str, str]") -> "Callable[[str, str, str, str], str]":
    """The KB's ``list_more`` words, filled by name (what :func:`few` prints past its first few items)."""

    def more(shown: str, separator: str, count: str, total: str) -> str:
        return _say("list_more", words, shown=shown, separator=separator, more=count, total=total)

    return more


def _say(key: str, words: "Mapping[str, str]", **values: str) -> str:
    from .templates import fill

    return fill(words.get(key, _LIST_MORE), values)


def few(items: "Sequence[str]", separator: str = "; ", more: "Optional[Callable[[str, str, str, str], str]]" = None, shown: int = FEW) -> str:
    """Items joined for one line; past ``shown`` of them, the first few and how many more (never a 500 KB line).

    ``more`` says the long form (:func:`list_more` over a KB's words).
    """
    items = list(items)
    if len(items) <= shown + 1:
        return separator.join(items)
    say = more or list_more({})
    return say(separator.join(items[:shown]), separator, f"{len(items) - shown:,}", f"{len(items):,}")
