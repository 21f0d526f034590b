"""The case schema, read from the KB: one validator for every way a case arrives.

A policy version declares its inputs in the KB (``input_field/4``,
``input_atom/2``, ``entry_field/5``, ``entry_atom/3``; the
framework declares the fields every case has, and what each kind means:
``kb/framework/case_format.lp``). :class:`CaseSchema` reads those facts
and derives from them everything the package knows about a case:

- validation of a decoded case (JSON, a dict, a :class:`~kineret_asp.cases.case.Case`,
  the facts of an ``.lp`` case, a case after what-if changes), collecting
  every error with its field path;
- the input atoms a case becomes, and the case a set of atoms describes;
- the input predicates and the kind of each of their arguments (for the
  engines, ``check``, ``verify`` and ``diff``);
- the JSON Schema of the case format.

No field name, vocabulary or key is written in Python: they all come from
the KB.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, Sequence

from ..errors import CaseError, did_you_mean
from ..knowledge.names import NameIndex
from ..asp.symbols import Const, Value

if TYPE_CHECKING:  # pragma: no cover
    from .case import Case
    from ..knowledge.base import KnowledgeBase

MAX_LIST_ITEMS = 1000
MAX_TEXT = 1000
MAX_ERRORS = 20
MAX_NAME_TEXT = 200  # longer text is never read as a name of a key
CLINGO_INT = 2**31 - 1
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
DATE_PATTERN = re.compile(r"(\d{4})-(\d{2})-(\d{2})\Z")
PLAIN_KEY = re.compile(r"[A-Za-z0-9_]{1,60}\Z")
OPEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ./+&_-]{0,79}\Z")
OPEN_NAME_WORDS = "letters, digits, spaces and . / + & _ -, at most 80 characters"
JSON_SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"

# the kinds of framework/case_format.lp
KEY, NAME, INTEGER, BOOLEAN, DATE, TEXT, LIST, ENTRIES, OBJECT = "key", "name", "integer", "boolean", "date", "text", "list", "entries", "object"
OPEN_KEY = "open_key"
KEYED = (KEY, OPEN_KEY)  # kinds whose values are (or may be) keys of a vocabulary
# the roles of field_role/2 that the program itself reads
FORMAT_VERSION, CASE_ID, EXPECTATIONS, DATE_OF_SERVICE, POLICY_SELECTOR = "format_version", "case_id", "expectations", "date_of_service", "policy_selector"
UNDETERMINED = "undetermined"  # the role of the field listing the facts an input could not establish


@dataclass(frozen=True)
class Kind:
    """What values a field takes (framework/case_format.lp)."""

    name: str
    vocabulary: Optional[str] = None
    minimum: Optional[int] = None
    maximum: Optional[int] = None
    item: Optional["Kind"] = None

    @classmethod
    def from_value(cls, value: Value, where: str) -> "Kind":
        if isinstance(value, Const) and str(value) in (BOOLEAN, DATE, TEXT, ENTRIES, OBJECT):
            return cls(str(value))
        if isinstance(value, tuple):
            head, *args = value
            if head in (KEY, NAME, OPEN_KEY) and len(args) == 1 and isinstance(args[0], Const):
                return cls(head, vocabulary=str(args[0]))
            if head == INTEGER and len(args) == 2 and all(isinstance(a, int) for a in args):
                if not -CLINGO_INT <= args[0] <= args[1] <= CLINGO_INT:
                    raise ValueError(f"{where}: integer(Min, Max) needs Min <= Max within clingo's numbers (|n| <= {CLINGO_INT})")
                return cls(INTEGER, minimum=args[0], maximum=args[1])
            if head == LIST and len(args) == 1:
                item = cls.from_value(args[0], where)
                if item.name in (LIST, ENTRIES, OBJECT, TEXT):
                    raise ValueError(f"{where}: a list holds keys, names, numbers, dates or booleans, not {item.name}")
                return cls(LIST, item=item)
        raise ValueError(f"{where}: unknown kind {value!r}; expected key(V), open_key(V), name(V), integer(Min, Max), boolean, date, text, list(Kind), entries or object")

    @property
    def scalar(self) -> bool:
        return self.name in (KEY, OPEN_KEY, NAME, INTEGER, BOOLEAN, DATE)


@dataclass(frozen=True)
class Field:
    """One input of a case: a top-level field, or a field of the entries of a list."""

    name: str
    kind: Kind
    presence: str  # "required" | "optional" | "default"
    default: Any
    description: str
    atom: Optional[str] = None  # the input predicate (own atom)
    place: Optional[int] = None  # for an entry field: its argument of the list's atom (1-based)
    roles: frozenset[str] = frozenset()
    parent: Optional[str] = None  # the entries list an entry field belongs to
    entry_fields: tuple["Field", ...] = ()

    @property
    def path(self) -> str:
        return f"{self.parent}.{self.name}" if self.parent else self.name

    def entry_field(self, name: str) -> Optional["Field"]:
        return next((f for f in self.entry_fields if f.name == name), None)


@dataclass(frozen=True)
class ArgKind:
    """What one argument of an input predicate holds."""

    field: Field  # the field whose value it is (an entries list for its entry number)
    kind: Kind  # an "index" kind for an entry number
    index: bool = False


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


def describe(value: Any) -> str:
    """How a value is named in a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def field_name(key: Any) -> str:
    """A field name as it may appear in a one-line message: plain, or quoted in brackets."""
    import json

    text = str(key)
    if PLAIN_KEY.match(text):
        return text
    return f"[{json.dumps(text if len(text) <= 60 else text[:57] + '...')}]"


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


class CaseSchema:
    """The inputs of one policy version, as the KB declares them."""

    def __init__(self, fields: Sequence[Field], vocabularies: dict[str, dict[str, str]], nouns: dict[str, str], where: "Mapping[str, str] | Callable[[], Mapping[str, str]]", names: "Optional[Mapping[str, NameIndex]]" = None):
        self.fields = tuple(fields)
        self.by_name = {f.name: f for f in self.fields}
        self.vocabularies = vocabularies
        self.names = dict(names or {})  # vocabulary -> the other names of its keys (key_name/3)
        self.nouns = nouns
        self._where = where
        self._roles = {role: f.name for f in self.fields for role in f.roles}
        self._predicates = self._input_predicates()
        # what validation and atoms do for each field, worked out once (a batch validates millions of cases)
        self._names = [f.name for f in self.fields]
        self._readers = {f.name: self._reader(f) for f in self.fields}
        self._entry_readers = {f.name: [(e, self._reader(e), self._default(e), self._valid_as_given(e.kind)) for e in f.entry_fields] for f in self.fields if f.kind.name == ENTRIES}
        self._entry_names = {f.name: frozenset(e.name for e in f.entry_fields) for f in self.fields if f.kind.name == ENTRIES}
        self._plan = [(f, self._readers[f.name], self._default(f)) for f in self.fields]
        self._placed = {f.name: sorted((e for e in f.entry_fields if e.place is not None), key=lambda e: e.place) for f in self.fields if f.kind.name == ENTRIES}  # type: ignore[arg-type, return-value]
        self._consts: dict[str, Const] = {}
        self._atom_plan = [
            (
                f,
                f.kind,
                [(e.name, e.kind) for e in self._placed[f.name]] if f.name in self._placed else None,
                [(e.name, e.atom, e.kind, e.kind.name == BOOLEAN) for e in f.entry_fields if e.atom is not None],
            )
            for f in self.fields if f.atom is not None
        ]

    # --- reading the declarations ------------------------------------------------

    @classmethod
    def from_kb(cls, kb: "KnowledgeBase") -> "CaseSchema":
        from ..errors import Diagnostic, KbError

        where = kb.display_path(kb.path)
        problems: list[str] = []

        def kind(value: Value, what: str) -> Kind:
            try:
                return Kind.from_value(value, what)
            except ValueError as exc:
                problems.append(str(exc))
                return Kind(TEXT)

        def presence(value: Value, what: str) -> tuple[str, Any]:
            if isinstance(value, Const) and str(value) in ("required", "optional"):
                return str(value), None
            if isinstance(value, tuple) and value[0] == "default" and len(value) == 2:
                return "default", value[1]
            problems.append(f"{what}: unknown presence {value!r}; expected required, optional or default(Value)")
            return "optional", None

        atoms = {str(n): str(p) for n, p in kb.facts("input_atom", 2)}
        roles: dict[str, set[str]] = {}
        for n, r in kb.facts("field_role", 2):
            roles.setdefault(str(n), set()).add(str(r))
        entry_rows: dict[str, list[Field]] = {}
        entry_atoms = {(str(l), str(n)): p for l, n, p in kb.facts("entry_atom", 3)}
        for lst, name, k, p, text in kb.facts("entry_field", 5):
            what = f"entry_field({lst}, {name})"
            pres, default = presence(p, what)
            place = entry_atoms.get((str(lst), str(name)))
            at, own = None, None
            if isinstance(place, tuple) and place[0] == "at" and len(place) == 2 and isinstance(place[1], int):
                at = place[1]
            elif isinstance(place, Const):
                own = str(place)
            else:
                problems.append(f"{what}: no entry_atom/3 says where the field goes (at(I) or a predicate)")
            entry_rows.setdefault(str(lst), []).append(Field(str(name), kind(k, what), pres, _plain(default), str(text), own, at, parent=str(lst)))
        fields: list[Field] = []
        for name, k, p, text in kb.facts("input_field", 4):
            what = f"input_field({name})"
            pres, default = presence(p, what)
            kd = kind(k, what)
            entries = tuple(entry_rows.pop(str(name), ()))
            if kd.name == ENTRIES:
                places = sorted(f.place for f in entries if f.place is not None)
                if places != list(range(1, len(places) + 1)):
                    problems.append(f"{what}: the at(I) places of its entry fields must be 1, 2, ... (found {places})")
                if not entries:
                    problems.append(f"{what}: an entries field needs entry_field/5 declarations")
            fields.append(Field(str(name), kd, pres, _plain(default), str(text), atoms.get(str(name)), roles=frozenset(roles.get(str(name), ())), entry_fields=entries))
        for lst in entry_rows:
            problems.append(f"entry_field({lst}, ...): {lst} is not an entries field")
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            problems.append(f"a case field is declared twice: {sorted(n for n in names if names.count(n) > 1)}")
        # the facts an input could not establish, then the expectations, are written last, after the policy's fields
        fields.sort(key=lambda f: (EXPECTATIONS in f.roles, UNDETERMINED in f.roles))
        vocab = kb.vocabulary
        if problems:
            raise KbError([Diagnostic(where, 0, 0, "error", f"case schema: {p}") for p in problems])
        return cls(fields, vocab.keys, vocab.nouns, partial(_declared_in, kb), vocab.names)

    def _input_predicates(self) -> dict[tuple[str, int], tuple[ArgKind, ...]]:
        out: dict[tuple[str, int], tuple[ArgKind, ...]] = {}
        index = Kind("index", minimum=0, maximum=MAX_LIST_ITEMS - 1)
        for f in self.fields:
            if f.atom is None:
                continue
            k = f.kind
            if k.name == BOOLEAN:
                out[(f.atom, 0)] = ()
            elif k.name == LIST:
                out[(f.atom, 1)] = (ArgKind(f, k.item),)  # type: ignore[arg-type]
            elif k.name == ENTRIES:
                placed = sorted((e for e in f.entry_fields if e.place is not None), key=lambda e: e.place)  # type: ignore[arg-type, return-value]
                out[(f.atom, 1 + len(placed))] = (ArgKind(f, index, True), *[ArgKind(e, e.kind) for e in placed])
                for e in f.entry_fields:
                    if e.atom is not None:
                        out[(e.atom, 1 if e.kind.name == BOOLEAN else 2)] = (ArgKind(f, index, True),) + (() if e.kind.name == BOOLEAN else (ArgKind(e, e.kind),))
            else:
                out[(f.atom, 1)] = (ArgKind(f, k),)
        return out

    @cached_property
    def _case_class(self) -> "type[Case]":
        from .case import Case  # case.py builds on this module: imported once, when first needed

        return Case

    @cached_property
    def _entry_class(self) -> type:
        from .case import Entry

        return Entry

    @property
    def where(self) -> Mapping[str, str]:
        """For each vocabulary, the file that declares its keys (for messages; found on first use, it walks the KB)."""
        if callable(self._where):
            self._where = self._where()
        return self._where

    # --- what the rest of the package asks ----------------------------------------

    def role(self, role: str) -> Optional[str]:
        """The name of the field that plays a role (format_version, case_id, ...), if any."""
        return self._roles.get(role)

    @property
    def input_predicates(self) -> dict[tuple[str, int], tuple[ArgKind, ...]]:
        """Every input predicate, with what each of its arguments holds."""
        return self._predicates

    def input_signatures(self) -> set[tuple[str, int]]:
        return set(self._predicates)

    def defined_text(self) -> str:
        """``#defined`` for every input predicate: a case may leave any of them out."""
        return "\n".join(f"#defined {n}/{a}." for n, a in sorted(self._predicates))

    def list_fields(self) -> list[Field]:
        return [f for f in self.fields if f.kind.name in (LIST, ENTRIES)]

    def scalar_fields(self) -> list[Field]:
        return [f for f in self.fields if f.kind.name not in (LIST, ENTRIES)]

    def field_of_atom(self, predicate: str) -> Optional[Field]:
        """The top-level field whose facts use this predicate (an entries list for its entry atoms)."""
        for (name, _), args in self._predicates.items():
            if name == predicate:
                return args[0].field if args else self._bool_field(name)
        return None

    def _bool_field(self, predicate: str) -> Optional[Field]:
        return next((f for f in self.fields if f.atom == predicate), None)

    def noun(self, vocabulary: str) -> str:
        return self.nouns.get(vocabulary, f"a {vocabulary}")

    def value_label(self, kind: Kind, value: Any) -> str:
        """The words for a value: a key's label, a boolean's word, a number or a name as written."""
        if kind.name in KEYED and kind.vocabulary:
            return self.vocabularies.get(kind.vocabulary, {}).get(str(value), str(value))
        if kind.name == LIST and kind.item is not None:
            return self.value_label(kind.item, value)
        return str(value)

    # --- validation -----------------------------------------------------------------

    def validate(self, data: Any, source: str) -> "Case":
        """A validated, normalized Case, or CaseError listing every problem found."""
        problems = Problems(source)
        values = self._top(data, problems)
        problems.raise_any()
        expect_field = self.role(EXPECTATIONS)
        expect = values.pop(expect_field, None) if expect_field else None
        return self._case_class._bound(self, values, expect, source)

    def _top(self, data: Any, problems: Problems) -> dict[str, Any]:
        if type(data) is not dict and not isinstance(data, Mapping):
            problems.add("", f"expected a JSON object (a case), got {describe(data)}")
            return {}
        names = self._names
        by_name = self.by_name
        for k in data:
            if k not in by_name:
                hint = did_you_mean(str(k), names) if len(str(k)) <= 60 else ""
                problems.add(_join("", k), f"unknown field{hint}; expected one of {', '.join(names)}")
        values: dict[str, Any] = {}
        get = data.get
        absent: list[Field] = []
        for f, read, default in self._plan:
            raw = get(f.name)
            if raw is None:
                if f.presence == "required":
                    absent.append(f)
                    continue
                values[f.name] = default
                continue
            values[f.name] = read(raw, f.name, problems)
        if absent:
            unsettled = self._undetermined_fields(values)
            for f in absent:
                if f.name in unsettled:  # a required field may be left out when the case says it is undetermined
                    values[f.name] = None
                else:
                    problems.add(f.name, "missing required field" if f.name not in data else f"expected {self._expected(f)}, got null")
        return values

    def _undetermined_fields(self, values: Mapping[str, Any]) -> set[str]:
        """The fields the case's own list of undetermined facts names (the field of role ``undetermined``)."""
        name = self.role(UNDETERMINED)
        spec = self.by_name.get(name or "")
        if spec is None or spec.kind.name != ENTRIES:
            return set()
        keyed = [e.name for e in spec.entry_fields if e.kind.name == KEY][:1]
        return {str(entry[k]) for entry in values.get(spec.name) or () for k in keyed}

    def _default(self, f: Field) -> Any:
        if f.kind.name in (LIST, ENTRIES):
            return ()
        if f.presence == "default":
            if f.kind.name == BOOLEAN:
                return f.default in (True, "true")
            return f.default
        return None

    def _expected(self, f: Field) -> str:
        k = f.kind
        if k.name == KEY:
            return f"{self.noun(k.vocabulary or '')} key"
        if k.name == OPEN_KEY:
            return f"{self.noun(k.vocabulary or '')} key or name"
        return k.name

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
        if k.name == BOOLEAN:
            return self._boolean
        if k.name == DATE:
            return self._date
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
        bound = self._entry_class._bound
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
        from .case import Entry

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
            from .case import Entry

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
                    problems.add(f"{path}.{e.name}", "missing required field" if e.name not in raw else f"expected {self._expected(e)}, got null")
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

    def _date(self, raw: Any, path: str, problems: Problems) -> Optional[str]:
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

    # --- atoms ------------------------------------------------------------------

    def atoms(self, values: Mapping[str, Any]) -> list[tuple]:
        """The input atoms ``(predicate, *arguments)`` of a validated case, in a stable order."""
        out: list[tuple] = []
        term = self._term
        get = values.get
        for f, k, placed, extra in self._atom_plan:
            value = get(f.name)
            if placed is not None:
                atom = f.atom
                for i, entry in enumerate(value or ()):
                    given_values = getattr(entry, "_values", entry)  # an Entry's values (or a plain mapping)
                    out.append((atom, i, *[term(kind, given_values.get(name)) for name, kind in placed]))
                    for name, extra_atom, kind, boolean in extra:
                        given = given_values.get(name)
                        if given is None:
                            continue
                        if boolean:
                            if given:
                                out.append((extra_atom, i))
                        else:
                            out.append((extra_atom, i, term(kind, given)))
            elif k.name == LIST:
                if value:
                    out.extend([(f.atom, term(k.item, v)) for v in value])
            elif k.name == BOOLEAN:
                if value:
                    out.append((f.atom,))
            elif value is not None:
                out.append((f.atom, term(k, value)))
        return out

    def _term(self, kind: Optional[Kind], value: Any) -> Any:
        """A validated value as the term of an input atom: a key a constant, any other name a string."""
        if kind is not None and kind.name in KEYED:
            if kind.name == OPEN_KEY and value not in self.vocabularies.get(kind.vocabulary or "", {}):
                return value
            const = self._consts.get(value)
            if const is None:
                const = Const(value)
                if len(self._consts) < 100_000:
                    self._consts[value] = const
            return const
        return _term(kind, value)

    def data_from_atoms(self, atoms: Iterable[tuple[tuple, str]], source: str) -> tuple[dict, dict[str, str]]:
        """Input atoms, each with where it was written, as a case dict (not yet validated).

        Returns the dict and, for each field path it fills, where that was
        written (so that a validation error can name the line). Entries are
        ordered by their number (an integer) or else by where they first
        appear; two different entries under one number, a field of an entry
        that no list atom declares, or one field given two different values,
        are errors at the place they were written.
        """
        data: dict[str, Any] = {}
        places: dict[str, str] = {}
        entries: dict[str, dict[Any, dict]] = {}
        entry_places: dict[tuple, str] = {}
        for atom, where in atoms:
            name, args = atom[0], [_plain(a) for a in atom[1:]]
            spec = self._predicates.get((name, len(args)))
            if spec is None:
                known = ", ".join(f"{n}/{a}" for n, a in sorted(self._predicates))
                raise CaseError(where, "", f"unknown case fact {name}/{len(args)}; expected one of {known}")
            if not spec:  # a boolean field
                f = self._bool_field(name)
                data[f.name] = True  # type: ignore[union-attr]
                places.setdefault(f.name, where)  # type: ignore[union-attr]
                continue
            first = spec[0]
            if not first.index:
                f = first.field
                if f.kind.name == LIST:
                    places[f"{f.name}[{len(data.get(f.name, []))}]"] = where
                    data.setdefault(f.name, []).append(args[0])
                else:
                    if f.name in data and data[f.name] != args[0]:
                        raise CaseError(where, f.name, f"given twice ({data[f.name]} and {args[0]}, the first at {places[f.name]}); a case has one {f.name}")
                    data[f.name] = args[0]
                    places.setdefault(f.name, where)
                continue
            lst = first.field
            number = args[0]
            if isinstance(number, bool) or (isinstance(number, int) and number < 0):
                raise CaseError(where, "", f"an entry number must be a whole number from 0, got {number!r}")
            entry = entries.setdefault(lst.name, {}).setdefault(number, {})
            if name == lst.atom:
                placed = sorted((e for e in lst.entry_fields if e.place is not None), key=lambda e: e.place)  # type: ignore[arg-type, return-value]
                given = {e.name: v for e, v in zip(placed, args[1:])}
                if (lst.name, number) in entry_places:
                    raise CaseError(where, "", f"two entries of {lst.name} numbered {number!r} (first written at {entry_places[(lst.name, number)]}); each entry needs its own number")
                entry_places[(lst.name, number)] = where
                entry.update(given)
            else:
                e = next(x for x in lst.entry_fields if x.atom == name)
                value = True if e.kind.name == BOOLEAN else args[1]
                if e.name in entry and entry[e.name] != value:
                    raise CaseError(where, "", f"{lst.name} entry {number!r} has two values for {e.name} ({entry[e.name]!r} and {value!r})")
                entry[e.name] = value
                entry_places.setdefault((lst.name, number, e.name), where)
        for lst_name, numbered in entries.items():
            lst = self.by_name[lst_name]
            order = sorted(numbered, key=lambda n: (not isinstance(n, int), n if isinstance(n, int) else 0))
            for i, number in enumerate(order):
                if (lst_name, number) not in entry_places:
                    sub = next(w for k, w in entry_places.items() if k[:2] == (lst_name, number))
                    raise CaseError(sub, "", f"a field of {lst.name} entry {number!r} is given, but no {lst.atom} fact declares that entry")
                places[f"{lst_name}[{i}]"] = entry_places[(lst_name, number)]
                for e in lst.entry_fields:
                    w = entry_places.get((lst_name, number, e.name))
                    places[f"{lst_name}[{i}].{e.name}"] = w or entry_places[(lst_name, number)]
            data[lst_name] = [numbered[n] for n in order]
        return data, places

    # --- JSON Schema ------------------------------------------------------------

    def json_schema(self, title: str, schema_id: str, objects: Optional[Mapping[str, dict]] = None) -> dict:
        """The case format as a JSON Schema (draft 2020-12), descriptions from the KB.

        ``objects`` gives the schema of an ``object`` field (by field name),
        which the case schema itself leaves open; optional fields also accept
        null, which the validator reads as "not given".
        """
        objects = objects or {}
        return {
            "$schema": JSON_SCHEMA_DRAFT,
            "$id": schema_id,
            "title": title,
            "type": "object",
            "properties": {f.name: self.json_field(f, objects.get(f.name)) for f in self.fields},
            "required": [f.name for f in self.fields if f.presence == "required"],
            "additionalProperties": False,
            "$defs": self.json_key_defs(),
        }

    def json_key_defs(self) -> dict:
        """The keys of every vocabulary a field takes, once each: ``#/$defs/<vocabulary>_key``."""
        used: list[str] = []
        for f in self.fields:
            for k in (f.kind, f.kind.item, *(e.kind for e in f.entry_fields)):
                if k is not None and k.name in KEYED and k.vocabulary and k.vocabulary not in used:
                    used.append(k.vocabulary)
        return {f"{v}_key": {"type": "string", "enum": list(self.vocabularies.get(v, {})), "description": self.noun(v)} for v in used}

    def json_field(self, f: Field, object_schema: Optional[dict] = None) -> dict:
        """One field as a JSON Schema: its kind, null when it may be left out, its default and description."""
        out = self.json_value(f, object_schema)
        if f.presence != "required":
            out = {"anyOf": [out, {"type": "null"}]}
            if f.presence == "default" and f.default is not None:
                out["default"] = self._default(f)
        out["description"] = f.description
        return out

    def json_value(self, f: Field, object_schema: Optional[dict] = None) -> dict:
        """What a given (not null) value of a field must be."""
        k = f.kind
        if FORMAT_VERSION in f.roles:
            return {"type": "integer", "const": k.maximum}
        if k.name == LIST:
            return {"type": "array", "items": self.json_kind(k.item), "maxItems": MAX_LIST_ITEMS}  # type: ignore[arg-type]
        if k.name == ENTRIES:
            return {"type": "array", "items": self.json_entry(f), "maxItems": MAX_LIST_ITEMS}
        if k.name == OBJECT:
            return dict(object_schema) if object_schema is not None else {"type": "object"}
        return self.json_kind(k)

    def json_entry(self, f: Field, partial: bool = False) -> dict:
        """An entry of an entries list (``partial``: any of its fields, as a removal pattern gives them)."""
        return {
            "type": "object",
            "properties": {e.name: self.json_field(e) for e in f.entry_fields},
            "required": [] if partial else [e.name for e in f.entry_fields if e.presence == "required"],
            "additionalProperties": False,
        }

    def json_kind(self, k: Kind) -> dict:
        """A value of a scalar kind, with the limits the validator applies."""
        if k.name == KEY:
            return {"$ref": f"#/$defs/{k.vocabulary}_key"}
        if k.name == OPEN_KEY:  # a key, or any other name of the open vocabulary
            return {"anyOf": [{"$ref": f"#/$defs/{k.vocabulary}_key"}, {"type": "string", "pattern": _anchored(OPEN_NAME)}]}
        if k.name == NAME:
            return {"type": "string", "pattern": _anchored(NAME_PATTERN)}
        if k.name == INTEGER:
            return {"type": "integer", "minimum": k.minimum, "maximum": k.maximum}
        if k.name == BOOLEAN:
            return {"type": "boolean"}
        if k.name == DATE:
            return {"type": "string", "format": "date", "pattern": _anchored(DATE_PATTERN)}
        return {"type": "string", "maxLength": MAX_TEXT, "pattern": "^[^\\u0000]*$"}


_PLAIN_ITEMS = frozenset({dict, list, str, int, float, bool, type(None)})
"""The types of decoded JSON: a list of only these holds no Entry object to convert."""


def _anchored(pattern: "re.Pattern[str]") -> str:
    """A validator's regular expression (ending in \\Z) as a JSON Schema pattern (^...$)."""
    text = pattern.pattern
    return "^" + (text[:-2] if text.endswith("\\Z") else text) + "$"


def _normal(text: str) -> str:
    """A name as compared with keys: lower case letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of two strings, or ``limit + 1`` once it is known to exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


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


def _plain(value: Any) -> Any:
    """A decoded clingo value as case data: constants as plain strings."""
    if isinstance(value, Const):
        text = str(value)
        return {"true": True, "false": False}.get(text, text)
    return value


def _term(kind: Optional[Kind], value: Any) -> Any:
    """A validated value as the term of an input atom."""
    if kind is None:
        return value
    if kind.name == KEY:
        return Const(value)
    if kind.name == DATE:
        return int(str(value).replace("-", ""))
    return value


def _declared_in(kb: "KnowledgeBase") -> dict[str, str]:
    """For each vocabulary, the file whose facts declare its keys (for messages)."""
    out: dict[str, str] = {}
    vocabularies = {str(v) for v, _ in kb.facts("vocabulary", 2)}
    for s in kb.statements:
        node = s.node
        if s.part != "base" or node.ast_type.name != "Rule" or node.body:
            continue
        head = node.head
        if head.ast_type.name != "Literal" or head.atom.ast_type.name != "SymbolicAtom":
            continue
        symbol = head.atom.symbol
        name = getattr(symbol, "name", None)
        if name in vocabularies and len(getattr(symbol, "arguments", ())) == 2:
            out.setdefault(name, s.file)
    return out
