"""kineret-asp verify: properties over the KB's case space, with counterexamples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kineret_asp import evaluate
from kineret_asp.author.verify import verify_kb
from kineret_asp.cli import main

from ..conftest import KB_DIR

PROPERTIES = {
    "one_decision",
    "criteria_both_ways",
    "approvable",
    "monotonic",
    "continuation_needs_initial",
    "undetermined_never_approved",
    "non_biologic_co_medication",
    "evidence_agrees",
    "met_shows_evidence",
    "reauthorization_covered_only",
}


def append(path: Path, text: str) -> None:
    path.write_text((path.read_text() if path.exists() else "") + "\n" + text + "\n")


def by_name(results):
    return {r.name: r for r in results}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def criterion(decision, cid: str) -> dict:
    """A criterion of a decision's tree, by id."""
    nodes = list(decision.to_dict()["criteria"])
    while nodes:
        node = nodes.pop()
        if node["id"] == cid:
            return node
        nodes.extend(node["children"])
    raise KeyError(cid)


def statuses(node: dict) -> list[str]:
    return [e["status"] for e in node["evidence"]]


def test_every_property_holds_for_the_packaged_kb():
    results = by_name(verify_kb(KB_DIR))
    assert set(results) == PROPERTIES
    assert all(r.holds for r in results.values()), {n: (r.counterexample, r.missing_witnesses) for n, r in results.items()}


@pytest.mark.slow
def test_monotonicity_violation_gives_a_reproducible_counterexample(kb_copy):
    append(kb_copy / "conditions_not_covered.lp", "% § NC.2 - a wrong reading: csDMARDs excluded too\nconcurrent_biologic_or_tsdmard(D) :- case_current_medication(D), csdmard(D).")
    r = by_name(verify_kb(kb_copy))["monotonic"]
    assert not r.holds
    a, b = r.counterexample["a"], r.counterexample["b"]
    assert evaluate(a, kb_copy).decision == "approved" and evaluate(b, kb_copy).decision != "approved"
    added = set(b["current_medications"]) - set(a["current_medications"])
    assert added and added <= {"methotrexate"}
    assert by_name(verify_kb(kb_copy))["one_decision"].holds


@pytest.mark.slow
def test_an_approval_over_an_undetermined_drug_is_caught(kb_copy):
    decision = kb_copy.parents[2] / "framework" / "decision.lp"
    edit(decision, "    not is_other_policy,\n    not is_undetermined.", "    not is_other_policy.")  # is_approved forgets the undetermined facts
    r = by_name(verify_kb(kb_copy))["undetermined_never_approved"]
    assert not r.holds
    case = r.counterexample["a"]
    assert "zorbitrex" in case["current_medications"] and not by_name(verify_kb(kb_copy))["one_decision"].holds


@pytest.mark.slow
def test_a_non_biologic_read_as_concurrent_use_is_caught(kb_copy):
    append(kb_copy / "conditions_not_covered.lp", '% § NC.2 - a wrong reading: any drug the KB classes excludes\nnot_covered_reason("NC.2") :- case_current_medication(D), category_of(D, other).')
    r = by_name(verify_kb(kb_copy))["non_biologic_co_medication"]
    assert not r.holds
    case = r.counterexample["a"]
    assert set(case["current_medications"]) <= {"methotrexate", "prednisone", "zorbitrex"}
    assert evaluate(case, kb_copy).decision == "not_covered"


@pytest.mark.slow
def test_approved_and_not_covered_at_once_is_caught(kb_copy):
    append(kb_copy / "wrong.lp", "% § wrong: osteoarthritis approved by a rheumatologist\nis_approved :- case_indication(osteoarthritis), case_specialty(rheumatology).")
    results = by_name(verify_kb(kb_copy))
    one = results["one_decision"]
    assert not one.holds
    case = one.counterexample["a"]
    assert case["indication"] == "osteoarthritis" and "rheumatology" in case["prescriber_specialties"]
    assert not results["approvable"].holds and results["approvable"].counterexample["a"]["indication"] == "osteoarthritis"


@pytest.mark.slow
def test_a_criterion_that_can_never_be_met(kb_copy):
    path = kb_copy / "criteria" / "1_caps.lp"
    path.write_text(
        path.read_text().replace(
            'accepted_specialty("1.B", (rheumatology; genetics; dermatology)).', 'accepted_specialty("1.B", rheumatology) :- case_specialty(genetics), not case_specialty(genetics).'
        )
    )
    results = by_name(verify_kb(kb_copy))
    assert results["criteria_both_ways"].missing_witnesses == ['met("1")', 'met("1.B")']
    assert results["approvable"].missing_witnesses == ['approvable("1")']
    assert results["monotonic"].holds


@pytest.mark.slow
def test_continuation_without_initial_criteria_is_caught(kb_copy):
    append(kb_copy / "wrong.lp", "% § wrong: a response alone renews\nis_approved :- requested(continuation), case_beneficial_response, not is_not_covered, not is_other_policy.")
    r = by_name(verify_kb(kb_copy))["continuation_needs_initial"]
    assert not r.holds
    assert r.decisions == {"a": "approved", "b": "criteria_not_met"}
    assert r.counterexample["a"]["request"] == "continuation" and r.counterexample["b"]["request"] == "initial"


@pytest.mark.slow
def test_authors_can_add_their_own_property(kb_copy):
    (kb_copy / "properties" / "sjia_needs_rheumatology.lp").write_text(
        "#program property.\n\n"
        "% § 5 - an author's own property: SJIA is never approved without a rheumatologist\n"
        'property("sjia_needs_rheumatology", "SJIA is never approved without a rheumatologist.").\n'
        "copy(a).\n"
        "counterexample :- case_indication(a, sjia), decision(a, approved), not case_specialty(a, rheumatology).\n"
    )
    (kb_copy / "properties" / "stills_never_approved.lp").write_text(
        "#program property.\n\n"
        "% § 4 - a false claim, to see it fail\n"
        'property("stills_never_approved", "Still\'s disease is never approved.").\n'
        "copy(a).\n"
        "counterexample :- case_indication(a, stills_disease), decision(a, approved).\n"
    )
    results = by_name(verify_kb(kb_copy))
    assert results["sjia_needs_rheumatology"].holds
    false_claim = results["stills_never_approved"]
    assert not false_claim.holds
    assert false_claim.counterexample["a"]["prescriber_specialties"] == ["rheumatology"]
    assert false_claim.counterexample["a"]["medication_history"] == []


@pytest.mark.slow
def test_verify_command_exit_codes_and_json(kb_copy):
    runner = CliRunner()
    ok = runner.invoke(main, ["verify"])
    assert ok.exit_code == 0 and "10 of 10 properties hold" in ok.output
    append(kb_copy / "conditions_not_covered.lp", "% § NC.2 - wrong\nconcurrent_biologic_or_tsdmard(D) :- case_current_medication(D), csdmard(D).")
    bad = runner.invoke(main, ["verify", "--kb", str(kb_copy), "--format", "json"])
    assert bad.exit_code == 1
    data = json.loads(bad.output)
    assert data["holds"] is False
    (mono,) = [p for p in data["properties"] if p["name"] == "monotonic"]
    assert mono["holds"] is False and set(mono["counterexample"]) == {"a", "b"}
    only = runner.invoke(main, ["verify", "--property", "one_decision"])
    assert only.exit_code == 0 and "1 of 1 properties hold" in only.output


# --- the evidence a decision shows agrees with the decision (framework/properties/evidence_agrees.lp, met_shows_evidence.lp)

RA = "criteria/3_rheumatoid_arthritis.lp"
EVIDENCE = ("evidence_agrees", "met_shows_evidence")


@pytest.mark.slow
def test_counted_evidence_under_an_unmet_criterion_fails_verify(kb_copy):
    """An explanation twin that drifts from its decision rule: 3.A.i's evidence counts any csDMARD failure, its decision one of 3 months."""
    edit(
        kb_copy / RA,
        'evidence_for("3.A.i", medication_history(N), counted) :- csdmard_failure_counted(N).',
        'evidence_for("3.A.i", medication_history(N), counted) :- trial(D, failure, N), csdmard(D).',
    )
    out = CliRunner().invoke(main, ["verify", "--kb", str(kb_copy)])
    assert out.exit_code == 1
    assert "FAILS  evidence_agrees" in out.output and "counterexample, copy a" in out.output and "9 of 10 properties hold" in out.output
    r = by_name(verify_kb(kb_copy, only=list(EVIDENCE)))["evidence_agrees"]
    assert not r.holds
    node = criterion(evaluate(r.counterexample["a"], kb_copy), "3.A.i")
    assert node["met"] is False and "counted" in statuses(node)


@pytest.mark.slow
def test_a_met_criterion_showing_only_evidence_that_did_not_count_fails_verify(kb_copy):
    """2.A is met by a confirmed IL1RN mutation; its evidence rule calls that test not counted."""
    edit(
        kb_copy / "criteria" / "2_dira.lp",
        'evidence_for("2.A", genetic_tests(N), counted) :- case_genetic_test(N, "IL1RN", mutation_confirmed).',
        'evidence_for("2.A", genetic_tests(N), not_counted(no_mutation_confirmed)) :- case_genetic_test(N, "IL1RN", mutation_confirmed).',
    )
    results = by_name(verify_kb(kb_copy, only=list(EVIDENCE)))
    r = results["evidence_agrees"]
    assert not r.holds and results["met_shows_evidence"].holds  # 2.A now counts nothing in any case
    node = criterion(evaluate(r.counterexample["a"], kb_copy), "2.A")
    assert node["met"] is True and statuses(node) and "counted" not in statuses(node)


@pytest.mark.slow
def test_a_fact_both_counted_and_not_counted_fails_verify(kb_copy):
    """A reason that reads every outcome as a mere trial: a failure after 3 months is then counted and not counted for 3.A.i at once."""
    edit(
        kb_copy / RA,
        'evidence_for("3.A.i", medication_history(N), not_counted(a_trial_is_not_a_failure)) :- trial(D, tried, N), csdmard(D).',
        'evidence_for("3.A.i", medication_history(N), not_counted(a_trial_is_not_a_failure)) :- trial(D, _, N), csdmard(D).',
    )
    r = by_name(verify_kb(kb_copy, only=list(EVIDENCE)))["evidence_agrees"]
    assert not r.holds
    node = criterion(evaluate(r.counterexample["a"], kb_copy), "3.A.i")
    fields = [e["field"] for e in node["evidence"]]
    assert any(fields.count(f) == 2 for f in fields) and {"counted", "not_counted"} <= set(statuses(node))


@pytest.mark.slow
def test_a_criterion_met_by_a_route_its_evidence_forgot_fails_verify(kb_copy):
    """3.A.i met because every csDMARD is contraindicated, with the rule that counts those entries gone: met, showing nothing."""
    edit(kb_copy / RA, 'evidence_for("3.A.i", medication_history(N), counted) :- trial(D, (contraindication; intolerance), N), csdmard(D), all_csdmards_excluded.\n', "")
    results = by_name(verify_kb(kb_copy, only=list(EVIDENCE)))
    r = results["met_shows_evidence"]
    assert not r.holds and results["evidence_agrees"].holds  # nothing shown is wrong; something is missing
    node = criterion(evaluate(r.counterexample["a"], kb_copy), "3.A.i")
    assert node["met"] is True and "counted" not in statuses(node)
    assert "counted" in statuses(criterion(evaluate(r.counterexample["b"], kb_copy), "3.A.i"))
