"""The names people write for the keys of a vocabulary: brands, generic names, RxNorm's drug names.

A policy version declares, beside a vocabulary's keys, other names for them
(``key_name/3``), the words set aside when a name is compared
(``key_name_filler/2``: strengths' units, dose forms, devices), whether
words holding a digit are set aside too (``key_name_numbers/1``), and which
key is a narrower form of another (``key_narrows/3``: a brand of an
ingredient). :class:`NameIndex` reads a free-text name with them:

- the text is cut into words (letters and digits), without regard to case
  or punctuation; words that begin with a digit (strengths) are dropped
  where the vocabulary says so ("Humira 40 MG" has the words ``humira mg``,
  "vitamin D3" keeps ``d3``);
- every name of the vocabulary (a key written with spaces, its label, its
  other names) whose words all stand in the text is a candidate, the ones
  inside a longer candidate left out ("Xeljanz" inside "Xeljanz oral
  solution");
- every word of the text must belong to a candidate or be a filler: a word
  nobody declared ("Humira biosimilar") leaves the text unread;
- the candidates must name one key, once the keys that another candidate
  narrows are left out ("adalimumab ... [Humira]" is Humira).

Anything else (no candidate, two keys, a word left over) is no key: the
caller decides what that means (an error with a suggestion for a case
file, an undetermined drug for a record read from FHIR). Python names no
word here; every word comes from the KB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Optional

_WORD = re.compile(r"[a-z0-9]+")
NAMING_PREDICATES = frozenset({"key_name", "key_narrows"})
"""The framework's facts about how keys are written: no rule reads them, so they never tell two keys apart."""


def words(text: str) -> list[str]:
    """The words of a name: runs of letters and digits, in lower case."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Reading:
    """What a name was read as: a key, or why not (the words no name covers, the keys it could be)."""

    key: Optional[str]
    uncovered: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


@dataclass
class NameIndex:
    """Every name of one vocabulary's keys, compared by their words."""

    fillers: frozenset[str] = frozenset()
    numbers: bool = False
    names: dict[frozenset[str], str] = field(default_factory=dict)  # a name's words -> its key
    broader: dict[str, frozenset[str]] = field(default_factory=dict)  # key -> the keys it narrows
    clashes: list[tuple[str, str, str]] = field(default_factory=list)  # (name, key, other key) declared twice

    @classmethod
    def build(cls, keys: dict[str, str], names: Iterable[tuple[str, str]], fillers: Iterable[str], numbers: bool, narrows: Iterable[tuple[str, str]]) -> "NameIndex":
        """The index of a vocabulary: its keys (with their labels), other names, fillers and narrower keys."""
        index = cls(frozenset(w for f in fillers for w in words(f)), numbers)
        for key, label in keys.items():
            index._add(key.replace("_", " "), key, own=True)
            index._add(label, key, own=True)
        for key, name in names:
            index._add(name, key, own=False)
        broader: dict[str, set[str]] = {}
        for narrow, broad in narrows:
            broader.setdefault(narrow, set()).add(broad)
        index.broader = {k: frozenset(v) for k, v in broader.items()}
        return index

    def _words(self, text: str) -> frozenset[str]:
        found = words(text)
        if self.numbers:
            found = [w for w in found if not w[0].isdigit()]
        return frozenset(found)

    def _add(self, name: str, key: str, own: bool) -> None:
        ws = self._words(name)
        if not ws or ws <= self.fillers:
            return
        other = self.names.get(ws)
        if other is None:
            self.names[ws] = key
        elif other != key and not own:
            self.clashes.append((name, key, other))
        elif other != key:
            pass  # a key or label equal to another key's: the first (KB order) keeps it

    def read(self, text: str) -> Reading:
        """The key a free-text name stands for (see the module's description), or why none."""
        ws = self._words(text)
        if not ws:
            return Reading(None)
        exact = self.names.get(ws)
        if exact is not None:
            return Reading(exact)
        candidates = [(name, key) for name, key in self.names.items() if name <= ws]
        if not candidates:
            return Reading(None, tuple(sorted(ws - self.fillers)))
        covered = frozenset().union(*(name for name, _ in candidates))
        left = ws - covered - self.fillers
        if left:
            return Reading(None, tuple(sorted(left)), tuple(sorted({k for _, k in candidates})))
        widest = [(n, k) for n, k in candidates if not any(n < m for m, _ in candidates)]
        keys = {k for _, k in widest}
        narrowest = {k for k in keys if not any(k in self.broader.get(other, ()) for other in keys if other != k)}
        if len(narrowest) == 1:
            return Reading(narrowest.pop())
        return Reading(None, (), tuple(sorted(narrowest)))

    def key_of(self, text: str) -> Optional[str]:
        return self.read(text).key
