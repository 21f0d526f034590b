"""The policy's readings: each is an example case of the version, under ``cases/readings/``.

Every reading the core issue lists is a case with an ``expect`` block
(decision, route, reasons, the criteria that must be met or unmet), run as
its own named test by ``test_examples.py`` and by ``kineret-asp test``; the
expectations come from the policy text (IP0243, 2024-06-01), not from the
program's output. What an ``expect`` block cannot say (the notes and
evidence a reviewer reads, a reason's details, the shape of the criteria
tree) is asserted here, on the same case files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kineret_asp import load_case

from .conftest import FACTS, decide

READINGS = FACTS / "readings"


def reading(name: str):
    """The decision on a reading's case file (``ra/3C_no_plan``)."""
    path = READINGS / f"{name}.json"
    case = load_case(path)
    assert case.expect, f"{path} has no expect block"
    return decide(case)


def node(decision, cid: str):
    return next(n for root in decision.criteria for n in root.walk() if n.id == cid)


def test_every_reading_is_a_case_with_expectations_that_name_criteria_or_a_decision():
    cases = sorted(READINGS.rglob("*.json"))
    assert len(cases) >= 130
    for path in cases:
        expect = load_case(path).expect
        assert set(expect) & {"decision", "met", "unmet", "unmet_includes", "reasons", "authorization_months", "blocking"}, path


def test_3Ai_a_failure_of_unknown_length_says_which_entry():
    d = reading("ra/3Ai_length_not_documented")
    assert any(n.id == "3.A.i" and n.field == "medication_history[0]" for n in d.notes)


def test_3Aii_a_contraindication_alone_says_why_it_is_not_a_trial():
    d = reading("ra/3Aii_contraindication_is_not_a_trial")
    assert any(n.id == "3.A.ii" for n in d.notes)


def test_3C_without_a_plan_shows_no_rows_and_says_the_plan_is_missing():
    d = reading("ra/3C_no_plan")
    three_c = node(d, "3.C")
    assert three_c.children == ()
    assert any("plan" in text.lower() and "not given" in text for text in three_c.notes)
    assert any(n.id == "3.C" and n.field == "plan" for n in d.notes)


def test_3C_rows_follow_the_plan_table():
    d = reading("ra/3C_individual_family_rows")
    three_c = node(d, "3.C")
    assert [c.id for c in three_c.children] == ["3.C.A", "3.C.B", "3.C.C", "3.C.D", "3.C.E", "3.C.F"]
    assert any("Individual and Family Plan" in t for t in three_c.notes)


def test_a_sample_is_named_in_the_notes_at_its_entry():
    d = reading("ra/samples_product_sample_not_3C")
    assert [n.field for n in d.notes if n.id == "OV.samples"] == ["medication_history[2]"]


@pytest.mark.parametrize("path", sorted(READINGS.glob("not_covered/nc2_concurrent_*.json")), ids=lambda p: p.stem)
def test_nc2_names_the_concurrent_drug(path: Path):
    case = load_case(path)
    d = decide(case)
    if case.expect["decision"] == "not_covered":
        assert [(r.id, r.details) for r in d.reasons] == [("NC.2", {"current_medications": list(case.current_medications)})]
    else:
        assert not d.reasons


def test_nc2_a_biologic_outside_the_appendix_is_named_by_its_ingredient():
    d = reading("sjia/nc2_canakinumab_outside_appendix")
    assert [(r.id, r.details) for r in d.reasons] == [("NC.2", {"current_medications": ["canakinumab"]})]


def test_nc2_a_drug_nobody_classed_is_a_question_about_that_drug():
    d = reading("sjia/nc2_unclassed_current_drug_undetermined")
    assert [u.field for u in d.undetermined] == ["current_medications[0]"]
    assert "zorbitrex" in d.undetermined[0].text and "biologic" in d.undetermined[0].text


def test_covid_19_says_which_use_goes_to_another_policy():
    d = reading("other_policy/covid_19_with_enbrel")
    assert "COVID-19" in d.reasons[0].text


@pytest.mark.parametrize("path", sorted((FACTS / "not_covered").glob("*.json")), ids=lambda p: p.stem)
def test_an_uncovered_indication_shows_no_criteria_and_words_its_reason(path: Path):
    case = load_case(path)
    d = decide(case)
    assert d.reasons and all(r.text for r in d.reasons)
    if "NC.2" not in {r.id for r in d.reasons}:  # an indication the policy does not cover: no criterion applies
        assert d.criteria == ()


def test_the_reauthorization_criterion_shows_only_for_a_continuation():
    assert [c.id for c in reading("ra/initial_approval_12_months").criteria] == ["3"]
    assert [c.id for c in reading("continuation/ra_response_approved").criteria] == ["3", "R"]
