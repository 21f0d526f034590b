"""kineret-asp test --mutate (issue 25): single-change mutants of the rules and tables, and the examples that notice them.

The mutants are made on clingo's syntax tree and run through the KB's
constraints, the example cases and the properties in one grounding each
(a mutant schema); a mutant nothing notices is looked for in the case space
with diff's joint program. These tests check that the schema's answers are
the answers `test` and `verify` give on a KB copy with the mutant written
into it, that every Appendix row, tick and product brand is pinned, that a
survivor comes with the case that tells it apart, and the command's formats.
"""
from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from kineret_asp.author.example_cases import run_case_tests
from kineret_asp.cli import main
from kineret_asp.errors import KbError
from kineret_asp.knowledge.base import load_kb
from kineret_asp.author.mutation import (
    CELL_ADDED, CELL_DELETED, COMPARISON_SWAPPED, EQUIVALENT, IN_SPACE, INVALID, KILLED, KINDS, LITERAL_DELETED, LITERAL_NEGATED,
    NUMBER_CHANGED, POOL_DELETED, ROW_DELETED, STATIC, SURVIVED, TABLE_KINDS, _Share, generate, load_examples, mutate, mutated_kb,
)
from kineret_asp.author.verify import verify_kb

from .conftest import KB_DIR, ROOT, VERSION

VERSION_DIR = KB_DIR / VERSION
APPENDIX = "tables/appendix_drug_classes.lp"
GUIDE = ROOT / "docs" / "authoring.md"
RECORDED_SCORE = re.compile(r"mutation score of the shipped KB: ([0-9.]+) %")


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def generated():
    kb = load_kb(VERSION_DIR)
    return kb, generate(kb, KINDS)


def _in(m, name: str) -> bool:
    return m.file.endswith(name)


def place(version: Path, file: str, needle: str, word: str) -> tuple[int, int]:
    """Line and column of ``word`` on the line of ``file`` that holds ``needle`` (where a mutant of it is reported)."""
    for number, line in enumerate((version / file).read_text().splitlines(), start=1):
        if needle in line:
            return number, line.index(word, line.index(needle)) + 1
    raise AssertionError(f"{needle!r} is not in {file}")


DIRA = "criteria/2_dira.lp"
SPECIALTIES_2B = 'accepted_specialty("2.B"'


def test_every_kind_of_change_is_made_and_the_rest_of_the_file_stays(generated):
    kb, g = generated
    kinds = {m.kind for m in g.mutants}
    assert {ROW_DELETED, CELL_DELETED, CELL_ADDED, POOL_DELETED, LITERAL_DELETED, LITERAL_NEGATED, COMPARISON_SWAPPED, NUMBER_CHANGED} <= kinds
    for m in g.mutants:
        before = kb.texts[m.file].splitlines()
        after = m.apply(kb.texts[m.file]).splitlines()
        assert len(after) == len(before), m  # line numbers stay
        node = kb.statements[m.statement].node
        first, last = node.location.begin.line, node.location.end.line
        changed = [i + 1 for i, (a, b) in enumerate(zip(before, after)) if a != b]
        assert changed and all(first <= n <= last for n in changed), m  # only the statement's own lines, comments untouched
    assert g.left_out.words > 100 and g.left_out.evidence > 10 and g.left_out.documentation > 10 and g.left_out.checks > 5


def test_pooled_terms_of_facts_are_cells(generated):
    """appendix_row(1, cimzia, tnf_inhibitor, (ra; as; ...)): each mark is a cell; so are the members of product_member, ingredient_row and grouped_drug."""
    kb, g = generated
    cimzia = [m for m in g.mutants if m.kind == CELL_DELETED and _in(m, APPENDIX) and m.row.startswith("appendix_row(1,cimzia,")]
    assert [m.before for m in cimzia] == ["ra", "as", "nr_axspa", "psa", "pso", "cd"]
    as_gone = next(m for m in cimzia if m.before == "as")
    assert as_gone.text == "appendix_row(1, cimzia,         tnf_inhibitor, (ra; nr_axspa; psa; pso; cd))."
    assert (as_gone.line, as_gone.column) == (kb.statements[as_gone.statement].node.location.begin.line, 53)
    for table in ("product_member", "appendix_member", "ingredient_row", "grouped_drug"):
        assert any(m.kind == CELL_DELETED and m.row.startswith(table + "(") for m in g.mutants), table
    simlandi = next(m for m in g.mutants if m.kind == CELL_DELETED and m.before == "simlandi")
    assert "simlandi" not in simlandi.text and "adalimumab_ryvk" in simlandi.text
    ticks = [m for m in g.mutants if m.kind == CELL_ADDED and m.after == "ra" and m.row.startswith("appendix_row(2,siliq,")]
    assert len(ticks) == 1 and ticks[0].text.endswith("(pso; ra)).")


def test_rules_that_only_word_or_document_are_left_out(generated):
    kb, g = generated
    heads = {str(kb.statements[m.statement].node.head).split("(")[0] for m in g.mutants}
    assert not heads & {"evidence_for", "evidence_text", "note", "note_text", "abducible", "documents", "key_detail"}
    assert {"met", "appendix_row", "accepted_specialty", "csdmard"} <= heads


def _sample(outcomes, mutants, per_class: int, seed: int):
    rng = random.Random(seed)
    classes: dict[tuple, list] = {}
    for m in mutants:
        o = outcomes[m.index]
        classes.setdefault((o.status, o.by, o.why), []).append(m)
    return {key: rng.sample(ms, min(per_class, len(ms))) for key, ms in sorted(classes.items())}


@pytest.mark.slow
def test_the_mutant_schema_agrees_with_test_and_verify_on_a_kb_copy(tmp_path, generated):
    """A sample of each kind of answer, each mutant written into a copy of the KB and run with test and verify."""
    kb, g = generated
    examples, _ = load_examples(kb)
    outcomes = _Share(kb, g.mutants, examples, 10.0).run()
    for (status, by, why), ms in _sample(outcomes, g.mutants, 1, seed=25).items():
        for m in ms:
            root = tmp_path / f"kb{m.index}"
            shutil.copytree(KB_DIR, root)
            path = root / VERSION / Path(m.file).relative_to(VERSION_DIR.relative_to(ROOT) if not Path(m.file).is_absolute() else VERSION_DIR)
            path.write_text(m.apply(kb.texts[m.file]))
            try:
                copy = load_kb(root / VERSION)
            except KbError:
                assert status == INVALID or (status, by) == (KILLED, "constraints"), (m, status, by)
                continue
            tested = run_case_tests([root / VERSION / "cases"], copy)
            if (status, by) == (KILLED, "examples"):
                assert tested.failed, m
                continue
            assert not tested.failed, (m, status, by, [r.path for r in tested.results if not r.passed])
            holds = all(r.holds for r in verify_kb(copy))
            assert holds == ((status, by) != (KILLED, "properties")), (m, status, by)


def _pinning_cases():
    """Every Appendix row, every rheumatoid-arthritis tick (the column 3.A.ii reads; a row whose only mark it is
    loses it with the row), every brand of a product."""
    kb = load_kb(VERSION_DIR)
    out = []
    for m in generate(kb, TABLE_KINDS).mutants:
        if not _in(m, APPENDIX):
            continue
        row = m.row.startswith("appendix_row(")
        if (m.kind == ROW_DELETED and row) or (m.kind == CELL_DELETED and row and m.before == "ra") or (m.kind == CELL_DELETED and m.row.startswith("product_member(")):
            out.append(m)
    return out


PINNING = _pinning_cases()


def test_the_pinning_list_is_the_appendix():
    rows = [m for m in PINNING if m.kind == ROW_DELETED]
    ticks = [m for m in PINNING if m.kind == CELL_DELETED and m.row.startswith("appendix_row(")]
    brands = [m for m in PINNING if m.row.startswith("product_member(")]
    assert (len(rows), len(ticks), len(brands)) == (30, 13, 9)


@pytest.mark.slow
@pytest.mark.parametrize("mutant", PINNING, ids=[f"{m.kind}:{m.line}:{m.column}:{m.before.split('(')[0][:20]}" for m in PINNING])
def test_deleting_an_appendix_row_tick_or_brand_makes_test_or_verify_fail(tmp_path, mutant):
    """The edit written into a copy of the version folder: test (or verify) fails on it."""
    kb = load_kb(VERSION_DIR)
    copy = tmp_path / "kb"
    shutil.copytree(KB_DIR, copy, ignore=shutil.ignore_patterns("source", "codes"))
    shutil.rmtree(copy / VERSION)
    shutil.copytree(VERSION_DIR, copy / VERSION)
    (copy / VERSION / APPENDIX).write_text(mutant.apply(kb.texts[mutant.file]))
    try:
        version = load_kb(copy / VERSION)
    except KbError:
        return  # test stops at once: the KB's own constraints
    if run_case_tests([copy / VERSION / "cases"], version).failed:
        return
    assert not all(r.holds for r in verify_kb(version)), mutant


@pytest.mark.slow
def test_the_shipped_kb_scores_at_least_what_the_guide_records():
    """The CI lane: the whole mutation run, two jobs; every survivor listed with a case or explained as a known gap."""
    from kineret_asp.author.mutation import render_mutation

    recorded = float(RECORDED_SCORE.search(GUIDE.read_text()).group(1))
    report = mutate(VERSION_DIR, jobs=2)
    assert report.score is not None and report.score >= recorded, [(m.location, m.kind, m.before, o.case) for m, o in report.with_status(SURVIVED)]
    assert report.killed > 800 and report.count(EQUIVALENT) > 100
    for m, o in report.with_status(SURVIVED):
        assert o.case is not None or m.gap, m
    text = render_mutation(report)
    assert f"mutation score: {report.score:.1f} %" in text
    for m, _ in report.with_status(SURVIVED):
        assert f"SURVIVED {m.location}:" in text
    for m, o in report.with_status(EQUIVALENT):
        assert o.why in (STATIC, IN_SPACE)
        if o.why == IN_SPACE:
            assert f"EQUIVALENT {m.location}:" in text
    # equivalent mutants are reported as such: an ingredient with two rows that share the tick, a column no criterion reads
    golimumab = [o for m, o in report.with_status(EQUIVALENT) if m.row.startswith("ingredient_row(golimumab,")]
    assert golimumab and all(o.why == IN_SPACE for o in golimumab)
    psoriasis = [o for m, o in report.with_status(EQUIVALENT) if m.kind == CELL_DELETED and m.before == "pso"]
    assert psoriasis and all(o.why == STATIC for o in psoriasis)


def _git_kb(tmp_path: Path) -> Path:
    """A copy of the KB in a git repository of its own, committed."""
    root = tmp_path / "kb"
    shutil.copytree(KB_DIR, root)
    git = ["git", "-C", str(root), "-c", "user.email=author@example.org", "-c", "user.name=author"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "the KB"], check=True)
    return root


@pytest.mark.slow
def test_the_loop_a_survivor_its_case_added_as_an_example_then_killed(tmp_path):
    """docs/authoring.md's loop: an edit, test --mutate --since, the case it suggests added as an example, killed."""
    root = _git_kb(tmp_path)
    version = root / VERSION
    (version / "cases" / "dira" / "dermatologist.json").unlink()  # the example that pins DIRA's dermatologist
    dira = version / "criteria" / "2_dira.lp"
    dira.write_text(dira.read_text().replace("(rheumatology; genetics; dermatology; autoinflammatory)", "(rheumatology; genetics;  dermatology; autoinflammatory)"))
    line, column = place(version, DIRA, SPECIALTIES_2B, "dermatology")
    result = run("test", "--mutate", "--since", "HEAD", "--kb", str(version), "--format", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["since"] == "HEAD" and len(data["mutants"]) == 5 and data["survived"] == 1
    (survivor,) = [m for m in data["mutants"] if m["status"] == SURVIVED]
    assert survivor["kind"] == CELL_DELETED and survivor["before"] == "dermatology" and (survivor["line"], survivor["column"]) == (line, column)
    case = survivor["case"]
    assert case["indication"] == "dira" and case["prescriber_specialties"] == ["dermatology"]
    text = run("test", "--mutate", "--since", "HEAD", "--kb", str(version)).output
    assert f"SURVIVED {version / 'criteria' / '2_dira.lp'}:{line}:{column}: cell deleted: dermatology" in text.replace(str(Path.cwd()) + "/", "")
    decision = json.loads(CliRunner().invoke(main, ["evaluate", "--format", "json", "--kb", str(version), "-"], input=json.dumps(case)).output)
    assert decision["decision"] == "approved"  # what the original decides: the suggested example's expect block
    (version / "cases" / "dira" / "suggested.json").write_text(json.dumps({**case, "expect": {"decision": decision["decision"], "unmet": decision["unmet"]}}))
    again = run("test", "--mutate", "--since", "HEAD", "--kb", str(version))
    assert again.exit_code == 0 and "mutation score: 100.0 %" in again.output, again.output


@pytest.mark.slow
def test_a_known_gap_explains_a_survivor(tmp_path):
    root = _git_kb(tmp_path)
    version = root / VERSION
    (version / "cases" / "dira" / "dermatologist.json").unlink()
    dira = version / "criteria" / "2_dira.lp"
    dira.write_text(dira.read_text().replace("% autoinflammatory disorders\".\n", "% autoinflammatory disorders\".\n% mutate: known gap - the dermatologist's DIRA case is kept elsewhere\n").replace("(rheumatology; genetics; dermatology; autoinflammatory)", "(rheumatology; genetics;  dermatology; autoinflammatory)"))
    line, column = place(version, DIRA, SPECIALTIES_2B, "dermatology")
    result = run("test", "--mutate", "--since", "HEAD", "--kb", str(version))
    assert result.exit_code == 0, result.output  # explained: not a failure
    assert "known gap: the dermatologist's DIRA case is kept elsewhere" in result.output
    below = run("test", "--mutate", "--since", "HEAD", "--kb", str(version), "--min-score", "99")
    assert below.exit_code == 1 and "mutation score: 80.0 %" in below.output
    sarif = json.loads(run("test", "--mutate", "--since", "HEAD", "--kb", str(version), "--format", "sarif").output)
    (found,) = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "mutant-survived"]
    assert found["level"] == "warning" and found["locations"][0]["physicalLocation"]["region"] == {"startLine": line, "startColumn": column}
    assert "dermatology" in found["message"]["text"]


def test_mutate_takes_no_paths_and_its_options_go_with_it():
    for args, words in ((["test", "--mutate", "facts"], "--mutate runs the version's own examples"), (["test", "--format", "sarif"], "--format sarif goes with --mutate"),
                        (["test", "--jobs", "2"], "--jobs goes with --mutate"), (["test", "--since", "HEAD"], "--since goes with --mutate"),
                        (["test", "--sample", "10"], "--sample goes with --mutate"), (["test", "--seed", "3"], "--seed goes with --mutate")):
        result = run(*args)
        assert result.exit_code == 2 and words in result.output, (args, result.output)


@pytest.mark.slow
def test_since_an_unknown_revision_is_one_line(tmp_path):
    root = _git_kb(tmp_path)
    result = run("test", "--mutate", "--since", "no-such-revision", "--kb", str(root / VERSION))
    assert result.exit_code == 2
    (line,) = [l for l in result.output.splitlines() if l]
    assert "--since no-such-revision: not a revision" in line


@pytest.mark.slow
def test_failing_examples_stop_the_run_before_any_mutant(kb_copy):
    path = kb_copy / "reauthorization.lp"
    path.write_text(path.read_text().replace("authorization_duration(initial, 12).", "authorization_duration(initial, 6)."))
    shutil.copytree(VERSION_DIR / "cases", kb_copy / "cases")
    result = run("test", "--mutate", "--kb", str(kb_copy))
    assert result.exit_code == 1 and "the version's own examples fail" in result.output


@pytest.mark.slow
def test_coverage_lists_table_rows_and_cells_and_check_strict_fails_on_one_nothing_pins(tmp_path, monkeypatch):
    text = run("test", "--coverage").output
    assert "Tables (each row and cell deleted" in text
    line, column = place(VERSION_DIR, DIRA, SPECIALTIES_2B, "dermatology")
    line_3b, column_3b = place(VERSION_DIR, "criteria/3_rheumatoid_arthritis.lp", 'accepted_specialty("3.B"', "rheumatology")
    assert re.search(rf"{line}:{column}  cell deleted: dermatology of accepted_specialty\(\"2\.B\", \.\.\.\) \[§ 2\.B\]: 1 example case\(s\)", text), text
    assert re.search(rf"{line_3b}:{column_3b}  cell added: genetics to accepted_specialty\(\"3\.B\", rheumatology\) \[§ 3\.B\]: \d example case\(s\)", text), text
    assert re.search(r"\d+ table edits: \d+ noticed by example cases, .* 0 not pinned", text)
    assert "read by no rule that decides a case" not in text.split("Tables")[1].split("table edits")[0]  # the unread ones are counted, not listed
    data = json.loads(run("test", "--coverage", "--format", "json").output)
    (tables,) = data["coverage"]["tables"]
    assert tables["not_pinned"] == [] and any(c["kind"] == CELL_ADDED and c["status"] == KILLED for c in tables["cells"])
    assert "measured on the version's own example cases" in run("test", str(VERSION_DIR / "cases" / "dira"), "--coverage").output
    root = tmp_path / "kb"
    shutil.copytree(KB_DIR, root)
    version = root / VERSION
    (version / "cases" / "dira" / "dermatologist.json").unlink()
    assert run("check", "--kb", str(version)).exit_code == 0  # plain check runs no example
    strict = run("check", "--strict", "--kb", str(version))
    assert strict.exit_code == 1
    (error,) = [l for l in strict.output.splitlines() if ": error: " in l]
    assert error.endswith(f"2_dira.lp:{line}:{column}" + ": error: no example case or property notices this table edit: cell deleted: dermatology of accepted_specialty(\"2.B\", ...) [§ 2.B]; a case it decides otherwise: {\"request\": \"initial\", \"indication\": \"dira\", \"prescriber_specialties\": [\"dermatology\"], \"genetic_tests\": [{\"gene\": \"IL1RN\", \"result\": \"mutation_confirmed\"}]} (add it as an example case)"), error
    assert "NOT PINNED" in run("test", "--coverage", "--kb", str(version)).output  # the same run, from the cache
    assert_a_copy_finds_the_pinning(root, tmp_path, monkeypatch)


def assert_a_copy_finds_the_pinning(root: Path, tmp_path: Path, monkeypatch) -> None:
    """A copy of a version whose pinning was measured reads it from the cache, with its own paths, shown from any folder."""
    from kineret_asp.author import mutation

    copy = tmp_path / "elsewhere" / "kb-copy"
    shutil.copytree(root, copy)
    monkeypatch.chdir(tmp_path)  # paths below the working folder are shown relative to it

    def not_again(*args, **kwargs):
        raise AssertionError("the pinning was measured again")

    monkeypatch.setattr(mutation, "mutate", not_again)
    report = mutation.table_pinning(load_kb(copy / VERSION))
    shown = f"elsewhere/kb-copy/{VERSION.as_posix()}/"
    assert report.mutants and all(m.file.startswith(shown) for m in report.mutants)
    (gap, _), = report.with_status(SURVIVED)
    assert gap.file == shown + DIRA
    noticed = [p for o in report.outcomes.values() for p in o.noticed if o.by == "examples" and p != "(no answer)"]
    assert noticed and all(p.startswith(shown + "cases/") for p in noticed)


@pytest.mark.slow
def test_check_strict_without_examples_only_warns(kb_copy):
    result = run("check", "--strict", "--kb", str(kb_copy))
    assert "warning: the tables' pinning is not measured: the version has no example case" in result.output


def _guide_steps() -> list[tuple[str, list[str]]]:
    text = (ROOT / "docs" / "authoring.md").read_text()
    start = text.index("## Tests that notice a wrong edit")
    section = text[start:text.index("\n## ", start + 1)]
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```\n(.*?)```", section, re.S):
        current = None
        for line in block.splitlines():
            if line.startswith("$ "):
                current = (line[2:], [])
                steps.append(current)
            elif current is not None:
                current[1].append(line)
    return steps


@pytest.mark.slow
def test_the_guides_loop_runs_as_shown(tmp_path):
    """docs/authoring.md, "Tests that notice a wrong edit": the edit, the survivor and its case, the example added, none left."""
    import shlex

    from .test_versions import lines_match

    work = tmp_path / "kb-mut"
    steps = _guide_steps()
    assert [c.split()[0] for c, _ in steps] == ["cp", "git", "rm", "sed", "kineret-asp", "echo", "kineret-asp"]
    for command, shown in steps:
        command = command.replace("/tmp/kb-mut", str(work))
        if command.startswith("cp -r kb "):
            shutil.copytree(KB_DIR, work)
            continue
        if not command.startswith("kineret-asp "):
            subprocess.run(["bash", "-c", command], check=True, cwd=tmp_path)
            continue
        result = CliRunner().invoke(main, shlex.split(command)[1:])
        output = result.output.replace(str(work.resolve()), "/tmp/kb-mut").replace(str(work), "/tmp/kb-mut")
        assert lines_match(shown, output.splitlines()), f"$ {command}\n{output}"
