"""``kineret-asp verify``: properties that hold for every case of a finite space.

The KB declares the space (``#program space.``, kb/verify/space.lp) and the
properties (``#program property.``, one file each under kb/properties). For
every property the solver explores the whole space at once: the KB is
rewritten so that every case-dependent predicate takes a copy name as its
first argument (``decision(a, approved)``), the space generates each copy,
and the property relates the copies. A property fails when

- ``counterexample`` can be true: the smallest such case (fewest facts) is
  printed as case JSON, decided again with ``evaluate`` to show that it
  reproduces; or
- some ``expected_witness(W)`` has no case with ``witness(W)``: computed as
  brave consequences, one solve for all of them.

No case is enumerated in Python.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

import clingo
from clingo.ast import ASTType

from ..asp.solving import ground_program, models
from ..asp.symbols import SymbolDecoder, display, to_value
from ..cases.atoms import data_from_atoms
from ..cases.load import load
from ..decisions.decision import KbAnswerError
from ..engine.program import compiled
from ..errors import Diagnostic, KbError, KineretError, SolveTimeout
from ..knowledge.base import KnowledgeBase, resolve_kb
from ..knowledge.parse import Statement


def minimize_inputs(kb: KnowledgeBase, tagged: bool) -> str:
    """A #minimize over every case fact, so examples come out as small as they can."""
    elements = []
    for name, arity in sorted(kb.schema.input_signatures()):
        args = [f"X{i}" for i in range(arity + (1 if tagged else 0))]
        term = ",".join([f'"{name}"', *args]) if args else f'"{name}"'
        atom = f"{name}({','.join(args)})" if args else name
        elements.append(f"1,{term} : {atom}")
    return "#minimize { " + "; ".join(elements) + " }."


def atoms_to_case(atoms: list[tuple], kb: KnowledgeBase) -> dict:
    """Input atoms (no copy argument) as a case dict in the JSON format."""
    atoms = [a if isinstance(a, tuple) else (str(a),) for a in atoms]
    data, _ = data_from_atoms(kb.schema, [(a, "<space>") for a in sorted(atoms, key=repr)], "<space>")
    return load(data, kb, shown="<space>").case.to_dict()


@dataclass
class PropertyResult:
    """The outcome of one property."""

    name: str
    text: str
    file: str
    holds: bool
    counterexample: dict[str, dict] = field(default_factory=dict)
    decisions: dict[str, str] = field(default_factory=dict)
    missing_witnesses: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "text": self.text,
            "file": self.file,
            "holds": self.holds,
            "counterexample": self.counterexample or None,
            "decisions": self.decisions or None,
            "missing_witnesses": self.missing_witnesses,
            "seconds": round(self.seconds, 3),
        }


def properties_of(kb: KnowledgeBase) -> dict[str, list[Statement]]:
    """The property part's statements, one property per file."""
    out: dict[str, list[Statement]] = {}
    for s in kb.part("property"):
        if s.node.ast_type != ASTType.Program:
            out.setdefault(s.file, []).append(s)
    return out


class VerifyError(KineretError):
    pass


def _control(kb: KnowledgeBase, program: list[str], options: list[str]) -> clingo.Control:
    return ground_program(kb, ["\n".join(program)], options, "the property")


def check_property(kb: KnowledgeBase, file: str, statements: list[Statement], tagged: list[str], time_limit: float = 60.0) -> PropertyResult:
    start = time.perf_counter()
    own = [str(s.node) for s in statements]
    decode = SymbolDecoder()
    names = {n for s in statements for n in _heads(s)}
    declared = declared_property(statements)
    if declared is None:
        first = statements[0]
        raise KbError([Diagnostic(first.file, first.line, 1, "error", "a property file must declare property(Name, Text) as a fact")])
    result = PropertyResult(*declared, file, True)
    if "expected_witness" in names:
        control = _control(kb, tagged + own + ["#show witness/1.", "#show expected_witness/1."], ["--enum-mode=brave", "--models=0"])
        last: list[tuple] = []
        control.solve(on_model=lambda m: last.__setitem__(slice(None), [decode(s) for s in m.symbols(shown=True)]))
        expected = {a[1] for a in last if a[0] == "expected_witness"}
        seen = {a[1] for a in last if a[0] == "witness"}
        missing = sorted((w for w in expected if w not in seen), key=repr)
        if missing:
            result.holds = False
            result.missing_witnesses = [display(w) for w in missing]
    if "counterexample" in names:
        control = _control(kb, tagged + own + [":- not counterexample.", minimize_inputs(kb, tagged=True), "#show."] + _show_inputs(kb) + ["#show decision/2."], ["--opt-mode=opt"])
        best: list[list[tuple]] = []
        try:
            for model in models(control, time_limit):  # each model is smaller: keep the last
                best[:] = [[decode(s) for s in model.symbols(shown=True)]]
        except SolveTimeout:
            pass  # keep the smallest counterexample found so far
        if best:
            result.holds = False
            atoms = best[0]
            copies = sorted({a[1] for a in atoms}, key=str)
            for c in copies:
                mine = [(a[0], *a[2:]) for a in atoms if a[1] == c and a[0] != "decision"]
                result.counterexample[str(c)] = atoms_to_case(mine, kb)
                result.decisions[str(c)] = "+".join(sorted(str(a[2]) for a in atoms if a[0] == "decision" and a[1] == c)) or "none"
    result.seconds = time.perf_counter() - start
    return result


def declared_property(statements: list[Statement]) -> Optional[tuple[str, str]]:
    """Name and words of a property file's property(Name, Text) fact, read from the AST."""
    for s in statements:
        node = s.node
        if node.ast_type == ASTType.Rule and not node.body and node.head.ast_type == ASTType.Literal:
            sym = node.head.atom.symbol if node.head.atom.ast_type == ASTType.SymbolicAtom else None
            if sym is not None and sym.ast_type == ASTType.Function and sym.name == "property" and len(sym.arguments) == 2:
                name, text = (to_value(clingo.parse_term(str(a))) for a in sym.arguments)
                return str(name), str(text)
    return None


def _heads(s: Statement) -> set[str]:
    node = s.node
    if node.ast_type != ASTType.Rule or node.head.ast_type != ASTType.Literal:
        return set()
    atom = node.head.atom
    if atom.ast_type != ASTType.SymbolicAtom:
        return set()
    sym = atom.symbol
    return {sym.name if sym.ast_type == ASTType.Function else str(sym)}


def _show_inputs(kb: KnowledgeBase) -> list[str]:
    return [f"#show {n}/{a + 1}." for n, a in sorted(kb.schema.input_signatures())]


def verify_kb(kb: Any = None, only: Optional[list[str]] = None) -> list[PropertyResult]:
    """Check every property the KB declares; each counterexample is reproduced with evaluate."""
    from ..api import evaluate

    knowledge = resolve_kb(kb)
    props = properties_of(knowledge)
    if not props:
        raise KbError([Diagnostic(knowledge.display_path(knowledge.path), 0, 0, "error", "the KB declares no property (#program property.) under kb/properties")])
    tagged = compiled(knowledge).copies_program()
    results = []
    for file, statements in sorted(props.items()):
        if only and (declared_property(statements) or ("",))[0] not in only:
            continue
        result = check_property(knowledge, file, statements, tagged)
        for copy, case in result.counterexample.items():
            try:
                reproduced = evaluate(case, knowledge).decision
            except KbAnswerError:
                reproduced = "several or none"  # evaluate refuses a case the KB gives no single decision
                if "+" in result.decisions[copy] or result.decisions[copy] == "none":
                    continue
            if reproduced != result.decisions[copy]:
                raise VerifyError(f"{result.name}: the counterexample's copy {copy} is {result.decisions[copy]} in the space but {reproduced} by evaluate")
        results.append(result)
    return results


def render_results(results: list[PropertyResult]) -> str:
    from ..safetext import dumps

    lines = []
    for r in results:
        lines.append(f"{'holds' if r.holds else 'FAILS'}  {r.name}  ({r.seconds:.2f} s)  {r.text}")
        if r.missing_witnesses:
            lines.append(f"       no case of the space has: {', '.join(r.missing_witnesses)}")
        for copy, case in r.counterexample.items():
            lines.append(f"       counterexample, copy {copy} (evaluate gives {r.decisions[copy]}):")
            lines.append("       " + dumps(case, indent=None))
    failed = sum(not r.holds for r in results)
    lines.append(f"{len(results) - failed} of {len(results)} properties hold")
    return "\n".join(lines) + "\n"
