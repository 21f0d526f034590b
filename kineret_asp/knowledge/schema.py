"""The case schema as the KB declares it: fields, kinds, presence, roles, entry fields and defaults.

A policy version declares its inputs in the KB (``input_field/4``,
``input_atom/2``, ``entry_field/5``, ``entry_atom/3``; the
framework declares the fields every case has, and what each kind means:
``kb/framework/case_format.lp``; a library the version includes declares the
common ones, which the version may describe in its own words:
``input_description/2``, ``entry_description/3``). :class:`CaseSchema` reads those facts
for every other module: the fields, their kinds, presence and roles, the
entry fields of lists, the defaults, and the input predicates with the kind
of each argument (for the engines, ``check``, ``verify`` and ``diff``).
Validation is :mod:`kineret_asp.cases.validation`, a case's atoms
:mod:`kineret_asp.cases.atoms`, the JSON Schema
:mod:`kineret_asp.author.json_schemas`.

No field name, vocabulary or key is written in Python: they all come from
the KB.
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

from ..asp.symbols import Const, Value
from ..knowledge.names import NameIndex

if TYPE_CHECKING:  # pragma: no cover
    from ..knowledge.base import KnowledgeBase

MAX_LIST_ITEMS = 1000
MAX_TEXT = 1000
MAX_NAME_TEXT = 200  # longer text is never read as a name of a key
CLINGO_INT = 2**31 - 1
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
DATE_PATTERN = re.compile(r"(\d{4})-(\d{2})-(\d{2})\Z")
PLAIN_KEY = re.compile(r"[A-Za-z0-9_]{1,60}\Z")
OPEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ./+&_-]{0,79}\Z")
OPEN_NAME_WORDS = "letters, digits, spaces and . / + & _ -, at most 80 characters"

# the kinds of framework/case_format.lp
KEY, NAME, INTEGER, BOOLEAN, DATE, TEXT, LIST, ENTRIES, OBJECT = "key", "name", "integer", "boolean", "date", "text", "list", "entries", "object"
OPEN_KEY = "open_key"
DECIMAL = "decimal"  # decimal(Unit, Places): a number in a declared unit, kept to so many decimal places
MAX_PLACES = 6
UNIT_VOCABULARY = "unit"  # the framework's vocabulary of units: unit(Key, "UCUM code")
KEYED = (KEY, OPEN_KEY)  # kinds whose values are (or may be) keys of a vocabulary
# the roles of field_role/2 that the program itself reads
FORMAT_VERSION, CASE_ID, EXPECTATIONS, DATE_OF_SERVICE, POLICY_SELECTOR = "format_version", "case_id", "expectations", "date_of_service", "policy_selector"
REQUESTED_DRUG = "requested_drug"  # the role of the field naming the drug a request asks for
UNDETERMINED = "undetermined"  # the role of the field listing the facts an input could not establish


@dataclass(frozen=True)
class Kind:
    """What values a field takes (framework/case_format.lp)."""

    name: str
    vocabulary: Optional[str] = None
    minimum: Optional[int] = None
    maximum: Optional[int] = None
    item: Optional["Kind"] = None
    unit: Optional[str] = None  # decimal: the unit's key (unit/2), the one the rules read the value in
    places: int = 0  # decimal: the decimal places kept; the rules read the value times 10**places

    def scaled(self, value: Any) -> int:
        """A decimal value as the whole number the rules read (the value times 10**places)."""
        return int(decimal_of(value).scaleb(self.places).to_integral_value())

    def unscaled(self, number: int) -> Any:
        """The whole number the rules read back as the decimal value of the case."""
        return plain_number(decimal.Decimal(number).scaleb(-self.places))

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
            if head == DECIMAL and len(args) == 2 and isinstance(args[0], Const) and isinstance(args[1], int):
                if not 0 <= args[1] <= MAX_PLACES:
                    raise ValueError(f"{where}: decimal(Unit, Places) keeps 0 to {MAX_PLACES} decimal places")
                return cls(DECIMAL, unit=str(args[0]), places=args[1])
            if head == LIST and len(args) == 1:
                item = cls.from_value(args[0], where)
                if item.name in (LIST, ENTRIES, OBJECT, TEXT):
                    raise ValueError(f"{where}: a list holds keys, names, numbers, dates or booleans, not {item.name}")
                return cls(LIST, item=item)
        raise ValueError(f"{where}: unknown kind {value!r}; expected key(V), open_key(V), name(V), integer(Min, Max), decimal(Unit, Places), boolean, date, text, list(Kind), entries or object")

    @property
    def scalar(self) -> bool:
        return self.name in (KEY, OPEN_KEY, NAME, INTEGER, DECIMAL, BOOLEAN, DATE)


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


class CaseSchema:
    """The inputs of one policy version, as the KB declares them."""

    def __init__(
        self,
        fields: Sequence[Field],
        vocabularies: dict[str, dict[str, str]],
        nouns: dict[str, str],
        where: "Mapping[str, str] | Callable[[], Mapping[str, str]]",
        names: "Optional[Mapping[str, NameIndex]]" = None,
    ):
        self.fields = tuple(fields)
        self.by_name = {f.name: f for f in self.fields}
        self.vocabularies = vocabularies
        self.names = dict(names or {})  # vocabulary -> the other names of its keys (key_name/3)
        self.conversions: dict[tuple[str, str], decimal.Decimal] = {}  # (from unit, to unit) -> factor (unit_conversion/3)
        self.nouns = nouns
        self._where = where
        self._roles = {role: f.name for f in self.fields for role in f.roles}
        self._predicates = self._input_predicates()
        self._derived: dict[str, Any] = {}

    def unit_key(self, text: Any) -> Optional[str]:
        """The unit a value names: its key (unit/2), or its UCUM code (the unit's label), without regard to case."""
        units = self.vocabularies.get(UNIT_VOCABULARY, {})
        if not isinstance(text, str):
            return None
        if text in units:
            return text
        lowered = {label.lower(): key for key, label in units.items()}
        return lowered.get(text.strip().lower())

    def conversion_factor(self, unit: Optional[str], to: Optional[str]) -> Optional[decimal.Decimal]:
        """What a value in unit is multiplied by to be in to (unit_conversion/3, either way), or None when none is declared."""
        if unit is None or to is None:
            return None
        if unit == to:
            return decimal.Decimal(1)
        if (unit, to) in self.conversions:
            return self.conversions[(unit, to)]
        if (to, unit) in self.conversions:
            return 1 / self.conversions[(to, unit)]
        return None

    def derived(self, key: str, make: Callable[[], Any]) -> Any:
        """A value derived from this schema once and kept with it (a validator, an atom writer).

        The layers above keep what they derive from a schema here, as they
        keep what they derive from a KB with :meth:`KnowledgeBase.derived`:
        it lives exactly as long as the schema does.
        """
        try:
            return self._derived[key]
        except KeyError:
            value = self._derived[key] = make()
            return value

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
        # a version's own words for a field a library declares: input_description/2, entry_description/3
        described = {str(n): str(t) for n, t in kb.facts("input_description", 2)}
        entry_described = {(str(l), str(n)): str(t) for l, n, t in kb.facts("entry_description", 3)}
        for lst, name, k, p, text in kb.facts("entry_field", 5):
            what = f"entry_field({lst}, {name})"
            pres, default = presence(p, what)
            text = entry_described.pop((str(lst), str(name)), text)
            place = entry_atoms.get((str(lst), str(name)))
            at, own = None, None
            if isinstance(place, tuple) and place[0] == "at" and len(place) == 2 and isinstance(place[1], int):
                at = place[1]
            elif isinstance(place, Const):
                own = str(place)
            else:
                problems.append(f"{what}: no entry_atom/3 says where the field goes (at(I) or a predicate)")
            entry_rows.setdefault(str(lst), []).append(Field(str(name), kind(k, what), pres, plain_value(default), str(text), own, at, parent=str(lst)))
        fields: list[Field] = []
        for name, k, p, text in kb.facts("input_field", 4):
            what = f"input_field({name})"
            pres, default = presence(p, what)
            text = described.pop(str(name), text)
            kd = kind(k, what)
            entries = tuple(entry_rows.pop(str(name), ()))
            if kd.name == ENTRIES:
                places = sorted(f.place for f in entries if f.place is not None)
                if places != list(range(1, len(places) + 1)):
                    problems.append(f"{what}: the at(I) places of its entry fields must be 1, 2, ... (found {places})")
                if not entries:
                    problems.append(f"{what}: an entries field needs entry_field/5 declarations")
            fields.append(Field(str(name), kd, pres, plain_value(default), str(text), atoms.get(str(name)), roles=frozenset(roles.get(str(name), ())), entry_fields=entries))
        for lst in entry_rows:
            problems.append(f"entry_field({lst}, ...): {lst} is not an entries field")
        for name in described:
            problems.append(f"input_description({name}, ...): no input_field/4 declares a field {name}")
        for lst, name in entry_described:
            problems.append(f"entry_description({lst}, {name}, ...): no entry_field/5 declares a field {name} of {lst}")
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            problems.append(f"a case field is declared twice: {sorted(n for n in names if names.count(n) > 1)}")
        # the facts an input could not establish, then the expectations, are written last, after the policy's fields
        fields.sort(key=lambda f: (EXPECTATIONS in f.roles, UNDETERMINED in f.roles))
        vocab = kb.vocabulary
        if problems:
            raise KbError([Diagnostic(where, 0, 0, "error", f"case schema: {p}") for p in problems])
        made = cls(fields, vocab.keys, vocab.nouns, partial(_declared_in, kb), vocab.names)
        for a, b, factor in kb.facts("unit_conversion", 3):
            try:
                made.conversions[(str(a), str(b))] = decimal.Decimal(str(factor))
            except decimal.InvalidOperation:
                raise KbError([Diagnostic(where, 0, 0, "error", f"case schema: unit_conversion({a}, {b}, {factor!r}): the factor must be a decimal number in a string")]) from None
        return made

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
                return args[0].field if args else self.bool_field(name)
        return None

    def noun(self, vocabulary: str) -> str:
        return self.nouns.get(vocabulary, f"a {vocabulary}")

    def default(self, f: Field) -> Any:
        """The value a field takes when a case leaves it out."""
        if f.kind.name in (LIST, ENTRIES):
            return ()
        if f.presence == "default":
            if f.kind.name == BOOLEAN:
                return f.default in (True, "true")
            return f.default
        return None

    def expected(self, f: Field) -> str:
        """What a field's value must be, in a message's words."""
        k = f.kind
        if k.name == KEY:
            return f"{self.noun(k.vocabulary or '')} key"
        if k.name == OPEN_KEY:
            return f"{self.noun(k.vocabulary or '')} key or name"
        return k.name

    def bool_field(self, predicate: str) -> Optional[Field]:
        """The boolean field whose atom is this predicate."""
        return next((f for f in self.fields if f.atom == predicate), None)

    def value_label(self, kind: Kind, value: Any) -> str:
        """The words for a value: a key's label, a boolean's word, a number or a name as written."""
        if kind.name in KEYED and kind.vocabulary:
            return self.vocabularies.get(kind.vocabulary, {}).get(str(value), str(value))
        if kind.name == LIST and kind.item is not None:
            return self.value_label(kind.item, value)
        if kind.name == DECIMAL:  # a case's value in its unit: "9.5 mg/L"
            return f"{value} {self.vocabularies.get(UNIT_VOCABULARY, {}).get(kind.unit or '', kind.unit)}"
        return str(value)


def decimal_of(value: Any) -> decimal.Decimal:
    """A number of a case as an exact decimal (a float by its shortest repr: 9.5 is 9.5)."""
    return decimal.Decimal(repr(value)) if isinstance(value, float) else decimal.Decimal(value)


def plain_number(value: decimal.Decimal) -> Any:
    """An exact decimal as a JSON number: a whole number as an int, else the float that prints as it."""
    return int(value) if value == value.to_integral_value() else float(value)


def plain_value(value: Any) -> Any:
    """A decoded clingo value as case data: constants as plain strings."""
    if isinstance(value, Const):
        text = str(value)
        return {"true": True, "false": False}.get(text, text)
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
