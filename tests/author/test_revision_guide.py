"""A revision end to end (docs/authoring.md, "A revision, end to end"): the guide's edits made, its commands run.

The guide is the recipe: every edit of its section is read from it and
made on a copy of the KB, in the order it shows them, and every command is
run there and its output compared with what the guide shows. The revision
adds two inputs (each with its FHIR mapping), a specialty key and a drug
key, and changes two durations; ``diff`` must compare the versions whatever
their schemas, with a class for each added input and none split by a field
neither version reads, and ``test --update --yes`` must make ``test`` pass,
a second run changing nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kineret_asp import evaluate
from kineret_asp.cli import main

from ..cases.test_versions import lines_match
from ..conftest import KB_DIR, ROOT
from .test_new_input import guide_edits

pytestmark = pytest.mark.slow  # a new version, checks, the example cases, verify and a diff over both case spaces

GUIDE_KB = "/tmp/kb-rev"
TITLE = "## A revision, end to end"
OLD, NEW = "2024-06-01", "2025-01-01"
ADDED = {"disease_duration_months": "4.B", "adherence_documented": "R.C"}  # each new input, and the criterion that reads it
EDIT = re.compile(r"`(policies/[^`]+)`\s+\((append|replace the line `(.*?)`)\):\n\n```[a-z]*\n(.*?)```", re.S)
CONSOLE = re.compile(r"```\n(\$ .*?)```", re.S)
SHA = "<SHA-256>"


def section() -> str:
    text = (ROOT / "docs" / "authoring.md").read_text()
    assert TITLE in text, f"docs/authoring.md has no section {TITLE!r}"
    return text.split(TITLE, 1)[1].split("\n## ", 1)[0]


def steps() -> list[tuple]:
    """The section's edits and commands, in its order: ("edit", path, line or None, text), ("guide edits",), ("run", command, shown lines)."""
    text = section()
    found: list[tuple[int, tuple]] = []
    for m in EDIT.finditer(text):
        found.append((m.start(), ("edit", m.group(1), m.group(3), m.group(4))))
    for m in CONSOLE.finditer(text):
        block: list[tuple] = []
        for line in m.group(1).splitlines():
            if line.startswith("$ "):
                block.append(("run", line[2:], []))
            else:
                block[-1][2].append(line)
        found.append((m.start(), ("block", block)))
    marker = text.index('Make the five\n`.lp` edits of "Adding an input"')
    found.append((marker, ("guide edits",)))
    out: list[tuple] = []
    for _, step in sorted(found, key=lambda s: s[0]):
        out.extend(step[1] if step[0] == "block" else [step])
    return out


def edit(root: Path, rel: str, line: str | None, body: str) -> None:
    path = root / rel
    assert path.is_file(), f"the guide edits {rel}, which the KB copy does not have"
    text = path.read_text(encoding="utf-8")
    if SHA in body:
        source = next((path.parent / "source").iterdir())
        body = body.replace(SHA, hashlib.sha256(source.read_bytes()).hexdigest())
    if line is None:
        path.write_text(text + "\n" + body, encoding="utf-8")
        return
    lines = text.split("\n")
    hits = [i for i, x in enumerate(lines) if x.startswith(line)]
    assert len(hits) == 1, f"{rel}: {len(hits)} lines begin with {line!r}"
    lines[hits[0] : hits[0] + 1] = body.rstrip("\n").split("\n")
    path.write_text("\n".join(lines), encoding="utf-8")


def walk(work: Path, run_commands: bool) -> list[str]:
    """Make the guide's edits in ``work`` (a KB copy made by its first command); run its commands when asked. The mismatches found."""
    problems = []
    for step in steps():
        if step[0] == "edit":
            edit(work, *step[1:])
        elif step[0] == "guide edits":
            for rel, mode, body in guide_edits():  # the rules of "Adding an input", in the new version's folder
                path = work / rel.replace(OLD, NEW)
                path.write_text(path.read_text() + "\n" + body if mode == "append" else body)
        else:
            command, shown = step[1], step[2]
            args = shlex.split(command.replace(GUIDE_KB, str(work)))
            if args[0] == "cp":
                shutil.copytree(KB_DIR, work)
                continue
            if args[0] == "mv":
                Path(args[1]).rename(args[2])
                continue
            assert args[0] == "kineret-asp", command
            if not run_commands and args[1] != "new-version":
                continue
            result = CliRunner().invoke(main, args[1:])
            output = result.output.replace(str(work.resolve()), GUIDE_KB).replace(str(work), GUIDE_KB)
            if not lines_match(shown, output.splitlines()):
                problems.append(f"$ {command}\n{output}")
    return problems


@pytest.fixture(scope="module")
def revised(tmp_path_factory) -> Path:
    """The KB tree after the guide's edits (its commands not run: the examples' expect blocks as copied)."""
    work = tmp_path_factory.mktemp("revision") / "kb-rev"
    assert walk(work, run_commands=False) == []
    return work


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_the_revision_guide_runs_as_shown(tmp_path):
    """Every command of the section prints what the section shows, the edits made in its order."""
    commands = [s[1].split()[1] for s in steps() if s[0] == "run" and s[1].startswith("kineret-asp")]
    assert commands == ["new-version", "check", "check", "test", "test", "test", "verify", "diff", "trace"]
    assert sum(1 for s in steps() if s[0] == "edit") >= 20
    problems = walk(tmp_path / "kb-rev", run_commands=True)
    assert not problems, "\n\n".join(problems)


def test_the_revision_adds_two_inputs_a_specialty_a_drug_and_changes_two_durations(revised):
    from kineret_asp.knowledge.base import load_kb

    old, new = load_kb(revised / "policies" / "IP0243" / OLD), load_kb(revised / "policies" / "IP0243" / NEW)
    assert set(new.schema.by_name) - set(old.schema.by_name) == set(ADDED)
    assert set(new.vocabulary.keys["specialty"]) - set(old.vocabulary.keys["specialty"]) == {"allergy_immunology"}
    assert set(new.vocabulary.keys["drug"]) - set(old.vocabulary.keys["drug"]) == {"bimzelx"}
    assert sorted(new.facts("authorization_duration", 2)) != sorted(old.facts("authorization_duration", 2))
    assert {str(r): m for r, m in new.facts("authorization_duration", 2)} == {"initial": 6, "continuation": 24}


def test_diff_across_the_versions_has_a_class_for_each_added_input_and_none_split_by_an_unread_field(revised):
    result = run("diff", "--policy", "IP0243", "--from", OLD, "--to", NEW, "--kb", str(revised), "--exit-code", "--format", "json")
    assert result.exit_code == 1, result.output
    classes = json.loads(result.output)["classes"]
    for field, criterion in ADDED.items():
        hits = [c for c in classes if field in c["example"] and criterion in {f["id"] for f in c["criteria"]}]
        assert hits, f"no class for the added input {field}"
        assert all(field in c["versions"]["old"]["not_read"] for c in hits)  # the old version cannot read it, and says so
    allergist = [c for c in classes if "allergy_immunology" in c["example"].get("prescriber_specialties", [])]
    # a specialty the old version does not name is, for it, another specialty that meets nothing: it reads the case whole
    assert allergist and all(c["versions"]["old"]["cannot_express"] == [] and "allergy_immunology" in c["versions"]["old"]["case"]["prescriber_specialties"] for c in allergist)
    # a header field splits a class only where some other value of it changes what a version decides for its example
    folders = {side: revised / "policies" / "IP0243" / v for side, v in (("old", OLD), ("new", NEW))}
    values = {"plan": [None, "employer_group", "individual_family"], "request": [None, "initial", "continuation"]}
    for c in classes:
        for field in ("plan", "request"):
            if field not in c:
                assert field in c["not_split_by"]
                continue
            read = False
            for side, folder in folders.items():
                case = c["versions"][side]["case"]
                base = _outcome(evaluate(case, folder))
                for value in values[field]:
                    other = {k: v for k, v in case.items() if k != field} | ({field: value} if value is not None else {})
                    if other != case and _outcome(evaluate(other, folder)) != base:
                        read = True
            assert read, f"class {c['label']} is split by {field}, which neither version reads for it"
    assert any("plan" in c["not_split_by"] for c in classes) and any("plan" in c for c in classes)


def _outcome(d) -> tuple:
    return (d.decision, d.authorization_months, sorted(d.statuses().items()), sorted(r.id for r in d.reasons))


def test_update_yes_makes_test_pass_and_a_second_run_changes_nothing(revised, tmp_path):
    work = tmp_path / "kb-rev"
    shutil.copytree(revised, work)
    cases = sorted((work / "policies" / "IP0243" / NEW / "cases").rglob("*.json"))
    assert run("test", "--kb", str(work)).exit_code == 1
    updated = run("test", "--update", "--yes", "--kb", str(work))
    assert updated.exit_code == 0, updated.output
    assert run("test", "--kb", str(work)).exit_code == 0
    after = {p: p.read_bytes() for p in cases}
    again = run("test", "--update", "--yes", "--kb", str(work))
    assert again.exit_code == 0 and "UPDATE " not in again.output
    assert {p: p.read_bytes() for p in cases} == after
    old_cases = sorted((work / "policies" / "IP0243" / OLD / "cases").rglob("*.json"))
    assert all(p.read_bytes() == (KB_DIR / p.relative_to(work)).read_bytes() for p in old_cases)  # the old version's examples still pass as written
