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


class ShownReader:
    """Reads a model's shown atoms ``p(k, a, ...)`` as ``(p, k, (a, ...))`` tuples.

    Goes through clingo's C functions on the raw symbol numbers: no Python
    symbol object per atom, names and argument values through caches (clingo
    interns both). Where those functions are missing, the public API is used.
    """

    def __init__(self, decode) -> None:
        self.decode = decode
        self._names: dict[int, str] = {}
        if RAW:
            self._size = _ffi.new("size_t*")
            self._args = _ffi.new("clingo_symbol_t**")
            self._name = _ffi.new("char**")

    def read(self, model: clingo.Model) -> list[tuple[str, int, tuple]]:
        if not RAW:
            return [self.decode.tagged(s) for s in model.symbols(shown=True)]
        show = _lib.clingo_show_type_shown
        size = self._size
        if not _lib.clingo_model_symbols_size(model._rep, show, size):
            raise RuntimeError("clingo could not read the model")
        count = size[0]
        symbols = _ffi.new("clingo_symbol_t[]", count)
        if not _lib.clingo_model_symbols(model._rep, show, symbols, count):
            raise RuntimeError("clingo could not read the model")
        out = []
        names = self._names
        args_ptr, name_ptr = self._args, self._name
        cache = self.decode._cache
        decode = self.decode
        arguments, name_of = _lib.clingo_symbol_arguments, _lib.clingo_symbol_name
        for i in range(count):
            rep = symbols[i]
            arguments(rep, args_ptr, size)
            args = args_ptr[0]
            n = size[0]
            name_of(rep, name_ptr)
            key = int(_ffi.cast("uintptr_t", name_ptr[0]))
            name = names.get(key)
            if name is None:
                name = names[key] = _ffi.string(name_ptr[0]).decode()
            rest = []
            for j in range(1, n):
                arg = args[j]
                value = cache.get(arg)
                if value is None:
                    value = decode(clingo.Symbol(arg))
                rest.append(value)
            out.append((name, args[0] & 0xFFFFFFFF, tuple(rest)))
        return out
