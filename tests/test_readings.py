"""Each reading of the policy the core issue lists, as its own test.

The expectations come from the policy text (IP0243, 2024-06-01), not from
the program's output.
"""
from __future__ import annotations

import pytest

from .conftest import decide, ra_case

CAPS = ["cinca", "fcas", "muckle_wells", "nomid"]


# --- CAPS: the four syndromes; prescribers rheumatology, genetics, dermatology


@pytest.mark.parametrize("syndrome", CAPS)
def test_caps_means_the_four_listed_syndromes(syndrome):
    d = decide({"indication": syndrome, "prescriber_specialties": ["rheumatology"]})
    assert d.decision == "approved"
    assert d.criteria[0].id == "1"
    assert d.met("1.A") is True


@pytest.mark.parametrize("specialty", ["rheumatology", "genetics", "dermatology"])
def test_caps_prescriber_list_is_rheumatology_genetics_dermatology(specialty):
    d = decide({"indication": "fcas", "prescriber_specialties": [specialty]})
    assert d.met("1.B") is True
    assert d.decision == "approved"


def test_caps_does_not_accept_an_autoinflammatory_specialist():
    d = decide({"indication": "muckle_wells", "prescriber_specialties": ["autoinflammatory"]})
    assert d.met("1.B") is False
    assert d.decision == "criteria_not_met"
    assert "1.B" in d.unmet


def test_only_dira_accepts_a_prescriber_specializing_in_autoinflammatory_disorders():
    dira = decide({"indication": "dira", "prescriber_specialties": ["autoinflammatory"], "genetic_tests": [{"gene": "IL1RN", "result": "mutation_confirmed"}]})
    assert dira.met("2.B") is True and dira.decision == "approved"
    for indication in ["cinca", "stills_disease", "sjia"]:
        assert decide({"indication": indication, "prescriber_specialties": ["autoinflammatory"]}).decision == "criteria_not_met"
    ra = decide(ra_case(prescriber_specialties=["autoinflammatory"]))
    assert ra.met("3.B") is False


# --- DIRA: genetic testing confirmed a mutation in IL1RN


def test_dira_confirmed_il1rn_mutation_meets_2A():
    d = decide({"indication": "dira", "prescriber_specialties": ["genetics"], "genetic_tests": [{"gene": "IL1RN", "result": "mutation_confirmed"}]})
    assert d.met("2.A") is True


@pytest.mark.parametrize("result", ["negative", "pending"])
def test_dira_negative_or_pending_il1rn_test_does_not_meet_2A(result):
    d = decide({"indication": "dira", "prescriber_specialties": ["genetics"], "genetic_tests": [{"gene": "IL1RN", "result": result}]})
    assert d.met("2.A") is False
    assert d.decision == "criteria_not_met"


def test_dira_mutation_in_another_gene_does_not_meet_2A():
    d = decide({"indication": "dira", "prescriber_specialties": ["genetics"], "genetic_tests": [{"gene": "NLRP3", "result": "mutation_confirmed"}]})
    assert d.met("2.A") is False


# --- RA 3.A.i: failure after at least 3 months of ONE csDMARD, or CI/intolerance to ALL


@pytest.mark.parametrize("drug", ["methotrexate", "leflunomide", "hydroxychloroquine", "sulfasalazine"])
def test_ra_3Ai_failure_after_three_months_of_one_csdmard(drug):
    d = decide(ra_case([{"drug": drug, "outcome": "failure", "months": 3}]))
    assert d.met("3.A.i") is True


def test_ra_3Ai_failure_shorter_than_three_months_does_not_count():
    d = decide(ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 2}]))
    assert d.met("3.A.i") is False


def test_ra_3Ai_failure_with_no_documented_length_does_not_count():
    d = decide(ra_case([{"drug": "methotrexate", "outcome": "failure"}]))
    assert d.met("3.A.i") is False
    assert any(n.id == "3.A.i" and n.field == "medication_history[0]" for n in d.notes)


def test_ra_3Ai_contraindication_or_intolerance_to_all_csdmards():
    history = [
        {"drug": "methotrexate", "outcome": "contraindication"},
        {"drug": "leflunomide", "outcome": "intolerance"},
        {"drug": "hydroxychloroquine", "outcome": "contraindication"},
        {"drug": "sulfasalazine", "outcome": "intolerance"},
    ]
    assert decide(ra_case(history)).met("3.A.i") is True
    assert decide(ra_case(history[:3])).met("3.A.i") is False


def test_ra_3Ai_a_biologic_failure_is_not_a_csdmard_failure():
    d = decide(ra_case([{"drug": "enbrel", "outcome": "failure", "months": 6}]))
    assert d.met("3.A.i") is False
    assert d.met("3.A.ii") is True


# --- RA 3.A.ii: an earlier trial of a biologic or tsDMARD for rheumatoid arthritis; a contraindication is not a trial


@pytest.mark.parametrize("outcome", ["failure", "intolerance", "tried"])
@pytest.mark.parametrize("drug", ["kevzara", "orencia_sc", "olumiant", "infliximab", "rituximab", "actemra_iv"])
def test_ra_3Aii_any_trial_of_a_biologic_or_tsdmard_with_the_rheumatoid_arthritis_tick(drug, outcome):
    d = decide(ra_case([{"drug": drug, "outcome": outcome}]))
    assert d.met("3.A.ii") is True


NO_RA_TICK = ["cosentyx", "otezla", "siliq", "taltz", "ilumya", "skyrizi_iv", "skyrizi_sc", "tremfya", "stelara_sc", "stelara_iv", "zeposia", "sotyktu", "xeljanz_oral_solution"]


@pytest.mark.parametrize("drug", NO_RA_TICK)
def test_ra_3Aii_for_rheumatoid_arthritis_an_entry_that_says_nothing_counts_only_with_the_ra_tick(drug):
    """Reading: "for rheumatoid arthritis" is not dropped; none of these rows of Tables 1-4 has the RA tick."""
    assert decide(ra_case([{"drug": drug, "outcome": "failure"}])).met("3.A.ii") is False
    assert decide(ra_case([{"drug": drug, "outcome": "failure", "for": "rheumatoid_arthritis"}])).met("3.A.ii") is True


@pytest.mark.parametrize("drug", ["enbrel", "humira", "kevzara", "amjevita"])
def test_ra_3Aii_for_rheumatoid_arthritis_an_entry_for_another_indication_does_not_count(drug):
    """Reading: an entry that says it was taken for another condition does not count, tick or not."""
    assert decide(ra_case([{"drug": drug, "outcome": "tried", "for": "ankylosing_spondylitis"}])).met("3.A.ii") is False
    assert decide(ra_case([{"drug": drug, "outcome": "tried", "for": "rheumatoid_arthritis"}])).met("3.A.ii") is True
    assert decide(ra_case([{"drug": drug, "outcome": "tried"}])).met("3.A.ii") is True


def test_ra_3Aii_a_continuation_does_not_satisfy_its_own_step_therapy():
    """Reading: on a continuation the Kineret course being renewed is not an earlier biologic."""
    history = [{"drug": "kineret", "outcome": "tried", "months": 12}, {"drug": "cimzia", "outcome": "contraindication"}, {"drug": "enbrel", "outcome": "contraindication"}]
    continuation = decide(ra_case(history, request="continuation", beneficial_response=True))
    assert continuation.met("3.A.ii") is False and continuation.met("R.A") is False
    assert continuation.decision == "criteria_not_met" and continuation.route == "clinical_review"


def test_ra_3Aii_on_an_initial_request_an_earlier_course_of_kineret_still_counts():
    """Reading: the exclusion is for the course being renewed; an initial request may rest on an earlier Kineret course."""
    history = [{"drug": "kineret", "outcome": "failure", "months": 6}, {"drug": "cimzia", "outcome": "contraindication"}, {"drug": "enbrel", "outcome": "contraindication"}]
    initial = decide(ra_case(history))
    assert initial.met("3.A.ii") is True and initial.decision == "approved"


def test_done_when_cosentyx_alone_is_routed_to_review_and_cosentyx_for_rheumatoid_arthritis_is_approved():
    """The issue's "Done when": Cosentyx the only biologic, contraindications to two preferred products."""
    history = [{"drug": "cosentyx", "outcome": "failure", "months": 6}, {"drug": "cimzia", "outcome": "contraindication"}, {"drug": "enbrel", "outcome": "contraindication"}]
    d = decide(ra_case(history))
    assert d.decision == "criteria_not_met" and d.route == "clinical_review"
    assert d.met("3.A.ii") is False and d.met("3.C") is True
    history[0]["for"] = "rheumatoid_arthritis"
    assert decide(ra_case(history)).decision == "approved"


def test_done_when_a_continuation_with_only_kineret_in_the_history_is_routed_to_review():
    history = [{"drug": "kineret", "outcome": "tried", "months": 12}, {"drug": "actemra_sc", "outcome": "contraindication"}, {"drug": "rinvoq", "outcome": "contraindication"}]
    d = decide(ra_case(history, request="continuation", beneficial_response=True))
    assert d.decision == "criteria_not_met" and d.route == "clinical_review"
    assert "3.A" in d.unmet


def test_ra_3Aii_a_contraindication_alone_is_not_a_trial():
    d = decide(ra_case([{"drug": "enbrel", "outcome": "contraindication"}, {"drug": "rinvoq", "outcome": "contraindication"}]))
    assert d.met("3.A.ii") is False
    assert d.met("3.A") is False
    assert any(n.id == "3.A.ii" for n in d.notes)


def test_ra_3Aii_a_csdmard_is_not_a_biologic_trial():
    d = decide(ra_case([{"drug": "methotrexate", "outcome": "tried", "months": 12}]))
    assert d.met("3.A.ii") is False


# --- RA 3.C: TWO of the six products of the plan's table


def _ra_with(products: list[tuple[str, str]], plan: str | None = "employer_group"):
    history = [{"drug": "methotrexate", "outcome": "failure", "months": 4}] + [{"drug": d, "outcome": o} for d, o in products]
    fields = {} if plan is None else {"plan": plan}
    case = ra_case(history)
    case.pop("plan")
    case.update(fields)
    return decide(case)


@pytest.mark.parametrize("plan", ["employer_group", "individual_family"])
@pytest.mark.parametrize("outcome", ["failure", "contraindication", "intolerance"])
def test_ra_3C_two_preferred_products_meet_it_in_either_plan(plan, outcome):
    d = _ra_with([("cimzia", outcome), ("rinvoq", outcome)], plan)
    assert d.met("3.C") is True
    assert d.decision == "approved"


def test_ra_3C_one_product_is_not_two():
    d = _ra_with([("cimzia", "failure")])
    assert d.met("3.C") is False and d.met("3.C.C") is True


def test_ra_3C_a_plain_trial_is_not_failure_contraindication_or_intolerance():
    d = _ra_with([("cimzia", "tried"), ("enbrel", "failure")])
    assert d.met("3.C.C") is False and d.met("3.C") is False


ADALIMUMAB = ["humira", "hyrimoz", "adalimumab_adaz", "cyltezo", "adalimumab_adbm", "simlandi", "adalimumab_ryvk"]


@pytest.mark.parametrize("other", ADALIMUMAB[1:])
def test_ra_3C_two_adalimumab_brands_count_as_one_product(other):
    d = _ra_with([("humira", "failure"), (other, "failure")])
    assert d.met("3.C.B") is True
    assert d.met("3.C") is False


@pytest.mark.parametrize("brand", ADALIMUMAB)
def test_ra_3C_any_adalimumab_brand_is_row_B(brand):
    d = _ra_with([(brand, "intolerance"), ("enbrel", "failure")])
    assert d.met("3.C.B") is True and d.met("3.C") is True


def test_ra_3C_xeljanz_and_xeljanz_xr_are_one_product():
    d = _ra_with([("xeljanz", "failure"), ("xeljanz_xr", "failure")])
    assert d.met("3.C.F") is True and d.met("3.C") is False
    assert _ra_with([("xeljanz_xr", "failure"), ("cimzia", "failure")]).met("3.C") is True


def test_ra_3C_xeljanz_oral_solution_is_not_row_F():
    d = _ra_with([("xeljanz_oral_solution", "failure"), ("cimzia", "failure")])
    assert d.met("3.C.F") is False


def test_ra_3C_actemra_iv_is_not_actemra_sc():
    d = _ra_with([("actemra_iv", "failure"), ("cimzia", "failure")])
    assert d.met("3.C.A") is False and d.met("3.C") is False
    assert _ra_with([("actemra_sc", "failure"), ("cimzia", "failure")]).met("3.C") is True


def test_ra_3C_without_a_plan_is_unmet_and_says_the_plan_is_missing():
    d = _ra_with([("cimzia", "failure"), ("enbrel", "failure")], plan=None)
    assert d.met("3.C") is False
    assert d.decision == "criteria_not_met"
    node = next(n for n in d.criteria[0].walk() if n.id == "3.C")
    assert node.children == ()
    assert any("plan" in text.lower() and "not given" in text for text in node.notes)
    assert any(n.id == "3.C" and n.field == "plan" for n in d.notes)


def test_ra_3C_rows_follow_the_plan_table():
    d = _ra_with([("cimzia", "failure"), ("enbrel", "failure")], plan="individual_family")
    node = next(n for n in d.criteria[0].walk() if n.id == "3.C")
    assert [c.id for c in node.children] == ["3.C.A", "3.C.B", "3.C.C", "3.C.D", "3.C.E", "3.C.F"]
    assert any("Individual and Family Plan" in t for t in node.notes)


# --- Samples count for no criterion


def test_samples_count_for_no_criterion():
    sample = {"sample": True}
    assert decide(ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 6, **sample}])).met("3.A.i") is False
    assert decide(ra_case([{"drug": "enbrel", "outcome": "failure", **sample}])).met("3.A.ii") is False
    d = _ra_with([("cimzia", "failure")] + [])
    assert d.met("3.C") is False
    history = [{"drug": "methotrexate", "outcome": "failure", "months": 4}, {"drug": "cimzia", "outcome": "failure"}, {"drug": "enbrel", "outcome": "failure", "sample": True}]
    d = decide(ra_case(history))
    assert d.met("3.C.D") is False and d.met("3.C") is False
    assert [n.field for n in d.notes if n.id == "OV.samples"] == ["medication_history[2]"]
    history[2]["sample"] = False
    assert decide(ra_case(history)).met("3.C") is True


def test_all_four_csdmards_contraindicated_as_samples_do_not_count():
    history = [{"drug": d, "outcome": "contraindication", "sample": True} for d in ["methotrexate", "leflunomide", "hydroxychloroquine", "sulfasalazine"]]
    assert decide(ra_case(history)).met("3.A.i") is False


# --- Concurrent biologic or tsDMARD: NC.2 whatever else is met; csDMARDs allowed

FULL_RA = [
    {"drug": "methotrexate", "outcome": "failure", "months": 4},
    {"drug": "cimzia", "outcome": "failure"},
    {"drug": "enbrel", "outcome": "failure"},
]


@pytest.mark.parametrize("drug", ["enbrel", "humira", "cosentyx", "stelara_iv", "rinvoq", "xeljanz_oral_solution", "otezla", "rituximab", "orencia_iv"])
def test_concurrent_biologic_or_tsdmard_is_not_covered_whatever_else_is_met(drug):
    d = decide(ra_case(FULL_RA, current_medications=[drug]))
    assert d.met("3") is True
    assert d.decision == "not_covered"
    assert [r.id for r in d.reasons] == ["NC.2"]
    assert d.reasons[0].details == {"current_medications": [drug]}
    assert d.route == "clinical_review"


@pytest.mark.parametrize("drug", ["methotrexate", "leflunomide", "hydroxychloroquine", "sulfasalazine"])
def test_concurrent_csdmards_are_allowed(drug):
    assert decide(ra_case(FULL_RA, current_medications=[drug])).decision == "approved"


def test_kineret_itself_is_not_a_concurrent_biologic():
    d = decide(ra_case(FULL_RA, current_medications=["kineret"], request="continuation", beneficial_response=True))
    assert d.decision == "approved"


def test_concurrent_biologic_excludes_other_indications_too():
    d = decide({"indication": "stills_disease", "prescriber_specialties": ["rheumatology"], "current_medications": ["actemra_iv"]})
    assert d.decision == "not_covered" and [r.id for r in d.reasons] == ["NC.2"]


# --- Conditions Not Covered and other policies


@pytest.mark.parametrize(
    "indication, reason",
    [
        ("ankylosing_spondylitis", "NC.1"),
        ("inflammatory_bowel_disease", "NC.3"),
        ("crohns_disease", "NC.3"),
        ("ulcerative_colitis", "NC.3"),
        ("lupus_arthritis", "NC.4"),
        ("osteoarthritis", "NC.5"),
        ("reactive_arthritis", "NC.6"),
        ("other", "NC.other"),
    ],
)
def test_uncovered_indications_cite_their_nc_id(indication, reason):
    d = decide({"indication": indication, "prescriber_specialties": ["rheumatology"], "beneficial_response": True})
    assert d.decision == "not_covered"
    assert [r.id for r in d.reasons] == [reason]
    assert d.reasons[0].text
    assert d.criteria == () and d.route == "clinical_review"


def test_covid_19_is_decided_by_another_policy():
    d = decide({"indication": "covid_19", "current_medications": ["enbrel"]})
    assert d.decision == "other_policy"
    assert d.route == "other_policy"
    assert [r.id for r in d.reasons] == ["OV.covid_19"]
    assert "COVID-19" in d.reasons[0].text


# --- Reauthorization and duration


def test_continuation_needs_initial_criteria_and_a_beneficial_response():
    base = ra_case(FULL_RA, request="continuation")
    assert decide({**base, "beneficial_response": True}).decision == "approved"
    no_response = decide({**base, "beneficial_response": False})
    assert no_response.decision == "criteria_not_met" and "R.B" in no_response.unmet
    assert decide(base).decision == "criteria_not_met"
    unmet_initial = decide({**ra_case(FULL_RA[:2], request="continuation"), "beneficial_response": True})
    assert unmet_initial.decision == "criteria_not_met"
    assert "R.A" in unmet_initial.unmet and "3.C" in unmet_initial.unmet


def test_initial_and_continuation_approvals_last_12_months():
    assert decide(ra_case(FULL_RA)).authorization_months == 12
    assert decide(ra_case(FULL_RA, request="continuation", beneficial_response=True)).authorization_months == 12
    assert decide(ra_case(FULL_RA[:1])).authorization_months is None


def test_the_reauthorization_criterion_shows_only_for_continuation():
    assert [c.id for c in decide(ra_case(FULL_RA)).criteria] == ["3"]
    assert [c.id for c in decide(ra_case(FULL_RA, request="continuation")).criteria] == ["3", "R"]


def test_nc2_a_biologic_outside_the_appendix_is_concurrent_use():
    """NC.2: "(See APPENDIX for examples)": the Appendix gives examples; canakinumab (Ilaris) is a biologic it does not list."""
    approved = decide({"indication": "sjia", "prescriber_specialties": ["rheumatology"]})
    assert approved.decision == "approved"
    d = decide({"indication": "sjia", "prescriber_specialties": ["rheumatology"], "current_medications": ["Ilaris"]})
    assert d.decision == "not_covered" and d.route == "clinical_review"
    assert [(r.id, r.details) for r in d.reasons] == [("NC.2", {"current_medications": ["canakinumab"]})]


def test_nc2_a_current_drug_the_kb_cannot_class_is_undetermined_never_approved():
    """NC.2: "(See APPENDIX for examples)": a current drug nobody classed may be a biologic: the decision asks, never approves."""
    d = decide({"indication": "sjia", "prescriber_specialties": ["rheumatology"], "current_medications": ["zorbitrex"]})
    assert d.decision == "undetermined" and d.route == "clinical_review" and not d.reasons
    assert d.blocking == ("NC.2",) and [u.field for u in d.undetermined] == ["current_medications[0]"]
    assert "zorbitrex" in d.undetermined[0].text and "biologic" in d.undetermined[0].text


def test_nc2_a_concurrent_csdmard_the_policy_names_is_still_allowed():
    d = decide(ra_case(current_medications=["methotrexate"]))
    assert d.decision != "not_covered" and not d.reasons
