"""kineret-asp vocabulary: every key a case may use, with its words and the details the KB derives for it."""

from __future__ import annotations

import functools
import json
import subprocess

import pytest

from kineret_asp import evaluate, load_kb
from kineret_asp.author.check import check_kb
from kineret_asp.author.vocabulary_listing import field_vocabularies, render_listing, vocabularies

from ..conftest import KB_DIR, add_newmab, cli

KB = load_kb(KB_DIR)


def run(*args: str) -> subprocess.CompletedProcess:
    return cli("vocabulary", *args)


def listing(kb=KB) -> dict[str, dict]:
    """The command's JSON listing, by vocabulary (the packaged KB's is listed once: it never changes)."""
    if kb is KB:
        return json.loads(json.dumps(_packaged_listing()))  # a fresh copy each time
    return _listing(kb)


def _listing(kb) -> dict[str, dict]:
    return {x["name"]: x for x in json.loads(run("--format", "json", "--kb", str(kb.path)).stdout)["vocabularies"]}


@functools.lru_cache(maxsize=1)
def _packaged_listing() -> dict[str, dict]:
    return _listing(KB)


def details(name: str, key: str, kb=KB) -> dict[str, list[str]]:
    return next(k for k in listing(kb)[name]["keys"] if k["key"] == key)["details"]


def test_every_vocabulary_is_listed_with_every_key_and_its_words():
    listed = listing()
    v = KB.vocabulary
    assert set(listed) == set(v.nouns)
    for name, x in listed.items():
        assert x["noun"] == v.nouns[name]
        assert [(k["key"], k["label"]) for k in x["keys"]] == list(v.keys[name].items())


def test_vocabularies_a_case_uses_come_first_with_their_fields():
    names = [x.name for x in vocabularies(KB)]
    used = field_vocabularies(KB)
    assert names[: len(used)] == list(used)
    fields = {x.name: x.fields for x in vocabularies(KB)}
    for name, paths in used.items():
        assert list(fields[name]) == [p for p, _ in paths]
    assert fields["drug"] == ("requested_drug", "medication_history.drug", "current_medications", "drug_categories.drug")
    unused = [x for x in vocabularies(KB) if not x.fields]
    assert unused and all("used by no case field" in render_listing([x], KB) for x in unused)


def test_a_name_vocabulary_says_other_names_are_accepted():
    gene = vocabularies(KB, "gene")[0]
    assert gene.open and "any other name is accepted as written" in render_listing([gene], KB)
    assert not vocabularies(KB, "drug")[0].open


def test_a_drug_shows_its_appendix_table_and_class_from_the_tables():
    tables = {t: str(title) for t, title, _ in KB.facts("appendix_table", 3)}
    classes = {str(c): str(name) for c, name in KB.facts("drug_class", 2)}
    rows = {str(d): (t, str(c)) for d, t, c in KB.facts("appendix_drug", 3)}
    assert len(rows) > 30
    listed = {k["key"]: k["details"] for k in listing()["drug"]["keys"]}
    for drug, d in listed.items():
        if drug in rows:
            table, cls = rows[drug]
            assert d["Appendix table"] == [tables[table]] and d["Appendix class"] == [classes[cls]], drug
        else:
            assert "Appendix table" not in d and "Appendix class" not in d, drug


def test_a_drug_shows_whether_it_is_a_csdmard_and_its_concurrent_use():
    listed = {k["key"]: k["details"] for k in listing()["drug"]["keys"]}
    csdmards = {str(d) for (d,) in KB.facts("csdmard", 1)}
    assert csdmards == {d for d, x in listed.items() if "csDMARD" in x} and len(csdmards) == 4
    excluded = {str(d) for (d,) in KB.facts("biologic_or_tsdmard", 1)} - {str(d) for (d,) in KB.facts("requested_drug", 1)}
    assert excluded == {d for d, x in listed.items() if "Concurrent use" in x}
    assert "kineret" not in excluded and not csdmards & excluded


def test_a_drug_shows_the_non_preferred_row_it_counts_for():
    assert details("drug", "humira")["Non-Preferred Product row"][0].startswith("B. Adalimumab Product")
    assert details("drug", "hyrimoz")["Counts as the product"] == details("drug", "humira")["Counts as the product"] == ["Adalimumab product"]
    assert details("drug", "xeljanz_xr")["Non-Preferred Product row"][0].startswith("F. Xeljanz/XR")
    # Actemra IV is not row A (Actemra SC); Xeljanz oral solution is not row F
    assert "Non-Preferred Product row" not in details("drug", "actemra_iv")
    assert "Non-Preferred Product row" not in details("drug", "xeljanz_oral_solution")
    assert details("drug", "actemra_sc")["Non-Preferred Product row"][0].startswith("A. Actemra SC")
    # the row is the same in both plans' tables: shown once
    assert len(details("drug", "enbrel")["Non-Preferred Product row"]) == 1


def test_indications_and_specialties_show_how_the_policy_decides_them():
    indications = {k["key"]: k["details"] for k in listing()["indication"]["keys"]}
    assert indications["rheumatoid_arthritis"] == {"Decided by criterion": ["3"]}
    assert indications["crohns_disease"] == {"Not covered": ["NC.3"]}
    assert list(indications["covid_19"]) == ["Decided under another policy"]
    assert details("specialty", "rheumatology")["Meets criterion"] == ["1.B", "2.B", "3.B", "4", "5"]
    assert details("specialty", "autoinflammatory")["Meets criterion"] == ["2.B"]


def test_the_text_listing_and_one_vocabulary():
    out = run("drug")
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0] == "drug (a drug)" and lines[1] == "  used by: requested_drug, medication_history.drug, current_medications, drug_categories.drug"
    assert all(any(line.split()[:1] == [k] for line in lines) for k in KB.vocabulary.keys["drug"])
    assert "      Appendix table: Table 1. Approved TNFis for Targeted Indications." in lines
    assert "indication (" not in out.stdout
    everything = run()
    assert everything.returncode == 0 and all(f"{n} ({noun})" in everything.stdout for n, noun in KB.vocabulary.nouns.items())


def test_an_unknown_vocabulary_is_one_line_and_exit_2():
    out = run("drugs")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and "did you mean 'drug'?" in out.stderr


def test_the_listing_is_deterministic():
    assert run("--format", "json").stdout == run("--format", "json").stdout


@pytest.mark.slow  # check on a KB copy (0.8 s)
def test_a_new_drug_is_listed_with_its_details_after_a_kb_edit_only(kb_copy):
    add_newmab(kb_copy)
    assert check_kb(kb_copy).errors == 0
    kb = load_kb(kb_copy)
    d = details("drug", "newmab", kb)
    assert d["Appendix class"] == ["Interleukin-6 Blockers"] and "Concurrent use" in d
    assert evaluate({"indication": "sjia", "current_medications": ["newmab"]}, kb).decision == "not_covered"


def test_the_listing_words_come_from_the_kb(kb_copy):
    words = kb_copy.parents[2] / "framework" / "words" / "author.lp"
    words.write_text(words.read_text().replace('text(vocabulary_fields, "used by: {fields}").', 'text(vocabulary_fields, "fields: {fields}").'))
    out = run("plan", "--kb", str(kb_copy))
    assert out.returncode == 0 and "  fields: plan" in out.stdout and "used by" not in out.stdout
