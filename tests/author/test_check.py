"""kineret-asp check: every kind of mistake, in a broken copy of the KB."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from kineret_asp.author.check import check_kb
from kineret_asp.cli import main

from ..conftest import KB_DIR, copy_kb

LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning): (?P<msg>.+)$")


def edit(path: Path, old: str, new: str) -> int:
    """Replace text once; return the line number where the new text starts."""
    text = path.read_text()
    assert old in text, old
    index = text.index(old)
    path.write_text(text.replace(old, new, 1))
    return text[:index].count("\n") + 1


def findings(kb: Path, severity: str = "error"):
    return [d for d in check_kb(kb).diagnostics if d.severity == severity]


@pytest.mark.slow
def test_the_packaged_kb_is_clean():
    report = check_kb(KB_DIR)
    assert report.errors == 0 and report.warnings == 0, [str(d) for d in report.diagnostics]


@pytest.mark.slow
def test_syntax_error_with_position(kb_copy):
    target = kb_copy / "criteria" / "5_sjia.lp"
    line = edit(target, 'accepted_specialty("5", rheumatology).', 'accepted_specialty("5", rheumatology')
    (err,) = findings(kb_copy)
    assert err.file.endswith("criteria/5_sjia.lp") and err.line == line + 1 or err.line == line
    assert "syntax error" in err.message


@pytest.mark.slow
def test_syntax_errors_in_two_files_are_both_reported(kb_copy):
    edit(kb_copy / "criteria" / "5_sjia.lp", 'accepted_specialty("5", rheumatology).', 'accepted_specialty("5" rheumatology).')
    edit(kb_copy / "criteria" / "4_stills_disease.lp", 'accepted_specialty("4", rheumatology).', 'accepted_specialty("4", rheumatology)')
    files = {Path(d.file).name for d in findings(kb_copy)}
    assert files == {"5_sjia.lp", "4_stills_disease.lp"}


@pytest.mark.slow
def test_clingo_grounding_errors_keep_their_position(kb_copy):
    line = edit(kb_copy / "criteria" / "5_sjia.lp", 'accepted_specialty("5", rheumatology).', 'accepted_specialty("5", rheumatology).\n% § 5 - an unsafe rule\nmet("5") :- not case_specialty(S).')
    errs = findings(kb_copy)
    assert any("unsafe" in d.message and d.line == line + 2 for d in errs), [str(d) for d in errs]


@pytest.mark.slow
def test_typo_in_a_body_atom_is_used_but_never_defined(kb_copy):
    target = kb_copy / "criteria" / "3_rheumatoid_arthritis.lp"
    line = edit(
        target, "biologic_trial(N) :- trial(D, (failure; intolerance; tried), N), biologic_or_tsdmard(D).", "biologic_trial(N) :- trial(D, (failure; intolerance; tried), N), biologc_or_tsdmard(D)."
    )
    errs = [d for d in findings(kb_copy) if "never defined" in d.message]
    assert len(errs) == 1
    (err,) = errs
    assert err.line == line and err.file.endswith("3_rheumatoid_arthritis.lp")
    assert err.message == "biologc_or_tsdmard/1 is used but never defined; did you mean 'biologic_or_tsdmard/1'?"


@pytest.mark.slow
def test_defined_but_never_used_is_a_warning(kb_copy):
    line = edit(kb_copy / "criteria" / "4_stills_disease.lp", 'indication_criteria(stills_disease, "4").', 'indication_criteria(stills_disease, "4").\nstills_alias(stills_disease).')
    warns = findings(kb_copy, "warning")
    assert [(d.line, d.message.split(" (")[0]) for d in warns] == [(line + 1, "stills_alias/1 is defined but never used")]
    assert check_kb(kb_copy).errors == 0


@pytest.mark.slow
def test_reference_tables_can_be_marked(kb_copy):
    edit(
        kb_copy / "criteria" / "4_stills_disease.lp",
        'indication_criteria(stills_disease, "4").',
        'indication_criteria(stills_disease, "4").\n\n% § 4 - reference only\n% check: reference\nstills_alias(stills_disease).',
    )
    assert findings(kb_copy, "warning") == []


@pytest.mark.slow
def test_criterion_without_words(kb_copy):
    line = edit(kb_copy / "criteria" / "2_dira.lp", 'criterion("2.A", "2", leaf, "Genetic testing has confirmed a mutation in the IL1RN gene").', 'criterion("2.A", "2", leaf, "").')
    errs = [d for d in findings(kb_copy) if "no words" in d.message]
    assert [(d.line, d.message) for d in errs] == [(line, "criterion 2.A has no words: quote the policy's text for it")]


@pytest.mark.slow
def test_criterion_with_missing_parent(kb_copy):
    line = edit(kb_copy / "criteria" / "2_dira.lp", 'criterion("2.B", "2", leaf,', 'criterion("2.B", "2.Z", leaf,')
    errs = [d for d in findings(kb_copy) if "parent" in d.message]
    assert [(d.line, d.message) for d in errs] == [(line, "criterion 2.B has parent 2.Z, which is not a criterion")]


@pytest.mark.slow
def test_duplicated_criterion_id(kb_copy):
    line = edit(kb_copy / "criteria" / "5_sjia.lp", 'criterion("5", none, leaf,', 'criterion("4", none, leaf,')
    errs = [d for d in findings(kb_copy) if "declared 2 times" in d.message]
    assert len(errs) == 1 and "criterion id 4" in errs[0].message
    assert errs[0].file.endswith("5_sjia.lp") and errs[0].line == line


@pytest.mark.slow
def test_indication_with_no_criteria(kb_copy):
    line = edit(kb_copy / "vocabulary.lp", 'indication(other, "Any other use").', 'indication(other, "Any other use").\nindication(gout, "Gout").')
    errs = [d for d in findings(kb_copy) if "names this indication" in d.message]
    assert [(d.file.endswith("vocabulary.lp"), d.line) for d in errs] == [(True, line + 1)]
    assert errs[0].message.startswith("gout: no indication_criteria/2")


@pytest.mark.parametrize(
    "file, old, new, kind, key, hint",
    [
        (
            "conditions_not_covered.lp",
            'excluded_indication("NC.4", lupus_arthritis).',
            'excluded_indication("NC.4", lupus_arthritis).\n% § NC.5 - typo\nexcluded_indication("NC.5", osteoarthritiss).',
            "indication",
            "osteoarthritiss",
            "osteoarthritis",
        ),
        ("criteria/4_stills_disease.lp", 'accepted_specialty("4", rheumatology).', 'accepted_specialty("4", rheumatolgy).', "specialty", "rheumatolgy", "rheumatology"),
        ("policy.lp", "requested_drug(kineret).", "requested_drug(kinerett).", "drug", "kinerett", "kineret"),
        (
            "tables/non_preferred_products.lp",
            'non_preferred_row(employer_group, "3.C", "3.C.D", enbrel,',
            'non_preferred_row(employer_group, "3.C", "3.C.D", enbrl,',
            "drug or product",
            "enbrl",
            "enbrel",
        ),
        (
            "criteria/3_rheumatoid_arthritis.lp",
            "biologic_trial(N) :- trial(D, (failure; intolerance; tried), N), biologic_or_tsdmard(D).",
            "biologic_trial(N) :- trial(D, (failure; intolerance; tryed), N), biologic_or_tsdmard(D).",
            "outcome",
            "tryed",
            "tried",
        ),
    ],
)
@pytest.mark.slow
def test_keys_absent_from_the_vocabulary(kb_copy, file, old, new, kind, key, hint):
    edit(kb_copy / file, old, new)
    errs = [d for d in findings(kb_copy) if "not in the vocabulary" in d.message]
    assert len(errs) >= 1, [str(d) for d in findings(kb_copy)]
    err = errs[0]
    assert err.message.startswith("unknown ") and f" key '{key}'" in err.message
    assert kind in err.message.split(" key '")[0]
    assert f"did you mean '{hint}'?" in err.message
    assert err.file.endswith(Path(file).name)


@pytest.mark.slow
def test_rule_without_a_section_comment(kb_copy):
    line = edit(kb_copy / "criteria" / "5_sjia.lp", 'accepted_specialty("5", rheumatology).', 'accepted_specialty("5", rheumatology).\n\nmet("5") :- case_specialty(genetics).')
    errs = [d for d in findings(kb_copy) if "section" in d.message]
    assert [(d.line, d.code) for d in errs] == [(line + 2, "section")]


@pytest.mark.slow
def test_a_framework_rule_names_no_section(kb_copy):
    """The framework is every policy's: its rules and tables are explained in plain prose, never by a § of one policy."""
    framework = kb_copy.parents[2] / "framework" / "criteria.lp"
    framework.write_text(framework.read_text() + "\n% A criterion that applies and is met.\nmet_and_applies(C) :- applies(C), met(C).\n#show met_and_applies/1.\n")
    assert not [d for d in findings(kb_copy) if d.code == "section"], [str(d) for d in findings(kb_copy)]


@pytest.mark.slow
def test_table_typo_breaks_an_integrity_constraint(kb_copy):
    edit(kb_copy / "tables" / "appendix_drug_classes.lp", "appendix_row(1, enbrel,         tnf_inhibitor,", "appendix_row(1, enbrel,         tnf_inhibitr,")
    errs = findings(kb_copy)
    assert any("integrity constraint fails" in d.message and "drug_class" in d.message for d in errs), [str(d) for d in errs]


@pytest.mark.slow
def test_check_command_lines_json_and_exit_codes(kb_copy):
    runner = CliRunner()
    ok = runner.invoke(main, ["check", "--kb", str(KB_DIR)])
    assert ok.exit_code == 0 and ok.output.strip().startswith("0 error(s), 0 warning(s) (KB: ")
    edit(kb_copy / "policy.lp", "requested_drug(kineret).", "requested_drug(kinerett).")
    bad = runner.invoke(main, ["check", "--kb", str(kb_copy)])
    assert bad.exit_code == 1
    lines = bad.output.strip().splitlines()
    assert all(LINE.match(l) for l in lines[:-1]) and lines[-1].startswith("1 error(s)")
    data = json.loads(runner.invoke(main, ["check", "--kb", str(kb_copy), "--format", "json"]).output)
    assert data["errors"] == 1 and data["diagnostics"][0]["line"] > 0 and data["diagnostics"][0]["severity"] == "error"


def test_check_on_a_missing_folder(tmp_path):
    result = CliRunner().invoke(main, ["check", "--kb", str(tmp_path / "nope")])
    assert result.exit_code == 2 and result.output == f"kineret-asp: {tmp_path / 'nope'}: KB folder does not exist\n"


def test_a_copy_shares_the_syntax_trees_of_its_unchanged_files_only(tmp_path):
    from kineret_asp.knowledge.layout import rule_files
    from kineret_asp.knowledge.parse import parse_files

    first, second = copy_kb(tmp_path / "a"), copy_kb(tmp_path / "b")
    edit(second / "criteria" / "4_stills_disease.lp", 'indication_criteria(stills_disease, "4").', 'indication_criteria(stills_disease, "4").\nstills_alias(stills_disease).')

    def nodes(version: Path) -> dict[str, list]:
        by_name: dict[str, list] = {}
        for s in parse_files(rule_files(version)).statements:
            by_name.setdefault(Path(s.file).name, []).append(s.node)
        return by_name

    a, b = nodes(first), nodes(second)
    assert a["policy.lp"] and all(x is y for x, y in zip(a["policy.lp"], b["policy.lp"]))  # parsed once, shared
    assert not any(x is y for x, y in zip(a["4_stills_disease.lp"], b["4_stills_disease.lp"]))  # the edited file: its own
    assert [str(n) for n in b["4_stills_disease.lp"]].count("stills_alias(stills_disease).") == 1
    assert [d.message.split(" (")[0] for d in findings(second, "warning")] == ["stills_alias/1 is defined but never used"]
    assert findings(first, "warning") == []


# --- the silent mistakes of an author's revision (each fails on a KB copy without its check) ---


@pytest.mark.slow
def test_a_syntax_error_comes_first_and_hides_what_it_causes_elsewhere(kb_copy):
    """A table file that does not parse: its error is listed first, without the "used but never defined" its missing facts cause in other files; an unrelated typo is still found."""
    edit(kb_copy / "tables" / "appendix_drug_classes.lp", 'drug(kevzara, "Kevzara").', 'drug(kevzara, "Kevzara"')
    edit(
        kb_copy / "criteria" / "4_stills_disease.lp", 'accepted_specialty("4", rheumatology).', 'accepted_specialty("4", rheumatology).\n\n% § 4 - a typo.\nmet("4") :- case_specialtyy(rheumatology).'
    )
    result = CliRunner().invoke(main, ["check", "--kb", str(kb_copy)])
    lines = result.output.splitlines()
    assert "appendix_drug_classes.lp" in lines[0] and "syntax error" in lines[0]
    undefined = [l for l in lines if "used but never defined" in l]
    assert len(undefined) == 1 and "case_specialtyy/1" in undefined[0], undefined
    assert not any("csdmard" in l or "drug/2" in l for l in lines)


@pytest.mark.slow
def test_a_passage_left_uncovered_by_a_deleted_table_row_is_a_warning_of_plain_check(kb_copy):
    """Deleting the Employer Group row D leaves its passage of the text cited by nothing: plain check warns (and passes), --strict fails."""
    edit(kb_copy / "tables" / "non_preferred_products.lp", 'non_preferred_row(employer_group, "3.C", "3.C.D", enbrel,         "D. Enbrel [requires prior authorization]").\n', "")
    plain = check_kb(kb_copy)
    (warning,) = [d for d in plain.diagnostics if d.code == "coverage"]
    assert warning.severity == "warning" and plain.errors == 0
    assert warning.file.endswith(".txt") and "Employer Group Plans" in warning.message and "D. Enbrel" in warning.message and "neither cited by a rule nor waived" in warning.message
    strict = check_kb(kb_copy, strict=True)
    assert [d.severity for d in strict.diagnostics if d.code == "coverage"] == ["error"]
    result = CliRunner().invoke(main, ["check", "--kb", str(kb_copy)])
    assert result.exit_code == 0 and result.output.strip().splitlines()[-1].startswith("0 error(s), 1 warning(s)")


@pytest.mark.slow
def test_an_ambiguous_quotation_names_the_section_the_new_text_does_not_have(kb_copy):
    """A new text whose table heading reads differently: the rows' quotations stand in two tables, and the error says why the § header names neither (the section declaration), not only that it does not."""
    from ..conftest import revise_source

    revise_source(kb_copy, "\nEmployer Group Plans\t", "\nPlans of Employer Groups\t")
    source = [d for d in check_kb(kb_copy).diagnostics if d.code == "quote" and "places of the policy's text" in d.message]
    assert source, "expected an ambiguous quotation"
    assert all('section employer_group ("Employer Group Plans"): no line after the previous section begins with "Employer Group Plans"' in d.message for d in source), source[0].message
    assert all("source_section/4" in d.message for d in source)


INPUT = (
    "\n% § 4 - how long the disease has lasted.\n"
    'input_field(disease_duration_months, integer(0, 1200), optional, "How many months the patient has had the disease.").\n'
    "input_atom(disease_duration_months, case_disease_duration).\n"
)


@pytest.mark.slow
def test_an_input_with_no_fhir_mapping_is_a_warning_and_with_strict_an_error(kb_copy):
    """A new input no fhir_value/4 fills: a FHIR twin of a case would silently lack it; so would every entry whose required field no fhir_entry_value/5 reads."""
    path = kb_copy / "inputs.lp"
    path.write_text(path.read_text() + INPUT)
    (warning,) = [d for d in check_kb(kb_copy).diagnostics if d.code == "fhir"]
    assert warning.severity == "warning" and warning.file.endswith("inputs.lp") and "input disease_duration_months has no FHIR mapping" in warning.message
    assert [d.severity for d in check_kb(kb_copy, strict=True).diagnostics if d.code == "fhir"] == ["error"]
    fhir = kb_copy / "codes" / "fhir.lp"
    fhir.write_text(
        fhir.read_text()
        + '\n% § 4 - the onset of the condition the order is for.\n% check: reference\nfhir_value(disease_duration_months, order, "reasonReference", via(condition, "onsetPeriod", months(order_date))).\n'
    )
    assert not [d for d in check_kb(kb_copy).diagnostics if d.code == "fhir"]
    edit(fhir, 'fhir_entry_value(genetic_tests, result, variant, "valueCodeableConcept", fallback(code(loinc))).', "")
    edit(fhir, 'fhir_entry_value(genetic_tests, result, variant, "status", lookup(unfinished)).', "")
    (entry,) = [d for d in check_kb(kb_copy).diagnostics if d.code == "fhir"]
    assert "entry field genetic_tests.result is required but no fhir_entry_value/5 reads it" in entry.message


@pytest.mark.slow
def test_a_placeholder_nothing_fills_is_an_error_in_every_word_template(kb_copy):
    """{field} in a documentation text, {idd} in a policy's own text/2, {reslt} in an entry's words: each would be printed as written."""
    doc = kb_copy / "documentation.lp"
    line = edit(doc, '"{subject} documented to have lasted at least {choice}"', '"{field} documented to have lasted at least {choice}"')
    edit(doc, 'entry_text(genetic_tests, "{gene}: {result}").', 'entry_text(genetic_tests, "{gene}: {reslt}").')
    words = kb_copy / "policy.lp"
    words.write_text(words.read_text() + '\n% § Header - the policy says how a case is named.\n% check: own words - the heading of an answer.\ntext(missing_case, "Case {idd}: {decision}").\n')
    found = {d.message.split(" has ")[1].split(",")[0]: d for d in findings(kb_copy) if d.code == "words"}
    assert set(found) == {"{field}", "{reslt}", "{idd}"}, found
    assert found["{field}"].file.endswith("documentation.lp") and found["{field}"].line == line
    assert "documentation_text(months, ...) (sentence)" in found["{field}"].message and "{choice}, {subject}" in found["{field}"].message
    assert "entry_text(genetic_tests, ...)" in found["{reslt}"].message and "{gene}, {result}" in found["{reslt}"].message
    assert "text(missing_case, ...)" in found["{idd}"].message and "{decision}, {id}" in found["{idd}"].message


def test_the_words_the_program_fills_are_read_from_its_source():
    """The check knows what each framework word is filled with; every placeholder the shipped words use is one of them."""
    from kineret_asp import load_kb
    from kineret_asp.author.words_filled import filled_by_the_program
    from kineret_asp.templates import placeholders

    assert filled_by_the_program("missing_case") == {"id", "decision"}
    assert filled_by_the_program("chosen_by_date_of_service") == {"date"}  # an f-string key: f"chosen_by_{how}"
    words = load_kb(KB_DIR).vocabulary.words
    known = [k for k, v in words.items() if placeholders(v) and filled_by_the_program(k) is not None]
    assert len(known) >= 60
