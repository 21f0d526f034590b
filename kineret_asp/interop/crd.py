"""Da Vinci Coverage Requirements Discovery (CRD) 2.2.1 over CDS Hooks 2.0.

One version of the guide is pinned: CRD STU 2.2.1 (discovery declares
``davinci-crd.version`` 2.2, its major.minor, as dev-1 asks). Each hook the
guide names as primary (order-sign, order-dispatch, appointment-book) and
order-select has a service. A request is checked as CDS Hooks 2.0 and CRD
define it (``hook``, ``hookInstance``, ``context.patientId``, the hook's own
context), every resource read must be about ``context.patientId``, and the
answer is:

- 200 with no card and no action when the request orders nothing this
  policy decides (an EHR calls order-sign for every order it signs);
- otherwise the Coverage Information response type (resp-25: "SHALL NOT use
  a card"): one ``update`` system action carrying the order as it was sent
  (its JSON kept: numbers as written, primitive extensions, key order) with
  the coverage-information extension added, its invariants crd-ci-q1..q9
  kept; ``coverage-assertion-id`` and ``satisfied-pa-id`` are issued by the
  decision log (:mod:`kineret_asp.decision_log`), never derived from the case;
- a card only where the server is configured to add one as a separate
  advisory (the criteria that block approval and the documentation that
  would meet them), its texts escaped for Markdown, its links built from the
  configured base URL;
- 400 with an OperationOutcome for content that is not valid CDS Hooks or
  FHIR, for another patient's resource, and when no single active Coverage
  can be found (hook-13); ``not-covered`` with ``no-active-coverage`` when
  the patient's Coverage is not active (resp-45); 412 when the data the
  templates ask for was not prefetched and cannot be fetched;
- ``indeterminate`` with the reason ``technical`` when deciding failed
  (resp-43, :func:`indeterminate`).

Secondary hooks (order-select) never ask for documentation (hook-19). Every
word comes from the KB; the insurer's name too (resp-4).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from ..errors import CaseError
from .cds_hooks import only_unnamed
from .operation_outcome import FhirProblem, Issue, is_outcome
from .prefetch import prefetch_templates, required_keys

if TYPE_CHECKING:  # pragma: no cover
    from ..decision_log import DecisionLog
    from ..decisions.decision import Decision
    from ..knowledge.base import KnowledgeBase

CRD_VERSION = "2.2"  # major.minor of the pinned release, CRD STU 2.2.1
CRD_RELEASE = "2.2.1"
HOOKS = ("order-sign", "order-select", "order-dispatch", "appointment-book")
PRIMARY = frozenset({"order-sign", "order-dispatch", "appointment-book"})
CRD_EXTENSION = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
CRD_TEMP = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
ALTERNATE_REFERENCE = "http://hl7.org/fhir/StructureDefinition/alternate-reference"
APPROVED, NOT_COVERED, OTHER_POLICY = "approved", "not_covered", "other_policy"
RESOURCE_TYPE, BUNDLE = "resourceType", "Bundle"
COVERAGE, APPOINTMENT, MEDICATION_REQUEST, PATIENT = "Coverage", "Appointment", "MedicationRequest", "Patient"
INDETERMINATE = "indeterminate"
SOURCE = "cds"  # the decision log's source of a hook's record: cds:<hook>


# --- JSON as sent: numbers keep the digits they were written with --------------------------------------


class RawNumber(str):
    """A JSON number as it was written (``1.50`` stays ``1.50``)."""


def loads_raw(data: bytes) -> Any:
    """JSON with every number kept as written (:class:`RawNumber`); NaN and Infinity refused."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return json.loads(text[1:] if text.startswith("\ufeff") else text, parse_float=RawNumber, parse_int=RawNumber, parse_constant=refuse)


def dumps_raw(value: Any) -> str:
    """JSON text of data that may hold :class:`RawNumber` values (written back as they were read)."""
    if isinstance(value, RawNumber):
        return str(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + dumps_raw(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps_raw(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


# --- the services ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """How the services answer: where the server is reached, and the optional advisory card."""

    base_url: str = "http://127.0.0.1:8000"
    advisory_card: bool = False


def service_id(kb: "KnowledgeBase", hook: str) -> str:
    return f"{kb.vocabulary.policy_id.lower()}-{hook}"


def hook_of(kb: "KnowledgeBase", service: str) -> Optional[str]:
    return next((h for h in HOOKS if service_id(kb, h) == service), None)


def insurer(kb: "KnowledgeBase") -> str:
    """The insurer's name as members know it (resp-4), from the KB."""
    return kb.vocabulary.word("crd_insurer")


def discovery(kb: "KnowledgeBase") -> dict:
    """GET /cds-services: one service per hook, with the KB's prefetch templates and the CRD version."""
    v = kb.vocabulary
    w = v.word
    prefetch = prefetch_templates(kb)
    services = []
    for hook in HOOKS:
        title = w("cds_service_title", policy=v.policy_id, title=v.title, drug=v.drug_name)
        description = w("cds_service_description" if hook != "appointment-book" else "crd_appointment_description", policy=v.policy_id, title=v.title, drug=v.drug_name, effective=v.effective_from)
        services.append({"hook": hook, "id": service_id(kb, hook), "title": title, "description": description, "prefetch": dict(prefetch), "extension": {"davinci-crd.version": CRD_VERSION}})
    return {"services": services}


def questionnaire_url(kb: "KnowledgeBase", base_url: str) -> str:
    """The canonical URL of the policy's adaptive questionnaire (served at that address)."""
    return f"{base_url.rstrip('/')}/Questionnaire/{kb.vocabulary.policy_id.lower()}"


def questionnaire_canonical(kb: "KnowledgeBase", base_url: str) -> str:
    return f"{questionnaire_url(kb, base_url)}|{kb.path.name}"


# --- the request ------------------------------------------------------------------------------------------


def _bad(kb: "KnowledgeBase", where: str, key: str, **values: Any) -> FhirProblem:
    """400: the request is not as CDS Hooks 2.0 and the hook define it (the KB's words ``key``)."""
    w = kb.vocabulary.word
    return FhirProblem.of(400, w("api_bad_request", where=where or "<cds-hooks request>", message=w(key, **values)), where or None, "structure")


@dataclass
class Request:
    """A CDS Hooks request taken apart: the orders in scope, the other resources, and the body as sent."""

    hook: str
    instance: str
    patient: str  # Patient/<id>
    context: dict
    orders: list[dict]  # the resources in scope (decoded plainly)
    raw_orders: list[Any]  # the same as sent (numbers as written)
    resources: list[dict]  # every other resource of the request
    unsatisfied: list[str] = field(default_factory=list)  # prefetch keys neither sent nor fetched
    targets: list[Any] = field(default_factory=list)  # what the action updates (an order, or an appointment), as sent
    full_urls: dict[int, str] = field(default_factory=dict)  # id() of a resource -> the fullUrl of its entry (references resolve by it)


def _full_urls(values: Any) -> dict[int, str]:
    """The fullUrl of each Bundle entry's resource, by the resource's id()."""
    out = {}
    for value in values:
        if isinstance(value, Mapping) and value.get(RESOURCE_TYPE) == BUNDLE:
            for e in value.get("entry") or []:
                if isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping) and isinstance(e.get("fullUrl"), str):
                    out[id(e["resource"])] = e["fullUrl"]
    return out


def _entries(value: Any) -> list[Any]:
    if isinstance(value, Mapping) and value.get(RESOURCE_TYPE) == BUNDLE:
        return [e.get("resource") for e in value.get("entry") or [] if isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping)]
    if isinstance(value, Mapping) and RESOURCE_TYPE in value:
        return [value]
    return []


def _label(resource: Mapping[str, Any]) -> str:
    return f"{resource.get(RESOURCE_TYPE)}/{resource.get('id')}"


def parse_request(body: Any, raw: Any, hook: str, kb: "KnowledgeBase", fetched: Optional[Mapping[str, Any]] = None) -> Request:
    """A request's parts, or FhirProblem 400 naming what is not as CDS Hooks 2.0 and the hook define it."""
    if not isinstance(body, Mapping):
        raise _bad(kb, "", "crd_expect_request")
    if body.get("hook") != hook:
        raise _bad(kb, "hook", "crd_expect_hook", hook=hook)
    instance = body.get("hookInstance")
    if not isinstance(instance, str) or not instance.strip():
        raise _bad(kb, "hookInstance", "crd_expect_instance")
    context = body.get("context")
    if not isinstance(context, Mapping):
        raise _bad(kb, "context", "crd_expect_context")
    patient_id = context.get("patientId")
    if not isinstance(patient_id, str) or not patient_id.strip():
        raise _bad(kb, "context.patientId", "crd_expect_patient")
    prefetch = body.get("prefetch", {})
    if not isinstance(prefetch, Mapping):
        raise _bad(kb, "prefetch", "crd_expect_prefetch")
    prefetch = {**prefetch, **(fetched or {})}
    raw_prefetch = {**((raw or {}).get("prefetch") or {}), **(fetched or {})}
    others: list[dict] = []
    for key, value in prefetch.items():
        if value is None or is_outcome(value):
            continue  # no data (null), or the client could not prefetch it (an OperationOutcome)
        if not isinstance(value, Mapping) or RESOURCE_TYPE not in value:
            raise _bad(kb, f"prefetch.{key}", "crd_expect_prefetch_value")
        others += _entries(value)
    unsatisfied = [k for k in required_keys(kb, context) if k not in prefetch or is_outcome(prefetch.get(k))]
    orders: list[dict] = []
    raw_orders: list[Any] = []
    targets: list[Any] = []
    raw_context = (raw or {}).get("context") or {}
    if hook in ("order-sign", "order-select"):
        drafts, raw_drafts = context.get("draftOrders"), raw_context.get("draftOrders")
        if not isinstance(drafts, Mapping) or drafts.get(RESOURCE_TYPE) != BUNDLE:
            raise _bad(kb, "context.draftOrders", "crd_expect_bundle", what=kb.vocabulary.word("crd_draft_orders"))
        selected: Optional[set] = None
        if hook == "order-select":
            selections = context.get("selections")
            if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
                raise _bad(kb, "context.selections", "crd_expect_references")
            selected = set(selections)
        for plain, sent in zip(_entries(drafts), _entries(raw_drafts)):
            if selected is None or _label(plain) in selected:
                orders.append(plain)
                raw_orders.append(sent)
            else:
                others.append(plain)
        targets = raw_orders
    elif hook == "order-dispatch":
        dispatched = context.get("dispatchedOrders")
        if not isinstance(dispatched, list) or not all(isinstance(s, str) for s in dispatched):
            raise _bad(kb, "context.dispatchedOrders", "crd_expect_references")
        wanted = set(dispatched)
        raw_all = [r for v in raw_prefetch.values() for r in _entries(v)]
        for plain, sent in zip([r for v in prefetch.values() if v is not None and not is_outcome(v) for r in _entries(v)], raw_all):
            if _label(plain) in wanted and _label(plain) not in {_label(o) for o in orders}:
                orders.append(plain)
                raw_orders.append(sent)
        others = [r for r in others if _label(r) not in {_label(o) for o in orders}]
        targets = raw_orders
    else:  # appointment-book: the orders an appointment is based on (a reference, or an alternate reference to a MedicationRequest)
        appointments, raw_appointments = context.get("appointments"), raw_context.get("appointments")
        if not isinstance(appointments, Mapping) or appointments.get(RESOURCE_TYPE) != BUNDLE:
            raise _bad(kb, "context.appointments", "crd_expect_bundle", what=kb.vocabulary.word("crd_appointments"))
        based: dict[str, Any] = {}
        for plain, sent in zip(_entries(appointments), _entries(raw_appointments)):
            others.append(plain)
            for ref in plain.get("basedOn") or []:
                if not isinstance(ref, Mapping):
                    continue
                refs = [ref.get("reference")] + [
                    e.get("valueReference", {}).get("reference")
                    for e in ref.get("extension") or []
                    if isinstance(e, Mapping) and e.get("url") == ALTERNATE_REFERENCE and isinstance(e.get("valueReference"), Mapping)
                ]
                for r in refs:
                    if isinstance(r, str):
                        based.setdefault(r, sent)
        for plain in list(others):
            if _label(plain) in based and plain.get(RESOURCE_TYPE) == MEDICATION_REQUEST:
                others.remove(plain)
                orders.append(plain)
                targets.append(based[_label(plain)])
        raw_orders = list(orders)
    full_urls = _full_urls([*prefetch.values(), context.get("draftOrders"), context.get("appointments")])
    return Request(hook, instance, f"{PATIENT}/{patient_id}", dict(context), orders, raw_orders, others, unsatisfied, targets, full_urls)


def reading_bundle(request: Request, kb: "KnowledgeBase") -> dict:
    """The request's resources as one collection Bundle for the FHIR reader; an order is read as signed.

    A dispatched order, or one an appointment is based on, has been signed
    (its status is no longer the one the KB's order filter names): it is read
    as the order was when it was signed, with the status the filter names.
    """
    from ..knowledge.fhir_mapping import mapping_for

    mapping = mapping_for(kb)
    use = next((u for u, _, _ in mapping.orders), None)
    statuses = [v for v in (mapping.filters.get(use or "", {}).get("status") or []) if isinstance(v, str)]
    entries, seen = [], set()

    def entry(r: dict, original: dict) -> dict:
        url = request.full_urls.get(id(original))
        return {"resource": r, "fullUrl": url} if url else {"resource": r}

    for r in request.orders:
        original = r
        if request.hook in ("order-dispatch", "appointment-book") and statuses and r.get("status") not in statuses:
            r = {**r, "status": statuses[0]}
        entries.append(entry(r, original))
        seen.add(_label(r))
    for r in request.resources:
        if _label(r) in seen and r.get("id"):
            continue
        if r.get("id"):
            seen.add(_label(r))
        entries.append(entry(r, r))
    return {RESOURCE_TYPE: BUNDLE, "type": "collection", "entry": entries}


# --- the answer -------------------------------------------------------------------------------------------


def _sub(url: str, key: str, value: Any) -> dict:
    return {"url": url, key: value}


def _reason(text: str, code: Optional[str] = None) -> dict:
    concept: dict[str, Any] = {"text": text}
    if code:
        concept["coding"] = [{"system": CRD_TEMP, "code": code}]
    return _sub("reason", "valueCodeableConcept", concept)


def _detail(text: str) -> dict:
    """A detail (crd 'instructions') saying what information is needed, for info-needed OTH."""
    return {
        "url": "detail",
        "extension": [
            _sub("category", "valueCode", "cat-limitation"),
            _sub("code", "valueCodeableConcept", {"coding": [{"system": CRD_TEMP, "code": "instructions"}]}),
            _sub("value", "valueString", text),
        ],
    }


def add_months(day: datetime.date, months: int) -> datetime.date:
    """The same day ``months`` later (the last day of a shorter month)."""
    import calendar

    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return datetime.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def coverage_information(
    kb: "KnowledgeBase",
    coverage: str,
    assertion: str,
    today: datetime.date,
    *,
    decision: Optional["Decision"] = None,
    doubtful: bool = False,
    questionnaire: Optional[str] = None,
    primary: bool = True,
    pa_number: Optional[str] = None,
    special: Optional[str] = None,
    reason: Optional[str] = None,
) -> dict:
    """The coverage-information extension (CRD 2.2.1), keeping crd-ci-q1 .. q9.

    ``special``: ``no-active-coverage`` (not covered, resp-45) or ``technical``
    (indeterminate, resp-43) instead of a decision. ``doubtful``: an approval
    that data the tables could not read might undo is not asserted.
    ``primary``: False for a secondary hook, which asks for no documentation
    (hook-19). ``pa_number``: the number the log issued for an approval.
    """
    v = kb.vocabulary
    w = v.word
    sub: list[dict] = [_sub("coverage", "valueReference", {"reference": coverage})]
    needs: Optional[str] = None  # what information is needed, when something is conditional (crd-ci-q3)
    if special == "technical":
        sub += [_sub("covered", "valueCode", INDETERMINATE), _sub("pa-needed", "valueCode", INDETERMINATE), _reason(reason or w("crd_reason_technical"), "technical")]
    elif special == "no-active-coverage":
        sub += [_sub("covered", "valueCode", "not-covered"), _reason(reason or w("crd_reason_no_active_coverage"), "no-active-coverage")]
    else:
        assert decision is not None
        texts = [r.text for r in decision.reasons] or [u.text for u in decision.undetermined] or [v.route_texts.get(decision.route, decision.route)]
        if decision.decision == APPROVED and not doubtful and pa_number:
            sub += [_sub("covered", "valueCode", "covered"), _sub("pa-needed", "valueCode", "satisfied")]
        elif decision.decision == APPROVED and not doubtful:  # met, but no number was asked for: authorization is still to be had
            sub += [_sub("covered", "valueCode", "covered"), _sub("pa-needed", "valueCode", "auth-needed")]
        elif decision.decision == NOT_COVERED and not only_unnamed(decision, kb):
            sub += [_sub("covered", "valueCode", "not-covered")]  # crd-ci-q2: no pa-needed
        elif decision.decision == OTHER_POLICY:
            sub += [_sub("covered", "valueCode", "conditional"), _sub("pa-needed", "valueCode", "conditional")]
            needs = w("crd_info_other_policy")
        else:
            sub += [_sub("covered", "valueCode", "conditional"), _sub("pa-needed", "valueCode", "auth-needed")]
            needs = w("crd_info_documentation")
            if primary:
                sub += [_sub("doc-needed", "valueCode", "clinical"), _sub("doc-purpose", "valueCode", "withpa")]
                if questionnaire:
                    sub.append(_sub("questionnaire", "valueCanonical", questionnaire))  # crd-ci-q1: doc-needed is set
        if needs:
            sub.append(_sub("info-needed", "valueCode", "OTH"))  # crd-ci-q3; q6: a reason is given below
        sub.append(_reason(" ".join(texts)))
        if needs:
            sub.append(_detail(needs))
    sub.append(_sub("date", "valueDate", today.isoformat()))
    sub.append(_sub("coverage-assertion-id", "valueString", assertion))
    covered_now = any(s.get("url") == "pa-needed" and s.get("valueCode") == "satisfied" for s in sub)
    if covered_now:
        sub.append(_sub("satisfied-pa-id", "valueString", pa_number))  # crd-ci-q5
        months = decision.authorization_months if decision is not None else None
        if months:
            sub.append(_sub("expiry-date", "valueDate", (add_months(today, int(months)) - datetime.timedelta(days=1)).isoformat()))
    return {"url": CRD_EXTENSION, "extension": sub}


def with_extension(resource: Any, extension: dict, coverage: str) -> Any:
    """The resource as sent, with this coverage's coverage-information extension put in (resp-37: nothing else changes)."""
    out = dict(resource)

    def same_coverage(e: Any) -> bool:
        if not isinstance(e, Mapping) or e.get("url") != CRD_EXTENSION:
            return False
        cov = next((s.get("valueReference", {}).get("reference") for s in e.get("extension") or [] if isinstance(s, Mapping) and s.get("url") == "coverage"), None)
        return cov in (None, coverage)

    existing = out.get("extension")
    kept = [e for e in existing if not same_coverage(e)] if isinstance(existing, list) else []
    out["extension"] = kept + [extension]
    return out


@dataclass
class Answer:
    """A hook's answer, and what the log keeps of it."""

    response: dict
    status: int = 200
    record: Any = None  # the decision log's record
    decision: Optional["Decision"] = None


def active_coverage(request_resources: dict, kb: "KnowledgeBase", today: datetime.date) -> tuple[Optional[str], Optional[str]]:
    """(the one active Coverage's reference, None), (an inactive one's, "no-active-coverage"), or FhirProblem 400 (hook-13)."""
    w = kb.vocabulary.word
    coverages = {k: m for k, m in request_resources.items() if k.startswith(f"{COVERAGE}/")}
    if not coverages:
        raise FhirProblem.of(400, w("crd_no_coverage"), "prefetch", "required")
    active = []
    for key, model in coverages.items():
        period = getattr(model, "period", None)
        start = getattr(getattr(period, "start", None), "date", None)
        end = getattr(getattr(period, "end", None), "date", None)
        day = lambda d: d.date() if isinstance(d, datetime.datetime) else d  # noqa: E731
        in_force = (start is None or day(start) <= today) and (end is None or day(end) >= today)
        if getattr(model, "status", None) == "active" and in_force:
            active.append(key)
    if len(active) > 1:
        raise FhirProblem.of(400, w("crd_many_coverages", coverages=", ".join(active)), "prefetch", "multiple-matches")
    if active:
        return active[0], None
    return sorted(coverages)[0], "no-active-coverage"


def answer(
    body: bytes,
    hook: str,
    kb: "KnowledgeBase",
    settings: Settings,
    log: Optional["DecisionLog"],
    missing_of: Callable[[Any, "KnowledgeBase"], Any],
    fetched: Optional[Mapping[str, Any]] = None,
    today: Optional[datetime.date] = None,
    chooser: Any = None,
) -> Answer:
    """POST /cds-services/<id>: the coverage information for the order this policy decides, or nothing.

    ``kb`` reads the request (its prefetch templates, its FHIR mapping);
    with ``chooser`` (the service's KB tree) the order is decided, logged
    and answered by the version and policy the case chooses, by its date of
    service and the drug it asks for, as every other path decides it;
    ``missing_of(case, version)`` says what is missing under that version.
    Raises :class:`FhirProblem` for a request that is not valid (400), for
    another patient's resource (400), and when the templates' data is
    neither prefetched nor fetched (412).
    """
    from ..api import evaluate
    from ..cases.fhir_bundle import NoOrder, OtherPatient, TwoOrders, bundle_case
    from ..cases.files import parse_json_text
    from ..cases.load import load, on_date
    from ..decision_log import Entry, sha256_of
    from ..decisions.decision import render_text, with_input_notes
    from .cds_hooks import doubtful_fields

    v = kb.vocabulary
    w = v.word
    today = today or datetime.date.today()
    source = "<cds-hooks request>"
    try:
        body_json = parse_json_text(body, source)
    except CaseError as exc:
        raise FhirProblem.from_case_error(exc, 400, "structure") from None
    raw = loads_raw(body)  # read once already: valid JSON
    request = parse_request(body_json, raw, hook, kb, fetched)
    if not request.orders:
        return Answer({"cards": []})
    try:
        if chooser is None:
            case, converted = bundle_case(reading_bundle(request, kb), source, kb, request.patient, order_first=True)
        else:  # the version (and, in a tree of several, the policy) that decides this order
            loaded = on_date(load(reading_bundle(request, kb), chooser, shown=source, patient=request.patient, order_first=True), today.isoformat(), chooser)
            case, converted, kb = loaded.case, loaded.bundle, loaded.choice.kb
            v, w = kb.vocabulary, kb.vocabulary.word
    except NoOrder:  # nothing this policy decides: the hook has nothing to say
        return Answer({"cards": []})
    except TwoOrders as exc:  # valid FHIR and CDS Hooks, but one order at a time is this service's rule (hook-13: 422)
        raise FhirProblem.from_case_error(exc, 422) from None
    except CaseError as exc:  # not valid FHIR, or another patient's resource (hook-13: 400)
        raise FhirProblem.from_case_error(exc, 400, "invalid" if not isinstance(exc, OtherPatient) else "security") from None
    if request.unsatisfied:
        raise FhirProblem(412, [Issue(w("crd_prefetch_missing", name=k, template=prefetch_templates(kb)[k]), f"prefetch.{k}", "incomplete") for k in request.unsatisfied])
    coverage, special = active_coverage(converted.resources, kb, today)
    order_label = converted.order
    index = next((i for i, o in enumerate(request.orders) if _label(o) == order_label), 0)
    target = request.targets[index] if request.targets else request.raw_orders[index]
    primary = hook in PRIMARY
    decision = with_input_notes(evaluate(case, kb), converted.notes)
    doubtful = doubtful_fields(case, converted.notes, kb) if decision.approved else []
    approved = decision.approved and not doubtful
    if log is not None:
        entry = Entry(f"{SOURCE}:{hook}", case.to_dict(), decision.to_dict(), request.instance, request.patient, sha256_of(body), render_text(served(decision), v))
        record = log.record(entry, kb, issue_pa=approved and not special)
        assertion, number = record.id, record.pa_number
    else:  # no log: nothing is kept, so no number can be issued (an approval then says authorization is still to be had)
        import uuid

        record, assertion, number = None, str(uuid.uuid4()), None
    result = None
    questionnaire = None
    if not approved and not special and decision.decision not in (NOT_COVERED, OTHER_POLICY):
        questionnaire = questionnaire_canonical(kb, settings.base_url)
    if settings.advisory_card and not special:
        result = missing_of(case, kb) if not decision.approved else None
    extension = coverage_information(kb, coverage, assertion, today, decision=decision, doubtful=bool(doubtful), questionnaire=questionnaire, primary=primary, pa_number=number, special=special)
    action = {"type": "update", "description": w("cds_action", policy=v.policy_id), "resource": with_extension(target, extension, coverage)}
    cards = [advisory_card(decision, kb, settings, assertion, result, doubtful)] if settings.advisory_card and not special else []
    return Answer({"cards": cards, "systemActions": [action]}, 200, record, decision)


def served(decision: "Decision") -> "Decision":
    """A decision as a served report shows it: the KB named by its folder's name, not this machine's path."""
    import dataclasses

    if decision.provenance is None:
        return decision
    return dataclasses.replace(decision, provenance=decision.provenance.served())


def advisory_card(decision: "Decision", kb: "KnowledgeBase", settings: Settings, assertion: str, result: Any, doubtful: list) -> dict:
    """The optional advisory card: why the order is not approved and what would meet the criteria (escaped Markdown)."""
    import uuid

    from ..safetext import safe_markdown

    v = kb.vocabulary
    w = v.word
    words = v.decision_texts.get(decision.decision, decision.decision)
    if decision.approved and doubtful:
        summary = w("cds_summary_doubtful", drug=v.drug_name, policy=v.policy_id, fields=", ".join(doubtful))
    elif decision.approved:
        summary = w("cds_summary_approved", drug=v.drug_name, policy=v.policy_id, months=decision.authorization_months)
    elif decision.decision == OTHER_POLICY:
        summary = w("cds_summary_other", drug=v.drug_name, decision=words)
    else:
        summary = w("cds_summary_review", drug=v.drug_name, decision=words, policy=v.policy_id)
    m = safe_markdown
    detail: list[str] = []
    if decision.blocking:
        detail.append(f"**{m(w('cds_blocking_heading'))}**")
        detail += [f"- {m(cid)}: {m(v.criteria[cid].text)}" for cid in decision.blocking if cid in v.criteria]
    if decision.undetermined:
        detail.append(f"**{m(w('undetermined_heading'))}**")
        detail += [f"- {m(u.id)} ({m(u.field)}): {m(u.text)}" for u in decision.undetermined]
    if decision.reasons:
        detail.append(f"**{m(w('cds_reasons_heading'))}**")
        detail += [f"- {m(r.id)}: {m(r.text)}" for r in decision.reasons]
    if result is not None and result.options:
        detail.append(f"**{m(w('cds_missing_heading'))}**")
        detail += [f"{n}. {m(o.text)}" for n, o in enumerate(result.options[:5], 1)]
    notes = [n for n in decision.notes if n.id not in v.criteria and n.id not in v.reason_texts]
    if notes:
        detail.append(f"**{m(w('cds_notes_heading'))}**")
        detail += [f"- {m(n.id)} ({m(n.field)}): {m(n.text)}" for n in notes]
    base = settings.base_url.rstrip("/")
    links = [{"label": w("cds_report_link"), "url": f"{base}/reports/{assertion}", "type": "absolute"}]
    if result is not None and result.options:
        links.append({"label": w("cds_questionnaire_link"), "url": questionnaire_url(kb, settings.base_url), "type": "absolute"})
    return {
        "uuid": str(uuid.uuid4()),
        "summary": " ".join(summary.split())[:140],
        "detail": "\n".join(detail),
        "indicator": "info" if decision.approved and not doubtful else "warning",
        "source": {"label": insurer(kb), "topic": {"system": CRD_TEMP, "code": "guideline"}},
        "links": links,
    }


def indeterminate(body: bytes, hook: str, kb: "KnowledgeBase", settings: Settings, log: Optional["DecisionLog"], why: str, today: Optional[datetime.date] = None) -> Optional[bytes]:
    """The answer when deciding failed (a worker stopped at a limit, an internal error): coverage ``indeterminate``
    with the reason ``technical`` (resp-43) for the order this policy would decide, or None when none can be told.

    Only the orders in scope are read (not the rest of the request), in the
    server's own process: the failed work is not done again.
    """
    from ..cases.fhir_bundle import Reader, bundle_resources
    from ..decision_log import Entry, sha256_of

    today = today or datetime.date.today()
    try:
        request = parse_request(json.loads(body), loads_raw(body), hook, kb)
        if not request.orders:
            return None
        bundle = reading_bundle(Request(hook, request.instance, request.patient, request.context, request.orders, request.raw_orders, []), kb)
        reader = Reader(kb, bundle_resources(bundle, "<cds-hooks request>", None, []), "<cds-hooks request>")
        reader.find_order()
        if len(reader.order) != 1:
            return None
        label = reader.label(reader.order[0])
        coverages = [r for r in request.resources if r.get(RESOURCE_TYPE) == COVERAGE and r.get("status") == "active" and r.get("id")]
        if len(coverages) != 1:
            return None
    except Exception:  # noqa: BLE001 - no order can be told: the caller answers with the error itself
        return None
    coverage = _label(coverages[0])
    index = next((i for i, o in enumerate(request.orders) if _label(o) == label), 0)
    target = request.targets[index] if request.targets else request.raw_orders[index]
    record_id = None
    if log is not None:
        record_id = log.record(Entry(f"{SOURCE}:{hook}", {}, {"decision": INDETERMINATE, "why": why, "policy": kb.vocabulary.policy_id}, request.instance, request.patient, sha256_of(body))).id
    import uuid

    extension = coverage_information(kb, coverage, record_id or str(uuid.uuid4()), today, special="technical", reason=kb.vocabulary.word("crd_reason_technical_why", why=why))
    action = {"type": "update", "description": kb.vocabulary.word("cds_action", policy=kb.vocabulary.policy_id), "resource": with_extension(target, extension, coverage)}
    return dumps_raw({"cards": [], "systemActions": [action]}).encode("utf-8")


def response_bytes(response: dict) -> bytes:
    """A hook's answer as JSON text (orders as sent), every unsafe character escaped."""
    from ..safetext import safe_json

    return safe_json(dumps_raw(response)).encode("utf-8")
