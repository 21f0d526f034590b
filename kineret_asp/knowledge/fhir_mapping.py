"""The KB's code tables and FHIR mapping, read once per KB (framework/interop.lp).

A policy version declares which code of which system means which key of
its vocabularies (``code/5``, ``code_class/4``, ``code_text/5``) and which
FHIR element fills which case field (``fhir_use/2``, ``fhir_value/4``,
``fhir_entry/2`` ...). :class:`FhirMapping` holds those facts in the KB's
order and answers the two questions :mod:`kineret_asp.cases.fhir_bundle` asks: what does
this coding mean for this vocabulary, and which rows fill this field. A row
that names a key its vocabulary does not declare is a KB error, reported
when the mapping is first read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from ..asp.symbols import Const, Value
from ..errors import Diagnostic, KbError

if TYPE_CHECKING:  # pragma: no cover
    from ..knowledge.base import KnowledgeBase

EXACT, PREFIX = "exact", "prefix"
OPEN, CLOSED, UNKNOWN = "open", "closed", "unknown"  # how a period of a resource of some status is read (fhir_period/3)
PERIOD_READINGS = (OPEN, CLOSED, UNKNOWN)


def plain(value: Value) -> Any:
    """A KB term as Python data: constants and strings as str, functions as tuples of plain values."""
    if isinstance(value, Const):
        return str(value)
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value


def normal_code(code: str) -> str:
    """A code as compared with the tables: upper case, without dots (M06.1 and M061 are one code)."""
    return code.strip().upper().replace(".", "")


@dataclass(frozen=True)
class Meaning:
    """What a coding means for one vocabulary: keys, and whether only as a class."""

    keys: tuple[str, ...]
    class_only: bool = False
    candidates: tuple[str, ...] = ()  # keys the code's words could have chosen, when none did


@dataclass(frozen=True)
class Row:
    """One fhir_value/4 or fhir_entry_value/5 row: a field read from an element of a group of resources."""

    field: str  # the case field, or the entry field for an entry row
    use: str
    element: str
    how: Any  # plain term: "key", "value", ("code", System), ("via", Use, "el", How) ...
    list_field: Optional[str] = None  # the entries list of an entry row


@dataclass
class FhirMapping:
    """Code tables and the FHIR mapping of one policy version."""

    systems: dict[str, str]  # alias -> URI
    system_names: dict[str, str]  # alias -> name
    codes: dict[tuple[str, str], list[tuple[str, str]]]  # (alias, normal code) -> [(vocabulary, key)], exact rows
    prefixes: list[tuple[str, str, str, str]]  # (alias, normal prefix, vocabulary, key), longest first
    classes: dict[tuple[str, str], list[tuple[str, str]]]
    texts: dict[tuple[str, str], list[tuple[str, str, str]]]  # (alias, code) -> [(vocabulary, key, words)]
    uses: dict[str, str]  # use -> resource type
    filters: dict[str, dict[str, list[Any]]]
    skips: dict[str, dict[str, list[Any]]]
    orders: list[tuple[str, str, Any]]  # (use, element, how)
    values: list[Row]
    entries: list[tuple[str, str]]  # (list, use)
    entry_values: list[Row]
    lookups: dict[str, dict[str, str]]
    as_of: dict[str, tuple[str, str]]
    vocabulary_prefix: str
    change_system: str
    interop_systems: dict[str, str]
    requested: tuple[str, ...] = field(default=())
    aliases: dict[str, str] = field(default_factory=dict)  # another URI -> system alias (code_system_uri/2)
    named: dict[str, set[str]] = field(default_factory=dict)  # system alias -> vocabularies its displays name keys of (code_names/2)
    decisive: set[tuple[str, str]] = field(default_factory=set)  # (field, use): when the use has the element, only it counts
    periods: dict[tuple[str, str], str] = field(default_factory=dict)  # (use, status) -> open | closed | unknown
    patients: dict[str, str] = field(default_factory=dict)  # resource type -> the element naming its patient
    negations: tuple[str, ...] = ()  # words of a concept's text that deny it
    same: dict[str, set[frozenset[str]]] = field(default_factory=dict)  # vocabulary -> pairs of keys naming one thing (key_same/3)

    @property
    def by_uri(self) -> dict[str, str]:
        return {**self.aliases, **{uri: alias for alias, uri in self.systems.items()}}

    def vocabulary_system(self, vocabulary: str) -> str:
        """The system URI whose codes are the keys of a case vocabulary."""
        return f"{self.vocabulary_prefix}{vocabulary}"

    def meaning(self, alias: str, code: str, vocabulary: str, words: str = "") -> Meaning:
        """What a code of a system means for a vocabulary (empty keys when nothing)."""
        key = (alias, normal_code(code))
        narrowed = list(dict.fromkeys(k for v, k, w in self.texts.get(key, ()) if v == vocabulary and _says(words, w)))
        if len(narrowed) > 1 and all(frozenset((narrowed[0], k)) in self.same.get(vocabulary, ()) for k in narrowed[1:]):
            narrowed = narrowed[:1]  # two names of one condition (key_same/3): the first, in the KB's order
        if len(narrowed) == 1:
            return Meaning((narrowed[0],))
        exact = [k for v, k in self.codes.get(key, ()) if v == vocabulary]
        if exact:
            return Meaning(tuple(dict.fromkeys(exact)))
        for a, prefix, v, k in self.prefixes:
            if a == alias and v == vocabulary and key[1].startswith(prefix):
                return Meaning((k,))
        classes = [k for v, k in self.classes.get(key, ()) if v == vocabulary]
        if classes:
            return Meaning((classes[0],), class_only=True)
        return Meaning((), candidates=tuple(dict.fromkeys(k for v, k, _ in self.texts.get(key, ()) if v == vocabulary)))

    def says(self, words: str, phrase: str) -> bool:
        return _says(words, phrase)

    def denies(self, words: str) -> Optional[str]:
        """The words of negation (fhir_negation/1) a concept's text holds, if any: it denies its own code."""
        return next((w for w in self.negations if _says(words, w)), None)

    def rows_for(self, name: str) -> list[Row]:
        return [r for r in self.values if r.field == name]

    def entry_rows(self, list_field: str, entry_field: str, use: str) -> list[Row]:
        return [r for r in self.entry_values if r.list_field == list_field and r.field == entry_field and r.use == use]


def _says(words: str, phrase: str) -> bool:
    """Whether the words contain the phrase as whole words, whatever the case."""
    return bool(words) and re.search(rf"(?<![A-Za-z0-9]){re.escape(phrase)}(?![A-Za-z0-9])", words, re.I) is not None


def _grouped(rows: list[tuple]) -> dict[str, dict[str, list[Any]]]:
    out: dict[str, dict[str, list[Any]]] = {}
    for use, element, value in rows:
        out.setdefault(str(use), {}).setdefault(str(element), []).append(plain(value))
    return out


def read_mapping(kb: "KnowledgeBase") -> FhirMapping:
    """Read (and check) the code tables and the FHIR mapping of a KB."""
    where = kb.display_path(kb.path)
    vocab = kb.vocabulary
    problems: list[str] = []

    def known(vocabulary: str, key: str, what: str) -> None:
        if key not in vocab.keys.get(vocabulary, {}):
            problems.append(f"{what}: {key!r} is not a key of the vocabulary {vocabulary!r}")

    systems = {str(a): str(u) for a, u, _ in kb.facts("code_system", 3)}
    names = {str(a): str(n) for a, _, n in kb.facts("code_system", 3)}
    codes: dict[tuple[str, str], list[tuple[str, str]]] = {}
    prefixes: list[tuple[str, str, str, str]] = []
    for alias, code, match, vocabulary, key in kb.facts("code", 5):
        a, c, v, k = str(alias), str(code), str(vocabulary), str(key)
        known(v, k, f"code({a}, {c!r})")
        if str(match) == PREFIX:
            prefixes.append((a, normal_code(c), v, k))
        else:
            codes.setdefault((a, normal_code(c)), []).append((v, k))
    prefixes.sort(key=lambda row: -len(row[1]))
    classes: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for alias, code, vocabulary, key in kb.facts("code_class", 4):
        known(str(vocabulary), str(key), f"code_class({alias}, {code!r})")
        classes.setdefault((str(alias), normal_code(str(code))), []).append((str(vocabulary), str(key)))
    texts: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for alias, code, vocabulary, key, words in kb.facts("code_text", 5):
        known(str(vocabulary), str(key), f"code_text({alias}, {code!r})")
        texts.setdefault((str(alias), normal_code(str(code))), []).append((str(vocabulary), str(key), str(words)))
    for alias in {a for a, _ in codes} | {a for a, *_ in prefixes} | {a for a, _ in classes} | {a for a, _ in texts}:
        if alias not in systems:
            problems.append(f"code tables use the system {alias!r}, which no code_system/3 declares")
    uses = {str(u): str(t) for u, t in kb.facts("fhir_use", 2)}
    values = [Row(str(f), str(u), str(e), plain(h)) for f, u, e, h in kb.facts("fhir_value", 4)]
    entry_values = [Row(str(f), str(u), str(e), plain(h), str(lst)) for lst, f, u, e, h in kb.facts("fhir_entry_value", 5)]
    entries = [(str(lst), str(u)) for lst, u in kb.facts("fhir_entry", 2)]
    schema = kb.schema
    for row in values:
        if row.field not in schema.by_name:
            problems.append(f"fhir_value({row.field}, ...): no case field {row.field!r}")
    for row in entry_values:
        lst = schema.by_name.get(row.list_field or "")
        if lst is None or lst.entry_field(row.field) is None:
            problems.append(f"fhir_entry_value({row.list_field}, {row.field}, ...): no such entry field")
    for row in [*values, *entry_values]:
        if row.use not in uses:
            problems.append(f"a mapping row of {row.field} reads {row.use!r}, which no fhir_use/2 declares")
    for row in [*values, *entry_values]:
        how = row.how
        if isinstance(how, tuple) and how and how[0] == "quantity" and (len(how) != 2 or how[1] not in systems):
            problems.append(f"a mapping row of {row.field} reads a quantity in {how[1:]!r}: expected quantity(System) with a system code_system/3 declares (UCUM)")
    lookups: dict[str, dict[str, str]] = {}
    for table, value, key in kb.facts("fhir_lookup", 3):
        lookups.setdefault(str(table), {})[str(value)] = str(key)
    prefix_rows = kb.facts("vocabulary_system_prefix", 1)
    change_rows = kb.facts("change_system", 1)
    aliases = {str(u): str(a) for a, u in kb.facts("code_system_uri", 2)}
    named: dict[str, set[str]] = {}
    for alias, vocabulary in kb.facts("code_names", 2):
        named.setdefault(str(alias), set()).add(str(vocabulary))
    for alias in [*aliases.values(), *named]:
        if alias not in systems:
            problems.append(f"code_system_uri/code_names name the system {alias!r}, which no code_system/3 declares")
    same: dict[str, set[frozenset[str]]] = {}
    for vocabulary, a, b in kb.facts("key_same", 3):
        known(str(vocabulary), str(a), "key_same")
        known(str(vocabulary), str(b), "key_same")
        same.setdefault(str(vocabulary), set()).add(frozenset((str(a), str(b))))
    periods = {(str(u), str(v)): str(how) for u, v, how in kb.facts("fhir_period", 3)}
    problems += [f"fhir_period({u}, {v!r}, {how}): expected open, closed or unknown" for (u, v), how in periods.items() if how not in PERIOD_READINGS]
    if problems:
        raise KbError([Diagnostic(where, 0, 0, "error", f"FHIR mapping: {p}") for p in problems])
    return FhirMapping(
        systems=systems,
        system_names=names,
        codes=codes,
        prefixes=prefixes,
        classes=classes,
        texts=texts,
        uses=uses,
        filters=_grouped(kb.facts("fhir_filter", 3)),
        skips=_grouped(kb.facts("fhir_skip", 3)),
        orders=[(str(u), str(e), plain(h)) for u, e, h in kb.facts("fhir_order", 3)],
        values=values,
        entries=entries,
        entry_values=entry_values,
        lookups=lookups,
        as_of={str(n): (str(u), str(e)) for n, u, e in kb.facts("fhir_as_of", 3)},
        vocabulary_prefix=str(prefix_rows[0][0]) if prefix_rows else "",
        change_system=str(change_rows[0][0]) if change_rows else "",
        interop_systems={str(n): str(u) for n, u in kb.facts("interop_system", 2)},
        requested=tuple(str(r[0]) for r in kb.facts("requested_drug", 1)),
        aliases=aliases,
        named=named,
        decisive={(str(f), str(u)) for f, u in kb.facts("fhir_decisive", 2)},
        periods=periods,
        patients={str(t): str(e) for t, e in kb.facts("fhir_patient", 2)},
        negations=tuple(str(w) for (w,) in kb.facts("fhir_negation", 1)),
        same=same,
    )


def mapping_for(kb: "KnowledgeBase") -> FhirMapping:
    """The FHIR mapping of a KB, read once and kept with it."""
    return kb.derived("fhir_mapping", lambda: read_mapping(kb))
