"""The decision on a case: what the solver answered, as a value and as text.

:func:`build_decision` turns the atoms a KB shows for one case into a
:class:`Decision`; nothing here decides anything, it only arranges the
solver's answer (criteria tree, unmet ids, reasons, notes) with the KB's
words, in the KB's order. ``to_dict`` is the public decision format;
``render_text`` is what a reviewer reads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from .errors import KineretError
from .knowledge import Vocabulary
from .safetext import dumps, safe_text
from .terms import Const, Value

if TYPE_CHECKING:  # pragma: no cover
    from .case import Case
    from .knowledge import KnowledgeBase
    from .versions import Provenance

APPROVED = "approved"  # the decision format's word for an approval


@dataclass(frozen=True)
class CriterionResult:
    """One node of the criteria tree: the policy's id and words, met or not."""

    id: str
    text: str
    met: bool
    children: tuple["CriterionResult", ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"id": self.id, "text": self.text, "met": self.met, "children": [c.to_dict() for c in self.children]}
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


@dataclass(frozen=True)
class Reason:
    """Why a request is not covered or belongs to another policy."""

    id: str
    text: str
    details: dict[str, list] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"id": self.id, "text": self.text}
        if self.details:
            out["details"] = {k: list(v) for k, v in self.details.items()}
        return out


@dataclass(frozen=True)
class Note:
    """A remark of the explanation tied to a rule id and a case field."""

    id: str
    text: str
    field: str

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "field": self.field}


@dataclass(frozen=True)
class Decision:
    """The decision on one case (the public decision format, via ``to_dict``).

    ``echo`` holds the case fields the KB says a decision repeats
    (``decision_echo/1``), readable as attributes (``decision.indication``).
    """

    id: Optional[str]
    policy: str
    effective_date: str
    echo: tuple[tuple[str, Any], ...]
    decision: str
    authorization_months: Optional[int]
    criteria: tuple[CriterionResult, ...]
    unmet: tuple[str, ...]
    reasons: tuple[Reason, ...]
    route: str
    notes: tuple[Note, ...] = ()
    source: str = field(default="<case>", compare=False)
    provenance: "Optional[Provenance]" = field(default=None, compare=False)  # which rules decided (versions.py)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        for key, value in object.__getattribute__(self, "echo"):
            if key == name:
                return value
        raise AttributeError(name)

    @property
    def approved(self) -> bool:
        return self.decision == APPROVED

    def met(self, criterion_id: str) -> Optional[bool]:
        """Whether a criterion that applies is met; None when it does not apply."""
        for root in self.criteria:
            for node in root.walk():
                if node.id == criterion_id:
                    return node.met
        return None

    def statuses(self) -> dict[str, bool]:
        """Every criterion that applies, with whether it is met."""
        return {n.id: n.met for root in self.criteria for n in root.walk()}

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "policy": self.policy,
            "effective_date": self.effective_date,
            **dict(self.echo),
            "decision": self.decision,
            "authorization_months": self.authorization_months,
            "criteria": [c.to_dict() for c in self.criteria],
            "unmet": list(self.unmet),
            "reasons": [r.to_dict() for r in self.reasons],
            "route": self.route,
            "notes": [n.to_dict() for n in self.notes],
            **({"provenance": self.provenance.to_dict()} if self.provenance is not None else {}),
        }

    def to_json(self, indent: Optional[int] = 2) -> str:
        return dumps(self.to_dict(), indent=indent)


class KbAnswerError(KineretError):
    """The KB's answer for a case is malformed (a KB bug, not a case error)."""


def field_path(value: Value) -> str:
    """``f(1)`` -> ``f[1]``; ``plan`` -> ``plan``: a note's place as a case field path."""
    if isinstance(value, tuple):
        name, *args = value
        return name + "".join(f"[{a}]" for a in args)
    return str(value)


def _one(output: dict[str, list[tuple]], name: str, required: bool = True) -> Optional[Value]:
    values = output.get(name, [])
    if len(values) > 1:
        raise KbAnswerError(f"the KB answered {len(values)} values for {name}: {sorted(map(repr, values))}")
    if not values:
        if required:
            raise KbAnswerError(f"the KB gave no {name}")
        return None
    return values[0][0]


class DecisionBuilder:
    """Arranges answers into decisions for one KB; criteria trees are memoized (few patterns recur)."""

    def __init__(self, kb: "KnowledgeBase"):
        self.kb = kb
        self.vocab = kb.vocabulary
        self.rank = self.vocab.criterion_rank()
        self.reason_rank = {r: i for i, r in enumerate(self.vocab.reason_texts)}
        self.echo_fields = [str(a[0]) for a in kb.facts("decision_echo", 1)]
        self._trees: dict[tuple, tuple[tuple[CriterionResult, ...], tuple[str, ...]]] = {}
        self._provenance: dict[Optional[str], Any] = {}

    def id_order(self, cid: str) -> tuple:
        return (0, self.rank[cid], "") if cid in self.rank else (1, 0, cid)

    def tree(self, applies: frozenset, unmet_ids: frozenset, node_notes: tuple) -> tuple[tuple[CriterionResult, ...], tuple[str, ...]]:
        key = (applies, unmet_ids, node_notes)
        hit = self._trees.get(key)
        if hit is not None:
            return hit
        vocab = self.vocab
        notes = dict(node_notes)

        def node(cid: str) -> CriterionResult:
            crit = vocab.criteria.get(cid)
            if crit is None:
                raise KbAnswerError(f"the KB says criterion {cid!r} applies but declares no criterion({cid!r}, ...)")
            kids = tuple(node(k) for k in vocab.children.get(cid, ()) if k in applies)
            return CriterionResult(cid, crit.text, cid not in unmet_ids, kids, notes.get(cid, ()))

        roots = sorted((c for c in applies if c in vocab.criteria and vocab.criteria[c].parent is None), key=self.id_order)
        criteria = tuple(node(r) for r in roots)
        unmet = tuple(n.id for root in criteria for n in root.walk() if not n.met)
        if len(self._trees) > 20_000:
            self._trees.clear()
        self._trees[key] = (criteria, unmet)
        return criteria, unmet

    def build(self, case: "Case", output: dict[str, list[tuple]], chosen_by: Optional[str] = None) -> Decision:
        """Arrange one case's answer atoms into a Decision."""
        vocab = self.vocab
        applies = frozenset(str(a[0]) for a in output.get("applies", []))
        unmet_ids = frozenset(str(a[0]) for a in output.get("unmet", []))
        node_notes: dict[str, list[str]] = {}
        notes: list[Note] = []
        for cid, kind, where in sorted(output.get("note", []), key=lambda a: (self.id_order(str(a[0])), repr(a[1]), repr(a[2]))):
            text = vocab.note_texts.get(kind, str(kind))
            notes.append(Note(str(cid), text, field_path(where)))
            if str(cid) in applies and text not in node_notes.get(str(cid), []):
                node_notes.setdefault(str(cid), []).append(text)
        criteria, unmet = self.tree(applies, unmet_ids, tuple(sorted((k, tuple(v)) for k, v in node_notes.items())))
        details: dict[str, dict[str, list]] = {}
        for rid, detail in sorted(output.get("reason_detail", []), key=repr):
            name, value = (detail[0], detail[1]) if isinstance(detail, tuple) and len(detail) == 2 else (str(detail), None)
            details.setdefault(str(rid), {}).setdefault(name, []).append(str(value) if isinstance(value, Const) else value)
        reasons = tuple(
            Reason(rid, vocab.reason_texts.get(rid, rid), details.get(rid, {}))
            for rid in sorted({str(a[0]) for a in output.get("reason", [])}, key=lambda r: (self.reason_rank.get(r, len(self.reason_rank)), r))
        )
        months = _one(output, "authorization_months", required=False)
        return Decision(
            id=case.id,
            policy=vocab.policy_id,
            effective_date=vocab.effective_from,
            echo=tuple((name, case.get(name)) for name in self.echo_fields),
            decision=str(_one(output, "decision")),
            authorization_months=int(months) if months is not None else None,
            criteria=criteria,
            unmet=unmet,
            reasons=reasons,
            route=str(_one(output, "route")),
            notes=tuple(notes),
            source=case.source,
            provenance=self.provenance(chosen_by),
        )

    def provenance(self, chosen_by: Optional[str]) -> "Provenance":
        found = self._provenance.get(chosen_by)
        if found is None:
            from .versions import GIVEN, provenance

            found = self._provenance[chosen_by] = provenance(self.kb, chosen_by or GIVEN)
        return found


def builder(kb: "KnowledgeBase") -> DecisionBuilder:
    """The decision builder of a KB, made once per loaded KB."""
    return kb.derived("decision_builder", lambda: DecisionBuilder(kb))


def build_decision(case: "Case", output: dict[str, list[tuple]], kb: "KnowledgeBase", chosen_by: Optional[str] = None) -> Decision:
    """Arrange one case's answer atoms into a Decision (``chosen_by``: how the version was chosen)."""
    return builder(kb).build(case, output, chosen_by)


def verdict(decision: Decision, vocab: Vocabulary, with_unmet: bool = True) -> str:
    """The decision's headline words: APPROVED for up to 12 months, CRITERIA NOT MET (unmet: ...)."""
    words = vocab.decision_texts.get(decision.decision, decision.decision)
    if decision.approved:
        return vocab.word("approved_for", decision=words, months=decision.authorization_months)
    if decision.reasons:
        return f"{words} ({', '.join(r.id for r in decision.reasons)})"
    if with_unmet and decision.unmet:
        return f"{words} ({vocab.word('unmet_label', ids=', '.join(decision.unmet))})"
    return words


def render_text(decision: Decision, vocab: Vocabulary, case: "Optional[Case]" = None, kb: "Optional[KnowledgeBase]" = None) -> str:
    """The decision as a reviewer reads it: header, criteria tree, reasons, decision."""
    w = vocab.word
    lines = [w("decision_header", policy=vocab.policy_id, title=vocab.title, drug=vocab.drug_name, effective=decision.effective_date)]
    lines += provenance_lines(decision, vocab, case)
    lines.append(w("case_line", id=decision.id or w("no_id"), source=decision.source))
    if case is not None and case.schema is not None:
        facts = []
        for name, label, absent in (kb.facts("header_field", 3) if kb is not None else []):
            f = case.schema.by_name.get(str(name))
            value = case.get(str(name))
            shown = case.schema.value_label(f.kind, value) if f is not None and value is not None else str(absent)
            facts.append(w("field_line", label=label, value=shown))
        if facts:
            lines.append(w("field_separator").join(facts))
    if decision.criteria:
        lines.append("")
        lines.append(w("criteria_heading"))
        pad = " " * (len(w("unmet_mark")) + 3)

        def show(node: CriterionResult, depth: int) -> None:
            mark = w("met_mark") if node.met else w("unmet_mark")
            lines.append(f"{'  ' * depth}{mark} {node.id}  {node.text}")
            for note in node.notes:
                lines.append(f"{'  ' * depth}{pad}{w('note_line', text=note)}")
            for child in node.children:
                show(child, depth + 1)

        for root in decision.criteria:
            show(root, 1)
    if decision.reasons:
        lines.append("")
        lines.append(w("reasons_heading"))
        for r in decision.reasons:
            extra = "; ".join(f"{k}: {', '.join(map(safe_text, v))}" for k, v in r.details.items())
            lines.append(f"  {r.id}  {r.text}" + (f" ({extra})" if extra else ""))
    loose = [n for n in decision.notes if decision.met(n.id) not in (True, False)]
    if loose:
        lines.append("")
        lines.append(w("notes_heading"))
        for n in loose:
            lines.append(f"  {n.id} ({n.field})  {n.text}")
    lines.append("")
    lines.append(w("verdict_line", verdict=verdict(decision, vocab)))
    lines.append(w("route_line", route=decision.route, text=vocab.route_texts.get(decision.route, decision.route)))
    return "\n".join(lines) + "\n"


def provenance_lines(decision: Decision, vocab: Vocabulary, case: "Optional[Case]" = None) -> list[str]:
    """The header lines that say which rules decided: version, how it was chosen, KB folder, hashes."""
    p = decision.provenance
    if p is None:
        return []
    w = vocab.word
    date = None
    if case is not None and case.schema is not None:
        from .schema import DATE_OF_SERVICE

        name = case.schema.role(DATE_OF_SERVICE)
        date = case.get(name) if name else None
    how = w(f"chosen_by_{p.chosen_by}", date=date or "")
    return [
        w("rules_line", policy=p.policy, version=p.version, period=f"{p.version}..{p.effective_to or ''}", chosen=how),
        w("kb_line", kb=p.kb, folder=p.folder),
        w("hash_line", rules=p.rules_sha256, framework=p.framework_sha256, package=p.package_version),
    ]
