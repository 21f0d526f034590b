"""The only module that reaches under clingo's public Python API, for speed.

A chunk of small cases costs mostly Python objects: one ``clingo.Symbol``
per argument going in, one per atom coming out. clingo's Python package is a
thin layer over its C API (``clingo._internal``); calling those C functions
on raw symbol numbers avoids the objects, and keying caches on a symbol's
raw number (``Symbol._rep``) turns most decodes into a dictionary lookup.

Everything here has a public-API twin (:mod:`kineret_asp.asp.facts`,
:mod:`kineret_asp.asp.symbols`) that gives the same answers; the tests run both
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

    AVAILABLE = all(
        hasattr(_lib, name) for name in ("clingo_backend_rule", "clingo_backend_add_atom", "clingo_symbol_create_function", "clingo_model_symbols", "clingo_symbol_arguments", "clingo_symbol_name")
    )
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


def shown_numbers(model: clingo.Model) -> frozenset:
    """The raw numbers of a model's shown atoms (equal atoms share one): set operations on them make no Symbol."""
    size = _ffi.new("size_t*")
    show = _lib.clingo_show_type_shown
    if not _lib.clingo_model_symbols_size(model._rep, show, size):
        raise RuntimeError("clingo could not read the model")
    count = size[0]
    symbols = _ffi.new("clingo_symbol_t[]", count)
    if not _lib.clingo_model_symbols(model._rep, show, symbols, count):
        raise RuntimeError("clingo could not read the model")
    return frozenset(_ffi.unpack(symbols, count))


def symbol_of(number: int) -> clingo.Symbol:
    """The symbol of a raw number :func:`shown_numbers` gave."""
    return clingo.Symbol(number)


_UNSET = object()


class RawFactAdder:
    """Adds flat atoms as facts through clingo's C backend functions.

    ``symbol`` gives the checked public-API symbol of a value; its raw
    number is kept by the value's type and value (a batch adds the same few
    hundred values millions of times).
    """

    def __init__(self, symbol: Callable[[object], clingo.Symbol]) -> None:
        self._symbol = symbol
        self._reps: dict[tuple[type, object], int] = {}
        self._names: dict[str, object] = {}
        self._sym = _ffi.new("clingo_symbol_t*")
        self._atom = _ffi.new("clingo_atom_t*")
        self._head = _ffi.new("clingo_atom_t[1]")
        self._args = _ffi.new("clingo_symbol_t[16]")

    def _rep(self, value: object) -> int:
        key = (type(value), value)
        rep = self._reps.get(key)
        if rep is None:
            rep = self._symbol(value)._rep
            if len(self._reps) < 200_000:
                self._reps[key] = rep
        return rep

    def add_cases(self, control: clingo.Control, guard: tuple, cases: Sequence[Sequence[tuple]], check_name: Callable[[str], None]) -> None:
        """Add ``guard`` and every atom of case ``k``, each with ``k`` as its first argument (see :meth:`FactAdder.add_cases`)."""
        reps, rep = self._reps, self._rep
        names = self._names
        args, sym, out, head = self._args, self._sym, self._atom, self._head
        create, add_atom, rule = _lib.clingo_symbol_create_function, _lib.clingo_backend_add_atom, _lib.clingo_backend_rule
        null = _ffi.NULL
        with control.backend() as backend:
            handle = backend._rep
            for k, atoms in enumerate(cases):
                args[0] = rep(k)
                for atom in (guard, *atoms):
                    name = names.get(atom[0])
                    if name is None:
                        check_name(atom[0])
                        name = names[atom[0]] = _ffi.new("char[]", atom[0].encode())
                    n = 1
                    for value in atom[1:]:
                        r = reps.get((type(value), value))
                        args[n] = r if r is not None else rep(value)
                        n += 1
                    if not create(name, args, n, True, sym):
                        raise RuntimeError("clingo could not create a symbol")
                    if not add_atom(handle, sym, out):
                        raise RuntimeError("clingo could not add an atom")
                    head[0] = out[0]
                    if not rule(handle, False, head, 1, null, 0):
                        raise RuntimeError("clingo could not add a fact")

    def add(self, control: clingo.Control, atoms: Iterable[tuple], first: Optional[Sequence[object]], check_name: Callable[[str], None]) -> None:
        reps, rep = self._reps, self._rep
        names = self._names
        args, sym, out, head = self._args, self._sym, self._atom, self._head
        create, add_atom, rule = _lib.clingo_symbol_create_function, _lib.clingo_backend_add_atom, _lib.clingo_backend_rule
        null = _ffi.NULL
        lead: object = _UNSET
        lead_rep = 0
        with control.backend() as backend:
            handle = backend._rep
            for i, atom in enumerate(atoms):
                name = names.get(atom[0])
                if name is None:
                    check_name(atom[0])
                    name = names[atom[0]] = _ffi.new("char[]", atom[0].encode())
                n = 0
                if first is not None:
                    value = first[i]
                    if value is not lead:  # the same first argument runs on over a case's atoms
                        lead, lead_rep = value, rep(value)
                    args[0] = lead_rep
                    n = 1
                for value in atom[1:]:
                    r = reps.get((type(value), value))
                    args[n] = r if r is not None else rep(value)
                    n += 1
                if not create(name, args, n, True, sym):
                    raise RuntimeError("clingo could not create a symbol")
                if not add_atom(handle, sym, out):
                    raise RuntimeError("clingo could not add an atom")
                head[0] = out[0]
                if not rule(handle, False, head, 1, null, 0):
                    raise RuntimeError("clingo could not add a fact")


SHOWN_KEPT = 100_000
"""Shown atoms a reader remembers by raw number: an atom of the case at place k of a chunk, met again at place k of
later chunks (a few hundred distinct answer atoms, at most a thousand places)."""
ATOMS_KEPT = 100_000
"""Distinct answer atoms a reader keeps one tuple of (a batch meets a few hundred)."""
READINGS_KEPT = 100_000
"""What the arguments after the case's number read as, kept by the predicate's name and their raw numbers (a few hundred recur)."""


def _itself(value: tuple, _default: tuple) -> tuple:
    return value


class RawShownReader:
    """Reads a model's shown atoms ``p(k, a, ...)`` into case ``k``'s answer through the C functions."""

    def __init__(self, decode: Callable[[clingo.Symbol], Any], cache: dict) -> None:
        self.decode = decode
        self.cache = cache
        self._names: dict[Any, str] = {}  # a name's C string (one per name in clingo) to the name
        self._atoms: dict[tuple, tuple] = {}  # one tuple for every equal answer atom: keys made of them compare by identity
        self._read: dict[int, tuple[int, str, tuple]] = {}  # a shown atom's raw number to what it reads as: (case, predicate, atom)
        self._readings: dict[tuple, tuple[str, tuple]] = {}  # (name's C string, raw arguments after the case's number) to (predicate, atom)
        self._size = _ffi.new("size_t*")
        self._args = _ffi.new("clingo_symbol_t**")
        self._name = _ffi.new("char**")

    def read_into(self, model: clingo.Model, outputs: Sequence[dict[str, list]]) -> None:
        """Append the arguments after ``k`` of every shown atom ``p(k, ...)`` to ``outputs[k][p]``."""
        show = _lib.clingo_show_type_shown
        size = self._size
        if not _lib.clingo_model_symbols_size(model._rep, show, size):
            raise RuntimeError("clingo could not read the model")
        count = size[0]
        symbols = _ffi.new("clingo_symbol_t[]", count)
        if not _lib.clingo_model_symbols(model._rep, show, symbols, count):
            raise RuntimeError("clingo could not read the model")
        names = self._names
        args_ptr, name_ptr = self._args, self._name
        get = self.cache.get
        decode = self.decode
        arguments, name_of = _lib.clingo_symbol_arguments, _lib.clingo_symbol_name
        mask = _NUMBER_MASK
        atoms = self._atoms
        same = atoms.setdefault if len(atoms) < ATOMS_KEPT else _itself
        read = self._read
        known = read.get
        room = len(read) < SHOWN_KEPT
        readings = self._readings
        reading = readings.get
        more = len(readings) < READINGS_KEPT
        for rep in symbols:
            hit = known(rep)
            if hit is not None:  # the same atom of the case at the same place of an earlier chunk
                outputs[hit[0]][hit[1]].append(hit[2])
                continue
            arguments(rep, args_ptr, size)
            args = args_ptr[0]
            n = size[0]
            name_of(rep, name_ptr)
            pointer = name_ptr[0]
            key = (pointer, args[1]) if n == 2 else (pointer, *[args[j] for j in range(1, n)])
            got = reading(key)
            if got is None:  # an atom not met before at any place: its name and arguments read
                name = names.get(pointer)
                if name is None:
                    name = names[pointer] = _ffi.string(pointer).decode()
                rest = []
                for arg in key[1:]:
                    value = get(arg)
                    if value is None:
                        value = decode(clingo.Symbol(arg))
                    rest.append(value)
                found = tuple(rest)
                got = (name, same(found, found))
                if more:
                    readings[key] = got
            k = args[0] & mask
            outputs[k][got[0]].append(got[1])
            if room:
                read[rep] = (k, *got)
