"""The policy's text beside its rules: the declared source, verbatim quotations, passages, waivers."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from kineret_asp import evaluate
from kineret_asp.author.check import check_kb
from kineret_asp.author.policy_text import analyse, normalise
from kineret_asp.knowledge.base import parse_kb
from kineret_asp.knowledge.layout import rule_files

from ..conftest import KB_DIR, VERSION

VERSION_DIR = KB_DIR / VERSION
SOURCE = VERSION_DIR / "source" / "IP0243-anakinra-2024-06-01.txt"


def edit(path: Path, old: str, new: str) -> int:
    """Replace text once; return the line number where the new text starts."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def errors(kb: Path, severity: str = "error", strict: bool = False):
    return [d for d in check_kb(kb, strict=strict).diagnostics if d.severity == severity]


@pytest.fixture(scope="module")
def analysis():
    return analyse(parse_kb(KB_DIR))


def by_label(analysis, section: str, label: str):
    return [p for p in analysis.source.passages if p.top.id == section and p.label == label]


# --- the declared source ------------------------------------------------------------


def test_the_source_is_declared_with_title_number_date_and_hash(analysis):
    declared = analysis.declared
    assert (declared.title, declared.number, declared.effective) == ("Anakinra", "IP0243", "2024-06-01")
    assert declared.sha256 == hashlib.sha256(SOURCE.read_bytes()).hexdigest() == analysis.sha256
    assert (VERSION_DIR / declared.file) == SOURCE


def test_the_shared_policy_text_is_copied_byte_for_byte():
    shared = Path("/work/shared/policy/IP0243-anakinra-2024-06-01.txt")
    if not shared.exists():
        pytest.skip("the shared policy folder is not on this machine")
    assert SOURCE.read_bytes() == shared.read_bytes()


def test_a_source_file_with_one_changed_byte_fails_the_hash_check(kb_copy):
    source = kb_copy / "source" / SOURCE.name
    data = bytearray(source.read_bytes())
    at = data.index(b"Stockholm")
    data[at] = ord("s")  # one byte, in a reference no rule quotes
    source.write_bytes(bytes(data))
    line = next(n for n, text in enumerate((kb_copy / "policy.lp").read_text().splitlines(), 1) if text.startswith("policy_source("))
    (err,) = errors(kb_copy)
    assert err.file.endswith("policy.lp") and err.line == line and err.code == "source"
    assert "SHA-256" in err.message and hashlib.sha256(bytes(data)).hexdigest() in err.message


@pytest.mark.slow  # check on a KB copy (0.8 s a run); the fast lane keeps the changed byte, the paraphrase and the waiver's quotation
def test_a_missing_source_file_is_an_error(kb_copy):
    (kb_copy / "source" / SOURCE.name).unlink()
    (err,) = errors(kb_copy)
    assert err.file.endswith("policy.lp") and "cannot be read" in err.message


@pytest.mark.slow  # check on a KB copy (0.8 s a run); the fast lane keeps the changed byte, the paraphrase and the waiver's quotation
def test_a_version_without_a_declared_source_warns_and_fails_strict(kb_copy):
    edit(kb_copy / "policy.lp", 'policy_source("source/', '% policy_source("source/')
    warnings = [d for d in errors(kb_copy, "warning") if d.code == "source"]
    assert len(warnings) == 1 and "declares no policy text" in warnings[0].message
    assert any(d.code == "source" for d in errors(kb_copy, strict=True))


@pytest.mark.slow  # check on a KB copy (0.8 s a run); the fast lane keeps the changed byte, the paraphrase and the waiver's quotation
def test_an_effective_date_other_than_the_versions_is_an_error(kb_copy):
    edit(kb_copy / "policy.lp", '"IP0243", "2024-06-01", "', '"IP0243", "2024-07-01", "')
    (err,) = errors(kb_copy)
    assert "2024-07-01" in err.message and "effective_from" in err.message


@pytest.mark.slow  # check on a KB copy (0.8 s a run); the fast lane keeps the changed byte, the paraphrase and the waiver's quotation
def test_the_source_folder_is_never_loaded_as_rules(kb_copy):
    (kb_copy / "source" / "stray.lp").write_text("this is not clingo.\n")
    assert not any("source" in p.relative_to(kb_copy).parts for p in rule_files(kb_copy))
    assert check_kb(kb_copy).errors == 0


def test_rule_files_are_the_lp_files_outside_cases_and_source_in_path_order(tmp_path):
    (tmp_path / "b" / "c").mkdir(parents=True)
    for name in ("z.lp", "a.lp", "b/c/x.lp", "b/y.lp", "b/notes.txt", "cases/case.lp", "source/text.lp", "b/cases/deep.lp"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("p.\n")
    (tmp_path / "folder.lp").mkdir()  # a folder named like a rule file is no rule file
    elsewhere = tmp_path.parent / f"{tmp_path.name}-linked"
    elsewhere.mkdir()
    (elsewhere / "linked.lp").write_text("p.\n")
    (tmp_path / "link").symlink_to(elsewhere, target_is_directory=True)  # links to folders are not followed
    assert [p.relative_to(tmp_path).as_posix() for p in rule_files(tmp_path)] == ["a.lp", "b/c/x.lp", "b/y.lp", "z.lp"]
    assert rule_files(tmp_path / "missing") == []


def test_the_source_ships_with_the_package():
    """pyproject's package data takes every .txt under kb/ (the source folder included)."""
    text = (KB_DIR.parent / "pyproject.toml").read_text()
    patterns = re.search(r'"kineret_asp\.kb" = \[(.*?)\]', text).group(1)
    assert '"**/*.txt"' in patterns
    assert SOURCE.relative_to(KB_DIR).match("**/*.txt")


# --- normalisation -----------------------------------------------------------------------


def test_normalisation_takes_out_layout_only():
    assert normalise("4. Still's Disease.** The medication") == "4. Still's Disease. The medication"
    assert normalise("not consistent.^{15,16} In a small") == "not consistent. In a small"
    assert normalise("daily.¹⁶ The Bath") == "daily. The Bath"
    assert normalise('to TWO of the following: <ul style="list-style-type: none"> A. Actemra') == "to TWO of the following: A. Actemra"
    assert normalise("(See [APPENDIX](#) for examples)") == "(See APPENDIX for examples)"
    assert normalise("Adalimumab – adbm/Cyltezo , Adalimumab") == "Adalimumab-adbm/Cyltezo, Adalimumab"
    assert normalise("customer’s “Cigna Companies”") == 'customer\'s "Cigna Companies"'
    assert normalise("anakinra (Kineret®)\t and\n *IL1RN*") == "anakinra (Kineret) and IL1RN"
    # words, digits and the case of letters are compared as written
    assert normalise("ONE of the following") != normalise("one of the following")
    assert normalise("after 3 months") != normalise("after 6 months")


def test_a_quotation_differs_from_the_text_only_in_its_first_letters_case_and_final_stop(analysis):
    source = analysis.source
    assert source.occurrences("initial criteria are met")  # as written
    assert source.occurrences("Initial criteria are met")  # a quotation may begin with a capital
    assert source.occurrences("Any other use is considered experimental, investigational or unproven.")  # its own full stop
    assert not source.occurrences("Medication is being used for treatment of one of the following")  # ONE is not one
    assert not source.occurrences("ried a biologic")  # a quotation never begins or ends inside a word


# --- passages ----------------------------------------------------------------------------------


def test_passages_follow_the_policys_outline(analysis, kb):
    labels = {p.label for p in analysis.source.passages if p.top.id == "criteria"}
    assert set(kb.vocabulary.criteria) - {"R", "R.A", "R.B"} <= labels  # every criterion id is a label of the text
    assert [p.label for p in analysis.source.passages if p.section.id == "employer_group" and p.label.count(".") == 2] == [f"3.C.{x}" for x in "ABCDEF"]
    conditions = {p.label for p in analysis.source.passages if p.top.id == "not_covered"} - {""}
    assert conditions == {"1", "2", "3", "4", "5", "6"}
    numbers = [p.number for p in analysis.source.passages]
    assert numbers == list(range(1, len(numbers) + 1))


def test_a_sentence_broken_by_a_page_break_is_one_passage(analysis):
    (p,) = [p for p in analysis.source.passages if p.text.startswith("Patients were refractory to NSAIDs")]
    assert p.text.endswith("methotrexate, cyclophosphamide, and azathioprine.") and p.label == "4"


@pytest.mark.slow  # check on a KB copy (0.8 s a run); the fast lane keeps the changed byte, the paraphrase and the waiver's quotation
def test_a_section_the_text_lacks_is_an_error_at_its_declaration(kb_copy):
    line = edit(kb_copy / "source_text.lp", '"Authorization Duration", "Authorization Duration")', '"Authorization Duration", "Duration of Authorization")')
    errs = [d for d in errors(kb_copy) if d.code == "source"]
    assert errs and errs[0].file.endswith("source_text.lp") and errs[0].line == line
    assert "Duration of Authorization" in errs[0].message


# --- quotations --------------------------------------------------------------------------------


def test_a_paraphrased_criterion_text_is_an_error_naming_the_closest_passage(kb_copy):
    target = kb_copy / "criteria" / "3_rheumatoid_arthritis.lp"
    old = '"Already tried a biologic or targeted synthetic DMARD for rheumatoid arthritis"'
    line = edit(target, old, '"Already tried a biologic or a targeted synthetic DMARD for RA"')
    (err,) = errors(kb_copy)
    assert err.file.endswith("3_rheumatoid_arthritis.lp") and err.line == line and err.code == "quote"
    column = target.read_text().splitlines()[line - 1].index('"Already tried') + 1
    assert err.column == column
    assert "quotation not found" in err.message
    assert "Medical Necessity Criteria 3.A.ii" in err.message
    assert "ii. Already tried a biologic or targeted synthetic DMARD for rheumatoid arthritis" in err.message  # the original
    assert '"a targeted synthetic DMARD for RA" (quoted) / "targeted synthetic DMARD for rheumatoid' in err.message


@pytest.mark.slow  # check on a KB copy (0.8 s a run); the fast lane keeps the changed byte, the paraphrase and the waiver's quotation
def test_a_paraphrase_in_a_section_comment_is_an_error_at_the_quotation(kb_copy):
    target = kb_copy / "reauthorization.lp"
    line = edit(target, '% § Reauthorization Criteria - "AND beneficial response is demonstrated".', '% § Reauthorization Criteria - "AND a beneficial response is shown".')
    (err,) = errors(kb_copy)
    assert (err.line, err.column) == (line, target.read_text().splitlines()[line - 1].index('"') + 1)
    assert "Reauthorization Criteria" in err.message and "beneficial response is demonstrated" in err.message


def test_a_quotation_spanning_comment_lines_is_found(analysis):
    (c,) = [c for c in analysis.citations if c.quote.file.endswith("reauthorization.lp") and c.quote.text.startswith("Initial approval duration")]
    assert [p.text for p in c.passages] == ["Initial approval duration is up to 12 months.", "Reauthorization approval duration is up to 12 months."]


@pytest.mark.slow  # check on a KB copy (0.8 s a run); the fast lane keeps the changed byte, the paraphrase and the waiver's quotation
def test_an_unclosed_quotation_mark_in_a_section_comment_is_an_error(kb_copy):
    line = edit(kb_copy / "criteria" / "5_sjia.lp", '% § 5 - "prescribed by, or in consultation with, a rheumatologist".', '% § 5 - "prescribed by, or in consultation with, a rheumatologist.')
    (err,) = errors(kb_copy)
    assert err.line == line and "not closed" in err.message


@pytest.mark.slow  # check on a KB copy (0.8 s a run); the fast lane keeps the changed byte, the paraphrase and the waiver's quotation
def test_the_kbs_own_words_are_marked_and_not_checked(kb_copy):
    target = kb_copy / "criteria" / "3_rheumatoid_arthritis.lp"
    note = 'note_text(failure_too_short, "A csDMARD failure documented for less than 3 months does not show failure after 3 months.").'
    edit(target, "% check: own words - explanations of the readings above, not clauses.\n", "")
    flagged = errors(kb_copy)
    assert len(flagged) == 3 and all("quotation not found" in d.message for d in flagged)  # the three notes are not the policy's words
    edit(target, note, "% check: own words\n" + note)
    assert any("must say why" in d.message for d in errors(kb_copy))


def test_an_ellipsis_cites_only_the_passages_it_quotes(analysis):
    """NC.4 quotes the first and the last sentence of the condition: the trial's details between are waived, not cited."""
    (nc4,) = [c for c in analysis.citations if c.quote.ids == ("NC.4",)]
    passages = by_label(analysis, "not_covered", "4")
    assert [p.text.split(" ")[0] for p in nc4.passages] == ["Lupus", "The", "The"]
    middle = [p for p in passages if p not in nc4.passages]
    assert len(middle) == 3 and all(analysis.status(p) == "waived" for p in middle)


def test_nc4_and_nc5_carry_the_policys_sentences(analysis, kb):
    for reason, indication in (("NC.4", "lupus_arthritis"), ("NC.5", "osteoarthritis")):
        (citation,) = [c for c in analysis.citations if c.quote.ids == (reason,)]
        text = kb.vocabulary.reason_texts[reason]
        for part in text.split(" ... "):
            assert normalise(part) in " ".join(p.text for p in citation.passages)
        assert evaluate({"indication": indication}, KB_DIR).reasons[0].text == text
    assert "(n = 4) with systemic lupus erythematosus (SLE)" in kb.vocabulary.reason_texts["NC.4"]
    assert "randomized to Kineret 50 mg, Kineret 150 mg, or placebo" in kb.vocabulary.reason_texts["NC.5"]


def test_a_quotation_found_in_several_places_cites_those_its_header_names(analysis):
    sjia = [c for c in analysis.citations if c.quote.file.endswith("5_sjia.lp") and c.quote.kind == "comment"]
    assert sjia and all([p.label for p in c.passages] == ["5"] for c in sjia)
    (shared,) = [
        c
        for c in analysis.citations
        if c.quote.file.endswith("medical_necessity.lp")
        and c.quote.text == "prescribed by, or in consultation with"
        and c.quote.line == min(x.quote.line for x in analysis.citations if x.quote.file.endswith("medical_necessity.lp") and x.quote.text == "prescribed by, or in consultation with")
    ]
    assert [p.label for p in shared.passages] == ["1.B", "2.B", "3.B", "4", "5"]


@pytest.mark.slow  # check on a KB copy (0.8 s a run); the fast lane keeps the changed byte, the paraphrase and the waiver's quotation
def test_a_quotation_in_several_places_its_header_does_not_name_is_an_error(kb_copy):
    line = edit(kb_copy / "criteria" / "5_sjia.lp", '% § 5 - "prescribed by, or in consultation with, a rheumatologist".', '% § Overview - "prescribed by, or in consultation with, a rheumatologist".')
    (err,) = errors(kb_copy)
    assert err.line == line and "found in" in err.message and "places" in err.message and "§ Overview" in err.message


@pytest.mark.slow  # check on a KB copy (0.8 s a run); the fast lane keeps the changed byte, the paraphrase and the waiver's quotation
def test_the_framework_cites_no_policy(kb_copy):
    """The framework is shared by every policy: a § citation there is an error, and it cites no passage."""
    framework = kb_copy.parents[2] / "framework" / "criteria.lp"
    line = edit(framework, "% BOTH / ALL of the following:", '% § Medical Necessity Criteria - "Individual meets ALL of the following criteria":')
    (err,) = errors(kb_copy)
    assert err.file.endswith("framework/criteria.lp") and err.line == line and err.code == "section"
    assert "shared by every policy" in err.message and "plain prose" in err.message
    assert not [c for c in analyse(parse_kb(kb_copy)).citations if "/kb/framework/" in Path(c.quote.file).resolve().as_posix()]


def test_no_framework_file_cites_the_policy(analysis):
    """The shipped framework quotes no policy: every citation of the text is a policy version's."""
    framework = KB_DIR / "framework"
    assert not [f for f in rule_files(framework) if re.search(r"^\s*%+\s*§", f.read_text(encoding="utf-8"), re.M)]
    assert analysis.citations and all("/policies/" in Path(c.quote.file).resolve().as_posix() for c in analysis.citations)


# --- waivers -------------------------------------------------------------------------------------


@pytest.mark.slow  # check on a KB copy (0.8 s a run); the fast lane keeps the changed byte, the paraphrase and the waiver's quotation
def test_every_waiver_names_a_reason_the_kb_gives(kb_copy):
    line = edit(kb_copy / "source_text.lp", "source_waiver(section(references), references).", "source_waiver(section(references), literature).")
    (err,) = errors(kb_copy)
    assert err.line == line and "literature" in err.message


@pytest.mark.slow  # check on a KB copy (0.8 s); the fast lane keeps the changed byte and the paraphrase
def test_a_waiver_quotes_the_text_verbatim(kb_copy):
    line = edit(
        kb_copy / "source_text.lp",
        'source_waiver("Similar to other studies in this population, there was a significant placebo effect noted.", evidence).',
        'source_waiver("Similar to other studies, there was a placebo effect.", evidence).',
    )
    (err,) = errors(kb_copy)
    assert err.line == line and "quotation not found" in err.message and "Similar to other studies in this population" in err.message


@pytest.mark.slow  # check on a KB copy (0.8 s a run); the fast lane keeps the changed byte, the paraphrase and the waiver's quotation
def test_a_waiver_of_passages_rules_cite_is_a_warning(kb_copy):
    text = (kb_copy / "source_text.lp").read_text()
    (kb_copy / "source_text.lp").write_text(text + '\n% § Authorization Duration - waived for the test.\nsource_waiver("Initial approval duration is up to 12 months.", dosing).\n')
    (warning,) = errors(kb_copy, "warning")
    assert "waiver not needed" in warning.message


def test_every_passage_of_a_waived_range_is_waived(analysis):
    passages = by_label(analysis, "not_covered", "1")
    assert [analysis.status(p) for p in passages] == ["cited", "cited"] + ["waived"] * (len(passages) - 2)


@pytest.mark.slow  # check on a KB copy (0.8 s a run); the fast lane keeps the changed byte, the paraphrase and the waiver's quotation
def test_the_declared_text_must_lie_in_the_source_folder(kb_copy):
    edit(kb_copy / "policy.lp", 'policy_source("source/IP0243-anakinra-2024-06-01.txt"', 'policy_source("../../../framework/words/answers.lp"')
    (err,) = errors(kb_copy)
    assert err.file.endswith("policy.lp") and "source/ folder" in err.message
