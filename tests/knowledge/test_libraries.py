"""The framework's libraries: what every policy of IP0243's shape shares, included by a version's declaration.

A version declares ``library(Name)`` and ``framework/library/<Name>.lp`` is
read as if written there: its facts stand there in the KB's order (a field
stands there in the case schema), what it defines the version defines, its
``version_defines/3`` facts add to the version's contract, and the § comment
above the declaration cites the passages the library encodes for the policy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kineret_asp import evaluate, load_kb
from kineret_asp.author.check import check_kb
from kineret_asp.cli import main
from kineret_asp.knowledge.layout import LIBRARY, display_path, library_files
from kineret_asp.knowledge.parse import rule_head

from ..conftest import KB_DIR, ROOT, VERSION, copy_kb

FRAMEWORK = KB_DIR / "framework"
FIXTURE = ROOT / "tests" / "data" / "second_policy" / "FX0001"


def edit(path: Path, old: str, new: str) -> int:
    """Replace text once; return the line number where the new text starts."""
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new, 1))
    return text[: text.index(old)].count("\n") + 1


def errors(kb: Path, strict: bool = False):
    return [d for d in check_kb(kb, strict=strict).diagnostics if d.severity == "error"]


def statement_texts(files) -> set[str]:
    from kineret_asp.knowledge.parse import parse_files

    return {str(s.node) for s in parse_files(files).statements if rule_head(s.node) is not None}


# --- reading a library where it is declared -------------------------------------------------------------------------


def test_every_version_loads_the_framework_but_only_the_libraries_it_declares(tmp_path):
    kb = load_kb(KB_DIR)
    declared = {Path(f).stem for f in kb.included}
    assert declared == set(library_files(FRAMEWORK)) and len(declared) == 12
    root = tmp_path / "kb"
    shutil.copytree(KB_DIR, root, ignore=shutil.ignore_patterns("cases"))
    shutil.copytree(FIXTURE, root / "policies" / "FX0001", ignore=shutil.ignore_patterns("cases"))
    fx = load_kb(root / "policies" / "FX0001" / "2025-01-01")
    assert sorted(Path(f).stem for f in fx.included) == ["claims_by_indication", "criteria_by_indication", "indication", "medication_history", "prescriber_specialties"]
    assert not [f for f in fx.files if f.parent == root / "framework" / LIBRARY and f.stem not in {Path(g).stem for g in fx.included}]


def test_a_librarys_field_stands_in_the_case_schema_where_the_version_declares_it(kb):
    fields = [f.name for f in kb.schema.fields]
    own = ["plan", "request", "indication", "prescriber_specialties", "genetic_tests", "medication_history", "current_medications", "drug_categories", "beneficial_response"]
    assert [f for f in fields if f in own] == own  # plan (IP0243's) before request (a library's), genetic_tests between two libraries' fields
    history = kb.schema.by_name["medication_history"]
    assert [e.name for e in history.entry_fields] == ["drug", "outcome", "months", "sample", "for"]  # `for` is IP0243's own, after the library's
    ranks = {}  # the library's statements were read at the declaration: their ranks interleave with the version's
    for s in kb.statements:
        head = rule_head(s.node)
        if head is not None and head.name == "input_field" and head.fact:
            ranks[head.first_text] = s.rank
    assert ranks["plan"] < ranks["request"] < ranks["indication"] < ranks["genetic_tests"] < ranks["medication_history"] < ranks["drug_categories"] < ranks["beneficial_response"]


def test_a_version_describes_a_library_field_in_its_own_words(kb, tmp_path):
    drug = kb.schema.by_name["medication_history"].entry_field("drug")
    assert drug.description.startswith("The drug, by its key in the Appendix or the Non-Preferred Product tables")
    root = tmp_path / "kb"
    shutil.copytree(KB_DIR, root, ignore=shutil.ignore_patterns("cases"))
    shutil.copytree(FIXTURE, root / "policies" / "FX0001", ignore=shutil.ignore_patterns("cases"))
    fx = load_kb(root / "policies" / "FX0001" / "2025-01-01")
    assert fx.schema.by_name["medication_history"].entry_field("drug").description == "The drug, by its key or by any other name (a drug the policy does not name counts for no criterion)."


def test_a_description_of_a_field_nobody_declares_is_an_error(kb_copy):
    edit(kb_copy / "inputs.lp", "entry_description(medication_history, outcome,", "entry_description(medication_history, outcom,")
    (err,) = [d for d in errors(kb_copy.parents[2]) if d.message.startswith("case schema: ")]
    assert err.file == display_path(kb_copy)
    assert err.message == "case schema: entry_description(medication_history, outcom, ...): no entry_field/5 declares a field outcom of medication_history"


def test_the_framework_hash_covers_the_libraries_a_version_reads(tmp_path):
    version = copy_kb(tmp_path)
    before = load_kb(version).framework_sha256
    library = version.parents[2] / "framework" / LIBRARY / "samples.lp"
    library.write_text(library.read_text().replace("note_text(sample_not_counted, Text) :- sample_rule(_, Text).", "note_text(sample_not_counted, Text) :- sample_rule(_, Text).\n"))
    after = load_kb(version)
    assert after.framework_sha256 != before  # the cache noticed the edit, and the provenance tells the two apart
    assert display_path(library) in {display_path(f) for f in after.framework_files}


# --- a policy's folder holds only what is its own ----------------------------------------------------------------


def test_no_version_folder_repeats_a_statement_of_a_library(tmp_path):
    shared = statement_texts(sorted(library_files(FRAMEWORK).values()))
    root = tmp_path / "kb"
    shutil.copytree(KB_DIR, root, ignore=shutil.ignore_patterns("cases"))
    assert CliRunner().invoke(main, ["new-policy", "FX0002", "--drug", "zelkimab", "--effective", "2025-02-01", "--kb", str(root)]).exit_code == 0
    from kineret_asp.knowledge.layout import rule_files

    for folder in (KB_DIR / VERSION, FIXTURE / "2025-01-01", root / "policies" / "FX0002" / "2025-02-01"):
        repeated = shared & statement_texts(rule_files(folder))
        assert not repeated, f"{folder}: {sorted(repeated)}"


def test_ip0243_decides_as_it_did_with_the_machinery_in_its_own_folder():
    """A few readings the moved rules decide: a continuation (reauthorization), a sample (samples), COVID-19 (other-policy uses),
    an indication nothing names (any other use), a consultation (prescriber); the recorded outputs pin the rest byte for byte."""
    continuation = evaluate({"indication": "sjia", "request": "continuation", "prescriber_specialties": ["rheumatology"], "beneficial_response": True}, KB_DIR)
    assert continuation.decision == "approved" and continuation.authorization_months == 12
    no_response = evaluate({"indication": "sjia", "request": "continuation", "prescriber_specialties": ["rheumatology"]}, KB_DIR)
    assert no_response.decision == "criteria_not_met"
    sample = evaluate(
        {
            "indication": "rheumatoid_arthritis",
            "plan": "employer_group",
            "prescriber_specialties": ["rheumatology"],
            "medication_history": [{"drug": "methotrexate", "outcome": "failure", "months": 4, "sample": True}],
        },
        KB_DIR,
    )
    assert sample.decision == "criteria_not_met" and [n.id for n in sample.notes if n.id == "OV.samples"] == ["OV.samples"]
    assert evaluate({"indication": "covid_19"}, KB_DIR).reasons[0].id == "OV.covid_19"
    assert evaluate({"indication": "other"}, KB_DIR).reasons[0].id == "NC.other"
    assert evaluate({"indication": "sjia", "prescriber_specialties": ["rheumatology"]}, KB_DIR).decision == "approved"
    assert evaluate({"indication": "sjia", "prescriber_specialties": ["dermatology"]}, KB_DIR).decision == "criteria_not_met"


# --- check: a declaration is checked, and cites ---------------------------------------------------------------------


@pytest.mark.slow
def test_an_unknown_library_is_one_error_at_its_declaration_naming_the_nearest(kb_copy):
    line = edit(kb_copy / "policy.lp", "library(samples).", "library(sampels).")
    found = [d for d in errors(kb_copy.parents[2]) if d.code == "library"]
    assert len(found) == 1 and found[0].file.endswith("policy.lp") and found[0].line == line
    assert found[0].message.startswith("no library sampels: framework/library/ holds any_other_use, claims_by_indication, criteria_by_indication,") and "did you mean 'samples'?" in found[0].message


@pytest.mark.slow
def test_a_library_declared_twice_or_by_a_library_is_an_error(kb_copy):
    line = edit(kb_copy / "policy.lp", "library(samples).", "library(samples).\nlibrary(samples).")
    (twice,) = [d for d in errors(kb_copy.parents[2]) if d.code == "library"]
    assert twice.line == line + 1 and "library(samples) is declared twice: it is included once, at " in twice.message
    edit(kb_copy / "policy.lp", "library(samples).\nlibrary(samples).", "library(samples).")
    nested = kb_copy.parents[2] / "framework" / LIBRARY / "samples.lp"
    edit(nested, "needs_library(medication_history).", "needs_library(medication_history).\nlibrary(request).")
    (inner,) = [d for d in errors(kb_copy.parents[2]) if d.code == "library"]
    assert inner.file.endswith("framework/library/samples.lp") and "a library includes no library" in inner.message


@pytest.mark.slow
def test_a_library_without_the_library_it_needs_is_an_error_at_its_declaration(kb_copy):
    edit(kb_copy / "inputs.lp", "library(request).", "")
    line = next(n for n, text in enumerate((kb_copy / "reauthorization.lp").read_text().splitlines(), 1) if text == "library(reauthorization).")
    found = [d for d in errors(kb_copy.parents[2]) if d.code == "library"]
    assert [(Path(d.file).name, d.line) for d in found] == [("reauthorization.lp", line)]
    assert found[0].message.startswith("library(reauthorization) needs library(request), which the version does not include: declare library(request) too")


@pytest.mark.slow
def test_what_a_library_reads_the_version_must_define_reported_once_at_its_folder(kb_copy):
    edit(kb_copy / "reauthorization.lp", 'reauthorization_criteria("R", "R.A", "R.B").\n', "")
    found = errors(kb_copy.parents[2])
    assert [d.code for d in found] == ["contract"], [str(d) for d in found]
    assert found[0].file == display_path(kb_copy) and found[0].message == (
        "the version does not define reauthorization_criteria/3, which a version that includes library(reauthorization) must: "
        "its reauthorization criterion and its two conditions: reauthorization_criteria(Criterion, InitialMet, Response) (framework/library/reauthorization.lp)"
    )


@pytest.mark.slow
def test_the_declaration_is_what_cites_the_passages_a_library_encodes(kb_copy):
    """Take out library(criteria_by_indication): its paragraph's quotation cites nothing (a warning at it), and the passage it
    alone cited is uncovered (an error with --strict); the framework's library carries no § itself."""
    path = kb_copy / "criteria" / "medical_necessity.lp"
    edit(path, "library(criteria_by_indication).\n", "")
    found = check_kb(kb_copy.parents[2], strict=True).diagnostics
    bare = [d for d in found if d.code == "quote" and "cites nothing" in d.message]
    assert bare and all(d.file.endswith("medical_necessity.lp") for d in bare)
    uncovered = [d for d in found if d.code == "coverage"]
    assert [d.severity for d in uncovered] == ["error"] and "Anakinra (Kineret) is considered medically necessary when ONE of the following is met" in uncovered[0].message


@pytest.mark.slow
def test_a_section_mark_in_a_library_is_an_error(kb_copy):
    library = kb_copy.parents[2] / "framework" / LIBRARY / "any_other_use.lp"
    line = edit(library, "% Any other use: an indication", '% § Conditions Not Covered - "Any other use": an indication')
    (err,) = [d for d in errors(kb_copy.parents[2]) if d.code == "section"]
    assert err.file.endswith("framework/library/any_other_use.lp") and err.line == line and "the framework is shared by every policy and cites none" in err.message
