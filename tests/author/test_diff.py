"""kineret-asp diff: which cases a KB edit changes, and none for an unchanged copy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kineret_asp import evaluate
from kineret_asp.author.diff import diff
from kineret_asp.cli import main

from ..conftest import KB_DIR

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
    # the patients approved before, and the same patients waiting on a drug the KB cannot class (undetermined)
    assert sorted((c.old, c.new) for c in report.classes) == [("approved", "criteria_not_met")] * 2 + [("undetermined", "criteria_not_met")] * 2
    for c in report.classes:
        assert (c.indication, c.plan, c.new) == ("rheumatoid_arthritis", "employer_group", "criteria_not_met")
        ids = {f["id"]: (f["old"], f["new"]) for f in c.flipped}
        assert ids["3.C.D"] == ("met", None) and ids["3.C"] == ("met", "unmet")
        example = c.example
        assert "enbrel" in {e["drug"] for e in example["medication_history"]}
        assert evaluate(example, KB_DIR).decision == c.old
        assert evaluate(example, kb_copy).decision == "criteria_not_met"
    assert {c.request for c in report.classes} == {"initial", "continuation"}


@pytest.mark.slow
def test_asking_for_one_product_in_individual_family_plans(kb_copy):
    replace_line(
        kb_copy / TABLE,
        "non_preferred_criteria(individual_family,",
        'non_preferred_criteria(individual_family, rheumatoid_arthritis, "3.C", 1, "Individual and Family Plan: Documentation of failure, contraindication or intolerance to ONE of the following").',
    )
    report = diff(KB_DIR, kb_copy)
    assert report.classes
    assert "approved" in {c.new for c in report.classes}
    for c in report.classes:
        assert (c.indication, c.plan, c.old) == ("rheumatoid_arthritis", "individual_family", "criteria_not_met")
        assert c.new in ("approved", "undetermined")  # undetermined: the same patients, with a drug the KB cannot class
        assert evaluate(c.example, kb_copy).decision == c.new
        assert len({e["drug"] for e in c.example["medication_history"]}) <= 2


@pytest.mark.slow
def test_diff_command_text_and_json(kb_copy):
    replace_line(kb_copy / TABLE, 'non_preferred_row(employer_group, "3.C", "3.C.D", enbrel,', "")
    runner = CliRunner()
    text = runner.invoke(main, ["diff", str(KB_DIR), str(kb_copy)]).output
    # the patients approved before, then the same patients waiting on a drug the KB cannot class (undetermined)
    assert text.split("\n", 1)[1].startswith("4 class(es) of cases change decision, in 4 kind(s) of change:\n")
    assert "\napproved -> criteria_not_met (criteria: 3 met -> unmet, 3.C met -> unmet, 3.C.D met -> n/a [D. Enbrel [requires prior authorization]])\n" in text
    assert "\nundetermined -> criteria_not_met (criteria: 3 met -> unmet, 3.C met -> unmet, 3.C.D met -> n/a [D. Enbrel [requires prior authorization]])\n" in text
    assert "\n  1. Rheumatoid Arthritis, initial authorization, Employer Group Plans\n" in text
    data = json.loads(runner.invoke(main, ["diff", str(KB_DIR), str(kb_copy), "--format", "json"]).output)
    assert data["changes"] == 4 and all(c["example"]["plan"] == "employer_group" for c in data["classes"])
    assert (
        data["classes"][0]["label"]
        == "Rheumatoid Arthritis, initial authorization, Employer Group Plans: approved -> criteria_not_met (criteria: 3 met -> unmet, 3.C met -> unmet, 3.C.D met -> n/a [D. Enbrel [requires prior authorization]])"
    )


def test_diff_with_a_broken_kb_exits_2(kb_copy):
    (kb_copy / "policy.lp").write_text("policy(")
    result = CliRunner().invoke(main, ["diff", str(KB_DIR), str(kb_copy)])
    assert result.exit_code == 2 and "policy.lp:" in result.output


def _new_version(tmp_path: Path) -> tuple[Path, Path]:
    import shutil

    from kineret_asp.author.new_version import new_version

    root = tmp_path / "kb"
    shutil.copytree(KB_DIR, root, ignore=shutil.ignore_patterns("cases"))
    new_version("IP0243", "2025-01-01", root)
    return root, root / "policies" / "IP0243" / "2025-01-01"


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text + "\n")


@pytest.mark.slow
def test_diff_across_versions_whose_schemas_differ_never_aborts(tmp_path):
    """The new version reads a field and a key the old schema refuses: each version decides an example on what it declares, and the class says what the old one cannot read."""
    root, new = _new_version(tmp_path)
    _append(
        new / "inputs.lp",
        '% § Reauthorization Criteria - the kind of response.\ninput_field(response_kind, key(response_kind), optional, "The kind of response.").\ninput_atom(response_kind, case_response_kind).',
    )
    _append(
        new / "vocabulary.lp", '% § Reauthorization Criteria - kinds.\nvocabulary(response_kind, "a kind of response").\nresponse_kind(clinical, "clinical").\nresponse_kind(laboratory, "laboratory").'
    )
    _append(  # R (framework/library/reauthorization.lp) gains a condition of the version's own
        new / "reauthorization.lp",
        '% § Reauthorization Criteria - a clinical response.\ncriterion("R.C", "R", leaf, "The response is clinical").\nmet("R.C") :- case_response_kind(clinical).',
    )
    vocabulary = new / "vocabulary.lp"
    vocabulary.write_text(
        vocabulary.read_text().replace('specialty(dermatology, "a dermatologist").', 'specialty(dermatology, "a dermatologist").\nspecialty(allergy_immunology, "an allergist or immunologist").')
    )
    caps = new / "criteria" / "1_caps.lp"
    caps.write_text(
        caps.read_text().replace('accepted_specialty("1.B", (rheumatology; genetics; dermatology)).', 'accepted_specialty("1.B", (rheumatology; genetics; dermatology; allergy_immunology)).')
    )
    result = CliRunner().invoke(main, ["diff", "--from", "2024-06-01", "--to", "2025-01-01", "--kb", str(root), "--format", "json", "--exit-code"])
    assert result.exit_code == 1, result.output
    classes = json.loads(result.output)["classes"]
    kind = [c for c in classes if "response_kind" in c["example"]]
    assert kind and all("response_kind" in c["versions"]["old"]["not_read"] and c["versions"]["old"]["case"].get("response_kind") is None for c in kind)
    allergist = [c for c in classes if "allergy_immunology" in c["example"].get("prescriber_specialties", [])]
    assert allergist and all(c["old"] == "criteria_not_met" and c["new"] in ("approved", "undetermined") for c in allergist)
    assert "approved" in {c["new"] for c in allergist}  # undetermined: the same patients, with a drug the KB cannot class
    # a specialty the old version does not name is, for it, another specialty that meets nothing: it reads the case whole
    assert all(c["versions"]["old"]["cannot_express"] == [] and "allergy_immunology" in c["versions"]["old"]["case"]["prescriber_specialties"] for c in allergist)
    for c in classes:  # each version decides its reading of the example as the class says
        assert evaluate(c["versions"]["old"]["case"], root / "policies" / "IP0243" / "2024-06-01").decision == c["old"]
        assert evaluate(c["versions"]["new"]["case"], new).decision == c["new"]
    text = CliRunner().invoke(main, ["diff", "--from", "2024-06-01", "--to", "2025-01-01", "--kb", str(root)]).output
    assert 'cannot express prescriber_specialties "allergy_immunology"' not in text
    assert "IP0243 2024-06-01 does not read response_kind: it decides the example without it" in text and "<dict>" not in text


@pytest.mark.slow
def test_a_key_the_old_validator_refuses_is_named_with_the_class_not_an_abort(tmp_path):
    """A new drug key one edit from an old one (otezla_xr holds otezla): the old version's validator refuses the name, and the class says so, naming the class's example."""
    root, new = _new_version(tmp_path)
    table = new / "tables" / "appendix_drug_classes.lp"
    table.write_text(
        table.read_text()
        .replace('drug(otezla, "Otezla").', 'drug(otezla, "Otezla").\ndrug(otezla_xr, "Otezla XR").')
        .replace(
            "appendix_row(3, otezla,             pde4_inhibitor,        (psa; pso)).",
            "appendix_row(3, otezla,             pde4_inhibitor,        (psa; pso)).\nappendix_row(3, otezla_xr,          pde4_inhibitor,        (psa; pso)).",
        )
    )
    _append(new / "verify" / "space.lp", "% § Appendix Table 3 - the new tablet.\nspace_entry_value(medication_history, drug, otezla_xr).")
    result = CliRunner().invoke(main, ["diff", "--from", "2024-06-01", "--to", "2025-01-01", "--kb", str(root), "--format", "json"])
    assert result.exit_code == 0, result.output
    refused = [c for c in json.loads(result.output)["classes"] if c["versions"]["old"]["refused"]]
    assert refused and all(any(e["drug"] == "otezla_xr" for e in c["example"]["medication_history"]) for c in refused)
    assert all(c["versions"]["old"]["refused"].startswith("diff class ") and "did you mean 'otezla'" in c["versions"]["old"]["refused"] for c in refused)
    assert "<dict>" not in result.output


@pytest.mark.slow
def test_examples_differ_in_what_the_rules_read_and_where_focuses(kb_copy):
    """--examples 3: up to three examples a class, each read differently (another set of criteria met or unmet); --where keeps the cases that have a value."""
    replace_line(kb_copy / TABLE, 'non_preferred_row(employer_group, "3.C", "3.C.D", enbrel,', "")
    data = json.loads(CliRunner().invoke(main, ["diff", str(KB_DIR), str(kb_copy), "--examples", "3", "--format", "json"]).output)
    assert any(len(c["examples"]) > 1 for c in data["classes"])
    for c in data["classes"]:
        assert c["examples"][0] == c["example"] and len(c["examples"]) <= 3
        readings = set()
        for example in c["examples"]:
            before, after = evaluate(example, KB_DIR), evaluate(example, kb_copy)
            assert (before.decision, after.decision) == (c["old"], c["new"])
            readings.add((tuple(sorted(before.statuses().items())), tuple(sorted(after.statuses().items()))))
        assert len(readings) == len(c["examples"])  # no two examples the rules read the same way
    focused = json.loads(CliRunner().invoke(main, ["diff", str(KB_DIR), str(kb_copy), "--where", "request=continuation", "--format", "json"]).output)
    assert focused["classes"] and all(c["request"] == "continuation" for c in focused["classes"])
    assert {c["label"] for c in focused["classes"]} < {c["label"] for c in data["classes"]}
    entry = json.loads(CliRunner().invoke(main, ["diff", str(KB_DIR), str(kb_copy), "--where", "medication_history.outcome=failure", "--format", "json"]).output)
    assert entry["classes"] and all(any(e["outcome"] == "failure" for e in c["example"]["medication_history"]) for c in entry["classes"])
    bad = CliRunner().invoke(main, ["diff", str(KB_DIR), str(kb_copy), "--where", "pln=employer_group"])
    assert bad.exit_code == 2 and bad.output == "kineret-asp: --where pln: no field 'pln' in either version; did you mean 'plan'?\n"
    value = CliRunner().invoke(main, ["diff", str(KB_DIR), str(kb_copy), "--where", "plan=employer_grup"])
    assert value.exit_code == 2 and "did you mean 'employer_group'?" in value.output
