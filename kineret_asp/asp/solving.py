"""Grounding and solving: the one place every clingo Control of the package is made.

Every Control comes from :func:`new_control`, with ``--warn=none`` and a
logger that never raises (an exception inside clingo's logger callback
aborts the process). Solving goes through :func:`models`, which stops the
search at a time limit. A limit on grounding cannot be kept from inside
clingo; :mod:`kineret_asp.limits` runs work in a process it can stop.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Sequence

import clingo

from ..errors import Diagnostic, SolveTimeout

if TYPE_CHECKING:  # pragma: no cover
    from ..knowledge.base import KnowledgeBase

_MESSAGE = re.compile(r"^(?P<file>.*?):(?P<line>\d+):(?P<col>\d+)(?:-(?:\d+:)?\d+)?: (?P<sev>error|warning|info): (?P<msg>.*)", re.S)


def parse_message(text: str, fallback_file: str = "<kb>") -> Diagnostic:
    """Turn one clingo message into a diagnostic, keeping its position."""
    first, _, rest = text.strip().partition("\n")
    match = _MESSAGE.match(first)
    if not match:
        return Diagnostic(fallback_file, 0, 0, "error", " ".join(text.split()))
    msg = match.group("msg").strip()
    detail = " ".join(line.strip() for line in rest.splitlines() if line.strip())
    if detail:
        msg = f"{msg} {detail}"
    return Diagnostic(match.group("file"), int(match.group("line")), int(match.group("col")), match.group("sev"), msg)


class MessageLog:
    """A clingo logger that keeps every message as a diagnostic.

    It never raises: an exception inside clingo's logger callback aborts the
    whole process (``PANIC: exception in nothrow scope``), so anything
    unexpected is kept as a plain message instead.
    """

    def __init__(self, fallback_file: str = "<kb>"):
        self.diagnostics: list[Diagnostic] = []
        self._fallback = fallback_file

    def __call__(self, code: clingo.MessageCode, text: str) -> None:
        try:
            self.diagnostics.append(parse_message(text, self._fallback))
        except BaseException:  # noqa: BLE001 - nothing may escape into clingo
            try:
                self.diagnostics.append(Diagnostic(self._fallback, 0, 0, "error", ascii(text)[:500]))
            except BaseException:  # noqa: BLE001
                pass

    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def _quiet(code: clingo.MessageCode, text: str) -> None:
    """A logger that drops every message (and so cannot raise)."""


def new_control(options: Sequence[str] = (), logger: Optional[Callable[[clingo.MessageCode, str], None]] = None, message_limit: int = 20, warnings: str = "none") -> clingo.Control:
    """A clingo Control: the only constructor the package calls."""
    return clingo.Control([f"--warn={warnings}", *options], logger=logger or _quiet, message_limit=message_limit)


_KILLED_AT_LIMIT = False


def killed_at_limit() -> None:
    """Say that this process is killed at its time limit (a server's worker): a search that needs
    no limit of its own (see :func:`models`) then runs in this thread. Waiting for a solver thread
    costs a thread switch or two a solve: on a busy machine, 1.6-4.6 ms a warm decision against
    1.4 ms (measured)."""
    global _KILLED_AT_LIMIT
    _KILLED_AT_LIMIT = True


def models(control: clingo.Control, time_limit: Optional[float], assumptions: Sequence[int] = (), decided: bool = False) -> Iterator[clingo.Model]:
    """Yield the models of a grounded control, one at a time.

    Raises :class:`SolveTimeout` when the next model (or the proof that there
    is none) takes longer than ``time_limit`` seconds; the search is stopped.
    A model is valid only until the next one is asked for. ``decided``: the
    program's grounding decides its one answer (no search can run away), so
    in a process killed at its limit (:func:`killed_at_limit`) the solver runs
    in this thread.
    """
    if decided and _KILLED_AT_LIMIT:
        with control.solve(assumptions=list(assumptions), yield_=True) as handle:
            yield from handle
        return
    with control.solve(assumptions=list(assumptions), yield_=True, async_=True) as handle:
        while True:
            handle.resume()
            if time_limit is not None and not _wait(handle, time.monotonic() + time_limit):
                handle.cancel()
                raise SolveTimeout(f"the solver did not finish within {time_limit:g} s")
            model = handle.model()
            if model is None:
                return
            yield model


WAIT_SLICE = 1.0
"""Seconds a wait for the solver blocks before it looks again (the deadline is unchanged)."""


def _wait(handle: clingo.SolveHandle, deadline: float) -> bool:
    """Whether the solver's next answer is ready by ``deadline`` (a ``time.monotonic()`` value).

    The wait is cut into slices of at most :data:`WAIT_SLICE`: once, in a
    full test run, a what-is-missing search that takes under a second in
    every other run was reported at the 60 s limit, as if the solver's
    wake-up had been lost. Looking again every second bounds what such a loss
    costs; a ready answer is returned at once either way.
    """
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return handle.wait(0)
        if handle.wait(min(WAIT_SLICE, left)):
            return True


def ground_program(
    kb: "KnowledgeBase", texts: Sequence[str], options: Sequence[str] = (), what: str = "the program", before_ground: Optional[Callable[[clingo.Control], None]] = None
) -> clingo.Control:
    """A control with the given program texts added and grounded.

    clingo's own messages become a KbError with their positions, so a KB
    that does not ground is reported like any other KB error.
    """
    from ..errors import KbError

    where = kb.display_path(kb.path)
    log = MessageLog(where)
    control = new_control(options, log)
    try:
        for text in texts:
            control.add("base", [], text)
        if before_ground is not None:
            before_ground(control)
        control.ground([("base", [])])
    except RuntimeError:
        raise KbError(log.errors() or [Diagnostic(where, 0, 0, "error", f"{what} does not ground")]) from None
    return control
