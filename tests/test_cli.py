"""The kineret-asp command: evaluate, output formats, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from kineret_asp.cli import main

from .conftest import FACTS, ROOT, cli, copy_kb

RA = str(FACTS / "ra" / "approved_employer_group.json")
NO_PLAN = str(FACTS / "ra" / "no_plan.json")


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input)


def test_evaluate_text_shows_the_tree_with_marks_and_the_policy_words():
    result = run("evaluate", RA)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "[met]   3  Rheumatoid Arthritis. Individual meets ALL of the following criteria:" in out
    assert "[unmet] 3.C.A  A. Actemra SC [requires prior authorization]" in out
    assert "Decision: APPROVED for up to 12 months" in out


def test_evaluate_text_routes_anything_else_to_a_clinical_reviewer():
    out = run("evaluate", NO_PLAN).output
    assert "Decision: CRITERIA NOT MET" in out
    assert "Route: clinical_review" in out and "not a denial" in out
    assert "The plan type is not given" in out


def test_evaluate_json_is_the_decision_format():
    result = run("evaluate", RA, "--format", "json")
    data = json.loads(result.output)
    assert list(data) == [
        "id",
        "policy",
        "effective_date",
        "indication",
        "request",
        "decision",
        "authorization_months",
        "criteria",
        "unmet",
        "blocking",
        "undetermined",
        "reasons",
        "route",
        "notes",
        "provenance",
    ]
    assert data["policy"] == "IP0243" and data["effective_date"] == "2024-06-01"
    assert data["decision"] == "approved" and data["route"] == "auto_approve"
    node = data["criteria"][0]
    assert set(node) >= {"id", "text", "met", "children"}


@pytest.mark.slow
def test_evaluate_output_is_byte_for_byte_deterministic():
    first = subprocess.run([sys.executable, "-m", "kineret_asp", "evaluate", RA, NO_PLAN, "--format", "json"], capture_output=True, cwd=ROOT)
    second = subprocess.run([sys.executable, "-m", "kineret_asp", "evaluate", RA, NO_PLAN, "--format", "json"], capture_output=True, cwd=ROOT)
    assert first.returncode == 0 and first.stdout == second.stdout
    assert len(json.loads(first.stdout)) == 2


def test_evaluate_reads_stdin():
    result = run("evaluate", "-", "--format", "json", input='{"indication": "sjia", "prescriber_specialties": ["rheumatology"]}')
    assert json.loads(result.output)["decision"] == "approved"


def test_evaluate_accepts_lp_case_files():
    result = run("evaluate", str(FACTS / "lp" / "ra_approved_facts.lp"))
    assert result.exit_code == 0 and "Decision: APPROVED" in result.output


def test_bad_case_exits_2_with_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrl", "outcome": "failure"}]}')
    proc = cli("evaluate", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "medication_history[0].drug" in proc.stderr and "did you mean 'enbrel'?" in proc.stderr


def test_invalid_json_exits_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    result = run("evaluate", str(bad))
    assert result.exit_code == 2
    assert "invalid JSON at line 1 column 2" in result.output


def test_one_bad_file_among_good_ones_still_decides_the_good_ones(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    proc = cli("evaluate", RA, str(bad))
    assert proc.returncode == 2
    assert "Decision: APPROVED" in proc.stdout
    assert "expected a JSON object" in proc.stderr


def test_broken_kb_reports_file_line_col_and_exits_2(tmp_path):
    kb = copy_kb(tmp_path)
    (kb / "policy.lp").write_text('policy("IP0243", "Anakinra").\nmet(X) :- foo(X.\n')
    result = run("evaluate", RA, "--kb", str(kb))
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and "policy.lp:2:" in line and "error" in line


def test_missing_kb_folder_exits_2(tmp_path):
    result = run("evaluate", RA, "--kb", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert "KB folder does not exist" in result.output
