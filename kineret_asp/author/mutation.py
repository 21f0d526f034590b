"""``kineret-asp test --mutate``: would the examples and properties notice a wrong edit?

A *mutant* is a version with one change an author could make by mistake: a
table row deleted, one cell of a row deleted (a pooled term: a check mark of
an Appendix row, a brand of a product, a specialty a criterion accepts), a
pooled term of a rule deleted, a body literal deleted or negated, a
comparison swapped, a number changed. Mutants are made on clingo's syntax
tree of the version's files: each change has its ``file:line:col``, and the
changed file keeps its comments and line numbers (:meth:`Mutant.apply`).
Only the rules and tables a case's outcome depends on are mutated (the
decision, the approval's length, the criteria that apply and are unmet, the
reasons, what a case leaves undetermined); rules that only produce words,
evidence or documentation, and the KB's own consistency checks, are left out
and counted (:class:`LeftOut`).

Each mutant meets the version's own tests, cheapest first, and stops at the
first that notices it:

1. the KB's integrity constraints (its static program, without a case);
2. the example cases (their ``expect`` blocks);
3. the properties (``verify``).

A mutant none of them notices is either *equivalent* or a *survivor*. A
change that reaches no rule a case depends on (the static atoms it changes
are read by no case-dependent rule) is equivalent for every case; any other
is looked for in the case space with ``diff``'s joint program (the original
against the mutant, counting a criterion's outcome and the reasons as
changes as well as the decision; the space widened by the keys the change
names): a case found tells the mutant apart and is what the author adds as
an example; none found, the mutant is equivalent in the space.

The KB is never written: every mutant of a run is folded into one program
(a *mutant schema*). A statement a mutant changes is kept under
``not mutant__(K)`` for each of its mutants and each mutant's version of it
under ``mutant__(K)``; one grounding then serves every mutant, and each is
one solve with its ``mutant__`` atom assumed, within a time limit. A mutant
that changes what Python reads of the KB (a vocabulary key, a criterion, a
name) is decided the slow way, with the mutated KB built in memory.
``jobs`` worker processes share the mutants.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import time
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import clingo
import clingo.ast as ast
from clingo.ast import ASTType

from ..asp.facts import FactAdder, ShownReader, atom_symbol, shown_atoms
from ..asp.solving import MessageLog, ground_program, models, new_control
from ..asp.symbols import SymbolDecoder
from ..cases.files import MAX_FILE_BYTES, parse_json_text, read_case_file
from ..cases.load import Loaded, load
from ..cases.versions import Choice, Chooser
from ..decisions.decision import build_decision
from ..engine.program import (
    CASE_GUARD,
    CASE_VAR,
    Rewrite,
    Signature,
    _chunk_line,
    compiled,
    guard_atom,
    needed_statements,
    node_text,
    parse_text,
    rule_atoms,
    rule_signatures,
    variable,
)
from ..errors import CaseError, Diagnostic, KbError, KineretError, SolveTimeout
from ..knowledge.base import KnowledgeBase, resolve_kb
from ..knowledge.diskcache import cached_text
from ..knowledge.layout import CASES, display_path
from ..knowledge.parse import Statement, as_atom, is_constraint
from ..knowledge.schema import ENTRIES, LIST
from ..limits import DEFAULT_MEMORY_MB, Limits, Worker
from ..safetext import dumps
from .diff import JOINT_RULES, _describe, case_of, header_rules, joint_fields, joint_program, minimize_joint, shown_fields
from .example_cases import check_expect, compare, discover, run_case_tests
from .kb_reading import KeyKinds, Paragraphs
from .policy_text import _locator
from .verify import _heads, declared_property, properties_of, verify_kb

GUARD = "mutant__"

DECIDING: tuple[Signature, ...] = (
    ("decision", 1),
    ("authorization_months", 1),
    ("route", 1),
    ("applies", 1),
    ("unmet", 1),
    ("reason", 1),
    ("needs", 2),
    ("refers_to", 2),
    ("undetermined", 3),
)
"""What an example's outcome is made of (framework/decision.lp, criteria.lp): the cone of these is mutated."""

EVIDENCE: tuple[Signature, ...] = (("evidence", 3), ("note", 3), ("reason_detail", 2))
DOCUMENTATION: tuple[Signature, ...] = (("abducible", 1), ("documents", 2), ("documents_entry", 3))

# the kinds of change
ROW_DELETED, CELL_DELETED, POOL_DELETED = "row_deleted", "cell_deleted", "pooled_term_deleted"
LITERAL_DELETED, LITERAL_NEGATED, COMPARISON_SWAPPED, NUMBER_CHANGED = "literal_deleted", "literal_negated", "comparison_swapped", "number_changed"
CELL_ADDED = "cell_added"
KINDS = (ROW_DELETED, CELL_DELETED, CELL_ADDED, POOL_DELETED, LITERAL_DELETED, LITERAL_NEGATED, COMPARISON_SWAPPED, NUMBER_CHANGED)
TABLE_KINDS = (ROW_DELETED, CELL_DELETED, CELL_ADDED)
"""What the coverage of a version's tables runs: every row and cell deleted, and every cell added where a row lacks it."""

# what became of a mutant
KILLED, SURVIVED, EQUIVALENT, INVALID = "killed", "survived", "equivalent", "invalid"
BY_CONSTRAINTS, BY_EXAMPLES, BY_PROPERTIES, BY_TIME = "constraints", "examples", "properties", "time"
STATIC, IN_SPACE = "static", "space"  # why a mutant is equivalent

BATCH = 250
"""Mutants folded into one program at most: each solve walks the whole program, the mutants' variants included."""

GAP_MARK = "mutate: known gap"
"""A paragraph comment ``% mutate: known gap - why`` explains the survivors of its statements."""

_CMP = ast.ComparisonOperator
SWAPS = {
    _CMP.GreaterEqual: (_CMP.LessThan, _CMP.GreaterThan),
    _CMP.GreaterThan: (_CMP.LessEqual, _CMP.GreaterEqual),
    _CMP.LessEqual: (_CMP.GreaterThan, _CMP.LessThan),
    _CMP.LessThan: (_CMP.GreaterEqual, _CMP.LessEqual),
    _CMP.Equal: (_CMP.NotEqual,),
    _CMP.NotEqual: (_CMP.Equal,),
}
"""Each comparison's swaps: its negation, and the same bound taken strictly or not."""


class MutateError(KineretError):
    """A mutation run that cannot start: a revision git does not know (exit code 2), the KB's own tests fail (``code`` 1)."""

    code = 2


class OwnTestsFail(MutateError):
    """The version's own examples or properties fail: there is nothing to measure a mutant against."""

    code = 1


# --- the mutants ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    """One change of one statement of a version's files."""

    index: int
    kind: str
    file: str  # as shown
    line: int
    column: int
    before: str  # the text changed
    after: str  # what it became ("" when deleted)
    statement: int  # its statement's position in kb.statements
    text: str  # the statement after the change ("" when deleted)
    splice: tuple[int, int, str]  # bytes start, end of the file replaced by the text
    section: str  # the section the statement's paragraph names (its § comment)
    row: str = ""  # the table row (a fact) the change touches; "" for a rule
    gap: str = ""  # the known-gap reason its paragraph gives, if any

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def apply(self, text: str) -> str:
        """The file's text with the change made: everything else (comments, line numbers) as it was."""
        data = text.encode("utf-8")
        start, end, new = self.splice
        return (data[:start] + new.encode("utf-8") + data[end:]).decode("utf-8")

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "kind": self.kind,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "before": self.before,
            "after": self.after,
            "section": self.section,
            "row": self.row or None,
        }


@dataclass
class LeftOut:
    """Statements of the version's files not mutated, counted by what they produce."""

    words: int = 0
    evidence: int = 0
    documentation: int = 0
    checks: int = 0  # integrity constraints: the KB checking its own tables
    unchanged: int = 0  # statements --since left out (not changed since the revision)

    def to_dict(self) -> dict:
        return {"words": self.words, "evidence": self.evidence, "documentation": self.documentation, "checks": self.checks, "unchanged": self.unchanged}


def cone(statements: Iterable[ast.AST], targets: Iterable[Signature]) -> set[Signature]:
    """The predicates the targets depend on through rules (constraints aside)."""
    edges = [rule_signatures(n) for n in statements if n.ast_type == ASTType.Rule and not is_constraint(n)]
    needed = set(targets)
    changed = True
    while changed:
        changed = False
        for heads, body in edges:
            if heads & needed and not body <= needed:
                needed |= body
                changed = True
    return needed


def base_nodes(kb: KnowledgeBase) -> list[ast.AST]:
    return [s.node for s in kb.statements if s.part == "base" and s.node.ast_type != ASTType.Program]


class _Source:
    """A file's bytes and line offsets: clingo's columns count bytes."""

    def __init__(self, text: str):
        self.text = text
        self.data = text.encode("utf-8")
        self.starts = [0]
        for i, b in enumerate(self.data):
            if b == 10:
                self.starts.append(i + 1)

    def at(self, pos: Any) -> int:
        return self.starts[pos.line - 1] + pos.column - 1

    def span(self, node: ast.AST) -> tuple[int, int]:
        loc = node.location
        return self.at(loc.begin), self.at(loc.end)

    def piece(self, start: int, end: int) -> str:
        return self.data[start:end].decode("utf-8")


def _cut(data: bytes, start: int, end: int, seps: bytes) -> tuple[int, int]:
    """A term's span widened by one separator beside it (and the spaces around it, never a newline)."""
    j = end
    while j < len(data) and data[j] in b" \t":
        j += 1
    if j < len(data) and data[j] in seps:
        j += 1
        while j < len(data) and data[j] in b" \t":
            j += 1
        return start, j
    i = start
    while i > 0 and data[i - 1] in b" \t":
        i -= 1
    if i > 0 and data[i - 1] in seps:
        return i - 1, end
    return start, end


def _kept_lines(removed: bytes, new: str) -> str:
    """New text with as many line breaks added as the removed text held, so later lines keep their numbers."""
    return new + "\n" * max(0, removed.count(b"\n") - new.count("\n"))


def _walk(node: ast.AST, found: list, kinds: set) -> None:
    """Every node of the given kinds below ``node``, in source order."""
    if node.ast_type in kinds:
        found.append(node)
    for key in node.child_keys:
        child = getattr(node, key)
        if child is None:
            continue
        if isinstance(child, ast.AST):
            _walk(child, found, kinds)
        else:
            for item in child:
                if isinstance(item, ast.AST):
                    _walk(item, found, kinds)


def _numbers(node: ast.AST) -> list[ast.AST]:
    found: list[ast.AST] = []
    _walk(node, found, {ASTType.SymbolicTerm})
    return [n for n in found if n.symbol.type == clingo.SymbolType.Number]


def _has_variables(node: ast.AST) -> bool:
    found: list[ast.AST] = []
    _walk(node, found, {ASTType.Variable})
    return bool(found)


def _pools(node: ast.AST) -> list[ast.AST]:
    found: list[ast.AST] = []
    _walk(node, found, {ASTType.Pool})
    return [p for p in found if len(p.arguments) >= 2]


@dataclass(frozen=True)
class _Change:
    kind: str
    at: ast.AST  # the node whose place is reported
    before: str
    after: str
    start: int
    end: int
    new: str  # the bytes [start, end) of the file become this


def _changes(node: ast.AST, src: _Source) -> list[_Change]:
    """Every single change of one statement (a rule or a fact)."""
    out: list[_Change] = []
    data = src.data
    s_start, s_end = src.span(node)
    fact = not node.body
    if fact:
        out.append(_Change(ROW_DELETED, node, src.piece(s_start, s_end), "", s_start, s_end, _kept_lines(data[s_start:s_end], "")))
    for pool in _pools(node):
        for element in pool.arguments:
            b, e = src.span(element)
            b, e = _cut(data, b, e, b";")
            out.append(_Change(CELL_DELETED if fact else POOL_DELETED, element, str(element), "", b, e, _kept_lines(data[b:e], "")))
    if not fact:
        body = list(node.body)
        for lit in body:
            b, e = src.span(lit)
            if len(body) == 1:  # `head :- lit.` becomes `head.`
                b = src.at(node.head.location.end)
            else:
                b, e = _cut(data, b, e, b",;")
            out.append(_Change(LITERAL_DELETED, lit, str(lit), "", b, e, _kept_lines(data[b:e], "")))
        for lit in body:
            if lit.ast_type != ASTType.Literal:
                continue
            atom = lit.atom
            b, e = src.span(lit)
            if atom.ast_type in (ASTType.SymbolicAtom, ASTType.BodyAggregate):
                sign = ast.Sign.Negation if lit.sign == ast.Sign.NoSign else ast.Sign.NoSign
                new = str(lit.update(sign=sign))
                out.append(_Change(LITERAL_NEGATED, lit, str(lit), new, b, e, _kept_lines(data[b:e], new)))
            if atom.ast_type == ASTType.Comparison and len(atom.guards) == 1:
                guard = atom.guards[0]
                for op in SWAPS.get(guard.comparison, ()):
                    new = str(lit.update(atom=atom.update(guards=[guard.update(comparison=op)])))
                    out.append(_Change(COMPARISON_SWAPPED, lit, str(lit), new, b, e, _kept_lines(data[b:e], new)))
            if atom.ast_type == ASTType.BodyAggregate:
                for side in ("left_guard", "right_guard"):
                    guard = getattr(atom, side)
                    if guard is None:
                        continue
                    for op in SWAPS.get(guard.comparison, ()):
                        new = str(lit.update(atom=atom.update(**{side: guard.update(comparison=op)})))
                        out.append(_Change(COMPARISON_SWAPPED, lit, str(lit), new, b, e, _kept_lines(data[b:e], new)))
    for number in _numbers(node):
        b, e = src.span(number)
        value = number.symbol.number
        for other in (value - 1, value + 1):
            if other < 0:
                continue
            out.append(_Change(NUMBER_CHANGED, number, str(value), str(other), b, e, str(other)))
    return out


MAX_COLUMN = 16
"""A pooled column with more values than this lists members, not marks: no value is added to its cells."""


class _Columns:
    """The columns of the version's tables whose rows hold several values (pooled somewhere, or a one-column
    table), and the values a cell of each may be given: the keys the case space gives its vocabulary (every
    key when the space does not restrict it), or else the values the column holds in other rows."""

    def __init__(self, kb: KnowledgeBase, nodes: Sequence[ast.AST], deciding: set[Signature]):
        facts: dict[Signature, list[ast.AST]] = {}
        for n in nodes:
            if n.ast_type == ASTType.Rule and not n.body and n.head.ast_type == ASTType.Literal and n.head.atom.ast_type == ASTType.SymbolicAtom:
                symbol = n.head.atom.symbol
                if symbol.ast_type == ASTType.Function and (symbol.name, len(symbol.arguments)) in deciding:
                    facts.setdefault((symbol.name, len(symbol.arguments)), []).append(symbol)
        kinds = KeyKinds(kb).kinds
        space = _space_values(kb)
        self.values: dict[tuple[str, int, int], list[str]] = {}
        self.last: dict[Signature, tuple] = {}
        for (name, arity), symbols in facts.items():
            for i in range(arity):
                pooled = any(s.arguments[i].ast_type == ASTType.Pool for s in symbols)
                if not pooled and arity != 1:
                    continue
                vocabularies = sorted(kinds.get((name, arity, i), set()))
                values = [x for v in vocabularies for x in space.get(v, [])]
                if vocabularies and not values:
                    values = [x for v in vocabularies for x in kb.vocabulary.keys.get(v, {})]
                column = list(dict.fromkeys(str(e) for s in symbols for e in _elements(s.arguments[i])))
                if arity == 1 and len(symbols) == 1:
                    continue  # one value, not a list of them (the drug a policy authorizes)
                if arity == 1:  # a one-column table: a key of the space it lacks, added once (to its last row)
                    self.last[(name, arity)] = _place(symbols[-1])
                    values = [x for x in values if x not in column]
                elif len(column) <= MAX_COLUMN:
                    values = column
                else:  # a list of members (a group's drugs, a row's brands): the KB's constraints keep each in one place
                    continue
                self.values[(name, arity, i)] = list(dict.fromkeys(values))

    def of(self, symbol: ast.AST, i: int) -> list[str]:
        key = (symbol.name, len(symbol.arguments))
        if key in self.last and self.last[key] != _place(symbol):
            return []
        return self.values.get((*key, i), [])


def _place(node: ast.AST) -> tuple:
    begin = node.location.begin
    return (begin.filename, begin.line, begin.column)


def _elements(term: ast.AST) -> list[ast.AST]:
    return list(term.arguments) if term.ast_type == ASTType.Pool else [term]


def _additions(node: ast.AST, src: _Source, columns: Optional[_Columns]) -> list[_Change]:
    """Each value a cell column of a fact lacks, added to it (a check mark, a brand, a specialty, a csDMARD)."""
    if columns is None or node.head.ast_type != ASTType.Literal or node.head.atom.ast_type != ASTType.SymbolicAtom:
        return []
    symbol = node.head.atom.symbol
    if symbol.ast_type != ASTType.Function:
        return []
    out = []
    for i, arg in enumerate(symbol.arguments):
        have = {str(e) for e in _elements(arg)}
        for value in columns.of(symbol, i):
            if value in have:
                continue
            if arg.ast_type == ASTType.Pool:
                at = src.span(arg.arguments[-1])[1]
                out.append(_Change(CELL_ADDED, arg, "", value, at, at, f"; {value}"))
            else:
                b, e = src.span(arg)
                out.append(_Change(CELL_ADDED, arg, "", value, b, e, f"({src.piece(b, e)}; {value})"))
    return out


def _space_values(kb: KnowledgeBase) -> dict[str, list[str]]:
    """The keys the case space gives each vocabulary (the constants of its fields' and entry fields' domains)."""
    c = compiled(kb)
    text = "\n".join([kb.part_text("base"), c.space_domain_text, *(str(n) for n in c.part("space"))])
    control = ground_program(kb, [text], [], "the case space")
    by_target: dict[str, str] = {}
    for f in kb.schema.fields:
        if f.atom is None:
            continue
        if f.kind.name == ENTRIES:
            for e in f.entry_fields:
                if e.kind.vocabulary:
                    by_target[f"({f.name},{e.name})"] = e.kind.vocabulary
        else:
            kind = f.kind.item if f.kind.name == LIST else f.kind
            if kind is not None and kind.vocabulary:
                by_target[f.name] = kind.vocabulary
    out: dict[str, list[str]] = {}
    for a in control.symbolic_atoms.by_signature("space_dom__", 2):
        target, value = a.symbol.arguments
        v = by_target.get(str(target).replace(" ", ""))
        if v is not None and value.type == clingo.SymbolType.Function and not value.arguments:
            out.setdefault(v, [])
            if value.name not in out[v]:
                out[v].append(value.name)
    return {v: sorted(values) for v, values in out.items()}


def _parse_at(text: str, loc: Any) -> Optional[ast.AST]:
    """The one statement a text holds, placed where the statement it replaces began (None when it is not one rule)."""
    pad = "\n" * (loc.begin.line - 1) + " " * (loc.begin.column - 1)
    nodes: list[ast.AST] = []
    try:
        ast.parse_string(pad + text, nodes.append, logger=lambda code, message: None)
    except RuntimeError:
        return None
    nodes = [n for n in nodes if n.ast_type not in (ASTType.Program, ASTType.Comment)]
    return nodes[0] if len(nodes) == 1 and nodes[0].ast_type == ASTType.Rule else None


def mutated_node(kb: KnowledgeBase, m: Mutant) -> Optional[ast.AST]:
    """The statement a mutant puts in place of its statement (None when it deletes it)."""
    if not m.text:
        return None
    return _parse_at(m.text, kb.statements[m.statement].node.location)


@dataclass
class Generated:
    mutants: list[Mutant]
    left_out: LeftOut
    statements: int  # statements mutated
    invalid: list[Mutant] = field(default_factory=list)  # changes that do not parse as one rule


def generate(kb: KnowledgeBase, kinds: Sequence[str] = KINDS, only_lines: Optional[dict[str, set[int]]] = None) -> Generated:
    """Every single change of the version's deciding rules and tables, in file order.

    The version's rules are its own files' and those of the libraries it
    includes (framework/library/), which stand where it declares them; a
    library's mutant is placed in the section the declaration's § comment
    names. ``only_lines``: for each file (as shown), the lines changed since
    a revision; a statement none of whose lines changed is left out
    (``--since``).
    """
    nodes = base_nodes(kb)
    deciding = cone(nodes, DECIDING)
    evidence = cone(nodes, EVIDENCE) - deciding
    documentation = cone(nodes, DOCUMENTATION) - deciding - evidence
    mine = {display_path(f) for f in kb.version_files} | set(kb.included)
    paras = Paragraphs({f: t for f, t in kb.texts.items() if f in mine})
    sources: dict[str, _Source] = {}
    columns = _Columns(kb, [s.node for s in kb.statements if s.file in mine and s.part == "base"], deciding) if CELL_ADDED in kinds else None
    left = LeftOut()
    out: list[Mutant] = []
    invalid: list[Mutant] = []
    mutated = 0
    for i, s in enumerate(kb.statements):
        if s.file not in mine or s.part != "base" or s.node.ast_type != ASTType.Rule:
            continue
        node = s.node
        if is_constraint(node):
            left.checks += 1
            continue
        heads, _ = rule_signatures(node)
        if not heads & deciding:
            if heads & evidence:
                left.evidence += 1
            elif heads & documentation:
                left.documentation += 1
            else:
                left.words += 1
            continue
        loc = node.location
        if only_lines is not None and not set(range(loc.begin.line, loc.end.line + 1)) & only_lines.get(s.file, set()):
            left.unchanged += 1
            continue
        src = sources.get(s.file)
        if src is None:
            src = sources[s.file] = _Source(kb.texts[s.file])
        cited_at = kb.included.get(s.file, (s.file, loc.begin.line, 0))  # a library's rule: where the version declares it
        comments = paras.comments.get((cited_at[0], paras.of(cited_at[0], cited_at[1])), [])
        header = next((t for n, t in comments if "§" in t and n <= cited_at[1]), "")
        section = _locator(header) if header else ""
        own = paras.comments.get((s.file, paras.of(s.file, loc.begin.line)), []) if s.file in kb.included else comments
        gap = next((t.split(GAP_MARK, 1)[1].lstrip(" -:").strip() for _, t in own if GAP_MARK in t), "")
        row = str(node) if not node.body else ""
        s_start, s_end = src.span(node)
        changes = [c for c in _changes(node, src) if c.kind in kinds]
        if CELL_ADDED in kinds and not node.body:
            changes += _additions(node, src, columns)
        if changes:
            mutated += 1
        for c in changes:
            data = src.data[: c.start] + c.new.encode("utf-8") + src.data[c.end :]
            text = "" if c.kind == ROW_DELETED else data[s_start : s_end + len(c.new.encode("utf-8")) - (c.end - c.start)].decode("utf-8")
            at = c.at.location.begin
            m = Mutant(len(out) + len(invalid), c.kind, s.file, at.line, at.column, c.before, c.after, i, text, (c.start, c.end, c.new), section, row, gap)
            if text and _parse_at(text, loc) is None:
                invalid.append(m)
                continue
            out.append(m)
    return Generated(out, left, mutated, invalid)


def changed_lines(kb: KnowledgeBase, rev: str) -> dict[str, set[int]]:
    """The lines of the version's files, and of the libraries it includes, that differ from revision ``rev`` (git), by file as shown.

    A file git does not track in the version folder counts as changed whole.
    """
    folder = kb.path
    git = ["git", "-C", str(folder)]
    libraries = [f for f in kb.files if display_path(f) in kb.included]
    paths = [".", *(os.path.relpath(f, folder) for f in libraries)]
    try:
        top = subprocess.run([*git, "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True).stdout.strip()
        subprocess.run([*git, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], capture_output=True, text=True, check=True)
        diff = subprocess.run([*git, "diff", "-U0", "--no-color", "--no-ext-diff", rev, "--", *paths], capture_output=True, text=True, check=True).stdout
        others = subprocess.run([*git, "ls-files", "--others", "--exclude-standard", "--full-name", "--", *paths], capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        raise MutateError("--since needs git, which is not installed") from None
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or "").strip().splitlines()
        raise MutateError(f"--since {rev}: not a revision of the git repository holding {display_path(folder)}" + (f" ({detail[-1]})" if detail else "")) from None
    by_path = {str(Path(f).resolve()): display_path(f) for f in [*kb.version_files, *libraries]}
    out: dict[str, set[int]] = {}
    current: Optional[str] = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            name = line[4:]
            current = None if name == "/dev/null" else by_path.get(str((Path(top) / name[2:]).resolve()))
        elif line.startswith("@@") and current is not None:
            match = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", line)
            if match:
                first, count = int(match.group(1)), int(match.group(2) or "1")
                lines = out.setdefault(current, set())
                lines.update(range(first, first + count) if count else (first, first + 1))
    for name in others.splitlines():
        shown = by_path.get(str((Path(top) / name).resolve()))
        if shown is not None:
            out[shown] = set(range(1, kb.texts.get(shown, "").count("\n") + 2))
    return out


# --- how each mutant fares ------------------------------------------------------------------


@dataclass
class Outcome:
    """What became of one mutant."""

    status: str  # killed | survived | equivalent | invalid
    by: str = ""  # killed: constraints | examples | properties | time
    noticed: list[str] = field(default_factory=list)  # the examples or properties that noticed it
    unchecked: list[str] = field(default_factory=list)  # examples whose outcome changes though their expect block does not say so
    why: str = ""  # equivalent: static (no case-dependent rule reads the change) | space (no case of the space tells it apart)
    case: Optional[dict] = None  # survived: a case the mutant decides otherwise
    change: str = ""  # survived: how it decides that case otherwise, in words
    detail: str = ""  # invalid: what clingo says of the changed rule

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "by": self.by or None,
            "noticed": self.noticed,
            "unchecked": self.unchecked,
            "why": self.why or None,
            "case": self.case,
            "change": self.change or None,
            "detail": self.detail or None,
        }


@dataclass
class Example:
    """An example case of the version, validated, with its expect block."""

    path: str
    case: Any  # Case
    choice: Any  # Choice
    expect: dict
    source: Any = None  # what a mutated version validates again: the case's data, or its .lp file


def example_files(kb: KnowledgeBase, cases: Optional[Sequence[Path]] = None) -> list[Path]:
    """The example case files a run reads: the given files or folders, else the version's own cases/ folder."""
    if cases is not None:
        return discover(list(cases))
    folder = kb.path / CASES
    return discover([folder]) if folder.is_dir() else []


def load_examples(kb: KnowledgeBase, cases: Optional[Sequence[Path]] = None) -> tuple[list[Example], list[str]]:
    """The example cases (the version's own, unless given) that carry an expect block, and the ones that fail to load."""
    chooser = Chooser(fixed=kb)
    out: list[Example] = []
    errors: list[str] = []
    for path in example_files(kb, cases):
        shown = display_path(path)
        try:
            read = load(path, chooser, by_folder=True)
            case, choice = read.case, read.choice
            if case.expect is None:
                continue
            source: Any = path if path.suffix == ".lp" else parse_json_text(read_case_file(path, shown, MAX_FILE_BYTES), shown)
            out.append(Example(shown, case, choice, dict(check_expect(case.expect, shown)), source))
        except CaseError as exc:
            errors.append(exc.line())
    return out, errors


def _guard(k: int, loc: Any, positive: bool) -> ast.AST:
    atom = ast.SymbolicAtom(ast.Function(loc, GUARD, [ast.SymbolicTerm(loc, clingo.Number(k))], 0))
    return ast.Literal(loc, ast.Sign.NoSign if positive else ast.Sign.Negation, atom)


def _as_rule(node: ast.AST, body: list) -> ast.AST:
    return node.update(body=[*node.body, *body])


class Schema:
    """A version's base program with a share of its mutants folded in (see the module's words)."""

    def __init__(self, kb: KnowledgeBase, mutants: Sequence[Mutant], nodes: dict[int, Optional[ast.AST]]):
        self.kb = kb
        self.mutants = list(mutants)
        by_statement: dict[int, list[Mutant]] = {}
        for m in self.mutants:
            by_statement.setdefault(m.statement, []).append(m)
        out: list[ast.AST] = []
        for i, s in enumerate(kb.statements):
            if s.part != "base" or s.node.ast_type == ASTType.Program:
                continue
            mine = by_statement.get(i)
            if not mine:
                out.append(s.node)
                continue
            loc = s.node.location
            out.append(_as_rule(s.node, [_guard(m.index, loc, False) for m in mine]))
            for m in mine:
                variant = nodes.get(m.index)
                if variant is not None:
                    out.append(_as_rule(variant, [_guard(m.index, loc, True)]))
        self.nodes = out

    def externals(self, mutants: Optional[Iterable[Mutant]] = None) -> str:
        return "\n".join(f"#external {GUARD}({m.index})." for m in (self.mutants if mutants is None else mutants))


class _Switched:
    """A mutant switched on (its guard, an external atom, made true) for the solves within."""

    def __init__(self, control: clingo.Control, k: int):
        self.control = control
        self.atom = clingo.Function(GUARD, [clingo.Number(k)])

    def __enter__(self) -> None:
        self.control.assign_external(self.atom, True)

    def __exit__(self, *exc: Any) -> None:
        self.control.assign_external(self.atom, False)


def _static_nodes(nodes: Sequence[ast.AST], dynamic: frozenset) -> list[ast.AST]:
    out = []
    for n in nodes:
        kind = n.ast_type
        if kind in (ASTType.ShowSignature, ASTType.ShowTerm):
            continue
        if kind == ASTType.Rule:
            heads, body = rule_signatures(n)
            if (heads | body) & dynamic:
                continue
        elif kind == ASTType.Defined and (n.name, n.arity) in dynamic:
            continue
        out.append(n)
    return out


def _may_match(term: ast.AST, sym: clingo.Symbol) -> bool:
    """Whether an atom's argument as a rule writes it may be the ground term (variables match anything)."""
    kind = term.ast_type
    if kind == ASTType.Variable:
        return True
    if kind == ASTType.SymbolicTerm:
        return term.symbol == sym
    if kind == ASTType.Function:
        if sym.type != clingo.SymbolType.Function or sym.name != term.name or len(sym.arguments) != len(term.arguments):
            return False
        return all(_may_match(a, s) for a, s in zip(term.arguments, sym.arguments))
    if kind == ASTType.Pool:
        return any(_may_match(a, sym) for a in term.arguments)
    return True  # an operation, an interval: any value may be it


def _reads(symbol_node: ast.AST) -> tuple[str, list]:
    kind = symbol_node.ast_type
    if kind == ASTType.Function:
        return symbol_node.name, list(symbol_node.arguments)
    if kind == ASTType.SymbolicTerm and symbol_node.symbol.type == clingo.SymbolType.Function:
        return symbol_node.symbol.name, []
    return "", []


class _Readers:
    """The static atoms the case-dependent rules read (each as the rule writes it): a change
    of static atoms none of them may read changes no decision."""

    def __init__(self, kb: KnowledgeBase, nodes: Sequence[ast.AST], dynamic: frozenset):
        deciding = cone(nodes, DECIDING)
        self.patterns: dict[Signature, list[list]] = {}
        for n in nodes:
            if n.ast_type != ASTType.Rule:
                continue
            heads, body = rule_signatures(n)
            if not ((heads | body) & dynamic):
                continue  # static
            if heads and not heads & deciding:
                continue  # words, evidence, documentation
            for sig, sym in rule_atoms(n)[1]:
                if sig in dynamic:
                    continue
                name, args = _reads(sym)
                if sym.ast_type == ASTType.Pool:
                    for alt in sym.arguments:
                        self.patterns.setdefault(sig, []).append(_reads(alt)[1])
                elif name:
                    self.patterns.setdefault(sig, []).append(args)
        # what Python reads of the static model to validate a case and build a decision
        self.package = {(v, 2) for v in kb.vocabulary.keys} | PACKAGE_VALIDATES

    def read(self, sym: clingo.Symbol) -> bool:
        sig = (sym.name, len(sym.arguments))
        return any(len(args) == len(sym.arguments) and all(_may_match(a, s) for a, s in zip(args, sym.arguments)) for args in self.patterns.get(sig, ()))

    def python_reads(self, sym: clingo.Symbol) -> bool:
        return (sym.name, len(sym.arguments)) in self.package


PACKAGE_VALIDATES: set[Signature] = {
    ("vocabulary", 2),
    ("criterion", 4),
    ("key_name", 3),
    ("key_name_filler", 2),
    ("key_name_numbers", 1),
    ("key_narrows", 3),
    ("input_field", 4),
    ("input_atom", 2),
    ("entry_field", 5),
    ("entry_atom", 3),
    ("field_role", 2),
    ("policy", 2),
    ("effective_from", 1),
    ("effective_to", 1),
    ("claim", 3),
    ("prevails_over", 1),
    ("requested_drug", 1),
}
"""Static facts Python reads to validate a case, choose its version and build its decision's tree."""


SEARCH_RULES = """
parent__(old, C, P) :- old__criterion(C, P, _, _).
parent__(new, C, P) :- new__criterion(C, P, _, _).
shown__(V, C) :- applies__(V, C), parent__(V, C, none).
shown__(V, C) :- applies__(V, C), parent__(V, C, P), shown__(V, P).
outcome__(V, C, met) :- shown__(V, C), not unmet__(V, C).
outcome__(V, C, unmet) :- shown__(V, C), unmet__(V, C).
changed :- outcome__(old, C, S), not outcome__(new, C, S).
changed :- outcome__(new, C, S), not outcome__(old, C, S).
changed :- footprint__(old, rs(R)), not footprint__(new, rs(R)).
changed :- footprint__(new, rs(R)), not footprint__(old, rs(R)).
decision_changed__ :- decided(old, D), not decided(new, D).
decision_changed__ :- decided(new, D), not decided(old, D).
decision_changed__ :- months__(old, M), not months__(new, M).
decision_changed__ :- months__(new, M), not months__(old, M).
#external prefer_decision__.
:- prefer_decision__, not decision_changed__.
:- not changed.
"""
"""diff's joint program, asked for any change an expect block can state: the outcome of a criterion a
decision shows (one that applies under criteria that apply, as its tree does) and the reasons besides
the decision and its length (a change of the decision preferred when there is one)."""


class _Share:
    """One worker's mutants, each taken through the phases until one notices it."""

    def __init__(self, kb: KnowledgeBase, mutants: Sequence[Mutant], examples: Sequence[Example], time_limit: float):
        self.kb = kb
        self.mutants = list(mutants)
        self.examples = list(examples)
        self.limit = time_limit
        self.compiled = compiled(kb)
        self.dynamic = self.compiled.dynamic
        self.out: dict[int, Outcome] = {}
        self.nodes: dict[int, Optional[ast.AST]] = {}
        self.slow: set[int] = set()  # mutants Python must read the mutated KB for (a key, a criterion, a name)
        self.unchecked: dict[int, list[str]] = {}  # examples whose outcome a mutant changes unnoticed
        self.patch: dict[int, tuple[frozenset, frozenset]] = {}  # a slow mutant's static atoms: taken away, added
        self.builders: dict[int, KnowledgeBase] = {}  # a mutant whose decisions its own criteria arrange

    def run(self) -> dict[int, Outcome]:
        live = self._valid(self.mutants)
        live = self._static(live)
        live = self._examples(live)
        live = self._properties(live)
        self._search(live)
        return self.out

    # the changed rule must be one clingo grounds
    def _valid(self, mutants: list[Mutant]) -> list[Mutant]:
        live = []
        for m in mutants:
            node = mutated_node(self.kb, m)
            self.nodes[m.index] = node
            if node is not None and _has_variables(node):
                log = MessageLog(m.file)
                control = new_control([], log)
                try:
                    control.add("base", [], str(node))
                    control.ground([("base", [])])
                except RuntimeError:
                    errors = log.errors()
                    self.out[m.index] = Outcome(INVALID, detail=errors[0].message if errors else "")
                    continue
            live.append(m)
        return live

    def _is_static(self, m: Mutant) -> bool:
        node = self.kb.statements[m.statement].node
        heads, body = rule_signatures(node)
        return not (heads | body) & self.dynamic

    # 1. the static program: the KB's constraints, and changes no case-dependent rule reads
    def _static(self, mutants: list[Mutant]) -> list[Mutant]:
        mine = [m for m in mutants if self._is_static(m)]
        if not mine:
            return mutants
        readers = _Readers(self.kb, base_nodes(self.kb), self.dynamic)
        for start in range(0, len(mine), BATCH):
            self._static_batch(mine[start : start + BATCH], readers)
        return [m for m in mutants if m.index not in self.out]

    def _static_batch(self, mine: list[Mutant], readers: "_Readers") -> None:
        schema = Schema(self.kb, mine, self.nodes)
        shown = ["#show."] + [f"#show {n}/{a}." for n, a in sorted({*readers.patterns, *readers.package})]  # what can matter
        text = "\n".join([*(str(n) for n in _static_nodes(schema.nodes, self.dynamic)), schema.externals(), *shown])
        control = new_control([])
        control.add("base", [], text)
        control.ground([("base", [])])
        base = self._atoms(control, [])
        if base is None:
            raise MutateError("the KB's static program has no answer")
        for m in mine:
            with _Switched(control, m.index):
                atoms = self._atoms(control, [])
            if atoms is None:
                self.out[m.index] = Outcome(KILLED, BY_CONSTRAINTS)
                continue
            changed = [atom_symbol(s) for s in base ^ atoms]
            if any(readers.python_reads(s) for s in changed):
                self.slow.add(m.index)
                self.patch[m.index] = (frozenset(map(atom_symbol, base - atoms)), frozenset(map(atom_symbol, atoms - base)))
            elif not any(readers.read(s) for s in changed):
                self.out[m.index] = Outcome(EQUIVALENT, why=STATIC)

    def _atoms(self, control: clingo.Control, assumptions: list[int]) -> Optional[frozenset]:
        try:
            for model in models(control, self.limit, assumptions):
                return shown_atoms(model)
        except SolveTimeout:
            return None
        return None

    # 2. the example cases
    def _examples(self, mutants: list[Mutant]) -> list[Mutant]:
        fast = [m for m in mutants if m.index not in self.slow]
        for m in mutants:
            if m.index in self.slow and self._examples_slow(m):
                fast.append(m)  # Python reads the same cases and criteria: the program alone tells
        if fast and self.examples:
            self._examples_fast(fast)
        return [m for m in mutants if m.index not in self.out]

    def _examples_fast(self, mutants: list[Mutant]) -> None:
        schema = Schema(self.kb, mutants, self.nodes)
        rw = Rewrite(self.dynamic, variable(CASE_VAR), guard_atom(CASE_GUARD, CASE_VAR))
        shown = [sig for sig in DECIDING if sig in self.dynamic]
        lines = ["#show."]
        for node in needed_statements(schema.nodes, shown):
            if node.ast_type in (ASTType.ShowSignature, ASTType.ShowTerm):
                continue
            text = _chunk_line(node, rw)
            if text is not None:
                lines.append(text)
        lines += [f"#show {n}/{a + 1}." for n, a in shown]
        lines += [f"#defined {CASE_GUARD}/1.", *(f"#defined {n}/{a + 1}." for n, a in sorted(self.compiled.inputs)), schema.externals()]
        adder = FactAdder()

        def add_facts(control: clingo.Control) -> None:
            adder.add_cases(control, (CASE_GUARD,), [example.case.atoms() for example in self.examples])

        control = ground_program(self.kb, ["\n".join(lines)], (), "the examples with their mutants", add_facts)
        reader = ShownReader(SymbolDecoder())
        names = [n for n, _ in shown]

        def solve(base: Optional[frozenset], every: bool) -> Optional[tuple[frozenset, Optional[list[dict]]]]:
            """The model's shown atoms, and each example's output unless the atoms are ``base``'s (and ``every`` is not asked)."""
            for model in models(control, self.limit, []):
                atoms = shown_atoms(model)
                if atoms == base and not every:
                    return atoms, None
                found: list[dict] = [{n: [] for n in names} for _ in self.examples]
                reader.read_into(model, found)
                return atoms, found
            return None

        first = solve(None, False)
        if first is None:
            raise MutateError("the example cases have no answer with the KB itself")
        base = first[0]
        for m in mutants:
            worded = m.index in self.builders  # its own criteria arrange every decision, the same atoms too
            try:
                with _Switched(control, m.index):
                    got = solve(base, worded)
            except SolveTimeout:
                self.out[m.index] = Outcome(KILLED, BY_TIME)
                continue
            if got is None:  # an integrity constraint fails for some example (or for every case)
                self.out[m.index] = Outcome(KILLED, BY_CONSTRAINTS if not self.examples else BY_EXAMPLES, noticed=["(no answer)"])
                continue
            atoms, outputs = got
            if outputs is None:  # every example's answer as the KB's own
                continue
            # the examples whose answer changed: each shown atom's first argument is its example's number
            changed = range(len(self.examples)) if worded else sorted({atom_symbol(a).arguments[0].number for a in atoms ^ base})
            noticed, unchecked = [], []
            for k in changed:
                example = self.examples[k]
                if self._fails(example, outputs[k], self.builders.get(m.index, self.kb)):
                    noticed.append(example.path)
                else:
                    unchecked.append(example.path)
            if noticed:
                self.out[m.index] = Outcome(KILLED, BY_EXAMPLES, noticed=noticed)
            elif unchecked:
                self.unchecked[m.index] = unchecked

    def _fails(self, example: Example, output: dict, kb: KnowledgeBase) -> bool:
        try:
            decision = build_decision(example.case, output, kb, example.choice.how)
        except KineretError:
            return True
        return bool(compare(example.expect, decision))

    def _examples_slow(self, m: Mutant) -> bool:
        """The examples validated (and, unless Python reads them as before, decided) with the mutated version, as ``test`` would.

        Returns whether Python reads every example as it did and the
        criteria are the same: then the mutant schema decides them.
        """
        from ..api import decide_many

        with _no_disk_cache():
            mutant_kb = mutated_kb(self.kb, m, self.nodes.get(m.index))
            patch = self.patch.get(m.index)
            if patch is not None:  # the static model is the original's with the change's atoms: no grounding
                mutant_kb.__dict__["ordered_model"] = _patched(self.kb.ordered_model, patch)
            try:
                mutant_kb.vocabulary
                mutant_kb.schema
            except KbError:
                self.out[m.index] = Outcome(KILLED, BY_CONSTRAINTS)
                return False
            noticed: list[str] = []
            loaded = []
            same = True
            chooser = Chooser(fixed=mutant_kb)
            for example in self.examples:
                choice = Choice(mutant_kb, example.choice.how)
                try:
                    case = load(example.source, chooser, shown=example.path).case
                except CaseError:
                    noticed.append(example.path)
                    continue
                loaded.append((example, case, choice))
                same = same and sorted(map(repr, case.atoms())) == sorted(map(repr, example.case.atoms()))  # a key is not its name
            if noticed:
                self.out[m.index] = Outcome(KILLED, BY_EXAMPLES, noticed=sorted(noticed))
                return False
            if same:  # Python reads the cases as before: the program decides, and the mutated version words the decisions
                if mutant_kb.vocabulary.criteria != self.kb.vocabulary.criteria:
                    self.builders[m.index] = mutant_kb
                return True
            mutant_kb.__dict__.pop("ordered_model", None)  # decided for real: the model grounded
            try:
                decisions = list(decide_many([Loaded(case, choice) for _, case, choice in loaded]))
            except KineretError:
                self.out[m.index] = Outcome(KILLED, BY_EXAMPLES, noticed=["(no answer)"])
                return False
        for (example, _, _), decision in zip(loaded, decisions):
            if compare(example.expect, decision):
                noticed.append(example.path)
        if noticed:
            self.out[m.index] = Outcome(KILLED, BY_EXAMPLES, noticed=sorted(noticed))
        return False

    # 3. the properties
    def _properties(self, mutants: list[Mutant]) -> list[Mutant]:
        if not mutants:
            return mutants
        schema = Schema(self.kb, mutants, self.nodes)
        c = self.compiled
        tagged = [*c.tagged(schema.nodes), *(f"#defined {n}/{a + 1}." for n, a in sorted(c.inputs)), *c.tagged([*parse_text(c.space_text), *c.part("space")]), *c.relations_text(), schema.externals()]
        decode = SymbolDecoder()
        for file, statements in sorted(properties_of(self.kb).items()):
            pending = [m for m in mutants if m.index not in self.out]
            if not pending:
                break
            declared = declared_property(statements)
            name = declared[0] if declared else file
            own = [str(s.node) for s in statements]
            heads = {h for s in statements for h in _heads(s)}
            if "expected_witness" in heads:
                control = ground_program(self.kb, ["\n".join([*tagged, *own, "#show witness/1.", "#show expected_witness/1."])], ["--enum-mode=brave", "--models=0"], "the property")
                for m in pending:
                    last: list = []
                    try:
                        with _Switched(control, m.index):
                            for model in models(control, self.limit):
                                last = [decode(s) for s in model.symbols(shown=True)]
                    except SolveTimeout:
                        continue  # not decided in time: this property does not notice it
                    expected = {a[1] for a in last if a[0] == "expected_witness"}
                    seen = {a[1] for a in last if a[0] == "witness"}
                    if not last or expected - seen:
                        self.out[m.index] = Outcome(KILLED, BY_PROPERTIES, noticed=[name])
                pending = [m for m in pending if m.index not in self.out]
            if "counterexample" in heads and pending:
                control = ground_program(self.kb, ["\n".join([*tagged, *own, ":- not counterexample.", "#show."])], [], "the property")
                for m in pending:
                    try:
                        with _Switched(control, m.index):
                            for _ in models(control, self.limit):
                                self.out[m.index] = Outcome(KILLED, BY_PROPERTIES, noticed=[name])
                                break
                    except SolveTimeout:
                        continue
        return [m for m in mutants if m.index not in self.out]

    # 4. a case of the space that tells the mutant apart, or none
    def _search(self, mutants: list[Mutant]) -> None:
        if not mutants:
            return
        kb = self.kb
        schema = Schema(kb, mutants, self.nodes)
        fields = joint_fields(kb, kb)
        program = self.compiled.renamed(("base", "space_domains"), "old__", set())
        space = [*parse_text(self.compiled.space_domain_text), *self.compiled.part("space")]
        program.append("\n".join(_renamed([*schema.nodes, *space], "new__")))
        program += joint_program(kb, kb, fields)
        program.append(JOINT_RULES)
        program += header_rules(fields, shown_fields(kb, kb))
        program += [SEARCH_RULES, minimize_joint(), schema.externals(), *widened_space(kb, [kb.statements[m.statement].node for m in mutants], ("old__", "new__"))]
        control = ground_program(kb, ["\n".join(program)], ["--opt-mode=opt"], "the original and its mutants together")
        prefer = clingo.Function("prefer_decision__")
        decode = SymbolDecoder()
        joint = {"in__", "in__entry"}
        for m in mutants:
            best: list = []
            timed_out = False
            with _Switched(control, m.index):
                for wanted in (True, False):
                    control.assign_external(prefer, wanted)
                    try:
                        for model in models(control, self.limit):
                            best = model.symbols(shown=True)
                    except SolveTimeout:
                        timed_out = True
                    if best:
                        break
            unchecked = self.unchecked.get(m.index, [])
            if not best:
                if timed_out:
                    self.out[m.index] = Outcome(SURVIVED, unchecked=unchecked)
                else:
                    self.out[m.index] = Outcome(EQUIVALENT, why=IN_SPACE)
                continue
            atoms = [decode(s) for s in best if s.name in joint]
            classes = frozenset(decode(s) for s in best if s.name == "class")
            case = case_of(atoms, fields)
            words = _describe(classes, [case], [frozenset()], kb, kb).change_text(kb)
            self.out[m.index] = Outcome(SURVIVED, unchecked=unchecked, case=case, change=words)


def _renamed(nodes: Sequence[ast.AST], prefix: str) -> list[str]:
    """Statements with every predicate but the mutants' guard renamed (as diff renames a version)."""
    from clingox.ast import rename_symbolic_atoms

    out = []
    for node in nodes:
        kind = node.ast_type
        if kind in (ASTType.ShowSignature, ASTType.ShowTerm, ASTType.Program):
            continue
        if kind == ASTType.Defined:
            out.append(str(node.update(name=prefix + node.name)))
            continue
        out.append(str(rename_symbolic_atoms(node, lambda n: n if n == GUARD else prefix + n)))
    return out


def widened_space(kb: KnowledgeBase, statements: Sequence[ast.AST], prefixes: Sequence[str]) -> list[str]:
    """The keys the statements name, added to the space of every field the space restricts that takes them.

    A change of the row of a drug the space leaves out is then looked for
    with that drug in a case.
    """
    keys = kb.vocabulary.keys
    named: set[str] = set()
    for node in statements:
        found: list[ast.AST] = []
        _walk(node, found, {ASTType.SymbolicTerm, ASTType.Function})
        for n in found:
            if n.ast_type == ASTType.SymbolicTerm and n.symbol.type == clingo.SymbolType.Function and not n.symbol.arguments:
                named.add(n.symbol.name)
            elif n.ast_type == ASTType.Function and not n.arguments:
                named.add(n.name)
    restricted = _restricted(kb)
    lines: list[str] = []
    for f in kb.schema.fields:
        if f.atom is None:
            continue
        targets: list[tuple[str, str, Any]] = []
        if f.kind.name == ENTRIES:
            targets = [(f"({f.name}, {e.name})", f"space_entry_value({f.name}, {e.name}, {{}})", e.kind) for e in f.entry_fields]
        elif f.kind.name == LIST:
            targets = [(f.name, f"space_value({f.name}, {{}})", f.kind.item)]
        else:
            targets = [(f.name, f"space_value({f.name}, {{}})", f.kind)]
        for target, fact, kind in targets:
            if kind is None or not kind.vocabulary or target.replace(" ", "") not in restricted:
                continue
            for key in sorted(named & set(keys.get(kind.vocabulary, {}))):
                for prefix in prefixes:
                    lines.append(prefix + fact.format(key) + ".")
    return lines


def _restricted(kb: KnowledgeBase) -> set[str]:
    """The fields (and entry fields, as ``(list,field)``) whose values the version's space lists."""
    c = compiled(kb)
    text = "\n".join([kb.part_text("base"), c.space_domain_text, *(str(n) for n in c.part("space"))])
    control = ground_program(kb, [text], [], "the case space")
    return {str(a.symbol.arguments[0]).replace(" ", "") for a in control.symbolic_atoms.by_signature("space_restricted__", 1)}


class _no_disk_cache:
    """Programs derived from a mutated KB are not kept on disk (their digest is never asked for again)."""

    def __enter__(self) -> None:
        self.before = os.environ.get("KINERET_ASP_CACHE")
        os.environ["KINERET_ASP_CACHE"] = "off"

    def __exit__(self, *exc: Any) -> None:
        if self.before is None:
            os.environ.pop("KINERET_ASP_CACHE", None)
        else:
            os.environ["KINERET_ASP_CACHE"] = self.before


class MutatedKB(KnowledgeBase):
    """A version with one mutant's change, in memory: its statements are the original's but one.

    It shares what does not depend on the change: the facts' places in the
    files (an atom the change adds stands after them), the statements'
    texts, the decoded symbols.
    """

    original: KnowledgeBase

    @cached_property
    def declaration_rank(self) -> dict[tuple, tuple[int, int]]:
        return self.original.declaration_rank

    def part_text(self, name: str) -> str:
        return "\n".join(node_text(s.node) for s in self.statements if s.part == name and s.node.ast_type != ASTType.Program)

    def _ground_static(self) -> list[tuple]:
        where = display_path(self.path)
        log = MessageLog(where)
        control = new_control([], log, message_limit=100)
        try:
            control.add("base", [], self.part_text("base"))
            control.ground([("base", [])])
        except RuntimeError:
            raise KbError(log.errors() or [Diagnostic(where, 0, 0, "error", "the KB does not ground")]) from None
        atoms: list[tuple] = []
        result = control.solve(on_model=lambda m: atoms.extend(as_atom(_DECODE(s)) for s in m.symbols(atoms=True)))
        if not result.satisfiable:
            raise KbError([Diagnostic(where, 0, 0, "error", "an integrity constraint fails with no case at all")])
        return atoms


def _patched(model: list[tuple], patch: tuple[frozenset, frozenset]) -> list[tuple]:
    """A static model with the atoms a change took away left out and those it added at the end."""
    removed = {as_atom(_DECODE(s)) for s in patch[0]}
    added = sorted((as_atom(_DECODE(s)) for s in patch[1]), key=repr)
    return [a for a in model if a not in removed] + added


class _SharedDecoder:
    """One symbol decoder for every mutated KB of a process (their static models are mostly the same symbols), made when first used."""

    decoder: Optional[SymbolDecoder] = None

    def __call__(self, symbol: clingo.Symbol) -> Any:
        if self.decoder is None:
            self.decoder = SymbolDecoder()
        return self.decoder(symbol)


_DECODE = _SharedDecoder()


def mutated_kb(kb: KnowledgeBase, m: Mutant, node: Optional[ast.AST] = None) -> KnowledgeBase:
    """The version with the mutant's change, in memory (its file's text changed too: another digest)."""
    if node is None and m.text:
        node = mutated_node(kb, m)
    statements = list(kb.statements)
    old = statements[m.statement]
    if node is None:
        del statements[m.statement]
    else:
        statements[m.statement] = Statement(old.part, node, old.file, old.rank)
    texts = dict(kb.texts)
    texts[m.file] = m.apply(texts[m.file])
    raw = {f: data for f, data in kb.raw.items() if f != m.file}  # the changed file's digest is its new text's
    mutant = MutatedKB(kb.path, kb.root, kb.files, statements, kb.comments, kb.messages, kb.errors, texts, raw, kb.included)
    mutant.original = kb
    return mutant


# --- a run ----------------------------------------------------------------------------------


@dataclass
class MutationReport:
    """Every mutant of a run and what became of it."""

    kb: KnowledgeBase
    mutants: list[Mutant]
    outcomes: dict[int, Outcome]
    left_out: LeftOut
    statements: int
    seconds: float = 0.0
    jobs: int = 1
    since: Optional[str] = None
    drawn_from: Optional[int] = None  # a sample: the number of mutants it was drawn from
    seed: Optional[int] = None  # a sample: the seed of the draw

    def with_status(self, status: str) -> list[tuple[Mutant, Outcome]]:
        return [(m, self.outcomes[m.index]) for m in self.mutants if self.outcomes[m.index].status == status]

    def count(self, status: str, by: str = "") -> int:
        return sum(1 for m in self.mutants if self.outcomes[m.index].status == status and (not by or self.outcomes[m.index].by == by))

    @property
    def killed(self) -> int:
        return self.count(KILLED)

    @property
    def survived(self) -> int:
        return self.count(SURVIVED)

    @property
    def scored(self) -> int:
        """The mutants the score counts: the non-equivalent ones (killed or survived)."""
        return self.killed + self.survived

    @property
    def score(self) -> Optional[float]:
        """Killed mutants in percent of the non-equivalent ones (None without any)."""
        return 100.0 * self.killed / self.scored if self.scored else None

    def unexplained(self) -> list[tuple[Mutant, Outcome]]:
        """Survivors no known-gap comment of their paragraph explains."""
        return [(m, o) for m, o in self.with_status(SURVIVED) if not m.gap]

    def to_dict(self) -> dict:
        return {
            "kb": str(self.kb.root),
            "version": self.kb.folder,
            "since": self.since,
            "seconds": round(self.seconds, 2),
            "jobs": self.jobs,
            "sample": None if self.drawn_from is None else {"mutants": len(self.mutants), "drawn_from": self.drawn_from, "seed": self.seed},
            "score": None if self.score is None else round(self.score, 2),
            "killed": self.killed,
            "survived": self.survived,
            "equivalent": self.count(EQUIVALENT),
            "invalid": self.count(INVALID),
            "statements": self.statements,
            "left_out": self.left_out.to_dict(),
            "mutants": [{**m.to_dict(), **self.outcomes[m.index].to_dict(), "gap": m.gap or None} for m in self.mutants],
        }


def _shares(mutants: Sequence[Mutant], jobs: int) -> list[list[Mutant]]:
    """Mutants dealt out to the workers: the same kinds of work in each."""
    shares: list[list[Mutant]] = [[] for _ in range(max(1, min(jobs, len(mutants))))]
    for i, m in enumerate(mutants):
        shares[i % len(shares)].append(m)
    return shares


def mutate(
    kb: Any = None,
    jobs: int = 1,
    time_limit: float = 10.0,
    since: Optional[str] = None,
    kinds: Sequence[str] = KINDS,
    memory_mb: Optional[int] = None,
    cases: Optional[Sequence[Path]] = None,
    sample: Optional[int] = None,
    seed: int = 0,
) -> MutationReport:
    """Mutate a version's deciding rules and tables and run its examples and properties on every mutant.

    ``jobs`` worker processes share the mutants; ``time_limit`` bounds each
    solve a mutant takes (a phase: its examples, a property, the search for a
    case); ``since`` (a git revision) mutates only the statements changed since;
    ``cases``: the example case files or folders (default: the version's cases/);
    ``sample``: only that many of the mutants, drawn at random with ``seed``
    (the same draw every run: a quick estimate of the score).
    The examples and the version's properties must pass first.
    """
    start = time.perf_counter()
    knowledge = resolve_kb(kb)
    only = changed_lines(knowledge, since) if since is not None else None  # a revision git does not know stops the run at once
    files = example_files(knowledge, cases)
    if files:
        report = run_case_tests(files, knowledge)
        failing = [r.path for r in report.results if not r.passed]
        if failing:
            raise own_examples_fail(failing)
    if _has_properties(knowledge):
        broken = [r.name for r in verify_kb(knowledge) if not r.holds]
        if broken:
            raise OwnTestsFail(f"the version's own properties fail ({', '.join(broken)}): fix them before mutating")
    generated = generate(knowledge, kinds, only)
    total = len(generated.mutants) + len(generated.invalid)
    if sample is not None and sample < total:
        drawn = set(random.Random(seed).sample(range(total), sample))
        generated = Generated([m for m in generated.mutants if m.index in drawn], generated.left_out, generated.statements, [m for m in generated.invalid if m.index in drawn])
    examples, _ = load_examples(knowledge, files)
    outcomes: dict[int, Outcome] = {m.index: Outcome(INVALID, detail="the change does not parse as one rule") for m in generated.invalid}
    shares = _shares(generated.mutants, jobs)
    limits = Limits(None, memory_mb or DEFAULT_MEMORY_MB)
    if generated.mutants:
        workers = [Worker(lambda share: _Share(knowledge, share, examples, time_limit).run(), limits) for _ in shares]
        try:
            for worker, share in zip(workers, shares):
                worker.send(share)
            for worker, _share in zip(workers, shares):
                answer = worker.receive(None)
                if not answer.ok:
                    raise MutateError(f"a worker stopped without an answer ({answer.status} {answer.detail})".strip())
                outcomes.update(answer.value)
        finally:
            for worker in workers:
                worker.close()
    mutants = sorted([*generated.mutants, *generated.invalid], key=lambda m: m.index)
    drawn_from = total if sample is not None and sample < total else None
    return MutationReport(knowledge, mutants, outcomes, generated.left_out, generated.statements, time.perf_counter() - start, len(shares), since, drawn_from, seed if drawn_from is not None else None)


def own_examples_fail(failing: Sequence[str]) -> OwnTestsFail:
    """The error of a run whose version's own examples fail (the first three named): nothing to measure a mutant against."""
    return OwnTestsFail(f"the version's own examples fail ({', '.join(failing[:3])}{' ...' if len(failing) > 3 else ''}): fix them before mutating")


def _has_properties(kb: KnowledgeBase) -> bool:
    return bool(properties_of(kb))


# --- the report in words --------------------------------------------------------------------


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _row_head(m: Mutant, kb: KnowledgeBase) -> str:
    """A row by its cells that are not the pooled one: ``accepted_specialty("2.B", ...)``."""
    node = kb.statements[m.statement].node
    if node.body:
        return ""
    symbol = node.head.atom.symbol
    if symbol.ast_type != ASTType.Function:
        return _short(str(symbol))
    args = ["..." if a.ast_type == ASTType.Pool else _short(str(a), 40) for a in symbol.arguments]
    return f"{symbol.name}({', '.join(args)})"


def change_words(m: Mutant, kb: KnowledgeBase) -> str:
    """What a mutant changed, in the KB's words, with the section (and row) it touches."""
    w = kb.vocabulary.word
    change = w(f"mutation_{m.kind}", before=_short(m.before), after=_short(m.after), row=_row_head(m, kb))
    return w("mutate_touches", change=change, section=m.section) if m.section else change


def render_mutation(report: MutationReport) -> str:
    """The run as text: what was mutated and left out, the kills, every survivor and every equivalent, the score."""
    kb = report.kb
    w = kb.vocabulary.word
    lo = report.left_out
    lines = [w("kb_line", kb=kb.root, folder=kb.folder)]
    lines.append(
        w("mutate_heading", mutants=report.drawn_from or len(report.mutants), statements=report.statements, words=lo.words, evidence=lo.evidence, documentation=lo.documentation, checks=lo.checks)
    )
    if report.since is not None:
        lines.append(w("mutate_since", rev=report.since, unchanged=lo.unchanged))
    if report.drawn_from is not None:
        lines.append(w("mutate_sample", sample=len(report.mutants), total=report.drawn_from, seed=report.seed))
    if not report.mutants:
        lines.append(w("mutate_no_mutants"))
        return "\n".join(lines) + "\n"
    lines.append(
        w(
            "mutate_killed",
            killed=report.killed,
            constraints=report.count(KILLED, BY_CONSTRAINTS),
            examples=report.count(KILLED, BY_EXAMPLES),
            properties=report.count(KILLED, BY_PROPERTIES),
            time=report.count(KILLED, BY_TIME),
        )
    )
    equivalent = report.with_status(EQUIVALENT)
    lines.append(w("mutate_equivalent", equivalent=len(equivalent), static=sum(o.why == STATIC for _, o in equivalent), space=sum(o.why == IN_SPACE for _, o in equivalent)))
    lines.append(w("mutate_invalid", invalid=report.count(INVALID)))
    for m, o in report.with_status(SURVIVED):
        lines.append("")
        lines.append(w("mutate_survivor", location=m.location, change=change_words(m, kb)))
        if o.case is not None:
            lines.append("     " + w("mutate_case", case=dumps(o.case, indent=None)))
            lines.append("     " + w("mutate_case_change", change=o.change))
        else:
            lines.append("     " + w("mutate_no_case"))
        if o.unchecked:
            lines.append("     " + w("mutate_unchecked", examples=", ".join(o.unchecked)))
        if m.gap:
            lines.append("     " + w("mutate_gap", reason=m.gap))
    in_space = [(m, o) for m, o in equivalent if o.why == IN_SPACE]
    if in_space:
        lines.append("")
        for m, _o in in_space:
            lines.append(w("mutate_equivalent_line", location=m.location, change=change_words(m, kb), why=w("mutate_why_space")))
    lines.append("")
    score = report.score
    lines.append(
        w("mutate_score", score="-" if score is None else f"{score:.1f}", killed=report.killed, scored=report.scored, survived=report.survived, seconds=f"{report.seconds:.1f}", jobs=report.jobs)
    )
    return "\n".join(lines) + "\n"


def mutation_diagnostics(report: MutationReport) -> list[Diagnostic]:
    """Survivors (warnings) and equivalent mutants (notes) as findings at their places, for SARIF."""
    kb = report.kb
    w = kb.vocabulary.word
    out = []
    for m in report.mutants:
        o = report.outcomes[m.index]
        if o.status == SURVIVED:
            message = w("mutate_survived_finding", change=change_words(m, kb), case=_case_text(o), gap=m.gap or "-")
            out.append(Diagnostic(m.file, m.line, m.column, "warning", message, "mutant-survived"))
        elif o.status == EQUIVALENT:
            why = w("mutate_why_space" if o.why == IN_SPACE else "mutate_why_static")
            out.append(Diagnostic(m.file, m.line, m.column, "info", w("mutate_equivalent_finding", change=change_words(m, kb), why=why), "mutant-equivalent"))
    return out


def _case_text(o: Outcome) -> str:
    return dumps(o.case, indent=None) if o.case is not None else "-"


# --- the tables: which rows and cells the examples and properties pin --------------------


def _from_dict(cls: Any, data: dict) -> Any:
    return cls(**{k: (tuple(v) if isinstance(v, list) and k == "splice" else v) for k, v in data.items()})


def table_pinning(kb: KnowledgeBase, jobs: int = 2, time_limit: float = 10.0, cases: Optional[Sequence[Path]] = None) -> MutationReport:
    """Every row and cell of the version's deciding tables deleted, and every cell a row lacks added,
    through the version's examples and properties (a mutation run of the table kinds).

    Kept in the disk cache under the version's rules and its example cases
    (their contents, and their paths within the version folder): ``check
    --strict`` and ``test --coverage`` ask for it on the same KB, and a copy
    of the version (an author's working copy, a new KB tree) finds it too.
    Paths are kept relative to the version folder and shown as the working
    folder of each run shows them.
    """
    files = example_files(kb, cases)
    folder = kb.path.resolve()
    h = hashlib.sha256(f"{kb.digest}:{','.join(TABLE_KINDS)}:{time_limit}".encode())
    for path in files:
        h.update(_kept(str(path), folder).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())

    def compute() -> str:
        report = mutate(kb, jobs=jobs, time_limit=time_limit, kinds=TABLE_KINDS, cases=files)
        mutants = [{**_fields(m), "file": _kept(m.file, folder)} for m in report.mutants]
        outcomes = {str(k): {**_fields(o), "noticed": [_kept(p, folder) for p in o.noticed], "unchecked": [_kept(p, folder) for p in o.unchecked]} for k, o in report.outcomes.items()}
        return json.dumps({"seconds": report.seconds, "jobs": report.jobs, "statements": report.statements, "left_out": report.left_out.to_dict(), "mutants": mutants, "outcomes": outcomes})

    data = json.loads(cached_text("pinning", h.hexdigest(), compute))
    mutants = [_from_dict(Mutant, {**m, "file": _shown(m["file"], folder)}) for m in data["mutants"]]
    outcomes = {int(k): _from_dict(Outcome, {**o, "noticed": [_shown(p, folder) for p in o["noticed"]], "unchecked": [_shown(p, folder) for p in o["unchecked"]]}) for k, o in data["outcomes"].items()}
    return MutationReport(kb, mutants, outcomes, LeftOut(**data["left_out"]), data["statements"], data["seconds"], data["jobs"])


INSIDE = "version:"
"""A kept path inside the version folder: this mark, then the path relative to it."""


def _kept(shown: str, folder: Path) -> str:
    """A path as the cache keeps it: relative to the version folder (marked) when inside it, else absolute."""
    if shown.startswith("("):  # not a path: "(no answer)"
        return shown
    path = Path(shown).resolve()
    try:
        return INSIDE + path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def _shown(kept: str, folder: Path) -> str:
    """A kept path as this run shows it (relative below the working folder)."""
    if kept.startswith(INSIDE):
        return display_path(folder / kept[len(INSIDE) :])
    return display_path(kept) if Path(kept).is_absolute() else kept


def _fields(obj: Any) -> dict:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


PINNED_BY = {BY_EXAMPLES: "pinned_examples", BY_PROPERTIES: "pinned_properties", BY_CONSTRAINTS: "pinned_constraints", BY_TIME: "pinned_time"}


def pinned_words(report: MutationReport, m: Mutant) -> str:
    """How a table row or cell is pinned, in the KB's words."""
    w = report.kb.vocabulary.word
    o = report.outcomes[m.index]
    if o.status == KILLED:
        if o.by == BY_EXAMPLES:
            return w("pinned_examples", count=len(o.noticed))
        if o.by == BY_PROPERTIES:
            return w("pinned_properties", properties=", ".join(o.noticed))
        return w(PINNED_BY.get(o.by, "pinned_constraints"))
    if o.status == EQUIVALENT:
        return w("pinned_not_read" if o.why == STATIC else "pinned_no_case")
    if o.status == SURVIVED:
        return w("pinned_gap_known", reason=m.gap) if m.gap else w("pinned_gap")
    return w("pinned_invalid")


def render_table_coverage(report: MutationReport) -> str:
    """The tables' rows and cells a case can depend on, each with how it is pinned; the others counted."""
    kb = report.kb
    w = kb.vocabulary.word
    lines = ["", w("coverage_tables_heading"), w("coverage_tables_version", version=f"{kb.identity.policy} {kb.identity.period}", folder=kb.folder)]
    shown_file = ""
    for m in report.mutants:
        o = report.outcomes[m.index]
        if o.status == INVALID or (o.status == EQUIVALENT and o.why == STATIC) or (o.status == KILLED and o.by == BY_CONSTRAINTS):
            continue
        if m.file != shown_file:
            lines.append(f"  {m.file}")
            shown_file = m.file
        lines.append(w("coverage_table_line", place=f"{m.line}:{m.column}", change=change_words(m, kb), pinned=pinned_words(report, m)))
    gaps = report.with_status(SURVIVED)
    lines.append(
        w(
            "coverage_tables_summary",
            total=len([m for m in report.mutants if report.outcomes[m.index].status != INVALID]),
            examples=report.count(KILLED, BY_EXAMPLES),
            properties=report.count(KILLED, BY_PROPERTIES),
            constraints=report.count(KILLED, BY_CONSTRAINTS),
            unread=sum(1 for _, o in report.with_status(EQUIVALENT) if o.why == STATIC),
            space=sum(1 for _, o in report.with_status(EQUIVALENT) if o.why == IN_SPACE),
            gaps=len(gaps),
        )
    )
    return "\n".join(lines) + "\n"


def table_coverage_dict(report: MutationReport) -> dict:
    """The same as JSON: every row and cell changed, and the counts."""
    kb = report.kb
    rows = []
    for m in report.mutants:
        o = report.outcomes[m.index]
        rows.append(
            {
                "file": m.file,
                "line": m.line,
                "column": m.column,
                "kind": m.kind,
                "change": change_words(m, kb),
                "row": m.row or None,
                "status": o.status,
                "by": o.by or None,
                "why": o.why or None,
                "noticed": o.noticed,
                "case": o.case,
                "gap": m.gap or None,
            }
        )
    return {"version": kb.folder, "cells": rows, "not_pinned": [r for r in rows if r["status"] == SURVIVED]}


def pinning_diagnostics(kb: KnowledgeBase) -> list[Diagnostic]:
    """``check --strict``: every table row or cell a case can depend on that no example case or property pins.

    A known gap (its paragraph's ``% mutate: known gap - why``) is a
    warning; the pinning is not measured while the version's own examples
    or properties fail (a warning: ``test`` and ``verify`` say why).
    """
    w = kb.vocabulary.word
    if not example_files(kb):
        return [Diagnostic(kb.display_path(kb.path), 0, 0, "warning", w("pinning_not_measured", why=w("pinning_no_examples")), "pinned")]
    try:
        report = table_pinning(kb)
    except MutateError as exc:
        return [Diagnostic(kb.display_path(kb.path), 0, 0, "warning", w("pinning_not_measured", why=str(exc)), "pinned")]
    out = []
    for m, o in report.with_status(SURVIVED):
        message = w("pinning_gap", change=change_words(m, kb), case=_case_text(o))
        out.append(Diagnostic(m.file, m.line, m.column, "warning" if m.gap else "error", message + (" " + w("pinning_known_gap", reason=m.gap) if m.gap else ""), "pinned"))
    return out
