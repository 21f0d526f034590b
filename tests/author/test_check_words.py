"""check's own findings are worded by the KB (framework/words/check.lp), and by the packaged KB when the checked one cannot speak."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from kineret_asp import load_kb
from kineret_asp.author import check
from kineret_asp.author.check import CheckWordsError, check_kb, check_words
from kineret_asp.templates import placeholders

from ..conftest import KB_DIR, ROOT

WORDS_FILE = Path("framework") / "words" / "check.lp"
HINT = "; did you mean 'biologic_trial/1'?"  # what did_you_mean adds


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def add_typo(version: Path) -> None:
    """A rule that reads biologc/1, which nothing defines."""
    rules = version / "vocabulary.lp"
    rules.write_text(rules.read_text() + "\n% § 1 - a rule with a typo in its body.\nreads_a_typo(X) :- biologc(X).\n")


def messages(kb: Path, code: str) -> list[str]:
    return [d.message for d in check_kb(kb).diagnostics if d.code == code]


@pytest.mark.slow
def test_an_edited_check_template_is_printed_as_edited(kb_copy):
    edit(kb_copy.parents[2] / WORDS_FILE, '"{name}/{arity} is used but never defined{hint}"', '"{name}/{arity}: nothing defines it{hint} (edited)"')
    add_typo(kb_copy)
    (message,) = messages(kb_copy, "undefined")
    assert message == f"biologc/1: nothing defines it{HINT} (edited)"


@pytest.mark.slow
def test_a_policys_own_text_replaces_a_check_word(kb_copy):
    """check's words are text/2 facts like every other: a version's own fact wins."""
    add_typo(kb_copy)
    policy = kb_copy / "policy.lp"
    policy.write_text(policy.read_text() + '\n% § Header - the policy words check\'s findings its own way.\ntext(check_undefined, "nothing defines {name}/{arity}{hint}").\n')
    assert messages(kb_copy, "undefined") == [f"nothing defines biologc/1{HINT}"]


@pytest.mark.slow
def test_a_words_file_with_a_syntax_error_gets_the_syntax_error_and_every_other_finding_in_the_packaged_words(kb_copy):
    words = kb_copy.parents[2] / WORDS_FILE
    edit(words, '"{name}/{arity} is used but never defined{hint}"', '"EDITED {name}"')
    words.write_text(words.read_text() + '\ntext(check_broken, "no end"\n')
    add_typo(kb_copy)
    report = check_kb(kb_copy)
    syntax = [d for d in report.diagnostics if d.file.endswith("check.lp")]
    assert syntax and all("syntax error" in d.message for d in syntax), syntax
    assert report.diagnostics[0] in syntax  # listed first
    assert [d.message for d in report.diagnostics if d.code == "undefined"] == [f"biologc/1 is used but never defined{HINT}"]


@pytest.mark.slow
def test_a_kb_that_does_not_load_is_checked_in_the_packaged_words_even_where_its_own_are_edited(kb_copy):
    """A syntax error elsewhere: the KB did not load, so none of its words are read (they may be the broken ones)."""
    edit(kb_copy.parents[2] / WORDS_FILE, '"{name}/{arity} is used but never defined{hint}"', '"EDITED {name}"')
    author = kb_copy.parents[2] / "framework" / "words" / "author.lp"
    author.write_text(author.read_text() + '\ntext(trace_total, "no end"\n')
    add_typo(kb_copy)
    assert messages(kb_copy, "undefined") == [f"biologc/1 is used but never defined{HINT}"]


@pytest.mark.slow
def test_a_key_the_checked_kb_lacks_is_read_from_the_packaged_words(kb_copy):
    """An older tree whose framework has no such word: the KB loads, and that one finding is worded by the packaged KB."""
    words = kb_copy.parents[2] / WORDS_FILE
    edit(words, 'text(check_undefined, "{name}/{arity} is used but never defined{hint}").', "")
    edit(words, '"{name}/{arity} is defined but never used', '"EDITED {name}/{arity} is defined but never used')
    add_typo(kb_copy)
    report = check_kb(kb_copy)
    assert [d.message for d in report.diagnostics if d.code == "undefined"] == [f"biologc/1 is used but never defined{HINT}"]
    assert [d.message for d in report.diagnostics if d.code == "unused"] == ["EDITED reads_a_typo/1 is defined but never used (mark reference tables with '% check: reference')"]


def test_a_folder_that_is_no_kb_is_worded_by_the_packaged_kb(tmp_path):
    (finding,) = check_kb(tmp_path).diagnostics
    assert finding.message == load_kb(KB_DIR).vocabulary.words["check_not_a_kb"]


def test_no_words_anywhere_is_a_clear_internal_error(tmp_path, monkeypatch):
    """The packaged KB lacks the key, or does not load: an error that says so, never a finding without words."""
    from kineret_asp.knowledge import layout

    monkeypatch.setattr(check, "_PACKAGED_WORDS", [{}])
    with pytest.raises(CheckWordsError, match=r"no text\(check_not_a_kb, \.\.\.\)"):
        check_words(None)("check_not_a_kb")
    monkeypatch.setattr(check, "_PACKAGED_WORDS", [])
    monkeypatch.setattr(layout, "default_kb_path", lambda: tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckWordsError, match="packaged with the program"):
        check_kb(tmp_path / "empty")
    monkeypatch.setattr(check, "_PACKAGED_WORDS", [])
    broken = tmp_path / "policies" / "IP0000" / "2024-01-01"
    broken.mkdir(parents=True)
    (broken / "policy.lp").write_text("policy(.\n")
    with pytest.raises(CheckWordsError, match="does not load"):
        check_words(None)("check_not_a_kb")


def _call_sites() -> dict[str, set[str]]:
    """Every word key check.py fills (w("key", ...), check_words(kb)("key", ...)), with the names it fills it with."""
    tree = ast.parse((ROOT / "kineret_asp" / "author" / "check.py").read_text(encoding="utf-8"))

    def literals(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.IfExp):
            return literals(node.body) + literals(node.orelse)
        raise AssertionError(f"check.py line {node.lineno}: a word key that is not a literal")

    sites: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        if (isinstance(func, ast.Name) and func.id == "w") or (isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "check_words"):
            for key in literals(node.args[0]):
                sites.setdefault(key, set()).update(k.arg for k in node.keywords)
    return sites


def test_every_word_check_fills_is_in_the_packaged_words_with_the_placeholders_it_fills():
    sites = _call_sites()
    words = load_kb(KB_DIR).vocabulary.words
    assert len(sites) >= 40
    assert not sorted(set(sites) - set(words)), "keys check.py fills that the packaged KB lacks"
    for key, names in sites.items():
        assert set(placeholders(words[key])) == names, f"text({key}, ...) has {placeholders(words[key])}, check.py fills {sorted(names)}"
    own = set(re.findall(r"^text\((\w+),", (KB_DIR / WORDS_FILE).read_text(encoding="utf-8"), re.M))
    assert own == set(sites), "framework/words/check.lp and check.py's keys differ"


def test_the_summary_line_is_worded_by_the_checked_kb(kb_copy):
    """The line that ends `check`'s text output comes from check.lp too: the counts and the KB checked."""
    from click.testing import CliRunner

    from kineret_asp.cli import main

    edit(kb_copy.parents[2] / WORDS_FILE, '"{errors} error(s), {warnings} warning(s) (KB: {kb})"', '"checked {kb}: {errors} errors, {warnings} warnings"')
    edit(kb_copy.parents[2] / WORDS_FILE, '"{version} in {root}"', '"version {version} of {root}"')
    result = CliRunner().invoke(main, ["check", "--kb", str(kb_copy)])
    root = kb_copy.parents[2].resolve()
    assert result.output.strip().splitlines()[-1] == f"checked version {kb_copy.resolve().relative_to(root).as_posix()} of {root}: 0 errors, 0 warnings", result.output
    packaged = check_kb(KB_DIR).summary(KB_DIR.resolve())
    assert packaged == f"0 error(s), 0 warning(s) (KB: {KB_DIR.resolve()})"
