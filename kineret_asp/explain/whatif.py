"""What-if: the decision before and after changes to a case, and what flipped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from ..api import CaseLike, KbLike, decide
from ..cases.case import Case
from ..cases.changes import Change, ChangeLike, apply_changes, change_list
from ..cases.load import load, load_changed
from ..cases.versions import Chooser
from ..decisions.decision import Decision, Reason
from ..knowledge.base import KnowledgeBase


@dataclass(frozen=True)
class CriterionChange:
    """A criterion whose status differs: True met, False unmet, None does not apply."""

    id: str
    text: str
    before: Optional[bool]
    after: Optional[bool]

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class ReasonChange:
    """A reason (a Condition Not Covered, another policy's use) that applies on one side only, or with other details."""

    id: str
    text: str
    before: Optional[Reason]
    after: Optional[Reason]

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "before": None if self.before is None else self.before.to_dict(), "after": None if self.after is None else self.after.to_dict()}


@dataclass(frozen=True)
class WhatIf:
    """The answer to a what-if question."""

    changes: tuple[Change, ...]
    case: Case
    changed_case: Case
    before: Decision
    after: Decision
    flipped: tuple[CriterionChange, ...]
    reasons: tuple[ReasonChange, ...] = ()

    @property
    def decision_changed(self) -> bool:
        return self.before.decision != self.after.decision

    @property
    def months_changed(self) -> bool:
        return self.before.authorization_months != self.after.authorization_months

    @property
    def route_changed(self) -> bool:
        return self.before.route != self.after.route

    @property
    def blocking_changed(self) -> bool:
        return self.before.blocking != self.after.blocking

    @property
    def undetermined_changed(self) -> bool:
        return [u.to_dict() for u in self.before.undetermined] != [u.to_dict() for u in self.after.undetermined]

    @property
    def anything_changed(self) -> bool:
        return bool(self.decision_changed or self.months_changed or self.route_changed or self.blocking_changed or self.undetermined_changed or self.reasons or self.flipped)

    def to_dict(self) -> dict:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "before": _summary(self.before),
            "after": _summary(self.after),
            "flipped": [f.to_dict() for f in self.flipped],
            "changed": {
                "decision": self.decision_changed,
                "authorization_months": self.months_changed,
                "route": self.route_changed,
                "reasons": [r.to_dict() for r in self.reasons],
                "blocking": self.blocking_changed,
                "undetermined": self.undetermined_changed,
            },
            "case_after": self.changed_case.to_dict(),
        }


def _summary(d: Decision) -> dict:
    out = {"decision": d.decision, "authorization_months": d.authorization_months, "unmet": list(d.unmet), "reasons": [r.id for r in d.reasons], "route": d.route}
    if d.provenance is not None:
        out["provenance"] = d.provenance.to_dict()  # the version may differ when a change moves the date of service
    return out


def flipped_criteria(before: Decision, after: Decision, texts: dict) -> list[CriterionChange]:
    """Criteria whose met/unmet/not-applicable status differs, in the policy's order."""
    rank = {cid: i for i, cid in enumerate(texts)}
    b, a = before.statuses(), after.statuses()
    ids = sorted(set(b) | set(a), key=lambda i: (rank.get(i, len(rank)), i))
    return [CriterionChange(i, texts[i].text, b.get(i), a.get(i)) for i in ids if b.get(i) != a.get(i)]


def changed_reasons(before: Decision, after: Decision) -> list[ReasonChange]:
    """Reasons that apply before or after only, or with other details, in the order the decisions list them."""
    b = {r.id: r for r in before.reasons}
    a = {r.id: r for r in after.reasons}
    ids = list(dict.fromkeys([*b, *a]))
    return [ReasonChange(i, (a.get(i) or b[i]).text, b.get(i), a.get(i)) for i in ids if b.get(i) != a.get(i)]


def what_if(case: CaseLike, changes: Iterable[ChangeLike], kb: KbLike = None) -> WhatIf:
    """Decide a case before and after changes, and report the criteria that flipped.

    ``changes`` are :class:`Change` objects or dicts ``{"op", "path", "value"}``.
    An invalid change, or one that makes the case invalid, raises CaseError.
    """
    chooser = Chooser.of(kb)
    loaded = load(case, chooser)
    original, knowledge = loaded.case, loaded.choice.kb
    parsed = change_list(list(changes))
    after_loaded = load_changed(loaded, apply_changes(original, parsed, knowledge), chooser)
    changed, after_choice = after_loaded.case, after_loaded.choice
    before = decide(loaded)
    after = decide(after_loaded)
    texts = {**knowledge.vocabulary.criteria, **{k: v for k, v in after_choice.kb.vocabulary.criteria.items() if k not in knowledge.vocabulary.criteria}}
    flips = flipped_criteria(before, after, texts)
    return WhatIf(tuple(parsed), original, changed, before, after, tuple(flips), tuple(changed_reasons(before, after)))


def render_what_if(result: WhatIf, kb: "KnowledgeBase") -> str:
    from ..decisions.decision import verdict

    vocab = kb.vocabulary
    w = vocab.word
    mark = {True: w("status_met"), False: w("status_unmet"), None: w("status_none")}
    lines = [w("changes_heading")]
    lines += [f"  {c.describe()}" for c in result.changes] or [f"  {w('no_changes')}"]
    lines.append("")
    lines.append(w("before_line", verdict=verdict(result.before, vocab), route=result.before.route))
    lines.append(w("after_line", verdict=verdict(result.after, vocab), route=result.after.route))
    lines.append("")
    if not result.anything_changed:
        lines.append(w("nothing_changed"))
        return "\n".join(lines) + "\n"
    outcome = []
    if result.decision_changed:
        words = vocab.decision_texts
        outcome.append(w("decision_changed", before=words.get(result.before.decision, result.before.decision), after=words.get(result.after.decision, result.after.decision)))
    if result.months_changed:
        months = {None: w("no_authorization")}
        before, after = result.before.authorization_months, result.after.authorization_months
        outcome.append(w("months_changed", before=months.get(before) or vocab.counted("months", before, months=before), after=months.get(after) or vocab.counted("months", after, months=after)))
    if result.route_changed:
        outcome.append(w("route_changed", before=result.before.route, after=result.after.route))
    if result.blocking_changed:
        none = w("no_authorization")
        outcome.append(w("blocking_changed", before=w("list_separator").join(result.before.blocking) or none, after=w("list_separator").join(result.after.blocking) or none))
    if result.undetermined_changed:
        was = {(u.id, u.field): u for u in result.before.undetermined}
        now = {(u.id, u.field): u for u in result.after.undetermined}
        outcome += [w("undetermined_settled", id=u.id, field=u.field, text=u.text) for k, u in was.items() if k not in now]
        outcome += [w("undetermined_raised", id=u.id, field=u.field, text=u.text) for k, u in now.items() if k not in was]
    if outcome:
        lines.append(w("outcome_heading"))
        lines += [f"  {line}" for line in outcome]
    if result.reasons:
        lines.append(w("reasons_changed_heading"))
        for r in result.reasons:
            if r.after is None:
                lines.append("  " + w("reason_removed", id=r.id, text=r.text))
            elif r.before is None:
                lines.append("  " + w("reason_added", id=r.id, text=r.text))
            else:
                lines.append("  " + w("reason_details_changed", id=r.id, before=r.before.details_text(), after=r.after.details_text()))
            details = (r.after or r.before).details_text() if r.before is None or r.after is None else ""  # type: ignore[union-attr]
            if details:
                lines.append("    " + w("reason_details", details=details))
    if result.flipped:
        lines.append(w("flipped_heading"))
        width = max(len(f.id) for f in result.flipped)
        for f in result.flipped:
            lines.append(f"  {f.id:<{width}}  {mark[f.before]} -> {mark[f.after]}  {f.text}")
    elif not outcome and not result.reasons:
        lines.append(w("nothing_flipped"))
    return "\n".join(lines) + "\n"
