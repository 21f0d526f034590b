"""The vocabulary listing: every key a case may use, with its words and details.

Someone writing a case should not need to read ``.lp`` files to learn that
``humira`` is a drug key, that it is in Appendix Table 1 and counts as row B
of the Non-Preferred Product tables. Everything here is read from the KB:
the vocabularies (``vocabulary/2``) and their keys, the case fields that take
each vocabulary (the case schema), and the details a policy derives for a key
(``key_detail(Vocabulary, Key, "Heading", "words")``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

from ..errors import KineretError, did_you_mean
from ..knowledge.base import KnowledgeBase
from ..knowledge.schema import KEY, LIST, NAME, OPEN_KEY


@dataclass(frozen=True)
class KeyListing:
    """One key of a vocabulary: its words and its details, heading by heading."""

    key: str
    label: str
    details: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def to_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "details": {h: list(w) for h, w in self.details}}


@dataclass(frozen=True)
class VocabularyListing:
    """One vocabulary: its name, the words for one of its keys, the case fields that take it, its keys."""

    name: str
    noun: str
    fields: tuple[str, ...]
    open: bool  # a name(V) field: any other name is accepted as written
    keys: tuple[KeyListing, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"name": self.name, "noun": self.noun, "fields": list(self.fields), "open": self.open, "keys": [k.to_dict() for k in self.keys]}


class UnknownVocabulary(KineretError):
    """A vocabulary name the KB does not declare."""


def field_vocabularies(kb: KnowledgeBase) -> dict[str, list[tuple[str, str]]]:
    """For every vocabulary, the case field paths that take its keys, with the kind (key or name)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for f in kb.schema.fields:
        for sub in (f, *f.entry_fields):
            kind = sub.kind.item if sub.kind.name == LIST else sub.kind
            if kind is not None and kind.name in (KEY, OPEN_KEY, NAME) and kind.vocabulary:
                out.setdefault(kind.vocabulary, []).append((sub.path, kind.name))
    return out


def vocabularies(kb: KnowledgeBase, only: Optional[str] = None) -> list[VocabularyListing]:
    """Every vocabulary of the KB (or the one named): those a case field takes first, in the order of the fields, then the others in the KB's order."""
    v = kb.vocabulary
    used = field_vocabularies(kb)
    names = [n for n in used if n in v.nouns] + [n for n in v.nouns if n not in used]
    if only is not None and only not in names:
        raise UnknownVocabulary(f"unknown vocabulary {only!r}; expected one of {', '.join(names)}{did_you_mean(only, names)}")
    details: dict[tuple[str, str], dict[str, list[str]]] = {}
    for vocabulary, key, heading, words in kb.facts("key_detail", 4):
        shown = details.setdefault((str(vocabulary), str(key)), {}).setdefault(str(heading), [])
        if str(words) not in shown:
            shown.append(str(words))
    out = []
    for name in names:
        if only is not None and name != only:
            continue
        keys = tuple(KeyListing(key, label, tuple((h, tuple(w)) for h, w in details.get((name, key), {}).items())) for key, label in v.keys.get(name, {}).items())
        fields = used.get(name, [])
        out.append(VocabularyListing(name, v.nouns[name], tuple(p for p, _ in fields), any(k == NAME for _, k in fields), keys))
    return out


def listing_json(listings: list[VocabularyListing]) -> str:
    return json.dumps({"vocabularies": [x.to_dict() for x in listings]}, indent=2, ensure_ascii=False)


def render_listing(listings: list[VocabularyListing], kb: KnowledgeBase) -> str:
    """The listing as text: a block per vocabulary, a line per key, an indented line per detail."""
    w = kb.vocabulary.word
    lines: list[str] = []
    for x in listings:
        if lines:
            lines.append("")
        lines.append(w("vocabulary_heading", name=x.name, noun=x.noun))
        lines.append("  " + (w("vocabulary_fields", fields=w("list_separator").join(x.fields)) if x.fields else w("vocabulary_unused")))
        if x.open:
            lines.append("  " + w("vocabulary_any_name"))
        width = max((len(k.key) for k in x.keys), default=0)
        for k in x.keys:
            lines.append("  " + w("vocabulary_key", value=k.key.ljust(width), label=k.label))
            for heading, words in k.details:
                lines.append("      " + w("vocabulary_detail", heading=heading, words=w("vocabulary_detail_separator").join(words)))
    return "\n".join(lines) + "\n"
