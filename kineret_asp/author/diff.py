"""``kineret-asp diff OLD_KB NEW_KB``: which cases a KB change affects.

A case changes when its decision or the length of its approval differs.

Both versions go into one clingo program: every predicate of the old
version is renamed ``old__p``, of the new ``new__p``, its inputs included.
The case is one case of the two schemas together: ``in__(Field, Value)``
for a field's value (a list's items, ``true`` for a boolean),
``in__entry(List, N)`` and ``in__entry(List, N, Field, Value)`` for the
entries of a list, chosen over the union of the two versions' case spaces
(each field takes the values either version's ``#program space.`` gives
it). Each version reads the case through its own schema (the *bridge*): a
field it does not declare is one its rules cannot read, and a value it
cannot express (a key its vocabulary lacks, a number out of its range) is
left out, as its validator would refuse it; a case that lacks a field the
version requires is not a case of that version at all. So a version that
adds inputs, keys or drugs is compared with the one before it, never
refused.

The solver enumerates, projected on a description of the case (the fields
a decision's header shows, header_field/3) and of the change (old and new
decision and approval length, every criterion whose outcome differs with
its outcome in each version), every class of cases whose decision changes,
and finds the smallest example of each (fewest facts, by optimization);
up to N examples that differ in what the rules made of them (the criteria
met and unmet, the reasons) with ``examples``. A header field that neither
version reads in a class (changing it changes no decision, approval length,
criterion or reason of either version for the class's example) does not
split it. Nothing is enumerated in Python.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import clingo

from ..asp.solving import ground_program, models
from ..asp.symbols import Const, SymbolDecoder, term_text, to_symbol
from ..engine.program import compiled
from ..errors import CaseError, Diagnostic, KbError, KineretError, SolveTimeout, did_you_mean
from ..knowledge.base import KnowledgeBase, resolve_kb
from ..knowledge.schema import BOOLEAN, DATE, DECIMAL, ENTRIES, INTEGER, KEY, LIST, Field, Kind
from ..knowledge.vocabulary import outline_key

SIDES = ("old", "new")

JOINT_RULES = """
crit__(C) :- old__criterion(C, _, _, _).
crit__(C) :- new__criterion(C, _, _, _).
status(V, C, met) :- side__(V, _), applies__(V, C), not unmet__(V, C).
status(V, C, unmet) :- unmet__(V, C).
status(V, C, none) :- side__(V, _), crit__(C), not applies__(V, C), not unmet__(V, C).
applies__(old, C) :- old__applies(C).
applies__(new, C) :- new__applies(C).
unmet__(old, C) :- old__unmet(C).
unmet__(new, C) :- new__unmet(C).
side__(old, 0). side__(new, 1).
flip(C, A, B) :- status(old, C, A), status(new, C, B), A != B.
decided(V, D) :- decision__(V, D), not undecidable__(V).
decided(V, not_a_case) :- side__(V, _), undecidable__(V).
decision__(old, D) :- old__decision(D).
decision__(new, D) :- new__decision(D).
months__(old, M) :- old__authorization_months(M), not undecidable__(old).
months__(new, M) :- new__authorization_months(M), not undecidable__(new).
changed :- decided(old, D), not decided(new, D).
changed :- decided(new, D), not decided(old, D).
changed :- months__(old, M), not months__(new, M).
changed :- months__(new, M), not months__(old, M).
class(old, D) :- decided(old, D).
class(new, D) :- decided(new, D).
class(old_months, M) :- months__(old, M).
class(new_months, M) :- months__(new, M).
class(flip, (C, A, B)) :- flip(C, A, B).
footprint__(V, st(C, S)) :- status(V, C, S), S != none.
footprint__(old, rs(R)) :- old__reason(R).
footprint__(new, rs(R)) :- new__reason(R).
has__(F) :- in__(F, _).
has_entry__(L, N, E) :- in__entry(L, N, E, _).
where_entry__(L, E, X) :- in__entry(L, _, E, X).
keyed__(L) :- key__(L, _).
#defined undecidable__/1.
#defined cannot__/2.
#defined in__/2.
#defined in__entry/2.
#defined in__entry/4.
#defined key__/2.
#defined old__reason/1.
#defined new__reason/1.
#defined old__authorization_months/1.
#defined new__authorization_months/1.
#defined old__unmet/1.
#defined new__unmet/1.
#defined old__applies/1.
#defined new__applies/1.
#show class/2.
#show in__/2.
#show in__entry/2.
#show in__entry/4.
#show footprint__/2.
#project class/2.
"""


class DiffError(KineretError):
    """A diff asked for in a way that cannot be answered (an unknown --where field or value)."""


# --- the two schemas as one case ------------------------------------------------------------


def shape(f: Field) -> str:
    """What a field is for the joint case: boolean, list, entries or scalar."""
    return f.kind.name if f.kind.name in (BOOLEAN, LIST, ENTRIES) else "scalar"


@dataclass
class JointField:
    """A field of the joint case: its name, shape, and its declaration in each version that reads it."""

    name: str
    shape: str
    declared: dict[str, Field]  # side -> the version's field (of this shape)
    other: dict[str, Field] = field(default_factory=dict)  # side -> a declaration of another shape (it cannot read this one)

    def kind(self) -> Kind:
        """The kind of a value (a list's item kind), as the newest declaration gives it."""
        f = self.declared.get("new") or self.declared["old"]
        return f.kind.item if f.kind.item is not None else f.kind

    def entry_fields(self) -> dict[str, tuple[Field, dict[str, Field]]]:
        """Each entry field of an entries list (union of the versions), with its declaration per version."""
        out: dict[str, tuple[Field, dict[str, Field]]] = {}
        for side in ("new", "old"):
            f = self.declared.get(side)
            if f is None:
                continue
            for e in f.entry_fields:
                first, per = out.setdefault(e.name, (e, {}))
                per[side] = e
        return out


def joint_fields(old: KnowledgeBase, new: KnowledgeBase) -> list[JointField]:
    """The fields of both versions that reach the rules, in the new version's order (then the old's)."""
    out: dict[str, JointField] = {}
    for side, kb in (("new", new), ("old", old)):
        for f in kb.schema.fields:
            if f.atom is None:
                continue
            joint = out.get(f.name)
            if joint is None:
                out[f.name] = JointField(f.name, shape(f), {side: f})
            elif joint.shape == shape(f):
                joint.declared[side] = f
            else:
                joint.other[side] = f
    return list(out.values())


def _required(f: Field) -> bool:
    return f.presence in ("required", "default")


def _valid(side: str, kind: Kind, var: str) -> tuple[list[str], list[str]]:
    """Body literals for a value the side can express, and for each way it cannot."""
    if kind.name == KEY and kind.vocabulary:
        return [f"{side}__{kind.vocabulary}({var}, _)"], [f"not {side}__{kind.vocabulary}({var}, _)"]
    if kind.name == INTEGER:
        return [f"{var} >= {kind.minimum}", f"{var} <= {kind.maximum}"], [f"{var} < {kind.minimum}", f"{var} > {kind.maximum}"]
    return [], []  # open keys, names, booleans, dates: any value the space gives is one the version reads


def _body(*parts: Sequence[str] | str) -> str:
    items: list[str] = []
    for p in parts:
        items.extend([p] if isinstance(p, str) else p)
    return ", ".join(i for i in items if i) or "#true"


def joint_program(old: KnowledgeBase, new: KnowledgeBase, fields: list[JointField]) -> list[str]:
    """The joint case space over both schemas, and how each version reads it (its inputs, renamed)."""
    lines: list[str] = []
    for f in fields:
        name = f.name
        sides = list(f.declared)
        if f.shape in ("scalar", LIST):
            for side in sides:
                lines.append(f"dom__({name}, X) :- {side}__space_dom__({name}, X).")
        if f.shape == BOOLEAN:
            lines.append(f"{{ in__({name}, true) }}.")
        elif f.shape == LIST:
            lines.append(f"{{ in__({name}, X) : dom__({name}, X) }}.")
        elif f.shape == "scalar":
            low = 1 if all(_required(d) for d in f.declared.values()) else 0
            lines.append(f"{low} {{ in__({name}, X) : dom__({name}, X) }} 1.")
        else:
            entry = f.entry_fields()
            for en, (_, per) in entry.items():
                for side in per:
                    if per[side].kind.name != BOOLEAN:
                        lines.append(f"dom__(({name}, {en}), X) :- {side}__space_dom__(({name}, {en}), X).")
            if "new" in sides:
                lines.append(f"key__({name}, E) :- new__space_entry_key({name}, E).")
                lines.append(f"newkey__({name}) :- new__space_entry_key({name}, _).")
            if "old" in sides:
                lines.append(f"key__({name}, E) :- old__space_entry_key({name}, E), not newkey__({name}).")
            lines.append("#defined newkey__/1.")
            lines.append(f"{{ in__entry({name}, e(K)) : dom__(({name}, E), K) }} :- key__({name}, E).")
            lines.append(f"in__entry({name}, e(K), E, K) :- in__entry({name}, e(K)), key__({name}, E).")
            lines.append(f"{{ in__entry({name}, 0) }} :- not keyed__({name}).")
            for en, (first, per) in entry.items():
                if first.kind.name == BOOLEAN:
                    lines.append(f"{{ in__entry({name}, N, {en}, true) }} :- in__entry({name}, N).")
                    continue
                low = 1 if all(_required(e) or e.place is not None for e in per.values()) else 0
                lines.append(f"{low} {{ in__entry({name}, N, {en}, X) : dom__(({name}, {en}), X) }} 1 :- in__entry({name}, N), not key__({name}, {en}).")
        for side in sides:
            lines += _bridge(side, f)
        for side, other in f.other.items():  # declared with another shape: the version cannot read this field
            lines.append(f"cannot__({side}, {name}) :- {'has__' if f.shape != ENTRIES else 'in__entry'}({name}{', _' if f.shape == ENTRIES else ''}).")
            if _required(other):
                lines.append(f"undecidable__({side}).")
    for side, kb in (("old", old), ("new", new)):
        for n, a in sorted(kb.schema.input_signatures()):
            lines.append(f"#defined {side}__{n}/{a}.")
        lines.append(f"#defined {side}__space_entry_key/2.")
        lines.append(f"#defined {side}__space_dom__/2.")
    return lines


def _bridge(side: str, f: JointField) -> list[str]:
    """How one version reads one field of the joint case into its own (renamed) input atoms."""
    d = f.declared[side]
    name, atom = f.name, f"{side}__{d.atom}"
    lines: list[str] = []
    if f.shape == BOOLEAN:
        lines.append(f"{atom} :- in__({name}, true).")
        return lines
    if f.shape in ("scalar", LIST):
        kind = d.kind.item if f.shape == LIST and d.kind.item is not None else d.kind
        ok, bad = _valid(side, kind, "X")
        lines.append(f"{atom}(X) :- {_body(f'in__({name}, X)', ok)}.")
        for b in bad:
            lines.append(f"cannot__({side}, {name}) :- in__({name}, X), {b}.")
        if f.shape == "scalar":
            if d.presence == "default" and d.default is not None:
                lines.append(f"{atom}({term_text(_default_term(kind, d.default))}) :- not has__({name}).")
            elif d.presence == "required":
                lines.append(f"read__({side}, {name}) :- {atom}(_).")
                lines.append(f"undecidable__({side}) :- not read__({side}, {name}).")
        return lines
    placed = sorted((e for e in d.entry_fields if e.place is not None), key=lambda e: e.place or 0)
    args = [f"A{i}" for i in range(len(placed))]
    body = [f"in__entry({name}, N)"]
    for e, a in zip(placed, args):
        ok, bad = _valid(side, e.kind, a)
        body += [f"in__entry({name}, N, {e.name}, {a})", *ok]
    lines.append(f"{atom}({', '.join(['N', *args])}) :- {_body(body)}.")
    entry = f"{atom}({', '.join(['N', *('_' for _ in args)])})"
    lines.append(f"cannot__({side}, {name}) :- in__entry({name}, N), not {entry}.")
    for e in d.entry_fields:
        if e.place is not None:
            continue
        own = f"{side}__{e.atom}"
        if e.atom is None:
            continue
        if e.kind.name == BOOLEAN:
            lines.append(f"{own}(N) :- {entry}, in__entry({name}, N, {e.name}, true).")
            continue
        ok, bad = _valid(side, e.kind, "X")
        lines.append(f"{own}(N, X) :- {_body(entry, f'in__entry({name}, N, {e.name}, X)', ok)}.")
        for b in bad:
            lines.append(f"cannot__({side}, {name}) :- {entry}, in__entry({name}, N, {e.name}, X), {b}.")
        if e.presence == "required":
            lines.append(f"cannot__({side}, {name}) :- {entry}, not has_entry__({name}, N, {e.name}).")
    return lines


def _default_term(kind: Kind, value: Any) -> Any:
    if kind.name == KEY:
        return Const(str(value))
    return value


def minimize_joint() -> str:
    """A #minimize over every fact of the joint case, so examples come out as small as they can."""
    return "#minimize { 1,F,X : in__(F, X); 1,L,N : in__entry(L, N); 1,L,N,E,X : in__entry(L, N, E, X) }."


def header_rules(fields: list[JointField], shown: list[str]) -> list[str]:
    """A class of cases is described by the fields a decision's header shows (header_field/3)."""
    by_name = {f.name: f for f in fields}
    lines = []
    for name in shown:
        f = by_name.get(name)
        if f is None or f.shape != "scalar":
            continue
        lines.append(f"class(field({name}), X) :- in__({name}, X).")
        lines.append(f"class(field({name}), none) :- not has__({name}).")
    return lines


def shown_fields(*kbs: KnowledgeBase) -> list[str]:
    """The scalar fields with an atom that describe a class, in the KB's order (the new version's first)."""
    out: list[str] = []
    for kb in kbs:
        for name, _, _ in kb.facts("header_field", 3):
            f = kb.schema.by_name.get(str(name))
            if f is not None and f.atom and f.kind.name not in (LIST, ENTRIES, BOOLEAN) and f.name not in out:
                out.append(f.name)
    return out


# --- the joint case as case data, and each version's reading of it ---------------------------


def _plain(value: Any, kind: Optional[Kind]) -> Any:
    if isinstance(value, Const):
        text = str(value)
        return {"true": True, "false": False}.get(text, text) if kind is None or kind.name == BOOLEAN else text
    if kind is not None and kind.name == DATE and isinstance(value, int):
        text = str(value)
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    if kind is not None and kind.name == DECIMAL and isinstance(value, int) and not isinstance(value, bool):
        return kind.unscaled(value)  # the rules' whole number (times 10**places) as the case's number
    return value


def case_of(atoms: list[tuple], fields: list[JointField]) -> dict:
    """The joint case's facts as case data (the fields in the new version's order)."""
    by_name = {f.name: f for f in fields}
    data: dict[str, Any] = {}
    entries: dict[str, dict[Any, dict]] = {}
    for atom in atoms:
        if atom[0] == "in__" and len(atom) == 3:
            f = by_name.get(str(atom[1]))
            if f is None:
                continue
            if f.shape == BOOLEAN:
                data[f.name] = True
            elif f.shape == LIST:
                data.setdefault(f.name, []).append(_plain(atom[2], f.kind()))
            else:
                data[f.name] = _plain(atom[2], f.kind())
        elif atom[0] == "in__entry" and len(atom) == 3:
            entries.setdefault(str(atom[1]), {}).setdefault(atom[2], {})
        elif atom[0] == "in__entry" and len(atom) == 5:
            f = by_name.get(str(atom[1]))
            spec = f.entry_fields().get(str(atom[3])) if f is not None else None
            kind = spec[0].kind if spec is not None else None
            entries.setdefault(str(atom[1]), {}).setdefault(atom[2], {})[str(atom[3])] = _plain(atom[4], kind)
    for name, numbered in entries.items():
        f = by_name[name]
        order = list(f.entry_fields())
        data[name] = [{k: numbered[n][k] for k in order if k in numbered[n]} for n in sorted(numbered, key=repr)]
    out = {}
    for f in fields:
        if f.name in data:
            value = data[f.name]
            out[f.name] = sorted(value, key=repr) if f.shape == LIST else value
    return out


@dataclass
class Reading:
    """What a version reads of a joint case: its case data, the fields it does not declare, the values it cannot express."""

    data: dict
    unread: list[str]
    dropped: list[tuple[str, Any]]  # (field path, value) the version's schema refuses
    missing: list[str]  # required fields the case does not give: not a case of this version
    refused: str = ""  # what the version's validator says of the case, when it refuses it all the same


def reading(case: dict, kb: KnowledgeBase) -> Reading:
    """The case as one version reads it: undeclared fields left out, values it cannot express dropped (as the bridge does)."""
    schema = kb.schema
    data: dict[str, Any] = {}
    unread: list[str] = []
    dropped: list[tuple[str, Any]] = []
    for name, value in case.items():
        f = schema.by_name.get(name)
        if f is None or f.atom is None:
            unread.append(name)
            continue
        if f.kind.name == ENTRIES:
            if not isinstance(value, list):
                unread.append(name)
                continue
            kept = []
            for i, entry in enumerate(value):
                one: dict[str, Any] = {}
                ok = True
                for k, v in entry.items():
                    e = f.entry_field(k)
                    if e is None:
                        continue  # a field of the entry the version does not declare
                    if not _expressible(schema, e.kind, v):
                        dropped.append((f"{name}[{i}].{k}", v))
                        if e.place is not None:
                            ok = False
                        continue
                    one[k] = v
                if ok and all(e.name in one for e in f.entry_fields if e.place is not None):
                    kept.append(one)
                elif ok:
                    dropped.append((f"{name}[{i}]", entry))
            data[name] = kept
        elif f.kind.name == LIST:
            items = value if isinstance(value, list) else [value]
            kept_items = []
            for v in items:
                if _expressible(schema, f.kind.item or f.kind, v):
                    kept_items.append(v)
                else:
                    dropped.append((name, v))
            data[name] = kept_items
        elif shape(f) != ("scalar" if not isinstance(value, (list, bool)) else (LIST if isinstance(value, list) else BOOLEAN)):
            unread.append(name)
        elif _expressible(schema, f.kind, value):
            data[name] = value
        else:
            dropped.append((name, value))
    missing = [f.name for f in schema.fields if f.atom is not None and f.presence == "required" and f.name not in data]
    return Reading(data, unread, dropped, missing)


def _expressible(schema: Any, kind: Kind, value: Any) -> bool:
    if kind.name == KEY:
        return str(value) in schema.vocabularies.get(kind.vocabulary or "", {})
    if kind.name == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool) and (kind.minimum or 0) <= value <= (kind.maximum or 0)
    if kind.name == BOOLEAN:
        return isinstance(value, bool)
    return True


# --- the answer ---------------------------------------------------------------------------


@dataclass
class ChangeClass:
    """A class of cases whose decision changes, with its smallest example (and more, with ``examples``)."""

    fields: tuple[tuple[str, Optional[str]], ...]  # the header fields that split it (those the versions read)
    old: str
    new: str
    flipped: list[dict]
    example: dict = field(default_factory=dict)
    old_months: Optional[int] = None  # how long an approval lasts, before and after
    new_months: Optional[int] = None
    examples: list[dict] = field(default_factory=list)  # the example first, then the others
    unsplit: tuple[str, ...] = ()  # header fields neither version reads for this class
    readings: dict[str, Reading] = field(default_factory=dict)  # side -> how the version reads the example
    reason_flips: set[str] = field(default_factory=set)  # reasons one version gives the example and the other does not

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        for key, value in object.__getattribute__(self, "fields"):
            if key == name:
                return value
        raise AttributeError(name)

    def change_key(self) -> tuple:
        return (self.old, self.new, self.old_months, self.new_months, tuple((f["id"], f["old"], f["new"]) for f in self.flipped))

    def change_text(self, kb: KnowledgeBase) -> str:
        """The change, in words: decisions (and approval lengths), and each criterion whose outcome differs."""
        w = kb.vocabulary.word
        lengths = None not in (self.old_months, self.new_months) and self.old_months != self.new_months  # only an approval's length changed
        shown = {"not_a_case": w("diff_not_a_case")}
        old = shown.get(self.old, self.old) + (f" ({self.old_months} months)" if lengths else "")
        new = shown.get(self.new, self.new) + (f" ({self.new_months} months)" if lengths else "")
        text = f"{old} -> {new}"
        if self.flipped:
            mark = {"met": w("status_met"), "unmet": w("status_unmet"), None: w("status_none")}
            ids = {f["id"] for f in self.flipped}
            items = []
            for f in self.flipped:
                item = f"{f['id']} {mark[f['old']]} -> {mark[f['new']]}"
                kids = set(kb.vocabulary.children.get(f["id"], ()))
                if f.get("text") and not ids & kids:  # a cause, not a consequence: quote it
                    item += f" [{f['text']}]"
                items.append(item)
            text += f" (criteria: {', '.join(items)})"
        return text

    def fields_text(self, kbs: Sequence[KnowledgeBase]) -> str:
        parts = []
        for name, value in self.fields:
            kb = next((k for k in kbs if name in k.schema.by_name), kbs[0])
            schema = kb.schema
            f = schema.by_name[name]
            shown = {str(n): (str(lbl), str(absent)) for n, lbl, absent in kb.facts("header_field", 3)}
            label, absent = shown.get(name, (name, ""))
            parts.append(schema.value_label(f.kind, value) if value is not None else f"{label} {absent}")
        return ", ".join(parts)

    def label(self, kb: KnowledgeBase, old_kb: Optional[KnowledgeBase] = None) -> str:
        kbs = [kb] + ([old_kb] if old_kb is not None else [])
        head = self.fields_text(kbs)
        return f"{head}: {self.change_text(kb)}" if head else self.change_text(kb)

    def to_dict(self, kb: KnowledgeBase, old_kb: Optional[KnowledgeBase] = None) -> dict:
        return {
            "label": self.label(kb, old_kb),
            **dict(self.fields),
            "old": self.old,
            "new": self.new,
            "old_months": self.old_months,
            "new_months": self.new_months,
            "criteria": self.flipped,
            "example": self.example,
            "examples": self.examples,
            "not_split_by": list(self.unsplit),
            "versions": {
                side: {"case": r.data, "not_read": r.unread, "cannot_express": [{"path": p, "value": v} for p, v in r.dropped], "missing": r.missing, "refused": r.refused or None}
                for side, r in self.readings.items()
            },
        }


@dataclass
class DiffReport:
    classes: list[ChangeClass]
    seconds: float = 0.0
    old: Optional[KnowledgeBase] = None
    new: Optional[KnowledgeBase] = None


@dataclass(frozen=True)
class Where:
    """``--where FIELD=VALUE``: only cases whose field (or some entry's field) has the value; ``none`` for a field not given."""

    path: str
    value: str


def parse_where(text: str) -> Where:
    if "=" not in text:
        raise DiffError(f"--where: expected FIELD=VALUE (or LIST.FIELD=VALUE), got {text!r}")
    path, value = text.split("=", 1)
    return Where(path.strip(), value.strip())


def _where_assumptions(control: clingo.Control, wheres: Sequence[Where], fields: list[JointField]) -> list[int]:
    """Each --where as assumptions on the joint case's atoms (never program text)."""
    by_name = {f.name: f for f in fields}
    out: list[int] = []
    atoms = control.symbolic_atoms
    for w in wheres:
        name, _, sub = w.path.partition(".")
        f = by_name.get(name)
        if f is None:
            raise DiffError(f"--where {w.path}: no field {name!r} in either version{did_you_mean(name, list(by_name))}")
        if sub:
            if f.shape != ENTRIES or sub not in f.entry_fields():
                known = list(f.entry_fields()) if f.shape == ENTRIES else []
                raise DiffError(f"--where {w.path}: {name} has no entry field {sub!r}{did_you_mean(sub, known)}")
            kind = f.entry_fields()[sub][0].kind
            symbol = clingo.Function("where_entry__", [clingo.Function(name), clingo.Function(sub), _where_symbol(w, kind)])
            out.append(_literal(atoms, symbol, w, f"some entry of {name} with {sub}"))
            continue
        if f.shape == ENTRIES:
            raise DiffError(f"--where {w.path}: {name} is a list of entries; name one of its fields ({name}.FIELD=VALUE)")
        if w.value in ("none", "null") and f.shape != BOOLEAN:
            out += [-a.literal for a in atoms.by_signature("in__", 2) if a.symbol.arguments[0].name == name]
            continue
        if f.shape == BOOLEAN:
            if w.value not in ("true", "false"):
                raise DiffError(f"--where {w.path}: expected true or false, got {w.value!r}")
            symbol = clingo.Function("in__", [clingo.Function(name), clingo.Function("true")])
            atom = atoms[symbol] if symbol in atoms else None
            if w.value == "true":
                out.append(_literal(atoms, symbol, w, name))
            elif atom is not None:
                out.append(-atom.literal)
            continue
        symbol = clingo.Function("in__", [clingo.Function(name), _where_symbol(w, f.kind())])
        out.append(_literal(atoms, symbol, w, name))
    return out


def _where_symbol(w: Where, kind: Kind) -> clingo.Symbol:
    if kind.name == INTEGER:
        try:
            return clingo.Number(int(w.value))
        except ValueError:
            raise DiffError(f"--where {w.path}: expected a whole number, got {w.value!r}") from None
    if kind.name == BOOLEAN:
        return clingo.Function(w.value)
    if kind.name in (KEY, "open_key") and w.value.isidentifier() and w.value[:1].islower():
        return to_symbol(Const(w.value))
    return to_symbol(w.value)


def _literal(atoms: Any, symbol: clingo.Symbol, w: Where, what: str) -> int:
    if symbol not in atoms:
        name = symbol.arguments[0].name
        known = sorted(
            {
                str(a.symbol.arguments[-1]).strip('"')
                for a in atoms.by_signature(symbol.name, len(symbol.arguments))
                if a.symbol.arguments[0].name == name and (len(symbol.arguments) < 3 or a.symbol.arguments[1] == symbol.arguments[1])
            }
        )
        hint = did_you_mean(w.value, known)
        raise DiffError(f"--where {w.path}={w.value}: no case of the space has {what} {w.value!r}" + (hint or f"; the space gives: {', '.join(known[:20])}"))
    return atoms[symbol].literal


def diff_kbs(old: Any, new: Any, time_limit: float = 60.0, examples: int = 1, where: Sequence[Where] = ()) -> DiffReport:
    """Every class of cases of the two versions' joint space whose decision differs between them."""
    start = time.perf_counter()
    old_kb, new_kb = resolve_kb(old), resolve_kb(new)
    fields = joint_fields(old_kb, new_kb)
    program = compiled(old_kb).renamed(("base", "space_domains"), "old__", set()) + compiled(new_kb).renamed(("base", "space_domains"), "new__", set())
    program += joint_program(old_kb, new_kb, fields)
    program.append(JOINT_RULES)
    program += header_rules(fields, shown_fields(new_kb, old_kb))
    program.append(":- not changed.")
    program.append(minimize_joint())
    control = ground_program(new_kb, ["\n".join(program)], ["--project=project", "--opt-mode=ignore", "--models=0"], "the two versions together")
    focus = _where_assumptions(control, where, fields)
    decode = SymbolDecoder()
    found: list[frozenset] = []
    control.solve(assumptions=focus, on_model=lambda m: found.append(frozenset(decode(s) for s in m.symbols(shown=True) if s.name == "class")))
    literals = {decode(a.symbol): a.literal for a in control.symbolic_atoms.by_signature("class", 2)}
    footprints = {a.symbol: a.literal for a in control.symbolic_atoms.by_signature("footprint__", 2)}
    joint = {"in__", "in__entry"}
    control.configuration.solve.project = "no"
    control.configuration.solve.opt_mode = "opt"
    control.configuration.solve.models = "0"
    raw: list[tuple[frozenset, list[dict], list[frozenset]]] = []
    guards = 0
    for found_class in found:
        assumptions = [*focus, *(lit if atom in found_class else -lit for atom, lit in literals.items())]
        cases: list[dict] = []
        prints: list[frozenset] = []
        blocks: list[clingo.Symbol] = []
        for _ in range(max(1, examples)):
            best: list = []
            try:
                for model in models(control, time_limit, assumptions):  # each model is smaller: keep the last
                    best = model.symbols(shown=True)  # read (through clingo's C API) only once the smallest is known
            except SolveTimeout:
                pass  # keep the smallest example found so far
            if not best:
                break
            atoms = [decode(s) for s in best if s.name in joint]
            mine = frozenset(s for s in best if s.name == "footprint__")
            cases.append(case_of(atoms, fields))
            prints.append(frozenset(decode(s) for s in mine))
            if len(cases) >= examples:
                break
            guards += 1  # the next example may not be read the same way by both versions
            guard = clingo.Function(f"other_reading__{guards}")
            body = [f"{s}" for s in mine] + [f"not {s}" for s in footprints if s not in mine]
            control.add(f"block{guards}", [], f"#external {guard}.\n:- {', '.join([str(guard), *body])}.")
            control.ground([(f"block{guards}", [])])
            control.assign_external(guard, True)
            blocks.append(guard)
        for guard in blocks:
            control.release_external(guard)
        raw.append((found_class, cases, prints))
    classes = [_describe(found_class, cases, prints, new_kb, old_kb) for found_class, cases, prints in raw if cases]
    return DiffReport(classes, time.perf_counter() - start, old_kb, new_kb)


def _describe(atoms: frozenset, cases: list[dict], prints: list[frozenset], new_kb: KnowledgeBase, old_kb: KnowledgeBase) -> ChangeClass:
    values: dict[Any, list] = {}
    for _, key, value in atoms:
        values.setdefault(key, []).append(value)
    fields = []
    for name in shown_fields(new_kb, old_kb):
        if ("field", name) not in values:
            continue
        value = str(values[("field", name)][0])
        fields.append((name, None if value == "none" else value))
    flips = [(str(c), str(a), str(b)) for c, a, b in (v[1:] if v[0] == "" else v for v in values.get("flip", []))]
    flips.sort(key=lambda f: (outline_key(f[0]), f[0]))
    word = {"none": None}
    c = ChangeClass(
        fields=tuple(fields),
        old=str(values["old"][0]),
        new=str(values["new"][0]),
        old_months=int(values["old_months"][0]) if "old_months" in values else None,
        new_months=int(values["new_months"][0]) if "new_months" in values else None,
        flipped=[{"id": cid, "old": word.get(a, a), "new": word.get(b, b)} for cid, a, b in flips],
        example=cases[0],
        examples=list(cases),
    )
    c._prints = prints  # type: ignore[attr-defined]
    return c


# --- every example decided again, and the classes no unread field splits -----------------------


def _outcome(decision: Any) -> tuple:
    return (decision.decision, decision.authorization_months, tuple(sorted(decision.statuses().items())), tuple(sorted(r.id for r in decision.reasons)))


def _decide(cases: list[tuple[str, dict]], kb: KnowledgeBase) -> list[Any]:
    """Decide case data (each named for its messages) with one version: a Decision, or the CaseError it raises."""
    from ..api import decide_many
    from ..cases.load import load
    from ..cases.versions import Chooser

    chooser = Chooser.of(kb)
    out: list[Any] = [None] * len(cases)
    loaded = []
    for i, (source, data) in enumerate(cases):
        try:
            loaded.append((i, load(data, chooser, shown=source)))
        except CaseError as exc:
            out[i] = exc
    for (i, _), decision in zip(loaded, decide_many([item for _, item in loaded])):
        out[i] = decision
    return out


def _fill_statuses(report: DiffReport, old_kb: KnowledgeBase, new_kb: KnowledgeBase) -> None:
    """Decide every example with both versions (each reading it through its schema), which also checks that it reproduces."""
    kbs = {"old": old_kb, "new": new_kb}
    for c in report.classes:
        c.readings = {side: reading(c.example, kb) for side, kb in kbs.items()}
    decided: dict[str, list[Any]] = {}
    for side, kb in kbs.items():
        jobs = [(f"diff class {n} example", c.readings[side].data) for n, c in enumerate(report.classes, 1) if not c.readings[side].missing]
        decided[side] = iter(_decide(jobs, kb))  # type: ignore[assignment]
    for n, c in enumerate(report.classes, 1):
        got: dict[str, Any] = {}
        for side in kbs:
            if c.readings[side].missing:
                got[side] = None
                continue
            d = next(decided[side])  # type: ignore[call-overload]
            if isinstance(d, CaseError):  # a rule of its validator the bridge does not know (a name a small edit from a key)
                c.readings[side].refused = d.line()
                d = None
            got[side] = d
        before, after = got["old"], got["new"]
        where = f"diff class {n} ({c.change_text(new_kb)})"
        for side, decision, want, months in (("old", before, c.old, c.old_months), ("new", after, c.new, c.new_months)):
            if decision is None:
                continue  # not a case of that version: the joint program's reading stands, and the class says so
            if (decision.decision, decision.authorization_months) != (want, months):
                raise KbError(
                    [
                        Diagnostic(
                            new_kb.display_path(new_kb.path),
                            0,
                            0,
                            "error",
                            f"{where}: its example does not reproduce with {_name(kbs[side])}: {decision.decision}, expected {want}; example: {_dumps(c.example)}",
                        )
                    ]
                )
        b = before.statuses() if before is not None else None
        a = after.statuses() if after is not None else None
        word = {True: "met", False: "unmet", None: None}
        for f in c.flipped:
            for side, statuses, want in (("old", b, f["old"]), ("new", a, f["new"])):
                if statuses is not None and word[statuses.get(f["id"])] != want:
                    raise KbError(
                        [
                            Diagnostic(
                                new_kb.display_path(new_kb.path),
                                0,
                                0,
                                "error",
                                f"{where}: criterion {f['id']} of its example is {word[statuses.get(f['id'])]} with {_name(kbs[side])}, expected {want}; example: {_dumps(c.example)}",
                            )
                        ]
                    )
            crit = new_kb.vocabulary.criteria.get(f["id"]) or old_kb.vocabulary.criteria.get(f["id"])
            f["text"] = crit.text if crit is not None else ""
        c.reason_flips = ({r.id for r in before.reasons} if before is not None else set()) ^ ({r.id for r in after.reasons} if after is not None else set())


def _name(kb: KnowledgeBase) -> str:
    ident = kb.identity
    return f"{ident.policy} {ident.effective_from}"


def _dumps(data: Any) -> str:
    from ..safetext import dumps

    return dumps(data, indent=None)


def _unsplit(report: DiffReport, old_kb: KnowledgeBase, new_kb: KnowledgeBase, domains: dict[str, list[Any]], optional: set[str]) -> None:
    """Mark, for each class, the header fields neither version reads there: no other value of it changes either version's outcome for its example.

    The outcome is the decision, the approval's length, every criterion's
    status and the reasons. The other values are tried in rounds, one per
    field and class at a time, so that a field read at once (the indication)
    costs one decision per version.
    """
    kbs = {"old": old_kb, "new": new_kb}
    pending: dict[tuple[int, str], list[Any]] = {}
    for i, c in enumerate(report.classes):
        for name, value in c.fields:
            alternatives = [v for v in domains.get(name, []) if v != value] + ([None] if name in optional and value is not None else [])
            if alternatives:
                pending[(i, name)] = alternatives
    if not pending:
        return
    base = {side: [_outcome(d) if not isinstance(d, CaseError) else None for d in _decide([("diff", c.readings[side].data) for c in report.classes], kb)] for side, kb in kbs.items()}
    read: set[tuple[int, str]] = set()
    tried: set[tuple[int, str]] = set(pending)
    while pending:
        trials: list[tuple[tuple[int, str], dict]] = []
        for (i, name), alternatives in list(pending.items()):
            alt = alternatives.pop(0)
            if not alternatives:
                del pending[(i, name)]
            changed = dict(report.classes[i].example)
            if alt is None:
                changed.pop(name, None)
            else:
                changed[name] = alt
            trials.append(((i, name), changed))
        for side, kb in kbs.items():
            results = _decide([("diff", reading(changed, kb).data) for _, changed in trials], kb)
            for (key, _), d in zip(trials, results):
                if isinstance(d, CaseError) or base[side][key[0]] is None or _outcome(d) != base[side][key[0]]:
                    read.add(key)
                    pending.pop(key, None)
    for i, c in enumerate(report.classes):
        c.unsplit = tuple(name for name, _ in c.fields if (i, name) in tried and (i, name) not in read)


def _merge(report: DiffReport, examples: int) -> None:
    """Classes that differ only in header fields neither version reads become one; examples are kept, smallest first, one per reading."""
    merged: dict[tuple, ChangeClass] = {}
    for c in report.classes:
        fields = tuple((n, v) for n, v in c.fields if n not in c.unsplit)
        key = (c.change_key(), fields)
        into = merged.get(key)
        if into is None:
            c.fields = fields
            merged[key] = c
            continue
        into.unsplit = tuple(dict.fromkeys([*into.unsplit, *c.unsplit]))
        pool = list(zip(into.examples, into._prints)) + list(zip(c.examples, c._prints))  # type: ignore[attr-defined]
        pool.sort(key=lambda e: (_size(e[0]), _dumps(e[0])))
        seen: set = set()
        kept = []
        for case, fp in pool:
            if fp in seen:
                continue
            seen.add(fp)
            kept.append((case, fp))
        into.examples = [e for e, _ in kept[:examples]]
        into._prints = [fp for _, fp in kept[:examples]]  # type: ignore[attr-defined]
        if into.example is not into.examples[0]:
            into.example = into.examples[0]
    report.classes = list(merged.values())


def _size(case: dict) -> int:
    n = 0
    for value in case.values():
        if isinstance(value, list):
            n += sum(1 + (len(v) if isinstance(v, dict) else 0) for v in value)
        else:
            n += 1
    return n


def _sort(report: DiffReport, new_kb: KnowledgeBase, old_kb: KnowledgeBase) -> None:
    """Classes grouped by their change (decisions, lengths, criteria outcomes), then by the fields that split them."""
    fields = joint_fields(old_kb, new_kb)
    rank: dict[str, dict[str, int]] = {}
    for f in fields:
        kb = new_kb if f.name in new_kb.schema.by_name else old_kb
        kind = f.kind()
        keys = kb.vocabulary.keys.get(kind.vocabulary or "", {}) if kind.vocabulary else {}
        rank[f.name] = {k: i for i, k in enumerate(keys)}

    def field_key(c: ChangeClass) -> tuple:
        return tuple((n, (0, rank.get(n, {}).get(str(v), len(rank.get(n, {}))), str(v)) if v is not None else (1, 0, "")) for n, v in c.fields)

    def change_order(c: ChangeClass) -> tuple:
        return (c.old, c.new, c.old_months or 0, c.new_months or 0, tuple((outline_key(f["id"]), f["old"] or "", f["new"] or "") for f in c.flipped))

    report.classes.sort(key=lambda c: (change_order(c), field_key(c)))


def _domains(old_kb: KnowledgeBase, new_kb: KnowledgeBase, fields: list[JointField]) -> tuple[dict[str, list[Any]], set[str]]:
    """The values of each header field in the joint space (read from the versions' own spaces), and the optional ones."""
    out: dict[str, list[Any]] = {}
    optional: set[str] = set()
    program = compiled(old_kb).renamed(("base", "space_domains"), "old__", set()) + compiled(new_kb).renamed(("base", "space_domains"), "new__", set())
    names = shown_fields(new_kb, old_kb)
    rules = []
    by_name = {f.name: f for f in fields}
    for name in names:
        f = by_name.get(name)
        if f is None or f.shape != "scalar":
            continue
        for side in f.declared:
            rules.append(f"dom__({name}, X) :- {side}__space_dom__({name}, X).")
        if not all(_required(d) for d in f.declared.values()):
            optional.add(name)
    if not rules:
        return out, optional
    control = ground_program(new_kb, ["\n".join(program + rules + ["#show dom__/2."])], [], "the case space")
    decode = SymbolDecoder()
    for a in control.symbolic_atoms.by_signature("dom__", 2):
        name, value = decode(a.symbol)[1:]
        f = by_name[str(name)]
        out.setdefault(str(name), []).append(_plain(value, f.kind()))
    for name in out:
        out[name] = sorted(dict.fromkeys(out[name]), key=repr)
    return out, optional


def diff(old: Any, new: Any, examples: int = 1, where: Sequence[str | Where] = ()) -> DiffReport:
    """Compare two versions over their joint case space; every example is decided again with both.

    ``examples``: up to this many examples per class, smallest first, each
    one the versions read differently (other criteria met or unmet, other
    reasons). ``where``: ``FIELD=VALUE`` (or ``LIST.FIELD=VALUE``, some
    entry's field) to look only at the cases that have it.
    """
    old_kb, new_kb = resolve_kb(old), resolve_kb(new)
    wheres = [w if isinstance(w, Where) else parse_where(w) for w in where]
    start = time.perf_counter()
    report = diff_kbs(old_kb, new_kb, examples=examples, where=wheres)
    if report.classes:
        _fill_statuses(report, old_kb, new_kb)
        domains, optional = _domains(old_kb, new_kb, joint_fields(old_kb, new_kb))
        _unsplit(report, old_kb, new_kb, domains, optional)
        _merge(report, examples)
        _sort(report, new_kb, old_kb)
        _fill_statuses(report, old_kb, new_kb)  # the merged classes' examples, read by each version
    report.seconds = time.perf_counter() - start
    return report


def render_diff(report: DiffReport, kb: KnowledgeBase, changes: Optional[list] = None, old_kb: Optional[KnowledgeBase] = None) -> str:
    """The classes, grouped by their change; each with the fields that split it, its examples, what a version cannot read, and the text changes behind it."""
    from ..safetext import dumps

    w = kb.vocabulary.word
    if not report.classes:
        return w("diff_no_changes") + "\n"
    old_kb = old_kb or report.old
    kbs = [kb] + ([old_kb] if old_kb is not None else [])
    groups: list[tuple[tuple, list[tuple[int, ChangeClass]]]] = []
    for n, c in enumerate(report.classes, 1):
        if not groups or groups[-1][0] != c.change_key():
            groups.append((c.change_key(), []))
        groups[-1][1].append((n, c))
    lines = [w("diff_heading", count=len(report.classes), groups=len(groups))]
    behind: dict[int, list[int]] = {}
    for t, change in enumerate(changes or [], 1):
        for n in getattr(change, "classes", []):
            behind.setdefault(n, []).append(t)
    names = {"old": _name(old_kb) if old_kb is not None else "", "new": _name(kb)}
    for _, members in groups:
        lines.append(w("diff_group", change=members[0][1].change_text(kb)))
        for n, c in members:
            head = c.fields_text(kbs) or w("diff_every_case")
            lines.append("  " + w("diff_class", n=n, fields=head))
            if c.unsplit:
                lines.append("     " + w("diff_not_split", fields=", ".join(c.unsplit)))
            for i, example in enumerate(c.examples or [c.example], 1):
                key = "diff_example" if i == 1 else "diff_example_n"
                lines.append("     " + w(key, n=i, case=dumps(example, indent=None)))
            for side in ("old", "new"):
                r = c.readings.get(side)
                if r is None:
                    continue
                if r.missing:
                    lines.append("     " + w("diff_missing", version=names[side], fields=", ".join(r.missing)))
                if r.unread:
                    lines.append("     " + w("diff_not_read", version=names[side], fields=", ".join(r.unread)))
                if r.dropped:
                    lines.append("     " + w("diff_cannot_express", version=names[side], values=", ".join(f"{p} {dumps(v, indent=None)}" for p, v in r.dropped)))
                if r.refused:
                    lines.append("     " + w("diff_refused", version=names[side], message=r.refused))
            if n in behind:
                lines.append("     " + w("diff_text_behind", changes=", ".join(map(str, behind[n]))))
    return "\n".join(lines) + "\n"
