"""Every word the program prints comes from the KB: change them in a KB copy, and only the new ones are printed.

A KB copy gets a new policy title and drug name (everywhere the policy's
words say them), new route texts, new decision texts and new words for every
kind of documentation `missing` proposes (documentation_text/4). Text and
JSON output of evaluate, what-if and missing must show the new words and
none of the old.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kineret_asp import load_kb

from ..conftest import FACTS, KB_DIR, copy_kb
from ..conftest import cli as run_cli

KB = load_kb(KB_DIR)
OLD_TITLE, OLD_DRUG = KB.vocabulary.title, KB.vocabulary.drug_name
NEW_TITLE, NEW_DRUG = "Zentakinra", "Zentaret"
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
PLACEHOLDER = re.compile(r"\{\??[^{}]*\}")
CASES = {
    "approved": FACTS / "ra" / "approved_employer_group.json",
    "continuation": FACTS / "continuation" / "ra_no_response.json",
    "not_met": FACTS / "ra" / "failure_without_months.json",
    "other_policy": FACTS / "other_policy" / "covid_19.json",
    "not_covered": FACTS / "not_covered" / "concurrent_biologic.json",
    "dira": FACTS / "dira" / "il1rn_pending.json",
    "caps": FACTS / "caps" / "fcas_no_specialist.json",
}


def old_documentation_words() -> list[str]:
    """The words of each documentation sentence, between its placeholders."""
    words = []
    for _, sentence, _, _ in KB.facts("documentation_text", 4):
        words += [part.strip(" ,:") for part in PLACEHOLDER.split(str(sentence)) if len(part.strip(" ,:")) > 3]
    return words


def rewrite_strings(text: str, swaps: dict[str, str]) -> str:
    def swap(m: re.Match) -> str:
        s = m.group(0)
        for old, new in swaps.items():
            s = s.replace(old, new)
        return s

    return STRING.sub(swap, text)


@pytest.fixture(scope="module")
def reworded(tmp_path_factory) -> Path:
    """A KB copy whose title, drug name, route, decision and documentation words are all new: its root."""
    root = copy_kb(tmp_path_factory.mktemp("words")).parents[2]
    swaps = {OLD_DRUG: NEW_DRUG, OLD_TITLE: NEW_TITLE, OLD_TITLE.lower(): NEW_TITLE.lower()}
    for path in root.rglob("*.lp"):
        text = rewrite_strings(path.read_text(), swaps)
        text = re.sub(r'^route_text\((\w+), "[^"]*"\)\.', r'route_text(\1, "route words for \1").', text, flags=re.M)
        text = re.sub(r'^decision_text\((\w+), "[^"]*"\)\.', r'decision_text(\1, "VERDICT-\1").', text, flags=re.M)
        text = re.sub(r'^documentation_text\((\w+), "[^"]*"', r'documentation_text(\1, "evidence-\1 {subject} {choice}"', text, flags=re.M)
        path.write_text(text)
    kb = load_kb(root)
    assert (kb.vocabulary.title, kb.vocabulary.drug_name) == (NEW_TITLE, NEW_DRUG)
    return root


def cli(*args: str) -> str:
    out = run_cli(*args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def outputs(command: str, kb: Path, extra: tuple[str, ...] = ()) -> dict[str, tuple[str, str]]:
    """Text (from the command line) and JSON (the same value the command prints with --format json) for every case."""
    from kineret_asp import evaluate, what_if
    from kineret_asp.cases.changes import parse_assignment
    from kineret_asp.explain.missing import missing

    knowledge = kb  # the tree, as the command line uses it: the version is chosen the same way
    out = {}
    for name, path in CASES.items():
        if command == "evaluate":
            value = evaluate(path, knowledge).to_dict()
        elif command == "what-if":
            value = what_if(path, [parse_assignment(extra[1], extra[0][2:])], knowledge).to_dict()
        else:
            value = missing(path, knowledge).to_dict()
        out[name] = (cli(command, str(path), *extra, "--kb", str(kb)), json.dumps(value, indent=2, ensure_ascii=False))
    return out


@pytest.mark.slow  # missing on every case of the reworded KB; the fast lane keeps evaluate's words
def test_the_json_output_is_the_value_the_command_line_prints(reworded):
    path = str(CASES["continuation"])
    assert cli("missing", path, "--kb", str(reworded), "--format", "json").strip() == outputs("missing", reworded)["continuation"][1]


def old_words() -> list[str]:
    v = KB.vocabulary
    return [OLD_DRUG, OLD_TITLE, OLD_TITLE.lower(), *v.route_texts.values(), *v.decision_texts.values()]


def assert_none_of(words: list[str], text: str, where: str) -> None:
    found = [w for w in words if w in text]
    assert not found, f"{where}: old words {found}"


def test_the_original_words_are_printed_by_the_original_kb():
    text = cli("evaluate", str(CASES["approved"]))
    assert f"{OLD_TITLE} ({OLD_DRUG})" in text and KB.vocabulary.route_texts["auto_approve"] in text
    missing = cli("missing", str(CASES["not_met"]))
    assert any(w in missing for w in old_documentation_words())


def test_evaluate_prints_only_the_new_words(reworded):
    results = outputs("evaluate", reworded)
    for name, (text, data) in results.items():
        assert f"{NEW_TITLE} ({NEW_DRUG})" in text.splitlines()[0], name
        decision = json.loads(data)
        assert f"route words for {decision['route']}" in text and f"VERDICT-{decision['decision']}" in text, name
        assert_none_of(old_words(), text, f"evaluate {name}")
        assert_none_of(old_words(), data, f"evaluate --format json {name}")
    assert NEW_DRUG in results["continuation"][1]  # the criterion R's words name the drug


@pytest.mark.slow  # the reworded KB's what-if and missing on every case; the fast lane keeps evaluate and missing's JSON
def test_what_if_prints_only_the_new_words(reworded):
    text, data = outputs("what-if", reworded, ("--set", "beneficial_response=true"))["continuation"]
    assert "VERDICT-" in text and NEW_DRUG in text and NEW_DRUG in data
    for name, (text, data) in outputs("what-if", reworded, ("--set", "plan=individual_family")).items():
        assert_none_of(old_words(), text, f"what-if {name}")
        assert_none_of(old_words(), data, f"what-if --format json {name}")


@pytest.mark.slow  # the reworded KB's what-if and missing on every case; the fast lane keeps evaluate and missing's JSON
def test_missing_prints_only_the_new_words(reworded):
    results = outputs("missing", reworded)
    kinds_seen = set()
    criteria = [c.text for c in load_kb(reworded).vocabulary.criteria.values()]  # missing opens with the criteria, in the policy's own words
    documentation = [w for w in old_documentation_words() if not any(w in c for c in criteria)]
    for name, (text, data) in results.items():
        assert_none_of(old_words() + documentation, text, f"missing {name}")
        assert_none_of(old_words() + old_documentation_words(), data, f"missing --format json {name}")
        kinds_seen |= set(re.findall(r"evidence-(\w+)", text))
        assert set(re.findall(r"evidence-(\w+)", data)) == set(re.findall(r"evidence-(\w+)", text)), name
    kinds = {str(k) for k, _, _, _ in KB.facts("documentation_text", 4)}
    assert {"specialty", "history", "genetic_test", "months", "beneficial_response", "discontinue"} <= kinds_seen <= kinds
    assert "verdict-" in results["not_met"][0]  # the case line names the decision in the KB's words
