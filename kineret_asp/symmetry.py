"""Drugs the KB cannot tell apart, found in the KB's own static facts.

Two drugs are interchangeable when every static fact about one is, with the
drug's key swapped, a static fact about the other (labels, which are strings,
aside) and no rule names either of them. Then no case can tell them apart:
swapping them in a case never changes a decision. The adalimumab brands are
one such class; Xeljanz and Xeljanz XR are not (Appendix Table 3 marks them
differently), though 3.C counts them as one product.

Symmetry alone does not make one member as good as two: the four csDMARDs
are interchangeable, yet 3.A.i may need all four. :func:`brand_classes`
therefore groups only interchangeable drugs of the same product (product_of),
which the policy counts once whatever the brand. What-is-missing lets the
solver choose one representative of such a class and offers the whole class
as alternatives; the completeness tests compare this with a search over
every drug.
"""
from __future__ import annotations

from functools import lru_cache

import clingo.ast as ast

from .knowledge import KnowledgeBase
from .terms import Const, Value

_HOLE = Const("$")


def _mentions(value: Value, key: str) -> bool:
    if isinstance(value, tuple):
        return any(_mentions(v, key) for v in value[1:]) or value[0] == key and len(value) == 1
    return isinstance(value, Const) and value == key


def _swap(value: Value, key: str) -> Value:
    if isinstance(value, tuple):
        return (value[0], *[_swap(v, key) for v in value[1:]])
    if isinstance(value, Const) and value == key:
        return _HOLE
    if isinstance(value, str) and not isinstance(value, Const):
        return "*"
    return value


def _constants_in_rules(kb: KnowledgeBase) -> set[str]:
    """Constants named in rules with a body (not facts): such drugs are special."""
    found: set[str] = set()

    class Visit(ast.Transformer):
        def visit_SymbolicTerm(self, node):
            sym = node.symbol
            if sym.type.name == "Function" and not sym.arguments:
                found.add(sym.name)
            return node

        def visit_Function(self, node):
            if not node.arguments:
                found.add(node.name)
            self.visit_children(node)
            return node

    for s in kb.statements:
        node = s.node
        if node.ast_type == ast.ASTType.Rule and node.body:
            for lit in node.body:
                Visit()(lit)
    return found


@lru_cache(maxsize=16)
def drug_classes(kb: KnowledgeBase) -> dict[str, tuple[str, ...]]:
    """For every drug, the drugs interchangeable with it (itself included), in KB order."""
    drugs = list(kb.vocabulary.drugs)
    special = _constants_in_rules(kb)
    model = kb.static_model
    signature: dict[str, frozenset] = {}
    for d in drugs:
        if d in special:
            signature[d] = frozenset({("special", d)})
            continue
        signature[d] = frozenset(_swap(a, d) for a in model if _mentions(a, d))
    groups: dict[frozenset, list[str]] = {}
    for d in drugs:
        groups.setdefault(signature[d], []).append(d)
    return {d: tuple(groups[signature[d]]) for d in drugs}


@lru_cache(maxsize=16)
def brand_classes(kb: KnowledgeBase) -> dict[str, tuple[str, ...]]:
    """For every drug, the interchangeable drugs of the same product (itself included)."""
    product = kb.vocabulary.product_of
    classes = drug_classes(kb)
    return {d: tuple(m for m in members if product.get(m) == product.get(d)) for d, members in classes.items()}


def representatives(kb: KnowledgeBase) -> set[str]:
    """The first drug of every brand class."""
    return {members[0] for members in brand_classes(kb).values()}
