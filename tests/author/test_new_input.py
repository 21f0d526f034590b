"""A new input is a KB change only: the edit of docs/authoring.md's "Adding an input", made and used end to end.

The five `.lp` edits are read from the guide itself (so the guide is the
recipe that is tested); every command of the package must then work with the
new field: evaluate (JSON and .lp), what-if, missing, check, verify, diff,
batch and schema case.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from kineret_asp import CaseError, evaluate, evaluate_many, load_case, load_kb, what_if
from kineret_asp.author.check import check_kb
from kineret_asp.author.diff import diff
from kineret_asp.author.json_schemas import json_schema
from kineret_asp.author.verify import verify_kb
from kineret_asp.batch.run import batch_evaluate
from kineret_asp.cases.changes import Change
from kineret_asp.explain.missing import missing, render_missing

from ..conftest import KB_DIR, ROOT, VERSION, copy_kb, revise_source
from ..conftest import cli as run_cli

GUIDE = ROOT / "docs" / "authoring.md"
SECTION = "## Adding an input"
FIELD, ATOM = "disease_duration_months", "case_disease_duration"
EDIT = re.compile(r"`(policies/[^`]+\.lp)` \((append|replace the file)\):\n\n```\n(.*?)```", re.S)


def section(title: str = SECTION) -> str:
    text = GUIDE.read_text()
    assert title in text, f"docs/authoring.md has no section {title!r}"
    rest = text.split(title, 1)[1]
    return rest.split("\n## ", 1)[0]


def guide_edits() -> list[tuple[str, str, str]]:
    """The guide's edits: (path in the tree, append or replace, text)."""
    return [(m.group(1), m.group(2), m.group(3)) for m in EDIT.finditer(section())]


SOURCE_EDIT = re.compile(r"`(policies/[^`]+\.txt)` \(replace the line `([^`]+)`\):\n\n```\n(.*?)```", re.S)


def apply_guide_edits(root: Path) -> None:
    for rel, old, text in SOURCE_EDIT.findall(section()):
        revise_source((root / rel).parents[1], old, text.rstrip("\n"))
    for rel, mode, text in guide_edits():
        path = root / rel
        assert path.is_file(), f"the guide edits {rel}, which the KB does not have"
        path.write_text(text if mode != "append" else path.read_text() + "\n" + text)


@pytest.fixture(scope="module")
def edited(tmp_path_factory) -> Path:
    """A copy of the KB tree with the guide's edits: its root."""
    version = copy_kb(tmp_path_factory.mktemp("new-input"))
    root = version.parents[2]
    apply_guide_edits(root)
    return root


def stills(months=None, **more) -> dict:
    case = {"indication": "stills_disease", "prescriber_specialties": ["rheumatology"], **more}
    if months is not None:
        case[FIELD] = months
    return case


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd)


def test_the_guide_makes_five_lp_edits_and_the_package_does_not_name_the_field(edited):
    edits = guide_edits()
    assert [Path(rel).name for rel, _, _ in edits] == ["inputs.lp", "4_stills_disease.lp", "documentation.lp", "space.lp", "fhir.lp"]
    assert all(rel.startswith(str(VERSION)) for rel, _, _ in edits)
    package = "\n".join(p.read_text() for p in (ROOT / "kineret_asp").rglob("*.py"))
    assert FIELD not in package and ATOM not in package
    assert FIELD not in load_kb(KB_DIR).schema.by_name and FIELD in load_kb(edited).schema.by_name


@pytest.mark.slow  # check on a KB copy (0.8 s)
def test_check_is_clean_with_the_new_input(edited):
    report = check_kb(edited)
    assert (report.errors, report.warnings) == (0, 0), [str(d) for d in report.diagnostics]


def test_evaluate_json_reads_the_new_field(edited):
    short, enough, absent = evaluate(stills(5), edited), evaluate(stills(6), edited), evaluate(stills(), edited)
    assert (short.decision, short.unmet) == ("criteria_not_met", ("4", "4.B"))
    assert enough.decision == "approved" and enough.met("4.B")
    assert absent.unmet == ("4", "4.B")
    # the resident engine and the chunk engine agree on the new input
    cases = [stills(m) for m in (0, 5, 6, 7, 1200)]
    assert [d.to_dict() for d in evaluate_many(cases, edited)] == [evaluate(c, edited).to_dict() for c in cases]
    out = cli("evaluate", "-", "--kb", str(edited), "--format", "json")
    assert out.returncode == 2  # no stdin: not a case, one line
    path = edited / "stills.json"
    path.write_text(json.dumps(stills(9)))
    out = cli("evaluate", str(path), "--kb", str(edited), "--format", "json")
    assert out.returncode == 0 and json.loads(out.stdout)["decision"] == "approved"


def test_a_value_out_of_range_is_refused_in_json_and_lp(edited, tmp_path):
    with pytest.raises(CaseError) as err:
        load_case(stills(1201), edited)
    assert err.value.lines() == [f"<dict>: {FIELD}: expected a whole number from 0 to 1200, got 1201"]
    lp = tmp_path / "bad.lp"
    lp.write_text(f"case_indication(stills_disease).\n{ATOM}(1201).\n")
    out = cli("evaluate", str(lp), "--kb", str(edited))
    assert out.returncode == 2 and out.stderr.strip() == f"kineret-asp: {lp}:2:1: {FIELD}: expected a whole number from 0 to 1200, got 1201"


def test_evaluate_an_lp_case_reads_the_new_atom(edited, tmp_path):
    lp = tmp_path / "stills.lp"
    lp.write_text(f"case_indication(stills_disease).\ncase_specialty(rheumatology).\n{ATOM}(9).\n")
    case = load_case(lp, edited)
    assert case.get(FIELD) == 9 and evaluate(case, edited).decision == "approved"
    out = cli("evaluate", str(lp), "--kb", str(edited))
    assert out.returncode == 0 and "Decision: APPROVED for up to 12 months" in out.stdout


def test_what_if_sets_the_new_field(edited, tmp_path):
    result = what_if(stills(5), [{"op": "set", "path": FIELD, "value": 6}], edited)
    assert (result.before.decision, result.after.decision) == ("criteria_not_met", "approved")
    assert {f.id: (f.before, f.after) for f in result.flipped} == {"4": (False, True), "4.B": (False, True)}
    assert result.changed_case.get(FIELD) == 6
    cleared = what_if(stills(9), [Change.set(FIELD, None)], edited)
    assert cleared.after.unmet == ("4", "4.B")
    path = tmp_path / "stills.json"
    path.write_text(json.dumps(stills(5)))
    out = cli("what-if", str(path), "--set", f"{FIELD}=7", "--kb", str(edited), "--format", "json")
    assert out.returncode == 0 and json.loads(out.stdout)["after"]["decision"] == "approved"
    bad = cli("what-if", str(path), "--set", f"{FIELD}=-1", "--kb", str(edited))
    assert bad.returncode == 2 and f"{FIELD}: expected a whole number from 0 to 1200, got -1" in bad.stderr


def test_missing_proposes_the_new_field(edited):
    for case in (stills(5), stills()):
        result = missing(case, edited)
        assert result.status == "options" and len(result.options) == 1
        assert result.options[0].first() == [Change.set(FIELD, 6)]
        assert "the disease documented to have lasted at least 6 months" in render_missing(result, load_kb(edited))
        assert what_if(case, result.options[0].first(), edited).after.decision == "approved"


def test_verify_holds_and_explores_the_new_field(edited):
    results = verify_kb(edited)
    assert results and all(r.holds for r in results), [r.to_dict() for r in results if not r.holds]
    # criteria_both_ways holds, so 4.B was both met and unmet: the space gives the field values
    assert any(r.name == "criteria_both_ways" for r in results)


@pytest.mark.slow  # a diff over the case space
def test_diff_names_the_still_s_disease_classes_only(edited):
    classes = diff(KB_DIR, edited).classes
    assert classes
    assert "approved" in {c.old for c in classes}
    for c in classes:  # approved before, or waiting only on a drug the KB cannot class (undetermined)
        assert (c.indication, c.new) == ("stills_disease", "criteria_not_met") and c.old in ("approved", "undetermined")
        assert evaluate(c.example, KB_DIR).decision == c.old
        assert evaluate(c.example, edited).decision == "criteria_not_met"
    assert FIELD in load_case(stills(6), edited).to_dict()


def test_batch_reads_the_new_field(edited, tmp_path):
    lines = [json.dumps(stills(7, id="a")), json.dumps(stills(5, id="b")), json.dumps(stills(1201, id="c"))]
    records = list(batch_evaluate(lines, edited))
    assert [r.decision.decision if r.decision else None for r in records] == ["approved", "criteria_not_met", None]
    assert records[2].id == "c" and f"{FIELD}: expected a whole number from 0 to 1200" in records[2].error
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = cli("batch", str(path), "--quiet", "--allow-errors", "--kb", str(edited))
    assert out.returncode == 0 and [json.loads(x).get("decision") for x in out.stdout.splitlines()] == ["approved", "criteria_not_met", None]


def test_schema_case_describes_the_new_field(edited):
    kb = load_kb(edited)
    declared = next(f for f in kb.schema.fields if f.name == FIELD)
    schema = json_schema(kb, "case")
    assert schema["properties"][FIELD] == {
        "anyOf": [{"type": "integer", "minimum": 0, "maximum": 1200}, {"type": "null"}],
        "description": declared.description,
    }
    validator = Draft202012Validator(schema)
    assert validator.is_valid(stills(12)) and not validator.is_valid(stills(1201)) and not validator.is_valid(stills("12"))
    change = Draft202012Validator(json_schema(kb, "change"))
    assert change.is_valid({"op": "set", "path": FIELD, "value": 6}) and not change.is_valid({"op": "set", "path": FIELD, "value": 1201})
    assert not change.is_valid({"op": "add", "path": FIELD, "value": 6})
    out = cli("schema", "case", "--kb", str(edited))
    assert out.returncode == 0 and json.loads(out.stdout)["properties"][FIELD]["description"] == declared.description
    assert FIELD not in json_schema(load_kb(KB_DIR), "case")["properties"]


def test_a_fhir_bundle_gives_the_new_field_through_its_mapping(edited):
    """Step 5: the condition the order is for, with an onset period, gives the duration in whole months up to the order's date."""
    from kineret_asp.cases.fhir_bundle import bundle_case

    from ..interop.test_fhir import bundle, condition, order, role

    onset = condition("c", "M06.1", onsetPeriod={"start": "2023-01-15"})
    case, _ = bundle_case(bundle(onset, order("c", authored="2024-07-20"), role("207RR0500X")), "<test>", load_kb(edited))
    assert case.get(FIELD) == 18
    assert evaluate(case, edited).decision == "approved"
    late, _ = bundle_case(bundle(condition("c", "M06.1", onsetPeriod={"start": "2024-03-01"}), order("c", authored="2024-07-20"), role("207RR0500X")), "<test>", load_kb(edited))
    assert late.get(FIELD) == 4 and evaluate(late, edited).unmet == ("4", "4.B")
