"""Patient cases: reading them (JSON, ``.lp`` facts, dicts, objects) and writing them back.

Every way a case arrives ends in :meth:`CaseSchema.validate
<kineret_asp.cases.schema.CaseSchema.validate>`, built from the KB's own
declarations, so all of them get the same checks and the same messages, and
nothing a user gives is dropped: an unknown field is an error, not ignored.

:class:`Case` holds a validated case's fields by the names the KB gives
them (``case.indication``, ``case.medication_history``); a Case built in
Python (``Case(indication="sjia")``) is validated when it is used.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Union

from .caps import MAX_CASE_BYTES, MAX_JSON_VALUES, read_capped, too_many_values
from ..errors import CaseError
from ..knowledge.base import KnowledgeBase
from .schema import MAX_LIST_ITEMS, CaseSchema, Field, field_name  # noqa: F401 - re-exported

MAX_FILE_BYTES = MAX_CASE_BYTES
FORMAT_VERSION = 1


class Entry:
    """One entry of a list of objects (a medication-history entry, a genetic test).

    Built in Python either by field (``Entry(drug="enbrel", outcome="failure")``)
    or by position, in the order the KB declares the entry's fields.
    """

    __slots__ = ("_values", "_args", "_field")

    def __init__(self, *args: Any, **fields: Any):
        object.__setattr__(self, "_values", dict(fields))
        object.__setattr__(self, "_args", tuple(args))
        object.__setattr__(self, "_field", None)

    @classmethod
    def _bound(cls, list_field: Field, values: dict[str, Any]) -> "Entry":
        entry = cls(**values)
        object.__setattr__(entry, "_field", list_field)
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
        if self._field is not None:
            return tuple(self._values.get(e.name) for e in self._field.entry_fields)
        if self._args and not self._values:
            return self._args
        return tuple(sorted(self._values.items()))

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


def _written(fields: tuple[Field, ...], values: Mapping[str, Any]) -> dict[str, Any]:
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

    __slots__ = ("_values", "_schema", "_chosen", "expect", "source")

    def __init__(self, source: str = "<case>", **fields: Any):
        object.__setattr__(self, "_values", dict(fields))
        object.__setattr__(self, "_schema", None)
        object.__setattr__(self, "_chosen", None)  # the version chosen for it (a versions.Choice), once loaded
        object.__setattr__(self, "expect", None)
        object.__setattr__(self, "source", source)

    @classmethod
    def _bound(cls, schema: CaseSchema, values: dict[str, Any], expect: Optional[Mapping[str, Any]], source: str) -> "Case":
        case = cls(source, **values)
        object.__setattr__(case, "_schema", schema)
        object.__setattr__(case, "expect", dict(expect) if expect is not None else None)
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
    def schema(self) -> Optional[CaseSchema]:
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
        return self._schema.atoms(self._values)

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


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def parse_json_text(text: Union[str, bytes], source: str) -> Any:
    """Decode JSON, turning every failure into a one-line CaseError."""
    if too_many_values(text):  # counted before json.loads builds them
        raise CaseError(source, "", f"too many values (a case holds at most {MAX_JSON_VALUES:,} JSON values; a list at most {MAX_LIST_ITEMS:,} entries)")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CaseError(source, "", f"not UTF-8 text (byte {exc.start}): expected a JSON case") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise CaseError(source, "", "empty input: expected a JSON object (a case)")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise CaseError(source, "", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise CaseError(source, "", f"invalid JSON: {exc}") from None
    except RecursionError:
        raise CaseError(source, "", "invalid JSON: nested too deeply") from None


def parse_case(data: Any, source: str = "<dict>", kb: "KnowledgeBase | Path | str | None" = None) -> Case:
    """Validate a decoded case (a dict) against the schema of the version that decides it.

    With a KB tree (or None, the packaged KB) the version is chosen by the
    case's date of service (:mod:`kineret_asp.cases.versions`); a KnowledgeBase or
    a version folder is used as it is.
    """
    if not isinstance(kb, KnowledgeBase):
        from .versions import Chooser

        chooser = Chooser.of(kb)
        choice = chooser.choose(data, source)
        return _chosen(_validate(data, source, choice.kb), choice)
    return _validate(data, source, kb)


def _validate(data: Any, source: str, kb: KnowledgeBase) -> Case:
    schema = kb.schema
    try:
        return schema.validate(data, source)
    except RecursionError:
        raise CaseError(source, "", "nested too deeply") from None


def load_case(source: Union[str, Path, Mapping[str, Any], Case], kb: "KnowledgeBase | Path | str | None" = None) -> Case:
    """Load a case from a file path (``.json``, or ``.lp`` facts), a dict, or a Case.

    With a KB tree (or None, the packaged KB) the case is validated against
    the version that decides it (by its date of service; see
    :mod:`kineret_asp.cases.versions`); a KnowledgeBase or a version folder is used
    as it is. A Case is validated again unless it was validated against
    that very version. Raises :class:`CaseError` for anything that is not a
    valid version-1 case.
    """
    if isinstance(kb, KnowledgeBase):
        return load_case_in(source, kb)
    from .versions import load_chosen

    return load_chosen(source, kb)[0]


def _chosen(case: Case, choice: Any) -> Case:
    object.__setattr__(case, "_chosen", choice)
    return case


def load_case_in(source: Any, knowledge: KnowledgeBase, choice: Any = None) -> Case:
    """A case validated against one version (``choice`` records how that version was chosen).

    ``source`` is a Case, a dict (or other decoded data) or a path.
    """
    if isinstance(source, Case):
        if source.schema is knowledge.schema:
            return _chosen(source, choice) if choice is not None and source._chosen is None else source
        case = _validate(source.to_dict(with_expect=True), source.source, knowledge)
    elif isinstance(source, (str, Path)):
        case = _read(Path(source), str(source), knowledge)
    else:
        case = _validate(dict(source) if isinstance(source, Mapping) else source, "<dict>", knowledge)
    return _chosen(case, choice) if choice is not None else case


def validated(data: Any, source: str, knowledge: KnowledgeBase, choice: Any = None) -> Case:
    """Decoded case data validated against one version, named ``source`` in messages."""
    case = _validate(data, source, knowledge)
    return _chosen(case, choice) if choice is not None else case


def _read(path: Path, shown: str, knowledge: KnowledgeBase) -> Case:
    if path.suffix == ".lp":
        from .lp_case import read_lp_case

        return read_lp_case(path, shown, knowledge)
    raw = read_case_file(path, shown, MAX_FILE_BYTES)
    return _validate(parse_json_text(raw, shown), shown, knowledge)


def read_case_stream(stream: Any, shown: str, cap: int = MAX_CASE_BYTES) -> bytes:
    """A case's bytes from a stream (stdin), refused once more than ``cap`` bytes arrive."""
    try:
        raw, more = read_capped(stream, cap)
    except OSError as exc:
        raise CaseError(shown, "", f"cannot read: {exc.strerror or exc}") from None
    if more:
        raise CaseError(shown, "", f"input too large (over {cap} bytes; a case is at most {cap} bytes)")
    return raw


def reading_error(exc: OSError, shown: str) -> CaseError:
    """A case file that cannot be read, as one line naming it."""
    if isinstance(exc, FileNotFoundError):
        return CaseError(shown, "", "no such file")
    if isinstance(exc, IsADirectoryError):
        return CaseError(shown, "", "is a folder, expected a case file")
    return CaseError(shown, "", f"cannot read file: {exc.strerror or exc}")


def read_case_file(path: Path, shown: str, cap: int) -> bytes:
    """A case file's bytes, refused before reading when larger than ``cap``."""
    try:
        with open(path, "rb") as f:
            raw = f.read(cap + 1)
    except OSError as exc:
        raise reading_error(exc, shown) from None
    if len(raw) > cap:
        raise CaseError(shown, "", f"file too large (over {cap} bytes; a case is at most {cap} bytes)")
    return raw
