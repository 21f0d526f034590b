"""A version's vocabulary: its keys and their words, the criteria of its outline in order, the name indexes of its drugs; built from the KB's static model.

Python never restates any of it: every key, criterion and word comes from
facts the KB states.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from ..asp.symbols import Value
from ..errors import Diagnostic, KbError
from ..templates import fill
from .layout import display_path
from .names import NameIndex

if TYPE_CHECKING:
    from .base import KnowledgeBase


@dataclass(frozen=True)
class Criterion:
    """A criterion of the policy's outline: id, parent, how children combine, words."""

    id: str
    parent: Optional[str]
    rule: str
    text: str


@dataclass(frozen=True)
class Vocabulary:
    """The static facts of a policy version that the package reads, from the KB itself.

    Nothing here is named by Python: vocabularies are keyed by the name the
    KB gives them (the ``V`` of ``key(V)``), words by their text/2 keys.
    """

    policy_id: str
    title: str
    drug_name: str
    effective_from: str
    effective_to: Optional[str]
    keys: dict[str, dict[str, str]]  # vocabulary -> key -> label, in declaration order
    nouns: dict[str, str]  # vocabulary -> "a drug"
    key_groups: dict[str, dict[str, tuple[str, ...]]]  # vocabulary -> group -> member keys
    group_names: dict[str, dict[str, str]]  # vocabulary -> group -> words
    criteria: dict[str, Criterion]  # in the policy's order
    children: dict[str, tuple[str, ...]]
    combinators: dict[str, str]
    reason_texts: dict[str, str]  # in the policy's order
    note_texts: dict[Value, str]
    words: dict[str, str]
    decision_texts: dict[str, str]
    route_texts: dict[str, str]
    names: dict[str, NameIndex] = field(default_factory=dict)  # vocabulary -> the names of its keys (key_name/3)
    undetermined_texts: dict[str, str] = field(default_factory=dict)  # kind -> the question that settles it

    def label(self, vocabulary: str, key: Any) -> str:
        """The words for a key (the key itself when the KB gives none)."""
        return self.keys.get(vocabulary, {}).get(str(key), str(key))

    def word(self, key: str, **values: Any) -> str:
        """A framework or policy text (text/2), with its {placeholders} filled in."""
        template = self.words.get(key, key)
        return fill(template, values)

    def counted(self, key: str, number: Any, /, **values: Any) -> str:
        """A text for a count: its ``KEY_one`` form when the count is one and the KB gives it ("1 month", "12 months")."""
        return self.word(f"{key}_one" if number == 1 and f"{key}_one" in self.words else key, **values)

    def criterion_rank(self) -> dict[str, int]:
        return {cid: i for i, cid in enumerate(self.criteria)}


def _text(value: Value) -> str:
    return str(value)


_ROMAN_DIGITS = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}


def _roman(text: str) -> Optional[int]:
    """The value of a lower-case roman numeral (``iv`` 4), or None."""
    if not text or any(ch not in _ROMAN_DIGITS for ch in text):
        return None
    total = 0
    for ch, nxt in zip(text, text[1:] + " "):
        value = _ROMAN_DIGITS[ch]
        total += -value if value < _ROMAN_DIGITS.get(nxt, 0) else value
    return total


def outline_key(cid: str) -> tuple:
    """Where a criterion id stands among its siblings: its parts compared as the policy's outline numbers them.

    Each ``.``-separated part is a number (``3``, compared by value), a
    lower-case roman numeral (``iv``, by value), or anything else (``A``,
    ``R``, by its letters); numbers come first, then letters, then roman
    numerals. ``3.C.i`` < ``3.C.ii`` < ``3.C.x``; ``1`` < ``5`` < ``R``.
    """
    parts = []
    for part in cid.split("."):
        roman = _roman(part)
        if part.isdigit():
            parts.append((0, int(part), ""))
        elif roman is not None:
            parts.append((2, roman, ""))
        else:
            parts.append((1, 0, part))
    return tuple(parts)


def outline_order(criteria: dict[str, "Criterion"]) -> list[str]:
    """Criterion ids in the policy's outline: each parent before its children, siblings by :func:`outline_key`.

    The same order whether a criterion is written as a fact or derived by a
    rule (a table's rows), so that what lists criteria (a decision's tree,
    ``test --coverage``, ``what-if``, ``diff``) lists them as the policy
    does. A criterion whose parent is not a criterion is listed as a root.
    """
    kids: dict[Optional[str], list[str]] = {}
    for cid, c in criteria.items():
        parent = c.parent if c.parent in criteria and c.parent != cid else None
        kids.setdefault(parent, []).append(cid)
    out: list[str] = []
    seen: set[str] = set()

    def walk(parent: Optional[str]) -> None:
        for cid in sorted(kids.get(parent, ()), key=outline_key):
            if cid not in seen:
                seen.add(cid)
                out.append(cid)
                walk(cid)

    walk(None)
    out += [cid for cid in criteria if cid not in seen]  # a cycle of parents: as written
    return out


def build_vocabulary(kb: KnowledgeBase) -> Vocabulary:
    """Collect the static facts the package reads, checking the ones it needs."""
    where = display_path(kb.path)

    def one(name: str, arity: int, what: str) -> tuple:
        rows = kb.facts(name, arity)
        if len(rows) != 1:
            raise KbError([Diagnostic(where, 0, 0, "error", f"the KB must state exactly one {what} (found {len(rows)})")])
        return rows[0]

    pid, title = one("policy", 2, "policy(Id, Title) fact")
    (effective_from,) = one("effective_from", 1, "effective_from(Date) fact")
    ends = kb.facts("effective_to", 1)
    drug_names = kb.facts("policy_drug_name", 1)
    nouns = {str(v): str(n) for v, n in kb.facts("vocabulary", 2)}
    keys: dict[str, dict[str, str]] = {}
    for v in nouns:
        keys[v] = {}
        for row in kb.facts(v, 2):
            keys[v].setdefault(str(row[0]), str(row[1]))
    groups: dict[str, dict[str, list[str]]] = {}
    for v, g, k in kb.facts("key_group", 3):
        groups.setdefault(str(v), {}).setdefault(str(g), []).append(str(k))
    group_names: dict[str, dict[str, str]] = {}
    for v, g, n in kb.facts("key_group_name", 3):
        group_names.setdefault(str(v), {})[str(g)] = str(n)
    criteria: dict[str, Criterion] = {}
    for cid, parent, rule, text in kb.facts("criterion", 4):
        parent_id = None if parent == "none" else str(parent)
        rule_text = rule if isinstance(rule, str) else f"{rule[0]}({','.join(str(a) for a in rule[1:])})"
        criteria.setdefault(str(cid), Criterion(str(cid), parent_id, str(rule_text), str(text)))
    ordered = outline_order(criteria)
    children: dict[str, list[str]] = {}
    for cid in ordered:
        parent_id = criteria[cid].parent
        if parent_id is not None:
            children.setdefault(parent_id, []).append(cid)
    words: dict[str, str] = {}
    for key, text in kb.facts("text", 2):
        words[str(key)] = str(text)  # a policy's text, written after the framework's, wins
    names = name_indexes(kb, keys)
    return Vocabulary(
        policy_id=str(pid),
        title=str(title),
        drug_name=str(drug_names[0][0]) if drug_names else "",
        effective_from=str(effective_from),
        effective_to=str(ends[0][0]) if ends else None,
        keys=keys,
        nouns=nouns,
        key_groups={v: {g: tuple(m) for g, m in gs.items()} for v, gs in groups.items()},
        group_names=group_names,
        criteria={c: criteria[c] for c in ordered},
        children={k: tuple(v) for k, v in children.items()},
        combinators={str(c): str(t) for c, t in kb.facts("combinator", 2)},
        reason_texts={str(i): str(t) for i, t in kb.facts("reason_text", 2)},
        note_texts={kind: str(text) for kind, text in kb.facts("note_text", 2)},
        words=words,
        decision_texts={str(d): str(t) for d, t in kb.facts("decision_text", 2)},
        route_texts={str(r): str(t) for r, t in kb.facts("route_text", 2)},
        names=names,
        undetermined_texts={str(k): str(t) for k, t in kb.facts("undetermined_text", 2)},
    )


def name_indexes(kb: KnowledgeBase, keys: dict[str, dict[str, str]]) -> dict[str, NameIndex]:
    """The name index of every vocabulary that gives its keys other names (key_name/3), checked."""
    given: dict[str, list[tuple[str, str]]] = {}
    for v, k, n in kb.facts("key_name", 3):
        given.setdefault(str(v), []).append((str(k), str(n)))
    fillers: dict[str, list[str]] = {}
    for v, w in kb.facts("key_name_filler", 2):
        fillers.setdefault(str(v), []).append(str(w))
    numbers = {str(v) for (v,) in kb.facts("key_name_numbers", 1)}
    narrows: dict[str, list[tuple[str, str]]] = {}
    for v, a, b in kb.facts("key_narrows", 3):
        narrows.setdefault(str(v), []).append((str(a), str(b)))
    out: dict[str, NameIndex] = {}
    for v, rows in given.items():
        table = keys.get(v)
        if table is not None:  # rows naming no vocabulary, or no key of it, are `check`'s to report (check.key_name_problems)
            out[v] = NameIndex.build(table, [(k, n) for k, n in rows if k in table], fillers.get(v, ()), v in numbers, narrows.get(v, ()))
    return out
