"""Data nobody here wrote, decided as the policy says: Synthea patients, the CDS Hooks and Da Vinci CRD examples.

The files and where each comes from are in tests/data/*/SOURCE.md; the
expected decision of each is written there and here, with the reason.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from kineret_asp import CaseError, evaluate, load_kb
from kineret_asp.cases.fhir_bundle import NoOrder, bundle_case
from kineret_asp.cases.load import load

from ..conftest import KB_DIR

DATA = Path(__file__).resolve().parents[1] / "data"

SYNTHEA = {
    "asa_hermiston_ra_methotrexate_only": ("criteria_not_met", ("3.A", "3.C"), ()),
    "hershel_marvin_ra_approved": ("approved", (), ()),
    "laticia_dibbert_ra_no_reason_no_plan": ("criteria_not_met", ("3.A", "3.C"), ()),
    "randall_stroman_ra_concurrent_etanercept": ("not_covered", ("3.C",), ("NC.2",)),
    "willy_koepp_ra_resolved_no_reason": ("undetermined", ("indication",), ()),
}


@pytest.mark.parametrize("name", sorted(SYNTHEA))
def test_a_synthea_patient_is_decided_as_the_policy_says(name):
    read = load(DATA / "synthea" / f"{name}.json", KB_DIR)
    case, notes = read.case, read.notes
    d = evaluate(case, KB_DIR)
    decision, blocking, reasons = SYNTHEA[name]
    assert (d.decision, d.blocking, tuple(r.id for r in d.reasons)) == (decision, blocking, reasons)
    assert notes  # what the tables could not read is said, never dropped


def test_every_synthea_file_is_listed_in_its_source_note():
    listed = (DATA / "synthea" / "SOURCE.md").read_text()
    assert {p.stem for p in (DATA / "synthea").glob("*.json")} == set(SYNTHEA)
    assert all(f"`{name}.json`" in listed for name in SYNTHEA)


def test_synthea_problem_lists_in_snomed_ct_name_rheumatoid_arthritis():
    case = load(DATA / "synthea" / "laticia_dibbert_ra_no_reason_no_plan.json", KB_DIR).case
    assert case.indication == "rheumatoid_arthritis"
    assert "naproxen" in case.current_medications  # RxNorm 198014, read as a drug that is no biologic


def test_a_synthea_patient_with_rheumatoid_arthritis_and_osteoarthritis_needs_the_orders_reason():
    data = json.loads((DATA / "synthea" / "asa_hermiston_ra_methotrexate_only.json").read_text())
    for e in data["entry"]:
        if e["resource"].get("id") == "added-kineret-order":
            del e["resource"]["reasonReference"]
    case, _ = bundle_case(data, "<test>", load_kb(KB_DIR))
    assert case.indication is None and [u["field"] for u in case.undetermined] == ["indication"]
    assert "Rheumatoid Arthritis" in case.undetermined[0]["why"] and "Osteoarthritis" in case.undetermined[0]["why"]


def spec_order_sign() -> dict:
    context = json.loads((DATA / "third_party" / "cds-hooks-order-sign-r4-context.json").read_text())
    return {"hook": "order-sign", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", **context}


def test_the_cds_hooks_specifications_order_sign_example_orders_no_anakinra():
    from kineret_asp.interop.cds_hooks import request_bundle

    bundle = request_bundle(spec_order_sign(), "<spec>")
    with pytest.raises(NoOrder) as info:
        bundle_case(bundle, "<spec>", load_kb(KB_DIR), order_first=True)
    assert "Amoxicillin 120 MG/ML / clavulanate potassium 8.58 MG/ML Oral Suspension (MedicationRequest/smart-MedicationRequest-103)" in info.value.line()
    with pytest.raises(CaseError) as invalid:  # as a file: what is not valid R4 is said first (doseQuantity is STU3's)
        bundle_case(bundle, "<spec>", load_kb(KB_DIR))
    assert "doseQuantity: unknown element" in invalid.value.line()


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    from kineret_asp.server import create_app

    return TestClient(create_app(load_kb(KB_DIR), time_limit=60))


def test_the_hook_answers_the_specifications_example_with_no_card(client):
    """The CDS Hooks specification's own order-sign request (a NutritionOrder and amoxicillin): 200, no card."""
    request = spec_order_sign()
    answer = client.post("/cds-services/ip0243-order-sign", json=request)
    assert answer.status_code == 200 and answer.json() == {"cards": []}


def crd_request() -> dict:
    data = json.loads((DATA / "third_party" / "davinci-crd-CRDServiceRequest.json").read_text())
    data.pop("fhirServer", None)  # a public address: the service never contacts it, and the test keeps it out
    data.pop("fhirAuthorization", None)
    return data


def test_the_crd_guides_order_sign_example_orders_no_anakinra(client):
    answer = client.post("/cds-services/ip0243-order-sign", json=crd_request())
    assert answer.status_code == 200 and answer.json() == {"cards": []}


def test_the_crd_guides_coverage_with_an_anakinra_order_is_an_employer_group_plan(client):
    request = crd_request()
    patient = {"reference": "Patient/123"}
    ra = {"resourceType": "Condition", "id": "ra", "subject": patient, "code": {"coding": [{"system": "http://snomed.info/sct", "code": "69896004", "display": "Rheumatoid arthritis"}]}}
    order = {
        "resourceType": "MedicationRequest",
        "id": "kineret",
        "status": "draft",
        "intent": "order",
        "subject": patient,
        "authoredOn": "2024-07-01",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "72435", "display": "anakinra"}]},
        "reasonReference": [{"reference": "Condition/ra"}],
    }
    request["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}
    from kineret_asp.interop.crd import prefetch_templates

    keys = {k: None for k in prefetch_templates(load_kb(KB_DIR))}  # the KB's templates: no data but these two
    request["prefetch"] = {**keys, "coverage": request["prefetch"]["coverage"], "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": ra}]}}
    from kineret_asp.interop.cds_hooks import request_bundle

    case, _ = bundle_case(request_bundle(request, "<crd>"), "<crd>", load_kb(KB_DIR), "Patient/123")
    assert case.plan == "employer_group" and case.indication == "rheumatoid_arthritis"
    answer = client.post("/cds-services/ip0243-order-sign", json=request)
    assert answer.status_code == 200 and answer.json()["systemActions"] and answer.json()["cards"] == []  # decided: the coverage information, no card
    ext = answer.json()["systemActions"][0]["resource"]["extension"][-1]["extension"]
    assert {"url": "coverage", "valueReference": {"reference": "Coverage/COV1"}} in ext


def test_a_hook_about_one_patient_with_another_patients_records_is_refused(client):
    request = copy.deepcopy(crd_request())
    request["context"]["patientId"] = "someone-else"
    order = {
        "resourceType": "MedicationRequest",
        "id": "kineret",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/123"},
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "72435"}]},
    }
    request["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}
    answer = client.post("/cds-services/ip0243-order-sign", json=request)
    assert answer.status_code == 400 and answer.json()["resourceType"] == "OperationOutcome" and "not the order's patient Patient/someone-else" in answer.text
    assert "satisfied-pa-id" not in answer.text


def synthea_request(name: str) -> dict:
    """A Synthea patient as an EHR would send it: urn:uuid references as Type/id, the draft order in the context, the rest prefetched."""
    from .test_cds import hook_request

    text = (DATA / "synthea" / f"{name}.json").read_text()
    data = json.loads(text)
    for e in data["entry"]:
        if e.get("fullUrl", "").startswith("urn:uuid:"):
            text = text.replace(f'"{e["fullUrl"]}"', f'"{e["resource"]["resourceType"]}/{e["resource"]["id"]}"')
    data = json.loads(text)
    patient = next(e["resource"]["id"] for e in data["entry"] if e["resource"]["resourceType"] == "Patient")
    for e in data["entry"]:
        e.pop("fullUrl", None)
    return hook_request(data, patient=patient, coverage=False)


def test_a_synthea_patient_with_an_anakinra_order_gets_coverage_information_and_no_card(client):
    """Done when: a Synthea patient with an anakinra order gives a coverage-information system action and no card."""
    from ..fhirvalid import valid_r4
    from .test_cds import coverage_info

    answer = client.post("/cds-services/ip0243-order-sign", json=synthea_request("hershel_marvin_ra_approved"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["cards"] == [] and len(body["systemActions"]) == 1
    info = coverage_info(body)
    assert info["covered"] == ["covered"] and info["pa-needed"] == ["satisfied"] and info["coverage"] == [{"reference": "Coverage/added-coverage"}]
    valid_r4(body["systemActions"][0]["resource"])
    stroman = client.post("/cds-services/ip0243-order-sign", json=synthea_request("randall_stroman_ra_concurrent_etanercept")).json()
    assert coverage_info(stroman)["covered"] == ["not-covered"] and stroman["cards"] == []


@pytest.mark.parametrize("name, hook", [("davinci-crd-CRDServiceRequest2", "order-dispatch"), ("davinci-crd-CRDServiceRequest3", "order-sign"), ("davinci-crd-CRDServiceRequest4", "appointment-book")])
def test_the_crd_guides_requests_of_every_hook_order_no_anakinra(client, name, hook):
    """The CRD 2.2.1 guide's own requests (order-dispatch, order-sign, appointment-book): valid CDS Hooks, nothing this policy decides."""
    request = json.loads((DATA / "third_party" / f"{name}.json").read_text())
    assert request["hook"] == hook and request["fhirServer"].startswith("http://example.org/")  # a public name: never on the allow-list
    answer = client.post(f"/cds-services/ip0243-{hook}", json=request)
    assert answer.status_code == 200 and answer.json() == {"cards": []}
