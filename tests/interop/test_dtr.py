"""Da Vinci DTR adaptive form: $questionnaire-package, the Questionnaire at its canonical URL, $next-question.

Each DTR requirement is a named test quoting its id; a forged or malformed
answer is 400 with an OperationOutcome and changes nothing (a property test
over generated answers).
"""

from __future__ import annotations

import copy
import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kineret_asp import load_kb
from kineret_asp.interop.dtr import ADAPTIVE_SEARCH, QR_PARAMETERS, SDC_ADAPTIVE
from kineret_asp.server import create_app

from ..conftest import KB_DIR
from ..fhirvalid import valid_r4
from .test_cds import BASE, coverage_info, example, hook_request, post

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
CHANGE = "urn:kineret-asp:change"


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(load_kb(KB_DIR), time_limit=60, base_url=BASE))


def next_q(client, qr: dict, name: str = "questionnaire-response"):
    return client.post("/Questionnaire/$next-question", json={"resourceType": "Parameters", "parameter": [{"name": name, "resource": qr}]})


def returned(response) -> dict:
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["resourceType"] == "Parameters" and out["parameter"][0]["name"] == "return"
    return out["parameter"][0]["resource"]


def crd_without_rheumatologist(client) -> tuple[dict, dict, dict]:
    """A CRD call whose order lacks only the rheumatologist: (its coverage information, the Coverage, the order)."""
    bundle = example("ra_approved")
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "PractitionerRole"]
    request = hook_request(bundle)
    answer = post(client, request).json()
    coverage = next(e["resource"] for e in request["prefetch"]["coverage"]["entry"])
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    return coverage_info(answer), coverage, order


def package(client, coverage: dict, order: dict, context: str | None = None, questionnaire: str | None = None):
    params = [{"name": "coverage", "resource": coverage}, {"name": "order", "resource": order}]
    if context:
        params.append({"name": "context", "valueString": context})
    if questionnaire:
        params.append({"name": "questionnaire", "valueCanonical": questionnaire})
    return client.post("/Questionnaire/$questionnaire-package", json={"resourceType": "Parameters", "parameter": params})


def start(client) -> tuple[dict, dict]:
    """A package from a CRD call: (its QuestionnaireResponse, the CRD coverage information)."""
    info, coverage, order = crd_without_rheumatologist(client)
    response = package(client, coverage, order, info["coverage-assertion-id"][0])
    assert response.status_code == 200, response.text
    bundle = response.json()["parameter"][0]["resource"]
    return bundle["entry"][1]["resource"], info


def last_question(qr: dict) -> dict:
    return qr["contained"][0]["item"][-1]


def answer(qr: dict, code: str, system: str = CHANGE) -> dict:
    item = last_question(qr)
    qr = copy.deepcopy(qr)
    qr["item"].append({"linkId": item["linkId"], "answer": [{"valueCoding": {"system": system, "code": code}}]})
    return qr


# --- the Questionnaire and the package ----------------------------------------------------------------------


def test_the_questionnaire_is_read_at_its_canonical_url_spec_23(client):
    """spec-23: "When a payer uses an Adaptive Form, they SHALL return a questionnaire instance compliant with the DTR AdaptiveQuestionnaire-Search profile"."""
    q = client.get("/Questionnaire/ip0243").json()
    assert q["url"] == f"{BASE}/Questionnaire/ip0243" and q["version"] == "2024-06-01" and q["subjectType"] == ["Patient"]
    assert q["meta"]["profile"] == [ADAPTIVE_SEARCH] and "item" not in q  # item 0..0
    assert [e["url"] for e in q["extension"]] == [SDC_ADAPTIVE] and q["extension"][0]["valueUrl"].startswith(BASE + "/")  # spec-24: a sub-url of the payer's base
    valid_r4(q)
    assert client.get("/Questionnaire/other").status_code == 404


def test_the_package_holds_the_questionnaire_and_a_response_derived_from_it_spec_25_oper_18(client):
    """spec-25: the QuestionnaireResponse references "a contained Questionnaire derivedFrom the canonical"; oper-18: it identifies the Coverage and the order."""
    qr, info = start(client)
    contained = qr["contained"][0]
    assert qr["questionnaire"] == "#" + contained["id"] and contained["derivedFrom"] == [info["questionnaire"][0]]
    assert qr["status"] == "in-progress" and qr["subject"] == {"reference": "Patient/p1"}
    urls = {e["url"]: e["valueReference"] for e in qr["extension"]}
    assert urls["http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/qr-coverage"] == {"reference": "Coverage/cov1"}
    assert urls["http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/qr-context"] == {"reference": "MedicationRequest/kineret-order"}
    valid_r4(qr)


def test_answers_crd_already_knows_are_pre_filled_and_not_asked_spec_40(client):
    """spec-40: DTR services SHOULD "leverage data retrieved from CRD ... to pre-populate answers"; the first question is the one thing missing."""
    qr, _ = start(client)
    known = {i["linkId"] for i in qr["item"]}
    assert {"known-indication", "known-medication_history", "known-plan"} <= known
    origin = qr["item"][0]["answer"][0]["extension"][0]
    assert origin["valueCode"] == "auto"
    first = last_question(returned(next_q(client, qr)))
    assert first["linkId"] == "q1" and "rheumatologist" in first["text"]  # not the indication again


def test_an_unknown_context_is_400_with_an_operation_outcome_spec_130(client):
    """spec-130: "the context id can't be found" - a 4xx error with an accompanying OperationOutcome."""
    _, coverage, order = crd_without_rheumatologist(client)
    response = package(client, coverage, order, "no-such-assertion")
    assert response.status_code == 400 and response.json()["resourceType"] == "OperationOutcome"


def test_a_context_about_another_patient_is_refused(client):
    info, coverage, order = crd_without_rheumatologist(client)
    other = dict(coverage, beneficiary={"reference": "Patient/p2"})
    response = package(client, other, order, info["coverage-assertion-id"][0])
    assert response.status_code == 400 and "another patient" in response.json()["issue"][0]["diagnostics"]


def test_a_package_without_a_coverage_is_400_oper_6(client):
    """oper-6: the operation "SHALL take as input the Coverage resource(s)"."""
    response = client.post("/Questionnaire/$questionnaire-package", json={"resourceType": "Parameters", "parameter": []})
    assert response.status_code == 400 and response.json()["resourceType"] == "OperationOutcome"


def test_an_unknown_questionnaire_is_a_warning_oper_9(client):
    """oper-9: "If any of the explicitly requested questionnaires cannot be found, a warning SHALL be provided in the Outcome"."""
    _, coverage, order = crd_without_rheumatologist(client)
    out = package(client, coverage, order, questionnaire="http://elsewhere.example/Questionnaire/x").json()
    assert [p["name"] for p in out["parameter"]] == ["outcome"] and out["parameter"][0]["resource"]["issue"][0]["severity"] == "warning"


# --- $next-question -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", QR_PARAMETERS)
def test_next_question_accepts_the_dtr_and_sdc_parameter_names(client, name):
    """DTR 2.2 and SDC name the input questionnaire-response, DTR 2.1 questionnaire-response-in; the first form here was in."""
    qr, _ = start(client)
    assert last_question(returned(next_q(client, qr, name)))["linkId"] == "q1"


def test_a_dialogue_from_the_package_to_the_prior_authorization_number_spec_41_spec_33(client):
    """spec-41: when the requirements are met "the final question in the form SHALL be a question that asks the user if they would like the
    prior authorization identifier to be issued"; spec-33: the completed response carries the coverage-information extension."""
    qr, _ = start(client)
    qr = returned(next_q(client, qr))
    yes = next(o["valueCoding"]["code"] for o in last_question(qr)["answerOption"] if o["valueCoding"]["code"] != "none")
    qr = returned(next_q(client, answer(qr, yes)))
    issue = last_question(qr)
    assert issue["linkId"] == "issue-pa" and qr["status"] == "in-progress"
    system = issue["answerOption"][0]["valueCoding"]["system"]
    done = returned(next_q(client, answer(qr, "issue", system)))
    assert done["status"] == "completed"
    info = coverage_info({"systemActions": [{"resource": done}]})
    assert info["covered"] == ["covered"] and info["pa-needed"] == ["satisfied"] and info["satisfied-pa-id"][0].startswith("IP0243-")
    record = client.get(f"/decisions/{info['satisfied-pa-id'][0]}").json()
    assert record["decision"]["decision"] == "approved" and record["source"] == "dtr:next-question"
    again = returned(next_q(client, answer(qr, "issue", system)))  # the same answers again: the same number, issued once
    assert coverage_info({"systemActions": [{"resource": again}]})["satisfied-pa-id"] == info["satisfied-pa-id"]
    valid_r4(done)


def test_declining_the_number_completes_without_one(client):
    qr, _ = start(client)
    qr = returned(next_q(client, qr))
    yes = next(o["valueCoding"]["code"] for o in last_question(qr)["answerOption"] if o["valueCoding"]["code"] != "none")
    qr = returned(next_q(client, answer(qr, yes)))
    system = last_question(qr)["answerOption"][0]["valueCoding"]["system"]
    done = returned(next_q(client, answer(qr, "not-now", system)))
    info = coverage_info({"systemActions": [{"resource": done}]})
    assert done["status"] == "completed" and info["pa-needed"] == ["auth-needed"] and "satisfied-pa-id" not in info


def test_a_forged_answer_that_would_approve_is_400_and_applies_nothing_spec_147(client):
    """spec-147: a QuestionnaireResponse "the payer determines is invalid based on the rules in the contained Questionnaire"
    SHALL be 400 with an OperationOutcome. One coding that sets the indication, adds a rheumatologist and a beneficial response:"""
    forged = json.dumps([{"op": "set", "path": "indication", "value": "sjia"}, {"op": "add", "path": "prescriber_specialties", "value": "rheumatology"}])
    qr = {"resourceType": "QuestionnaireResponse", "status": "in-progress"}
    qr = returned(next_q(client, qr))
    response = next_q(client, answer(qr, forged))
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["QuestionnaireResponse.item[0]"] and "q1" in issue["diagnostics"] and "not one of the answer options" in issue["diagnostics"]
    qr["contained"][0]["item"][-1]["answerOption"].append({"valueCoding": {"system": CHANGE, "code": forged}})  # offered by the client itself: still not by the service
    assert next_q(client, answer(qr, forged)).status_code == 400


def test_an_item_never_asked_is_400(client):
    qr = returned(next_q(client, {"resourceType": "QuestionnaireResponse", "status": "in-progress"}))
    code = last_question(qr)["answerOption"][0]["valueCoding"]["code"]
    qr["item"].append({"linkId": "q7", "answer": [{"valueCoding": {"system": CHANGE, "code": code}}]})
    response = next_q(client, qr)
    assert response.status_code == 400 and "q7" in response.json()["issue"][0]["diagnostics"]


def test_a_session_about_another_patient_is_refused(client):
    qr, _ = start(client)
    qr["subject"] = {"reference": "Patient/p2"}
    assert next_q(client, qr).status_code == 400


MALFORMED = [5, None, True, 1e999, "x", [], {}, {"system": CHANGE}, {"system": CHANGE, "code": 5}, {"system": CHANGE, "code": None}]


@pytest.mark.parametrize("coding", MALFORMED, ids=[repr(m)[:20] for m in MALFORMED])
def test_a_malformed_answer_is_400_never_500(client, coding):
    """Done when: an answer code 5, null, true, 1e999, deep nesting ... is 400 with an OperationOutcome, never 500."""
    qr = returned(next_q(client, {"resourceType": "QuestionnaireResponse", "status": "in-progress"}))
    qr["item"].append({"linkId": "q1", "answer": [{"valueCoding": coding}]})
    text = json.dumps({"resourceType": "Parameters", "parameter": [{"name": "questionnaire-response", "resource": qr}]}, allow_nan=True).replace("Infinity", "1e999")
    response = client.post("/Questionnaire/$next-question", content=text.encode(), headers={"content-type": "application/fhir+json"})
    assert response.status_code == 400 and response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "body",
    [
        b"5",
        b"null",
        b"true",
        b"1e999",
        b"[" * 50000 + b"]" * 50000,
        b'{"resourceType": "Parameters", "parameter": 5}',
        b'{"resourceType": "Parameters", "parameter": [5]}',
        b'{"resourceType": "QuestionnaireResponse", "status": "in-progress", "item": 5}',
        b'{"resourceType": "QuestionnaireResponse", "status": "in-progress", "item": [{"linkId": "q1", "answer": 5}]}',
        b"{",
    ],
)
def test_a_malformed_body_is_400_never_500(client, body):
    for route in ("/Questionnaire/$next-question", "/Questionnaire/$questionnaire-package"):
        response = client.post(route, content=body)
        assert response.status_code == 400, (route, body[:40], response.text)
        assert response.json()["resourceType"] == "OperationOutcome"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], derandomize=True)
@given(
    code=st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda ops: json.dumps(ops),
            st.lists(
                st.fixed_dictionaries(
                    {
                        "op": st.sampled_from(["set", "add", "remove"]),
                        "path": st.sampled_from(["indication", "prescriber_specialties", "beneficial_response", "plan", "current_medications"]),
                        "value": st.one_of(st.sampled_from(["sjia", "rheumatology", True, "employer_group", "cinqair"]), st.integers(), st.none()),
                    }
                ),
                max_size=3,
            ),
        ),
    ),
    system=st.sampled_from([CHANGE, "urn:other"]),
)
def test_no_answer_outside_the_offered_options_changes_a_case(client, code, system):
    """Done when: "no answer outside the offered options changes a case" - generated codes are refused, and an offered one is accepted."""
    qr = returned(next_q(client, {"resourceType": "QuestionnaireResponse", "status": "in-progress"}))
    offered = {o["valueCoding"]["code"] for o in last_question(qr)["answerOption"]}
    response = next_q(client, answer(qr, code, system))
    if code in offered and system == CHANGE:
        assert response.status_code == 200
    else:
        assert response.status_code == 400 and response.json()["resourceType"] == "OperationOutcome"


def test_the_questionnaire_is_the_version_in_force_today_not_a_later_one(future_version_tree):
    client = TestClient(create_app(future_version_tree, time_limit=60, base_url=BASE))
    assert client.get("/Questionnaire/ip0243").json()["version"] == "2024-06-01"
    bundle = client.post("/Questionnaire/$questionnaire-package", json={"resourceType": "Parameters", "parameter": package_params(client)}).json()["parameter"][0]["resource"]
    (questionnaire,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Questionnaire"]
    assert questionnaire["version"] == "2024-06-01"


def package_params(client) -> list:
    info, coverage, order = crd_without_rheumatologist(client)
    return [{"name": "coverage", "resource": coverage}, {"name": "order", "resource": order}]
