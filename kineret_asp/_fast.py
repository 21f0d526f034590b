"""The only module that reaches under clingo's public Python API, for speed.

A chunk of small cases costs mostly Python objects: one ``clingo.Symbol``
per argument going in, one per atom coming out. clingo's Python package is a
thin layer over its C API (``clingo._internal``); calling those C functions
on raw symbol numbers avoids the objects, and keying caches on a symbol's
raw number (``Symbol._rep``) turns most decodes into a dictionary lookup.

Everything here has a public-API twin (:mod:`kineret_asp.backendfacts`,
:mod:`kineret_asp.terms`) that gives the same answers; the tests run both
on hundreds of cases and compare the output bytes. The fast path is used
when clingo offers the functions it needs and ``KINERET_ASP_PUBLIC_API`` is
not set; set it (to anything but ``0``) to use only the public API.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Optional, Sequence

import clingo

try:  # the C layer of clingo's Python package (clingo 5.6 - 5.8)
    from clingo._internal import _ffi, _lib

    AVAILABLE = all(hasattr(_lib, name) for name in ("clingo_backend_rule", "clingo_backend_add_atom", "clingo_symbol_create_function", "clingo_model_symbols", "clingo_symbol_arguments", "clingo_symbol_name"))
except ImportError:  # pragma: no cover - another clingo build
    AVAILABLE = False


def enabled() -> bool:
    """Whether the fast path is in use (clingo offers it and the user has not turned it off)."""
    return AVAILABLE and os.environ.get("KINERET_ASP_PUBLIC_API", "0") in ("", "0")


def symbol_key(symbol: clingo.Symbol) -> Any:
    """A dictionary key for a symbol: its raw number (equal symbols share one)."""
    return symbol._rep


_NUMBER_TAG = 1 << 48
_NUMBER_MASK = (1 << 32) - 1


def number_of(symbol: clingo.Symbol) -> int:
    """A non-negative number symbol's value, read from its raw bits (numbers are stored in the word)."""
    rep = symbol._rep
    if rep >> 32 == _NUMBER_TAG >> 32:
        return rep & _NUMBER_MASK
    return symbol.number


class RawFactAdder:
    """Adds flat atoms as facts through clingo's C backend functions."""

    def __init__(self, rep: Callable[[object], int]) -> None:
        self._rep = rep
        self._names: dict[str, object] = {}
        self._sym = _ffi.new("clingo_symbol_t*")
        self._atom = _ffi.new("clingo_atom_t*")
        self._head = _ffi.new("clingo_atom_t[1]")
        self._args = _ffi.new("clingo_symbol_t[16]")

    def add(self, control: clingo.Control, atoms: Iterable[tuple], first: Optional[Sequence[object]], check_name: Callable[[str], None]) -> None:
        rep = self._rep
        args, sym, out, head = self._args, self._sym, self._atom, self._head
        create, add_atom, rule = _lib.clingo_symbol_create_function, _lib.clingo_backend_add_atom, _lib.clingo_backend_rule
        with control.backend() as backend:
            handle = backend._rep
            for i, atom in enumerate(atoms):
                name = self._names.get(atom[0])
                if name is None:
                    check_name(atom[0])
                    name = self._names[atom[0]] = _ffi.new("char[]", atom[0].encode())
                n = 0
                if first is not None:
                    args[0] = rep(first[i])
                    n = 1
                for value in atom[1:]:
                    args[n] = rep(value)
                    n += 1
                if not create(name, args, n, True, sym):
                    raise RuntimeError("clingo could not create a symbol")
                if not add_atom(handle, sym, out):
                    raise RuntimeError("clingo could not add an atom")
                head[0] = out[0]
                if not rule(handle, False, head, 1, _ffi.NULL, 0):
                    raise RuntimeError("clingo could not add a fact")


def raw_symbol(value: clingo.Symbol) -> int:
    """The raw number of a symbol built with the public API."""
    return value._rep


class RawShownReader:
    """Reads a model's shown atoms ``p(k, a, ...)`` as ``(p, k, (a, ...))`` through the C functions."""

    def __init__(self, decode: Callable[[clingo.Symbol], Any], cache: dict) -> None:
        self.decode = decode
        self.cache = cache
        self._names: dict[int, str] = {}
        self._size = _ffi.new("size_t*")
        self._args = _ffi.new("clingo_symbol_t**")
        self._name = _ffi.new("char**")

    def read(self, model: clingo.Model) -> list[tuple[str, int, tuple]]:
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
        cache = self.cache
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
            out.append((name, args[0] & _NUMBER_MASK, tuple(rest)))
        return out
