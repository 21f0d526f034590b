"""kineret-asp test: example cases with expect blocks, pass/fail diffs, coverage."""
from __future__ import annotations

import pytest
import json
import shutil

from click.testing import CliRunner

from kineret_asp.cli import main

from .conftest import FACTS, KB_DIR


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.slow
def test_every_example_passes_with_the_packaged_kb():
    result = run("test", str(FACTS), "--kb", str(KB_DIR))
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    passed = int(last.split()[0])
    assert last == f"{passed} passed, 0 failed" and passed >= 45


@pytest.mark.slow
def test_a_kb_edit_that_changes_a_decision_fails_with_a_diff(kb_copy):
    path = kb_copy / "criteria" / "4_stills_disease.lp"
    path.write_text(path.read_text().replace('accepted_specialty("4", rheumatology).', 'accepted_specialty("4", (rheumatology; dermatology)).'))
    result = run("test", str(FACTS), "--kb", str(kb_copy))
    assert result.exit_code == 1
    out = result.output
    assert "FAIL " in out and "stills/no_rheumatologist.json (stills-no-rheumatologist)" in out
    assert 'decision: expected "criteria_not_met"' in out and 'actual   "approved"' in out
    assert "- missing 4" in out
    assert out.strip().splitlines()[-1].endswith("passed, 1 failed")


def test_coverage_counts_met_and_unmet_per_criterion(tmp_path):
    only = tmp_path / "cases"
    only.mkdir()
    shutil.copy(FACTS / "stills" / "approved.json", only)
    shutil.copy(FACTS / "sjia" / "approved.json", only / "sjia.json")
    result = run("test", str(only), "--coverage")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    stills = next(l for l in lines if l.strip().startswith("4 "))
    assert "met   1  unmet   0" in stills and "not exercised both ways" in stills
    summary = next(l for l in lines if "criteria exercised both ways" in l)
    assert summary.startswith("0 of 27 criteria exercised both ways; not both ways: 1, 1.A,")
    data = json.loads(run("test", str(only), "--coverage", "--format", "json").output)
    by_id = {c["id"]: c for c in data["coverage"]["criteria"]}
    assert by_id["4"] == {"id": "4", "met": 1, "unmet": 0} and by_id["5"] == {"id": "5", "met": 1, "unmet": 0}
    assert "4" in data["coverage"]["not_exercised_both_ways"]
    assert data["passed"] == 2 and data["failed"] == 0


def test_full_coverage_of_the_examples():
    data = json.loads(run("test", str(FACTS), "--coverage", "--format", "json").output)
    assert data["coverage"]["not_exercised_both_ways"] == []


def test_bad_expect_block_and_bad_case_are_failures(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"indication": "sjia", "expect": {"decison": "approved"}}))
    (tmp_path / "b.json").write_text(json.dumps({"indication": "sjiaa", "expect": {"decision": "approved"}}))
    result = run("test", str(tmp_path))
    assert result.exit_code == 1
    assert "expect.decison: unknown expectation; did you mean 'decision'?" in result.output
    assert "indication: unknown indication 'sjiaa'" in result.output
    assert result.output.strip().endswith("0 passed, 2 failed")


def test_no_case_with_an_expect_block_is_an_error(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"indication": "sjia"}))
    result = run("test", str(tmp_path))
    assert result.exit_code == 2 and "no case with an expect block" in result.output
