"""Waiting for the solver: a deadline that holds, looked at again every slice."""

from __future__ import annotations

import time

import clingo
import pytest

from kineret_asp.asp.solving import WAIT_SLICE, _wait, models
from kineret_asp.errors import SolveTimeout

PIGEONS = "pigeon(1..13). hole(1..12). 1 { sits(P, H) : hole(H) } 1 :- pigeon(P). :- sits(P, H), sits(Q, H), P < Q."


class LostWakeUp:
    """A solve handle whose answer is ready, but whose first wait misses it (as a lost notification would)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        return len(self.waits) > 1


def test_a_lost_wake_up_costs_one_slice_not_the_whole_limit():
    handle = LostWakeUp()
    assert _wait(handle, time.monotonic() + 60) is True  # type: ignore[arg-type]
    assert handle.waits == [WAIT_SLICE, WAIT_SLICE]


@pytest.mark.slow  # waits out a 1.5 s limit; the fast lane keeps the lost wake-up above
def test_the_deadline_still_holds_when_the_search_goes_on():
    control = clingo.Control(["--warn=none"])
    control.add("base", [], PIGEONS)
    control.ground([("base", [])])
    began = time.monotonic()
    with pytest.raises(SolveTimeout, match="within 1.5 s"):
        list(models(control, 1.5))
    assert 1.5 <= time.monotonic() - began < 1.5 + 3
