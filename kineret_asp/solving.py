"""Grounding and solving: the one place every clingo call of the package goes through."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator, Optional, Sequence

import clingo

from .errors import SolveTimeout

if TYPE_CHECKING:  # pragma: no cover
    from .knowledge import KnowledgeBase


def models(control: clingo.Control, time_limit: Optional[float], assumptions: Sequence[int] = ()) -> Iterator[clingo.Model]:
    """Yield the models of a grounded control, one at a time.

    Raises :class:`SolveTimeout` when the next model (or the proof that there
    is none) takes longer than ``time_limit`` seconds; the search is stopped.
    A model is valid only until the next one is asked for.
    """
    with control.solve(assumptions=list(assumptions), yield_=True, async_=True) as handle:
        while True:
            handle.resume()
            if time_limit is not None and not handle.wait(time_limit):
                handle.cancel()
                raise SolveTimeout(f"the solver did not finish within {time_limit:g} s")
            model = handle.model()
            if model is None:
                return
            yield model


def ground_program(kb: "KnowledgeBase", texts: Sequence[str], options: Sequence[str] = (), what: str = "the program", before_ground: Optional[Callable[[clingo.Control], None]] = None) -> clingo.Control:
    """A control with the given program texts added and grounded.

    clingo's own messages become a KbError with their positions, so a KB
    that does not ground is reported like any other KB error.
    """
    from .errors import Diagnostic, KbError
    from .knowledge import MessageLog

    where = kb.display_path(kb.path)
    log = MessageLog(where)
    control = clingo.Control(["--warn=none", *options], logger=log, message_limit=20)
    try:
        for text in texts:
            control.add("base", [], text)
        if before_ground is not None:
            before_ground(control)
        control.ground([("base", [])])
    except RuntimeError:
        raise KbError(log.errors() or [Diagnostic(where, 0, 0, "error", f"{what} does not ground")]) from None
    return control
