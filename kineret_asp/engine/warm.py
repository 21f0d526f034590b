"""A warm engine for one case at a time: the KB grounded once, inputs as externals.

Grounding costs milliseconds however small the case, so answering one case
from a warm process must not ground. This engine grounds the KB once with
every input atom a case may contribute declared ``#external`` (over bounded
domains: the vocabularies, a number of list entries, a range of numbers,
the names seen), and answers a case by switching the case's atoms on
(``assign_external``) and solving: every other external stays false, so the
one model is exactly the model the case's facts would give.

A case larger than the biggest size class, or with a value outside the
domains, is answered by the chunk engine instead. A value outside the
domains is remembered the first time a case brings it; when a case brings
one of them again, the domains widen by every value remembered (one
rebuild), up to a bound. A rebuild grounds a size class again (about ten
times a one-case chunk run): a value met once, as free-text input and
generated cases bring many, is cheaper decided by the chunk engine, and
values that come back are worth declaring. Both engines give the same
answers; the tests check it.
"""

from __future__ import annotations

import threading
from typing import Optional, Sequence

from ..asp.solving import ground_program, models
from ..asp.symbols import Const, FactWriter, SymbolDecoder
from ..errors import SolveTimeout
from ..knowledge.base import KnowledgeBase
from ..knowledge.schema import DATE, INTEGER, KEY, NAME, OPEN_KEY
from .chunked import CaseFailure, ChunkEngine, Output
from .program import compiled

SIZE_CLASSES = (1, 2, 3, 4, 6, 8)
MAX_EXTRA_VALUES = 200  # values outside the vocabularies (months, genes) kept in the domains
LAZY_KEYS = 40
"""A vocabulary with more keys than this (the drugs) is declared only as cases bring its keys, each
with the keys the KB cannot tell apart from it: every key declared makes every solve walk its atoms."""
MAX_PENDING = 1_000
"""Values met once kept waiting to come back (past it, those waiting are forgotten: a stream of values never met twice)."""
NUMBER_BLOCK = 12
"""A number outside a domain widens it by its whole block of 12 (months 37 brings 36..47): cases
bring nearby numbers one after another, and each widening grounds every size class again."""

Position = tuple[str, int]  # (input predicate, argument index)


def initial_values(kind) -> list:
    """The values of an open domain declared before any case is seen."""
    if kind.name == INTEGER:
        low = kind.minimum or 0
        high = kind.maximum if kind.maximum is not None else low + 120
        values = set(range(low, min(high, low + 36) + 1)) | {v for v in range(0, 121, 12) if low <= v <= high}
        return sorted(values)
    return []


def lazy_vocabularies(kb: KnowledgeBase) -> set[str]:
    """The vocabularies whose keys are declared as cases bring them (more than LAZY_KEYS keys)."""
    return {v for v, keys in kb.vocabulary.keys.items() if len(keys) > LAZY_KEYS}


def external_program(kb: KnowledgeBase, slots: int, extra: dict[Position, list]) -> str:
    """#external declarations for every input atom over the domains.

    Each argument ranges over ``dom__(Predicate, Index, Value)``: entry
    numbers up to ``slots``, the keys of its vocabulary (of a large one, only
    the keys cases brought so far), and the extra values (numbers, names)
    seen so far.
    """
    lazy = lazy_vocabularies(kb)
    writer = FactWriter()
    lines = []
    for (name, arity), args in sorted(kb.schema.input_predicates.items()):
        if not args:
            lines.append(f"#external {name}.")
            continue
        for i, arg in enumerate(args):
            head = f'dom__("{name}", {i}, X)'
            if arg.index:
                lines.append(f"{head} :- X = 0..{slots - 1}.")
            elif arg.kind.name in (KEY, OPEN_KEY, NAME) and arg.kind.vocabulary and arg.kind.vocabulary not in lazy:
                lines.append(f"{head} :- {arg.kind.vocabulary}(X, _).")
            lines += [writer.fact(("dom__", name, i, v)) for v in extra.get((name, i), ())]
        cond = ", ".join(f'dom__("{name}", {i}, X{i})' for i in range(arity))
        lines.append(f"#external {name}({','.join(f'X{i}' for i in range(arity))}) : {cond}.")
    lines.append("#defined dom__/3.")
    return "\n".join(lines)


class _Sized:
    """One grounded program for cases of up to ``slots`` list entries."""

    def __init__(self, kb: KnowledgeBase, slots: int, extra: dict[Position, list]):
        self.slots = slots
        self.control = ground_program(kb, [compiled(kb).decision_text, external_program(kb, slots, extra)], (), "the KB")
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
        self.shown = compiled(kb).shown
        self.decode = SymbolDecoder()
        self.open_positions = {
            (name, i): arg.kind for (name, _), args in kb.schema.input_predicates.items() for i, arg in enumerate(args) if not arg.index and arg.kind.name in (INTEGER, DATE, NAME, KEY, OPEN_KEY)
        }
        self.extra: dict[Position, list] = {pos: initial_values(kind) for pos, kind in self.open_positions.items()}
        lazy = lazy_vocabularies(kb)
        self.lazy_positions = {pos: kind.vocabulary for pos, kind in self.open_positions.items() if kind.name in (KEY, OPEN_KEY) and kind.vocabulary in lazy}
        self._sized: dict[int, _Sized] = {}
        self._lock = threading.Lock()
        self.numbered = {name for (name, _), args in kb.schema.input_predicates.items() if args and args[0].index}
        self.fallbacks = 0  # cases the chunk engine decided: too many entries, a value met for the first time, the bound reached
        self.rebuilds = 0
        self.first_seen = 0  # of those, cases that brought a value the domains did not hold yet, met for the first time
        self.pending: dict[Position, set] = {}  # values met once, outside the domains: declared when one comes back

    def _program(self, slots: int) -> _Sized:
        sized = self._sized.get(slots)
        if sized is None:
            sized = self._sized[slots] = _Sized(self.kb, slots, self.extra)
        return sized

    def _widen(self, atoms: Sequence[tuple]) -> Optional[bool]:
        """Add values outside the domains (new months, genes) to them; False when over the bound.

        None when every such value is met for the first time: they are
        remembered, and declared (with every value remembered) when a case
        brings one of them again.
        """
        new = self._new_values(atoms)
        if not new:
            return True
        if not any(values & self.pending.get(pos, set()) for pos, values in new.items()):
            if sum(map(len, self.pending.values())) + sum(map(len, new.values())) > MAX_PENDING:
                self.pending.clear()
            for pos, values in new.items():
                self.pending.setdefault(pos, set()).update(values)
            return None
        for pos, values in self.pending.items():
            new.setdefault(pos, set()).update(values - set(self.extra[pos]))
        bounded = [pos for pos in {*self.extra, *new} if pos not in self.lazy_positions]
        if sum(len(self.extra.get(p, ())) + len(new.get(p, ())) for p in bounded) > MAX_EXTRA_VALUES + sum(len(initial_values(k)) for k in self.open_positions.values()):
            return False
        self.pending.clear()
        for pos, values in new.items():
            self.extra[pos] = sorted(set(self.extra[pos]) | values, key=repr)
        self._sized.clear()
        self.rebuilds += 1
        return True

    def _new_values(self, atoms: Sequence[tuple]) -> dict[Position, set]:
        """The values of a case outside the domains, by position (a drug with the keys like it, a number with its block)."""
        new: dict[Position, set] = {}
        for atom in atoms:
            for i, value in enumerate(atom[1:]):
                pos = (atom[0], i)
                if pos not in self.open_positions or value in self.extra[pos]:
                    continue
                if pos in self.lazy_positions and isinstance(value, Const):
                    new.setdefault(pos, set()).update(Const(k) for k in self._class_of(self.lazy_positions[pos], str(value)))
                elif not isinstance(value, Const):
                    new.setdefault(pos, set()).update(self._block(self.open_positions[pos], value))
        for pos in new:
            new[pos] -= set(self.extra[pos])
        return {pos: values for pos, values in new.items() if values}

    def _class_of(self, vocabulary: str, key: str) -> tuple[str, ...]:
        """A key with every key the KB cannot tell apart from it: declared together, they are one widening."""
        from .symmetry import key_classes

        classes = self.kb.derived(f"key_classes:{vocabulary}", lambda: key_classes(self.kb, vocabulary))
        return classes.get(key, (key,))

    @staticmethod
    def _block(kind, value) -> list:
        """The values a new value brings into its domain: for a whole number, its block within the kind's bounds."""
        if kind.name != INTEGER or not isinstance(value, int):
            return [value]
        start = value - value % NUMBER_BLOCK
        low = kind.minimum if kind.minimum is not None else start
        high = kind.maximum if kind.maximum is not None else start + NUMBER_BLOCK - 1
        return [v for v in range(start, start + NUMBER_BLOCK) if low <= v <= high] or [value]

    def run_one(self, atoms: Sequence[tuple]) -> "Output | CaseFailure":
        """Decide one case given as input atoms."""
        entries = 1 + max((a[1] for a in atoms if a[0] in self.numbered), default=-1)
        slots = next((s for s in SIZE_CLASSES if s >= entries), None)
        if slots is None:
            self.fallbacks += 1
            return self.fallback.run([atoms])[0]
        with self._lock:
            sized = self._program(slots)
            literals = [sized.literal.get(a) for a in atoms]
            if None in literals:
                widened = self._widen(atoms)
                if not widened:
                    self.fallbacks += 1
                    self.first_seen += 1 if widened is None else 0
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
            for model in models(sized.control, self.time_limit, decided=True):  # the decision part is stratified
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
