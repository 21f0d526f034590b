"""FHIR R4 input: code tables in the KB, the mapping, the ICD-10-CM traps, twins of the examples."""

from __future__ import annotations

import json
import subprocess

import pytest

from kineret_asp import CaseError, KbError, evaluate, load_kb
from kineret_asp.cases.fhir_bundle import bundle_case, whole_months
from kineret_asp.cases.load import load
from kineret_asp.knowledge.fhir_mapping import read_mapping

from ..conftest import FACTS, KB_DIR, cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # simple-icd-10-cm reads its data the old way

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
NUCC = "http://nucc.org/provider-taxonomy"
LOINC = "http://loinc.org"
VOCAB = "urn:kineret-asp:vocabulary:"
BUNDLES = sorted(p for p in (FACTS / "fhir").glob("*.json") if not p.name.endswith(".case.json"))


def cc(system: str, code, display: str | None = None, text: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    out: dict = {"coding": [coding]}
    if text:
        out["text"] = text
    return out


def condition(cid: str, code: str, text: str | None = None, **extra) -> dict:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p"}, "code": cc(ICD, code, text=text), **extra}


def order(reason: str | None = None, authored: str = "2024-07-01", **extra) -> dict:
    out = {
        "resourceType": "MedicationRequest",
        "id": "order",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": cc(RX, "72435", "anakinra"),
        "authoredOn": authored,
        **extra,
    }
    if reason:
        out["reasonReference"] = [{"reference": f"Condition/{reason}"}]
    return out


def role(code: str) -> dict:
    return {"resourceType": "PractitionerRole", "id": f"role-{code}", "specialty": [cc(NUCC, code)]}


def statement(sid: str, medication: dict, status: str = "completed", start: str | None = None, end: str | None = None, outcome: str | None = None, **extra) -> dict:
    out = {"resourceType": "MedicationStatement", "id": sid, "status": status, "subject": {"reference": "Patient/p"}, "medicationCodeableConcept": medication, **extra}
    if start:
        out["effectivePeriod"] = {"start": start, **({"end": end} if end else {})}
    if outcome:
        out["statusReason"] = [cc(VOCAB + "outcome", outcome)]
    return out


def bundle(*resources: dict, bid: str = "b1") -> dict:
    return {"resourceType": "Bundle", "id": bid, "type": "collection", "entry": [{"resource": r} for r in resources]}


def read(*resources: dict):
    return bundle_case(bundle(*resources), "<test>", load_kb(KB_DIR))


# --- the code tables -------------------------------------------------------------------


@pytest.mark.slow  # loads the whole published ICD-10-CM tabular (about 3 s)
def test_every_icd10cm_code_in_the_kb_is_a_code_of_the_published_tabular(kb):
    """Each ICD-10-CM row (code/5, code_text/5) is valid in the CMS tabular simple-icd-10-cm ships."""
    import simple_icd_10_cm as icd

    rows = [str(r[1]) for r in kb.facts("code", 5) if str(r[0]) == "icd10cm"] + [str(r[1]) for r in kb.facts("code_text", 5) if str(r[0]) == "icd10cm"]
    assert len(set(rows)) >= 15
    invalid = sorted({c for c in rows if not icd.is_valid_item(c)})
    assert invalid == []
    for alias, code, match, _, _ in kb.facts("code", 5):
        if str(alias) == "icd10cm" and str(match) == "prefix":
            assert icd.get_descendants(str(code)), f"{code} is written as a prefix but has no codes below it"


def test_every_code_row_names_its_source_in_the_comment_above(kb):
    """Each code table file says, in its comments, where its codes come from."""
    for name, words in {"icd10cm.lp": "ICD-10-CM Tabular", "rxnorm.lp": "RxNorm", "nucc.lp": "nucc.org", "loinc.lp": "Regenstrief"}.items():
        text = (kb.path / "codes" / name).read_text()
        assert words in text and "Source" in text


def test_a_code_row_with_a_key_the_vocabulary_lacks_is_a_kb_error(kb_copy):
    path = kb_copy / "codes" / "nucc.lp"
    path.write_text(path.read_text().replace("specialty, rheumatology).", "specialty, rheumatolgy).", 1))
    with pytest.raises(KbError, match="rheumatolgy"):
        read_mapping(load_kb(kb_copy))


# --- ICD-10-CM traps -------------------------------------------------------------------


@pytest.mark.parametrize("code", ["M05.79", "M05.00", "M06.00", "M06.89", "M06.9"])
def test_rheumatoid_arthritis_codes(code):
    case, _ = read(condition("c", code), order("c"))
    assert case.indication == "rheumatoid_arthritis"


def test_m06_1_is_adult_onset_stills_disease_not_rheumatoid_arthritis():
    case, _ = read(condition("c", "M06.1"), order("c"), role("207RR0500X"))
    assert case.indication == "stills_disease"
    assert evaluate(case).decision == "approved"


@pytest.mark.parametrize("code", ["M06.4", "M06.2"])
def test_other_m06_codes_are_not_rheumatoid_arthritis(code):
    """The order's reason, in ICD-10-CM, names a condition no criterion covers: any other use (NC.other)."""
    case, converted = read(condition("c", code), order("c"))
    assert case.indication == "other" and evaluate(case).reasons[0].id == "NC.other"
    assert any(f"ICD-10-CM code {code}" in n.text for n in converted.notes)


def test_m04_2_alone_is_caps_with_the_syndrome_not_given():
    case, _ = read(condition("c", "M04.2"), order("c"), role("207N00000X"))
    assert case.indication == "caps"
    assert evaluate(case).met("1.A") is False


@pytest.mark.parametrize(("text", "key"), [("Muckle-Wells syndrome", "muckle_wells"), ("Familial cold urticaria", "fcas"), ("NOMID", "nomid"), ("CINCA syndrome", "cinca")])
def test_m04_2_takes_the_syndrome_from_its_words(text, key):
    case, _ = read(condition("c", "M04.2", text=text), order("c"), role("207N00000X"))
    assert case.indication == key and evaluate(case).decision == "approved"


def test_m04_2_naming_two_syndromes_stays_caps_not_given():
    case, _ = read(condition("c", "M04.2", text="Muckle-Wells or FCAS"), order("c"))
    assert case.indication == "caps"


def test_m04_8_alone_does_not_prove_dira():
    """M04.8 holds DIRA and four other syndromes: alone it settles nothing; the indication is undetermined, a question."""
    case, _ = read(condition("c", "M04.8"), order("c"), role("207SG0201X"))
    assert case.indication is None
    (fact,) = case.undetermined
    assert fact["field"] == "indication" and "M04.8" in fact["why"] and "DIRA" in fact["why"]
    assert evaluate(case).decision == "undetermined" and evaluate(case).blocking == ("indication",)


def test_m04_8_with_the_words_of_dira_is_dira():
    case, _ = read(condition("c", "M04.8", text="Deficiency of interleukin 1 receptor antagonist [DIRA]"), order("c"))
    assert case.indication == "dira"


def test_m04_8_naming_blau_syndrome_is_not_dira():
    case, _ = read(condition("c", "M04.8", text="Blau syndrome"), order("c"))
    assert case.indication is None and [u["field"] for u in case.undetermined] == ["indication"]


@pytest.mark.slow  # loads the whole published ICD-10-CM tabular (about 3 s)
def test_every_m08_2_code_is_systemic_jia():
    import simple_icd_10_cm as icd

    codes = [c for c in icd.get_descendants("M08.2") if icd.is_leaf(c)]
    assert "M08.2A" in codes
    for code in codes:
        case, _ = read(condition("c", code), order("c"))
        assert case.indication == "sjia", code


def test_u07_1_is_covid_19_decided_by_another_policy():
    case, _ = read(condition("c", "U07.1"), order("c"))
    assert case.indication == "covid_19" and evaluate(case).decision == "other_policy"


def test_the_orders_reason_chooses_among_several_conditions():
    case, _ = read(condition("ra", "M05.79"), condition("covid", "U07.1"), order("ra"))
    assert case.indication == "rheumatoid_arthritis"


def test_several_conditions_without_a_reason_leave_the_indication_undetermined_naming_them():
    case, _ = read(condition("ra", "M05.79"), condition("covid", "U07.1"), order())
    (fact,) = case.undetermined
    assert fact["field"] == "indication" and "Condition/ra" in fact["why"] and "Condition/covid" in fact["why"]
    assert evaluate(case).decision == "undetermined"


def test_two_draft_orders_for_the_drug_are_an_error_naming_both():
    with pytest.raises(CaseError) as err:
        read(condition("c", "M05.79"), order("c"), dict(order("c"), id="order2"))
    assert "MedicationRequest/order, MedicationRequest/order2: more than one draft order" in err.value.line()


def test_a_statement_of_a_drug_not_taken_without_a_reason_is_left_out_with_a_note():
    case, converted = read(condition("c", "M05.79"), order("c"), statement("m", cc(RX, "6851"), "not-taken"))
    assert list(case.medication_history) == []
    assert [n.text for n in converted.notes if n.where == "MedicationStatement/m"] == ["left out: its outcome could not be read (no element the mapping reads gives it)"]


def test_a_refuted_diagnosis_is_read_as_absent():
    refuted = {"verificationStatus": cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "refuted")}
    case, _ = read(condition("covid", "U07.1", **refuted), condition("ra", "M05.79"), order())
    assert case.indication == "rheumatoid_arthritis"


# --- RxNorm, NUCC, LOINC ---------------------------------------------------------------


def test_nucc_taxonomy_codes_become_specialties():
    case, _ = read(condition("c", "M04.2"), order("c"), role("207RR0500X"), role("207SG0203X"), role("207NP0225X"), role("2080P0216X"))
    assert set(case.prescriber_specialties) == {"rheumatology", "genetics", "dermatology"}


def test_allergy_and_immunology_is_not_read_as_an_autoinflammatory_specialist():
    case, converted = read(condition("c", "M04.8", text="DIRA"), order("c"), role("207K00000X"))
    # kept as another specialty, by its code: it meets no criterion (no key of the KB)
    assert all("207K00000X" in s and "autoinflammatory" not in s for s in case.prescriber_specialties)
    assert any("207K00000X" in n.text for n in converted.notes)


def test_rxnorm_ingredient_to_drug_and_months_from_the_period():
    case, _ = read(condition("c", "M05.79"), order("c"), statement("m", cc(RX, "6851"), "stopped", "2024-01-15", "2024-04-14", "failure"))
    entry = case.medication_history[0]
    assert (entry["drug"], entry["outcome"], entry["months"]) == ("methotrexate", "failure", 2)


def test_an_open_period_counts_to_the_date_of_the_order():
    case, _ = read(condition("c", "M05.79"), order("c", authored="2024-07-20"), statement("m", cc(RX, "6851"), "active", "2024-01-20", None, "failure"))
    assert case.medication_history[0]["months"] == 6
    assert "methotrexate" in case.current_medications


def test_whole_months():
    import datetime as dt

    assert whole_months(dt.date(2024, 1, 31), dt.date(2024, 4, 30)) == 2
    assert whole_months(dt.date(2024, 1, 15), dt.date(2024, 4, 15)) == 3
    assert whole_months(dt.date(2024, 5, 1), dt.date(2024, 4, 1)) == 0


def test_a_drug_taken_without_a_coded_reason_is_only_a_trial():
    case, _ = read(condition("c", "M05.79"), order("c"), statement("m", cc(RX, "6851"), "completed", "2023-01-01", "2023-09-01"))
    assert case.medication_history[0]["outcome"] == "tried"
    assert evaluate(case).met("3.A.i") is False


def test_a_sample_counts_for_nothing():
    sample = {"extension": [{"url": "urn:kineret-asp:extension:sample", "valueBoolean": True}]}
    case, _ = read(condition("c", "M05.79"), order("c"), role("207RR0500X"), statement("m", cc(RX, "6851"), "stopped", "2023-01-01", "2023-09-01", "failure", **sample))
    assert case.medication_history[0]["sample"] is True
    assert evaluate(case).met("3.A.i") is False


def test_an_ingredient_code_is_the_ingredient_it_counts_for_3Aii_never_for_a_3C_row():
    case, _ = read(
        condition("c", "M05.79"),
        order("c"),
        role("207RR0500X"),
        statement("ada", cc(RX, "327361", "adalimumab"), "stopped", "2023-01-01", "2023-09-01", "failure"),
        statement("etan", cc(RX, "214555"), "active", "2024-01-01"),
    )
    assert [e["drug"] for e in case.medication_history][:1] == ["adalimumab_unspecified"]
    assert list(case.current_medications) == ["etanercept"]
    d = evaluate(case)
    assert d.decision == "not_covered" and [r.id for r in d.reasons] == ["NC.2"]
    assert d.met("3.A.ii") is True and d.met("3.C.B") is not True


def test_an_unknown_code_is_a_note_never_a_crash():
    case, converted = read(
        condition("c", "M05.79"),
        order("c"),
        statement("x", cc(RX, "999999", "unknowndrug"), "completed"),
        {"resourceType": "Condition", "id": "snomed", "subject": {"reference": "Patient/p"}, "code": cc("http://snomed.info/sct", "69896004")},
    )
    assert case.indication == "rheumatoid_arthritis"
    texts = [n.text for n in converted.notes]
    assert any("999999" in t for t in texts)


def test_a_medication_reference_is_resolved_in_the_bundle():
    med = {"resourceType": "Medication", "id": "mtx", "code": cc(RX, "6851")}
    st = statement("m", cc(RX, "6851"), "stopped", "2023-01-01", "2023-06-01", "failure")
    del st["medicationCodeableConcept"]
    st["medicationReference"] = {"reference": "Medication/mtx"}
    case, _ = read(condition("c", "M05.79"), order("c"), med, st)
    assert case.medication_history[0]["drug"] == "methotrexate"


def test_genetic_variant_assessment_becomes_a_genetic_test():
    def obs(status: str, answer: str) -> dict:
        return {
            "resourceType": "Observation",
            "id": f"o-{status}",
            "status": status,
            "subject": {"reference": "Patient/p"},
            "code": cc(LOINC, "69548-6"),
            "valueCodeableConcept": cc(LOINC, answer),
            "component": [{"code": cc(LOINC, "48018-6"), "valueCodeableConcept": cc("http://www.genenames.org/geneId", "HGNC:6000", "IL1RN")}],
        }

    case, _ = read(condition("c", "M04.8", text="DIRA"), order("c"), obs("final", "LA9633-4"), obs("preliminary", "LA9633-4"))
    tests = sorted((t["gene"], t["result"]) for t in case.genetic_tests)
    assert tests == [("IL1RN", "mutation_confirmed"), ("IL1RN", "pending")]


def test_a_coverage_with_a_plan_key_and_a_continuation_order():
    coverage = {"resourceType": "Coverage", "id": "cov", "status": "active", "type": cc(VOCAB + "plan", "individual_family"), "beneficiary": {"reference": "Patient/p"}, "payor": [{"display": "x"}]}
    case, _ = read(condition("c", "M05.79"), order("c", priorPrescription={"reference": "MedicationRequest/old"}), coverage)
    assert (case.plan, case.request) == ("individual_family", "continuation")


# --- malformed input -------------------------------------------------------------------


def test_a_malformed_resource_is_an_error_naming_the_entry_and_element():
    bad = statement("m", cc(RX, 6851), "completed")
    bad["effectivePeriod"] = {"start": "2024-13-01"}
    with pytest.raises(CaseError) as err:
        read(condition("c", "M05.79"), order("c"), bad, {"resourceType": "Condition", "id": "x", "subject": {"reference": "Patient/p"}, "onsetFoo": 1})
    lines = err.value.lines()
    assert any("entry[2].resource(MedicationStatement/m).medicationCodeableConcept.coding[0].code: expected a string, got a number" in l for l in lines)
    assert any("entry[2].resource(MedicationStatement/m).effectivePeriod.start: not a valid FHIR date" in l for l in lines)
    assert any("entry[3].resource(Condition/x).onsetFoo: unknown element" in l for l in lines)


@pytest.mark.parametrize(
    "data",
    [{"resourceType": "Patient"}, {"resourceType": "Bundle", "entry": "x"}, {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Nope"}}]}, {"resourceType": 5}],
)
def test_not_a_bundle_is_a_one_line_error(data):
    with pytest.raises(CaseError):
        bundle_case(data, "<test>", load_kb(KB_DIR))


# --- the examples and the command line -------------------------------------------------


def test_there_are_at_least_five_example_bundles_each_with_its_twin():
    assert len(BUNDLES) >= 5
    for path in BUNDLES:
        assert path.with_name(path.stem + ".case.json").exists()


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.stem)
def test_a_bundle_and_its_json_twin_give_the_same_decision(path, kb):
    twin = path.with_name(path.stem + ".case.json")
    bundle_case_ = load(path, kb).case
    twin_case = load(twin, kb).case
    a, b = evaluate(bundle_case_, kb).to_dict(), evaluate(twin_case, kb).to_dict()
    assert {k: v for k, v in a.items() if k != "notes"} == {k: v for k, v in b.items() if k != "notes"}
    expect = json.loads(twin.read_text())["expect"]
    assert a["decision"] == expect["decision"]


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return cli(*args, input=stdin)


def test_evaluate_accepts_a_bundle_and_shows_its_notes():
    out = run_cli("evaluate", "--format", "json", str(FACTS / "fhir" / "ra_approved.json"))
    assert out.returncode == 0, out.stderr
    decision = json.loads(out.stdout)
    assert decision["decision"] == "approved"
    assert any(n["id"] == "Coverage/cov1" and "PPO" in n["text"] for n in decision["notes"])
    again = run_cli("evaluate", "--format", "json", str(FACTS / "fhir" / "ra_approved.json"))
    assert again.stdout == out.stdout


def test_evaluate_of_a_malformed_bundle_exits_2_with_one_line_per_problem():
    data = bundle(
        condition("c", "M05.79"), {"resourceType": "MedicationStatement", "id": "m", "status": "active", "subject": {"reference": "Patient/p"}, "medicationCodeableConcept": cc(RX, 5), "foo": 1}
    )
    out = run_cli("evaluate", "-", stdin=json.dumps(data))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "<stdin>: entry[1].resource(MedicationStatement/m).foo: unknown element" in out.stderr


def test_kineret_asp_test_skips_bundles_and_runs_their_twins():
    out = run_cli("test", str(FACTS / "fhir"))
    assert out.returncode == 0, out.stdout
    assert f"{len(BUNDLES)} passed, 0 failed" in out.stdout


def test_a_current_drug_whose_code_the_tables_do_not_know_is_never_approved_over():
    """An unreadable current drug may be a biologic the Appendix names only by example (NC.2): never an approval."""
    kb = load_kb(KB_DIR)
    case, converted = read(condition("c", "M08.20"), order("c"), role("207RR0500X"))
    assert evaluate(case, kb).decision == "approved"
    case, converted = read(condition("c", "M08.20"), order("c"), role("207RR0500X"), statement("x", cc(RX, "999999", "zorbitrex"), "active", "2024-01-01"))
    decision = evaluate(case, kb)
    assert decision.decision == "undetermined" and decision.route == "clinical_review"
    (fact,) = [u for u in decision.undetermined if u.id == "NC.2"]
    assert "999999" in str(fact.value) and "999999" in fact.text
    assert any("999999" in n.text for n in converted.notes)


def test_an_unreadable_earlier_drug_counts_for_nothing_and_is_noted():
    case, converted = read(condition("c", "M08.20"), order("c"), role("207RR0500X"), statement("x", cc(RX, "999999", "something"), "completed", "2023-01-01", "2023-06-01"))
    decision = evaluate(case, load_kb(KB_DIR))
    assert decision.decision == "approved"
    assert any("999999" in e["drug"] for e in case.to_dict()["medication_history"])
