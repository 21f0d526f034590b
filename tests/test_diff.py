"""kineret-asp diff: which cases a KB edit changes, and none for an unchanged copy."""
from __future__ import annotations

import pytest
import json
from pathlib import Path

from click.testing import CliRunner

from kineret_asp import evaluate
from kineret_asp.cli import main
from kineret_asp.diff import diff

from .conftest import KB_DIR

TABLE = Path("tables") / "non_preferred_products.lp"


def replace_line(path: Path, startswith: str, new: str) -> None:
    lines = path.read_text().splitlines()
    hits = [i for i, line in enumerate(lines) if line.startswith(startswith)]
    assert len(hits) == 1, startswith
    lines[hits[0]] = new
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_unchanged_copy_has_no_decision_changes(kb_copy):
    assert diff(KB_DIR, kb_copy).classes == []
    result = CliRunner().invoke(main, ["diff", str(KB_DIR), str(kb_copy)])
    header, rest = result.output.split("\n", 1)
    assert result.exit_code == 0 and rest == "no decision changes\n"
    assert header == f"IP0243 2024-06-01.. ({KB_DIR / 'policies/IP0243/2024-06-01'}) -> IP0243 2024-06-01.. ({kb_copy})"  # which KBs were compared


@pytest.mark.slow  # a diff over the case space (about 2 s); the fast lane keeps the broken-KB diff and the versions' diff errors
def test_removing_enbrel_from_the_employer_group_table(kb_copy):
    replace_line(kb_copy / TABLE, 'non_preferred_row(employer_group, "3.C", "3.C.D", enbrel,', "")
    report = diff(KB_DIR, kb_copy)
    assert len(report.classes) == 2
    for c in report.classes:
        assert (c.indication, c.plan, c.old, c.new) == ("rheumatoid_arthritis", "employer_group", "approved", "criteria_not_met")
        ids = {f["id"]: (f["old"], f["new"]) for f in c.flipped}
        assert ids["3.C.D"] == ("met", None) and ids["3.C"] == ("met", "unmet")
        example = c.example
        assert "enbrel" in {e["drug"] for e in example["medication_history"]}
        assert evaluate(example, KB_DIR).decision == "approved"
        assert evaluate(example, kb_copy).decision == "criteria_not_met"
    assert {c.request for c in report.classes} == {"initial", "continuation"}


@pytest.mark.slow
def test_asking_for_one_product_in_individual_family_plans(kb_copy):
    replace_line(kb_copy / TABLE, "non_preferred_criteria(individual_family,", 'non_preferred_criteria(individual_family, rheumatoid_arthritis, "3.C", 1, "Individual and Family Plan: Documentation of failure, contraindication or intolerance to ONE of the following").')
    report = diff(KB_DIR, kb_copy)
    assert report.classes
    for c in report.classes:
        assert (c.indication, c.plan, c.old, c.new) == ("rheumatoid_arthritis", "individual_family", "criteria_not_met", "approved")
        assert evaluate(c.example, kb_copy).decision == "approved"
        assert len({e["drug"] for e in c.example["medication_history"]}) <= 2


@pytest.mark.slow
def test_diff_command_text_and_json(kb_copy):
    replace_line(kb_copy / TABLE, 'non_preferred_row(employer_group, "3.C", "3.C.D", enbrel,', "")
    runner = CliRunner()
    text = runner.invoke(main, ["diff", str(KB_DIR), str(kb_copy)]).output
    assert text.split("\n", 1)[1].startswith("2 class(es) of cases change decision, in 2 kind(s) of change:\n")
    assert "\napproved -> criteria_not_met (criteria: 3 met -> unmet, 3.C met -> unmet, 3.C.D met -> n/a [D. Enbrel [requires prior authorization]])\n" in text
    assert "\n  1. Rheumatoid Arthritis, initial authorization, Employer Group Plans\n" in text
    data = json.loads(runner.invoke(main, ["diff", str(KB_DIR), str(kb_copy), "--format", "json"]).output)
    assert data["changes"] == 2 and all(c["example"]["plan"] == "employer_group" for c in data["classes"])
    assert data["classes"][0]["label"] == "Rheumatoid Arthritis, initial authorization, Employer Group Plans: approved -> criteria_not_met (criteria: 3 met -> unmet, 3.C met -> unmet, 3.C.D met -> n/a [D. Enbrel [requires prior authorization]])"


def test_diff_with_a_broken_kb_exits_2(kb_copy):
    (kb_copy / "policy.lp").write_text("policy(")
    result = CliRunner().invoke(main, ["diff", str(KB_DIR), str(kb_copy)])
    assert result.exit_code == 2 and "policy.lp:" in result.output
