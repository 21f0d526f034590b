"""Program transformations of the KB, done on clingo's AST.

Authors write the KB for one case at a time. To decide many cases in one
grounding (or to compare two KB versions, or a case with its variant, in one
program), every predicate that depends on the case gets one more first
argument: the case id. :func:`dynamic_predicates` finds those predicates;
:func:`add_argument` rewrites the statements. Authors never see the extra
argument.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

import clingo.ast as ast
from clingo.ast import ASTType

Signature = tuple[str, int]


def atom_signature(atom: ast.AST) -> Optional[Signature]:
    """The name/arity of a symbolic atom (None for pools and other forms)."""
    symbol = atom.symbol
    if symbol.ast_type == ASTType.Function:
        return (symbol.name, len(symbol.arguments))
    if symbol.ast_type == ASTType.SymbolicTerm:
        sym = symbol.symbol
        return (sym.name, len(sym.arguments)) if sym.type.name == "Function" else None
    if symbol.ast_type == ASTType.UnaryOperation and symbol.argument.ast_type == ASTType.Function:
        return (symbol.argument.name, len(symbol.argument.arguments))
    if symbol.ast_type == ASTType.Pool and symbol.arguments and symbol.arguments[0].ast_type == ASTType.Function:
        first = symbol.arguments[0]
        return (first.name, len(first.arguments))
    return None


def _walk_atoms(node: ast.AST, found: list) -> None:
    """Append (signature, symbol node) for every symbolic atom below node.

    Read only: clingo's Transformer rebuilds every node it visits, which is
    slow; this walk rebuilds nothing.
    """
    kind = node.ast_type
    if kind == ASTType.SymbolicAtom:
        sig = atom_signature(node)
        if sig is not None:
            found.append((sig, node.symbol))
        return
    if kind in _LEAVES:
        return
    for key in node.child_keys:
        child = getattr(node, key)
        if child is None:
            continue
        if isinstance(child, ast.AST):
            _walk_atoms(child, found)
        else:
            for item in child:
                if isinstance(item, ast.AST):
                    _walk_atoms(item, found)


_LEAVES = {ASTType.Variable, ASTType.SymbolicTerm, ASTType.Comment, ASTType.BooleanConstant}


def atoms_in(nodes: Iterable[ast.AST]) -> list[tuple[Signature, ast.AST]]:
    """(signature, symbol node) for every symbolic atom in the nodes, in order."""
    found: list[tuple[Signature, ast.AST]] = []
    for n in nodes:
        _walk_atoms(n, found)
    return found


def signatures(node: ast.AST | Sequence[ast.AST]) -> list[Signature]:
    """Every predicate signature used in a node (or list of nodes)."""
    return [sig for sig, _ in atoms_in(node if isinstance(node, (list, tuple)) else [node])]


def rule_parts(rule: ast.AST) -> tuple[list[ast.AST], list[ast.AST]]:
    """The parts of a rule that define predicates (its head literals) and those
    that read them (its body, and the conditions and terms inside its head)."""
    head = rule.head
    kind = head.ast_type
    defines: list[ast.AST] = []
    reads: list[ast.AST] = list(rule.body)
    if kind == ASTType.Literal:
        if head.atom.ast_type == ASTType.SymbolicAtom:
            defines.append(head)
    elif kind in (ASTType.Disjunction, ASTType.Aggregate):
        for e in head.elements:
            defines.append(e.literal)
            reads.extend(e.condition)
    elif kind == ASTType.HeadAggregate:
        for e in head.elements:
            defines.append(e.condition.literal)
            reads.extend(e.condition.condition)
            reads.extend(e.terms)
    return defines, reads


_ATOM_CACHE: dict[int, tuple[ast.AST, list, list]] = {}


def rule_atoms(rule: ast.AST) -> tuple[list[tuple[Signature, ast.AST]], list[tuple[Signature, ast.AST]]]:
    """(signature, symbol node) of the atoms a rule defines, and of those it reads (memoized)."""
    hit = _ATOM_CACHE.get(id(rule))
    if hit is not None and hit[0] is rule:
        return hit[1], hit[2]
    defines, reads = rule_parts(rule)
    result = (atoms_in(defines), atoms_in(reads))
    if len(_ATOM_CACHE) > 50_000:
        _ATOM_CACHE.clear()
    _ATOM_CACHE[id(rule)] = (rule, *result)
    return result


def head_signatures(rule: ast.AST) -> list[Signature]:
    """Predicates a rule defines (not those in the conditions of its head)."""
    return [sig for sig, _ in rule_atoms(rule)[0]]


def body_signatures(rule: ast.AST) -> list[Signature]:
    """Predicates a rule reads: its body and the conditions in its head."""
    return [sig for sig, _ in rule_atoms(rule)[1]]


def dynamic_predicates(statements: Iterable[ast.AST], inputs: Iterable[Signature]) -> set[Signature]:
    """Inputs plus every predicate whose rules read, directly or not, an input."""
    rules = [s for s in statements if s.ast_type == ASTType.Rule]
    edges = [(set(head_signatures(r)), set(body_signatures(r))) for r in rules]
    dynamic = set(inputs)
    changed = True
    while changed:
        changed = False
        for heads, body in edges:
            if body & dynamic and not heads <= dynamic:
                dynamic |= heads
                changed = True
    return dynamic


class _AddArgument:
    """Give every atom of the chosen predicates one more first argument.

    Walks the tree and rebuilds only the nodes on the way to a changed atom
    (clingo's own Transformer rebuilds every node it visits, which is slow).
    """

    def __init__(self, predicates: set[Signature], make_term: Callable[[ast.Location], ast.AST]):
        self.predicates = predicates
        self.make_term = make_term

    def __call__(self, node: ast.AST) -> ast.AST:
        kind = node.ast_type
        if kind == ASTType.SymbolicAtom:
            return self.atom(node)
        if kind in _LEAVES:
            return node
        changes: dict[str, object] = {}
        for key in node.child_keys:
            child = getattr(node, key)
            if child is None:
                continue
            if isinstance(child, ast.AST):
                new = self(child)
                if new is not child:
                    changes[key] = new
            else:
                items = list(child)
                new_items = [self(i) if isinstance(i, ast.AST) else i for i in items]
                if any(a is not b for a, b in zip(items, new_items)):
                    changes[key] = new_items
        return node.update(**changes) if changes else node

    def atom(self, node: ast.AST) -> ast.AST:
        sig = atom_signature(node)
        if sig is None or sig not in self.predicates:
            return node
        symbol = node.symbol
        loc = symbol.location
        if symbol.ast_type == ASTType.Pool:
            tagged = [a.update(arguments=[self.make_term(loc), *a.arguments]) for a in symbol.arguments]
            return node.update(symbol=symbol.update(arguments=tagged))
        if symbol.ast_type == ASTType.SymbolicTerm:
            symbol = ast.Function(loc, symbol.symbol.name, [], 0)
        if symbol.ast_type == ASTType.UnaryOperation:
            inner = symbol.argument
            inner = inner.update(arguments=[self.make_term(loc), *inner.arguments])
            return node.update(symbol=symbol.update(argument=inner))
        return node.update(symbol=symbol.update(arguments=[self.make_term(loc), *symbol.arguments]))


def _positive_body_atom(rule: ast.AST, predicates: set[Signature]) -> bool:
    for lit in rule.body:
        if lit.ast_type == ASTType.Literal and lit.sign == ast.Sign.NoSign and lit.atom.ast_type == ASTType.SymbolicAtom:
            if atom_signature(lit.atom) in predicates:
                return True
    return False


@dataclass(frozen=True)
class Rewrite:
    """How to tag a program: which predicates, with which term, guarded by which atom."""

    predicates: frozenset[Signature]
    term: Callable[[ast.Location], ast.AST]
    guard: Optional[Callable[[ast.Location], ast.AST]] = None  # a literal binding the term's variable


def rewrite_statement(node: ast.AST, rw: Rewrite) -> Optional[ast.AST]:
    """Tag one statement; returns None for statements to drop (#show of others)."""
    preds = set(rw.predicates)
    kind = node.ast_type
    if kind == ASTType.Rule:
        used = set(head_signatures(node)) | set(body_signatures(node))
        if not used & preds:
            return node
        new = _AddArgument(preds, rw.term)(node)
        if rw.guard is not None and not _positive_body_atom(node, preds):
            new = new.update(body=[*new.body, rw.guard(node.location)])
        return new
    if kind == ASTType.Defined:
        if (node.name, node.arity) in preds:
            return node.update(arity=node.arity + 1)
        return node
    if kind == ASTType.ShowSignature:
        if (node.name, node.arity) in preds:
            return node.update(arity=node.arity + 1)
        return None
    return node


def variable(name: str) -> Callable[[ast.Location], ast.AST]:
    return lambda loc: ast.Variable(loc, name)


def constant(name: str) -> Callable[[ast.Location], ast.AST]:
    return lambda loc: ast.Function(loc, name, [], 0)


def guard_atom(predicate: str, var: str) -> Callable[[ast.Location], ast.AST]:
    return lambda loc: ast.Literal(loc, ast.Sign.NoSign, ast.SymbolicAtom(ast.Function(loc, predicate, [ast.Variable(loc, var)], 0)))


def needed_statements(statements: Sequence[ast.AST], targets: Iterable[Signature]) -> list[ast.AST]:
    """The statements a set of predicates depends on (rules for them, transitively).

    Rules defining only predicates that nothing shown depends on (such as the
    abducible/1 declarations, read only by what-is-missing) are left out, so
    a decision grounds only what it reads. Integrity constraints and
    directives are always kept.
    """
    rules = [s for s in statements if s.ast_type == ASTType.Rule]
    needed = set(targets)
    for r in rules:
        if not head_signatures(r):  # an integrity constraint: what it reads is needed
            needed |= set(body_signatures(r))
    changed = True
    while changed:
        changed = False
        for r in rules:
            heads = set(head_signatures(r))
            if heads & needed:
                body = set(body_signatures(r)) - needed
                if body:
                    needed |= body
                    changed = True
    out = []
    for s in statements:
        if s.ast_type != ASTType.Rule:
            out.append(s)
            continue
        heads = set(head_signatures(s))
        if not heads or heads & needed:
            out.append(s)
    return out
