"""Adding case facts to clingo through its backend, and reading answers back.

Facts added through the backend never pass clingo's parser, so no input can
become program text; and they skip the cost of writing and parsing text,
which is most of what a chunk of small cases costs. Everything here uses
clingo's public API; :mod:`kineret_asp.asp._clingo_c` does the same through clingo's
C layer when it can (same answers, fewer Python objects).
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import clingo

from . import _clingo_c as _fast
from .symbols import Const, SymbolDecoder, check_string, is_identifier


def _check_name(name: str) -> None:
    if not is_identifier(name):
        raise ValueError(f"not a clingo predicate name: {name!r}")


class FactAdder:
    """Adds flat atoms ``(predicate, *args)`` as facts, with an optional first argument."""

    def __init__(self) -> None:
        self._symbols: dict[tuple[type, object], clingo.Symbol] = {}
        self._raw = _fast.RawFactAdder(self.symbol) if _fast.enabled() else None

    def symbol(self, value: object) -> clingo.Symbol:
        """The clingo symbol of a flat value (int, Const, str), checked and cached."""
        key = (type(value), value)
        found = self._symbols.get(key)
        if found is not None:
            return found
        kind = type(value)
        if kind is int:
            symbol = clingo.Number(value)  # type: ignore[arg-type]
        elif kind is Const:
            if not is_identifier(value):  # type: ignore[arg-type]
                raise ValueError(f"not a clingo constant: {value!r}")
            symbol = clingo.Function(str.__str__(value))  # type: ignore[arg-type]
        elif kind is str:
            check_string(value)  # type: ignore[arg-type]
            symbol = clingo.String(value)  # type: ignore[arg-type]
        else:
            raise TypeError(f"no clingo term for {value!r}")
        if len(self._symbols) < 200_000:
            self._symbols[key] = symbol
        return symbol

    def add_cases(self, control: clingo.Control, guard: tuple, cases: Sequence[Sequence[tuple]]) -> None:
        """Add, for every case ``k``, the atom ``guard`` and each of the case's atoms, with ``k`` as their first argument."""
        if self._raw is not None:
            self._raw.add_cases(control, guard, cases, _check_name)
            return
        flat: list[tuple] = []
        ids: list[int] = []
        for k, atoms in enumerate(cases):
            flat.append(guard)
            ids.append(k)
            flat.extend(atoms)
            ids.extend([k] * len(atoms))
        self.add(control, flat, ids)

    def add(self, control: clingo.Control, atoms: Iterable[tuple], first: Optional[Sequence[object]] = None) -> None:
        """Add every atom as a fact; ``first[i]`` is prepended to atom i when given."""
        if self._raw is not None:
            self._raw.add(control, atoms, first, _check_name)
            return
        symbol = self.symbol
        with control.backend() as backend:
            for i, atom in enumerate(atoms):
                _check_name(atom[0])
                args = [symbol(v) for v in atom[1:]]
                if first is not None:
                    args.insert(0, symbol(first[i]))
                backend.add_rule([backend.add_atom(clingo.Function(atom[0], args))])


class ShownReader:
    """Reads a model's shown atoms ``p(k, a, ...)`` into the answers of the cases ``k``."""

    def __init__(self, decode: SymbolDecoder) -> None:
        self.decode = decode
        self._raw = _fast.RawShownReader(decode, decode.cache) if _fast.enabled() else None

    def read_into(self, model: clingo.Model, outputs: Sequence[dict[str, list]]) -> None:
        """Append ``(a, ...)`` to ``outputs[k][p]`` for every shown atom ``p(k, a, ...)``."""
        if self._raw is not None:
            self._raw.read_into(model, outputs)
            return
        tagged = self.decode.tagged
        for symbol in model.symbols(shown=True):
            name, k, rest = tagged(symbol)
            outputs[k][name].append(rest)


def shown_atoms(model: clingo.Model) -> frozenset:
    """A model's shown atoms as a set whose members are equal exactly when the atoms are.

    Members are raw symbol numbers on the fast path (a set of thousands of
    atoms compared model after model makes no Symbol), symbols otherwise;
    :func:`atom_symbol` gives a member's symbol.
    """
    if _fast.enabled():
        return _fast.shown_numbers(model)
    return frozenset(model.symbols(shown=True))


def atom_symbol(member: "clingo.Symbol | int") -> clingo.Symbol:
    """The symbol of a member of :func:`shown_atoms`."""
    return member if isinstance(member, clingo.Symbol) else _fast.symbol_of(member)
