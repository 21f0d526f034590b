"""Policy versions chosen by date of service, several policies side by side, and provenance.

The module fixture builds a second version of IP0243 in a copy of the KB
tree with ``kineret-asp new-version`` (effective 2025-01-01) and changes two
things in it, as a revision would: initial approvals last 6 months instead
of 12, and the Employer Group table drops Enbrel (row 3.C.D).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from kineret_asp import batch_evaluate, evaluate, evaluate_many, load_case, load_kb, missing, what_if
from kineret_asp.author.check import check_kb, check_versions
from kineret_asp.batch.run import BatchWorker, run_batch
from kineret_asp.cases.versions import Chooser
from kineret_asp.cli import main
from kineret_asp.knowledge.base import load_tree

from ..conftest import FACTS, KB_DIR, ROOT
from ..guide import console_steps

OLD, NEW = "2024-06-01", "2025-01-01"
POLICY = "IP0243"
ENBREL_ROW = 'non_preferred_row(employer_group, "3.C", "3.C.D", enbrel,'
SJIA = {"indication": "sjia", "prescriber_specialties": ["rheumatology"]}
RA_ENBREL = {  # approved under the old Employer Group table thanks to Enbrel (3.C.D) and Rinvoq (3.C.E)
    "indication": "rheumatoid_arthritis",
    "plan": "employer_group",
    "prescriber_specialties": ["rheumatology"],
    "medication_history": [
        {"drug": "methotrexate", "outcome": "failure", "months": 4},
        {"drug": "enbrel", "outcome": "failure"},
        {"drug": "rinvoq", "outcome": "failure"},
    ],
}


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input)


def dated(case: dict, date: str) -> dict:
    return {**case, "date_of_service": date}


def copy_tree(dest: Path) -> Path:
    shutil.copytree(KB_DIR, dest)
    return dest


def make_second_version(root: Path) -> Path:
    """new-version, then the two edits of the revision; returns the new version's folder."""
    result = run("new-version", POLICY, "--effective", NEW, "--kb", str(root))
    assert result.exit_code == 0, result.output
    new = root / "policies" / POLICY / NEW
    durations = new / "reauthorization.lp"
    durations.write_text(durations.read_text().replace("authorization_duration(initial, 12).", "authorization_duration(initial, 6)."))
    table = new / "tables" / "non_preferred_products.lp"
    lines = table.read_text().splitlines()
    assert sum(line.startswith(ENBREL_ROW) for line in lines) == 1
    table.write_text("\n".join(line for line in lines if not line.startswith(ENBREL_ROW)) + "\n")
    return new


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = copy_tree(tmp_path_factory.mktemp("versions") / "kb")
    make_second_version(root)
    return root


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory) -> Path:
    """The two-version tree, made once per module, for tests to copy (never to change)."""
    root = copy_tree(tmp_path_factory.mktemp("two-versions") / "kb")
    make_second_version(root)
    return root


@pytest.fixture
def own_tree(tmp_path, two_versions) -> Path:
    """A two-version tree a test may break: a copy of the module's (new-version runs once, not per test)."""
    return Path(shutil.copytree(two_versions, tmp_path / "kb"))


# --- new-version --------------------------------------------------------------------


def findings(root: Path) -> "Counter[str]":
    """What check reports on a tree, the new version's folder named like the old one's (to compare the two)."""
    return Counter(str(d).replace(f"/{NEW}/", f"/{OLD}/") for d in check_kb(root).diagnostics)


def test_new_version_copies_the_latest_version_and_closes_its_period(tmp_path):
    root = copy_tree(tmp_path / "kb")
    result = run("new-version", POLICY, "--effective", NEW, "--kb", str(root))
    assert result.exit_code == 0, result.output
    old, new = root / "policies" / POLICY / OLD, root / "policies" / POLICY / NEW
    lines = result.output.splitlines()
    assert lines[0].endswith(f"policies/{POLICY}/{NEW} (a copy of {OLD})")
    assert lines[-2] == f"{POLICY} versions: {OLD}..2024-12-31, {NEW}.."
    assert 'effective_to("2024-12-31").' in (old / "policy.lp").read_text()
    assert f'effective_from("{NEW}").' in (new / "policy.lp").read_text() and "effective_to" not in (new / "policy.lp").read_text()
    # rules, tables, words and example cases are copied
    copied = sorted(p.relative_to(new).as_posix() for p in new.rglob("*") if p.is_file())
    assert copied == sorted(p.relative_to(old).as_posix() for p in old.rglob("*") if p.is_file())
    assert "cases/sjia/approved.json" in copied
    assert lines[-1].startswith(f"next: put the new policy's text in {root / 'policies' / POLICY / NEW / 'source'}/ and declare it at ")


@pytest.mark.slow  # check on both versions, all 110 example cases, and a diff over the whole case space
def test_check_test_and_diff_work_on_a_new_version_at_once(tmp_path):
    root = copy_tree(tmp_path / "kb")
    before = findings(root)
    result = run("new-version", POLICY, "--effective", NEW, "--kb", str(root))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # check finds in the new version what it finds in the old one, and that its policy
    # text (still the old one's, until the author declares the new) takes effect on the old date
    text = f"{root / 'policies' / POLICY / OLD / 'policy.lp'}:22:1: error: the policy's text takes effect on {OLD}, but the version is in force from {NEW} (effective_from/1)"
    assert findings(root) == before + before + Counter({text: 1})
    assert lines[-1].startswith("next: ")
    assert run("test", "--kb", str(root)).output.splitlines()[-1] == "474 passed, 0 failed"
    assert run("diff", "--from", OLD, "--to", NEW, "--kb", str(root)).output.splitlines()[-1] == "no decision changes"


@pytest.mark.parametrize(
    "args, words",
    [
        (["IP0243", "--effective", "2024-06-01"], "must start after its latest version, which starts on 2024-06-01"),
        (["IP0243", "--effective", "2025-02-30"], "--effective: expected a date YYYY-MM-DD, got '2025-02-30'"),
        (["IP0234", "--effective", "2025-01-01"], "no policy 'IP0234'"),
    ],
)
def test_new_version_refuses_with_one_line(tmp_path, args, words):
    root = copy_tree(tmp_path / "kb")
    result = run("new-version", *args, "--kb", str(root))
    assert result.exit_code == 2 and result.output.count("\n") == 1 and words in result.output
    assert [p.name for p in (root / "policies" / POLICY).iterdir()] == [OLD]


def test_new_version_suggests_the_policy_meant(tmp_path):
    root = copy_tree(tmp_path / "kb")
    assert "did you mean 'IP0243'?" in run("new-version", "ip0234", "--effective", NEW, "--kb", str(root)).output


# --- choosing the version by date of service -------------------------------------------


def test_cases_dated_before_and_after_the_change_get_each_versions_decision(tree):
    before, after = evaluate(dated(SJIA, "2024-12-31"), tree), evaluate(dated(SJIA, "2025-06-01"), tree)
    assert (before.decision, before.authorization_months, before.provenance.version) == ("approved", 12, OLD)
    assert (after.decision, after.authorization_months, after.provenance.version) == ("approved", 6, NEW)
    ra_before, ra_after = evaluate(dated(RA_ENBREL, "2024-07-01"), tree), evaluate(dated(RA_ENBREL, "2025-06-01"), tree)
    assert (ra_before.decision, ra_before.met("3.C.D")) == ("approved", True)
    assert (ra_after.decision, ra_after.met("3.C.D")) == ("criteria_not_met", None)  # the row is gone
    assert before.provenance.chosen_by == after.provenance.chosen_by == "date_of_service"


def test_the_boundary_date_belongs_to_the_new_version(tree):
    last_old, first_new = evaluate(dated(SJIA, "2024-12-31"), tree), evaluate(dated(SJIA, NEW), tree)
    assert (last_old.provenance.version, last_old.provenance.effective_to, last_old.authorization_months) == (OLD, "2024-12-31", 12)
    assert (first_new.provenance.version, first_new.provenance.effective_to, first_new.authorization_months) == (NEW, None, 6)
    first_old = evaluate(dated(SJIA, OLD), tree)
    assert first_old.provenance.version == OLD


def test_a_date_before_the_first_version_is_exit_2_with_one_line(tree, tmp_path):
    case = tmp_path / "early.json"
    case.write_text(json.dumps(dated(SJIA, "2023-05-01")))
    result = run("evaluate", str(case), "--kb", str(tree))
    assert result.exit_code == 2
    assert result.output == f"kineret-asp: {case}: date_of_service: no version of IP0243 in force on 2023-05-01; versions: 2024-06-01..2024-12-31, 2025-01-01..\n"


def test_a_date_in_a_gap_between_versions_is_exit_2(own_tree):
    policy = own_tree / "policies" / POLICY / OLD / "policy.lp"
    policy.write_text(policy.read_text().replace('effective_to("2024-12-31").', 'effective_to("2024-11-30").'))
    result = run("evaluate", "-", "--kb", str(own_tree), input=json.dumps(dated(SJIA, "2024-12-15")))
    assert result.exit_code == 2
    assert result.output == "kineret-asp: <stdin>: date_of_service: no version of IP0243 in force on 2024-12-15; versions: 2024-06-01..2024-11-30, 2025-01-01..\n"
    assert evaluate(dated(SJIA, "2024-11-30"), own_tree).provenance.version == OLD  # the days around the gap still decide


def test_a_bad_date_of_service_is_a_case_error(tree):
    result = run("evaluate", "-", "--kb", str(tree), input=json.dumps(dated(SJIA, "2025-13-01")))
    assert result.exit_code == 2 and result.output == "kineret-asp: <stdin>: date_of_service: expected a date YYYY-MM-DD, got '2025-13-01'\n"


def test_without_a_date_the_latest_version_decides_and_the_decision_says_so(tree):
    d = evaluate(SJIA, tree)
    assert (d.provenance.version, d.provenance.chosen_by, d.authorization_months) == (NEW, "latest", 6)
    text = run("evaluate", "-", "--kb", str(tree), input=json.dumps(SJIA)).output
    assert "Rules: IP0243 version 2025-01-01.., chosen by default: the latest version, as the case gives no date of service" in text.splitlines()[1]


def test_selection_happens_before_the_case_is_validated(own_tree):
    """A field only the new version declares is valid on a date the new version decides, and unknown before."""
    inputs = own_tree / "policies" / POLICY / NEW / "inputs.lp"
    inputs.write_text(
        inputs.read_text() + '\n% § Reauthorization Criteria - the prescriber\'s note (new in this version).\ninput_field(prescriber_note, text, optional, "A note from the prescriber.").\n'
    )
    assert evaluate({**dated(SJIA, "2025-03-01"), "prescriber_note": "stable"}, own_tree).decision == "approved"
    result = run("evaluate", "-", "--kb", str(own_tree), input=json.dumps({**dated(SJIA, "2024-09-01"), "prescriber_note": "stable"}))
    assert result.exit_code == 2 and "<stdin>: prescriber_note: unknown field" in result.output


def test_a_knowledge_base_passed_explicitly_keeps_deciding(tree):
    old = load_kb(tree / "policies" / POLICY / OLD)
    d = evaluate(dated(SJIA, "2025-06-01"), old)
    assert (d.provenance.version, d.provenance.chosen_by, d.authorization_months) == (OLD, "given", 12)
    folder = evaluate(dated(SJIA, "2025-06-01"), tree / "policies" / POLICY / OLD)
    assert (folder.provenance.version, folder.provenance.chosen_by) == (OLD, "given")
    assert [x.provenance.version for x in evaluate_many([dated(SJIA, "2025-06-01"), SJIA], old)] == [OLD, OLD]


def test_evaluate_many_decides_each_case_by_its_own_version(tree):
    cases = [dated(SJIA, "2024-08-01"), dated(SJIA, "2025-08-01"), SJIA, dated(RA_ENBREL, "2024-08-01"), dated(RA_ENBREL, "2025-08-01")]
    got = [(d.provenance.version, d.decision, d.authorization_months) for d in evaluate_many(cases, tree)]
    assert got == [(OLD, "approved", 12), (NEW, "approved", 6), (NEW, "approved", 6), (OLD, "approved", 12), (NEW, "criteria_not_met", None)]


def test_what_if_moving_the_date_of_service_moves_the_version(tree):
    result = what_if(dated(SJIA, "2024-08-01"), [{"op": "set", "path": "date_of_service", "value": "2025-08-01"}], tree)
    assert (result.before.provenance.version, result.before.authorization_months) == (OLD, 12)
    assert (result.after.provenance.version, result.after.authorization_months) == (NEW, 6)
    same = what_if(dated(RA_ENBREL, "2024-08-01"), [{"op": "add", "path": "prescriber_specialties", "value": "genetics"}], tree)
    assert same.before.provenance.version == same.after.provenance.version == OLD


def test_missing_answers_with_the_cases_version(tree):
    old = missing(dated({**RA_ENBREL, "medication_history": RA_ENBREL["medication_history"][:2]}, "2024-08-01"), tree)
    new = missing(dated({**RA_ENBREL, "medication_history": RA_ENBREL["medication_history"][:2]}, "2025-08-01"), tree)
    assert old.decision.provenance.version == OLD and new.decision.provenance.version == NEW
    assert old.status == new.status == "options"
    # under the new version Enbrel no longer counts, so one more product is needed
    assert min(o.size for o in new.options) == min(o.size for o in old.options) + 1


def test_load_case_validates_against_the_chosen_version(tree):
    case = load_case(dated(SJIA, "2024-08-01"), tree)
    assert case.schema is load_tree(tree).policies[POLICY][0].schema
    assert evaluate(case, tree).provenance.version == OLD


# --- batch -------------------------------------------------------------------------


def test_batch_decides_mixed_dates_by_version_within_one_chunk(tree, tmp_path):
    cases = [dated(SJIA, "2024-08-01"), dated(SJIA, "2025-08-01"), dated(RA_ENBREL, "2025-08-01"), SJIA, dated(RA_ENBREL, "2024-08-01"), dated(SJIA, "2023-01-01")]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in cases))
    worker = BatchWorker(tree, str(source))
    records = [json.loads(line) for line in worker.json_lines([(n, json.dumps(c).encode()) for n, c in enumerate(cases, 1)]).splitlines()]
    assert [(r.get("provenance") or {}).get("version") for r in records] == [OLD, NEW, NEW, NEW, OLD, None]
    assert [r.get("authorization_months") for r in records[:5]] == [12, 6, None, 6, 12]
    assert [r["provenance"]["chosen_by"] for r in records[:5]] == ["date_of_service"] * 3 + ["latest", "date_of_service"]
    assert "no version of IP0243 in force on 2023-01-01" in records[5]["error"]
    assert len(worker.engines) == 2  # one engine (and one grounding per chunk) per version
    # the command: the same records, in order, with one job or two
    one = run("batch", str(source), "--kb", str(tree), "--quiet", "--allow-errors", "--chunk-size", "3")
    two = run("batch", str(source), "--kb", str(tree), "--quiet", "--allow-errors", "--jobs", "2", "--chunk-size", "2")
    assert one.exit_code == two.exit_code == 0 and one.stdout == two.stdout
    assert [json.loads(line).get("line") for line in one.stdout.splitlines()] == [1, 2, 3, 4, 5, 6]
    assert [json.loads(line) for line in one.stdout.splitlines()] == records


def test_batch_evaluate_selects_per_case(tree):
    records = list(batch_evaluate([dated(SJIA, "2024-08-01"), json.dumps(dated(SJIA, "2025-08-01"))], tree))
    assert [r.decision.provenance.version for r in records] == [OLD, NEW]


# --- provenance -----------------------------------------------------------------------


def test_every_decision_and_batch_record_carries_the_provenance(tree):
    keys = ["policy", "version", "effective_to", "folder", "kb", "rules_sha256", "framework_sha256", "package_version", "chosen_by", "policy_chosen_by", "claim"]
    from kineret_asp import __version__

    data = json.loads(run("evaluate", "-", "--kb", str(tree), "--format", "json", input=json.dumps(dated(SJIA, "2024-08-01"))).output)
    p = data["provenance"]
    assert list(p) == keys
    old = load_kb(tree / "policies" / POLICY / OLD)
    assert p == {
        "policy": POLICY,
        "version": OLD,
        "effective_to": "2024-12-31",
        "folder": f"policies/{POLICY}/{OLD}",
        "kb": str(tree.resolve()),
        "rules_sha256": old.rules_sha256,
        "framework_sha256": old.framework_sha256,
        "package_version": __version__,
        "chosen_by": "date_of_service",
        "policy_chosen_by": "only_policy",
        "claim": None,
    }
    assert re.fullmatch(r"[0-9a-f]{64}", p["rules_sha256"]) and re.fullmatch(r"[0-9a-f]{64}", p["framework_sha256"])
    sink = io.BytesIO()
    run_batch(io.BytesIO(b"".join(json.dumps(c).encode() + b"\n" for c in (SJIA, dated(SJIA, "2024-08-01")))), sink, tree, "<in>")
    assert [list(json.loads(line)["provenance"]) for line in sink.getvalue().splitlines()] == [keys, keys]
    answer = what_if(SJIA, [], tree)
    assert answer.after.provenance.chosen_by == "latest" and list(answer.to_dict()["after"]["provenance"]) == keys
    assert list(missing(SJIA, tree).to_dict()["provenance"]) == keys


def test_editing_one_rule_file_changes_its_hash_and_nothing_else(tmp_path):
    root = copy_tree(tmp_path / "kb")
    before = evaluate(SJIA, root).to_dict()
    rules = root / "policies" / POLICY / OLD / "criteria" / "5_sjia.lp"
    rules.write_text(rules.read_text() + "\n% an author's remark: no rule changes\n")
    after = evaluate(SJIA, root).to_dict()
    p, q = before.pop("provenance"), after.pop("provenance")
    assert before == after
    assert p["rules_sha256"] != q["rules_sha256"]
    assert {k: v for k, v in p.items() if k != "rules_sha256"} == {k: v for k, v in q.items() if k != "rules_sha256"}
    framework = root / "framework" / "criteria.lp"
    framework.write_text(framework.read_text() + "\n% a remark\n")
    r = evaluate(SJIA, root).to_dict()["provenance"]
    assert r["framework_sha256"] != q["framework_sha256"] and r["rules_sha256"] == q["rules_sha256"]


def test_the_text_header_names_the_version_how_it_was_chosen_and_the_kb_folder(tree):
    lines = run("evaluate", "-", "--kb", str(tree), input=json.dumps(dated(SJIA, "2024-08-01"))).output.splitlines()
    old = load_kb(tree / "policies" / POLICY / OLD)
    assert lines[1] == "Rules: IP0243 version 2024-06-01..2024-12-31, chosen by the date of service 2024-08-01"
    assert lines[2] == f"KB: {tree.resolve()} (policies/IP0243/2024-06-01)"
    assert lines[3] == f"SHA-256: rules {old.rules_sha256}, framework {old.framework_sha256}; kineret-asp 0.1.0"


@pytest.mark.slow  # two fresh processes
def test_the_same_case_with_the_same_kb_gives_the_same_bytes(tree, tmp_path):
    case = tmp_path / "case.json"
    case.write_text(json.dumps(dated(RA_ENBREL, "2025-02-01")))
    outputs = {run("evaluate", str(case), "--kb", str(tree), "--format", fmt).output for fmt in ("json", "json")}
    assert len(outputs) == 1
    code = "import sys; from kineret_asp.cli import main; sys.argv = ['kineret-asp', 'evaluate', sys.argv[1], '--kb', sys.argv[2]]; main()"
    fresh = {subprocess.run([sys.executable, "-c", code, str(case), str(tree)], capture_output=True, cwd=tmp_path, check=True).stdout for _ in range(2)}
    assert len(fresh) == 1 and fresh.pop().decode() == run("evaluate", str(case), "--kb", str(tree)).output


DECIDING = ("asp", "knowledge", "cases", "engine", "decisions", "explain", "batch", "author")  # every layer that chooses, decides or checks


def test_no_module_reads_the_clock_to_decide():
    """The version is chosen by the case's date only: nothing that chooses, decides or checks asks for today's date."""
    clock = re.compile(r"\b(date\.today|datetime\.now|datetime\.utcnow|datetime\.today|time\.localtime|time\.gmtime)\b")
    modules = [ROOT / "kineret_asp" / "api.py", *(p for m in DECIDING for p in sorted((ROOT / "kineret_asp" / m).glob("*.py")))]
    assert len(modules) > 40 and all(p.is_file() for p in modules)
    hits = [f"{p.name}:{n}" for p in modules for n, line in enumerate(p.read_text().splitlines(), 1) if clock.search(line)]
    assert hits == []


# --- test: every version's example cases against that version ------------------------


@pytest.mark.slow  # every example case of both versions; the fast lane keeps test finding the packaged cases
def test_test_runs_every_versions_cases_against_that_version(tree, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # cases are found from the KB, not from the working folder
    data = json.loads(run("test", "--kb", str(tree), "--format", "json").output)
    results = data["results"]
    assert data["kb"] == str(tree.resolve()) and len(results) == 474
    old_folder, new_folder = f"policies/{POLICY}/{OLD}/cases/", f"policies/{POLICY}/{NEW}/cases/"
    assert all(r["passed"] and r["version"] == f"{POLICY} {OLD}" for r in results if old_folder in r["path"])
    failed = sorted(r["path"].split(new_folder)[1] for r in results if not r["passed"])
    assert all(new_folder in r["path"] and r["version"] == f"{POLICY} {NEW}" for r in results if not r["passed"])
    # the revision's two changes, exactly where they apply
    assert "sjia/approved.json" in failed and "ra/approved_employer_group.json" in failed and len(failed) == 89
    assert "ra/approved_individual_family_contraindications.json" in failed  # 6 months now
    assert "not_covered/osteoarthritis.json" not in failed


def test_a_cases_date_of_service_says_which_version_runs_it(own_tree):
    example = own_tree / "policies" / POLICY / OLD / "cases" / "sjia" / "approved.json"
    data = json.loads(example.read_text())
    example.write_text(json.dumps({**data, "date_of_service": "2025-03-01"}))
    result = json.loads(run("test", str(example), "--kb", str(own_tree), "--format", "json").output)["results"][0]
    assert (result["version"], result["passed"], result["differences"]) == (f"{POLICY} {NEW}", False, {"authorization_months": {"expected": 12, "actual": 6}})


def test_test_finds_the_packaged_cases_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("test")
    assert result.exit_code == 0 and result.output.splitlines()[-1] == "237 passed, 0 failed"


@pytest.mark.slow
def test_test_runs_the_cases_of_an_installed_package(tmp_path):
    """A plain (non-editable) install ships each version's cases; test finds them from any folder."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis"))
    target = tmp_path / "installed"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(src)], capture_output=True, text=True)
    if pip.returncode != 0:
        pytest.skip(f"pip cannot build the package here: {pip.stderr.strip().splitlines()[-1:]}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run([sys.executable, "-m", "kineret_asp", "test"], cwd=elsewhere, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"KB: {target / 'kineret_asp' / 'kb'}"
    assert proc.stdout.splitlines()[-1] == "237 passed, 0 failed"


# --- diff and check across versions --------------------------------------------------


@pytest.mark.slow  # a diff over the whole case space of two versions
def test_diff_from_to_names_exactly_the_changed_classes(tree):
    result = run("diff", "--policy", POLICY, "--from", OLD, "--to", NEW, "--kb", str(tree), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["from"]["version"], data["to"]["version"]) == (OLD, NEW)
    got = {(c["indication"], c["request"], c.get("plan", "any"), c["old"], c["new"], c["old_months"], c["new_months"], tuple(f["id"] for f in c["criteria"])) for c in data["classes"]}
    # initial approvals now last 6 months, whatever the plan (which no rule of these indications reads: no class is split by it);
    # Enbrel no longer counts in the Employer Group table (rheumatoid arthritis: the plan is read)
    shorter = {(i, "initial", "any", "approved", "approved", 12, 6, ()) for i in ("cinca", "fcas", "muckle_wells", "nomid", "dira", "sjia", "stills_disease")}
    shorter |= {("rheumatoid_arthritis", "initial", "individual_family", "approved", "approved", 12, 6, ())}
    shorter |= {("rheumatoid_arthritis", "initial", "employer_group", "approved", "approved", 12, 6, ("3.C.D",))}
    enbrel = {("rheumatoid_arthritis", "initial", "employer_group", "approved", "criteria_not_met", 12, None, ("3", "3.C", "3.C.D"))}
    enbrel |= {("rheumatoid_arthritis", "continuation", "employer_group", "approved", "criteria_not_met", 12, None, ("3", "3.C", "3.C.D", "R", "R.A"))}
    # and the same patients waiting only on a drug the KB cannot class: undetermined before, criteria not met now
    enbrel |= {(i, r, p, "undetermined", "criteria_not_met", None, None, ids) for (i, r, p, _, _, _, _, ids) in set(enbrel)}
    assert got == shorter | enbrel and data["changes"] == len(data["classes"]) == 14
    assert all(c["not_split_by"] == ["plan"] for c in data["classes"] if c["indication"] != "rheumatoid_arthritis")
    for c in data["classes"]:  # (diff decides every example again with both versions, and fails if one does not reproduce)
        if c["new"] == "criteria_not_met":
            assert "enbrel" in {e["drug"] for e in c["example"]["medication_history"]}
    example = next(c["example"] for c in data["classes"] if c["new"] == "criteria_not_met" and c["old"] == "approved")
    assert [d.decision for d in evaluate_many([dated(example, "2024-12-31"), dated(example, NEW)], tree)] == ["approved", "criteria_not_met"]
    text = run("diff", "--from", OLD, "--to", NEW, "--kb", str(tree)).output.splitlines()
    assert text[0] == f"IP0243 2024-06-01..2024-12-31 ({tree.resolve() / 'policies/IP0243/2024-06-01'}) -> IP0243 2025-01-01.. ({tree.resolve() / 'policies/IP0243/2025-01-01'})"
    assert text[1] == "14 class(es) of cases change decision, in 7 kind(s) of change:" and text[2] == "approved (12 months) -> approved (6 months)"
    assert any(line.endswith(". Still's Disease, initial authorization") for line in text)


def test_diff_names_an_unknown_version_in_one_line(tree):
    result = run("diff", "--from", OLD, "--to", "2023-02-01", "--kb", str(tree))
    assert result.exit_code == 2 and result.output == "kineret-asp: --version: no version of IP0243 is in force on 2023-02-01; its versions: 2024-06-01..2024-12-31, 2025-01-01..\n"
    assert run("diff", "--from", OLD, "--kb", str(tree)).exit_code == 2


# --- one meaning of --kb where no case is decided: --policy and --version, the latest by default ---


@pytest.mark.parametrize(
    "version, folder, how",
    [
        (None, NEW, "latest"),
        (OLD, OLD, "named"),
        ("2024-09-30", OLD, "in_force"),  # any day a version is in force on names it
        ("2025-02-01", NEW, "in_force"),
    ],
)
def test_load_kb_reads_the_version_named_or_the_latest(tree, version, folder, how):
    from kineret_asp.knowledge.base import choose_version

    choice = choose_version(tree, version=version)
    assert (choice.kb.path.name, choice.how, choice.policy) == (folder, how, POLICY)
    assert load_kb(tree, version=version) is choice.kb  # load_kb is the same choice


def test_a_version_folder_is_read_as_it_is_and_must_agree_with_the_options(tree):
    from kineret_asp import KineretError
    from kineret_asp.knowledge.base import choose_version

    folder = tree / "policies" / POLICY / OLD
    assert choose_version(folder).how == "folder" and load_kb(folder).path.name == OLD
    assert load_kb(folder, policy=POLICY, version=OLD).path.name == OLD
    with pytest.raises(KineretError, match="is the folder of IP0243 2024-06-01"):
        load_kb(folder, version=NEW)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--version", "2023-01-01"], "--version: no version of IP0243 is in force on 2023-01-01; its versions: 2024-06-01..2024-12-31, 2025-01-01.."),
        (["--version", "june"], "--version: expected a date YYYY-MM-DD (a version's effective-from date, or a day it is in force), got 'june'; IP0243's versions: 2024-06-01, 2025-01-01"),
        (["--policy", "IP0234"], "no policy 'IP0234' in "),
    ],
)
def test_a_version_that_cannot_be_chosen_is_one_line_without_a_kb_location(tree, args, words):
    for command in (["verify"], ["trace"], ["schema", "case"], ["vocabulary", "plan"]):
        result = run(*command, "--kb", str(tree), *args)
        assert result.exit_code == 2, (command, result.output)
        line = result.output.splitlines()[-1]
        assert words in line and ":0:0:" not in line, (command, result.output)


@pytest.mark.parametrize("command", [["trace", "--format", "json"], ["schema", "case"], ["vocabulary", "plan", "--format", "json"]])
def test_commands_without_a_case_say_which_version_they_read_on_stderr(tree, command):
    proc = subprocess.run([sys.executable, "-m", "kineret_asp", *command, "--kb", str(tree), "--version", OLD], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1] == f"KB: {tree} (policies/{POLICY}/{OLD}: the version --version {OLD} names)"
    json.loads(proc.stdout)  # the output itself stays what it was: JSON a program reads


def test_the_version_chosen_reads_that_versions_rules(tree):
    """schema reads the version asked for: each version's case schema names it in its $id."""
    old = run("schema", "case", "--kb", str(tree), "--version", OLD)
    new = run("schema", "case", "--kb", str(tree))
    assert old.exit_code == new.exit_code == 0
    assert f'"$id": "urn:kineret-asp:schema:{POLICY}:{OLD}:' in old.output
    assert f'"$id": "urn:kineret-asp:schema:{POLICY}:{NEW}:' in new.output


def test_verify_prints_the_version_it_checked_and_how(tree):
    result = run("verify", "--kb", str(tree), "--property", "one_decision", "--version", "2024-12-31")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"KB: {tree} (policies/{POLICY}/{OLD}: the version in force on 2024-12-31)"
    as_json = json.loads(run("verify", "--kb", str(tree), "--property", "one_decision", "--format", "json").output)
    assert (as_json["version"], as_json["chosen_by"]) == (f"policies/{POLICY}/{NEW}", "latest")


def test_several_policies_are_each_listed_or_a_version_asks_for_policy_in_one_line(own_tree):
    add_policy(own_tree, "IP9999", "2025-03-01")
    result = run("vocabulary", "plan", "--kb", str(own_tree), "--version", "2025-03-01")
    assert result.exit_code == 2 and result.output == "kineret-asp: the KB holds several policies (IP0243, IP9999): pass --policy with one of them\n"
    every = run("vocabulary", "plan", "--kb", str(own_tree))
    assert every.exit_code == 0 and [line.split(" (")[1].split(":")[0] for line in every.output.splitlines() if line.startswith("KB: ")] == [
        f"policies/{POLICY}/{OLD}",
        f"policies/{POLICY}/{NEW}",
        "policies/IP9999/2025-03-01",
    ]
    chosen = run("vocabulary", "plan", "--kb", str(own_tree), "--policy", "IP9999")
    assert chosen.exit_code == 0 and "policies/IP9999/2025-03-01: the latest version of IP9999" in chosen.output


@pytest.mark.slow  # every check of a three-version tree, and the command's
def test_check_flags_an_introduced_overlap_and_a_gap(own_tree):
    old_policy = own_tree / "policies" / POLICY / OLD / "policy.lp"
    text = old_policy.read_text()
    line = text.splitlines().index('effective_to("2024-12-31").') + 1
    where = f"{old_policy}:{line}:1"
    old_policy.write_text(text.replace('effective_to("2024-12-31").', 'effective_to("2025-03-31").'))
    overlap = [str(d) for d in check_kb(own_tree).diagnostics if d.code == "versions"]  # every check, once; then the checks across versions alone
    assert overlap == [f'{where}: error: IP0243 2024-06-01..2025-03-31 overlaps IP0243 2025-01-01.. (policies/IP0243/2025-01-01): end it the day before, effective_to("2024-12-31")']
    old_policy.write_text(text.replace('effective_to("2024-12-31").', 'effective_to("2024-10-31").'))
    gap = [str(d) for d in check_versions(load_tree(own_tree).versions)]
    assert gap == [f"{where}: error: no version of IP0243 is in force from 2024-11-01 to 2024-12-31 (between 2024-06-01..2024-10-31 and 2025-01-01..): a date of service there cannot be decided"]
    old_policy.write_text(text.replace('effective_to("2024-12-31").', 'effective_to("2024-01-31").'))
    reversed_ = [str(d) for d in check_versions(load_tree(own_tree).versions)]
    assert reversed_ == [f"{where}: error: effective_to 2024-01-31 is before effective_from 2024-06-01: the version would never be in force"]
    result = run("check", "--kb", str(own_tree))
    assert result.exit_code == 1 and reversed_[0] in result.output.splitlines() and result.output.splitlines()[-1].endswith(f" (KB: {own_tree.resolve()})")


def test_check_flags_a_version_folder_not_named_by_its_date(own_tree):
    new_policy = own_tree / "policies" / POLICY / NEW / "policy.lp"
    new_policy.write_text(new_policy.read_text().replace(f'effective_from("{NEW}").', 'effective_from("2025-01-02").'))
    messages = [d.message for d in check_versions(load_tree(own_tree).versions)]
    assert "the version is effective from 2025-01-02 but its folder is named 2025-01-01: name the folder by its effective-from date" in messages
    assert any(m.startswith("no version of IP0243 is in force from 2025-01-01 to 2025-01-01") for m in messages)


# --- several policies -------------------------------------------------------------------


def add_policy(root: Path, pid: str, start: str, extra: str = "") -> Path:
    """A second anakinra policy: a copy of IP0243's latest version under another number."""
    folder = root / "policies" / pid / start
    shutil.copytree(root / "policies" / POLICY / NEW, folder)
    policy = folder / "policy.lp"
    text = policy.read_text().replace(f'policy("{POLICY}", "Anakinra").', f'policy("{pid}", "Anakinra (new policy)").').replace(f'effective_from("{NEW}").', f'effective_from("{start}").')
    policy.write_text(text + extra)
    return folder


@pytest.mark.slow  # every check of a three-version tree
def test_check_reports_two_policies_claiming_the_same_request_once(own_tree):
    add_policy(own_tree, "IP9999", "2025-03-01")
    errors = [d for d in check_kb(own_tree).diagnostics if d.code == "versions"]
    assert len(errors) == 1 and errors[0].file.endswith("IP9999/2025-03-01/policy.lp")
    assert errors[0].message.startswith("IP9999 2025-03-01.. and IP0243 2025-01-01.. both claim kineret for indication ankylosing_spondylitis")


@pytest.mark.slow  # a three-version tree decided several ways; the fast lane keeps the unknown-policy test
def test_two_policies_claiming_the_same_request_need_a_way_to_choose(own_tree):
    folder = add_policy(own_tree, "IP9999", "2025-03-01")
    errors = check_versions(load_tree(own_tree).versions)  # the checks across versions alone (check_kb runs them with every other)
    assert len(errors) == 1 and errors[0].file.endswith("IP9999/2025-03-01/policy.lp")
    assert errors[0].message.startswith("IP9999 2025-03-01.. and IP0243 2025-01-01.. both claim kineret for indication ankylosing_spondylitis")
    result = run("evaluate", "-", "--kb", str(own_tree), input=json.dumps(dated(SJIA, "2025-04-01")))
    assert result.exit_code == 2 and result.output == "kineret-asp: <stdin>: policy: several policies decide this case on 2025-04-01 (IP0243, IP9999); name one in policy\n"
    # before the second policy starts, or naming one, there is no question
    assert evaluate(dated(SJIA, "2025-02-01"), own_tree).provenance.policy == POLICY
    assert evaluate({**dated(SJIA, "2025-04-01"), "policy": "IP9999"}, own_tree).provenance.policy == "IP9999"
    assert evaluate({**dated(SJIA, "2025-04-01"), "policy": POLICY}, own_tree).provenance.policy == POLICY
    # a use neither policy claims (another policy decides COVID-19 uses) names no policy
    covid = run("evaluate", "-", "--kb", str(own_tree), input=json.dumps({"indication": "covid_19", "date_of_service": "2025-04-01"}))
    assert covid.exit_code == 2 and "no policy of the KB decides this case on 2025-04-01" in covid.output
    typo = run("evaluate", "-", "--kb", str(own_tree), input=json.dumps({"indication": "rheumatoid_arthritls", "date_of_service": "2025-04-01"}))
    assert typo.exit_code == 2 and "<stdin>: indication: unknown indication 'rheumatoid_arthritls'" in typo.output and "did you mean 'rheumatoid_arthritis'?" in typo.output
    # one prevailing over the other is a way to choose
    (folder / "policy.lp").write_text((folder / "policy.lp").read_text() + '\n% § Header - the new policy replaces IP0243 where both apply.\nprevails_over("IP0243").\n')
    assert check_versions(load_tree(own_tree).versions) == []
    assert evaluate(dated(SJIA, "2025-04-01"), own_tree).provenance.policy == "IP9999"
    listing = json.loads(run("policies", "--kb", str(own_tree), "--format", "json").output)
    assert [(p["id"], [v["effective_from"] for v in p["versions"]]) for p in listing["policies"]] == [(POLICY, [OLD, NEW]), ("IP9999", ["2025-03-01"])]


def test_a_case_naming_an_unknown_policy_is_one_line_with_the_nearest(tree):
    result = run("evaluate", "-", "--kb", str(tree), input=json.dumps({**SJIA, "policy": "IP0234"}))
    assert result.exit_code == 2 and result.output == "kineret-asp: <stdin>: policy: unknown coverage policy 'IP0234'; expected one of IP0243; did you mean 'IP0243'?\n"


# --- policies, and the KB in use -----------------------------------------------------------


def test_policies_lists_each_version_with_its_period_folder_and_hash(tree):
    old, new = load_kb(tree / "policies" / POLICY / OLD), load_kb(tree / "policies" / POLICY / NEW)
    lines = run("policies", "--kb", str(tree)).output.splitlines()
    assert lines == [
        f"KB: {tree.resolve()}",
        f"framework  sha256 {old.framework_sha256}",
        "IP0243  Anakinra (Kineret)",
        f"  2024-06-01..2024-12-31  policies/IP0243/2024-06-01  sha256 {old.rules_sha256}",
        f"  2025-01-01..            policies/IP0243/2025-01-01  sha256 {new.rules_sha256}",
    ]
    data = json.loads(run("policies", "--kb", str(tree), "--format", "json").output)
    assert data["policies"][0]["drug"] == "Kineret" and data["policies"][0]["versions"][0] == {
        "effective_from": OLD,
        "effective_to": "2024-12-31",
        "folder": "policies/IP0243/2024-06-01",
        "rules_sha256": old.rules_sha256,
    }
    assert [kb.folder for kb in load_tree(tree).versions] == ["policies/IP0243/2024-06-01", "policies/IP0243/2025-01-01"]


def test_a_kb_in_the_working_folder_that_differs_from_the_kb_in_use_is_one_warning(tmp_path, monkeypatch):
    local = copy_tree(tmp_path / "kb")
    monkeypatch.chdir(tmp_path)
    quiet = run("evaluate", str(FACTS / "sjia" / "approved.json"))
    assert quiet.exit_code == 0 and quiet.stderr == ""  # the same KB: nothing to say
    rules = local / "policies" / POLICY / OLD / "criteria" / "5_sjia.lp"
    rules.write_text(rules.read_text() + "\n% edited\n")
    warned = run("evaluate", str(FACTS / "sjia" / "approved.json"))
    assert warned.exit_code == 0
    assert warned.stderr == f"kineret-asp: warning: ./kb differs from the KB in use ({KB_DIR}); pass --kb kb to use it, or install with pip install -e .\n"
    assert run("evaluate", str(FACTS / "sjia" / "approved.json"), "--kb", "kb").stderr == ""  # chosen explicitly


def test_a_missing_kb_folder_is_one_plain_line(tmp_path):
    for command in (["evaluate", str(FACTS / "sjia" / "approved.json")], ["test"], ["policies"], ["batch", "-"], ["new-version", POLICY, "--effective", NEW]):
        result = run(*command, "--kb", str(tmp_path / "nope"))
        assert result.exit_code == 2 and result.output == f"kineret-asp: {tmp_path / 'nope'}: KB folder does not exist\n", command


def test_the_chooser_of_a_version_folder_is_fixed(tree):
    chooser = Chooser.of(tree / "policies" / POLICY / NEW)
    assert chooser.fixed is not None and chooser.choose(dated(SJIA, "2024-07-01"), "<x>").how == "given"
    assert Chooser.of(tree).fixed is None


# --- the authoring guide's walkthrough ---------------------------------------------------

GUIDE_KB = "/tmp/kb-next"  # the folder the guide works in; the test works in a temporary one


def lines_match(expected: list[str], actual: list[str]) -> bool:
    """Whether output lines match the guide's: a line '...' stands for any lines, '...' in a line for any text."""
    memo: dict[tuple[int, int], bool] = {}

    def go(i: int, j: int) -> bool:
        if (i, j) in memo:
            return memo[(i, j)]
        if i == len(expected):
            ok = j == len(actual)
        elif expected[i] == "...":
            ok = go(i + 1, j) or (j < len(actual) and go(i, j + 1))
        else:
            pattern = ".*".join(re.escape(part) for part in expected[i].split("..."))
            ok = j < len(actual) and re.fullmatch(pattern, actual[j]) is not None and go(i + 1, j + 1)
        memo[(i, j)] = ok
        return ok

    return go(0, 0)


def test_the_guide_matcher_tells_outputs_apart():
    assert lines_match(["a", "...", "d"], ["a", "b", "c", "d"]) and lines_match(["x ... z"], ["x y z"])
    assert not lines_match(["a", "...", "d"], ["a", "b"]) and not lines_match(["a"], ["a", "b"]) and not lines_match(["x ... z"], ["x y"])


@pytest.mark.slow
def test_the_guides_walkthrough_from_new_version_to_diff(tmp_path):
    import shlex

    work = tmp_path / "kb-next"
    steps = console_steps("## Policies and versions")
    commands = [c for c, _ in steps]
    assert commands[0] == f"cp -r kb {GUIDE_KB}" and any(c.startswith("kineret-asp new-version") for c in commands) and any(c.startswith("kineret-asp diff") for c in commands)
    for command, shown in steps:
        command = command.replace(GUIDE_KB, str(work))
        if command.startswith("cp -r kb "):
            shutil.copytree(KB_DIR, work)
            continue
        if command.startswith("sed "):
            subprocess.run(shlex.split(command), check=True)
            continue
        given = None
        if command.startswith("echo "):
            left, command = command.split(" | ", 1)
            given = shlex.split(left)[1]
        args = shlex.split(command)
        assert args[0] == "kineret-asp", command
        result = CliRunner().invoke(main, args[1:], input=given)
        output = result.output.replace(str(work.resolve()), GUIDE_KB).replace(str(work), GUIDE_KB)
        assert lines_match(shown, output.splitlines()), f"$ {command}\n{output}"
