"""Running clingo on cases: the KB grounded for a chunk of cases at once.

The single-case KB is rewritten once (see :mod:`kineret_asp.engine.program`) so that
every case-dependent predicate carries a case number; a chunk of cases is
then one program: the KB, the static facts once, and each case's input
facts under its number. One grounding decides the whole chunk, and the KB's
stratified rules leave nothing for the solver to search. The answers are the
atoms the KB shows (``#show``), read back per case.

Case facts go in through clingo's backend (:mod:`kineret_asp.asp.facts`):
they never pass the parser, so no input can become program text.

A chunk that takes longer than the time limit (scaled with its size) is
decided again case by case, each within the per-case limit; a chunk with no
answer (an integrity constraint failing for some case) is split until the
case is found. Either way that case alone gets a :class:`CaseFailure`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Optional, Sequence

import clingo

from ..asp.facts import FactAdder, ShownReader
from ..asp.solving import ground_program, models
from ..asp.symbols import SymbolDecoder
from ..errors import SolveTimeout
from ..knowledge.base import KnowledgeBase
from .program import CASE_GUARD, Compiled, compiled

Output = dict[str, list[tuple]]
"""A case's answer: for every shown predicate, its atoms' arguments."""


@dataclass(frozen=True)
class CaseFailure:
    """A case the solver could not decide (no answer, or over the time limit)."""

    message: str


def input_signatures(kb: KnowledgeBase) -> set[tuple[str, int]]:
    """The case inputs: every predicate the KB's case schema declares."""
    return kb.schema.input_signatures()


class ChunkEngine:
    """Decide cases in chunks with one clingo grounding per chunk."""

    def __init__(self, kb: KnowledgeBase, chunk_size: int = 2000, time_limit: Optional[float] = 10.0):
        self.kb = kb
        self.chunk_size = chunk_size
        self.time_limit = time_limit
        self.decode = SymbolDecoder()
        self.adder = FactAdder()
        self.reader = ShownReader(self.decode)
        self._lock = threading.RLock()  # the fact and answer buffers are shared

    @cached_property
    def program(self) -> Compiled:
        return compiled(self.kb)

    def run(self, cases: Sequence[Sequence[tuple]]) -> list["Output | CaseFailure"]:
        """Decide every case (given as its input atoms); results in the same order."""
        results: list[Output | CaseFailure] = []
        with self._lock:
            for start in range(0, len(cases), self.chunk_size):
                results.extend(self._run_chunk(cases[start : start + self.chunk_size]))
        return results

    def _run_chunk(self, cases: Sequence[Sequence[tuple]]) -> list["Output | CaseFailure"]:
        try:
            outputs = self._solve(cases)
        except SolveTimeout:
            if len(cases) == 1:
                return [CaseFailure(f"the solver did not finish within {self.time_limit:g} s")]
            return [r for c in cases for r in self._run_chunk([c])]
        if outputs is None:  # some case makes the program unsatisfiable: find it
            if len(cases) == 1:
                return [CaseFailure("the KB has no answer for this case (an integrity constraint fails)")]
            mid = len(cases) // 2
            return self._run_chunk(cases[:mid]) + self._run_chunk(cases[mid:])
        return outputs

    def _solve(self, cases: Sequence[Sequence[tuple]]) -> Optional[list[Output]]:
        program = self.program

        def add_facts(control: clingo.Control) -> None:
            self.adder.add_cases(control, (CASE_GUARD,), cases)

        control = ground_program(self.kb, [program.chunk_text], (), "the KB", add_facts)
        names = [name for name, _ in program.shown]
        outputs: list[Output] = [{name: [] for name in names} for _ in cases]
        found = False
        limit = None if self.time_limit is None else self.time_limit * max(1, len(cases)) ** 0.5
        for model in models(control, limit):
            found = True
            self.reader.read_into(model, outputs)
            break
        return outputs if found else None
