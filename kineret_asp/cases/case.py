"""A patient case as a value: its fields by the names the KB gives them, and its entries.

:class:`Case` holds a validated case's fields (``case.indication``,
``case.medication_history``) and writes them back as JSON or as the KB's
input atoms; a Case built in Python (``Case(indication="sjia")``) is
validated when it is used. Reading a case from anywhere is
:mod:`kineret_asp.cases.load`'s job, validating it
:mod:`kineret_asp.cases.validation`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional

from ..errors import CaseError
from .atoms import case_atoms

if TYPE_CHECKING:  # pragma: no cover
    from ..knowledge.schema import CaseSchema, Field

FORMAT_VERSION = 1


class Entry:
    """One entry of a list of objects (a medication-history entry, a genetic test).

    Built in Python either by field (``Entry(drug="enbrel", outcome="failure")``)
    or by position, in the order the KB declares the entry's fields.
    """

    __slots__ = ("_values", "_args", "_field", "_ordered")

    def __init__(self, *args: Any, **fields: Any):
        object.__setattr__(self, "_values", dict(fields))
        object.__setattr__(self, "_args", tuple(args))
        object.__setattr__(self, "_field", None)
        object.__setattr__(self, "_ordered", None)

    @classmethod
    def _bound(cls, list_field: "Field", values: dict[str, Any]) -> "Entry":
        """An entry of a validated list: its values (a dict of its own, kept as it is) and the list's field."""
        entry = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(entry, "_values", values)
        setattr_(entry, "_args", ())
        setattr_(entry, "_field", list_field)
        setattr_(entry, "_ordered", None)
        return entry

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        if name.startswith("_"):
            raise AttributeError(name)
        return None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("an Entry cannot be changed; build a new one")

    def __getitem__(self, name: str) -> Any:
        return self._values.get(name)

    def as_dict(self, names: list[str]) -> dict[str, Any]:
        """The entry's fields by name, positional values taking the given names in order."""
        out = dict(zip(names, self._args))
        out.update(self._values)
        return out

    def ordered(self) -> tuple:
        """The entry's values as a tuple (in the order the KB declares its fields, for an entry of a validated list); made once."""
        found = self._ordered
        if found is None:
            if self._field is not None:
                get = self._values.get
                found = tuple([get(e.name) for e in self._field.entry_fields])
            elif self._args and not self._values:
                found = self._args
            else:
                found = tuple(sorted(self._values.items()))
            object.__setattr__(self, "_ordered", found)
        return found

    def to_dict(self) -> dict[str, Any]:
        """The entry in the JSON format (fields in the KB's order)."""
        if self._field is None:
            return dict(self._values) if self._values or not self._args else {"": list(self._args)}
        return _written(self._field.entry_fields, self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        if self._field is not None and other._field is not None:
            return self._values == other._values
        if self._args or other._args:
            a, b = self.ordered(), other.ordered()
            n = min(len(a), len(b))
            return a[:n] == b[:n] and all(x in (None, False) for x in a[n:] + b[n:])
        return self._values == other._values

    def __hash__(self) -> int:
        return hash(self.ordered())

    def __repr__(self) -> str:
        inner = ", ".join([*map(repr, self._args), *(f"{k}={v!r}" for k, v in self._values.items())])
        return f"Entry({inner})"


# the names the package has always exported for entries
MedicationEntry = Entry
GeneticTest = Entry


def _written(fields: "tuple[Field, ...]", values: Mapping[str, Any]) -> dict[str, Any]:
    """Field values as JSON, in declaration order: defaults and lists always, others when given."""
    out: dict[str, Any] = {}
    for f in fields:
        value = values.get(f.name)
        if f.kind.name in ("list", "entries"):
            out[f.name] = [v.to_dict() if isinstance(v, Entry) else v for v in value or ()]
        elif f.presence == "optional" and value is None:
            continue
        else:
            out[f.name] = value
    return out


class Case:
    """A patient case: its fields by the names the KB declares.

    A Case from :func:`load_case` is validated and knows its schema (every
    declared field is there, defaults filled in). A Case built in Python is
    validated when it is used, like any other input.
    """

    __slots__ = ("_values", "_schema", "expect", "source")

    def __init__(self, source: str = "<case>", **fields: Any):
        object.__setattr__(self, "_values", dict(fields))
        object.__setattr__(self, "_schema", None)
        object.__setattr__(self, "expect", None)
        object.__setattr__(self, "source", source)

    @classmethod
    def _bound(cls, schema: "CaseSchema", values: dict[str, Any], expect: Optional[Mapping[str, Any]], source: str) -> "Case":
        """A validated case: its values (a dict of its own, kept as it is), its schema, what it expects, where it came from."""
        case = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(case, "_values", values)
        setattr_(case, "_schema", schema)
        setattr_(case, "expect", dict(expect) if expect is not None else None)
        setattr_(case, "source", source)
        return case

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"a case has no field {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Case cannot be changed; use what_if, or build a new one")

    @property
    def bound(self) -> bool:
        return self._schema is not None

    @property
    def schema(self) -> "Optional[CaseSchema]":
        return self._schema

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def fields(self) -> Iterator[tuple[str, Any]]:
        return iter(self._values.items())

    @property
    def id(self) -> Optional[str]:  # noqa: A003 - the case format's own word
        """The case's identifier (the field whose role is case_id), when it has one."""
        schema = self._schema
        name = schema.role("case_id") if schema is not None else None
        return self._values.get(name) if name else None

    def to_dict(self, with_expect: bool = False) -> dict:
        """The case in the JSON format, fields in the KB's order."""
        schema = self._schema
        if schema is None:
            return {k: ([x.to_dict() if isinstance(x, Entry) else x for x in v] if isinstance(v, (list, tuple)) else v) for k, v in self._values.items()}
        out = _written(tuple(f for f in schema.fields if f.name in self._values), self._values)
        name = schema.role("expectations")
        if with_expect and name and self.expect is not None:
            out[name] = dict(self.expect)
        return out

    def atoms(self) -> list[tuple]:
        """The case as input atoms of the KB (``(predicate, *arguments)``)."""
        if self._schema is None:
            raise CaseError(self.source, "", "this case has not been validated: pass it to load_case, evaluate or what_if")
        return case_atoms(self._schema, self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Case):
            return NotImplemented
        return self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, _frozen(v)) for k, v in self._values.items())))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items() if v not in (None, ()))
        return f"Case({inner})"


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value
