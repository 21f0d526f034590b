"""Adding case facts to clingo through its backend, without any program text.

Facts added through the backend never pass clingo's parser, so no input can
become program text; and they skip the cost of writing and parsing text,
which is most of what a chunk of small cases costs. This uses the C
functions under clingo's Python API (``clingo._internal``) to avoid a Python
object per symbol; where they are missing, the public ``Backend`` API is used.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import clingo

from .terms import Const, check_string, is_identifier

try:  # the C layer of clingo's Python package (clingo 5.6 - 5.8)
    from clingo._internal import _ffi, _lib

    RAW = hasattr(_lib, "clingo_backend_rule") and hasattr(_lib, "clingo_symbol_create_function")
except ImportError:  # pragma: no cover - another clingo build
    RAW = False


class FactAdder:
    """Adds flat atoms ``(predicate, *args)`` as facts, with an optional first argument."""

    def __init__(self) -> None:
        self._numbers: dict[int, int] = {}
        self._consts: dict[str, int] = {}
        self._strings: dict[str, int] = {}
        self._names: dict[str, object] = {}
        if RAW:
            self._sym = _ffi.new("clingo_symbol_t*")
            self._atom = _ffi.new("clingo_atom_t*")
            self._head = _ffi.new("clingo_atom_t[1]")
            self._args = _ffi.new("clingo_symbol_t[16]")

    def _rep(self, value: object) -> int:
        kind = type(value)
        if kind is int:
            rep = self._numbers.get(value)  # type: ignore[arg-type]
            if rep is None:
                rep = self._numbers[value] = clingo.Number(value)._rep  # type: ignore[arg-type]
            return rep
        if kind is Const:
            rep = self._consts.get(value)  # type: ignore[arg-type]
            if rep is None:
                if not is_identifier(value):  # type: ignore[arg-type]
                    raise ValueError(f"not a clingo constant: {value!r}")
                rep = self._consts[value] = clingo.Function(str.__str__(value))._rep  # type: ignore[arg-type]
            return rep
        if kind is str:
            rep = self._strings.get(value)  # type: ignore[arg-type]
            if rep is None:
                check_string(value)  # type: ignore[arg-type]
                rep = clingo.String(value)._rep  # type: ignore[arg-type]
                if len(self._strings) < 100_000:
                    self._strings[value] = rep  # type: ignore[index]
            return rep
        raise TypeError(f"no clingo term for {value!r}")

    def add(self, control: clingo.Control, atoms: Iterable[tuple], first: Optional[Sequence[object]] = None) -> None:
        """Add every atom as a fact; ``first[i]`` is prepended to atom i when given."""
        if not RAW:
            self._add_public(control, atoms, first)
            return
        numbers = self._numbers
        rep = self._rep
        args, sym, out, head = self._args, self._sym, self._atom, self._head
        create, add_atom, rule = _lib.clingo_symbol_create_function, _lib.clingo_backend_add_atom, _lib.clingo_backend_rule
        with control.backend() as backend:
            handle = backend._rep
            for i, atom in enumerate(atoms):
                name = self._names.get(atom[0])
                if name is None:
                    if not is_identifier(atom[0]):
                        raise ValueError(f"not a clingo predicate name: {atom[0]!r}")
                    name = self._names[atom[0]] = _ffi.new("char[]", atom[0].encode())
                n = 0
                if first is not None:
                    f = first[i]
                    args[0] = numbers.get(f) or rep(f)  # type: ignore[arg-type]
                    n = 1
                for value in atom[1:]:
                    args[n] = rep(value)
                    n += 1
                if not create(name, args, n, True, sym):
                    raise RuntimeError(clingo._internal._error_message() if hasattr(clingo._internal, "_error_message") else "clingo could not create a symbol")
                if not add_atom(handle, sym, out):
                    raise RuntimeError("clingo could not add an atom")
                head[0] = out[0]
                if not rule(handle, False, head, 1, _ffi.NULL, 0):
                    raise RuntimeError("clingo could not add a fact")

    def _add_public(self, control: clingo.Control, atoms: Iterable[tuple], first: Optional[Sequence[object]]) -> None:
        from .terms import to_symbol

        with control.backend() as backend:
            for i, atom in enumerate(atoms):
                args = atom[1:] if first is None else (first[i], *atom[1:])
                backend.add_rule([backend.add_atom(to_symbol((atom[0], *args)))])
