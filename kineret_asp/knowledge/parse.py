"""Reading rule files: each file parsed on its own (every syntax error reported as ``file:line:col``), its statements kept with their places.

Parse records are kept per file text (a KB copied or edited in one file
shares the unchanged files' nodes, and with them what is remembered by
node); what is read of a node (its line, its head, a fact's text) is
remembered by the node itself, in bounded tables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Optional, Sequence

import clingo.ast as ast

from ..asp.solving import MessageLog
from ..asp.symbols import Value
from ..errors import Diagnostic, did_you_mean
from ..memo import IdentityMemo, Memo
from .layout import LIBRARY, LIBRARY_DECLARATION, display_path


@dataclass(frozen=True)
class Statement:
    """One parsed statement with the program part it belongs to and its place."""

    part: str
    node: ast.AST
    file: str
    rank: int  # position among all statements of the program (files in load order)

    @property
    def line(self) -> int:
        return _LINES.of(self.node, lambda: self.node.location.begin.line)


_LINES = IdentityMemo(100_000)
"""Each statement's line, by node (read through clingo's AST, asked for again and again by check)."""


@dataclass(frozen=True)
class Head:
    """What the package's walks read of a rule whose head is one atom ``name(args)``, read once.

    Reading a node through clingo's API costs a call per attribute, and
    ``check`` asks the same questions of every rule in several passes; nodes
    are shared between a KB and its edited copies (see :data:`_PARSED`).
    """

    symbol: Any  # the head's symbol (AST)
    name: str
    args: tuple  # the argument nodes
    fact: bool  # no body
    line: int
    column: int

    @cached_property
    def first_text(self) -> str:
        """The first argument as written, quotes stripped ("" when none)."""
        return str(self.args[0]).strip('"') if self.args else ""

    @cached_property
    def first_functor(self) -> Optional[str]:
        """The name of the first argument's term (``p`` of ``p(X)`` or of ``p``), when it has one."""
        if not self.args:
            return None
        first = self.args[0]
        if first.ast_type == ast.ASTType.Function:
            return first.name
        return str(first) if first.ast_type == ast.ASTType.SymbolicTerm else None


_HEADS = IdentityMemo(50_000)


def rule_head(node: ast.AST) -> Optional[Head]:
    """The head atom of a rule or fact whose head is one function atom (None for anything else)."""
    return _HEADS.of(node, lambda: (_read_head(node),))[0]  # kept in a tuple: None is an answer too


def _read_head(node: ast.AST) -> Optional[Head]:
    if node.ast_type != ast.ASTType.Rule:
        return None
    head = node.head
    if head.ast_type != ast.ASTType.Literal or head.atom.ast_type != ast.ASTType.SymbolicAtom:
        return None
    symbol = head.atom.symbol
    if symbol.ast_type != ast.ASTType.Function:
        return None
    begin = node.location.begin
    return Head(symbol, symbol.name, tuple(symbol.arguments), not node.body, begin.line, begin.column)


_FACT_TEXTS = IdentityMemo(50_000)
"""The atom text of each fact statement, by node: a KB edited in one file asks again about
the nodes it shares with the KB before the edit (see :data:`_PARSED`)."""


def fact_text(node: ast.AST) -> str:
    """The atom a fact statement writes (``p(a,1)``), or "" for anything else."""
    return _FACT_TEXTS.of(node, lambda: _read_fact_text(node))


def _read_fact_text(node: ast.AST) -> str:
    if node.ast_type == ast.ASTType.Rule and not node.body:
        head = node.head
        if head.ast_type == ast.ASTType.Literal and head.atom.ast_type == ast.ASTType.SymbolicAtom:
            return str(head.atom.symbol)
    return ""


def as_atom(value: Value) -> tuple:
    return value if isinstance(value, tuple) else (str(value),)


def is_constraint(rule: ast.AST) -> bool:
    head = rule.head
    return head.ast_type == ast.ASTType.Literal and head.atom.ast_type == ast.ASTType.BooleanConstant and not head.atom.value


@dataclass
class Parsed:
    statements: list[Statement] = field(default_factory=list)
    comments: list[Statement] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    messages: list[Diagnostic] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)  # a file's bytes, where they are not its text in UTF-8 (CR line ends)
    libraries: list[Path] = field(default_factory=list)  # the library files the version includes, in the order it declares them
    included: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # each library file (as shown) -> where it is declared


_PARSED = Memo(512)
"""Syntax trees by file text. Parsing a text cleanly always gives the same
statements, and clingo's nodes are never changed in place (``update``
returns a copy): a KB copied or edited in one file shares the unchanged files'
nodes, and with them what is remembered by node (each rule's atoms), so
``check`` and a first decision of an edited KB walk only what changed.
Texts with messages are parsed each time (their messages name the file)."""


def _parse_text(text: str, shown: str) -> tuple[Optional[list], MessageLog]:
    """The nodes of one file's text (None when it does not parse), and the parser's messages."""
    known = _PARSED.get(text)
    if known is not None:
        return known, MessageLog(shown)
    log = MessageLog(shown)
    parsed: list[ast.AST] = []
    try:
        ast.parse_string(text, parsed.append, logger=log, message_limit=100)
    except RuntimeError:
        return None, log
    if not log.diagnostics:
        _PARSED.put(text, parsed)
    return parsed, log


def parse_files(files: Sequence[Path], root: Optional[Path] = None, libraries: Optional[dict[str, Path]] = None) -> Parsed:
    """Parse each file on its own (so every syntax error is reported), keeping places and comments.

    Files are read as :mod:`~kineret_asp.knowledge.tree_files` says: with ``root``, a
    link is followed only to a file inside that tree; only regular files are
    read; ``#include`` and ``#script`` are refused, one error each.

    With ``libraries`` (the framework's libraries by name), a fact
    ``library(Name)`` in one of ``files`` includes that library's file: its
    statements are read as if written at the declaration, so that its facts
    stand there in the KB's order (a field it declares stands there in the
    case schema). Each library is included once; a library includes none.
    """
    out = Parsed()
    reader = _Reader(out, root, libraries)
    for file in files:
        reader.read(file)
    return out


@dataclass
class _Reader:
    """Reads files into a :class:`Parsed`, numbering statements in load order, libraries where they are declared."""

    out: Parsed
    root: Optional[Path]
    libraries: Optional[dict[str, Path]]
    rank: int = 0
    included: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # library name -> where it is declared
    preread: Optional[dict[Path, bytes]] = None  # files' bytes already read (see read_rule_file): parsed as they were read
    shown_as: Optional[dict[Path, str]] = None  # how messages and statements name each file, when fixed before the parse

    def shown(self, file: Path) -> str:
        named = self.shown_as.get(file) if self.shown_as is not None else None
        return named if named is not None else display_path(file)

    def read(self, file: Path, library: bool = False) -> None:
        from .tree_files import INCLUDE, TreeFileError, blank_includes, directives, line_col

        out = self.out
        shown = self.shown(file)
        data = self.preread.get(file) if self.preread is not None else None
        if data is None:
            try:
                data = read_rule_file(file, self.root)
            except TreeFileError as exc:
                out.errors.append(Diagnostic(shown, 0, 0, "error", str(exc)))
                return
        try:
            text = rule_text(data)
        except UnicodeDecodeError as exc:
            out.errors.append(Diagnostic(shown, 0, 0, "error", f"cannot read file: {exc}"))
            return
        out.texts[shown] = text
        if text.encode("utf-8") != data:
            out.raw[shown] = data  # hashed as read: every byte counts
        refused = [(kind, offset) for kind, offset, code in directives(text) if code]
        for kind, offset in refused:
            line, col = line_col(text, offset)
            why = "a KB is its folders' rule files: put the rules in a file of the KB, or link a file of the same tree" if kind == INCLUDE else "the package never runs scripts: write the rule in ASP"
            out.errors.append(Diagnostic(shown, line, col, "error", f"{kind} is not allowed in a KB ({why})", "directive"))
        parsed, log = _parse_text(blank_includes(text), shown)
        if parsed is None:
            out.errors.extend(_relocate(d, shown) for d in log.errors())
            if not log.errors():
                out.errors.append(Diagnostic(shown, 0, 0, "error", "parsing failed"))
            return
        out.messages.extend(_relocate(d, shown) for d in log.diagnostics)
        part = "base"
        declares = self.libraries is not None and LIBRARY_DECLARATION in text  # only a text that names the fact can declare a library
        for node in parsed:
            self.rank += 1
            kind = node.ast_type  # read once: each read is a call into clingo
            if kind == ast.ASTType.Comment:
                out.comments.append(Statement(part, node, shown, self.rank))
                continue
            if kind == ast.ASTType.Script:
                if not refused:
                    loc = node.location.begin
                    out.errors.append(Diagnostic(shown, loc.line, loc.column, "error", "#script is not allowed in a KB (the package never runs scripts: write the rule in ASP)", "directive"))
                continue
            if kind == ast.ASTType.Program:
                part = node.name
            out.statements.append(Statement(part, node, shown, self.rank))
            if declares:
                self._include(node, shown, library)

    def _include(self, node: ast.AST, shown: str, within_library: bool) -> None:
        """Read the library a ``library(Name)`` fact declares, there and then."""
        head = rule_head(node)
        if head is None or not head.fact or head.name != LIBRARY_DECLARATION or len(head.args) != 1:
            return
        assert self.libraries is not None
        where = (shown, head.line, head.column)
        name = _constant(head.args[0])
        known = sorted(self.libraries)
        listed = ", ".join(known) or "none"
        if within_library:
            self.out.errors.append(Diagnostic(*where, "error", f"a library includes no library: the version that includes this one declares library({head.first_text}) itself", "library"))
        elif name is None:
            self.out.errors.append(Diagnostic(*where, "error", f"library/1 names a library of framework/{LIBRARY}/ by its file's name, library(name); the libraries: {listed}", "library"))
        elif name not in self.libraries:
            self.out.errors.append(Diagnostic(*where, "error", f"no library {name}: framework/{LIBRARY}/ holds {listed}{did_you_mean(name, known)}", "library"))
        elif name in self.included:
            first = self.included[name]
            self.out.errors.append(Diagnostic(*where, "error", f"library({name}) is declared twice: it is included once, at {first[0]}:{first[1]}", "library"))
        else:
            self.included[name] = where
            self.out.libraries.append(self.libraries[name])
            self.out.included[self.shown(self.libraries[name])] = where
            self.read(self.libraries[name], library=True)


def read_rule_file(file: Path, root: Optional[Path]) -> bytes:
    """A rule file's bytes, read as the parser reads them (:class:`~.tree_files.TreeFileError` says why not)."""
    from .tree_files import TreeFileError, read_tree_file

    if not os.access(file, os.R_OK):
        raise TreeFileError("file is not readable")
    return read_tree_file(file, root)


def rule_text(data: bytes) -> str:
    """A rule file's text as the parser reads it: UTF-8, line ends as a text-mode read gives them (UnicodeDecodeError otherwise)."""
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def _constant(term: ast.AST) -> Optional[str]:
    """The name a term is, when it is a plain constant (``samples``), else None."""
    if term.ast_type == ast.ASTType.Function and not term.arguments and not term.external and term.name:
        return term.name
    if term.ast_type == ast.ASTType.SymbolicTerm and str(term.symbol).isidentifier() and term.symbol.type.name == "Function":
        return str(term.symbol)
    return None


def _relocate(diag: Diagnostic, shown: str) -> Diagnostic:
    """Messages from parse_string name ``<string>``: give them the file's name."""
    if diag.file in ("<string>", "<kb>", ""):
        return Diagnostic(shown, diag.line, diag.column, diag.severity, diag.message, diag.code)
    return diag


def parse_program(
    common: Sequence[Path], own: Sequence[Path], root: Path, libraries: dict[str, Path], preread: Optional[dict[Path, bytes]] = None, shown_as: Optional[dict[Path, str]] = None
) -> Parsed:
    """The framework's files, then the version's, each library it declares read at its declaration.

    ``preread``: files' bytes already read (by :func:`read_rule_file`), parsed as
    they are instead of read again; ``shown_as``: how to name each file (as
    :func:`~.layout.display_path` named it when the files were read: the
    working folder may have changed since).
    """
    out = Parsed()
    plain = _Reader(out, root, None, preread=preread, shown_as=shown_as)
    for file in common:
        plain.read(file)
    reader = _Reader(out, root, libraries, rank=plain.rank, preread=preread, shown_as=shown_as)
    for file in own:
        reader.read(file)
    return out
