"""Keys the KB cannot tell apart, found in the KB's own static facts.

Two keys of a vocabulary are interchangeable when every static fact about
one is, with the key swapped, a static fact about the other (labels, which
are strings, aside) and no rule names either of them. Then no case can tell
them apart: swapping them in a case never changes a decision. The
adalimumab brands are one such class; Xeljanz and Xeljanz XR are not
(Appendix Table 3 marks them differently), though 3.C counts them as one
product.

Symmetry alone does not make one member as good as two: the four csDMARDs
are interchangeable, yet 3.A.i may need all four. :func:`group_classes`
therefore groups only interchangeable keys of the same key group
(``key_group/3``: the brands of one product), which the policy counts once
whatever the member. What-is-missing lets the solver choose one
representative of such a class and offers the whole class as alternatives;
the completeness tests compare this with a search over every key.
"""

from __future__ import annotations

from ..asp.symbols import Const, Value
from ..knowledge.base import KnowledgeBase
from ..knowledge.names import NAMING_PREDICATES
from .program import rule_constants

_HOLE = Const("$")


def _constants(value: Value, into: set) -> set:
    """Every constant a static atom holds, at any depth (a function of no arguments counts as its name)."""
    if isinstance(value, tuple):
        if len(value) == 1:
            into.add(value[0])
        for v in value[1:]:
            _constants(v, into)
    elif isinstance(value, Const):
        into.add(value)
    return into


def _swap(value: Value, key: str) -> Value:
    if isinstance(value, tuple):
        return (value[0], *[_swap(v, key) for v in value[1:]])
    if isinstance(value, Const) and value == key:
        return _HOLE
    if isinstance(value, str) and not isinstance(value, Const):
        return "*"
    return value


def key_classes(kb: KnowledgeBase, vocabulary: str) -> dict[str, tuple[str, ...]]:
    """For every key of a vocabulary, the keys interchangeable with it (itself included), in KB order."""
    keys = list(kb.vocabulary.keys.get(vocabulary, {}))
    special = rule_constants(kb)
    wanted = set(keys)
    about: dict[str, list[Value]] = {k: [] for k in keys}  # each key's static atoms, found in one walk of the model
    for atom in kb.static_model:
        if isinstance(atom, tuple) and atom[0] in NAMING_PREDICATES:
            continue
        for c in _constants(atom, set()):
            if c in wanted:
                about[str(c)].append(atom)
    signature: dict[str, frozenset] = {}
    for k in keys:
        if k in special:
            signature[k] = frozenset({("special", k)})
            continue
        signature[k] = frozenset(_swap(a, k) for a in about[k])
    groups: dict[frozenset, list[str]] = {}
    for k in keys:
        groups.setdefault(signature[k], []).append(k)
    return {k: tuple(groups[signature[k]]) for k in keys}


def group_classes(kb: KnowledgeBase) -> dict[str, tuple[str, ...]]:
    """For every key of a grouped vocabulary, the interchangeable keys of its group (itself included)."""

    def build() -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for vocabulary, groups in kb.vocabulary.key_groups.items():
            group_of = {m: g for g, members in groups.items() for m in members}
            classes = key_classes(kb, vocabulary)
            for k, members in classes.items():
                out[k] = tuple(m for m in members if group_of.get(m, m) == group_of.get(k, k))
        return out

    return kb.derived("group_classes", build)


def nonrepresentatives(kb: KnowledgeBase) -> set[str]:
    """Every member of a class but its first: the solver need not choose them."""
    return {m for members in group_classes(kb).values() for m in members[1:]}
