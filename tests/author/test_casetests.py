"""kineret-asp test: example cases with expect blocks, pass/fail diffs, coverage."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from kineret_asp.cli import main

from ..conftest import FACTS, KB_DIR


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
    assert "stills/other_specialists_only.json (stills-other-specialists)" in out  # the example that pins the cell's absence
    assert out.strip().splitlines()[-1].endswith("passed, 2 failed")


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


@pytest.mark.slow
def test_coverage_is_counted_per_version(tmp_path):
    """A criterion id is a version's own: each version's block counts only the cases that version decided."""
    from kineret_asp.author.new_version import new_version

    root = tmp_path / "kb"
    shutil.copytree(KB_DIR, root)
    new_version("IP0243", "2025-01-01", root)
    # the versions' cases/ folders named (the tables' pinning, a mutation run of each version, is not measured then)
    cases = [str(root / "policies" / "IP0243" / v / "cases") for v in ("2024-06-01", "2025-01-01")]
    alone = json.loads(run("test", cases[0], "--coverage", "--format", "json", "--kb", str(root / "policies" / "IP0243" / "2024-06-01")).output)["coverage"]
    both = json.loads(run("test", *cases, "--coverage", "--format", "json", "--kb", str(root)).output)["coverage"]
    assert [v["folder"] for v in both["versions"]] == ["policies/IP0243/2024-06-01", "policies/IP0243/2025-01-01"]
    for block in both["versions"]:
        assert block["criteria"] == alone["criteria"]  # the copied cases, each counted once, by its own version
    assert all(row["version"] for row in both["criteria"]) and len(both["criteria"]) == 2 * len(alone["criteria"])
    text = run("test", *cases, "--coverage", "--kb", str(root)).output
    assert "IP0243 2024-06-01..2024-12-31 (policies/IP0243/2024-06-01)" in text and "IP0243 2025-01-01.. (policies/IP0243/2025-01-01)" in text
    assert text.count("criteria exercised both ways") == 2


def test_criteria_are_listed_by_id_within_their_parent_written_or_derived(kb_copy):
    """A table's derived rows (3.C.A ...) stand under their parent, in id order, whatever order the table writes them in."""
    from kineret_asp import load_kb
    from kineret_asp.knowledge.vocabulary import outline_key

    path = kb_copy / "tables" / "non_preferred_products.lp"
    lines = path.read_text().splitlines()
    rows = [i for i, line in enumerate(lines) if line.startswith("non_preferred_row(employer_group")]
    block = [lines[i] for i in rows]
    for i, line in zip(rows, reversed(block)):  # rows F ... A
        lines[i] = line
    path.write_text("\n".join(lines) + "\n")
    order = list(load_kb(kb_copy).vocabulary.criteria)
    assert order.index("3.C") == order.index("3.B") + 1 and order.index("3.C.F") < order.index("4") < order.index("R")
    assert order[order.index("3.C.A") : order.index("3.C.F") + 1] == ["3.C.A", "3.C.B", "3.C.C", "3.C.D", "3.C.E", "3.C.F"]
    assert sorted(["3.C.ii", "R", "3.C.x", "10", "3.C.i", "3", "3.C.iv"], key=outline_key) == ["3", "3.C.i", "3.C.ii", "3.C.iv", "3.C.x", "10", "R"]
    listed = [l.split()[0] for l in run("test", str(FACTS), "--coverage", "--kb", str(kb_copy)).output.splitlines() if l.startswith("  ") and " met " in l]
    assert listed == order


# --- blocking, unmet_includes, and test --update ------------------------------------------------


def _case(tmp_path, name: str, case: dict):
    path = tmp_path / name
    path.write_text(json.dumps(case, indent=2) + "\n")
    return path


def test_expect_may_give_blocking_or_a_subset_of_unmet_instead_of_the_full_list(tmp_path):
    """An example says what it is about: the criteria that block it, or some of the unmet ones, not every row a revision may add."""
    ra = {
        "indication": "rheumatoid_arthritis",
        "plan": "employer_group",
        "prescriber_specialties": ["rheumatology"],
        "medication_history": [{"drug": "methotrexate", "outcome": "failure", "months": 4}],
    }
    _case(tmp_path, "blocking.json", {**ra, "expect": {"decision": "criteria_not_met", "blocking": ["3.C"]}})
    _case(tmp_path, "includes.json", {**ra, "expect": {"unmet_includes": ["3.C", "3.C.A"]}})
    assert run("test", str(tmp_path)).exit_code == 0
    _case(tmp_path, "wrong.json", {**ra, "expect": {"blocking": ["3.A.ii"], "unmet_includes": ["3.A.i", "3.C"]}})
    result = run("test", str(tmp_path))
    assert result.exit_code == 1
    assert 'blocking: expected ["3.A.ii"]' in result.output and 'actual   ["3.C"]' in result.output
    assert 'unmet_includes: expected ["3.A.i", "3.C"]' in result.output and "- missing 3.A.i" in result.output


def _shorter_approvals(kb_root):
    path = kb_root / "policies" / "IP0243" / "2024-06-01" / "reauthorization.lp"
    path.write_text(path.read_text().replace("authorization_duration(initial, 12).", "authorization_duration(initial, 6)."))


@pytest.mark.slow
def test_update_yes_rewrites_only_the_expect_blocks_and_a_second_run_changes_nothing(tmp_path):
    root = tmp_path / "kb"
    shutil.copytree(KB_DIR, root)
    _shorter_approvals(root)
    cases = sorted((root / "policies" / "IP0243" / "2024-06-01" / "cases").rglob("*.json"))
    before = {p: p.read_text() for p in cases}
    assert run("test", "--kb", str(root)).exit_code == 1
    result = run("test", "--update", "--yes", "--kb", str(root))
    assert result.exit_code == 0, result.output
    assert "UPDATE " in result.output and '-  "authorization_months": 12' in result.output and '+  "authorization_months": 6' in result.output
    changed = [p for p in cases if p.read_text() != before[p]]
    assert changed and result.output.count("UPDATE ") == len(changed)
    for p in changed:
        old, new = json.loads(before[p]), json.loads(p.read_text())
        assert {k: v for k, v in old.items() if k != "expect"} == {k: v for k, v in new.items() if k != "expect"}
        assert new["expect"]["authorization_months"] == 6 and list(new["expect"]) == list(old["expect"])
        assert before[p].split('"expect"')[0] == p.read_text().split('"expect"')[0]  # every byte before the block kept
    assert run("test", "--kb", str(root)).exit_code == 0
    after = {p: p.read_text() for p in cases}
    again = run("test", "--update", "--yes", "--kb", str(root))
    assert again.exit_code == 0 and "UPDATE " not in again.output
    assert {p: p.read_text() for p in cases} == after


def test_update_never_touches_a_case_whose_input_fails_validation(tmp_path):
    good = _case(tmp_path, "good.json", {"indication": "sjia", "prescriber_specialties": ["rheumatology"], "expect": {"decision": "criteria_not_met"}})
    bad = _case(tmp_path, "bad.json", {"indication": "sjiaa", "expect": {"decision": "criteria_not_met"}})
    bad_text = bad.read_text()
    result = run("test", str(tmp_path), "--update", "--yes")
    assert result.exit_code == 1
    assert bad.read_text() == bad_text and "unknown indication 'sjiaa'" in result.output
    assert json.loads(good.read_text())["expect"] == {"decision": "approved"}
    assert "1 expect block(s) written, 1 failing case(s) left as they were" in result.output


def test_update_asks_for_each_block_at_a_terminal_and_writes_only_what_is_agreed(tmp_path, monkeypatch):
    from kineret_asp.author import example_cases as casetests

    first = _case(tmp_path, "a.json", {"indication": "sjia", "prescriber_specialties": ["rheumatology"], "expect": {"decision": "criteria_not_met"}})
    second = _case(tmp_path, "b.json", {"indication": "stills_disease", "prescriber_specialties": ["rheumatology"], "expect": {"decision": "not_covered"}})
    texts = (first.read_text(), second.read_text())
    monkeypatch.setattr(casetests, "_is_terminal", lambda: True)
    result = CliRunner().invoke(main, ["test", str(tmp_path), "--update"], input="y\nn\n")
    assert result.exit_code == 1, result.output
    assert result.output.count("Write this expect block to") == 2 and '+  "decision": "approved"' in result.output
    assert json.loads(first.read_text())["expect"] == {"decision": "approved"} and second.read_text() == texts[1]
    assert "1 expect block(s) written, 1 failing case(s) left as they were" in result.output
    monkeypatch.setattr(casetests, "_is_terminal", lambda: False)
    shown = run("test", str(tmp_path), "--update")
    assert shown.exit_code == 1 and "UPDATE " in shown.output and "nothing was written" in shown.output and second.read_text() == texts[1]
