"""FHIR as EHRs send it, read as FHIR defines it: the eight ways a Bundle was approved where the policy does not approve.

Each pattern is a named test; every Bundle here that is not approved would
have been approved by the earlier reader. The readings: the order's own
reason decides the indication; a past drug's reason says what it was taken
for; periods count the fewest months their dates allow and never past the
order; statuses mean what FHIR R4 says; an unreadable current drug is a
question, never dropped; a Bundle that orders another drug is no request;
every resource is about the order's patient; records that contradict each
other settle nothing.
"""

from __future__ import annotations

import copy

import pytest

from kineret_asp import CaseError, evaluate, load_kb
from kineret_asp.cases.fhir_bundle import NoOrder, bundle_case

from ..conftest import KB_DIR

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
NUCC = "http://nucc.org/provider-taxonomy"
LOINC = "http://loinc.org"
VOCAB = "urn:kineret-asp:vocabulary:"
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
PATIENT = {"reference": "Patient/p"}


def cc(system: str, code: str, display: str | None = None, text: str | None = None) -> dict:
    coding = {"system": system, "code": code, **({"display": display} if display else {})}
    return {"coding": [coding], **({"text": text} if text else {})}


def condition(cid: str, concept: dict, **extra) -> dict:
    return {"resourceType": "Condition", "id": cid, "subject": PATIENT, "code": concept, **extra}


def order(*reasons: str, codes: tuple[dict, ...] = (), medication: dict | None = None, status: str = "draft", **extra) -> dict:
    out = {
        "resourceType": "MedicationRequest",
        "id": "order",
        "status": status,
        "intent": "order",
        "subject": PATIENT,
        "medicationCodeableConcept": medication or cc(RX, "72435", "anakinra"),
        "authoredOn": "2024-07-01",
        **extra,
    }
    if reasons:
        out["reasonReference"] = [{"reference": f"Condition/{r}"} for r in reasons]
    if codes:
        out["reasonCode"] = list(codes)
    return out


def role(code: str = "207RR0500X") -> dict:
    return {"resourceType": "PractitionerRole", "id": f"role-{code}", "specialty": [cc(NUCC, code)]}


def coverage() -> dict:
    return {
        "resourceType": "Coverage",
        "id": "cov",
        "status": "active",
        "beneficiary": PATIENT,
        "payor": [{"display": "Payer"}],
        "class": [{"type": cc("http://terminology.hl7.org/CodeSystem/coverage-class", "group"), "value": "g1", "name": "Employee group"}],
    }


def statement(sid: str, medication: dict, status: str = "stopped", start: str | None = None, end: str | None = None, outcome: str | None = None, **extra) -> dict:
    out = {"resourceType": "MedicationStatement", "id": sid, "status": status, "subject": PATIENT, "medicationCodeableConcept": medication, **extra}
    if start:
        out["effectivePeriod"] = {"start": start, **({"end": end} if end else {})}
    if outcome:
        out["statusReason"] = [cc(VOCAB + "outcome", outcome)]
    return out


def bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "id": "b", "type": "collection", "entry": [{"resource": r} for r in resources]}


def read(*resources: dict, patient: str | None = None):
    return bundle_case(bundle(*resources), "<test>", load_kb(KB_DIR), patient)


def decide(*resources: dict):
    case, _ = read(*resources)
    return evaluate(case, KB_DIR)


RA = condition("ra", cc(ICD, "M05.79"))
MTX = statement("mtx", cc(RX, "105586", "methotrexate 10 MG Oral Tablet"), "stopped", "2023-01-10", "2023-06-20", "failure")
CIMZIA = statement("cimzia", {"text": "Cimzia 200 mg/mL prefilled syringe"}, "stopped", "2023-07-01", "2023-12-01", "failure")
ENBREL = statement("enbrel", {"text": "Enbrel SureClick"}, "stopped", "2024-01-01", "2024-05-01", "intolerance")
APPROVED_RA = (RA, order("ra"), role(), coverage(), MTX, CIMZIA, ENBREL)


def test_the_approved_baseline_is_approved():
    assert decide(*APPROVED_RA).decision == "approved"


# --- 1. the order's own reason -----------------------------------------------------------


@pytest.mark.parametrize(
    "reason, decision, why",
    [(cc(ICD, "M04.1", "Periodic fever syndromes", "Familial Mediterranean fever"), "not_covered", "NC.other"), (cc(ICD, "U07.1", "COVID-19", "COVID-19 pneumonia"), "other_policy", "OV.covid_19")],
)
def test_1_the_orders_reason_decides_the_indication_whatever_else_the_problem_list_holds(reason, decision, why):
    rest = [r for r in APPROVED_RA if r["resourceType"] != "MedicationRequest"]
    d = decide(*rest, order(codes=(reason,)))
    assert d.decision == decision and [r.id for r in d.reasons] == [why]


def test_1_an_order_reason_no_table_places_leaves_the_indication_undetermined():
    rest = [r for r in APPROVED_RA if r["resourceType"] != "MedicationRequest"]
    d = decide(*rest, order(codes=(cc(SCT, "123456789", "Something rare"),)))
    assert d.decision == "undetermined" and d.blocking == ("indication",)


# --- 2. the reason a past drug was taken -------------------------------------------------


def test_2_a_past_drugs_reason_fills_for_a_biologic_for_crohns_or_lymphoma_does_not_count_for_3Aii():
    humira = statement("humira", {"text": "Humira Pen"}, "stopped", "2022-01-01", "2022-09-01", "failure", reasonCode=[cc(ICD, "K50.90", "Crohn's disease, unspecified")])
    rituximab = statement("rtx", cc(RX, "121191", "rituximab"), "completed", "2021-01-01", "2021-03-01", "failure", reasonCode=[cc(ICD, "C83.30", "Diffuse large B-cell lymphoma")])
    case, _ = read(RA, order("ra"), role(), coverage(), humira, rituximab)
    assert [e["for"] for e in case.medication_history] == ["crohns_disease", "other"]
    d = evaluate(case, KB_DIR)
    assert d.met("3.A.ii") is False and d.decision != "approved"
    twin = {
        "indication": "rheumatoid_arthritis",
        "plan": "employer_group",
        "prescriber_specialties": ["rheumatology"],
        "medication_history": [{"drug": "humira", "outcome": "failure", "months": 8, "for": "crohns_disease"}, {"drug": "rituximab", "outcome": "failure", "months": 2, "for": "other"}],
    }
    assert evaluate(twin, KB_DIR).decision == d.decision


def test_2_a_reason_by_reference_to_a_condition_counts_too():
    crohns = condition("cd", cc(SCT, "34000006", "Crohn's disease"))
    humira = statement("humira", {"text": "Humira"}, "stopped", "2022-01-01", "2022-09-01", "failure", reasonReference=[{"reference": "Condition/cd"}])
    case, _ = read(RA, crohns, order("ra"), role(), humira)
    assert case.medication_history[0]["for"] == "crohns_disease"


# --- 3. periods ----------------------------------------------------------------------------


def test_3_a_period_given_by_years_counts_the_fewest_months_it_allows():
    mtx = statement("mtx", cc(RX, "6851"), "stopped", "2023", "2024", "failure")
    case, _ = read(RA, order("ra"), mtx)
    assert case.medication_history[0]["months"] == 0  # 2023-12-31 .. 2024-01-01
    mtx = statement("mtx", cc(RX, "6851"), "stopped", "2023-01", "2023-06", "failure")
    assert read(RA, order("ra"), mtx)[0].medication_history[0]["months"] == 4  # 2023-01-31 .. 2023-06-01


def test_3_a_stopped_prescriptions_planned_period_says_nothing_of_how_long_it_was_taken():
    rx = {
        "resourceType": "MedicationRequest",
        "id": "mtx-rx",
        "status": "stopped",
        "intent": "order",
        "subject": PATIENT,
        "medicationCodeableConcept": cc(RX, "6851"),
        "statusReason": cc(VOCAB + "outcome", "failure"),
        "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"start": "2024-03-01", "end": "2025-03-01"}}}}],
    }
    case, _ = read(RA, order("ra"), rx)
    assert "months" not in case.medication_history[0].to_dict()


def test_3_nothing_after_the_orders_date_counts():
    mtx = statement("mtx", cc(RX, "6851"), "completed", "2024-05-01", "2025-05-01", "failure")
    assert read(RA, order("ra"), mtx)[0].medication_history[0]["months"] == 2  # to 2024-07-01, the order's date
    still = statement("mtx", cc(RX, "6851"), "active", "2024-05-01", None, "failure")
    assert read(RA, order("ra"), still)[0].medication_history[0]["months"] == 2
    ended_unknown = statement("mtx", cc(RX, "6851"), "stopped", "2024-01-01", None, "failure")
    assert "months" not in read(RA, order("ra"), ended_unknown)[0].medication_history[0].to_dict()


# --- 4. statuses ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "preliminary", "registered"])
def test_4_only_a_final_observation_demonstrates_a_beneficial_response(status):
    response = {"resourceType": "Observation", "id": "resp", "status": status, "subject": PATIENT, "code": cc("urn:kineret-asp:field", "beneficial_response"), "valueBoolean": True}
    continuation = order("ra", priorPrescription={"reference": "MedicationRequest/old"})
    d = decide(RA, continuation, role(), coverage(), MTX, CIMZIA, ENBREL, response)
    assert d.met("R.B") is False and d.decision != "approved"
    d = decide(RA, continuation, role(), coverage(), MTX, CIMZIA, ENBREL, dict(response, status="final"))
    assert d.decision == "approved"


def test_4_a_condition_entered_in_error_is_left_out_even_when_its_coding_omits_the_system():
    covid = condition("covid", cc(ICD, "U07.1"), verificationStatus={"coding": [{"code": "entered-in-error"}]})
    case, _ = read(RA, covid, order(), role())
    assert case.indication == "rheumatoid_arthritis"


def test_4_a_resolved_diagnosis_on_the_problem_list_is_not_read():
    old = condition("oa", cc(ICD, "M17.0"), clinicalStatus=cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "resolved"))
    assert read(RA, old, order())[0].indication == "rheumatoid_arthritis"


@pytest.mark.parametrize("status", ["on-hold", "unknown", "intended", "active"])
def test_4_a_drug_on_hold_or_of_unknown_status_is_still_current(status):
    enbrel = statement("etan-now", {"text": "Enbrel"}, status)
    d = decide(*APPROVED_RA, enbrel)
    assert d.decision == "not_covered" and [r.id for r in d.reasons] == ["NC.2"]


@pytest.mark.parametrize("status", ["stopped", "completed", "entered-in-error", "not-taken"])
def test_4_a_stopped_completed_or_mistaken_drug_is_not_current(status):
    enbrel = statement("etan-then", {"text": "Enbrel"}, status, "2022-01-01", "2022-06-01")
    assert decide(*APPROVED_RA, enbrel).decision == "approved"


# --- 5. an unreadable current drug ----------------------------------------------------------


def medication(mid: str, **body) -> dict:
    return {"resourceType": "Medication", "id": mid, **body}


def by_reference(sid: str, ref: str, status: str = "active") -> dict:
    out = statement(sid, {"text": "x"}, status)
    del out["medicationCodeableConcept"]
    out["medicationReference"] = {"reference": ref}
    return out


def test_5_a_medication_of_ingredient_only_adalimumab_is_a_biologic():
    med = medication("m1", ingredient=[{"itemCodeableConcept": cc(RX, "327361", "adalimumab")}])
    d = decide(*APPROVED_RA, med, by_reference("now", "Medication/m1"))
    assert d.decision == "not_covered" and d.reasons[0].details == {"current_medications": ["adalimumab_unspecified"]}


@pytest.mark.parametrize("resources", [(medication("m2"), by_reference("now", "Medication/m2")), (by_reference("now", "Medication/not-in-bundle"),)])
def test_5_an_unreadable_current_drug_is_undetermined_never_dropped(resources):
    d = decide(*APPROVED_RA, *resources)
    assert d.decision == "undetermined" and [u.id for u in d.undetermined] == ["NC.2"]
    assert "MedicationStatement/now" in str(d.undetermined[0].value)


def test_5_a_free_text_medication_is_read_by_its_names():
    case, _ = read(*APPROVED_RA, statement("now", {"text": "Humira Pen 40 mg"}, "active"), statement("pred", {"text": "predniSONE 5 MG Oral Tablet"}, "active"))
    assert list(case.current_medications) == ["humira", "prednisone"]


# --- 6. an order for another drug ------------------------------------------------------------


@pytest.mark.parametrize(
    "the_order",
    [order("ra", medication={"text": "Humira Pen 40 mg"}), order("ra", status="entered-in-error"), order("ra", status="cancelled")],
)
def test_6_a_bundle_with_no_anakinra_order_is_refused_naming_what_it_orders(the_order):
    rest = [r for r in APPROVED_RA if r["resourceType"] != "MedicationRequest"]
    with pytest.raises(NoOrder) as info:
        read(*rest, the_order)
    assert "no draft MedicationRequest for Kineret" in info.value.line()
    if the_order["status"] == "draft":
        assert "Humira Pen 40 mg (MedicationRequest/order)" in info.value.line()


# --- 7. another patient's resources ------------------------------------------------------------


def test_7_a_resource_about_another_patient_is_refused_with_one_line():
    other = dict(RA, subject={"reference": "Patient/someone-else"})
    with pytest.raises(CaseError) as info:
        read(other, order("ra"), role(), coverage(), MTX, CIMZIA, ENBREL)
    assert "Condition/ra: about Patient/someone-else, not the order's patient Patient/p" in info.value.line()
    cov = dict(coverage(), beneficiary={"reference": "Patient/someone-else"})
    with pytest.raises(CaseError):
        read(RA, order("ra"), role(), cov, MTX, CIMZIA, ENBREL)


def test_7_the_hooks_patient_must_be_the_orders():
    with pytest.raises(CaseError) as info:
        read(*APPROVED_RA, patient="Patient/p2")
    assert "not the order's patient Patient/p2" in info.value.line()
    assert read(*APPROVED_RA, patient="Patient/p")[0].indication == "rheumatoid_arthritis"


def test_7_an_observation_that_names_no_patient_is_left_out():
    response = {"resourceType": "Observation", "id": "resp", "status": "final", "code": cc("urn:kineret-asp:field", "beneficial_response"), "valueBoolean": True}
    case, converted = read(RA, order("ra", priorPrescription={"reference": "MedicationRequest/old"}), response)
    assert case.beneficial_response is not True and any(n.where == "Observation/resp" and "names no patient" in n.text for n in converted.notes)


def test_7_references_by_full_url_are_the_same_patient():
    b = copy.deepcopy(bundle(*APPROVED_RA))
    b["entry"].insert(0, {"fullUrl": "urn:uuid:p-1", "resource": {"resourceType": "Patient", "id": "p"}})
    for e in b["entry"]:
        if e["resource"]["resourceType"] == "Condition":
            e["resource"]["subject"] = {"reference": "urn:uuid:p-1"}
    case, _ = bundle_case(b, "<test>", load_kb(KB_DIR))
    assert case.indication == "rheumatoid_arthritis"


# --- 8. conflicts settle nothing -----------------------------------------------------------------


def variant(vid: str, *answers: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": vid,
        "status": "final",
        "subject": PATIENT,
        "code": cc(LOINC, "69548-6"),
        "valueCodeableConcept": {"coding": [{"system": LOINC, "code": a} for a in answers]},
        "component": [{"code": cc(LOINC, "48018-6"), "valueCodeableConcept": cc("http://www.genenames.org/geneId", "HGNC:6000", "IL1RN")}],
    }


DIRA = condition("dira", cc(ICD, "M04.8", text="Deficiency of interleukin 1 receptor antagonist [DIRA]"))


def test_8_a_result_coded_both_present_and_absent_is_undetermined():
    d = decide(DIRA, order("dira"), role("207SG0201X"), variant("v", "LA9633-4", "LA9634-2"))
    assert d.decision != "approved" and d.route == "clinical_review" and [u.id for u in d.undetermined] == ["genetic_tests"]
    assert "genetic_tests" in d.blocking and "Observation/v" in d.undetermined[0].text
    assert decide(DIRA, order("dira"), role("207SG0201X"), variant("v", "LA9633-4")).decision == "approved"


def test_8_an_orders_reasons_naming_two_indications_are_undetermined():
    rest = [r for r in APPROVED_RA if r["resourceType"] != "MedicationRequest"]
    d = decide(*rest, order("ra", codes=(cc(ICD, "U07.1"),)))
    assert d.decision == "undetermined" and d.blocking == ("indication",)
    assert "Rheumatoid Arthritis" in d.undetermined[0].text and "COVID-19" in d.undetermined[0].text


def test_8_a_diagnosis_whose_text_denies_its_code_is_undetermined():
    ruled_out = condition("dira", cc(ICD, "M04.8", text="DIRA ruled out"))
    d = decide(ruled_out, order("dira"), role("207SG0201X"), variant("v", "LA9633-4"))
    assert d.decision == "undetermined" and "ruled out" in d.undetermined[0].text


def test_8_two_problems_without_a_reason_are_undetermined():
    d = decide(RA, condition("fmf", cc(SCT, "12579009", "Familial Mediterranean fever")), order(), role(), coverage(), MTX, CIMZIA, ENBREL)
    assert d.decision == "undetermined" and d.blocking == ("indication",)


def test_8_a_past_drugs_reasons_that_disagree_leave_it_out_undetermined():
    humira = statement("humira", {"text": "Humira"}, "stopped", "2022-01-01", "2022-09-01", "failure", reasonCode=[cc(ICD, "M05.79"), cc(ICD, "K50.90")])
    case, _ = read(*APPROVED_RA, humira)
    assert [e["drug"] for e in case.medication_history] == ["methotrexate", "cimzia", "enbrel"]
    assert [u["field"] for u in case.undetermined] == ["medication_history"]
    assert evaluate(case, KB_DIR).decision == "undetermined"


# --- codes real systems use ----------------------------------------------------------------------


def test_snomed_ct_rheumatoid_arthritis_as_synthea_sends_it():
    ra = condition("ra", cc(SCT, "69896004", "Rheumatoid arthritis"))
    case, _ = read(ra, order(), role())
    assert case.indication == "rheumatoid_arthritis"


@pytest.mark.parametrize("code", ["207NS0135X", "207ND0101X", "207NI0002X"])
def test_every_dermatology_subspecialty_is_a_dermatologist(code):
    caps = condition("caps", cc(ICD, "M04.2", text="Muckle-Wells syndrome"))
    assert decide(caps, order("caps"), role(code)).decision == "approved"


def test_nomid_named_with_cinca_is_the_one_syndrome():
    caps = condition("caps", cc(ICD, "M04.2", text="NOMID (CINCA syndrome)"))
    assert read(caps, order("caps"))[0].indication == "cinca"


def test_the_crd_guides_employer_group_coverage_is_employer_group():
    """The Da Vinci CRD example Coverage: type ActCode PPO, class group "XYZ employee Group Plan"."""
    cov = {
        "resourceType": "Coverage",
        "id": "COV1",
        "status": "active",
        "beneficiary": PATIENT,
        "payor": [{"display": "Payer"}],
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PPO", "display": "preferred provider organization policy"}], "text": "PPO"},
        "class": [
            {
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "group", "display": "Group"}], "text": "An employee group"},
                "value": "xyz",
                "name": "XYZ employee Group Plan",
            },
            {
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "plan", "display": "Plan"}], "text": "A specific suite of benefits."},
                "value": "gold",
                "name": "Acme Gold Plan",
            },
        ],
    }
    rest = [r for r in APPROVED_RA if r["resourceType"] != "Coverage"]
    case, _ = read(*rest, cov)
    assert case.plan == "employer_group" and evaluate(case, KB_DIR).decision == "approved"


def test_a_coverage_that_names_no_plan_type_leaves_it_unknown():
    cov = dict(coverage())
    del cov["class"]
    rest = [r for r in APPROVED_RA if r["resourceType"] != "Coverage"]
    d = decide(*rest, cov)
    assert d.decision == "criteria_not_met" and d.blocking == ("3.C",)


def test_familial_mediterranean_fever_alone_is_any_other_use():
    d = decide(condition("fmf", cc(ICD, "M04.1")), order(), role())
    assert d.decision == "not_covered" and [r.id for r in d.reasons] == ["NC.other"]


def test_an_order_given_as_free_text_is_the_anakinra_order():
    rest = [r for r in APPROVED_RA if r["resourceType"] != "MedicationRequest"]
    assert decide(*rest, order("ra", medication={"text": "Kineret 100 mg/0.67 mL syringe"})).decision == "approved"


@pytest.mark.parametrize("code, key", [("9524", "sulfasalazine"), ("105586", "methotrexate"), ("27169", "leflunomide"), ("214555", "etanercept"), ("1921017", "humira")])
def test_rxnorm_codes_of_every_level_are_read(code, key):
    case, _ = read(RA, order("ra"), statement("x", cc(RX, code), "stopped", "2023-01-01", "2023-06-01", "failure"))
    assert case.medication_history[0]["drug"] == key


def test_an_rxnorm_code_not_in_the_tables_is_read_by_its_normalized_name():
    case, _ = read(RA, order("ra"), statement("x", cc(RX, "999999", "adalimumab 40 MG/0.4ML Auto-Injector [Humira]"), "stopped", "2023-01-01", "2023-06-01", "failure"))
    assert case.medication_history[0]["drug"] == "humira"
