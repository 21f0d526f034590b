"""``kineret-asp diff OLD_KB NEW_KB``: which cases a KB change affects.

Both KB versions go into one clingo program over the same case space (the
new KB's ``#program space.``): every predicate of the old KB is renamed
``old__p``, of the new ``new__p``, while the case facts are shared. The
solver then enumerates, projected on a description of the case (indication,
plan, request) and of the change (old and new decision, criteria whose
status differs), every class of cases whose decision changes; for each class
it finds one smallest example case (fewest facts, by optimization). Nothing
is enumerated in Python.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

import clingo
import clingo.ast as ast
from clingo.ast import ASTType

from .engine import input_signatures
from .errors import Diagnostic, KbError, SolveTimeout
from .solving import ground_program, models
from .knowledge import KnowledgeBase, outline_key, resolve_kb
from .rewrite import Signature
from .terms import SymbolDecoder
from .verify import atoms_to_case, minimize_inputs


class _Rename(ast.Transformer):
    def __init__(self, prefix: str, keep: set[Signature]):
        self.prefix = prefix
        self.keep = keep

    def _rename(self, fn: ast.AST) -> ast.AST:
        if fn.ast_type == ASTType.Function and (fn.name, len(fn.arguments)) not in self.keep:
            return fn.update(name=self.prefix + fn.name)
        return fn

    def visit_SymbolicAtom(self, node: ast.AST) -> ast.AST:
        sym = node.symbol
        if sym.ast_type == ASTType.SymbolicTerm and sym.symbol.type == clingo.SymbolType.Function:
            if (sym.symbol.name, len(sym.symbol.arguments)) not in self.keep:
                return node.update(symbol=ast.Function(sym.location, self.prefix + sym.symbol.name, [], 0))
            return node
        if sym.ast_type == ASTType.Pool:
            return node.update(symbol=sym.update(arguments=[self._rename(a) for a in sym.arguments]))
        if sym.ast_type == ASTType.UnaryOperation:
            return node.update(symbol=sym.update(argument=self._rename(sym.argument)))
        return node.update(symbol=self._rename(sym))


def renamed(kb: KnowledgeBase, parts: tuple[str, ...], prefix: str, keep: set[Signature]) -> list[str]:
    """The KB's parts with every predicate but the case inputs renamed."""
    rename = _Rename(prefix, keep)
    lines = []
    for name in parts:
        for s in kb.part(name):
            kind = s.node.ast_type
            if kind in (ASTType.Program, ASTType.ShowSignature, ASTType.ShowTerm):
                continue
            if kind == ASTType.Defined:
                if (s.node.name, s.node.arity) not in keep:
                    lines.append(str(s.node.update(name=prefix + s.node.name)))
                else:
                    lines.append(str(s.node))
                continue
            lines.append(str(rename(s.node)))
    return lines


DIFF_RULES = """
status(old, C, met) :- old__applies(C), not old__unmet(C).
status(old, C, unmet) :- old__unmet(C).
status(new, C, met) :- new__applies(C), not new__unmet(C).
status(new, C, unmet) :- new__unmet(C).
flip(C) :- status(old, C, S), not status(new, C, S).
flip(C) :- status(new, C, S), not status(old, C, S).
changed :- old__decision(D), not new__decision(D).
class(indication, I) :- case_indication(I).
class(plan, P) :- case_plan(P).
class(plan, none) :- not case_plan(_).
class(request, R) :- case_request(R).
class(old, D) :- old__decision(D).
class(new, D) :- new__decision(D).
class(flip, C) :- flip(C).
#show class/2.
"""


@dataclass
class ChangeClass:
    """A class of cases whose decision changes, with one smallest example."""

    indication: str
    plan: Optional[str]
    request: str
    old: str
    new: str
    flipped: list[dict]
    example: dict = field(default_factory=dict)

    def label(self, kb: KnowledgeBase) -> str:
        v = kb.vocabulary
        plan = v.plans.get(self.plan, self.plan) if self.plan else "no plan given"
        text = f"{v.indications.get(self.indication, self.indication)}, {plan}, {v.requests.get(self.request, self.request)}: {self.old} -> {self.new}"
        if self.flipped:
            mark = {"met": "met", "unmet": "unmet", None: "n/a"}
            ids = {f["id"] for f in self.flipped}
            parts = []
            for f in self.flipped:
                part = f"{f['id']} {mark[f['old']]} -> {mark[f['new']]}"
                kids = kb.vocabulary.children.get(f["id"], ())
                if f.get("text") and not ids & set(kids):  # a cause, not a consequence: quote it
                    part += f" [{f['text']}]"
                parts.append(part)
            text += f" (criteria: {', '.join(parts)})"
        return text

    def to_dict(self, kb: KnowledgeBase) -> dict:
        return {
            "label": self.label(kb),
            "indication": self.indication,
            "plan": self.plan,
            "request": self.request,
            "old": self.old,
            "new": self.new,
            "criteria": self.flipped,
            "example": self.example,
        }


@dataclass
class DiffReport:
    classes: list[ChangeClass]
    seconds: float = 0.0


def diff_kbs(old: Any, new: Any, time_limit: float = 60.0) -> DiffReport:
    """Every class of cases of the new KB's space whose decision differs between the two KBs."""
    start = time.perf_counter()
    old_kb, new_kb = resolve_kb(old), resolve_kb(new)
    if not new_kb.part("space"):
        raise KbError([Diagnostic(new_kb.display_path(new_kb.path), 0, 0, "error", "the new KB declares no case space (#program space.): diff needs kb/verify/space.lp")])
    keep = input_signatures(old_kb) | input_signatures(new_kb)
    program = renamed(old_kb, ("base",), "old__", keep) + renamed(new_kb, ("base", "space"), "new__", keep)
    program.append(DIFF_RULES)
    program.append(":- not changed.")
    program.append(minimize_inputs(new_kb, tagged=False))
    control = ground_program(new_kb, ["\n".join(program)], ["--project=show", "--opt-mode=ignore", "--models=0"], "the two KBs together")
    decode = SymbolDecoder()
    found: list[frozenset] = []
    control.solve(on_model=lambda m: found.append(frozenset(decode(s) for s in m.symbols(shown=True))))
    classes = []
    literals = {decode(a.symbol): a.literal for a in control.symbolic_atoms.by_signature("class", 2)}
    control.configuration.solve.project = "no"
    control.configuration.solve.opt_mode = "opt"
    control.configuration.solve.models = "0"
    for found_class in found:
        assumptions = [lit if atom in found_class else -lit for atom, lit in literals.items()]
        best: list[list] = []
        try:
            for model in models(control, time_limit, assumptions):  # each model is smaller: keep the last
                best[:] = [[decode(s) for s in model.symbols(atoms=True) if (s.name, len(s.arguments)) in keep]]
        except SolveTimeout:
            pass  # keep the smallest example found so far
        classes.append(_describe(found_class, best[0] if best else [], new_kb, old_kb))
    classes.sort(key=lambda c: (c.indication, c.plan or "", c.request, c.old, c.new, [f["id"] for f in c.flipped]))
    return DiffReport(classes, time.perf_counter() - start)


def _describe(atoms: frozenset, example: list, new_kb: KnowledgeBase, old_kb: KnowledgeBase) -> ChangeClass:
    values: dict[str, list] = {}
    for _, key, value in atoms:
        values.setdefault(str(key), []).append(value)
    plan = str(values["plan"][0])
    flips = sorted((str(c) for c in values.get("flip", [])), key=outline_key)
    return ChangeClass(
        indication=str(values["indication"][0]),
        plan=None if plan == "none" else plan,
        request=str(values["request"][0]),
        old=str(values["old"][0]),
        new=str(values["new"][0]),
        flipped=[{"id": c, "old": None, "new": None} for c in flips],
        example=atoms_to_case(example, new_kb) if example else {},
    )


def _fill_statuses(report: DiffReport, old_kb: KnowledgeBase, new_kb: KnowledgeBase) -> None:
    """Decide every example with both KBs, which also checks that it reproduces."""
    from .api import evaluate

    for c in report.classes:
        before = evaluate(c.example, old_kb)
        after = evaluate(c.example, new_kb)
        if (before.decision, after.decision) != (c.old, c.new):
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
    import json

    if not report.classes:
        return "no decision changes\n"
    lines = [f"{len(report.classes)} class(es) of cases change decision:"]
    for n, c in enumerate(report.classes, 1):
        lines.append(f"{n}. {c.label(kb)}")
        lines.append(f"   example: {json.dumps(c.example, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"
