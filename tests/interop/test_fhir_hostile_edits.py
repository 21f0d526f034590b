"""Bundles built from approved cases, each with one hostile edit: none is approved unless the policy ignores the edit.

Every approved example case becomes a FHIR Bundle (its twin), which must be
approved like it. One edit is then made to the Bundle: another patient's
resource, a status that is not final, a conflicting coding, a dangling
reference, a period past the order, an order for another drug. Where the
edit has a meaning in the case format (a record left out, a period cut at
the order's date), the case is edited the same way and decides what the
Bundle may decide; where it has none, the Bundle must not be approved.
"""

from __future__ import annotations

import copy
import json
from typing import Callable, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kineret_asp import CaseError, evaluate, load_kb

from ..conftest import FACTS, KB_DIR

ICD, RX, NUCC, LOINC = "http://hl7.org/fhir/sid/icd-10-cm", "http://www.nlm.nih.gov/research/umls/rxnorm", "http://nucc.org/provider-taxonomy", "http://loinc.org"
VOCAB = "urn:kineret-asp:vocabulary:"
PATIENT = {"reference": "Patient/p"}
ORDER_DATE = "2024-07-01"
# a diagnosis (code, words) for each indication an approved example has: the case's own vocabulary, as ICD-10-CM writes it
DIAGNOSIS = {
    "rheumatoid_arthritis": ("M05.79", None),
    "stills_disease": ("M06.1", None),
    "sjia": ("M08.20", None),
    "caps": ("M04.2", None),
    "cinca": ("M04.2", "CINCA syndrome"),
    "fcas": ("M04.2", "Familial cold urticaria"),
    "muckle_wells": ("M04.2", "Muckle-Wells syndrome"),
    "nomid": ("M04.2", "NOMID"),
    "dira": ("M04.8", "Deficiency of interleukin 1 receptor antagonist [DIRA]"),
}
SPECIALTY = {"rheumatology": "207RR0500X", "genetics": "207SG0201X", "dermatology": "207N00000X"}


def coded(system: str, code: str, display: Optional[str] = None, text: Optional[str] = None) -> dict:
    return {"coding": [{"system": system, "code": code, **({"display": display} if display else {})}], **({"text": text} if text else {})}


def drug(value: str) -> dict:
    """A drug as a coding of the case's own vocabulary when it is a key, else as the text a record would carry."""
    return coded(VOCAB + "drug", value) if value in load_kb(KB_DIR).vocabulary.keys["drug"] else {"text": value}


def months_before(months: int) -> str:
    year, month = 2024 - (months // 12), 7 - (months % 12)
    if month < 1:
        year, month = year - 1, month + 12
    return f"{year}-{month:02d}-01"


def to_bundle(case: dict) -> Optional[dict]:
    """The case as an EHR would send it, or None when some part of it has no FHIR form here."""
    code, words = DIAGNOSIS.get(case["indication"], (None, None))
    if code is None or case.get("plan") not in (None, "employer_group", "individual_family") or case.get("drug_categories"):
        return None  # a documented drug category is a reviewer's statement, no record an EHR sends
    resources: list[dict] = [{"resourceType": "Patient", "id": "p"}, {"resourceType": "Condition", "id": "dx", "subject": PATIENT, "code": coded(ICD, code, text=words)}]
    order = {
        "resourceType": "MedicationRequest",
        "id": "order",
        "status": "draft",
        "intent": "order",
        "subject": PATIENT,
        "authoredOn": ORDER_DATE,
        "medicationCodeableConcept": coded(RX, "72435", "anakinra"),
        "reasonReference": [{"reference": "Condition/dx"}],
    }
    if case.get("request") == "continuation":
        order["priorPrescription"] = {"reference": "MedicationRequest/earlier"}
    resources.append(order)
    for n, specialty in enumerate(case.get("prescriber_specialties", [])):
        if specialty not in SPECIALTY:
            return None
        resources.append({"resourceType": "PractitionerRole", "id": f"role{n}", "specialty": [coded(NUCC, SPECIALTY[specialty])]})
    if case.get("plan"):
        resources.append({"resourceType": "Coverage", "id": "cov", "status": "active", "beneficiary": PATIENT, "payor": [{"display": "Payer"}], "type": coded(VOCAB + "plan", case["plan"])})
    for n, entry in enumerate(case.get("medication_history", [])):
        st_ = {
            "resourceType": "MedicationStatement",
            "id": f"h{n}",
            "status": "completed",
            "subject": PATIENT,
            "medicationCodeableConcept": drug(entry["drug"]),
            "statusReason": [coded(VOCAB + "outcome", entry["outcome"])],
        }
        if "months" in entry:
            st_["effectivePeriod"] = {"start": months_before(entry["months"]), "end": ORDER_DATE}
        if entry.get("for"):
            if entry["for"] not in DIAGNOSIS:
                return None
            st_["reasonCode"] = [coded(ICD, DIAGNOSIS[entry["for"]][0], text=DIAGNOSIS[entry["for"]][1])]
        if entry.get("sample"):
            st_["extension"] = [{"url": "urn:kineret-asp:extension:sample", "valueBoolean": True}]
        resources.append(st_)
    for n, current in enumerate(case.get("current_medications", [])):
        resources.append({"resourceType": "MedicationStatement", "id": f"c{n}", "status": "active", "subject": PATIENT, "medicationCodeableConcept": drug(current)})
    for n, test in enumerate(case.get("genetic_tests", [])):
        answer = {"mutation_confirmed": "LA9633-4", "negative": "LA9634-2"}.get(test["result"])
        if answer is None or test["gene"] != "IL1RN":
            return None
        resources.append(
            {
                "resourceType": "Observation",
                "id": f"g{n}",
                "status": "final",
                "subject": PATIENT,
                "code": coded(LOINC, "69548-6"),
                "valueCodeableConcept": coded(LOINC, answer),
                "component": [{"code": coded(LOINC, "48018-6"), "valueCodeableConcept": coded("http://www.genenames.org/geneId", "HGNC:6000")}],
            }
        )
    if case.get("beneficial_response"):
        resources.append({"resourceType": "Observation", "id": "resp", "status": "final", "subject": PATIENT, "code": coded("urn:kineret-asp:field", "beneficial_response"), "valueBoolean": True})
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def approved_examples() -> list[dict]:
    out = []
    for path in sorted(FACTS.glob("*/*.json")):
        if path.name.endswith(".case.json") or path.parent.name == "fhir":
            continue
        case = json.loads(path.read_text())
        if case.get("expect", {}).get("decision") == "approved" and to_bundle(case) is not None:
            case.pop("expect")
            out.append(case)
    return out


EXAMPLES = approved_examples()


def bundle_decision(bundle: dict) -> str:
    from kineret_asp.cases.fhir_bundle import bundle_case

    try:
        case, _ = bundle_case(bundle, "<edit>", load_kb(KB_DIR))
    except CaseError:
        return "refused"
    return evaluate(case, KB_DIR).decision


def resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


# each edit: (bundle, case, choice) -> the case it means, or None when no case means it (then never approved)
Edit = Callable[[dict, dict, int], Optional[dict]]


def another_patient(bundle: dict, case: dict, choice: int) -> Optional[dict]:
    about = [r for r in bundle["entry"] if "subject" in r["resource"] or "beneficiary" in r["resource"]]
    r = about[choice % len(about)]["resource"]
    r["beneficiary" if "beneficiary" in r else "subject"] = {"reference": "Patient/someone-else"}
    return None


def not_final(bundle: dict, case: dict, choice: int) -> Optional[dict]:
    status = ["entered-in-error", "cancelled", "preliminary", "registered"][choice % 4]
    observations = resources(bundle, "Observation")
    if not observations:
        resources(bundle, "Condition")[0]["verificationStatus"] = coded("http://terminology.hl7.org/CodeSystem/condition-ver-status", "entered-in-error")
        return None
    obs = observations[choice % len(observations)]
    obs["status"] = status
    edited = copy.deepcopy(case)
    if obs["id"] == "resp":
        edited.pop("beneficial_response", None)
    else:
        n = int(obs["id"][1:])
        if status in ("entered-in-error", "cancelled"):
            del edited["genetic_tests"][n]
        else:
            edited["genetic_tests"][n]["result"] = "pending"
    return edited


def conflicting_coding(bundle: dict, case: dict, choice: int) -> Optional[dict]:
    other = ["U07.1", "M45.9", "M17.0", "K50.90"][choice % 4]
    resources(bundle, "Condition")[0]["code"]["coding"].append({"system": ICD, "code": other})
    return None


def dangling_reference(bundle: dict, case: dict, choice: int) -> Optional[dict]:
    statements = resources(bundle, "MedicationStatement")
    if not statements:
        resources(bundle, "MedicationRequest")[0]["reasonReference"] = [{"reference": "Condition/missing"}]
        return None
    st_ = statements[choice % len(statements)]
    del st_["medicationCodeableConcept"]
    st_["medicationReference"] = {"reference": "Medication/missing"}
    if st_["id"].startswith("c"):
        return None  # a current drug nobody can read: undetermined
    edited = copy.deepcopy(case)
    del edited["medication_history"][int(st_["id"][1:])]  # an earlier drug nobody can read counts for nothing
    return edited


def period_past_the_order(bundle: dict, case: dict, choice: int) -> Optional[dict]:
    timed = [s for s in resources(bundle, "MedicationStatement") if "effectivePeriod" in s]
    if not timed:
        return another_patient(bundle, case, choice)
    s = timed[choice % len(timed)]
    s["effectivePeriod"]["end"] = "2026-01-01"
    return copy.deepcopy(case)  # nothing after the order's date counts: the case is unchanged


def another_drug(bundle: dict, case: dict, choice: int) -> Optional[dict]:
    order = resources(bundle, "MedicationRequest")[0]
    order["medicationCodeableConcept"] = [{"text": "Humira Pen 40 mg"}, coded(RX, "6851"), coded(RX, "327361")][choice % 3]
    return None


EDITS: list[Edit] = [another_patient, not_final, conflicting_coding, dangling_reference, period_past_the_order, another_drug]


def test_every_approved_example_has_a_bundle_twin_that_is_approved():
    assert len(EXAMPLES) >= 8
    for case in EXAMPLES:
        assert evaluate(case, KB_DIR).decision == "approved"
        assert bundle_decision(to_bundle(case)) == "approved", case.get("id")


def check_edit(example: int, edit: int, choice: int) -> None:
    case = EXAMPLES[example % len(EXAMPLES)]
    bundle = copy.deepcopy(to_bundle(case))
    meant = EDITS[edit](bundle, case, choice)
    decided = bundle_decision(bundle)
    if decided == "approved":
        assert meant is not None, f"{EDITS[edit].__name__} on {case.get('id')} was approved"
        assert evaluate(meant, KB_DIR).decision == "approved", f"{EDITS[edit].__name__} on {case.get('id')}: approved, its case is not"


@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(0, len(EDITS) - 1), st.integers(0, 100))
def test_no_hostile_edit_of_an_approved_bundle_is_approved_unless_the_policy_ignores_it(example, edit, choice):
    check_edit(example, edit, choice)


@pytest.mark.slow  # every example with every edit and several choices (about 30 s); the fast lane samples 60
@pytest.mark.parametrize("edit", range(len(EDITS)))
def test_every_hostile_edit_of_every_approved_bundle(edit):
    for example in range(len(EXAMPLES)):
        for choice in range(4):
            check_edit(example, edit, choice)
