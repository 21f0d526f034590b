"""A strict reader for case files written as ground ASP facts.

Why not let clingo parse them: clingo reads ``-p(x).`` back as ``p(x)``, stops
at a NUL byte, opens ``#include`` files while it parses (a string spanning
lines can hide one from a pre-scan), wraps integers at 2^32, recurses on
nesting (RecursionError or a segfault), aborts the process on a non-ASCII
letter outside a string, and is slow to reject a flood of facts. So this
module parses the text itself, in the standard library only, and accepts a
deliberately tiny language: flat ground facts ``name.`` / ``name(a, b).``
whose arguments are integers, constants or ``"strings"``, each checked
against a schema. Anything else is an :class:`LpFactError` at the first
problem, with a 1-based line and a 1-based column counted in characters.

The text is never handed to clingo: the caller receives Python values. The
language is still a subset of clingo's with the same meaning (every accepted
file means the same facts to clingo), which is why a block comment
``%* ... *%`` may not contain ``%``: clingo nests ``%*`` and reads ``%`` as a
line comment inside a block comment, so such a comment ends elsewhere for it.

"First problem" means: size, then the byte-order mark, then the earliest
encoding problem (bytes that are not UTF-8, NUL or another control
character), because those concern the whole file; then the first statement
with a problem, in text order, where a statement's syntax is checked before
its vocabulary (name/arity, then each argument).

The tokenizer is a loop of compiled-regex ``match(text, pos)`` calls and has
no recursion, so nesting depth cannot exhaust the stack, and every limit
(bytes, facts, digits, string length) is checked before the work it bounds.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from typing import Mapping, Union

__all__ = ["ArgSpec", "LpFact", "LpFactError", "MAX_LP_BYTES", "read_lp_facts", "read_lp_file"]

MAX_LP_BYTES: int = 1_000_000
"""Default cap on a case file's size: far above any real case, far below harm."""

MAX_STRING_CHARS = 200  # an open key written as a string, or a "string" argument
MAX_NAME_CHARS = 64  # a "name" argument
MAX_DIGITS = 10  # checked before int(): Python refuses > 4300 digits with ValueError
INT_MAX = 2**31 - 1  # clingo integers are signed 32-bit; nothing larger is ever accepted

ALLOWED = "only facts of the case vocabulary: name(argument, ...). with integers, constants and strings"

_KINDS = frozenset({"index", "key", "constant", "integer", "string", "name"})
_DEFAULT_LABEL = {"index": "an index", "key": "a key", "constant": "a constant", "integer": "an integer", "string": "a string", "name": "a name"}

_BOM = b"\xef\xbb\xbf"
# C0 controls but \t \n \r, DEL, C1 controls; and a \r that does not start \r\n
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")
# whitespace, line comments "% ...", block comments "%* ... *%" with no '%' inside (clingo nests
# "%*" and reads "%" as a line comment inside a block comment; without '%' both readings agree).
# Never fails (may match empty); it stops at a block comment it cannot close, see _block_problem.
_SKIP = re.compile(r"(?:[ \t\r\n]+|%\*[^%]*\*%|%(?!\*)[^\n]*)*")
_NAME = re.compile(r"[a-z][A-Za-z0-9_]*", re.A)
_INT = re.compile(r"[0-9]+", re.A)
_WORD = re.compile(r"[A-Za-z0-9_']+", re.A)
_STRING_BODY = r'[^"\\\n\r]*(?:\\["\\n][^"\\\n\r]*)*'
_STRING = re.compile('"(' + _STRING_BODY + ')"')
_STRING_BODY_RE = re.compile(_STRING_BODY)
_ESCAPE = re.compile(r'\\(["\\n])')
_UNESCAPE = {'"': '"', "\\": "\\", "n": "\n"}
_DIGITS = frozenset("0123456789")
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_TOKEN_START = frozenset('abcdefghijklmnopqrstuvwxyz0123456789"')  # an argument or a name can start here
_NAME_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z", re.A)


class LpFactError(Exception):
    """One problem, located: line and column are 1-based (column may be 0 if unknown).

    ``args`` is ``(line, column, message)`` so the error pickles (batch and
    distributed runs send errors between processes).
    """

    def __init__(self, line: int, column: int, message: str):
        super().__init__(line, column, message)
        self.line = line
        self.column = column
        self.message = message

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message}"


@dataclass(frozen=True)
class ArgSpec:
    """What one argument of a case fact may be.

    ``index`` / ``integer``: an integer literal in [minimum, maximum] (never
    above 2^31-1, clingo's largest). ``constant``: any constant (with ``open``,
    also a quoted string). ``key``: a constant from ``keys``; with
    ``open``, also a quoted string of any text (at most 200 characters).
    ``string``: a quoted string of at most 200 characters (or ``maximum``
    characters when given). ``name``: a quoted string of at most 64
    characters matching ``[A-Za-z0-9][A-Za-z0-9._-]*``. ``label`` names the
    argument in messages ("a drug key").
    """

    kind: str
    keys: frozenset[str] = frozenset()
    minimum: int | None = None
    maximum: int | None = None
    open: bool = False
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"ArgSpec kind must be one of {sorted(_KINDS)}, not {self.kind!r}")


@dataclass(frozen=True)
class LpFact:
    """One accepted fact: Python values, where it starts, and which arguments were quoted."""

    predicate: str
    args: tuple
    line: int
    column: int
    quoted: tuple[bool, ...]


Schema = Mapping[tuple[str, int], tuple[ArgSpec, ...]]


def _token(text: str, pos: int) -> str:
    """The word (or the single character) at ``pos``, to quote in a message."""
    word = _WORD.match(text, pos)
    if word is not None:
        return word.group()
    if text[pos] == '"':
        string = _STRING.match(text, pos)
        return string.group() if string is not None and len(string.group()) <= 40 else 'a "string"'
    return text[pos]


def _where(text: str, pos: int) -> tuple[int, int]:
    """1-based line and character column of ``pos``."""
    return text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)


def _error(text: str, pos: int, message: str) -> LpFactError:
    line, column = _where(text, pos)
    return LpFactError(line, column, message)


def _check_bytes(data: bytes, max_bytes: int) -> str:
    """Whole-file checks, in the order documented above; returns the text."""
    if len(data) > max_bytes:
        raise LpFactError(1, 0, f"the case file is {len(data)} bytes; at most {max_bytes} bytes are allowed")
    if data.startswith(_BOM):
        raise LpFactError(1, 1, "a byte-order mark is not allowed at the start of a case file; save it as UTF-8 without BOM")
    bad_byte = -1
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_byte = exc.start
        text = data[:bad_byte].decode("utf-8")  # everything before the first bad byte is valid
    control = _CONTROL.search(text)
    if control is not None:
        pos = control.start()
        char = text[pos]
        what = "a NUL byte" if char == "\0" else ("a carriage return not followed by a line feed" if char == "\r" else f"control character U+{ord(char):04X}")
        raise _error(text, pos, f"{what} is not allowed in a case file (only tab, line feed and CR LF)")
    if bad_byte >= 0:
        line, column = _where(text, len(text))
        raise LpFactError(line, column, f"byte 0x{data[bad_byte]:02X} at offset {bad_byte} is not valid UTF-8; a case file must be UTF-8 text")
    return text


def _describe(text: str, pos: int, in_args: bool) -> str:
    """Why the character at ``pos`` cannot appear here, for a message."""
    if pos >= len(text):
        return f"the file ends in the middle of a fact; {ALLOWED}"
    c, two = text[pos], text[pos : pos + 2]
    if ord(c) > 127:
        return f'non-ASCII character {c!r} (U+{ord(c):04X}) outside a string or comment; write it inside a "string"'
    if c == "-":
        if in_args:
            return f"a sign or negation ('-') in an argument is not allowed; {ALLOWED}"
        return "classical negation is not allowed in a case file"
    if "A" <= c <= "Z" or c == "_":
        found = f"a variable ({_WORD.match(text, pos).group()!r})"  # type: ignore[union-attr]
    elif two == ":-":
        found = "a rule or constraint (':-')"
    elif two == ":~":
        found = "a weak constraint (':~')"
    elif c == "#":
        word = _WORD.match(text, pos + 1)
        found = f"a directive ({'#' + (word.group() if word else '')!r})"
    elif two == "..":
        found = "an interval ('..')"
    elif c == "." and text[pos + 1 : pos + 2] in _DIGITS:
        found = "a decimal number"
    elif c in "{}":
        found = "a choice or aggregate ('{' '}')"
    elif c in ";|":
        found = f"a pool or disjunction ({c!r})"
    elif c in "+*/\\^&?~@":
        found = f"arithmetic or an operator ({c!r})"
    elif c in "<>=!":
        found = f"a comparison ({c!r})"
    elif c == "(":
        found = "a tuple or extra parentheses" if in_args else "'(' without a name before it"
    elif c == "'":
        found = 'a prime ("\'")'
    elif c == ":":
        found = "a condition (':')"
    else:
        found = repr(_token(text, pos))
    return f"{found} is not allowed here; {ALLOWED}"


def _string_problem(text: str, pos: int) -> LpFactError:
    """Why the string opening at ``pos`` does not match the string pattern."""
    end = _STRING_BODY_RE.match(text, pos + 1).end()  # type: ignore[union-attr]
    if end >= len(text) or (text[end] == "\\" and end + 1 >= len(text)):
        return _error(text, pos, "unterminated string: the file ends before its closing '\"'")
    if text[end] in "\r\n":
        return _error(text, pos, "unterminated string: a string must end on the line where it starts (strings cannot span lines; write a line break as \\n)")
    return _error(text, end, f'unknown escape {text[end : end + 2]!r} in a string; only \\" \\\\ and \\n are allowed')


def _block_problem(text: str, pos: int) -> LpFactError:
    """Why the block comment opening at ``pos`` is not closed by the first '%' after it."""
    inner = text.find("%", pos + 2)
    if inner < 0:
        return _error(text, pos, "unterminated block comment: '%*' has no closing '*%'")
    return _error(text, inner, "'%' inside a block comment is not allowed (clingo would read a nested comment or a line comment there); close the comment with '*%' first")


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_arg(text: str, pos: int, value: Union[int, str], quoted: bool, spec: ArgSpec, where: str) -> None:
    """Raise unless one parsed argument fits its spec; ``where`` is e.g. 'argument 2 of case_history/3'."""
    label = spec.label or _DEFAULT_LABEL[spec.kind]
    kind = spec.kind
    if kind in ("index", "integer"):
        if not isinstance(value, int):
            shown = f'"{value}"' if quoted else value
            raise _error(text, pos, f"{where} must be {label} (an integer literal), not {shown}")
        low = 0 if spec.minimum is None else spec.minimum
        high = INT_MAX if spec.maximum is None else min(spec.maximum, INT_MAX)
        if not low <= value <= high:
            raise _error(text, pos, f"{where}: {value} is out of range for {label}; allowed {low}..{high}")
        return
    if isinstance(value, int):
        raise _error(text, pos, f"{where} must be {label}, not the integer {value}")
    if kind == "constant":
        if not quoted:
            return
        if spec.open:
            if len(value) > MAX_STRING_CHARS:
                raise _error(text, pos, f"{where}: a string for {label} may have at most {MAX_STRING_CHARS} characters, not {len(value)}")
            return
        raise _error(text, pos, f"{where} must be {label} written as a constant, not a string")
    if kind == "key":
        if not quoted and value in spec.keys:
            return
        if quoted and spec.open:
            if len(value) > MAX_STRING_CHARS:
                raise _error(text, pos, f"{where}: a string for {label} may have at most {MAX_STRING_CHARS} characters, not {len(value)}")
            return
        if quoted:
            hint = f"; write it as the constant {value}" if value in spec.keys else _suggest(value, sorted(spec.keys))
            raise _error(text, pos, f"{where} must be {label} written as a constant, not a string{hint}")
        keys = sorted(spec.keys)
        listing = f"; expected one of {', '.join(keys)}" if len(keys) <= 12 else ""
        extra = ' (or any name as a quoted "string")' if spec.open else ""
        raise _error(text, pos, f"{where}: {value!r} is not {label}{listing}{extra}{_suggest(value, keys)}")
    if not quoted:
        raise _error(text, pos, f'{where} must be {label} written as a quoted string, e.g. "{value}"')
    if kind == "string":
        limit = MAX_STRING_CHARS if spec.maximum is None else spec.maximum
        if len(value) > limit:
            raise _error(text, pos, f"{where}: {label} may have at most {limit} characters, not {len(value)}")
        return
    if len(value) > MAX_NAME_CHARS or not _NAME_VALUE.match(value):
        raise _error(text, pos, f"{where}: {label} must be 1 to {MAX_NAME_CHARS} characters of letters, digits, '.', '_' and '-', starting with a letter or digit; got {value!r}")


def _read_arg(text: str, pos: int) -> tuple[Union[int, str], bool, int]:
    """One flat argument at ``pos``: (value, written as a string?, end offset)."""
    c = text[pos] if pos < len(text) else ""
    if c == '"':
        string = _STRING.match(text, pos)
        if string is None:
            raise _string_problem(text, pos)
        body = string.group(1)
        return (_ESCAPE.sub(lambda e: _UNESCAPE[e.group(1)], body) if "\\" in body else body), True, string.end()
    if "0" <= c <= "9":
        end = _INT.match(text, pos).end()  # type: ignore[union-attr]
        digits = text[pos:end]
        if text[end : end + 1] in _WORD_CHARS:
            word = _WORD.match(text, pos).group()  # type: ignore[union-attr]
            raise _error(text, pos, f"{word!r} is neither an integer nor a constant (constants start with a lowercase letter); {ALLOWED}")
        if len(digits) > 1 and digits[0] == "0":
            raise _error(text, pos, f"integer {digits} has leading zeros; write it without them")
        if len(digits) > MAX_DIGITS:
            raise _error(text, pos, f"integer of {len(digits)} digits is too long (at most {MAX_DIGITS} digits, and at most {INT_MAX})")
        return int(digits), False, end
    if "a" <= c <= "z":
        end = _NAME.match(text, pos).end()  # type: ignore[union-attr]
        after = _SKIP.match(text, end).end()  # type: ignore[union-attr]
        if text[after : after + 1] == "(":
            raise _error(text, pos, f"a nested term {text[pos:end]}(...) is not allowed: arguments are flat; {ALLOWED}")
        return text[pos:end], False, end
    raise _error(text, pos, _describe(text, pos, in_args=True))


def read_lp_facts(data: bytes, schema: Schema, *, max_bytes: int = MAX_LP_BYTES, max_facts: int = 10_000) -> list[LpFact]:
    """Parse ``data`` as flat ground facts of ``schema``; raise LpFactError at the first problem.

    Identical facts (same predicate, values and quoting) are returned once, at
    their first occurrence; nothing else is merged or interpreted.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("read_lp_facts takes bytes (the file's raw content), not " + type(data).__name__)
    text = _check_bytes(bytes(data), max_bytes)
    names = sorted({name for name, _ in schema})
    n = len(text)
    skip, name_re = _SKIP.match, _NAME.match
    facts: list[LpFact] = []
    seen: set[tuple] = set()
    count = 0
    line, line_from = 1, 0  # line number at offset line_from, advanced incrementally
    pos = skip(text, 0).end()
    while pos < n:
        if text.startswith("%*", pos):
            raise _block_problem(text, pos)
        count += 1
        if count > max_facts:
            raise _error(text, pos, f"more than {max_facts} facts in a case file")
        start = pos
        m = name_re(text, pos)
        if m is None:
            raise _error(text, pos, _describe(text, pos, in_args=False))
        predicate = m.group()
        if predicate == "not":
            raise _error(text, pos, f"negation ('not') is not allowed; {ALLOWED}")
        pos = m.end()
        last = pos  # end of the last token, where a missing '.' is reported
        pos = skip(text, pos).end()
        values: list[Union[int, str]] = []
        quoted: list[bool] = []
        places: list[int] = []
        if pos < n and text[pos] == "(":
            pos = skip(text, pos + 1).end()
            if pos < n and text[pos] == ")":
                raise _error(text, pos, f"empty parentheses are not allowed: write {predicate}. for a fact without arguments")
            while True:
                if text.startswith("%*", pos):
                    raise _block_problem(text, pos)
                places.append(pos)
                value, is_quoted, pos = _read_arg(text, pos)
                values.append(value)
                quoted.append(is_quoted)
                pos = skip(text, pos).end()
                c = text[pos] if pos < n else ""
                if c == ",":
                    pos = skip(text, pos + 1).end()
                    continue
                if c == ")":
                    pos += 1
                    break
                if text.startswith("%*", pos):
                    raise _block_problem(text, pos)
                if pos >= n:
                    raise _error(text, pos, f"the file ends before ')' closes the arguments of {predicate}")
                if c in _TOKEN_START:
                    raise _error(text, pos, f"expected ',' or ')' after an argument, not {_token(text, pos)!r}; {ALLOWED}")
                raise _error(text, pos, _describe(text, pos, in_args=True))
            last = pos
            pos = skip(text, pos).end()
        if pos >= n or text[pos] != ".":
            if text.startswith("%*", pos):
                raise _block_problem(text, pos)
            if pos >= n:
                raise _error(text, last, f"missing '.' at the end of the fact {predicate}")
            if text[pos] in _TOKEN_START:
                raise _error(text, pos, f"expected '.' to end the fact {predicate}, not {_token(text, pos)!r}; {ALLOWED}")
            raise _error(text, pos, _describe(text, pos, in_args=False))
        pos = skip(text, pos + 1).end()

        key = (predicate, len(values))
        specs = schema.get(key)
        if specs is None:
            known = ", ".join(f"{a}/{b}" for a, b in sorted(schema))
            close = difflib.get_close_matches(predicate, names, n=1, cutoff=0.6)
            hint = ""
            if close:
                arities = " or ".join(f"{close[0]}/{b}" for a, b in sorted(schema) if a == close[0])
                hint = f"; did you mean {arities!r}?" if close[0] == predicate else f"; did you mean {close[0]!r} ({arities})?"
            raise _error(text, start, f"unknown case fact {predicate}/{len(values)}; expected one of {known}{hint}")
        for i, (value, is_quoted, place, spec) in enumerate(zip(values, quoted, places, specs), 1):
            _check_arg(text, place, value, is_quoted, spec, f"argument {i} of {predicate}/{len(values)}")
        args, flags = tuple(values), tuple(quoted)
        identity = (predicate, args, flags)
        if identity in seen:
            continue
        seen.add(identity)
        line += text.count("\n", line_from, start)
        line_from = start
        facts.append(LpFact(predicate, args, line, start - text.rfind("\n", 0, start), flags))
    return facts


def read_lp_file(path: Union[str, "os.PathLike[str]"], schema: Schema, *, max_bytes: int = MAX_LP_BYTES, max_facts: int = 10_000) -> list[LpFact]:
    """Read and parse a case file, refusing one over ``max_bytes`` before reading it whole.

    A regular file is refused from its fstat size without reading any of it;
    whatever stat says (pipes, devices, a file growing meanwhile), at most
    ``max_bytes + 1`` bytes are read, so an oversized input is always
    refused by read_lp_facts rather than loaded. OSError (missing file,
    directory, permissions) propagates: it is not a problem in the text.
    """
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise LpFactError(1, 0, f"the case file is {size} bytes; at most {max_bytes} bytes are allowed")
        data = handle.read(max_bytes + 1)
    return read_lp_facts(data, schema, max_bytes=max_bytes, max_facts=max_facts)
