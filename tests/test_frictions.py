"""The small frictions a reviewer met trying the tool as a new user, each with its own test."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from kineret_asp import evaluate
from kineret_asp.cli import main
from kineret_asp.decisions.decision import verdict
from kineret_asp.errors import CaseError
from kineret_asp.explain.whatif import render_what_if, what_if

from .conftest import FACTS, KB_DIR, ra_case

APPROVED_RA = [{"drug": "methotrexate", "outcome": "failure", "months": 4}, {"drug": "cimzia", "outcome": "failure"}, {"drug": "enbrel", "outcome": "intolerance"}]


def cli(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input)


def test_an_unknown_specialty_is_another_specialty_that_meets_nothing():
    d = evaluate(ra_case(APPROVED_RA, prescriber_specialties=["family_medicine"]), KB_DIR)
    assert d.decision == "criteria_not_met" and d.blocking == ("3.B",)
    shown = [e for n in d.criteria for c in n.walk() for e in c.evidence if e.field == "prescriber_specialties[0]"]
    assert [(e.value, e.status) for e in shown] == [("family_medicine", "not_counted")]
    # beside a rheumatologist it changes nothing: never an approval a known specialty would not get, nor a refusal
    assert evaluate(ra_case(APPROVED_RA, prescriber_specialties=["family_medicine", "rheumatology"]), KB_DIR).decision == "approved"
    assert evaluate(ra_case(APPROVED_RA, prescriber_specialties=["dermatology"]), KB_DIR).to_dict()["blocking"] == d.to_dict()["blocking"]


def test_a_mistyped_specialty_key_is_still_refused_with_the_key_suggested():
    with pytest.raises(CaseError, match="did you mean 'rheumatology'"):
        evaluate(ra_case(APPROVED_RA, prescriber_specialties=["rheumatolgy"]), KB_DIR)


@pytest.mark.parametrize(
    "written, key",
    [("RA", "rheumatoid_arthritis"), ("AOSD", "stills_disease"), ("SJIA", "sjia"), ("Muckle-Wells", "muckle_wells"), ("NOMID", "nomid"), ("FCAS", "fcas"), ("CINCA", "cinca"), ("CAPS", "caps")],
)
def test_common_abbreviations_of_indications_are_read_as_their_keys(written, key):
    assert evaluate({"indication": written}, KB_DIR).indication == key


def test_a_case_error_says_how_many_more_problems_it_found():
    with pytest.raises(CaseError) as caught:
        evaluate({"indication": "rheumatoid_arthritis", "plan": "x", "medication_history": [{"drug": "methotrexate"}], "request": "y"}, KB_DIR)
    assert len(caught.value.errors) == 3
    assert str(caught.value).startswith(caught.value.errors[0].line()) and str(caught.value).endswith(" (+2 more)")
    assert caught.value.lines()[0] == caught.value.errors[0].line()  # each line as before


def test_evaluate_jsonl_writes_one_object_per_line_whatever_the_number_of_cases():
    one = cli("evaluate", str(FACTS / "ra" / "no_plan.json"), "--format", "jsonl")
    two = cli("evaluate", str(FACTS / "ra" / "no_plan.json"), str(FACTS / "ra" / "approved_employer_group.json"), "--format", "jsonl")
    assert one.exit_code == two.exit_code == 0
    assert [json.loads(line)["id"] for line in one.output.splitlines()] == ["ra-no-plan"]
    assert [json.loads(line)["id"] for line in two.output.splitlines()] == ["ra-no-plan", "ra-approved-eg"]
    assert json.loads(cli("evaluate", str(FACTS / "ra" / "no_plan.json"), "--format", "json").output)["id"] == "ra-no-plan"  # json as it was


def test_the_packaged_kb_is_named_relative_to_the_project_in_records(tmp_path):
    d = evaluate(ra_case(APPROVED_RA), KB_DIR)
    assert d.provenance.kb == "kb" and str(KB_DIR) not in d.to_json()
    text = cli("evaluate", str(FACTS / "ra" / "no_plan.json")).output
    assert "KB: kb (policies/IP0243/2024-06-01)" in text and str(KB_DIR) not in text


def test_the_fhir_note_for_words_without_a_code_reads_as_a_sentence(tmp_path):
    bundle = json.loads((FACTS / "fhir" / "ra_approved.json").read_text())
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Condition":
            entry["resource"]["code"] = {"text": "Zzyzx wobble syndrome"}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    notes = [n.text for n in evaluate(path, KB_DIR).notes]
    assert "'Zzyzx wobble syndrome' has no code of a known system, and the KB's code tables cannot place its words; it counts for nothing" in notes
    assert not any("system code" in n for n in notes)


def test_a_count_of_one_takes_the_kbs_singular_words(kb):
    v = kb.vocabulary
    assert v.counted("months", 1, months=1) == "1 month" and v.counted("months", 12, months=12) == "12 months"
    one = dataclasses.replace(evaluate(ra_case(APPROVED_RA), KB_DIR), authorization_months=1)
    assert verdict(one, v) == "APPROVED for up to 1 month"
    page = cli("missing", str(FACTS / "ra" / "no_plan.json")).output
    assert "1 option; it is enough on its own:" in page and "option(s)" not in page


def test_what_if_reports_what_changed_and_never_says_no_criterion_changed_when_the_decision_flips(kb):
    answer = what_if(FACTS / "not_covered" / "concurrent_biologic.json", [{"op": "remove", "path": "current_medications", "value": "enbrel"}], KB_DIR)
    text = render_what_if(answer, kb)
    assert "decision: NOT COVERED -> APPROVED" in text and "authorization: none -> 12 months" in text and "- NC.2 no longer applies" in text
    assert "No criterion changed" not in text
    settled = what_if(FACTS / "drugs" / "unclassed_current_drug.json", [{"op": "remove", "path": "current_medications", "value": "zorbitrex"}], KB_DIR)
    text = render_what_if(settled, kb)
    assert "blocking: NC.2 -> none" in text and "settled: NC.2 (current_medications[1]) Is zorbitrex" in text
    assert settled.to_dict()["changed"]["blocking"] is True and settled.to_dict()["changed"]["undetermined"] is True


def test_batch_progress_gives_total_percent_rate_and_time_left_for_a_file_and_the_summary_shows_the_first_errors(tmp_path, kb):
    import io

    from kineret_asp.batch.run import Progress, count_lines

    shown = io.StringIO()
    bar = Progress(True, shown, total=200, words=lambda: kb.vocabulary)
    assert bar.line(50, 2.0) == "kineret-asp batch: 50 of 200 cases (25%), 25 cases/s, about 0:06 left"
    assert Progress(True, shown, words=lambda: kb.vocabulary).line(50, 2.0) == "kineret-asp batch: 50 cases, 25 cases/s"  # stdin: no total
    good = json.dumps(ra_case(APPROVED_RA))
    bad = ["not json", json.dumps({"id": "typo", "indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrl", "outcome": "failure"}]})]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([good, bad[0], good, bad[1], good, "[1]", "{}"]))  # no newline after the last line: still a line
    with open(src, "rb") as f:
        assert count_lines(f) == 7 and f.tell() == 0
    result = CliRunner().invoke(main, ["batch", str(src), "-o", str(tmp_path / "out.jsonl"), "--progress", "--allow-errors", "--time-limit", "30"])
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "\rkineret-asp batch: 7 of 7 cases (100%), " in err and " cases/s, about 0:00 left" in err
    summary = err[err.index("records (") - 20 :].splitlines()
    first = summary.index("kineret-asp batch: the first 3 of 4 errors:")
    assert summary[first + 1].startswith(f"  {src}:2: ") and "enbrl" in summary[first + 2] and summary[first + 3].startswith(f"  {src}:6: ")
    assert len(summary) == first + 4  # three lines, not every error


def test_missing_opens_with_what_the_policy_requires_for_the_cases_indication_before_the_options(kb):
    from kineret_asp.explain.missing import missing, render_missing

    text = render_missing(missing({"id": "open", "indication": "RA"}, KB_DIR), kb)
    lines = text.splitlines()
    opening = lines.index("What IP0243 requires for this case:")
    options = next(n for n, line in enumerate(lines) if line.endswith("options, smallest first; each is enough on its own:"))
    assert lines[opening - 1] == "Case open: criteria not met" and opening < options
    rows = lines[opening + 1 : options - 1]
    assert rows[0].startswith("  3  Rheumatoid Arthritis. Individual meets ALL") and rows[0].endswith("(unmet)")
    assert [r.split()[0] for r in rows] == ["3", "3.A", "3.A.i", "3.A.ii", "3.B", "3.C"] and lines[options - 1] == ""
    # a met ONE-of's unused row reads as not needed, not as a failure
    almost = render_missing(missing(ra_case(APPROVED_RA[:1], prescriber_specialties=["dermatology"]), KB_DIR), kb)
    assert "    3.A  Documentation of ONE of the following: (met)" in almost and "3.A.ii  Already tried" in almost
    assert next(line for line in almost.splitlines() if "3.A.ii" in line).endswith("(not needed)")
    assert next(line for line in almost.splitlines() if line.startswith("    3.B")).endswith("(unmet)")
    assert "requires" not in render_missing(missing(ra_case(APPROVED_RA), KB_DIR), kb)  # approved: nothing to require
    counted = render_missing(missing(FACTS / "ra" / "adalimumab_brands_count_once.json", KB_DIR), kb)
    assert "(unmet; 1 of 2 required products documented)" in counted  # a TWO-of says how many of its rows are documented
