"""Solving with a time limit: the one loop every solver call goes through."""
from __future__ import annotations

from typing import Iterator, Optional, Sequence

import clingo

from .errors import SolveTimeout


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
