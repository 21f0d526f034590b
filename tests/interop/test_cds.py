"""CDS Hooks 2.0 services and Da Vinci CRD 2.2.1 answers: each requirement a named test quoting its id.

The requests are built from the example Bundles (facts/fhir): the draft
order in the context, the other resources prefetched under the KB's own
prefetch keys (null for a key with no data), and a Coverage of the patient.
"""

from __future__ import annotations

import copy
import datetime
import json
import re

import pytest
from fastapi.testclient import TestClient

from kineret_asp import load_kb
from kineret_asp.interop.crd import CRD_EXTENSION, CRD_TEMP, CRD_VERSION, HOOKS
from kineret_asp.server import create_app

from ..conftest import FACTS, KB_DIR
from ..fhirvalid import emitted, valid_r4
from ..hook_requests import EXAMPLES, KEY_OF, coverage_of, hook_request  # noqa: F401 (the other hook tests take them from here)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
BASE = "https://crd.payer.example"


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(load_kb(KB_DIR), time_limit=60, base_url=BASE))


@pytest.fixture(scope="module")
def advisory():
    return TestClient(create_app(load_kb(KB_DIR), time_limit=60, base_url=BASE, advisory_card=True))


def example(name: str) -> dict:
    return json.loads((FACTS / "fhir" / f"{name}.json").read_text())


def post(client, request: dict, hook: str = "order-sign"):
    return client.post(f"/cds-services/ip0243-{hook}", json=request)


def call(client, bundle: dict, hook: str = "order-sign") -> dict:
    response = post(client, hook_request(bundle, hook), hook)
    assert response.status_code == 200, response.text
    return response.json()


def coverage_info(answer: dict) -> dict[str, list]:
    """The coverage-information extension of an answer's system action, by sub-extension; every test that reads one
    thereby checks it against every invariant of CRD 2.2.1 (:func:`crd_violations`)."""
    action = answer["systemActions"][0]
    ext = [e for e in action["resource"]["extension"] if e["url"] == CRD_EXTENSION]
    assert len(ext) == 1
    out: dict[str, list] = {}
    for sub in ext[0]["extension"]:
        values = [v for k, v in sub.items() if k.startswith("value")] or [sub.get("extension")]
        assert len(values) == 1, sub  # one value[x] (or sub-extensions) per sub-extension
        out.setdefault(sub["url"], []).append(values[0])
    assert crd_violations(out) == [], out
    return out


def values(info: dict, url: str) -> list:
    return info.get(url, [])


def crd_violations(info: dict) -> list[str]:
    """What a coverage-information extension breaks of CRD 2.2.1: its cardinalities, value sets and crd-ci-q1 .. q9."""
    v = lambda url: values(info, url)  # noqa: E731
    bad = [f"{one}: exactly one" for one in ("coverage", "covered", "date", "coverage-assertion-id") if len(v(one)) != 1]
    bad += [f"{most}: at most one" for most in ("pa-needed", "satisfied-pa-id", "expiry-date") if len(v(most)) > 1]
    if not set(v("covered")) <= {"covered", "not-covered", "conditional", "indeterminate"}:
        bad.append("covered: not in its value set")
    if not set(v("pa-needed")) <= {"no-auth", "auth-needed", "satisfied", "performpa", "conditional", "indeterminate"}:
        bad.append("pa-needed: not in its value set")
    if not set(v("doc-needed")) <= {"clinical", "admin", "patient", "conditional", "indeterminate"}:
        bad.append("doc-needed: not in its value set")
    if not set(v("info-needed")) <= {"performer", "location", "timeframe", "contract-window", "detail-code", "OTH"}:
        bad.append("info-needed: not in its value set")
    if not all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in v("date") + v("expiry-date")):
        bad.append("date: not a date")
    if v("questionnaire") and not v("doc-needed"):
        bad.append("crd-ci-q1: questionnaire without doc-needed")
    if "not-covered" in v("covered") and v("pa-needed"):
        bad.append("crd-ci-q2: not-covered with pa-needed")
    if bool(v("info-needed")) != ("conditional" in v("covered") + v("pa-needed") + v("doc-needed")):
        bad.append("crd-ci-q3: info-needed and conditional do not go together")
    if set(v("pa-needed")) & {"satisfied", "no-auth", "not-covered"} and "withpa" in v("doc-purpose"):
        bad.append("crd-ci-q4: withpa once no authorization is needed")
    if (v("pa-needed") == ["satisfied"]) != bool(v("satisfied-pa-id")):
        bad.append("crd-ci-q5: satisfied-pa-id and satisfied do not go together")
    if "OTH" in v("info-needed") and not v("reason"):
        bad.append("crd-ci-q6: info-needed OTH without a reason")
    if not all(r.get("text") for r in v("reason")):
        bad.append("crd-ci-q7: a reason without text")
    if [p for p in v("doc-purpose") if p != "conditional"] and not v("reason"):
        bad.append("crd-ci-q8: doc-purpose without a reason")
    if "indeterminate" in v("covered") + v("pa-needed") + v("doc-needed") and not v("reason"):
        bad.append("crd-ci-q9: indeterminate without a reason")
    return bad


@pytest.fixture(scope="module")
def answers(client) -> list[tuple[str, str, dict]]:
    """Every example decided on order-sign and order-select, and the criteria-not-met variant: (name, hook, answer)."""
    out = []
    for name in EXAMPLES:
        for hook in ("order-sign", "order-select"):
            out.append((name, hook, call(client, example(name), hook)))
    short = example("ra_approved")
    short["entry"] = [e for e in short["entry"] if e["resource"]["resourceType"] != "PractitionerRole"]
    out.append(("ra_without_rheumatologist", "order-sign", call(client, short)))
    return out


def infos(answers) -> list[dict]:
    return [coverage_info(a) for _, _, a in answers]


# --- discovery and the response type ---------------------------------------------------------------------


def test_discovery_declares_every_hook_with_its_crd_version_dev_1(client):
    """dev-1: "CRD servers SHALL declare at least one supported CRD version for each supported hook" (major.minor)."""
    services = client.get("/cds-services").json()["services"]
    assert [s["hook"] for s in services] == list(HOOKS) == ["order-sign", "order-select", "order-dispatch", "appointment-book"]
    for s in services:
        assert s["extension"]["davinci-crd.version"] == CRD_VERSION == "2.2"
        assert re.fullmatch(r"[1-9]\d*\.[1-9]\d*", s["extension"]["davinci-crd.version"])  # crdver-1
        assert any(q.startswith("Coverage?patient={{context.patientId}}") for q in s["prefetch"].values())


@pytest.mark.parametrize("hook", ["order-sign", "order-select"])
def test_coverage_information_is_a_system_action_and_never_a_card_resp_25(client, hook):
    """resp-25: 'Regardless of the content, this "Coverage Information" response type SHALL NOT use a card.'"""
    answer = call(client, example("ra_approved"), hook)
    assert answer["cards"] == []
    action = answer["systemActions"][0]
    assert action["type"] == "update" and action["resource"]["id"] == "kineret-order"
    info = coverage_info(answer)
    assert info["covered"] == ["covered"] and info["pa-needed"] == ["satisfied"] and info["coverage"] == [{"reference": "Coverage/cov1"}]


def test_a_primary_hook_always_answers_with_coverage_information_hook_16(answers):
    """hook-16: CRD Servers SHALL include a Coverage Information system action in the response for 'primary' hooks."""
    assert all(len(a["systemActions"]) == 1 for _, hook, a in answers if hook == "order-sign")


# --- the extension's invariants (CRD 2.2.1, ext-coverage-information) -------------------------------------


def test_cardinalities_of_the_extension(answers):
    for info in infos(answers):
        for one in ("coverage", "covered", "date", "coverage-assertion-id"):
            assert len(values(info, one)) == 1, one
        for at_most_one in ("pa-needed", "satisfied-pa-id", "expiry-date"):
            assert len(values(info, at_most_one)) <= 1
        assert values(info, "covered")[0] in ("covered", "not-covered", "conditional", "indeterminate")
        assert set(values(info, "pa-needed")) <= {"no-auth", "auth-needed", "satisfied", "performpa", "conditional", "indeterminate"}
        assert set(values(info, "doc-needed")) <= {"clinical", "admin", "patient", "conditional", "indeterminate"}
        assert set(values(info, "info-needed")) <= {"performer", "location", "timeframe", "contract-window", "detail-code", "OTH"}
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", values(info, "date")[0])


def test_crd_ci_q1_questionnaire_only_with_doc_needed(answers):
    """crd-ci-q1: "Questionnaire is only allowed when doc-needed exists"."""
    for info in infos(answers):
        if "questionnaire" in info:
            assert "doc-needed" in info
    assert any("questionnaire" in i for i in infos(answers))


def test_crd_ci_q2_not_covered_has_no_pa_needed(answers):
    """crd-ci-q2: "If covered is set to 'not-covered', then 'pa-needed' must not exist."""
    seen = [i for i in infos(answers) if i["covered"] == ["not-covered"]]
    assert seen and all("pa-needed" not in i for i in seen)


def test_crd_ci_q3_info_needed_exactly_when_something_is_conditional(answers):
    """crd-ci-q3: "'info-needed' SHALL exist if and only if at least one of 'covered', 'pa-needed', or 'doc-needed' is set to 'conditional'."""
    conditional = 0
    for info in infos(answers):
        is_conditional = "conditional" in values(info, "covered") + values(info, "pa-needed") + values(info, "doc-needed")
        conditional += is_conditional
        assert ("info-needed" in info) == is_conditional, info
    assert conditional


def test_crd_ci_q4_no_withpa_purpose_once_prior_authorization_is_satisfied(answers):
    """crd-ci-q4: "If 'pa-needed' is 'satisfied', 'noauth', or 'not-covered', then 'Doc-purpose' cannot be 'withpa'."""
    for info in infos(answers):
        if set(values(info, "pa-needed")) & {"satisfied", "no-auth", "not-covered"}:
            assert "withpa" not in values(info, "doc-purpose")


def test_crd_ci_q5_satisfied_pa_id_exactly_when_satisfied(answers):
    """crd-ci-q5: "'satisfied-pa-id' must exist if and only if 'pa-needed' is set to 'satisfied'."""
    satisfied = [i for i in infos(answers) if values(i, "pa-needed") == ["satisfied"]]
    assert satisfied
    for info in infos(answers):
        assert (values(info, "pa-needed") == ["satisfied"]) == ("satisfied-pa-id" in info)


def test_crd_ci_q6_info_needed_oth_has_a_reason(answers):
    """crd-ci-q6: "If 'info-needed' is OTH, then reason must be specified"."""
    for info in infos(answers):
        if "OTH" in values(info, "info-needed"):
            assert values(info, "reason") and "detail" in info


def test_crd_ci_q7_every_reason_has_text(answers):
    """crd-ci-q7: "If reason.coding is present and is not from the extensible value set, then reason.text must be present"."""
    for info in infos(answers):
        assert all(r.get("text") for r in values(info, "reason"))


def test_crd_ci_q8_doc_purpose_has_a_reason(answers):
    """crd-ci-q8: "If doc-purpose is present with a value other than 'conditional', then reason must be present"."""
    for info in infos(answers):
        if [p for p in values(info, "doc-purpose") if p != "conditional"]:
            assert values(info, "reason")


def test_the_invariant_check_every_test_applies_finds_each_violation():
    """coverage_info checks every answer a test reads against crd_violations: it must see each broken invariant."""
    good = {
        "coverage": [{"reference": "Coverage/c"}],
        "covered": ["covered"],
        "pa-needed": ["satisfied"],
        "date": ["2024-07-01"],
        "coverage-assertion-id": ["a"],
        "satisfied-pa-id": ["n"],
        "reason": [{"text": "met"}],
    }
    assert crd_violations(good) == []
    broken = {
        "crd-ci-q1": {**good, "questionnaire": ["q"]},
        "crd-ci-q2": {**good, "covered": ["not-covered"]},
        "crd-ci-q3": {**good, "info-needed": ["OTH"]},
        "crd-ci-q4": {**good, "doc-purpose": ["withpa"]},
        "crd-ci-q5": {k: x for k, x in good.items() if k != "satisfied-pa-id"},
        "crd-ci-q6": {**{k: x for k, x in good.items() if k != "reason"}, "covered": ["conditional"], "pa-needed": ["auth-needed"], "satisfied-pa-id": [], "info-needed": ["OTH"]},
        "crd-ci-q7": {**good, "reason": [{"coding": [{"code": "x"}]}]},
        "crd-ci-q8": {**{k: x for k, x in good.items() if k != "reason"}, "pa-needed": ["auth-needed"], "satisfied-pa-id": [], "doc-purpose": ["withpa"]},
        "crd-ci-q9": {**{k: x for k, x in good.items() if k != "reason"}, "covered": ["indeterminate"], "pa-needed": ["indeterminate"], "satisfied-pa-id": []},
        "coverage": {k: x for k, x in good.items() if k != "coverage"},
    }
    for invariant, info in broken.items():
        assert any(b.startswith(invariant) for b in crd_violations(info)), invariant


def test_crd_ci_q9_indeterminate_has_a_reason():
    """crd-ci-q9: indeterminate needs a reason (see also the technical-failure test, resp-43)."""
    client = TestClient(create_app(load_kb(KB_DIR), time_limit=0.001, base_url=BASE))
    answer = call(client, example("ra_approved"))
    info = coverage_info(answer)
    assert info["covered"] == ["indeterminate"] and values(info, "reason")[0]["text"]


def test_an_approval_carries_the_expiry_of_its_twelve_months(client):
    """CRD 2.2.1 expiry-date: "if the payer knows of an expiry date, they must share it": approvals last 12 months."""
    info = coverage_info(call(client, example("stills_adult_onset")))
    today = datetime.date.today()
    expiry = datetime.date.fromisoformat(info["expiry-date"][0])
    assert info["date"] == [today.isoformat()] and 364 <= (expiry - today).days <= 366


def test_every_conditional_answer_of_unmet_criteria_offers_the_questionnaire(client):
    bundle = example("ra_approved")
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "PractitionerRole"]
    info = coverage_info(call(client, bundle))
    assert info["covered"] == ["conditional"] and info["pa-needed"] == ["auth-needed"] and info["doc-needed"] == ["clinical"] and info["info-needed"] == ["OTH"]
    assert info["questionnaire"] == [f"{BASE}/Questionnaire/ip0243|2024-06-01"]
    assert client.get("/Questionnaire/ip0243").json()["url"] == info["questionnaire"][0].split("|")[0]


def test_order_select_asks_for_no_documentation_hook_19(answers):
    """hook-19: coverage information of a secondary hook "SHALL NOT include messages indicating a need for clinical or administrative information"."""
    select = [coverage_info(a) for _, hook, a in answers if hook == "order-select"]
    assert select and all("doc-needed" not in i and "doc-purpose" not in i and "questionnaire" not in i for i in select)


def test_a_concurrent_biologic_is_not_covered(client):
    info = coverage_info(call(client, example("sjia_concurrent_etanercept")))
    assert info["covered"] == ["not-covered"] and "pa-needed" not in info and "NC.2" not in json.dumps(info).split("reason")[0]


def test_other_policy_is_conditional_with_information_needed(client):
    info = coverage_info(call(client, example("covid_19")))
    assert info["covered"] == ["conditional"] and info["pa-needed"] == ["conditional"] and info["info-needed"] == ["OTH"]


def test_an_approval_that_an_unread_current_medication_could_undo_is_not_asserted(client):
    """A current drug whose code the tables do not know may be a biologic (Conditions Not Covered 2): conditional."""
    bundle = example("stills_adult_onset")
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "MedicationStatement",
                "id": "unknown-now",
                "status": "active",
                "subject": {"reference": "Patient/p1"},
                "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "999999", "display": "a new drug"}]},
            }
        }
    )
    info = coverage_info(call(client, bundle))
    assert info["covered"] == ["conditional"] and info["pa-needed"] == ["auth-needed"] and "satisfied-pa-id" not in info


def test_an_unread_history_entry_cannot_undo_an_approval(client):
    info = coverage_info(call(client, example("ra_approved")))
    assert info["covered"] == ["covered"] and info["pa-needed"] == ["satisfied"]


def test_an_undetermined_current_drug_is_conditional_with_its_question_as_the_reason(client):
    bundle = example("ra_approved")
    bundle["entry"].append(
        {"resource": {"resourceType": "MedicationStatement", "id": "unknown-now", "status": "active", "subject": {"reference": "Patient/p1"}, "medicationCodeableConcept": {"text": "zorbitrex 20 mg"}}}
    )
    info = coverage_info(call(client, bundle))
    assert info["covered"] == ["conditional"] and info["pa-needed"] == ["auth-needed"] and "satisfied-pa-id" not in info
    assert "zorbitrex 20 mg" in info["reason"][0]["text"]


# --- Coverage (hook-13, resp-45) and failures (resp-43) ---------------------------------------------------


def test_no_coverage_is_400_with_an_operation_outcome_hook_13(client):
    """hook-13: 400 "...This includes situations where no Coverage is accessible, multiple Coverages are accessible"."""
    response = post(client, hook_request(example("stills_adult_onset"), coverage=False))
    assert response.status_code == 400 and response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome" and "Coverage" in outcome["issue"][0]["diagnostics"]
    valid_r4(outcome)


def test_two_active_coverages_are_400_hook_13(client):
    request = hook_request(example("stills_adult_onset"))
    request["prefetch"]["coverage"]["entry"].append({"resource": coverage_of(cid="cov-two")})
    response = post(client, request)
    assert response.status_code == 400 and "cov-two" in response.json()["issue"][0]["diagnostics"]


def test_an_inactive_coverage_is_not_covered_with_no_active_coverage_resp_45(client):
    """resp-45: a patient without active coverage: "not-covered" with a reason of coverage-not-found or no-active-coverage."""
    bundle = example("stills_adult_onset")
    bundle["entry"].append({"resource": coverage_of(status="cancelled", cid="old")})
    answer = post(client, hook_request(bundle, coverage=False)).json()
    info = coverage_info(answer)
    assert info["covered"] == ["not-covered"] and "pa-needed" not in info
    assert info["reason"][0]["coding"] == [{"system": CRD_TEMP, "code": "no-active-coverage"}] and info["coverage"] == [{"reference": "Coverage/old"}]


def test_a_technical_failure_is_indeterminate_resp_43():
    """resp-43: technical issues: "indeterminate" with a reason code of technical (a worker stopped at its time limit)."""
    client = TestClient(create_app(load_kb(KB_DIR), time_limit=0.001, base_url=BASE))
    answer = post(client, hook_request(example("stills_adult_onset")))
    assert answer.status_code == 200
    info = coverage_info(answer.json())
    assert info["covered"] == ["indeterminate"] and info["pa-needed"] == ["indeterminate"]
    assert info["reason"][0]["coding"] == [{"system": CRD_TEMP, "code": "technical"}]
    record = client.get(f"/decisions/{info['coverage-assertion-id'][0]}").json()
    assert record["decision"]["decision"] == "indeterminate"  # the assertion id too is issued by the log


# --- the order as sent (resp-37) ----------------------------------------------------------------------------


def test_the_order_is_echoed_as_sent_with_only_the_extension_added_resp_37(client):
    """resp-37: the resource content "SHALL NOT make changes to any data elements other than adding or modifying coverage-information extensions"."""
    request = hook_request(example("stills_adult_onset"))
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    order["dosageInstruction"] = [{"text": "100 mg daily", "doseAndRate": [{"doseQuantity": {"value": 100.50, "unit": "mg"}}]}]
    order["_status"] = {"extension": [{"url": "http://example.org/status-note", "valueString": "kept"}]}
    order["extension"] = [{"url": "http://example.org/other", "valueString": "kept too"}]
    text = json.dumps(request).replace("100.5,", "100.50,").replace('"kept too"}]', '"kept too"}], "note": [{"text": "1e2 \\u2028 line"}]')
    assert "100.50" in text
    response = client.post("/cds-services/ip0243-order-sign", content=text.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert '"value":100.50' in response.text  # the decimal as written, not 100.5
    assert "\\u2028" in response.text and "\u2028" not in response.text  # escaped as the command line writes it
    echoed = response.json()["systemActions"][0]["resource"]
    sent = json.loads(text)["context"]["draftOrders"]["entry"][0]["resource"]
    others = [e for e in echoed["extension"] if e["url"] != CRD_EXTENSION]
    assert others == sent["extension"]
    assert {k: v for k, v in echoed.items() if k != "extension"} == {k: v for k, v in sent.items() if k != "extension"}
    assert list(echoed) == list(sent)  # the order of its elements too


def test_every_emitted_resource_is_valid_fhir(answers, client):
    """Every action's resource validates as R4 (fhirclient) and R4B (fhir.resources)."""
    for _, _, answer in answers:
        for resource in emitted(answer):
            valid_r4(resource)
    valid_r4(client.get("/Questionnaire/ip0243").json())


# --- identifiers issued by the log ------------------------------------------------------------------------


def test_two_patients_with_the_same_facts_never_share_a_prior_authorization_number(client):
    """CRD 2.2.1: satisfied-pa-id "is a prior authorization number and can be submitted in the corresponding X12 element"."""
    first = coverage_info(call(client, example("caps_muckle_wells")))
    second = coverage_info(call(client, example("caps_muckle_wells")))
    assert first["satisfied-pa-id"] != second["satisfied-pa-id"] and first["coverage-assertion-id"] != second["coverage-assertion-id"]
    assert re.fullmatch(r"IP0243-\d{8}-[0-9A-Z]{12}", first["satisfied-pa-id"][0])


def test_every_number_resolves_to_its_request_decision_and_provenance(client):
    answer = post(client, hook_request(example("stills_adult_onset"))).json()
    info = coverage_info(answer)
    for key in (info["satisfied-pa-id"][0], info["coverage-assertion-id"][0]):
        record = client.get(f"/decisions/{key}").json()
        assert record["id"] == info["coverage-assertion-id"][0] and record["prior_authorization_number"] == info["satisfied-pa-id"][0]
        assert record["source"] == "cds:order-sign" and record["request_id"] == "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea" and record["subject"] == "Patient/p1"
        assert record["decision"]["decision"] == "approved" and record["input"]["case"]["indication"] == "stills_disease" and len(record["input"]["sha256"]) == 64
        assert record["provenance"]["policy"] == "IP0243" and record["provenance"]["rule_files"] and "kb" not in record["decision"]["provenance"]
    assert client.get("/decisions/IP0243-00000000-NOSUCHNUMBER").status_code == 404
    report = client.get(f"/reports/{info['coverage-assertion-id'][0]}").text
    assert "APPROVED" in report and str(KB_DIR) not in report


# --- the request ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, where",
    [
        (lambda r: r.pop("hook"), "hook"),
        (lambda r: r.pop("hookInstance"), "hookInstance"),
        (lambda r: r.update(hookInstance=5), "hookInstance"),
        (lambda r: r["context"].pop("patientId"), "context.patientId"),
        (lambda r: r.update(context="x"), "context"),
        (lambda r: r.update(hook="order-select"), "hook"),
        (lambda r: r["context"].update(draftOrders=[]), "context.draftOrders"),
        (lambda r: r.update(prefetch={"conditions": 5}), "prefetch.conditions"),
    ],
)
def test_a_request_that_is_not_cds_hooks_is_400_with_an_operation_outcome_hook_13(client, change, where):
    """hook-13: 400 "The request is not parsable as JSON or the content fails validation against FHIR core or CDS Hooks specification rules"."""
    request = hook_request(example("stills_adult_onset"))
    change(request)
    response = post(client, request)
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["expression"] == [where]


def test_unparsable_json_is_400_with_an_operation_outcome_hook_10(client):
    """hook-10: an issue "identified at a layer of the CRD Server that is FHIR aware" SHALL provide an OperationOutcome."""
    for body in (b"{", b"5", b"null", b"[" * 100000, b'{"hook": NaN}'):
        response = client.post("/cds-services/ip0243-order-sign", content=body)
        assert response.status_code == 400 and response.json()["resourceType"] == "OperationOutcome", body[:20]


def test_an_unknown_service_is_404_with_an_operation_outcome(client):
    response = client.post("/cds-services/nope", json={})
    assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"


def test_more_than_one_order_for_the_drug_is_422_hook_13(client):
    """hook-13: 422 for a request valid as FHIR and CDS Hooks that breaks a rule of its own (one order of the drug at a time)."""
    request = hook_request(example("stills_adult_onset"))
    twin = copy.deepcopy(request["context"]["draftOrders"]["entry"][0])
    twin["resource"]["id"] = "twin"
    request["context"]["draftOrders"]["entry"].append(twin)
    response = post(client, request)
    assert response.status_code == 422 and response.json()["resourceType"] == "OperationOutcome"


def test_an_order_for_another_drug_is_200_with_no_card(client):
    bundle = example("stills_adult_onset")
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] == "MedicationRequest":
            e["resource"]["medicationCodeableConcept"]["coding"][0]["code"] = "6851"
    request = hook_request(bundle)
    request.pop("prefetch")  # nothing is needed to say nothing
    response = post(client, request)
    assert response.status_code == 200 and response.json() == {"cards": []}


def test_a_null_prefetch_is_no_data_and_an_operation_outcome_is_data_not_had(client):
    """CDS Hooks 2.0: "If the CDS Client has no data to populate a template prefetch key, the prefetch template key MUST have a value of null";
    an OperationOutcome says the client failed to prefetch it: without a FHIR server to fetch from, 412."""
    request = hook_request(example("stills_adult_onset"))
    assert request["prefetch"]["genetic_variants"] is None and post(client, request).status_code == 200
    request["prefetch"]["genetic_variants"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    response = post(client, request)
    assert response.status_code == 412 and response.json()["issue"][0]["expression"] == ["prefetch.genetic_variants"]


def test_missing_prefetch_with_no_fhir_server_allowed_is_412(client):
    """CDS Hooks 2.0: unable to obtain required data ... "the service SHALL respond with an HTTP 412 Precondition Failed"."""
    request = hook_request(example("stills_adult_onset"))
    del request["prefetch"]["conditions"]
    request["fhirServer"] = "http://127.0.0.1:9/fhir"  # not on the allow-list: never contacted
    response = post(client, request)
    assert response.status_code == 412 and "conditions" in response.json()["issue"][0]["diagnostics"]


def test_another_patients_resource_is_400_and_never_used(client):
    """A hook for patient p2 whose prefetch holds p1's records: refused (400), never decided with them."""
    request = hook_request(example("stills_adult_onset"), patient="p2")
    response = post(client, request)
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome" and any("not the order's patient Patient/p2" in i["diagnostics"] for i in outcome["issue"])
    assert "satisfied-pa-id" not in response.text


# --- the other hooks ----------------------------------------------------------------------------------------


def test_order_dispatch_decides_the_dispatched_order(client):
    request = hook_request(example("stills_adult_onset"))
    order = request["context"].pop("draftOrders")["entry"][0]["resource"]
    order["status"] = "active"
    request["hook"] = "order-dispatch"
    request["context"].update(dispatchedOrders=[f"MedicationRequest/{order['id']}"], performer="Organization/pharmacy")
    request["prefetch"]["medication_requests"] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": order}]}
    answer = post(client, request, "order-dispatch").json()
    info = coverage_info(answer)
    assert answer["systemActions"][0]["resource"]["status"] == "active"  # echoed as sent
    assert info["covered"] == ["covered"] and info["pa-needed"] == ["satisfied"]


def test_appointment_book_decides_the_order_an_appointment_is_based_on(client):
    request = hook_request(example("stills_adult_onset"))
    order = request["context"].pop("draftOrders")["entry"][0]["resource"]
    order["status"] = "active"
    appointment = {
        "resourceType": "Appointment",
        "id": "apt1",
        "status": "proposed",
        "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"}],
        "basedOn": [{"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/alternate-reference", "valueReference": {"reference": f"MedicationRequest/{order['id']}"}}]}],
    }
    request["hook"] = "appointment-book"
    request["context"]["appointments"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": appointment}]}
    request["prefetch"]["medication_requests"] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": order}]}
    answer = post(client, request, "appointment-book").json()
    action = answer["systemActions"][0]
    assert action["resource"]["resourceType"] == "Appointment" and action["resource"]["id"] == "apt1"
    assert coverage_info(answer)["covered"] == ["covered"]
    valid_r4(action["resource"])
    del appointment["basedOn"]  # an appointment for nothing this policy decides
    assert post(client, request, "appointment-book").json() == {"cards": []}


# --- the advisory card -------------------------------------------------------------------------------------


def test_the_advisory_card_names_the_insurer_resp_4(advisory):
    """resp-4: "The Card.source.label SHALL be populated with an insurer name that the user and patient are likely to recognize"."""
    card = call(advisory, example("covid_19"))["cards"][0]
    assert card["source"]["label"] == "Cigna Healthcare" and card["source"]["topic"]["system"] == CRD_TEMP
    assert len(card["summary"]) <= 140 and card["indicator"] in ("info", "warning")


def test_card_texts_are_escaped_and_links_built_from_the_base_url(advisory):
    """Texts from the request (displays, ids) cannot become markup: no image, no script link, no remote tracker."""
    bundle = example("ra_approved")
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "PractitionerRole"]
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "MedicationStatement",
                "id": "x",
                "status": "active",
                "subject": {"reference": "Patient/p1"},
                "medicationCodeableConcept": {"text": "<img src=x onerror=alert(1)> [click](javascript:alert(1)) ![t](https://tracker.example/p.gif)"},
            }
        }
    )
    response = advisory.post("/cds-services/ip0243-order-sign", json=hook_request(bundle), headers={"host": "evil.example"})
    card = response.json()["cards"][0]
    import cmarkgfm
    from cmarkgfm.cmark import Options

    html = cmarkgfm.github_flavored_markdown_to_html(card["detail"], options=Options.CMARK_OPT_UNSAFE)
    assert "<img" not in html and "javascript:" not in html.split("href=")[-1][:20] and "href=" not in html and 'tracker.example/p.gif"' not in html
    assert "&lt;img" in html or "\\<img" in card["detail"]
    assert all(link["url"].startswith(BASE + "/") for link in card["links"])
    assert "evil.example" not in response.text


def test_an_order_is_decided_by_the_version_in_force_today_not_a_later_one(tmp_path, future_version_tree):
    """A tree whose latest version takes effect in 2099 (initial approvals of 6 months there): an order signed today
    is decided, logged and answered by the version in force today (12 months), and its logged case keeps the day."""
    from kineret_asp.decision_log import DecisionLog

    log = DecisionLog(str(tmp_path / "log.sqlite3"))
    answer = call(TestClient(create_app(future_version_tree, time_limit=60, base_url=BASE, db=log)), example("stills_adult_onset"))
    info = coverage_info(answer)
    today = datetime.date.today()
    expiry = datetime.date.fromisoformat(info["expiry-date"][0])
    assert 364 <= (expiry - today).days <= 366  # twelve months: the 2024-06-01 version's, not 2099's six
    (record,) = log.find()
    assert record.case["date_of_service"] == today.isoformat()
    assert record.version == "2024-06-01"
