"""What the author's tools read off a KB's files besides its program: the paragraphs of each file with
their comments, and which vocabulary the keys at each argument position of each predicate belong to.

``check`` reads both (a rule's ``§`` comment, a ``% check: reference``
paragraph, a key unknown to the vocabulary of its position) and so does
``test --mutate`` (a mutant's section and known-gap comment, the values a
table's cell may be given). The key kinds are inferred: the vocabulary
tables, the case schema's inputs and the case space's declarations seed
them, and a variable shared by two positions of a rule carries a kind from
one to the other.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Optional

import clingo
import clingo.ast as ast
from clingo.ast import ASTType

from ..engine.program import Signature, rule_atoms
from ..errors import KbError
from ..knowledge.base import KnowledgeBase
from ..knowledge.schema import KEYED
from ..memo import IdentityMemo
from .policy_text import paragraph_ids

SUPPRESS_UNUSED = "check: reference"


# framework positions that hold values of any kind (a change's value, an entry field's value,
# a listed key, whose vocabulary is the fact's first argument)
POLYMORPHIC: tuple[tuple, ...] = (("documents", 2, 1), ("documents_entry", 3, 2), ("key_detail", 4, 1))


def _polymorphic(position: tuple) -> bool:
    return any(position[: len(p)] == p for p in POLYMORPHIC)


def vocabulary_kinds(kb: KnowledgeBase) -> dict[Signature, str]:
    """Which vocabulary table holds the keys of which kind: the seeds of the key-kind inference."""
    try:
        return {(str(v), 2): str(v) for v, _ in kb.facts("vocabulary", 2)}
    except KbError:
        return {}


def input_kinds(kb: KnowledgeBase) -> dict[tuple[str, int, int], str]:
    """Where the case's input atoms hold keys of which vocabulary (from the case schema)."""
    out = {}
    for (name, arity), args in kb.schema.input_predicates.items():
        for i, arg in enumerate(args):
            if not arg.index and arg.kind.name in KEYED and arg.kind.vocabulary:
                out[(name, arity, i)] = arg.kind.vocabulary
    return out


Position = tuple  # (name, arity, index, name, arity, index, ...) down nested terms

# the case space's declarations (verify/space.lp): their value's kind is the kind of the field they name
SPACE_VALUE, SPACE_ENTRY_VALUE = ("space_value", 2), ("space_entry_value", 3)


def _space_position(sig: Signature, args: list) -> str:
    """A space declaration's predicate name, specialised by the field it names (its value's kind is that field's)."""
    if sig not in (SPACE_VALUE, SPACE_ENTRY_VALUE) or not all(a.ast_type == ASTType.SymbolicTerm or (a.ast_type == ASTType.Function and not a.arguments) for a in args[:-1]):
        return sig[0]
    return ":".join([sig[0], *(str(a) for a in args[:-1])])


def space_kinds(kb: KnowledgeBase) -> dict[Position, str]:
    """Where the case space's declarations hold keys of which vocabulary (from the case schema)."""
    out: dict[Position, str] = {}
    try:
        fields = kb.schema.fields
    except KbError:
        return out
    for f in fields:
        item = f.kind.item or f.kind
        if item.name in KEYED and item.vocabulary:
            out[(f"{SPACE_VALUE[0]}:{f.name}", SPACE_VALUE[1], 1)] = item.vocabulary
        for e in f.entry_fields:
            if e.kind.name in KEYED and e.kind.vocabulary:
                out[(f"{SPACE_ENTRY_VALUE[0]}:{f.name}:{e.name}", SPACE_ENTRY_VALUE[1], 2)] = e.kind.vocabulary
    return out


def declared_inputs(kb: KnowledgeBase) -> set[Signature]:
    """The input predicates the case schema declares (none when the schema cannot be read)."""
    try:
        return kb.schema.input_signatures()
    except KbError:
        return set()


class Paragraphs:
    """Lines between blank lines, and the comments in each, for every file."""

    def __init__(self, texts: dict[str, str]):
        self.para: dict[str, list[int]] = {}
        self.comments: dict[tuple[str, int], list[tuple[int, str]]] = defaultdict(list)
        for file, text in texts.items():
            ids = paragraph_ids(text)
            for number, line in enumerate(text.splitlines(), start=1):
                stripped = line.strip()
                if stripped.startswith("%"):
                    self.comments[(file, ids[number])].append((number, stripped))
            self.para[file] = ids

    def of(self, file: str, line: int) -> int:
        ids = self.para.get(file, [])
        return ids[line] if line < len(ids) else -1

    def has_section(self, file: str, line: int) -> bool:
        return any("§" in text and number <= line for number, text in self.comments.get((file, self.of(file, line)), []))

    def suppressed(self, file: str, line: int) -> bool:
        return any(SUPPRESS_UNUSED in text for _, text in self.comments.get((file, self.of(file, line)), []))


class KeyKinds:
    """Infer which argument positions hold which kinds of vocabulary keys."""

    def __init__(self, kb: KnowledgeBase):
        self.kinds: dict[Position, set[str]] = defaultdict(set)
        for (name, arity), kind in vocabulary_kinds(kb).items():
            self.kinds[(name, arity, 0)].add(kind)
        for (name, arity, index), kind in (input_kinds(kb) if declared_inputs(kb) else {}).items():
            self.kinds[(name, arity, index)].add(kind)
            self.kinds[(name, arity + 1, index + 1)].add(kind)  # with a copy argument (properties)
        for position, kind in space_kinds(kb).items():
            self.kinds[position].add(kind)
        self.rules = [s for s in kb.statements if s.node.ast_type == ASTType.Rule]
        self._terms = [_rule_terms(s.node) for s in self.rules]
        self._infer()

    @staticmethod
    def terms(node: ast.AST, prefix: Position) -> Iterable[tuple[Position, ast.AST]]:
        """(position, term) for every argument, down nested function terms and pools."""
        if node.ast_type == ASTType.Pool:
            for arg in node.arguments:
                yield from KeyKinds.terms(arg, prefix)
            return
        yield prefix, node
        if node.ast_type == ASTType.Function and node.arguments:
            for i, arg in enumerate(node.arguments):
                yield from KeyKinds.terms(arg, prefix + (node.name, len(node.arguments), i))

    @staticmethod
    def atom_terms(stm: ast.AST) -> list[tuple[Position, ast.AST]]:
        """(position, term) for every argument of every atom of a rule (the walk check shares, :func:`rule_atoms`)."""
        found = []
        defines, reads = rule_atoms(stm)
        for sig, sym in [*defines, *reads]:
            if sym.ast_type == ASTType.Function:
                args = sym.arguments
                if len(args) == 1 and args[0].ast_type == ASTType.Pool and not sig[1] == 1:
                    continue
                name = _space_position(sig, args)
                for i, arg in enumerate(args):
                    found.extend(KeyKinds.terms(arg, (name, sig[1], i)))
        return found

    def _infer(self) -> None:
        per_rule = []
        for terms in self._terms:
            variables: dict[str, list[Position]] = defaultdict(list)
            for pos, var, _, _, _ in terms:
                if var is not None and var != "_" and not _polymorphic(pos):
                    variables[var].append(pos)
            per_rule.append(list(variables.values()))
        changed = True
        while changed:
            changed = False
            for groups in per_rule:
                for positions in groups:
                    union: set[str] = set()
                    for p in positions:
                        union |= self.kinds.get(p, set())
                    if not union:
                        continue
                    for p in positions:
                        if not union <= self.kinds[p]:
                            self.kinds[p] |= union
                            changed = True


_RULE_TERMS = IdentityMemo(50_000)
"""_rule_terms by rule (its identity): nodes are shared between a KB and its edited copies."""


def _rule_terms(rule: ast.AST) -> list[tuple[Position, Optional[str], Optional[str], int, int]]:
    """The arguments of a rule's atoms that key inference reads, read once: (position, variable, constant, line, column).

    A variable gives its name (constant None); a constant (``p``, not
    ``p(X)``) its name and place (variable None); other terms are left out.
    """
    return _RULE_TERMS.of(rule, lambda: _read_rule_terms(rule))  # type: ignore[return-value]


def _read_rule_terms(rule: ast.AST) -> list[tuple[Position, Optional[str], Optional[str], int, int]]:
    out: list[tuple[Position, Optional[str], Optional[str], int, int]] = []
    for pos, term in KeyKinds.atom_terms(rule):
        kind = term.ast_type
        if kind == ASTType.Variable:
            out.append((pos, term.name, None, 0, 0))
            continue
        if kind == ASTType.Function:
            if term.arguments:
                continue
            name = term.name
        elif kind == ASTType.SymbolicTerm:
            sym = term.symbol
            if sym.type != clingo.SymbolType.Function or sym.arguments:
                continue
            name = sym.name
        else:
            continue
        begin = term.location.begin
        out.append((pos, None, name, begin.line, begin.column))
    return out
