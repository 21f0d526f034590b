"""What is missing: every smallest set of documentation that makes a case approved.

The question is answered by clingo over the same KB that decides. One
program holds two copies of the case: ``given``, the case as it is, and
``hyp``, the case plus the documentation the solver chooses. The section
files declare what documentation can be chosen (``abducible/1``, computed
on the given copy); ``kb/abduction.lp`` says how a chosen item enters the
hypothetical copy. The solver enumerates the subset-minimal choices for
which ``hyp`` is approved, using domain heuristics (``--enum-mode=domRec``
with the chosen items preferred false), so no combination is tried in
Python.

Two reductions keep the answer readable, both exact:

- brands the KB cannot tell apart and counts as one product (the
  adalimumab brands) are chosen through one representative and offered
  together (:mod:`kineret_asp.symmetry`);
- options that differ in one item of the same kind are shown as one option
  with an any-of group ("failure, intolerance or contraindication of one of:
  Actemra SC, Cimzia, ..."). ``Option.expanded()`` gives back every single
  option, each a list of case changes that :func:`what_if` can apply.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator, Sequence

import clingo
from clingo.ast import ASTType

from .api import CaseLike, KbLike, evaluate
from .case import Case, load_case
from .changes import Change
from .decision import Decision
from .engine import input_signatures
from .errors import Diagnostic, KbError, KineretError, SolveTimeout
from .solving import ground_program, models
from .knowledge import KnowledgeBase, resolve_kb
from .rewrite import Rewrite, constant, rewrite_statement
from .symmetry import brand_classes, representatives
from .terms import Const, SymbolDecoder, Value, term_text

GIVEN = "given"
HYP = "hyp"
COPY_GUARD = "copy__"
MAX_MODELS = 50_000
KIND_ORDER = ("specialty", "genetic_test", "history", "months", "beneficial_response", "discontinue")


class AbductionLimit(KineretError):
    """The search found more minimal options than it is allowed to list."""


def item_kind(item: Value) -> str:
    return item[0] if isinstance(item, tuple) else str(item)


def item_change(item: Value) -> Change:
    """The case change that documents one abducible item (see kb/abduction.lp)."""
    kind = item_kind(item)
    if kind == "specialty":
        return Change.add("prescriber_specialties", str(item[1]))
    if kind == "genetic_test":
        return Change.add("genetic_tests", {"gene": str(item[1]), "result": str(item[2])})
    if kind == "history":
        entry = {"drug": str(item[1]), "outcome": str(item[2])}
        if isinstance(item[3], int):
            entry["months"] = item[3]
        return Change.add("medication_history", entry)
    if kind == "months":
        return Change.set(f"medication_history[{item[1]}].months", item[2])
    if kind == "beneficial_response":
        return Change.set("beneficial_response", True)
    if kind == "discontinue":
        return Change.remove("current_medications", str(item[1]))
    raise KineretError(f"the KB declares an abducible item this program cannot state as a case change: {term_text(item)}")


@dataclass(frozen=True)
class Requirement:
    """One piece of documentation to add: any one of its alternatives will do."""

    kind: str
    items: tuple[Value, ...]
    text: str

    @property
    def alternatives(self) -> tuple[Change, ...]:
        return tuple(item_change(i) for i in self.items)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "any_of": [c.to_dict() for c in self.alternatives]}


@dataclass(frozen=True)
class Option:
    """A smallest set of documentation that makes the case approved."""

    requirements: tuple[Requirement, ...]

    @property
    def size(self) -> int:
        return len(self.requirements)

    @property
    def text(self) -> str:
        return "; and ".join(r.text for r in self.requirements)

    def expanded(self) -> Iterator[list[Change]]:
        """Every single option this one stands for, as lists of case changes."""
        for combo in itertools.product(*(r.alternatives for r in self.requirements)):
            yield list(combo)

    def count(self) -> int:
        n = 1
        for r in self.requirements:
            n *= len(r.items)
        return n

    def first(self) -> list[Change]:
        """One concrete choice: the first alternative of every requirement."""
        return [r.alternatives[0] for r in self.requirements]

    def to_dict(self) -> dict:
        return {"size": self.size, "text": self.text, "count": self.count(), "requirements": [r.to_dict() for r in self.requirements]}


@dataclass(frozen=True)
class Blocker:
    """Why no documentation can make a case approved."""

    id: str
    text: str

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text}


@dataclass(frozen=True)
class Missing:
    """The answer to "what is missing for approval?"."""

    case: Case
    decision: Decision
    status: str  # "approved" | "options" | "no_option"
    options: tuple[Option, ...] = ()
    blockers: tuple[Blocker, ...] = ()

    def expanded(self) -> list[list[Change]]:
        return [combo for o in self.options for combo in o.expanded()]

    def to_dict(self) -> dict:
        return {
            "id": self.case.id,
            "decision": self.decision.decision,
            "status": self.status,
            "options": [o.to_dict() for o in self.options],
            "blockers": [b.to_dict() for b in self.blockers],
        }


class AbductionProgram:
    """The KB as the two-copy abduction program, built once per KB."""

    def __init__(self, kb: KnowledgeBase):
        from .verify import tagged_program

        self.kb = kb
        tagged, dynamic = tagged_program(kb, ("base",), guard=COPY_GUARD)
        self.inputs = input_signatures(kb)
        hyp = Rewrite(dynamic, constant(HYP))
        lines = ["#show.", "#show abduce/1.", f"#defined {COPY_GUARD}/1.", *tagged]
        abduction = kb.part("abduction")
        if not abduction:
            raise KbError([Diagnostic(kb.display_path(kb.path), 0, 0, "error", "the KB has no #program abduction part (kb/abduction.lp): what-is-missing needs it")])
        for s in abduction:
            if s.node.ast_type == ASTType.Program:
                continue
            new = rewrite_statement(s.node, hyp)
            if new is not None:
                lines.append(str(new))
        for name, arity in sorted(self.inputs):
            args = [f"X{i}" for i in range(arity)]
            lines.append(f"{name}({', '.join([HYP, *args])}) :- {name}({', '.join([GIVEN, *args])}).")
        lines.append(f"{COPY_GUARD}({GIVEN}). {COPY_GUARD}({HYP}).")
        lines.append(f"{{ abduce(A) : abducible({GIVEN}, A) }}.")
        lines.append("#defined representative__/1.")
        lines.append(":- abduce(history(D, _, _)), not representative__(D).")
        lines.append(f":- not decision({HYP}, approved).")
        lines.append(f"#heuristic abduce(A) : abducible({GIVEN}, A). [1, false]")
        self.text = "\n".join(lines)
        self.representatives = sorted(representatives(kb))


_PROGRAMS: dict[int, AbductionProgram] = {}


def abduction_program(kb: KnowledgeBase) -> AbductionProgram:
    """The abduction program of a KB, built once per loaded KB."""
    from .api import _per_kb

    return _per_kb(_PROGRAMS, kb, AbductionProgram, 8)


def minimal_choices(case: Case, kb: KnowledgeBase, limit: int = MAX_MODELS, time_limit: float = 60.0) -> list[frozenset]:
    """Every subset-minimal set of abducible items that makes ``case`` approved."""
    program = abduction_program(kb)
    facts = [term_text((atom[0], Const(GIVEN), *atom[1:])) + "." for atom in case.atoms()]
    facts += [f"representative__({term_text(Const(d))})." for d in program.representatives]
    control = ground_program(kb, [program.text, "\n".join(facts)], ["--heuristic=Domain", "--enum-mode=domRec", "--models=0"], "the abduction program")
    decode = SymbolDecoder()
    found: list[frozenset] = []
    try:
        for model in models(control, time_limit):
            found.append(frozenset(decode(s)[1] for s in model.symbols(shown=True)))
            if len(found) > limit:
                raise AbductionLimit(f"more than {limit} minimal options; the case is too far from approval to list them")
    except SolveTimeout:
        raise AbductionLimit(f"the search for missing documentation took over {time_limit:g} s") from None
    return found


class _Labels:
    """Words for requirements, from the KB's vocabulary."""

    def __init__(self, kb: KnowledgeBase, case: Case):
        self.v = kb.vocabulary
        self.case = case
        self.outcome_rank = {o: i for i, o in enumerate(self.v.outcomes)}
        self.drug_rank = {d: i for i, d in enumerate(self.v.drugs)}
        self.specialty_rank = {d: i for i, d in enumerate(self.v.specialties)}

    def names(self, drugs: Sequence[str]) -> list[str]:
        """Drug names, a whole product named once (Xeljanz/XR, Adalimumab product)."""
        chosen = sorted(set(drugs), key=lambda d: self.drug_rank.get(d, 0))
        out: list[str] = []
        done: set[str] = set()
        for d in chosen:
            if d in done:
                continue
            product = self.v.product_of.get(d, d)
            members = [m for m, p in self.v.product_of.items() if p == product]
            if product != d and len(members) > 1 and all(m in chosen for m in members):
                out.append(self.v.product_name(product))
                done.update(members)
            else:
                out.append(self.v.drugs.get(d, d))
                done.add(d)
        return out

    def outcome(self, outcome: str, months: Value) -> str:
        word = self.v.outcomes.get(outcome, outcome)
        if isinstance(months, int):
            word += f" after {months} months"
        return word

    def history(self, items: Sequence[Value]) -> str:
        by_drug: dict[str, set] = {}
        for _, drug, outcome, months in items:
            by_drug.setdefault(str(drug), set()).add((str(outcome), months))
        groups: dict[frozenset, list[str]] = {}
        for drug, outs in by_drug.items():
            groups.setdefault(frozenset(outs), []).append(drug)
        parts = []
        for outs, drugs in sorted(groups.items(), key=lambda kv: min(self.drug_rank.get(d, 0) for d in kv[1])):
            words = [self.outcome(o, m) for o, m in sorted(outs, key=lambda om: (self.outcome_rank.get(om[0], 9), repr(om[1])))]
            outcome_text = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
            names = self.names(drugs)
            parts.append(f"{outcome_text} of {names[0]}" if len(names) == 1 else f"{outcome_text} of one of: {', '.join(names)}")
        return "; or ".join(parts)

    def requirement(self, kind: str, items: Sequence[Value]) -> str:
        if kind == "specialty":
            names = [self.v.specialties.get(str(i[1]), str(i[1])) for i in items]
            return "prescribed by, or in consultation with, " + (names[0] if len(names) == 1 else "one of: " + ", ".join(names))
        if kind == "genetic_test":
            return "; or ".join(f"genetic testing of {i[1]}: {self.v.test_results.get(str(i[2]), str(i[2]))}" for i in items)
        if kind == "history":
            return "documentation of " + self.history(items)
        if kind == "months":
            parts = []
            for _, n, m in items:
                entry = self.case.medication_history[n] if isinstance(n, int) and n < len(self.case.medication_history) else None
                what = f"{self.v.drugs.get(entry.drug, entry.drug)} {entry.outcome}" if entry else "the entry"
                parts.append(f"medication_history[{n}] ({what}) documented to have lasted at least {m} months")
            return "; or ".join(parts)
        if kind == "beneficial_response":
            return "a documented beneficial response"
        if kind == "discontinue":
            names = self.names([str(i[1]) for i in items])
            return "discontinuation of " + (names[0] if len(names) == 1 else "one of: " + ", ".join(names))
        return kind


def _item_key(item: Value, labels: _Labels) -> tuple:
    """Items in the KB's own order: drugs, specialties and outcomes as declared."""
    kind = item_kind(item)
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    if kind in ("history", "discontinue"):
        outcome = labels.outcome_rank.get(str(item[2]), 9) if kind == "history" else 0
        return (rank, labels.drug_rank.get(str(item[1]), 0), outcome, repr(item))
    if kind == "specialty":
        return (rank, labels.specialty_rank.get(str(item[1]), 0), 0, repr(item))
    return (rank, 0, 0, repr(item))


def _sort_items(items, labels: _Labels) -> tuple:
    return tuple(sorted(items, key=lambda i: _item_key(i, labels)))


def group_options(choices: Sequence[frozenset], kb: KnowledgeBase, case: Case) -> list[Option]:
    """Expand representatives, merge options that differ in one item of a kind, and label."""
    classes = brand_classes(kb)
    labels = _Labels(kb, case)

    def expand(item: Value) -> frozenset:
        if item_kind(item) == "history":
            return frozenset(("history", Const(m), item[2], item[3]) for m in classes.get(str(item[1]), (str(item[1]),)))
        return frozenset([item])

    # an option is a frozenset of groups; a group is (kind, frozenset of items)
    options = {frozenset((item_kind(i), expand(i)) for i in choice) for choice in choices}
    while True:
        buckets: dict[tuple, list[tuple[frozenset, tuple]]] = {}
        for opt in options:
            for group in opt:
                buckets.setdefault((opt - {group}, group[0]), []).append((opt, group))
        merged: set[frozenset] = set()
        result: set[frozenset] = set()
        for key in sorted(buckets, key=lambda k: (len(k[0]), repr(sorted(map(repr, k[0]))), k[1])):
            members = [(o, g) for o, g in buckets[key] if o not in merged]
            if len(members) < 2:
                continue
            rest, kind = key
            union = frozenset().union(*(g[1] for _, g in members))
            result.add(rest | {(kind, union)})
            merged.update(o for o, _ in members)
        if not merged:
            break
        options = result | {o for o in options if o not in merged}
    built = []
    for opt in options:
        requirements = []
        for kind, items in sorted(opt, key=lambda g: min(_item_key(i, labels) for i in g[1])):
            ordered = _sort_items(items, labels)
            requirements.append(Requirement(kind, ordered, labels.requirement(kind, ordered)))
        built.append(Option(tuple(requirements)))
    built.sort(key=lambda o: (o.size, o.text))
    return built


def missing(case: CaseLike, kb: KbLike = None) -> Missing:
    """Every subset-minimal set of documentation additions that makes the case approved.

    Returns status ``approved`` (nothing is missing), ``options`` (sorted by
    size), or ``no_option`` with the blockers: the reason the use is not
    covered or belongs to another policy, or the unmet criteria no
    documentation can meet (the plan is never changed).
    """
    knowledge = resolve_kb(kb)
    loaded = load_case(case, knowledge)
    decision = evaluate(loaded, knowledge)
    if decision.approved:
        return Missing(loaded, decision, "approved")
    choices = minimal_choices(loaded, knowledge)
    if not choices:
        return Missing(loaded, decision, "no_option", blockers=tuple(_blockers(decision, knowledge)))
    return Missing(loaded, decision, "options", tuple(group_options(choices, knowledge, loaded)))


def _blockers(decision: Decision, kb: KnowledgeBase) -> list[Blocker]:
    if decision.reasons:
        return [Blocker(r.id, r.text) for r in decision.reasons if r.id != "NC.2"] or [Blocker(r.id, r.text) for r in decision.reasons]
    out = []
    notes = {n.id: n.text for n in decision.notes}
    for cid in decision.unmet:
        if cid in notes:
            out.append(Blocker(cid, notes[cid]))
    if not out:
        out = [Blocker(cid, kb.vocabulary.criteria[cid].text) for cid in decision.unmet if kb.vocabulary.criteria[cid].parent is None]
    return out


def render_missing(result: Missing) -> str:
    d = result.decision
    lines = [f"Case {result.case.id or '(no id)'}: {d.decision.replace('_', ' ')}"]
    if result.status == "approved":
        lines.append("Nothing is missing: the case is approved as it is.")
    elif result.status == "no_option":
        lines.append("No documentation can make this case approved:")
        for b in result.blockers:
            lines.append(f"  {b.id}  {b.text}")
    else:
        lines.append(f"{len(result.options)} option(s), smallest first; each is enough on its own:")
        for n, opt in enumerate(result.options, 1):
            lines.append(f"  {n}. [{opt.size} addition{'s' if opt.size > 1 else ''}] {opt.text}")
    return "\n".join(lines) + "\n"


def abducible_items(case: CaseLike, kb: KbLike = None) -> list[Value]:
    """The documentation the KB lets a prescriber add to this case (every drug, no grouping)."""
    knowledge = resolve_kb(kb)
    loaded = load_case(case, knowledge)
    control = clingo.Control(["--warn=none"])
    knowledge.load_into(control, ["base"])
    control.add("base", [], "\n".join(term_text(a) + "." for a in loaded.atoms()))
    control.ground([("base", [])])
    decode = SymbolDecoder()
    items: list[Value] = []
    control.solve(on_model=lambda m: items.extend(decode(s)[1] for s in m.symbols(atoms=True) if s.name == "abducible" and len(s.arguments) == 1))
    return sorted(items, key=repr)
