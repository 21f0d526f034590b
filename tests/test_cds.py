"""CDS Hooks services and Da Vinci CRD answers: their shapes, and the coverage-information invariants."""
from __future__ import annotations

import datetime
import json
import re

import pytest
from fastapi.testclient import TestClient

from kineret_asp import load_kb
from kineret_asp.interop.cds_hooks import CRD_EXTENSION, HOOKS, blocking_criteria
from kineret_asp.server import create_app

from .conftest import FACTS, KB_DIR

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
ICD = "http://hl7.org/fhir/sid/icd-10-cm"


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(load_kb(KB_DIR)))


def hook_request(bundle: dict, hook: str = "order-sign") -> dict:
    """A CDS Hooks request: the draft order in the context, every other resource prefetched by type."""
    resources = [e["resource"] for e in bundle["entry"]]
    drafts = [r for r in resources if r["resourceType"] == "MedicationRequest" and r.get("status") == "draft"]
    prefetch: dict = {}
    for r in resources:
        if r in drafts:
            continue
        if r["resourceType"] == "Patient":
            prefetch["patient"] = r
        else:
            prefetch.setdefault(r["resourceType"], {"resourceType": "Bundle", "type": "searchset", "entry": []})["entry"].append({"resource": r})
    context = {"userId": "PractitionerRole/prescriber", "patientId": "p1", "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": d} for d in drafts]}}
    if hook == "order-select":
        context["selections"] = [f"MedicationRequest/{d['id']}" for d in drafts]
    return {"hook": hook, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "context": context, "prefetch": prefetch}


def example(name: str) -> dict:
    return json.loads((FACTS / "fhir" / f"{name}.json").read_text())


def call(client, bundle: dict, hook: str = "order-sign") -> dict:
    response = client.post(f"/cds-services/ip0243-{hook}", json=hook_request(bundle, hook))
    assert response.status_code == 200, response.text
    return response.json()


def coverage_info(answer: dict) -> dict[str, list]:
    action = answer["systemActions"][0]
    ext = [e for e in action["resource"]["extension"] if e["url"] == CRD_EXTENSION]
    assert len(ext) == 1
    out: dict[str, list] = {}
    for sub in ext[0]["extension"]:
        values = [v for k, v in sub.items() if k.startswith("value")]
        assert len(values) == 1, sub  # one value[x] per sub-extension
        out.setdefault(sub["url"], []).append(values[0])
    return out


def check_invariants(info: dict[str, list]) -> None:
    """The CRD extension's cardinalities and its invariants crd-ci-q1 .. q5."""
    for one in ("coverage", "covered", "date", "coverage-assertion-id"):
        assert len(info.get(one, [])) == 1, one
    for at_most_one in ("pa-needed", "doc-needed", "satisfied-pa-id"):
        assert len(info.get(at_most_one, [])) <= 1
    covered = info["covered"][0]
    assert covered in ("covered", "not-covered", "conditional")
    pa = info.get("pa-needed", [None])[0]
    doc = info.get("doc-needed", [None])[0]
    assert pa in (None, "no-auth", "auth-needed", "satisfied", "performpa", "conditional")
    assert doc in (None, "clinical", "admin", "both", "conditional")
    for purpose in info.get("doc-purpose", []):
        assert purpose in ("withpa", "withclaim", "withorder", "retain-doc", "OTH")
    if "questionnaire" in info or "response" in info:  # crd-ci-q1
        assert doc is not None and doc != "no-doc"
    assert (covered == "not-covered") == (pa is None)  # crd-ci-q2
    if "info-needed" in info:  # crd-ci-q3
        assert "conditional" in (covered, pa, doc)
    if pa == "satisfied":  # crd-ci-q4, crd-ci-q5
        assert "PA" not in info.get("doc-purpose", [])
    assert (pa == "satisfied") == ("satisfied-pa-id" in info)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", info["date"][0])
    assert isinstance(info["coverage"][0], dict)


def check_card(card: dict) -> None:
    """A CDS Hooks 2.0 card with the CRD coverage-information card type."""
    assert set(card) <= {"uuid", "summary", "detail", "indicator", "source", "suggestions", "selectionBehavior", "overrideReasons", "links"}
    assert isinstance(card["summary"], str) and 0 < len(card["summary"]) <= 140
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"] and card["source"]["topic"]["code"] == "coverage-info"
    for link in card["links"]:
        assert link["type"] in ("absolute", "smart") and link["url"].startswith("http") and link["label"]


def test_discovery_lists_order_sign_and_order_select_with_prefetch_templates(client):
    services = client.get("/cds-services").json()["services"]
    assert [s["hook"] for s in services] == list(HOOKS)
    for s in services:
        assert {"hook", "id", "title", "description", "prefetch"} <= set(s)
        assert s["prefetch"] and all("{{" in q for q in s["prefetch"].values())
        assert any(q.startswith("Condition?patient={{context.patientId}}") for q in s["prefetch"].values())
        assert any("69548-6" in q for q in s["prefetch"].values())


@pytest.mark.parametrize("hook", HOOKS)
def test_an_approved_order_is_covered_with_prior_authorization_satisfied(client, hook):
    answer = call(client, example("ra_approved"), hook)
    card = answer["cards"][0]
    check_card(card)
    assert card["indicator"] == "info" and "approved" in card["summary"]
    info = coverage_info(answer)
    check_invariants(info)
    assert info["covered"] == ["covered"] and info["pa-needed"] == ["satisfied"]
    assert info["coverage"][0] == {"reference": "Coverage/cov1"}
    action = answer["systemActions"][0]
    assert action["type"] == "update" and action["resource"]["resourceType"] == "MedicationRequest" and action["resource"]["id"] == "kineret-order"


def test_a_concurrent_biologic_is_not_covered_without_pa_needed(client):
    answer = call(client, example("sjia_concurrent_etanercept"))
    info = coverage_info(answer)
    check_invariants(info)
    assert info["covered"] == ["not-covered"] and "pa-needed" not in info
    assert "NC.2" in answer["cards"][0]["detail"]


def test_unmet_criteria_are_conditional_with_documentation_and_the_questionnaire(client):
    bundle = example("ra_approved")
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "PractitionerRole"]
    answer = call(client, bundle)
    card = answer["cards"][0]
    check_card(card)
    info = coverage_info(answer)
    check_invariants(info)
    assert info["covered"] == ["conditional"] and info["pa-needed"] == ["auth-needed"] and info["doc-needed"] == ["clinical"]
    assert "questionnaire" in info
    assert "3.B" in card["detail"] and "a rheumatologist" in card["detail"]  # the blocking criterion and what is missing


def test_other_policy_is_conditional(client):
    info = coverage_info(call(client, example("covid_19")))
    check_invariants(info)
    assert info["covered"] == ["conditional"]


def test_the_card_links_to_the_report_of_its_decision(client):
    answer = call(client, example("stills_adult_onset"))
    link = answer["cards"][0]["links"][0]["url"]
    path = "/" + link.split("/", 3)[3]
    text = client.get(path).text
    assert "APPROVED" in text and "Still's Disease" in text
    assert client.get(path + "?format=json").json()["decision"] == "approved"


def test_the_same_order_gets_the_same_assertion_id(client):
    a, b = coverage_info(call(client, example("caps_muckle_wells"))), coverage_info(call(client, example("caps_muckle_wells")))
    assert a["coverage-assertion-id"] == b["coverage-assertion-id"]


def test_no_draft_order_for_the_drug_gives_no_card(client):
    bundle = example("stills_adult_onset")
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] == "MedicationRequest":
            e["resource"]["medicationCodeableConcept"]["coding"][0]["code"] = "6851"
    assert call(client, bundle) == {"cards": [], "systemActions": []}


def test_an_unknown_service_is_404_and_a_bad_request_is_422(client):
    assert client.post("/cds-services/nope", json={}).status_code == 404
    bad = client.post("/cds-services/ip0243-order-sign", json={"hook": "order-sign", "context": "x"})
    assert bad.status_code == 422 and bad.json()["errors"]


def test_blocking_criteria_leave_out_alternatives_under_a_met_criterion():
    from kineret_asp import evaluate

    kb = load_kb(KB_DIR)
    decision = evaluate(json.loads((FACTS / "continuation" / "ra_no_response.json").read_text()), kb)
    blocking = blocking_criteria(decision, kb)
    assert "R.B" in blocking and not any(c.startswith("3.C.") for c in blocking)


def test_the_date_is_todays(client):
    info = coverage_info(call(client, example("stills_adult_onset")))
    assert info["date"] == [datetime.date.today().isoformat()]


def test_an_approval_that_an_unread_current_medication_could_undo_is_not_asserted(client):
    """A current drug whose code the tables do not know may be a biologic (Conditions Not Covered 2): conditional."""
    bundle = example("stills_adult_onset")
    bundle["entry"].append({"resource": {"resourceType": "MedicationStatement", "id": "unknown-now", "status": "active", "subject": {"reference": "Patient/p1"},
                                         "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "999999", "display": "a new drug"}]}}})
    answer = call(client, bundle)
    info = coverage_info(answer)
    check_invariants(info)
    assert info["covered"] == ["conditional"] and info["pa-needed"] == ["auth-needed"] and "satisfied-pa-id" not in info
    assert answer["cards"][0]["indicator"] == "warning" and "999999" in answer["cards"][0]["detail"]


def test_an_unread_history_entry_cannot_undo_an_approval(client):
    """Codes the tables do not know in the medication history can only leave a case short: the approval stands."""
    info = coverage_info(call(client, example("ra_approved")))
    assert info["covered"] == ["covered"] and info["pa-needed"] == ["satisfied"]


def test_an_undetermined_current_drug_is_a_question_on_the_card_and_conditional_in_crd(client):
    """The card and the coverage information say what the decision says: undetermined, with the question."""
    bundle = example("ra_approved")
    bundle["entry"].append({"resource": {"resourceType": "MedicationStatement", "id": "unknown-now", "status": "active", "subject": {"reference": "Patient/p1"},
                                         "medicationCodeableConcept": {"text": "zorbitrex 20 mg"}}})
    answer = call(client, bundle)
    card = answer["cards"][0]
    assert "UNDETERMINED" in card["summary"] and "Is zorbitrex 20 mg a biologic or a targeted synthetic DMARD" in card["detail"]
    info = coverage_info(answer)
    assert info["covered"] == ["conditional"] and info["pa-needed"] == ["auth-needed"] and "satisfied-pa-id" not in info
    assert "zorbitrex 20 mg" in info["reason"][0]["text"]
