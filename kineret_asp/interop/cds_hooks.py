"""What every CDS Hooks service of this package reads: the request's resources as one Bundle, and how far a decision read from them can be asserted.

A CDS Hooks request carries FHIR resources in its context (``draftOrders``)
and in ``prefetch``; :func:`request_bundle` puts them into one collection
Bundle, read like any Bundle (:mod:`kineret_asp.cases.fhir_bundle`). The Da
Vinci CRD services (:mod:`kineret_asp.interop.crd`) assert coverage only as
far as the request's data allows: a decision that rests on values the
policy does not name (:func:`only_unnamed`) or an approval that data the
tables could not read might undo (:func:`doubtful_fields`) is left to a
reviewer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..api import evaluate
from ..cases.changes import Change, apply_changes
from ..cases.fhir_bundle import BUNDLE, RESOURCE_TYPE, SourceNote
from ..errors import CaseError
from ..knowledge.schema import KEY, LIST

if TYPE_CHECKING:  # pragma: no cover
    from ..cases.case import Case
    from ..decisions.decision import Decision
    from ..knowledge.base import KnowledgeBase


def request_bundle(body: Mapping[str, Any], source: str) -> dict:
    """The resources of a CDS Hooks request (draft orders, then prefetch) as one collection Bundle."""
    if not isinstance(body, Mapping):
        raise CaseError(source, "", "expected a CDS Hooks request (a JSON object)")
    context = body.get("context")
    if not isinstance(context, Mapping):
        raise CaseError(source, "context", "expected an object with patientId and draftOrders")
    resources: list[Any] = []
    drafts = context.get("draftOrders")
    if isinstance(drafts, Mapping) and drafts.get(RESOURCE_TYPE) == BUNDLE:
        resources += [e.get("resource") for e in drafts.get("entry") or [] if isinstance(e, Mapping)]
    elif drafts is not None:
        raise CaseError(source, "context.draftOrders", "expected a Bundle of draft orders")
    prefetch = body.get("prefetch") or {}
    if not isinstance(prefetch, Mapping):
        raise CaseError(source, "prefetch", "expected an object of prefetched resources")
    for key, value in prefetch.items():
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise CaseError(source, f"prefetch.{key}", "expected a FHIR resource or Bundle")
        if value.get(RESOURCE_TYPE) == BUNDLE:
            resources += [e.get("resource") for e in value.get("entry") or [] if isinstance(e, Mapping)]
        else:
            resources.append(value)
    seen: set[str] = set()
    entries = []
    for r in resources:
        key = f"{r.get(RESOURCE_TYPE)}/{r.get('id')}" if isinstance(r, Mapping) and r.get("id") else None
        if key is not None and key in seen:
            continue
        if key:
            seen.add(key)
        entries.append({"resource": r})
    return {RESOURCE_TYPE: BUNDLE, "type": "collection", "entry": entries}


def only_unnamed(decision: "Decision", kb: "KnowledgeBase") -> bool:
    """Whether every reason the request is not covered rests on values the policy does not name.

    A drug the tables could not read may or may not be one a Condition Not
    Covered names; a reviewer decides. Over CRD that is asserted as
    conditional, never as not covered.
    """
    known = {k for keys in kb.vocabulary.keys.values() for k in keys}
    reasons = decision.reasons
    return bool(reasons) and all(r.details and all(str(v) not in known for values in r.details.values() for v in values) for r in reasons)


def doubtful_fields(case: "Case", notes: Iterable[SourceNote], kb: "KnowledgeBase") -> list[str]:
    """The list fields a Bundle left something unread in, where one more key could undo an approval.

    A code the tables do not know counts for nothing; for most fields that
    can only leave a case short of approval, but a key added to some field
    (a drug taken now) can take an approval away. The solver says which:
    each key of the field's vocabulary is added in turn.
    """
    if not evaluate(case, kb).approved:
        return []
    out = []
    for name in dict.fromkeys(n.field.split("[")[0] for n in notes):
        f = kb.schema.by_name.get(name)
        if f is None or f.kind.name != LIST or f.kind.item is None or f.kind.item.name != KEY:
            continue
        for key in kb.vocabulary.keys.get(f.kind.item.vocabulary or "", {}):
            if not evaluate(apply_changes(case, [Change.add(name, key)], kb), kb).approved:
                out.append(name)
                break
    return out
