"""The edit docs/authoring.md walks through, performed on a copy of the KB."""

from __future__ import annotations

import re
import shutil

import pytest

from kineret_asp import evaluate
from kineret_asp.author.check import check_kb
from kineret_asp.author.diff import diff
from kineret_asp.author.example_cases import run_case_tests
from kineret_asp.author.verify import verify_kb
from kineret_asp.knowledge.base import load_kb

from ..conftest import FACTS, KB_DIR, ROOT, cli, copy_kb, revise_source

ROW_F = 'non_preferred_row(individual_family, "3.C", "3.C.F", xeljanz_family, "F. Xeljanz/XR [requires prior authorization]").'


def add_row(kb, key: str) -> None:
    row_f = "\tF. Xeljanz/XR [requires prior authorization]\n"
    revise_source(kb, row_f, row_f + "\tG. Kevzara [requires prior authorization]\n")
    path = kb / "tables" / "non_preferred_products.lp"
    text = path.read_text()
    assert ROW_F in text
    path.write_text(text.replace(ROW_F, ROW_F + f'\nnon_preferred_row(individual_family, "3.C", "3.C.G", {key},         "G. Kevzara [requires prior authorization]").'))


@pytest.mark.slow
def test_the_guide_edit_end_to_end(tmp_path):
    assert "3.C.G" in (ROOT / "docs" / "authoring.md").read_text()
    kb = copy_kb(tmp_path / "first")
    add_row(kb, "kevzra")
    errors = [d for d in check_kb(kb).diagnostics if d.severity == "error"]
    assert len(errors) == 1 and "did you mean 'kevzara'?" in errors[0].message
    shown = (ROOT / "docs" / "authoring.md").read_text()
    assert f"{errors[0].line}:{errors[0].column}: error: {errors[0].message}" in shown  # the guide shows the very message
    kb = copy_kb(tmp_path / "second")
    add_row(kb, "kevzara")
    assert check_kb(kb).errors == 0
    report = run_case_tests([FACTS], load_kb(kb))
    failed = sorted(r.path.split("facts/")[1] for r in report.results if not r.passed)
    assert failed == ["ra/approved_individual_family_contraindications.json", "ra/xeljanz_and_xr_count_once.json"]
    for r in report.results:
        if not r.passed:
            assert set(r.differences) == {"unmet"}
            want, got = r.differences["unmet"]
            assert sorted(got) == sorted(want + ["3.C.G"])
    assert all(r.holds for r in verify_kb(kb))
    changes = diff(KB_DIR, kb).classes
    assert sorted(c.new for c in changes) == ["approved", "approved", "undetermined", "undetermined"]
    for c in changes:
        assert (c.indication, c.plan, c.old) == ("rheumatoid_arthritis", "individual_family", "criteria_not_met")
        assert "kevzara" in {e["drug"] for e in c.example["medication_history"]}
        assert evaluate(c.example, kb).decision == c.new
        if c.new == "undetermined":  # the same patients, taking a drug the KB cannot class
            assert [u.id for u in evaluate(c.example, kb).undetermined] == ["NC.2"]


# --- "Adding an input": the shown commands and their output ------------------------------------------

CONSOLE = re.compile(r"```\n(\$ .*?)```", re.S)


def console_steps(text: str) -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of the section's console blocks, with the output lines shown under it."""
    steps: list[tuple[str, list[str]]] = []
    for block in CONSOLE.findall(text):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
    return steps


def shown_in(shown: list[str], actual: list[str]) -> bool:
    """Whether output matches what the guide shows: '...' skips lines; a line with '...' matches by its start."""

    def same(s: str, a: str) -> bool:
        return a.startswith(s.split("...", 1)[0]) if "..." in s else a == s

    segments: list[list[str]] = [[]]
    for line in shown:
        if line == "...":
            segments.append([])
        else:
            segments[-1].append(line)
    pos = 0
    for i, segment in enumerate(segments):
        if not segment:
            continue
        starts = [pos] if i == 0 else range(pos, len(actual) - len(segment) + 1)
        found = next((j for j in starts if j + len(segment) <= len(actual) and all(same(s, a) for s, a in zip(segment, actual[j:]))), None)
        if found is None:
            return False
        pos = found + len(segment)
    return True


@pytest.mark.slow  # the guide's nine commands, verify and a diff over the case space among them
def test_the_adding_an_input_section_runs_as_shown(tmp_path):
    from .test_new_input import apply_guide_edits, section

    root = tmp_path / "kb-edit"
    shutil.copytree(KB_DIR, root, ignore=shutil.ignore_patterns("cases"))
    apply_guide_edits(root)
    work = tmp_path / "work"
    work.mkdir()
    (work / "kb").symlink_to(KB_DIR)
    steps = console_steps(section())
    commands = [c.split()[1] for c, _ in steps if c.startswith("kineret-asp ")]
    assert commands == ["check", "evaluate", "what-if", "missing", "evaluate", "verify", "diff", "batch", "schema"]
    for command, shown in steps:
        words = command.split()
        if words[0] == "cat":  # the guide shows a file: write it
            (work / words[1]).write_text("\n".join(shown) + "\n")
            continue
        args = [str(root) if w == "/tmp/kb-edit" else w for w in words[1:]]
        out = cli(*args, cwd=work)
        assert out.returncode == 0, (command, out.stderr)
        stdout = out.stdout.replace(str(root), "/tmp/kb-edit")  # outputs name the KB folder: the guide shows it as written
        assert shown_in(shown, stdout.splitlines()), (command, shown, out.stdout)


def test_the_guide_output_matcher():
    assert shown_in(["a", "...", "c"], ["a", "b", "c", "d"])
    assert not shown_in(["b"], ["a", "b"])
    assert shown_in(["...", "b"], ["a", "b"])
    assert shown_in(["x ..."], ["x and more"]) and not shown_in(["y ..."], ["x"])
    assert not shown_in(["a", "c"], ["a", "b", "c"])


def test_the_guide_layout_names_every_file_of_the_tree():
    """Every row of the layout table is a file or folder of the tree, and every rule file has a row."""
    guide = (ROOT / "docs" / "authoring.md").read_text()
    table = guide.split("## Layout", 1)[1].split("Conventions", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \|", table, re.M)
    assert rows
    patterns = [re.sub(r"<[^>]+>|\*", "*", r) for r in rows]
    for pattern in patterns:
        assert list(KB_DIR.glob(pattern.rstrip("/"))), f"the guide's layout names {pattern}, which kb/ does not have"
    files = [p.relative_to(KB_DIR) for p in KB_DIR.rglob("*.lp") if "cases" not in p.parts]
    for f in files:
        assert any(f.match(p) or str(f) == p for p in patterns), f"kb/{f} is not in the guide's layout table"
