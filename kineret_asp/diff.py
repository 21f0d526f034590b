"""``kineret-asp diff OLD_KB NEW_KB``: which cases a KB change affects.

A case changes when its decision or the length of its approval differs.

Both KB versions go into one clingo program over the same case space (the
new KB's ``#program space.``): every predicate of the old KB is renamed
``old__p``, of the new ``new__p``, while the case facts are shared. The
solver then enumerates, projected on a description of the case (the fields
a decision's header shows, header_field/3) and of the change (old and new decision, criteria whose
status differs), every class of cases whose decision changes; for each class
it finds one smallest example case (fewest facts, by optimization). Nothing
is enumerated in Python.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import Diagnostic, KbError, SolveTimeout
from .knowledge import KnowledgeBase, resolve_kb
from .program import compiled
from .solving import ground_program, models
from .terms import SymbolDecoder
from .verify import atoms_to_case, minimize_inputs


DIFF_RULES = """
status(old, C, met) :- old__applies(C), not old__unmet(C).
status(old, C, unmet) :- old__unmet(C).
status(new, C, met) :- new__applies(C), not new__unmet(C).
status(new, C, unmet) :- new__unmet(C).
flip(C) :- status(old, C, S), not status(new, C, S).
flip(C) :- status(new, C, S), not status(old, C, S).
changed :- old__decision(D), not new__decision(D).
changed :- old__authorization_months(M), not new__authorization_months(M).
changed :- new__authorization_months(M), not old__authorization_months(M).
class(old, D) :- old__decision(D).
class(new, D) :- new__decision(D).
class(old_months, M) :- old__authorization_months(M).
class(new_months, M) :- new__authorization_months(M).
class(flip, C) :- flip(C).
#show class/2.
"""


def class_rules(kb: KnowledgeBase) -> list[str]:
    """A class of cases is described by the fields a decision's header shows (header_field/3)."""
    lines = []
    for name in shown_fields(kb):
        f = kb.schema.by_name[name]
        lines.append(f"class(field({f.name}), X) :- {f.atom}(X).")
        lines.append(f"class(field({f.name}), none) :- not {f.atom}(_).")
    return lines


def shown_fields(kb: KnowledgeBase) -> list[str]:
    """The scalar fields with an atom that describe a class, in the KB's order."""
    out = []
    for name, _, _ in kb.facts("header_field", 3):
        f = kb.schema.by_name.get(str(name))
        if f is not None and f.atom and f.kind.name not in ("list", "entries", "boolean"):
            out.append(f.name)
    return out


@dataclass
class ChangeClass:
    """A class of cases whose decision changes, with one smallest example."""

    fields: tuple[tuple[str, Optional[str]], ...]
    old: str
    new: str
    flipped: list[dict]
    example: dict = field(default_factory=dict)
    old_months: Optional[int] = None  # how long an approval lasts, before and after
    new_months: Optional[int] = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        for key, value in object.__getattribute__(self, "fields"):
            if key == name:
                return value
        raise AttributeError(name)

    def sort_key(self) -> tuple:
        return tuple(v or "" for _, v in self.fields)

    def label(self, kb: KnowledgeBase) -> str:
        schema = kb.schema
        shown = {str(n): (str(lbl), str(absent)) for n, lbl, absent in kb.facts("header_field", 3)}
        parts = []
        for name, value in self.fields:
            f = schema.by_name[name]
            label, absent = shown.get(name, (name, ""))
            parts.append(schema.value_label(f.kind, value) if value is not None else f"{label} {absent}")
        lengths = None not in (self.old_months, self.new_months) and self.old_months != self.new_months  # only an approval's length changed
        old = self.old + (f" ({self.old_months} months)" if lengths else "")
        new = self.new + (f" ({self.new_months} months)" if lengths else "")
        text = f"{', '.join(parts)}: {old} -> {new}"
        if self.flipped:
            w = kb.vocabulary.word
            mark = {"met": w("status_met"), "unmet": w("status_unmet"), None: w("status_none")}
            ids = {f["id"] for f in self.flipped}
            items = []
            for f in self.flipped:
                item = f"{f['id']} {mark[f['old']]} -> {mark[f['new']]}"
                kids = kb.vocabulary.children.get(f["id"], ())
                if f.get("text") and not ids & set(kids):  # a cause, not a consequence: quote it
                    item += f" [{f['text']}]"
                items.append(item)
            text += f" (criteria: {', '.join(items)})"
        return text

    def to_dict(self, kb: KnowledgeBase) -> dict:
        return {"label": self.label(kb), **dict(self.fields), "old": self.old, "new": self.new, "old_months": self.old_months, "new_months": self.new_months, "criteria": self.flipped, "example": self.example}


@dataclass
class DiffReport:
    classes: list[ChangeClass]
    seconds: float = 0.0


def diff_kbs(old: Any, new: Any, time_limit: float = 60.0) -> DiffReport:
    """Every class of cases of the new KB's space whose decision differs between the two KBs."""
    start = time.perf_counter()
    old_kb, new_kb = resolve_kb(old), resolve_kb(new)
    keep = old_kb.schema.input_signatures() | new_kb.schema.input_signatures()
    program = compiled(old_kb).renamed(("base",), "old__", keep) + compiled(new_kb).renamed(("base", "space"), "new__", keep)
    program += [old_kb.schema.defined_text(), new_kb.schema.defined_text()]
    program.append(DIFF_RULES)
    program += class_rules(new_kb)
    program.append(":- not changed.")
    program.append(minimize_inputs(new_kb, tagged=False))
    control = ground_program(new_kb, ["\n".join(program)], ["--project=show", "--opt-mode=ignore", "--models=0"], "the two KBs together")
    decode = SymbolDecoder()
    found: list[frozenset] = []
    control.solve(on_model=lambda m: found.append(frozenset(decode(s) for s in m.symbols(shown=True))))
    classes = []
    literals = {decode(a.symbol): a.literal for a in control.symbolic_atoms.by_signature("class", 2)}
    inputs = {a.symbol for name, arity in keep for a in control.symbolic_atoms.by_signature(name, arity)}
    control.configuration.solve.project = "no"
    control.configuration.solve.opt_mode = "opt"
    control.configuration.solve.models = "0"
    for found_class in found:
        assumptions = [lit if atom in found_class else -lit for atom, lit in literals.items()]
        best: list = []
        try:
            for model in models(control, time_limit, assumptions):  # each model is smaller: keep the last
                best = model.symbols(atoms=True)  # read (through clingo's C API) only once the smallest is known
        except SolveTimeout:
            pass  # keep the smallest example found so far
        example = [decode(s) for s in best if s in inputs]
        classes.append(_describe(found_class, example, new_kb, old_kb))
    classes.sort(key=lambda c: (c.sort_key(), c.old, c.new, c.old_months or 0, c.new_months or 0, [f["id"] for f in c.flipped]))
    return DiffReport(classes, time.perf_counter() - start)


def _describe(atoms: frozenset, example: list, new_kb: KnowledgeBase, old_kb: KnowledgeBase) -> ChangeClass:
    values: dict[Any, list] = {}
    for _, key, value in atoms:
        values.setdefault(key, []).append(value)
    fields = []
    for name in shown_fields(new_kb):
        value = str(values[("field", name)][0])
        fields.append((name, None if value == "none" else value))
    rank = {c: i for i, c in enumerate([*new_kb.vocabulary.criteria, *old_kb.vocabulary.criteria])}
    flips = sorted((str(c) for c in values.get("flip", [])), key=lambda c: (rank.get(c, len(rank)), c))
    return ChangeClass(
        fields=tuple(fields),
        old=str(values["old"][0]),
        new=str(values["new"][0]),
        old_months=int(values["old_months"][0]) if "old_months" in values else None,
        new_months=int(values["new_months"][0]) if "new_months" in values else None,
        flipped=[{"id": c, "old": None, "new": None} for c in flips],
        example=atoms_to_case(example, new_kb) if example else {},
    )


def _fill_statuses(report: DiffReport, old_kb: KnowledgeBase, new_kb: KnowledgeBase) -> None:
    """Decide every example with both KBs, which also checks that it reproduces."""
    from .api import evaluate

    for c in report.classes:
        before = evaluate(c.example, old_kb)
        after = evaluate(c.example, new_kb)
        if (before.decision, after.decision, before.authorization_months, after.authorization_months) != (c.old, c.new, c.old_months, c.new_months):
            raise KbError([Diagnostic(new_kb.display_path(new_kb.path), 0, 0, "error", f"diff example does not reproduce: {before.decision} -> {after.decision}, expected {c.old} -> {c.new}")])
        b, a = before.statuses(), after.statuses()
        word = {True: "met", False: "unmet", None: None}
        for f in c.flipped:
            f["old"], f["new"] = word[b.get(f["id"])], word[a.get(f["id"])]
            f["text"] = (new_kb.vocabulary.criteria.get(f["id"]) or old_kb.vocabulary.criteria[f["id"]]).text


def diff(old: Any, new: Any) -> DiffReport:
    """Compare two KB versions; every example is decided again with both."""
    old_kb, new_kb = resolve_kb(old), resolve_kb(new)
    report = diff_kbs(old_kb, new_kb)
    _fill_statuses(report, old_kb, new_kb)
    return report


def render_diff(report: DiffReport, kb: KnowledgeBase) -> str:
    from .safetext import dumps

    if not report.classes:
        return "no decision changes\n"
    lines = [f"{len(report.classes)} class(es) of cases change decision:"]
    for n, c in enumerate(report.classes, 1):
        lines.append(f"{n}. {c.label(kb)}")
        lines.append(f"   example: {dumps(c.example, indent=None)}")
    return "\n".join(lines) + "\n"
