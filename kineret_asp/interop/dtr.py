"""Da Vinci DTR adaptive form: ``$questionnaire-package``, the Questionnaire, ``$next-question``.

- ``GET /Questionnaire/<id>`` (its canonical URL): the policy's adaptive
  Questionnaire, as the AdaptiveQuestionnaire-Search profile has it
  (``questionnaireAdaptive``, ``url``, ``version``, ``subjectType``, no items).
- ``POST /Questionnaire/$questionnaire-package``: Parameters (``coverage``,
  ``order``, ``questionnaire``, ``context``: the ``coverage-assertion-id`` of a
  CRD answer) in; Parameters with one ``packagebundle`` out: that
  Questionnaire and a QuestionnaireResponse whose contained Questionnaire is
  ``derivedFrom`` it (spec-25), pre-filled with what the CRD call already
  read (the order, the Coverage, the prefetch: spec-40, oper-19). The start
  is kept in the decision log; the response names it (its ``identifier``).
- ``POST /Questionnaire/$next-question``: a QuestionnaireResponse, bare or
  as the Parameters ``questionnaire-response`` (DTR 2.2 and SDC),
  ``questionnaire-response-in`` (DTR 2.1) or ``in``; the same back with the
  next question, until completed.

Nothing a client sends is trusted as a question or an option: the dialogue
is replayed from its start (the logged pre-fill, or an empty case), each
answer compared with the options this service offers for the question it
asks at that point. An answer that is not one of them, an item never asked,
two answers to one question: 400 with an OperationOutcome naming the item
(spec-147), and nothing is applied. An answer's changes are the service's
own option's, never decoded from the code sent.

On completion the QuestionnaireResponse carries the coverage-information
extension (spec-33), issued by the decision log; when the answers meet the
criteria, the last question asks whether to issue the prior-authorization
number (spec-41), which the log issues (once per start and case).
"""

from __future__ import annotations

import copy
import datetime
from typing import TYPE_CHECKING, Any, Mapping, Optional

from ..errors import CaseError
from .operation_outcome import FhirProblem, Issue

if TYPE_CHECKING:  # pragma: no cover
    from ..decision_log import DecisionLog
    from ..knowledge.base import KnowledgeBase

DTR = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/"
ADAPTIVE_SEARCH = DTR + "dtr-questionnaire-adapt-search"
ADAPTIVE = DTR + "dtr-questionnaire-adapt"
QR_ADAPT = DTR + "dtr-questionnaireresponse-adapt"
QR_COVERAGE = DTR + "qr-coverage"
QR_CONTEXT = DTR + "qr-context"
INFORMATION_ORIGIN = DTR + "information-origin"
SDC_ADAPTIVE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-questionnaireAdaptive"
QR_PARAMETERS = ("questionnaire-response", "questionnaire-response-in", "in")  # DTR 2.2 and SDC, DTR 2.1, the first form
KNOWN = "known-"  # linkIds of pre-filled items
ISSUE = "issue-pa"  # linkId of the last question of an approval (spec-41)
ISSUE_YES, ISSUE_NO = "issue", "not-now"
DECISION = "decision"
CONTAINED = "q"
PACKAGE_SOURCE, ANSWER_SOURCE = "dtr:package", "dtr:next-question"
RESOURCE_TYPE = "resourceType"


def _qid(kb: "KnowledgeBase") -> str:
    return kb.vocabulary.policy_id.lower()


def questionnaire(kb: "KnowledgeBase", base_url: str) -> dict:
    """The adaptive Questionnaire at its canonical URL (AdaptiveQuestionnaire-Search: no items)."""
    from .crd import questionnaire_url

    v = kb.vocabulary
    return {
        RESOURCE_TYPE: "Questionnaire",
        "id": _qid(kb),
        "meta": {"profile": [ADAPTIVE_SEARCH]},
        "extension": [{"url": SDC_ADAPTIVE, "valueUrl": f"{base_url.rstrip('/')}/Questionnaire/$next-question"}],
        "url": questionnaire_url(kb, base_url),
        "version": kb.path.name,
        "name": "".join(c for c in v.policy_id if c.isalnum()) + "Documentation",
        "title": v.word("q_title", policy=v.policy_id, title=v.title, drug=v.drug_name),
        "status": "active",
        "subjectType": ["Patient"],
        "date": v.effective_from,
        "publisher": v.word("crd_insurer"),
    }


def _system(kb: "KnowledgeBase", name: str) -> str:
    from ..knowledge.fhir_mapping import mapping_for

    return mapping_for(kb).interop_systems.get(name, "")


def _bad(kb: "KnowledgeBase", key: str, where: Optional[str] = None, status: int = 400, **values: Any) -> FhirProblem:
    return FhirProblem.of(status, kb.vocabulary.word(key, **values), where)


def _params(body: Any, kb: "KnowledgeBase") -> list[Mapping[str, Any]]:
    if not isinstance(body, Mapping) or body.get(RESOURCE_TYPE) != "Parameters":
        raise _bad(kb, "dtr_expect_parameters")
    params = body.get("parameter", [])
    if not isinstance(params, list) or not all(isinstance(p, Mapping) for p in params):
        raise _bad(kb, "dtr_expect_parameters", "Parameters.parameter")
    return params


def _known_items(case: Mapping[str, Any], kb: "KnowledgeBase") -> tuple[list[dict], list[dict]]:
    """The pre-filled items (read-only) of a case: the contained Questionnaire's and the response's."""
    from ..cases.changes import Change
    from .questionnaire import change_words

    schema = kb.schema
    questions, answers = [], []
    for f in schema.fields:
        value = case.get(f.name)
        if value in (None, [], {}) or f.name in {schema.role(r) for r in ("case_id", "format_version", "expectations", "policy_selector")}:
            continue
        items = value if isinstance(value, list) else [value]
        try:
            words = [change_words(Change("add" if isinstance(value, list) else "set", f.name, item), kb) for item in items]
        except Exception:  # noqa: BLE001 - a value the words cannot show is shown as written
            words = [str(item) for item in items]
        link = KNOWN + f.name
        questions.append({"linkId": link, "text": f.description, "type": "string", "readOnly": True, "repeats": len(words) > 1})
        answers.append(
            {"linkId": link, "text": f.description, "answer": [{"valueString": " ".join(str(w).split())[:1000], "extension": [{"url": INFORMATION_ORIGIN, "valueCode": "auto"}]} for w in words]}
        )
    return questions, answers


def package(body: Any, kb: "KnowledgeBase", base_url: str, log: Optional["DecisionLog"]) -> dict:
    """$questionnaire-package: the Questionnaire and a QuestionnaireResponse to start from, pre-filled from CRD."""
    from ..cases.fhir_bundle import convert_bundle, parse_resource
    from ..decision_log import Entry
    from .crd import PATIENT, questionnaire_canonical, questionnaire_url

    w = kb.vocabulary.word
    params = _params(body, kb)
    coverages = [p.get("resource") for p in params if p.get("name") == "coverage"]
    if len(coverages) != 1 or not isinstance(coverages[0], Mapping) or coverages[0].get(RESOURCE_TYPE) != "Coverage":
        raise _bad(kb, "dtr_expect_coverage", "Parameters.parameter(coverage)")
    coverage = dict(coverages[0])
    try:
        parse_resource(coverage, "Parameters.parameter(coverage)", "<$questionnaire-package>")
    except CaseError as exc:
        raise FhirProblem.from_case_error(exc, 400) from None
    beneficiary = (coverage.get("beneficiary") or {}).get("reference")
    if not isinstance(beneficiary, str) or not beneficiary.startswith(f"{PATIENT}/"):
        raise _bad(kb, "dtr_expect_beneficiary", "Coverage.beneficiary")
    orders = [p.get("resource") for p in params if p.get("name") == "order"]
    if not all(isinstance(o, Mapping) and isinstance(o.get(RESOURCE_TYPE), str) for o in orders):
        raise _bad(kb, "dtr_expect_order", "Parameters.parameter(order)")
    outcome_issues: list[Issue] = []
    ours = {questionnaire_url(kb, base_url), questionnaire_canonical(kb, base_url)}
    asked = [p.get("valueCanonical") for p in params if p.get("name") == "questionnaire"]
    for url in asked:
        if url not in ours:
            outcome_issues.append(Issue(w("dtr_unknown_questionnaire", url=str(url)[:300], ours=questionnaire_canonical(kb, base_url)), "Parameters.parameter(questionnaire)", "not-found", "warning"))
    if asked and all(u not in ours for u in asked):
        return {RESOURCE_TYPE: "Parameters", "parameter": [{"name": "outcome", "resource": {RESOURCE_TYPE: "OperationOutcome", "issue": [i.to_dict(404) for i in outcome_issues]}}]}
    contexts = [p.get("valueString") for p in params if p.get("name") == "context"]
    start: dict = {}
    parent = None
    if contexts:
        record = log.get(str(contexts[0])) if log is not None and isinstance(contexts[0], str) else None
        if record is None:
            raise _bad(kb, "dtr_unknown_context", "Parameters.parameter(context)", id=str(contexts[0])[:100])
        if record.subject != beneficiary:
            raise _bad(kb, "dtr_other_patient", "Parameters.parameter(context)", id=record.id)
        start = dict(record.case)
        parent = record.id
    elif orders:
        bundle = {RESOURCE_TYPE: "Bundle", "type": "collection", "entry": [{"resource": r} for r in [*orders, coverage]]}
        try:
            start = convert_bundle(bundle, "<$questionnaire-package>", kb, beneficiary, order_first=True).data
        except CaseError:
            start = {}  # nothing of this policy to pre-fill from
    session = None
    if log is not None:
        session = log.record(Entry(PACKAGE_SOURCE, start, {}, None, beneficiary, None, None, parent)).id
    q = questionnaire(kb, base_url)
    known_q, known_a = _known_items(start, kb)
    contained = _contained(kb, base_url, known_q)
    qr: dict[str, Any] = {
        RESOURCE_TYPE: "QuestionnaireResponse",
        "meta": {"profile": [QR_ADAPT]},
        "contained": [contained],
        "extension": [{"url": QR_COVERAGE, "valueReference": {"reference": f"Coverage/{coverage.get('id')}" if coverage.get("id") else None}}]
        + [{"url": QR_CONTEXT, "valueReference": {"reference": f"{o[RESOURCE_TYPE]}/{o.get('id')}"}} for o in orders if o.get("id")],
        "questionnaire": "#" + CONTAINED,
        "status": "in-progress",
        "subject": {"reference": beneficiary},
        "authored": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "item": known_a,
    }
    if not coverage.get("id"):
        qr["extension"][0]["valueReference"] = {"display": w("dtr_coverage_sent")}
    if session:
        qr["identifier"] = {"system": _system(kb, "dtr_session"), "value": session}
    bundle = {RESOURCE_TYPE: "Bundle", "type": "collection", "entry": [{"resource": q}, {"resource": qr}]}
    out: dict = {RESOURCE_TYPE: "Parameters", "parameter": [{"name": "packagebundle", "resource": bundle}]}
    if outcome_issues:
        out["parameter"].append({"name": "outcome", "resource": {RESOURCE_TYPE: "OperationOutcome", "issue": [i.to_dict(200) for i in outcome_issues]}})
    return out


def _contained(kb: "KnowledgeBase", base_url: str, items: list[dict]) -> dict:
    from .crd import questionnaire_canonical

    q = questionnaire(kb, base_url)
    return {
        RESOURCE_TYPE: "Questionnaire",
        "id": CONTAINED,
        "meta": {"profile": [ADAPTIVE]},
        "extension": q["extension"],
        "derivedFrom": [questionnaire_canonical(kb, base_url)],
        "name": q["name"],
        "title": q["title"],
        "status": "active",
        "subjectType": ["Patient"],
        "item": items,
    }


def _response_of(body: Any, kb: "KnowledgeBase") -> tuple[dict, bool]:
    """The QuestionnaireResponse of a $next-question call, and whether it came in Parameters."""
    wrapped = isinstance(body, Mapping) and body.get(RESOURCE_TYPE) == "Parameters"
    qr = body
    if wrapped:
        qr = next((p.get("resource") for p in _params(body, kb) if p.get("name") in QR_PARAMETERS), None)
    if not isinstance(qr, Mapping) or qr.get(RESOURCE_TYPE) != "QuestionnaireResponse":
        raise _bad(kb, "dtr_expect_response")
    return copy.deepcopy(dict(qr)), wrapped


def _coding(item: Mapping[str, Any], where: str, kb: "KnowledgeBase", system: str) -> Optional[str]:
    """The code of an item's one answer (None: not answered yet); FhirProblem 400 for anything else."""
    answers = item.get("answer")
    if answers in (None, []):
        return None
    if not isinstance(answers, list) or len(answers) != 1:
        raise _bad(kb, "dtr_one_answer", where, link=str(item.get("linkId"))[:100])
    coding = answers[0].get("valueCoding") if isinstance(answers[0], Mapping) else None
    if not isinstance(coding, Mapping) or coding.get("system") != system or not isinstance(coding.get("code"), str):
        raise _bad(kb, "dtr_answer_coding", where, link=str(item.get("linkId"))[:100], system=system)
    return coding["code"]


def next_question(body: Any, kb: "KnowledgeBase", base_url: str = "", log: Optional["DecisionLog"] = None) -> dict:
    """$next-question: the dialogue replayed and checked, then one more question or the completed form."""
    from ..cases.fhir_bundle import parse_resource
    from ..decisions.decision import verdict
    from ..knowledge.fhir_mapping import mapping_for
    from .crd import coverage_information
    from .questionnaire import DECIDED, NONE_CODE, _code, answer_step, next_step

    v = kb.vocabulary
    w = v.word
    system = mapping_for(kb).change_system
    dtr_system = _system(kb, "dtr")
    qr, wrapped = _response_of(body, kb)
    try:
        parse_resource({k: x for k, x in qr.items() if k not in ("contained", "item")}, "QuestionnaireResponse", "<$next-question>")
    except CaseError as exc:
        raise FhirProblem.from_case_error(exc, 400) from None
    items = qr.get("item", [])
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise _bad(kb, "dtr_expect_items", "QuestionnaireResponse.item")
    # the start: the logged pre-fill of a package, or nothing
    state: dict = {}
    session = None
    ident = qr.get("identifier")
    if isinstance(ident, Mapping) and ident.get("system") == _system(kb, "dtr_session") and ident.get("value"):
        record = log.get(str(ident["value"])) if log is not None else None
        subject = (qr.get("subject") or {}).get("reference") if isinstance(qr.get("subject"), Mapping) else None
        if record is None or record.source != PACKAGE_SOURCE:
            raise _bad(kb, "dtr_unknown_session", "QuestionnaireResponse.identifier", id=str(ident["value"])[:100])
        if record.subject != subject:
            raise _bad(kb, "dtr_other_patient", "QuestionnaireResponse.subject", id=record.id)
        state = dict(record.case)
        session = record
    known_q, known_a = _known_items(state, kb)
    asked: list[dict] = list(known_q)  # the contained Questionnaire's items, as this service asks them
    answered: list[dict] = list(known_a)
    declined: list[Any] = []
    questions = [(i, it) for i, it in enumerate(items) if not str(it.get("linkId", "")).startswith(KNOWN)]
    issue_answer: Optional[str] = None
    pending = False
    for n, (index, item) in enumerate(questions):
        where = f"QuestionnaireResponse.item[{index}]"
        link = item.get("linkId")
        step = next_step(state, declined, kb)
        if step.status == DECIDED:
            if link == ISSUE and step.decision is not None and step.decision.approved and n == len(questions) - 1:
                code = _coding(item, where, kb, dtr_system)
                if code is not None and code not in (ISSUE_YES, ISSUE_NO):
                    raise _bad(kb, "dtr_not_offered", where, link=ISSUE, code=code[:100])
                asked.append(_issue_item(kb, dtr_system))
                if code is None:
                    pending = True
                else:
                    answered.append(
                        {"linkId": ISSUE, "text": asked[-1]["text"], "answer": [{"valueCoding": next(o["valueCoding"] for o in asked[-1]["answerOption"] if o["valueCoding"]["code"] == code)}]}
                    )
                    issue_answer = code
                break
            raise _bad(kb, "dtr_not_asked", where, link=str(link)[:100], expected=w("dtr_nothing_more"))
        expected = f"q{n + 1}"
        if link != expected:
            raise _bad(kb, "dtr_not_asked", where, link=str(link)[:100], expected=expected)
        question = step.question
        offered = {_code(o.changes): o for o in question.options}
        item_q = _question_item(expected, question, kb, system)
        code = _coding(item, where, kb, system)
        asked.append(item_q)
        if code is None:
            if n != len(questions) - 1:
                raise _bad(kb, "dtr_unanswered", where, link=expected)
            pending = True
            break
        if code == NONE_CODE and question.declinable:
            declined += [c.to_dict() for o in question.options for c in o.changes]
        elif code in offered:
            try:
                state = answer_step(state, [c.to_dict() for c in offered[code].changes], kb)
            except CaseError as exc:
                raise FhirProblem.from_case_error(exc, 400) from None
        else:
            raise _bad(kb, "dtr_not_offered", where, link=expected, code=code[:100])
        display = next((o["valueCoding"] for o in item_q["answerOption"] if o["valueCoding"]["code"] == code), None)
        answered.append({"linkId": expected, "text": item_q["text"], "answer": [{"valueCoding": display}]})
    out = copy.deepcopy(qr)
    extensions = [e for e in out.get("extension") or [] if isinstance(e, Mapping) and e.get("url") != _crd_extension()]
    if not pending and issue_answer is None:
        step = next_step(state, declined, kb)
        if step.status != DECIDED:
            asked.append(_question_item(f"q{len(questions) + 1}", step.question, kb, system))
            pending = True
        elif step.decision is not None and step.decision.approved:
            asked.append(_issue_item(kb, dtr_system))  # spec-41: the last question offers the number
            pending = True
    if pending:
        out["status"] = "in-progress"
    else:
        decision = next_step(state, declined, kb).decision
        assert decision is not None
        asked.append({"linkId": DECISION, "text": w("q_decided", verdict=verdict(decision, v)), "type": "display"})
        out["status"] = "completed"
        coverage = next((e.get("valueReference", {}).get("reference") for e in extensions if e.get("url") == QR_COVERAGE), None)
        if log is not None:
            issue = issue_answer == ISSUE_YES and decision.approved
            record = _completion(log, kb, state, decision, session, (out.get("subject") or {}).get("reference") if isinstance(out.get("subject"), Mapping) else None, issue)
            if isinstance(coverage, str) and coverage:
                today = datetime.date.today()
                pending_pa = decision.approved and not issue
                ext = coverage_information(kb, coverage, record.id, today, decision=decision, pa_number=record.pa_number, questionnaire=None, primary=not pending_pa)
                extensions.append(ext)
            if record.pa_number:
                asked.append({"linkId": "pa-number", "text": w("dtr_pa_issued", number=record.pa_number), "type": "display"})
    out["extension"] = extensions
    if not out["extension"]:
        del out["extension"]
    out["contained"] = [_contained(kb, base_url, asked)] + [c for c in out.get("contained") or [] if isinstance(c, Mapping) and c.get("id") != CONTAINED]
    out["questionnaire"] = "#" + CONTAINED
    out["item"] = answered
    if wrapped:
        return {RESOURCE_TYPE: "Parameters", "parameter": [{"name": "return", "resource": out}]}
    return out


def _crd_extension() -> str:
    from .crd import CRD_EXTENSION

    return CRD_EXTENSION


def _question_item(link: str, question: Any, kb: "KnowledgeBase", system: str) -> dict:
    from .questionnaire import NONE_CODE, _code

    answers = [{"valueCoding": {"system": system, "code": _code(o.changes), "display": o.text}} for o in question.options]
    if question.declinable:
        answers.append({"valueCoding": {"system": system, "code": NONE_CODE, "display": kb.vocabulary.word("q_none")}})
    return {"linkId": link, "text": question.text, "type": "choice", "required": True, "answerOption": answers}


def _issue_item(kb: "KnowledgeBase", system: str) -> dict:
    w = kb.vocabulary.word
    return {
        "linkId": ISSUE,
        "text": w("dtr_issue_question"),
        "type": "choice",
        "required": True,
        "answerOption": [{"valueCoding": {"system": system, "code": ISSUE_YES, "display": w("dtr_issue_yes")}}, {"valueCoding": {"system": system, "code": ISSUE_NO, "display": w("dtr_issue_no")}}],
    }


def _completion(log: "DecisionLog", kb: "KnowledgeBase", state: dict, decision: Any, session: Any, subject: Optional[str], issue: bool) -> Any:
    """The completed form's record: a prior-authorization number once per start and case (the same answers again get the same number)."""
    import json

    from ..decision_log import Entry
    from ..decisions.decision import render_text

    case = json.loads(json.dumps(state, sort_keys=True))
    if session is not None and issue:
        for earlier in log.find(ANSWER_SOURCE, parent=session.id):
            if earlier.pa_number and earlier.case == case:
                return earlier
    from .crd import served

    return log.record(
        Entry(ANSWER_SOURCE, case, decision.to_dict(), None, subject, None, render_text(served(decision), kb.vocabulary), session.id if session is not None else None), kb, issue_pa=issue
    )
