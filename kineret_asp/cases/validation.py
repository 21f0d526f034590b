"""Validating a case against the schema its version declares: one validator for every way a case arrives.

A case in JSON, a dict, a :class:`~kineret_asp.cases.case.Case`, the facts
of an ``.lp`` case or a case after what-if changes all end here, so all of
them get the same checks and the same messages, each with its field path,
and nothing a user gives is dropped: an unknown field is an error, not
ignored. What each field's value goes through is worked out once per schema
(a batch validates millions of cases).
"""

from __future__ import annotations

import datetime
import decimal
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any, Callable, Mapping, Optional

from ..errors import CaseError, did_you_mean
from ..knowledge.schema import (
    BOOLEAN,
    CLINGO_INT,
    DATE,
    DATE_PATTERN,
    DECIMAL,
    ENTRIES,
    EXPECTATIONS,
    FORMAT_VERSION,
    INTEGER,
    KEY,
    LIST,
    MAX_LIST_ITEMS,
    MAX_NAME_TEXT,
    MAX_TEXT,
    NAME,
    NAME_PATTERN,
    OBJECT,
    OPEN_KEY,
    OPEN_NAME,
    OPEN_NAME_WORDS,
    TEXT,
    UNDETERMINED,
    UNIT_VOCABULARY,
    CaseSchema,
    Field,
    Kind,
    decimal_of,
    describe,
    field_name,
    plain_number,
)
from .case import Case, Entry

MAX_ERRORS = 20
ENTRIES_KEPT = 10_000
"""Well-formed entries a validator keeps, by the exact values given (a batch's history entries: a few thousand distinct among tens of thousands)."""


@dataclass
class Problems:
    """The errors found in one case, each a CaseError; at most MAX_ERRORS are kept."""

    source: str
    errors: list[CaseError] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(CaseError(self.source, path, message))

    def raise_any(self) -> None:
        if self.errors:
            raise CaseError.many(self.errors)


def _join(path: str, name: Any) -> str:
    shown = field_name(name)
    if shown.startswith("["):
        return f"{path}{shown}"
    return f"{path}.{shown}" if path else shown


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validator(schema: CaseSchema) -> "Validator":
    """The validator of a schema (made once, kept with the schema)."""
    return schema.derived("validator", lambda: Validator(schema))


def validate(schema: CaseSchema, data: Any, source: str) -> Case:
    """A validated, normalized Case, or CaseError listing every problem found (at most MAX_ERRORS)."""
    try:
        return validator(schema).validate(data, source)
    except RecursionError:
        raise CaseError(source, "", "nested too deeply") from None


class Validator:
    """Reads decoded case data against one schema, collecting every problem with its path."""

    def __init__(self, schema: CaseSchema):
        self.schema = schema
        self.vocabularies = schema.vocabularies
        self.names = schema.names
        self.conversions = schema.conversions
        self.by_name = schema.by_name
        self.noun = schema.noun
        self.role = schema.role
        self._names = [f.name for f in schema.fields]
        self._readers = {f.name: self._reader(f) for f in schema.fields}
        self._entry_readers = {f.name: [(e, self._reader(e), schema.default(e), self._valid_as_given(e.kind)) for e in f.entry_fields] for f in schema.fields if f.kind.name == ENTRIES}
        self._entry_names = {f.name: frozenset(e.name for e in f.entry_fields) for f in schema.fields if f.kind.name == ENTRIES}
        self._known = frozenset(self._names)
        self._plan = [(f, self._readers[f.name], schema.default(f), self._quick(f)) for f in schema.fields]
        self._quick_by_name = {f.name: quick for f, _, _, quick in self._plan}
        self._required = [f.name for f in schema.fields if f.presence == "required"]
        self._defaults = {f.name: _SLOW if f.presence == "required" else default for f, _, default, _ in self._plan}  # a required field stands out until given

    @property
    def where(self) -> Mapping[str, str]:
        return self.schema.where

    def validate(self, data: Any, source: str) -> "Case":
        """A validated, normalized Case, or CaseError listing every problem found."""
        values = self._well_formed(data)
        if values is None:
            problems = Problems(source)
            values = self._top(data, problems)
            problems.raise_any()
        expect_field = self.role(EXPECTATIONS)
        expect = values.pop(expect_field, None) if expect_field else None
        return Case._bound(self.schema, values, expect, source)

    def _well_formed(self, data: Any) -> Optional[dict[str, Any]]:
        """The values of a case whose every given value a quick reading vouches for (:meth:`_quick`), None for any other case.

        Only the fields the case gives are read (a batch's case gives a few
        of the schema's fields); the values come in the schema's order, the
        defaults of the others in place, as :meth:`_top` gives them.
        """
        if type(data) is not dict or not data.keys() <= self._known:
            return None
        values = self._defaults.copy()
        quick = self._quick_by_name
        for name, raw in data.items():
            read = quick[name]
            if raw is None or read is None:
                return None
            value = read(raw)
            if value is _SLOW:
                return None
            values[name] = value
        for name in self._required:
            if values[name] is _SLOW:
                return None
        return values

    def _top(self, data: Any, problems: Problems) -> dict[str, Any]:
        if type(data) is not dict and not isinstance(data, Mapping):
            problems.add("", f"expected a JSON object (a case), got {describe(data)}")
            return {}
        names = self._names
        by_name = self.by_name
        if not data.keys() <= self._known:
            for k in data:
                if k not in by_name:
                    hint = did_you_mean(str(k), names) if len(str(k)) <= 60 else ""
                    problems.add(_join("", k), f"unknown field{hint}; expected one of {', '.join(names)}")
        values: dict[str, Any] = {}
        get = data.get
        absent: list[Field] = []
        for f, read, default, quick in self._plan:
            raw = get(f.name)
            if raw is None:
                if f.presence == "required":
                    absent.append(f)
                    continue
                values[f.name] = default
                continue
            if quick is not None:
                value = quick(raw)
                if value is not _SLOW:
                    values[f.name] = value
                    continue
            values[f.name] = read(raw, f.name, problems)
        if absent:
            unsettled = self._undetermined_fields(values)
            for f in absent:
                if f.name in unsettled:  # a required field may be left out when the case says it is undetermined
                    values[f.name] = None
                else:
                    problems.add(f.name, "missing required field" if f.name not in data else f"expected {self.schema.expected(f)}, got null")
        return values

    def _undetermined_fields(self, values: Mapping[str, Any]) -> set[str]:
        """The fields the case's own list of undetermined facts names (the field of role ``undetermined``)."""
        name = self.role(UNDETERMINED)
        spec = self.by_name.get(name or "")
        if spec is None or spec.kind.name != ENTRIES:
            return set()
        keyed = [e.name for e in spec.entry_fields if e.kind.name == KEY][:1]
        return {str(entry[k]) for entry in values.get(spec.name) or () for k in keyed}

    def _reader(self, f: Field) -> Callable[[Any, str, Problems], Any]:
        """How a given (not null) value of a field is read: ``read(raw, path, problems)``."""
        k = f.kind
        if FORMAT_VERSION in f.roles:
            return partial(self._format_version, f)
        if k.name == LIST:
            return partial(self._list, self._scalar_reader(k.item))  # type: ignore[arg-type]
        if k.name == ENTRIES:
            return partial(self._entries, f)
        if k.name == OBJECT:
            return self._object
        return self._scalar_reader(k)

    def _quick(self, f: Field) -> Optional[Callable[[Any], Any]]:
        """A quick reading of a well-formed value of field ``f`` (None: no quick reading).

        It returns what the field's reader would return for the value, or
        ``_SLOW`` for any value it does not vouch for: the reader then reads
        it, with its messages. Most values of a batch are well formed (known
        keys, numbers in range, entries with known fields), and the reader
        builds each value's path for its messages.
        """
        k = f.kind
        if FORMAT_VERSION in f.roles:
            low, high = k.minimum or 0, k.maximum or 0
            return lambda raw: raw if type(raw) is int and low <= raw <= high else _SLOW
        if k.name == ENTRIES:
            return partial(self._quick_entries, f, {})
        if k.name == LIST:
            item = k.item
            if item is not None and item.name in (KEY, OPEN_KEY):
                keys = self.vocabularies.get(item.vocabulary or "", {}).keys()
                return partial(_quick_keys, keys)
            each = self._valid_as_given(item) if item is not None else None
            if each is None:
                return None
            return lambda raw: tuple(raw) if type(raw) is list and len(raw) <= MAX_LIST_ITEMS and all(map(each, raw)) else _SLOW
        if k.name in (KEY, OPEN_KEY):  # the commonest: one call, not two
            table = self.vocabularies.get(k.vocabulary or "", {})
            return lambda raw: raw if type(raw) is str and raw in table else _SLOW
        as_given = self._valid_as_given(k)
        if as_given is None:
            return None
        return lambda raw: raw if as_given(raw) else _SLOW

    def _quick_entries(self, f: Field, seen: dict, raw: Any) -> Any:
        """The entries of a list whose every entry is well formed (:meth:`_quick`), or ``_SLOW``.

        An entry is read once for each set of values given (``seen``: the
        entries read, by their fields, values and the values' types, so that
        ``1``, ``1.0`` and ``true`` stay apart); equal entries are one
        :class:`Entry` (it cannot be changed), which its atoms' writer
        recognizes. A batch's cases repeat a few thousand entries.
        """
        if type(raw) is not list or len(raw) > MAX_LIST_ITEMS:
            return _SLOW
        out = []
        for item in raw:
            if type(item) is not dict:
                return _SLOW
            try:
                key = (tuple(item.items()), tuple(map(type, item.values())))
                entry = seen.get(key)
            except TypeError:  # a value that cannot be hashed (a list): not an entry this reading vouches for
                return _SLOW
            if entry is None:
                entry = self._quick_entry(f, item)
                if entry is None:
                    return _SLOW
                if len(seen) < ENTRIES_KEPT:
                    seen[key] = entry
            out.append(entry)
        return tuple(out)

    def _quick_entry(self, f: Field, item: dict) -> Optional[Entry]:
        """An entry whose every field is well formed, None for any other."""
        if not item.keys() <= self._entry_names[f.name]:
            return None
        values: dict[str, Any] = {}
        get = item.get
        for e, _read, default, as_given in self._entry_readers[f.name]:
            value = get(e.name)
            if value is None:
                if e.presence == "required":
                    return None
                values[e.name] = default
            elif as_given is not None and as_given(value):
                values[e.name] = value
            else:
                return None
        return Entry._bound(f, values)

    def _valid_as_given(self, k: Kind) -> Optional[Callable[[Any], bool]]:
        """A quick test of a value the reader of kind ``k`` would accept and return unchanged (None: no quick test).

        Most values of a batch are such (a known key, a number in range); the
        reader, which builds the value's path for its messages, is then skipped.
        """
        if k.name in (KEY, OPEN_KEY):
            table = self.vocabularies.get(k.vocabulary or "", {})
            return lambda raw: type(raw) is str and raw in table
        if k.name == INTEGER:
            low, high = k.minimum, k.maximum
            return lambda raw: type(raw) is int and (low is None or raw >= low) and (high is None or raw <= high)
        if k.name == BOOLEAN:
            return lambda raw: type(raw) is bool
        if k.name == TEXT:
            return lambda raw: type(raw) is str and len(raw) <= MAX_TEXT and "\x00" not in raw and (raw.isascii() or encodable(raw))
        if k.name == NAME:  # a known name as the vocabulary spells it (the first of those equal but for case), or a name it does not know
            spelled: dict[str, str] = {}
            for known in self.vocabularies.get(k.vocabulary or "", {}):
                spelled.setdefault(known.lower(), known)
            as_spelled = frozenset(name for name in spelled.values() if NAME_PATTERN.match(name))
            return lambda raw: type(raw) is str and (raw in as_spelled or (raw.lower() not in spelled and NAME_PATTERN.match(raw) is not None))
        return None

    def _scalar_reader(self, k: Kind) -> Callable[[Any, str, Problems], Any]:
        """How a value of a scalar kind is read (:meth:`_scalar` for one kind)."""
        if k.name == KEY:
            return partial(self._key, k)
        if k.name == OPEN_KEY:
            return partial(self._open_key, k)
        if k.name == NAME:
            return partial(self._name, k)
        if k.name == INTEGER:
            return partial(self._integer, k)
        if k.name == DECIMAL:
            return partial(self._decimal, k)
        if k.name == BOOLEAN:
            return self._boolean
        if k.name == DATE:
            return self.date
        if k.name == TEXT:
            return self._text
        return partial(self._misplaced, k)

    def _value(self, f: Field, raw: Any, path: str, problems: Problems) -> Any:
        return self._reader(f)(raw, path, problems)

    def _list(self, read: Callable[[Any, str, Problems], Any], raw: Any, path: str, problems: Problems) -> tuple:
        out = []
        for i, x in enumerate(self._items(raw, path, problems)):
            v = read(x, f"{path}[{i}]", problems)
            if v is not None:
                out.append(v)
        return tuple(out)

    def _entries(self, f: Field, raw: Any, path: str, problems: Problems) -> tuple:
        bound = Entry._bound
        out = []
        for i, item in enumerate(self._items(raw, path, problems)):
            values = self._entry(f, item, f"{path}[{i}]", problems)
            if values is not None:
                out.append(bound(f, values))
        return tuple(out)

    def _object(self, raw: Any, path: str, problems: Problems) -> Optional[dict]:
        if not isinstance(raw, Mapping):
            problems.add(path, f"expected an object, got {describe(raw)}")
            return None
        return dict(raw)

    def _format_version(self, f: Field, raw: Any, path: str, problems: Problems) -> Any:
        supported = f.kind.maximum
        if isinstance(raw, bool) or not isinstance(raw, int):
            problems.add(path, f"expected the format version number {supported}, got {describe(raw)}")
            return None
        if not (f.kind.minimum or 0) <= raw <= (supported or 0):
            problems.add(path, f"unsupported case format version {raw}; this program reads version {supported}")
            return None
        return raw

    def _items(self, raw: Any, path: str, problems: Problems) -> list:
        if type(raw) is list and len(raw) <= MAX_LIST_ITEMS and not any(type(x) not in _PLAIN_ITEMS for x in raw):
            return raw  # decoded JSON: nothing to convert
        if isinstance(raw, tuple):
            raw = list(raw)
        if not isinstance(raw, list):
            problems.add(path, f"expected a list, got {describe(raw)}")
            return []
        if len(raw) > MAX_LIST_ITEMS:
            problems.add(path, f"expected at most {MAX_LIST_ITEMS} entries, got {len(raw)}")
            return []
        return [x.to_dict() if isinstance(x, Entry) and x._field is not None else x for x in raw]

    def _entry(self, f: Field, raw: Any, path: str, problems: Problems) -> Optional[dict[str, Any]]:
        if type(raw) is not dict:
            if isinstance(raw, Entry):
                raw = raw.as_dict([e.name for e in f.entry_fields])
            if not isinstance(raw, Mapping):
                names = [e.name for e in f.entry_fields]
                problems.add(path, f"expected an object with {', '.join(names)}, got {describe(raw)}")
                return None
        before = len(problems.errors)
        known = self._entry_names[f.name]
        for k in raw:
            if k not in known:
                names = [e.name for e in f.entry_fields]
                hint = did_you_mean(str(k), names) if len(str(k)) <= 60 else ""
                problems.add(_join(path, k), f"unknown field{hint}; expected one of {', '.join(names)}")
        values: dict[str, Any] = {}
        get = raw.get
        for e, read, default, as_given in self._entry_readers[f.name]:
            value = get(e.name)
            if value is None:
                if e.presence == "required":
                    problems.add(f"{path}.{e.name}", "missing required field" if e.name not in raw else f"expected {self.schema.expected(e)}, got null")
                    continue
                values[e.name] = default
                continue
            if as_given is not None and as_given(value):
                values[e.name] = value  # what the reader would return, without making its path
                continue
            values[e.name] = read(value, f"{path}.{e.name}", problems)
        return values if len(problems.errors) == before else None

    def _scalar(self, k: Kind, raw: Any, path: str, problems: Problems) -> Any:
        return self._scalar_reader(k)(raw, path, problems)

    def _integer(self, k: Kind, raw: Any, path: str, problems: Problems) -> Optional[int]:
        if type(raw) is not int and (isinstance(raw, bool) or not isinstance(raw, int)):  # a bool is no number to the case format
            problems.add(path, f"expected a whole number, got {describe(raw)}")
            return None
        if not (k.minimum is None or raw >= k.minimum) or not (k.maximum is None or raw <= k.maximum):
            shown = raw if abs(raw) < 10**12 else f"{str(raw)[:12]}..."
            problems.add(path, f"expected a whole number from {k.minimum} to {k.maximum}, got {shown}")
            return None
        return raw

    def unit_key(self, text: Any) -> Optional[str]:
        """The unit a case names: its key (unit/2), or its UCUM code (the unit's label), without regard to case."""
        return self.schema.unit_key(text)

    def _decimal(self, k: Kind, raw: Any, path: str, problems: Problems) -> Any:
        """A number in the field's unit, or {"value": number, "unit": code} converted by the KB's unit_conversion/3."""
        units = self.vocabularies.get(UNIT_VOCABULARY, {})
        label = units.get(k.unit or "", k.unit or "")
        value, unit = raw, None
        if isinstance(raw, Mapping):
            extra = sorted(str(x) for x in raw if x not in ("value", "unit"))
            if extra or "value" not in raw:
                problems.add(path, f'expected a number in {label}, or {{"value": number, "unit": code}}, got an object with {", ".join(extra) or "no value"}')
                return None
            value, unit = raw.get("value"), raw.get("unit")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
            problems.add(path, f"expected a number in {label}, got {describe(value)}")
            return None
        exact = decimal_of(value)
        if unit is not None:
            key = self.unit_key(unit)
            factor = self.schema.conversion_factor(key, k.unit)
            if factor is None:
                known = [units.get(u, u) for u in [k.unit or ""] + sorted({a for a, b in self.conversions if b == k.unit} | {b for a, b in self.conversions if a == k.unit})]
                shown = unit if isinstance(unit, str) and len(unit) <= 30 else describe(unit)
                problems.add(path + ".unit", f"no conversion from {shown!r} to {label} is declared; expected one of {', '.join(dict.fromkeys(known))}")
                return None
            exact = exact * factor
        scaled = exact.scaleb(k.places)
        if scaled != scaled.to_integral_value():
            problems.add(path, f"expected a number in {label} with at most {k.places} decimal place(s), got {plain_number(exact)}")
            return None
        if abs(scaled) > CLINGO_INT:
            problems.add(path, f"expected a number in {label} of at most {decimal.Decimal(CLINGO_INT).scaleb(-k.places)}, got {describe(value)}")
            return None
        return plain_number(exact)

    def _boolean(self, raw: Any, path: str, problems: Problems) -> Optional[bool]:
        if not isinstance(raw, bool):
            problems.add(path, f"expected true or false, got {describe(raw)}")
            return None
        return raw

    def _misplaced(self, k: Kind, raw: Any, path: str, problems: Problems) -> None:
        problems.add(path, f"a {k.name} cannot stand here")
        return None

    def _key(self, k: Kind, raw: Any, path: str, problems: Problems) -> Optional[str]:
        v = k.vocabulary or ""
        table = self.vocabularies.get(v, {})
        if type(raw) is str and raw in table:
            return raw
        what = self.noun(v)
        noun = what.split(" ", 1)[-1]
        if not isinstance(raw, str):
            problems.add(path, f"expected {what} key (a string), got {describe(raw)}")
            return None
        if raw not in table:
            named = self._named(v, raw, path, problems)
            if named is not False:
                return named
            shown = raw if len(raw) <= 60 else raw[:57] + "..."
            hint = did_you_mean(raw, table) if len(raw) <= 60 else ""
            if len(table) <= 20:
                expected = f"expected one of {', '.join(sorted(table))}"
            else:
                expected = f"expected {what} key of the KB ({self.where.get(v, v)})"
            problems.add(path, f"unknown {noun} {shown!r}; {expected}{hint}")
            return None
        return raw

    def _open_key(self, k: Kind, raw: Any, path: str, problems: Problems) -> Optional[str]:
        """A key of the vocabulary, or any other name that is not a near miss of one.

        A name a small edit away from a key (or holding one) is refused with
        the key suggested: a mistyped key must never pass for another name.
        """
        what = self.noun(k.vocabulary or "")
        table = self.vocabularies.get(k.vocabulary or "", {})
        if not isinstance(raw, str):
            problems.add(path, f"expected {what} key or name (a string), got {describe(raw)}")
            return None
        if raw in table:
            return raw
        named = self._named(k.vocabulary or "", raw, path, problems, open_=True)
        if named is not False:
            return named
        shown = raw if len(raw) <= 60 else raw[:57] + "..."
        if not OPEN_NAME.match(raw):
            problems.add(path, f"expected {what} key or name ({OPEN_NAME_WORDS}), got {shown!r}")
            return None
        near = near_key(raw, table)
        if near is not None:  # reported as the closed vocabulary would report it
            noun = what.split(" ", 1)[-1]
            problems.add(path, f"unknown {noun} {shown!r}; expected {what} key of the KB ({self.where.get(k.vocabulary or '', k.vocabulary)}); did you mean '{near}'?")
            return None
        return raw

    def _named(self, vocabulary: str, raw: str, path: str, problems: Problems, open_: bool = False) -> "Optional[str] | bool":
        """The key a name of the vocabulary stands for (``key_name/3``); None after a problem; False when it names no key.

        A name that holds a key's name beside words the KB does not read
        ("Humira biosimilar"), or the names of two keys, is no key: never
        one of them (that could read another drug). In an open vocabulary it
        stays a name the rules do not know; in a closed one it is refused,
        without a suggestion.
        """
        index = self.names.get(vocabulary)
        if index is None or len(raw) > MAX_NAME_TEXT:
            return False
        reading = index.read(raw)
        if reading.key is not None:
            return reading.key
        if not reading.keys or open_:
            return False
        shown = raw if len(raw) <= 60 else raw[:57] + "..."
        noun = self.noun(vocabulary).split(" ", 1)[-1]
        labels = ", ".join(repr(k) for k in reading.keys[:5])
        if reading.uncovered:
            problems.add(path, f"{shown!r} names the {noun} {labels} beside words the KB does not read ({' '.join(reading.uncovered)}); give one {noun} by its key or a name the KB knows")
        else:
            problems.add(path, f"{shown!r} names several {noun}s ({labels}); give one {noun} per item")
        return None

    def _name(self, k: Kind, raw: Any, path: str, problems: Problems) -> Optional[str]:
        what = self.noun(k.vocabulary or "")
        if not isinstance(raw, str):
            problems.add(path, f"expected {what} name (a string), got {describe(raw)}")
            return None
        if not NAME_PATTERN.match(raw):
            problems.add(path, f"expected {what} name: letters, digits, '.', '_' or '-', at most 64 characters")
            return None
        for known in self.vocabularies.get(k.vocabulary or "", {}):
            if known.lower() == raw.lower():
                return known
        return raw

    def date(self, raw: Any, path: str, problems: Problems) -> Optional[str]:
        """A date as the case format reads it (YYYY-MM-DD, a real day), or None after a problem."""
        if not isinstance(raw, str):
            problems.add(path, f"expected a date YYYY-MM-DD (a string), got {describe(raw)}")
            return None
        m = DATE_PATTERN.match(raw)
        try:
            if not m:
                raise ValueError
            datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            shown = raw if len(raw) <= 40 else raw[:37] + "..."
            problems.add(path, f"expected a date YYYY-MM-DD, got {shown!r}")
            return None
        return raw

    def _text(self, raw: Any, path: str, problems: Problems) -> Optional[str]:
        if not isinstance(raw, str):
            problems.add(path, f"expected a string, got {describe(raw)}")
            return None
        if len(raw) > MAX_TEXT:
            problems.add(path, f"expected at most {MAX_TEXT} characters, got {len(raw)}")
            return None
        if "\x00" in raw:
            problems.add(path, "a NUL character is not allowed")
            return None
        if not encodable(raw):
            problems.add(path, "not valid Unicode text (a lone surrogate)")
            return None
        return raw


_SLOW = object()
"""What a quick reading returns for a value it does not vouch for (:meth:`Validator._quick`)."""


def _quick_keys(keys: Any, raw: Any) -> Any:
    """A list of keys of a vocabulary (``keys``) as its reader returns it, or ``_SLOW``."""
    if type(raw) is list and len(raw) <= MAX_LIST_ITEMS:
        try:
            if keys >= set(raw):
                return tuple(raw)
        except TypeError:  # an item that cannot be hashed (an object, a list): the reader says what is wrong
            pass
    return _SLOW


_PLAIN_ITEMS = frozenset({dict, list, str, int, float, bool, type(None)})
"""The types of decoded JSON: a list of only these holds no Entry object to convert."""


_NOT_ALNUM = re.compile(r"[^a-z0-9]")


@lru_cache(maxsize=4096)
def _normal(text: str) -> str:
    """A name as compared with keys: lower case letters and digits only (kept: a vocabulary's keys are compared again and again)."""
    return _NOT_ALNUM.sub("", text.lower())


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of two strings, or ``limit + 1`` once it is known to exceed ``limit``.

    Only the band of cells within ``limit`` of the diagonal is computed (a
    cell outside it is over the limit): an unknown name is compared with
    every key of its vocabulary, and ``limit`` is 1 or 2.
    """
    n, m = len(a), len(b)
    if abs(n - m) > limit:
        return limit + 1
    over = limit + 1
    previous = [j if j <= limit else over for j in range(m + 1)]
    for i in range(1, n + 1):
        ca = a[i - 1]
        low, high = max(1, i - limit), min(m, i + limit)
        current = [over] * (m + 1)
        current[0] = i if i <= limit else over
        best = current[0] if low == 1 else over
        for j in range(low, high + 1):
            cost = previous[j - 1] + (ca != b[j - 1])
            up = previous[j] + 1
            left = current[j - 1] + 1
            value = cost if cost < up else up
            if left < value:
                value = left
            if value > over:
                value = over
            current[j] = value
            if value < best:
                best = value
        if best > limit:
            return over
        previous = current
    return previous[m] if previous[m] <= limit else over


def near_key(raw: str, table: Mapping[str, str]) -> Optional[str]:
    """The key of ``table`` that ``raw`` comes too close to, if any.

    Compared without regard to case and to anything but letters and digits:
    equal to a key or its words, or within 1 edit (names of at most 5
    characters) or 2 edits of one: a mistyped key ("enbrl"). A name that only
    holds a key ("chloroquine" holds no key: "hydroxychloroquine" is another
    drug) is not a near miss. The closest key wins, then the first in KB
    order.
    """
    name = _normal(raw)
    if not name:
        return None
    best: Optional[tuple[int, int, str]] = None
    for rank, (key, label) in enumerate(table.items()):
        for known in {_normal(key), _normal(label)}:
            if not known:
                continue
            limit = 1 if min(len(name), len(known)) <= 5 else 2
            distance = edit_distance(name, known, limit)
            if distance <= limit and (best is None or (distance, rank) < best[:2]):
                best = (distance, rank, key)
    return best[2] if best else None
