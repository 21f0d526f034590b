"""The decision on a case: what the solver answered, as a value and as text.

:func:`build_decision` turns the atoms a KB shows for one case into a
:class:`Decision`; nothing here decides anything, it only arranges the
solver's answer (criteria tree, unmet ids, reasons, notes) with the KB's
words. ``to_dict`` is the public decision format; ``render_text`` is what a
reviewer reads.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from .case import Case
from .errors import KineretError
from .knowledge import Vocabulary, outline_key
from .terms import Const, Value

ROUTE_EXPLANATION = {
    "auto_approve": "approved automatically",
    "clinical_review": "routed to a clinical reviewer: this is not a denial (an adverse medical-necessity determination needs a physician's review)",
    "other_policy": "decided under another coverage policy",
}


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
    """The decision on one case (the public decision format, via ``to_dict``)."""

    id: Optional[str]
    policy: str
    effective_date: str
    indication: str
    request: str
    decision: str
    authorization_months: Optional[int]
    criteria: tuple[CriterionResult, ...]
    unmet: tuple[str, ...]
    reasons: tuple[Reason, ...]
    route: str
    notes: tuple[Note, ...] = ()
    source: str = field(default="<case>", compare=False)

    @property
    def approved(self) -> bool:
        return self.decision == "approved"

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
            "indication": self.indication,
            "request": self.request,
            "decision": self.decision,
            "authorization_months": self.authorization_months,
            "criteria": [c.to_dict() for c in self.criteria],
            "unmet": list(self.unmet),
            "reasons": [r.to_dict() for r in self.reasons],
            "route": self.route,
            "notes": [n.to_dict() for n in self.notes],
        }

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


class KbAnswerError(KineretError):
    """The KB's answer for a case is malformed (a KB bug, not a case error)."""


def field_path(value: Value) -> str:
    """``medication_history(1)`` -> ``medication_history[1]``; ``plan`` -> ``plan``."""
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


_TREES: dict[tuple, tuple[Vocabulary, tuple[CriterionResult, ...], tuple[str, ...]]] = {}


def _tree(vocab: Vocabulary, applies: frozenset, unmet_ids: frozenset, node_notes: tuple) -> tuple[tuple[CriterionResult, ...], tuple[str, ...]]:
    """The criteria tree and unmet ids for a set of statuses (memoized: few patterns recur)."""
    key = (id(vocab), applies, unmet_ids, node_notes)
    hit = _TREES.get(key)
    if hit is not None and hit[0] is vocab:  # the entry holds its vocabulary: ids cannot be reused
        return hit[1], hit[2]
    notes = dict(node_notes)

    def node(cid: str) -> CriterionResult:
        crit = vocab.criteria.get(cid)
        if crit is None:
            raise KbAnswerError(f"the KB says criterion {cid!r} applies but declares no criterion({cid!r}, ...)")
        kids = tuple(node(k) for k in vocab.children.get(cid, ()) if k in applies)
        return CriterionResult(cid, crit.text, cid not in unmet_ids, kids, notes.get(cid, ()))

    roots = sorted((c for c in applies if c in vocab.criteria and vocab.criteria[c].parent is None), key=_root_order)
    criteria = tuple(node(r) for r in roots)
    unmet = tuple(n.id for root in criteria for n in root.walk() if not n.met)
    if len(_TREES) > 20_000:
        _TREES.clear()
    _TREES[key] = (vocab, criteria, unmet)
    return criteria, unmet


def build_decision(case: Case, output: dict[str, list[tuple]], vocab: Vocabulary) -> Decision:
    """Arrange one case's answer atoms into a Decision."""
    applies = frozenset(str(a[0]) for a in output.get("applies", []))
    unmet_ids = frozenset(str(a[0]) for a in output.get("unmet", []))
    node_notes: dict[str, list[str]] = {}
    notes: list[Note] = []
    for cid, kind, where in sorted(output.get("note", []), key=lambda a: (outline_key(str(a[0])), repr(a[1]), repr(a[2]))):
        text = vocab.note_texts.get(kind, str(kind))
        notes.append(Note(str(cid), text, field_path(where)))
        if str(cid) in applies and text not in node_notes.get(str(cid), []):
            node_notes.setdefault(str(cid), []).append(text)
    criteria, unmet = _tree(vocab, applies, unmet_ids, tuple(sorted((k, tuple(v)) for k, v in node_notes.items())))
    details: dict[str, dict[str, list]] = {}
    for rid, detail in sorted(output.get("reason_detail", []), key=repr):
        name, value = (detail[0], detail[1]) if isinstance(detail, tuple) and len(detail) == 2 else (str(detail), None)
        details.setdefault(str(rid), {}).setdefault(name, []).append(str(value) if isinstance(value, Const) else value)
    reasons = tuple(
        Reason(rid, vocab.reason_texts.get(rid, rid), details.get(rid, {}))
        for rid in sorted({str(a[0]) for a in output.get("reason", [])}, key=_reason_order)
    )
    months = _one(output, "authorization_months", required=False)
    return Decision(
        id=case.id,
        policy=vocab.policy_id,
        effective_date=vocab.effective_date,
        indication=case.indication,
        request=case.request,
        decision=str(_one(output, "decision")),
        authorization_months=int(months) if months is not None else None,
        criteria=criteria,
        unmet=unmet,
        reasons=reasons,
        route=str(_one(output, "route")),
        notes=tuple(notes),
        source=case.source,
    )


def _root_order(cid: str) -> tuple:
    # an indication's own criteria come before the reauthorization criterion
    return (not cid[:1].isdigit(), outline_key(cid))


def _reason_order(rid: str) -> tuple:
    head, _, tail = rid.partition(".")
    return (head, not tail.isdigit(), int(tail) if tail.isdigit() else 0, tail)


def render_text(decision: Decision, vocab: Vocabulary, case: Optional[Case] = None) -> str:
    """The decision as a reviewer reads it: header, criteria tree, reasons, decision."""
    lines = [f"{vocab.policy_id} {vocab.policy_name} (Kineret), effective {decision.effective_date}"]
    name = decision.id or "(no id)"
    lines.append(f"Case {name} ({decision.source})")
    facts = [f"indication: {vocab.indications.get(decision.indication, decision.indication)}", f"request: {vocab.requests.get(decision.request, decision.request)}"]
    if case is not None:
        facts.append(f"plan: {vocab.plans.get(case.plan, case.plan) if case.plan else 'not given'}")
    lines.append("; ".join(facts))
    if decision.criteria:
        lines.append("")
        lines.append("Criteria")

        def show(node: CriterionResult, depth: int) -> None:
            mark = "[met]  " if node.met else "[unmet]"
            lines.append(f"{'  ' * depth}{mark} {node.id}  {node.text}")
            for note in node.notes:
                lines.append(f"{'  ' * depth}          note: {note}")
            for child in node.children:
                show(child, depth + 1)

        for root in decision.criteria:
            show(root, 1)
    if decision.reasons:
        lines.append("")
        lines.append("Reasons")
        for r in decision.reasons:
            extra = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in r.details.items())
            lines.append(f"  {r.id}  {r.text}" + (f" ({extra})" if extra else ""))
    loose = [n for n in decision.notes if not decision.met(n.id) in (True, False)]
    if loose:
        lines.append("")
        lines.append("Notes")
        for n in loose:
            lines.append(f"  {n.id} ({n.field})  {n.text}")
    lines.append("")
    verdict = decision.decision.replace("_", " ").upper()
    if decision.approved:
        lines.append(f"Decision: {verdict} for up to {decision.authorization_months} months")
    elif decision.unmet and decision.decision == "criteria_not_met":
        lines.append(f"Decision: {verdict} (unmet: {', '.join(decision.unmet)})")
    else:
        lines.append(f"Decision: {verdict}" + (f" ({', '.join(r.id for r in decision.reasons)})" if decision.reasons else ""))
    lines.append(f"Route: {decision.route}: {ROUTE_EXPLANATION.get(decision.route, decision.route)}")
    return "\n".join(lines) + "\n"
