"""Filling the KB's word templates with a case's values.

The KB writes the words a reviewer reads as templates: ``{name}`` marks a
value, ``{?...}`` a part left out when a value in it is not given (an
entry's months, what it was taken for). A decision's evidence and a
what-is-missing answer both name a case fact in the same words: an entry of
a list by the KB's ``entry_text/2`` template for that list, any other value
by its label. This module is the one place that does it.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping, Optional

from ..knowledge.base import fill

if TYPE_CHECKING:  # pragma: no cover
    from ..knowledge.base import KnowledgeBase
    from ..cases.schema import CaseSchema, Field

PLACEHOLDER = re.compile(r"\{(\w+)\}")
OPTIONAL = re.compile(r"\{\?((?:[^{}]|\{\w+\})*)\}")


def optional_fill(template: str, values: Mapping[str, str]) -> str:
    """Fill {name} placeholders; a {?...} part is left out when a value in it is not given."""
    def part(m: re.Match) -> str:
        inner = m.group(1)
        return fill(inner, dict(values)) if all(n in values for n in PLACEHOLDER.findall(inner)) else ""

    return fill(OPTIONAL.sub(part, template), dict(values))


def entry_templates(kb: "KnowledgeBase") -> dict[str, str]:
    """The KB's words for an entry of each entries list (entry_text/2)."""
    return kb.derived("entry_templates", lambda: {str(f): str(t) for f, t in kb.facts("entry_text", 2)})


def entry_words(schema: "CaseSchema", templates: Mapping[str, str], list_field: "Field", entry: Any, label: Optional[Any] = None) -> str:
    """An entry in the KB's words: its list's entry_text/2 filled with the labels of its values.

    ``label(kind, value)`` gives a value's words (the schema's labels by
    default). Without a template the entry's values are listed in the
    order the KB declares its fields.
    """
    words = label or schema.value_label
    given = {e.name: words(e.kind, entry[e.name]) for e in list_field.entry_fields if entry[e.name] is not None and entry[e.name] is not False}
    template = templates.get(list_field.name)
    if template is None:
        return " ".join(given[e.name] for e in list_field.entry_fields if e.name in given)
    return optional_fill(template, given)


def placeholders(template: str) -> list[str]:
    """Every ``{name}`` a template fills, those inside ``{?...}`` parts included, in order."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


_FILLED: list[dict[str, set[str]]] = []  # [exact keys, f-string prefixes, keys filled some unknown way (**values)]


def filled_by_the_program(key: str) -> Optional[frozenset[str]]:
    """The values the package fills a word key (text/2) with, read from the package's own source; None when unknown.

    Every place that fills a KB word passes its key as the first argument
    and its values by name (``w("missing_case", id=..., decision=...)``);
    a key chosen among literals (``"addition" if n == 1 else "additions"``)
    or built from a literal prefix (``f"chosen_by_{how}"``) counts for each
    key it can be. The answer is the union over every place that fills the
    key; a key no place names, or one filled with ``**values``, is unknown.
    """
    if not _FILLED:
        _FILLED.extend(_scan_package())
    exact, prefixes, spread = _FILLED
    if key in spread or any(key.startswith(p) for p in prefixes if p in spread):
        return None
    hits = [names for k, names in exact.items() if k == key] + [names for p, names in prefixes.items() if key.startswith(p)]
    return frozenset().union(*hits) if hits else None


def _scan_package() -> list[dict[str, set[str]]]:
    import ast as pyast
    from pathlib import Path

    exact: dict[str, set[str]] = {}
    prefixes: dict[str, set[str]] = {}
    spread: dict[str, set[str]] = {}
    for path in sorted(Path(__file__).resolve().parent.parent.rglob("*.py")):  # the whole package
        try:
            tree = pyast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in pyast.walk(tree):
            if not isinstance(node, pyast.Call) or not node.args:
                continue
            literals, starts = _key_literals(node.args[0])
            names = {k.arg for k in node.keywords if k.arg is not None}
            unknown = any(k.arg is None for k in node.keywords)
            for key in literals:
                exact.setdefault(key, set()).update(names)
                if unknown:
                    spread[key] = set()
            for prefix in starts:
                prefixes.setdefault(prefix, set()).update(names)
                if unknown:
                    spread[prefix] = set()
    return [exact, prefixes, spread]


def _key_literals(node: Any) -> tuple[list[str], list[str]]:
    """The string literals a call's first argument can be, and the literal prefixes of f-strings it can be."""
    import ast as pyast

    if isinstance(node, pyast.Constant) and isinstance(node.value, str):
        return [node.value], []
    if isinstance(node, pyast.IfExp):
        a, pa = _key_literals(node.body)
        b, pb = _key_literals(node.orelse)
        return a + b, pa + pb
    if isinstance(node, pyast.JoinedStr) and node.values and isinstance(node.values[0], pyast.Constant) and isinstance(node.values[0].value, str) and node.values[0].value:
        return [], [node.values[0].value]
    return [], []
