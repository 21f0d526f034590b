"""What-if: before and after, flipped criteria, and changes validated like input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kineret_asp import CaseError
from kineret_asp.cases.changes import Change, apply_changes
from kineret_asp.cli import main
from kineret_asp.explain.whatif import what_if

from ..conftest import FACTS, ra_case

ADALIMUMAB_ONCE = FACTS / "ra" / "adalimumab_brands_count_once.json"


@pytest.mark.slow
def test_adding_a_product_flips_3C_and_the_decision():
    r = what_if(ADALIMUMAB_ONCE, [Change.add("medication_history", {"drug": "enbrel", "outcome": "failure"})])
    assert r.before.decision == "criteria_not_met" and r.after.decision == "approved"
    flipped = {f.id: (f.before, f.after) for f in r.flipped}
    assert flipped == {"3": (False, True), "3.C": (False, True), "3.C.D": (False, True)}
    assert all(f.text for f in r.flipped)


def test_adding_a_second_adalimumab_brand_flips_nothing():
    r = what_if(ADALIMUMAB_ONCE, [{"op": "add", "path": "medication_history", "value": {"drug": "cyltezo", "outcome": "failure"}}])
    assert r.after.decision == "criteria_not_met" and r.flipped == ()


def test_remove_by_value_and_by_index():
    case = ra_case(current_medications=["enbrel", "methotrexate"])
    r = what_if(case, [Change.remove("current_medications", "enbrel")])
    assert r.changed_case.current_medications == ("methotrexate",)
    r = what_if(case, [Change.remove("medication_history[0]")])
    assert r.changed_case.medication_history == ()
    flipped = {f.id: (f.before, f.after) for f in r.flipped}
    assert flipped["3.A.i"] == (True, False)


def test_set_scalars_and_entry_months():
    r = what_if(ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 1}]), [Change.set("medication_history[0].months", 3)])
    assert [(f.id, f.before, f.after) for f in r.flipped if f.id == "3.A.i"] == [("3.A.i", False, True)]
    r = what_if(ra_case(), [Change.set("plan", None)])
    assert r.changed_case.plan is None
    assert any(f.id == "3.C.A" and f.after is None for f in r.flipped)
    r = what_if({"indication": "sjia", "prescriber_specialties": ["rheumatology"]}, [Change.set("request", "continuation"), Change.set("beneficial_response", True)])
    assert r.after.decision == "approved"
    assert [f.id for f in r.flipped] == ["R", "R.A", "R.B"]
    assert all(f.before is None for f in r.flipped)


def test_switching_plans_keeps_the_rows():
    r = what_if(FACTS / "ra" / "approved_employer_group.json", [Change.set("plan", "individual_family")])
    assert r.before.decision == r.after.decision == "approved" and r.flipped == ()


@pytest.mark.parametrize(
    "changes, path, words",
    [
        ([{"op": "add", "path": "medication_history", "value": {"drug": "enbrl", "outcome": "failure"}}], "medication_history[3].drug", "did you mean 'enbrel'?"),
        ([{"op": "set", "path": "plan", "value": "employer"}], "plan", "expected one of employer_group"),
        ([{"op": "set", "path": "medication_history[0].months", "value": "three"}], "medication_history[0].months", "whole number"),
        ([{"op": "ad", "path": "plan", "value": 1}], "changes[0].op", "did you mean 'add'?"),
        ([{"op": "add", "path": "plan", "value": "x"}], "changes[0].path", "add needs a list field"),
        ([{"op": "remove", "path": "current_medications", "value": "enbrel"}], "changes[0].value", "no item of current_medications matches"),
        ([{"op": "remove", "path": "medication_history[9]"}], "changes[0].path", "no entry 9"),
        ([{"op": "set", "path": "dose", "value": 1}], "changes[0].path", "unknown field 'dose'"),
        ([{"op": "set", "path": "plan"}], "changes[0].value", "missing value"),
        (["plan=x"], "changes[0]", "expected a change object"),
    ],
)
def test_invalid_changes_get_the_same_clear_error(changes, path, words):
    with pytest.raises(CaseError) as info:
        what_if(ADALIMUMAB_ONCE, changes)
    assert info.value.path == path
    assert words in info.value.message


def test_apply_changes_keeps_the_original(kb):
    from kineret_asp import load_case

    case = load_case(ADALIMUMAB_ONCE)
    changed = apply_changes(case, [Change.add("prescriber_specialties", "genetics")], kb)
    assert case.prescriber_specialties == ("rheumatology",)
    assert changed.prescriber_specialties == ("rheumatology", "genetics")


@pytest.mark.slow
def test_what_if_command_text_and_json():
    runner = CliRunner()
    result = runner.invoke(main, ["what-if", str(ADALIMUMAB_ONCE), "--add", 'medication_history={"drug": "rinvoq", "outcome": "intolerance"}', "--set", "plan=individual_family"])
    assert result.exit_code == 0, result.output
    assert "Before: CRITERIA NOT MET" in result.output and "After:  APPROVED for up to 12 months" in result.output
    assert "3.C.E  unmet -> met" in result.output
    result = runner.invoke(main, ["what-if", str(ADALIMUMAB_ONCE), "--remove", "prescriber_specialties=rheumatology", "--format", "json"])
    data = json.loads(result.output)
    assert data["before"]["decision"] == "criteria_not_met" and data["after"]["decision"] == "criteria_not_met"
    assert [(f["id"], f["before"], f["after"]) for f in data["flipped"]] == [("3.B", True, False)]
    assert data["flipped"][0]["text"].startswith("Medication is prescribed by, or in consultation with, a rheumatologist")


def test_what_if_command_bad_change_exits_2():
    result = CliRunner().invoke(main, ["what-if", str(ADALIMUMAB_ONCE), "--add", "current_medications=enbrl"])
    assert result.exit_code == 2
    assert "current_medications[0]: unknown drug 'enbrl'" in result.output and "did you mean 'enbrel'?" in result.output


def test_a_reason_that_stops_applying_is_reported_with_the_decision_and_the_duration():
    """NOT COVERED -> APPROVED with no criterion flipping: the reason, the decision, the length and the route that changed are all named."""
    case = {"indication": "sjia", "prescriber_specialties": ["rheumatology"], "current_medications": ["enbrel"]}
    r = what_if(case, [Change.remove("current_medications", "enbrel")])
    assert r.flipped == () and r.decision_changed and r.months_changed and r.route_changed
    assert [(x.id, x.before is not None, x.after is not None) for x in r.reasons] == [("NC.2", True, False)]
    data = r.to_dict()["changed"]
    assert data["decision"] and data["authorization_months"] and data["reasons"][0]["id"] == "NC.2" and data["reasons"][0]["after"] is None
    out = CliRunner().invoke(main, ["what-if", "-", "--remove", "current_medications=enbrel"], input=json.dumps(case)).output
    assert "decision: NOT COVERED -> APPROVED" in out and "authorization: none -> 12 months" in out
    assert "- NC.2 no longer applies: Concurrent Use" in out and "(current_medications: enbrel)" in out
    swapped = CliRunner().invoke(main, ["what-if", "-", "--set", 'current_medications=["xeljanz"]'], input=json.dumps(case)).output
    assert "~ NC.2 applies for other facts: current_medications: enbrel -> current_medications: xeljanz" in swapped
    same = CliRunner().invoke(main, ["what-if", "-"], input=json.dumps(case)).output
    assert "Nothing changed" in same and "No criterion changed" not in same
