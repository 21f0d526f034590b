"""Conversion between clingo symbols and plain Python values, both ways.

Reading: a symbol becomes an ``int``, a ``str`` (a clingo string), a
:class:`Const` (a clingo constant such as ``approved``; a ``str`` subclass,
so it compares equal to the plain string) or a tuple ``(name, *arguments)``
for a compound term. Decoding goes through a cache keyed by the symbol's
internal number, because every call into clingo costs microseconds and a
batch reads the same few hundred symbols millions of times.

Writing: :func:`fact_text` serializes an atom built from those values; it
escapes strings by construction and accepts a constant only when it is a
plain identifier, so no input can ever become program text.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Union

import clingo


class Const(str):
    """A clingo constant (``employer_group``), as opposed to a string (``"IL1RN"``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Const({str.__repr__(self)})"


Value = Union[int, str, Const, tuple]

_IDENTIFIER = re.compile(r"_*[a-z][A-Za-z0-9_']*\Z")


def is_identifier(text: str) -> bool:
    """True when ``text`` can stand as a clingo constant without quoting."""
    return bool(_IDENTIFIER.match(text))


def to_value(symbol: clingo.Symbol) -> Value:
    """Convert a symbol to a plain Python value (uncached)."""
    kind = symbol.type
    if kind == clingo.SymbolType.Number:
        return symbol.number
    if kind == clingo.SymbolType.String:
        return symbol.string
    if kind == clingo.SymbolType.Function:
        args = symbol.arguments
        if not args and symbol.name:
            return Const(symbol.name)
        return (symbol.name, *[to_value(a) for a in args])
    if kind == clingo.SymbolType.Infimum:
        return ("#inf",)
    return ("#sup",)


_TOKEN = re.compile(r'(-?[0-9]+)|"((?:[^"\\]|\\.)*)"|-?(_*[a-z][A-Za-z0-9_\']*)|(#inf|#sup)|([(),])')
_UNESCAPE = re.compile(r"\\(.)")


def _unescape(match: "re.Match[str]") -> str:
    char = match.group(1)
    return "\n" if char == "n" else char


def value_of_text(text: str) -> Value:
    """The value of a symbol from its text (``str(symbol)``), as :func:`to_value` gives it.

    One call into clingo for the text, then plain Python: reading a
    compound symbol through clingo's API costs a call per name, argument
    and type, and decoding thousands of them (a KB's static model, the
    warm engine's inputs) was most of loading a KB that was just edited.
    """
    pos = 0

    def term() -> Value:
        nonlocal pos
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"not a symbol: {text!r}")
        pos = m.end()
        number, string, name, special, punct = m.groups()
        if number is not None:
            return int(number)
        if string is not None:
            return _UNESCAPE.sub(_unescape, string) if "\\" in string else string
        if special is not None:
            return (special,)
        if name is not None:
            if text.startswith("(", pos):
                pos += 1
                return (name, *arguments())
            return Const(name)
        if punct == "(":  # a tuple
            return ("", *arguments())
        raise ValueError(f"not a symbol: {text!r}")

    def arguments() -> list:
        nonlocal pos
        args: list = []
        if text.startswith(")", pos):
            pos += 1
            return args
        while True:
            args.append(term())
            if text.startswith(",", pos):
                pos += 1
                if text.startswith(")", pos):  # (a,): a tuple of one
                    pos += 1
                    return args
                continue
            if text.startswith(")", pos):
                pos += 1
                return args
            raise ValueError(f"not a symbol: {text!r}")

    value = term()
    if pos != len(text):
        raise ValueError(f"not a symbol: {text!r}")
    return value


def _decoded(symbol: clingo.Symbol) -> Value:
    """A symbol's value: from its text (fewer calls into clingo), through the API when the text is not read."""
    try:
        return value_of_text(str(symbol))
    except ValueError:
        return to_value(symbol)


class SymbolDecoder:
    """Decode symbols to values, remembering each symbol it has seen.

    clingo interns symbols, so a dictionary keyed by a symbol turns most
    decodes into a dictionary lookup (keyed by the symbol's raw number on
    the fast path, :mod:`kineret_asp.asp._clingo_c`). The cache is bounded; it is
    cleared when full.
    """

    def __init__(self, limit: int = 500_000):
        from . import _clingo_c as _fast

        self.cache: dict[Any, Value] = {}
        self._limit = limit
        self._key = _fast.symbol_key if _fast.enabled() else (lambda symbol: symbol)
        self._number = _fast.number_of if _fast.enabled() else (lambda symbol: symbol.number)

    def __call__(self, symbol: clingo.Symbol) -> Value:
        key = self._key(symbol)
        value = self.cache.get(key)
        if value is None:
            if len(self.cache) >= self._limit:
                self.cache.clear()
            value = self.cache[key] = _decoded(symbol)
        return value

    def tagged(self, symbol: clingo.Symbol) -> tuple[str, int, tuple]:
        """Split ``p(k, a, b)`` into ``("p", k, (a, b))`` for an atom whose first argument
        is a case number: the atom itself is new in every chunk, but its name and
        other arguments repeat, so only they go through the cache."""
        args = symbol.arguments
        return symbol.name, self._number(args[0]), tuple(self(a) for a in args[1:])


def check_string(text: str) -> None:
    """Refuse what clingo cannot hold in a string: NUL, and lone surrogates (not UTF-8)."""
    if "\x00" in text:
        raise ValueError("a NUL character cannot be passed to clingo")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a string that is not valid Unicode (a lone surrogate) cannot be passed to clingo") from None


def _string_text(text: str) -> str:
    check_string(text)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def term_text(value: Value) -> str:
    """Serialize one value as a clingo term; strings are escaped, constants checked."""
    if isinstance(value, bool):
        raise TypeError("booleans have no clingo term")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Const):
        if not is_identifier(value):
            raise ValueError(f"not a clingo constant: {value!r}")
        return str.__str__(value)
    if isinstance(value, str):
        return _string_text(value)
    if isinstance(value, tuple):
        name, *args = value
        if name and not is_identifier(name):
            raise ValueError(f"not a clingo function name: {name!r}")
        inner = ",".join(term_text(a) for a in args)
        if not args:
            return name
        if not name and len(args) == 1:
            inner += ","
        return f"{name}({inner})"
    raise TypeError(f"no clingo term for {value!r}")


def fact_text(atom: tuple) -> str:
    """Serialize an atom ``(predicate, *arguments)`` as a fact ``p(a,b).``."""
    return term_text(atom) + "."


def to_symbol(value: Value) -> clingo.Symbol:
    """Build a clingo symbol from a value with clingo's own constructors."""
    if isinstance(value, bool):
        raise TypeError("booleans have no clingo term")
    if isinstance(value, int):
        return clingo.Number(value)
    if isinstance(value, Const):
        if not is_identifier(value):
            raise ValueError(f"not a clingo constant: {value!r}")
        return clingo.Function(str.__str__(value))
    if isinstance(value, str):
        check_string(value)
        return clingo.String(value)
    if isinstance(value, tuple):
        name, *args = value
        if name and not is_identifier(name):
            raise ValueError(f"not a clingo function name: {name!r}")
        return clingo.Function(name, [to_symbol(a) for a in args])
    raise TypeError(f"no clingo term for {value!r}")


def display(value: Any) -> str:
    """Render a value the way clingo prints it (for messages)."""
    try:
        return term_text(value)
    except (TypeError, ValueError):
        return repr(value)


class FactWriter:
    """Serialize flat input atoms quickly, with the same guarantees as fact_text.

    Input atoms are ``(predicate, *arguments)`` with integer, Const or string
    arguments. Checked constant and escaped string texts are cached, since a
    batch writes the same few hundred of them over and over.
    """

    def __init__(self) -> None:
        self._const: dict[str, str] = {}
        self._string: dict[str, str] = {}
        self._name: dict[str, str] = {}

    def _const_text(self, value: str) -> str:
        text = self._const.get(value)
        if text is None:
            if not is_identifier(value):
                raise ValueError(f"not a clingo constant: {value!r}")
            text = self._const[value] = str.__str__(value)
        return text

    def _string_text(self, value: str) -> str:
        text = self._string.get(value)
        if text is None:
            text = _string_text(value)
            if len(self._string) < 100_000:
                self._string[value] = text
        return text

    def _arg(self, value: Value) -> str:
        kind = type(value)
        if kind is int:
            return str(value)
        if kind is Const:
            return self._const_text(value)
        if kind is str:
            return self._string_text(value)
        return term_text(value)

    def fact(self, atom: tuple, first: Optional[Value] = None) -> str:
        """``p(first,a,b).`` for atom ``(p, a, b)``; ``first`` is prepended when given."""
        name = self._name.get(atom[0])
        if name is None:
            if not is_identifier(atom[0]):
                raise ValueError(f"not a clingo predicate name: {atom[0]!r}")
            name = self._name[atom[0]] = atom[0]
        args = [self._arg(a) for a in atom[1:]]
        if first is not None:
            args.insert(0, self._arg(first))
        return f"{name}({','.join(args)})." if args else f"{name}."
