"""``kineret-asp readjudicate``: the logged requests decided again under another version, and what would change.

Like ``diff``, but on real traffic: each record of the decision log whose
input is a case (CDS Hooks calls, evaluate, batch, completed questionnaires)
is decided by the KB given (a version of the tree by ``--to``, a KB copy by
``--kb``, or the tree choosing by each case's date of service), and its
outcome (decision, authorization months, the criteria that block approval,
the reasons) compared with the logged one. Nothing is written to the log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Optional

from ..errors import CaseError

if TYPE_CHECKING:  # pragma: no cover
    from ..decision_log import DecisionLog, Record


def outcome(decision: dict) -> dict:
    """What a re-decision is compared on."""
    return {
        "decision": decision.get("decision"),
        "authorization_months": decision.get("authorization_months"),
        "blocking": list(decision.get("blocking") or []),
        "reasons": [r.get("id") for r in decision.get("reasons") or [] if isinstance(r, dict)],
    }


@dataclass
class Change:
    record: "Record"
    before: dict
    after: Optional[dict]  # None: the case no longer reads under the new rules
    error: Optional[str] = None

    def to_dict(self) -> dict:
        return {
            "id": self.record.id,
            "recorded_at": self.record.recorded_at,
            "source": self.record.source,
            "prior_authorization_number": self.record.pa_number,
            "before": self.before,
            "after": self.after,
            "error": self.error,
        }


@dataclass
class Report:
    target: dict
    decided: int = 0
    skipped: int = 0
    changes: list[Change] = field(default_factory=list)

    def moves(self) -> Counter:
        return Counter((c.before["decision"], c.after["decision"] if c.after else "error") for c in self.changes)

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "decided": self.decided,
            "skipped": self.skipped,
            "changed": len(self.changes),
            "moves": [{"from": a, "to": b, "count": n} for (a, b), n in sorted(self.moves().items())],
            "changes": [c.to_dict() for c in self.changes],
        }


def readjudicate(log: "DecisionLog", kb: Any, source: Optional[str] = None, records: Optional[Iterable["Record"]] = None) -> Report:
    """Decide every logged case again with ``kb`` (a KnowledgeBase, a folder, a tree, or None: the packaged KB)."""
    from ..api import evaluate
    from ..cases.versions import Chooser

    chooser = Chooser.of(kb)
    default = chooser.default()
    report = Report({"kb": default.root.name, "policy": default.vocabulary.policy_id, "version": default.path.name if kb is not None else None})
    for record in records if records is not None else log.each(source):
        if not record.case or not isinstance(record.decision, dict) or "criteria" not in record.decision:
            report.skipped += 1  # a questionnaire's start, a technical failure: nothing was decided
            continue
        before = outcome(record.decision)
        try:
            after = outcome(evaluate(record.case, chooser if not hasattr(kb, "vocabulary") else kb).to_dict())
        except CaseError as exc:
            report.decided += 1
            report.changes.append(Change(record, before, None, exc.line()))
            continue
        report.decided += 1
        if after != before:
            report.changes.append(Change(record, before, after))
    return report


def render(report: Report, words: Any) -> str:
    """The report in the KB's words: the totals, each move, each change."""
    w = words.word
    lines = [w("readjudicate_summary", decided=report.decided, changed=len(report.changes), skipped=report.skipped)]
    for (a, b), n in sorted(report.moves().items()):
        lines.append(w("readjudicate_move", before=words.decision_texts.get(a, a), after=words.decision_texts.get(b, b), count=n))
    for c in report.changes:
        after = c.after["decision"] if c.after else c.error
        lines.append(w("readjudicate_change", id=c.record.id, number=c.record.pa_number or "-", when=c.record.recorded_at, before=c.before["decision"], after=after))
    return "\n".join(lines) + "\n"
