"""A warm engine for one case at a time: the KB grounded once, inputs as externals.

Grounding costs milliseconds however small the case, so answering one case
from a warm process must not ground. This engine grounds the KB once with
every input atom a case may contribute declared ``#external`` (over bounded
domains: the KB's vocabulary, a number of list entries, a range of months,
the genes seen), and answers a case by switching the case's atoms on
(``assign_external``) and solving: every other external stays false, so the
one model is exactly the model the case's facts would give.

A case larger than the biggest size class, or with a value outside the
domains, is answered by the chunk engine instead; new months values and
genes widen the domains (a rebuild) up to a bound. Both engines give the
same answers; the tests check it.
"""
from __future__ import annotations

import threading
from typing import Optional, Sequence

from .engine import CaseFailure, ChunkEngine, Output, shown_signatures
from .errors import SolveTimeout
from .solving import ground_program, models
from .knowledge import KnowledgeBase
from .terms import FactWriter, SymbolDecoder

SIZE_CLASSES = (1, 2, 3, 4, 6, 8)
DEFAULT_MONTHS = tuple(range(0, 37)) + (48, 60, 72, 84, 96, 120)
MAX_MONTHS_VALUES = 200
MAX_GENES = 64

# which vocabulary holds the values of each argument of each input predicate
# ("index" is a list position, "months" and "gene" are open domains)
INPUT_DOMAINS: dict[str, tuple[str, ...]] = {
    "case_indication": ("indication",),
    "case_plan": ("plan",),
    "case_request": ("request",),
    "case_specialty": ("specialty",),
    "case_genetic_test": ("index", "gene", "test_result"),
    "case_history": ("index", "drug", "outcome"),
    "case_history_months": ("index", "months"),
    "case_history_sample": ("index",),
    "case_current_medication": ("drug",),
    "case_beneficial_response": (),
}


# the KB predicate whose first argument lists each vocabulary's keys
_VOCABULARY_ATOMS = {
    "indication": "indication({},_)",
    "plan": "plan({},_)",
    "request": "request({},_)",
    "specialty": "specialty({},_)",
    "drug": "drug({},_)",
    "outcome": "outcome({},_)",
    "test_result": "test_result({},_)",
    "index": "slot__({})",
    "months": "months__({})",
    "gene": "gene__({})",
}


def external_program(slots: int, months: Sequence[int], genes: Sequence[str]) -> str:
    """#external declarations for every input atom over the domains."""
    writer = FactWriter()
    lines = [f"slot__(0..{slots - 1})."]
    lines += [writer.fact(("months__", m)) for m in months]
    lines += [writer.fact(("gene__", g)) for g in genes]
    for name, kinds in INPUT_DOMAINS.items():
        if not kinds:
            lines.append(f"#external {name}.")
            continue
        args = [f"X{i}" for i in range(len(kinds))]
        cond = ", ".join(_VOCABULARY_ATOMS[k].format(a) for k, a in zip(kinds, args))
        lines.append(f"#external {name}({','.join(args)}) : {cond}.")
    return "\n".join(lines)


def decision_program(kb: KnowledgeBase) -> str:
    """The KB's base part, reduced to what the shown predicates depend on (cached on disk)."""
    from clingo.ast import ASTType

    from .diskcache import cached_text
    from .rewrite import needed_statements

    def build() -> str:
        base = [s.node for s in kb.part("base") if s.node.ast_type != ASTType.Program]
        domains = [(atom.split("(")[0], 2) for atom in _VOCABULARY_ATOMS.values() if not atom.split("(")[0].endswith("__")]
        return "\n".join(str(n) for n in needed_statements(base, [*shown_signatures(kb), *domains]))

    return cached_text("decision", kb.digest, build)


class _Sized:
    """One grounded program for cases of up to ``slots`` list entries."""

    def __init__(self, kb: KnowledgeBase, slots: int, months: Sequence[int], genes: Sequence[str]):
        self.slots = slots
        self.control = ground_program(kb, [decision_program(kb), external_program(slots, months, genes)], (), "the KB")
        decode = SymbolDecoder()
        self.literal: dict[tuple, int] = {}
        for atom in self.control.symbolic_atoms:
            if atom.is_external:
                value = decode(atom.symbol)
                self.literal[value if isinstance(value, tuple) else (str(value),)] = atom.literal


class ResidentEngine:
    """Answer one case at a time from a grounded program, without grounding."""

    def __init__(self, kb: KnowledgeBase, fallback: Optional[ChunkEngine] = None, time_limit: Optional[float] = 10.0):
        self.kb = kb
        self.fallback = fallback or ChunkEngine(kb, time_limit=time_limit)
        self.time_limit = time_limit
        self.shown = shown_signatures(kb)
        self.decode = SymbolDecoder()
        self.months: list[int] = list(DEFAULT_MONTHS)
        self.genes: list[str] = sorted(kb.vocabulary.genes)
        self._sized: dict[int, _Sized] = {}
        self._lock = threading.Lock()
        self.fallbacks = 0
        self.rebuilds = 0

    def _program(self, slots: int) -> _Sized:
        sized = self._sized.get(slots)
        if sized is None:
            sized = self._sized[slots] = _Sized(self.kb, slots, self.months, self.genes)
        return sized

    def _widen(self, atoms: Sequence[tuple]) -> bool:
        """Add new months values and genes to the domains; False when over the bounds."""
        months = {a[2] for a in atoms if a[0] == "case_history_months"} - set(self.months)
        genes = {a[2] for a in atoms if a[0] == "case_genetic_test"} - set(self.genes)
        if not months and not genes:
            return True
        if len(self.months) + len(months) > MAX_MONTHS_VALUES or len(self.genes) + len(genes) > MAX_GENES:
            return False
        self.months = sorted(set(self.months) | months)
        self.genes = sorted(set(self.genes) | genes)
        self._sized.clear()
        self.rebuilds += 1
        return True

    def run_one(self, atoms: Sequence[tuple]) -> "Output | CaseFailure":
        """Decide one case given as input atoms."""
        entries = 1 + max((a[1] for a in atoms if a[0] in ("case_history", "case_genetic_test")), default=-1)
        slots = next((s for s in SIZE_CLASSES if s >= entries), None)
        if slots is None:
            self.fallbacks += 1
            return self.fallback.run([atoms])[0]
        with self._lock:
            sized = self._program(slots)
            literals = [sized.literal.get(a) for a in atoms]
            if None in literals:
                if not self._widen(atoms):
                    self.fallbacks += 1
                    return self.fallback.run([atoms])[0]
                sized = self._program(slots)
                literals = [sized.literal.get(a) for a in atoms]
                if None in literals:  # a value no domain holds: decide it the slow way
                    self.fallbacks += 1
                    return self.fallback.run([atoms])[0]
            true = sorted(set(literals))
            control = sized.control
            for lit in true:
                control.assign_external(lit, True)
            try:
                return self._solve(sized)
            finally:
                for lit in true:
                    control.assign_external(lit, False)

    def _solve(self, sized: _Sized) -> "Output | CaseFailure":
        output: Output = {name: [] for name, _ in self.shown}
        decode = self.decode
        try:
            for model in models(sized.control, self.time_limit):
                for symbol in model.symbols(shown=True):
                    atom = decode(symbol)
                    if isinstance(atom, tuple):
                        output[atom[0]].append(atom[1:])
                    else:
                        output[str(atom)].append(())
                return output
        except SolveTimeout as exc:
            return CaseFailure(str(exc))
        return CaseFailure("the KB has no answer for this case (an integrity constraint fails)")
        return output
