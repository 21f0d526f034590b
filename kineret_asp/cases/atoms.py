"""A validated case as the input atoms of its KB, and input atoms back as case data.

The atoms of a case are what the engines ground it with (through clingo's
backend, never as program text); an ``.lp`` case file, ``verify``'s
counterexamples and ``diff``'s examples come back as atoms and are read
into case data here. How each field becomes atoms is worked out once per
schema.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from ..asp.symbols import Const
from ..errors import CaseError
from ..knowledge.schema import BOOLEAN, DATE, DECIMAL, ENTRIES, KEY, KEYED, LIST, OPEN_KEY, CaseSchema, Kind, plain_value

TERMS_KEPT = 10_000
"""Terms an entry field keeps, by value (a batch's drugs, outcomes, months: a few dozen each)."""
ATOMS_KEPT = 100_000
"""Atoms a writer keeps, by the field and value that make them (a batch's list items and values: a few hundred)."""
ENTRY_ATOMS_KEPT = 20_000
"""Entries at a place whose atoms a writer keeps (a batch's validated entries repeat: a few thousand at a few places)."""


def atom_writer(schema: CaseSchema) -> "AtomWriter":
    """The atom writer of a schema (made once, kept with the schema)."""
    return schema.derived("atom_writer", lambda: AtomWriter(schema))


def case_atoms(schema: CaseSchema, values: Mapping[str, Any]) -> list[tuple]:
    """The input atoms ``(predicate, *arguments)`` of a validated case's values, in a stable order."""
    return atom_writer(schema).atoms(values)


def data_from_atoms(schema: CaseSchema, atoms: Iterable[tuple[tuple, str]], source: str) -> tuple[dict, dict[str, str]]:
    """Input atoms, each with where it was written, as a case dict (see :meth:`AtomWriter.data_from_atoms`)."""
    return atom_writer(schema).data_from_atoms(atoms, source)


class AtomWriter:
    """Turns one schema's validated values into input atoms, and input atoms into case data."""

    def __init__(self, schema: CaseSchema):
        self.schema = schema
        placed = {f.name: sorted((e for e in f.entry_fields if e.place is not None), key=lambda e: e.place) for f in schema.fields if f.kind.name == ENTRIES}  # type: ignore[arg-type, return-value]
        self._consts: dict[str, Const] = {}
        self._made: dict[tuple, tuple] = {}  # atoms made (see :meth:`atoms`), by the field and the value that make them
        self._entries: dict[tuple[int, int], tuple[Any, list]] = {}  # an entry's atoms at a place, by the entry's identity and the place
        self._atom_plan = [
            (
                f,
                f.kind,
                [(e.name, e.kind, {}) for e in placed[f.name]] if f.name in placed else None,
                [(e.name, e.atom, e.kind, e.kind.name == BOOLEAN, {}) for e in f.entry_fields if e.atom is not None],
            )
            for f in schema.fields
            if f.atom is not None
        ]  # each entry field with the terms of its values made so far (a field's values are of one kind)

    def atoms(self, values: Mapping[str, Any]) -> list[tuple]:
        """The input atoms ``(predicate, *arguments)`` of a validated case, in a stable order.

        The atom of a list item or of a field's value is made once (a batch
        repeats them case after case) and shared: equal atoms are one tuple.
        A validated entry's atoms at a place are made once for each entry
        object (validation gives equal entries as one object, see
        :meth:`~kineret_asp.cases.validation.Validator._quick_entries`).
        """
        out: list[tuple] = []
        room = len(self._made) < ATOMS_KEPT
        get = values.get
        entries = self._entries
        for f, k, placed, extra in self._atom_plan:
            value = get(f.name)
            if placed is not None:
                for i, entry in enumerate(value or ()):
                    hit = entries.get((id(entry), i))
                    if hit is not None and hit[0] is entry:
                        out.extend(hit[1])
                        continue
                    made: list[tuple] = []
                    self._entry_atoms(made, f.atom, placed, extra, i, entry)
                    out.extend(made)
                    if len(entries) < ENTRY_ATOMS_KEPT and getattr(entry, "_field", None) is not None:  # a validated Entry: it cannot change
                        entries[(id(entry), i)] = (entry, made)
            elif k.name == LIST:
                out.extend([self._atom(f, k.item, v, room) for v in value or ()])
            elif k.name == BOOLEAN:
                if value:
                    out.append((f.atom,))
            elif value is not None:
                out.append(self._atom(f, k, value, room))
        return out

    def _atom(self, f: Any, kind: Optional[Kind], value: Any, room: bool) -> tuple:
        """The atom of a field's value (or of a list's item), made once for each value."""
        key = (f.name, value)
        try:
            found = self._made.get(key)
        except TypeError:  # a value that cannot be hashed: made every time
            return (f.atom, self._term(kind, value))
        if found is None:
            found = (f.atom, self._term(kind, value))
            if room:
                self._made[key] = found
        return found

    def _entry_atoms(self, out: list, atom: str, placed: list, extra: list, i: int, entry: Any) -> None:
        """The atoms of an entry at place ``i`` of its list: the list's atom with the placed fields, one atom for each other field given."""
        given_values = getattr(entry, "_values", entry)  # an Entry's values (or a plain mapping)
        out.append((atom, i, *[self._field_term(kind, terms, given_values.get(name)) for name, kind, terms in placed]))
        for name, extra_atom, kind, boolean, terms in extra:
            given = given_values.get(name)
            if given is None:
                continue
            if boolean:
                if given:
                    out.append((extra_atom, i))
            else:
                out.append((extra_atom, i, self._field_term(kind, terms, given)))

    def _field_term(self, kind: Optional[Kind], terms: dict, value: Any) -> Any:
        """The term of an entry field's value, made once for each value (``terms``: the field's, by value)."""
        try:
            found = terms.get(value)
        except TypeError:  # a value that cannot be hashed: made every time
            return self._term(kind, value)
        if found is None:
            found = self._term(kind, value)
            if len(terms) < TERMS_KEPT:
                terms[value] = found
        return found

    def _term(self, kind: Optional[Kind], value: Any) -> Any:
        """A validated value as the term of an input atom: a key a constant, any other name a string."""
        if kind is not None and kind.name in KEYED:
            if kind.name == OPEN_KEY and value not in self.schema.vocabularies.get(kind.vocabulary or "", {}):
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
            name, args = atom[0], [plain_value(a) for a in atom[1:]]
            spec = self.schema.input_predicates.get((name, len(args)))
            if spec is None:
                known = ", ".join(f"{n}/{a}" for n, a in sorted(self.schema.input_predicates))
                raise CaseError(where, "", f"unknown case fact {name}/{len(args)}; expected one of {known}")
            if not spec:  # a boolean field
                f = self.schema.bool_field(name)
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
                    if f.kind.name == DECIMAL and isinstance(args[0], int) and not isinstance(args[0], bool):
                        args[0] = f.kind.unscaled(args[0])
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
                given = {e.name: (e.kind.unscaled(v) if e.kind.name == DECIMAL and isinstance(v, int) and not isinstance(v, bool) else v) for e, v in zip(placed, args[1:])}
                if (lst.name, number) in entry_places:
                    raise CaseError(where, "", f"two entries of {lst.name} numbered {number!r} (first written at {entry_places[(lst.name, number)]}); each entry needs its own number")
                entry_places[(lst.name, number)] = where
                entry.update(given)
            else:
                e = next(x for x in lst.entry_fields if x.atom == name)
                value = True if e.kind.name == BOOLEAN else args[1]
                if e.kind.name == DECIMAL and isinstance(value, int) and not isinstance(value, bool):
                    value = e.kind.unscaled(value)
                if e.name in entry and entry[e.name] != value:
                    raise CaseError(where, "", f"{lst.name} entry {number!r} has two values for {e.name} ({entry[e.name]!r} and {value!r})")
                entry[e.name] = value
                entry_places.setdefault((lst.name, number, e.name), where)
        for lst_name, numbered in entries.items():
            lst = self.schema.by_name[lst_name]
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


def _term(kind: Optional[Kind], value: Any) -> Any:
    """A validated value as the term of an input atom."""
    if kind is None:
        return value
    if kind.name == KEY:
        return Const(value)
    if kind.name == DATE:
        return int(str(value).replace("-", ""))
    if kind.name == DECIMAL:
        return kind.scaled(value)
    return value
