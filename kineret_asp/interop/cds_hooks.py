"""CDS Hooks services and Da Vinci CRD answers, built from the KB's decision.

``order-sign`` and ``order-select`` services decide the draft
MedicationRequest for the requested drug: the request's ``draftOrders``
and ``prefetch`` resources become one Bundle, read like any Bundle
(:mod:`kineret_asp.cases.fhir_bundle`). The answer is a card (the decision, the criteria
that block approval, what is missing, a link to the report) and a system
action that updates the draft order with the CRD coverage-information
extension. The structure and names follow CDS Hooks 2.0 and the CRD
implementation guide (STU 2); every word shown comes from the KB.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional

from ..api import evaluate
from ..cases.changes import Change, apply_changes
from ..cases.fhir_bundle import BUNDLE, PATIENT, RESOURCE_TYPE, NoOrder, SourceNote, bundle_case
from ..decisions.decision import with_input_notes
from ..errors import CaseError
from ..knowledge.schema import KEY, LIST

if TYPE_CHECKING:  # pragma: no cover
    from ..cases.case import Case
    from ..decisions.decision import Decision
    from ..explain.missing import Missing
    from ..knowledge.base import KnowledgeBase

HOOKS = ("order-sign", "order-select")
CRD_EXTENSION = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
CRD_CARD_TYPES = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
COVERAGE_TYPE = "Coverage"
APPROVED, NOT_COVERED, OTHER_POLICY = "approved", "not_covered", "other_policy"


def blocking_criteria(decision: "Decision", kb: "KnowledgeBase") -> list[str]:
    """The unmet criteria that stand between the case and approval (the decision's ``blocking``)."""
    return list(decision.blocking)


def only_unnamed(decision: "Decision", kb: "KnowledgeBase") -> bool:
    """Whether every reason the request is not covered rests on values the policy does not name.

    A drug the tables could not read may or may not be one a Condition Not
    Covered names; a reviewer decides. Over CRD that is asserted as
    conditional, never as not covered.
    """
    known = {k for keys in kb.vocabulary.keys.values() for k in keys}
    reasons = decision.reasons
    return bool(reasons) and all(r.details and all(str(v) not in known for values in r.details.values() for v in values) for r in reasons)


def service_id(kb: "KnowledgeBase", hook: str) -> str:
    return f"{kb.vocabulary.policy_id.lower()}-{hook}"


def prefetch_templates(kb: "KnowledgeBase") -> dict[str, str]:
    """The prefetch templates the KB declares (fhir_prefetch/2): one FHIR search per group it reads."""
    return {str(key): str(query) for key, query in kb.facts("fhir_prefetch", 2)}


def discovery(kb: "KnowledgeBase") -> dict:
    """GET /cds-services: the services and their prefetch templates."""
    v = kb.vocabulary
    w = v.word
    title = w("cds_service_title", policy=v.policy_id, title=v.title, drug=v.drug_name)
    description = w("cds_service_description", policy=v.policy_id, title=v.title, drug=v.drug_name, effective=v.effective_from)
    prefetch = prefetch_templates(kb)
    return {"services": [{"hook": hook, "id": service_id(kb, hook), "title": title, "description": description, "prefetch": dict(prefetch)} for hook in HOOKS]}


def hook_of(kb: "KnowledgeBase", service: str) -> Optional[str]:
    return next((h for h in HOOKS if service_id(kb, h) == service), None)


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


def assertion_id(decision: "Decision", kb: "KnowledgeBase", case_facts: list) -> str:
    """A trace id of the assertion: the KB's digest and the case's facts (the same case, the same id)."""
    h = hashlib.sha256((kb.digest + json.dumps(sorted(map(repr, case_facts)))).encode()).hexdigest()
    return f"{kb.vocabulary.policy_id}-{h[:16]}"


def coverage_information(decision: "Decision", kb: "KnowledgeBase", coverage: Optional[str], assertion: str, questionnaire: Optional[str], today: datetime.date, doubtful: bool = False) -> dict:
    """The CRD coverage-information extension, keeping its invariants (crd-ci-q1 .. q5).

    ``doubtful``: an approval that data the tables could not read might undo
    is not asserted; a reviewer confirms it (conditional, auth-needed).
    """
    v = kb.vocabulary
    sub: list[dict] = [{"url": "coverage", "valueReference": {"reference": coverage} if coverage else {"display": COVERAGE_TYPE}}]
    if decision.decision == APPROVED and doubtful:
        sub += [{"url": "covered", "valueCode": "conditional"}, {"url": "pa-needed", "valueCode": "auth-needed"},
                {"url": "doc-needed", "valueCode": "clinical"}, {"url": "doc-purpose", "valueCode": "withpa"}]
    elif decision.decision == APPROVED:
        sub += [{"url": "covered", "valueCode": "covered"}, {"url": "pa-needed", "valueCode": "satisfied"}]
    elif decision.decision == NOT_COVERED and not only_unnamed(decision, kb):
        sub += [{"url": "covered", "valueCode": "not-covered"}]  # crd-ci-q2: no pa-needed
    elif decision.decision == OTHER_POLICY:
        sub += [{"url": "covered", "valueCode": "conditional"}, {"url": "pa-needed", "valueCode": "conditional"}]
    else:
        sub += [{"url": "covered", "valueCode": "conditional"}, {"url": "pa-needed", "valueCode": "auth-needed"},
                {"url": "doc-needed", "valueCode": "clinical"}, {"url": "doc-purpose", "valueCode": "withpa"}]
        if questionnaire:
            sub.append({"url": "questionnaire", "valueCanonical": questionnaire})  # crd-ci-q1: doc-needed is set
    reasons = [r.text for r in decision.reasons] or [u.text for u in decision.undetermined] or [v.route_texts.get(decision.route, decision.route)]
    sub.append({"url": "reason", "valueCodeableConcept": {"text": " ".join(reasons)}})
    sub.append({"url": "date", "valueDate": today.isoformat()})
    sub.append({"url": "coverage-assertion-id", "valueString": assertion})
    if decision.decision == APPROVED and not doubtful:
        sub.append({"url": "satisfied-pa-id", "valueString": assertion})  # crd-ci-q5
    return {"url": CRD_EXTENSION, "extension": sub}


@dataclass
class HookAnswer:
    """A CDS Hooks response and the decision behind it (kept for the report link)."""

    response: dict
    decision: Optional["Decision"] = None
    assertion: Optional[str] = None


def answer(body: Mapping[str, Any], kb: "KnowledgeBase", base_url: str, missing_of, today: Optional[datetime.date] = None) -> HookAnswer:
    """POST /cds-services/<id>: cards and the system action for the draft order."""
    v = kb.vocabulary
    w = v.word
    bundle = request_bundle(body, "<cds-hooks request>")
    patient_id = body["context"].get("patientId")
    patient = f"{PATIENT}/{patient_id}" if isinstance(patient_id, str) and patient_id else None
    try:
        case, converted = bundle_case(bundle, "<cds-hooks request>", kb, patient, order_first=True)
    except NoOrder:  # the hook fires for every order signed: one for another drug is none of this service's business
        return HookAnswer({"cards": [], "systemActions": []})
    decision = with_input_notes(evaluate(case, kb), converted.notes)
    assertion = assertion_id(decision, kb, case.atoms())
    result: "Missing" = missing_of(case)
    blocking = blocking_criteria(decision, kb)
    words = v.decision_texts.get(decision.decision, decision.decision)
    doubtful = doubtful_fields(case, converted.notes, kb)
    if decision.decision == APPROVED and doubtful:
        summary = w("cds_summary_doubtful", drug=v.drug_name, policy=v.policy_id, fields=", ".join(doubtful))
        indicator = "warning"
    elif decision.decision == APPROVED:
        summary = w("cds_summary_approved", drug=v.drug_name, policy=v.policy_id, months=decision.authorization_months)
        indicator = "info"
    elif decision.decision == OTHER_POLICY:
        summary = w("cds_summary_other", drug=v.drug_name, decision=words)
        indicator = "warning"
    else:
        summary = w("cds_summary_review", drug=v.drug_name, decision=words, policy=v.policy_id)
        indicator = "warning"
    detail = []
    if blocking:
        detail.append(f"**{w('cds_blocking_heading')}**")
        detail += [f"- {cid}: {v.criteria[cid].text}" for cid in blocking if cid in v.criteria]
    if decision.undetermined:
        detail.append(f"**{w('undetermined_heading')}**")
        detail += [f"- {u.id} ({u.field}): {u.text}" for u in decision.undetermined]
    if decision.reasons:
        detail.append(f"**{w('cds_reasons_heading')}**")
        detail += [f"- {r.id}: {r.text}" for r in decision.reasons]
    if result.options:
        detail.append(f"**{w('cds_missing_heading')}**")
        detail += [f"{n}. {o.text}" for n, o in enumerate(result.options[:5], 1)]
    notes = [n for n in decision.notes if n.id not in v.criteria and n.id not in v.reason_texts]
    if notes:
        detail.append(f"**{w('cds_notes_heading')}**")
        detail += [f"- {n.id} ({n.field}): {n.text}" for n in notes]
    base = base_url.rstrip("/")
    questionnaire = f"{base}/Questionnaire/{v.policy_id.lower()}" if result.options else None
    links = [{"label": w("cds_report_link"), "url": f"{base}/reports/{assertion}", "type": "absolute"}]
    if questionnaire:
        links.append({"label": w("cds_questionnaire_link"), "url": f"{base}/questionnaire", "type": "absolute"})
    card = {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, assertion)),
        "summary": summary[:140],
        "detail": "\n".join(detail),
        "indicator": indicator,
        "source": {"label": w("cds_source", policy=v.policy_id), "topic": {"system": CRD_CARD_TYPES, "code": "coverage-info"}},
        "links": links,
    }
    order = dict(converted.resources[converted.order].as_json())
    coverage = next((k for k in converted.resources if k.startswith(f"{COVERAGE_TYPE}/")), None)
    extension = coverage_information(decision, kb, coverage, assertion, questionnaire, today or datetime.date.today(), bool(doubtful))
    order["extension"] = [e for e in order.get("extension", []) if e.get("url") != CRD_EXTENSION] + [extension]
    action = {"type": "update", "description": w("cds_action", policy=v.policy_id), "resource": order}
    return HookAnswer({"cards": [card], "systemActions": [action]}, decision, assertion)


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
