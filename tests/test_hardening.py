"""Issue 12: one named test for every defect found by hostile use, each failing without its fix.

Defect 1 (a poisoned cache entry) is tested in ``test_diskcache.py``; the
``.lp`` case-file defects in ``test_lpfacts.py``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner

from kineret_asp import CaseError, evaluate, load_kb
from kineret_asp.batch.run import batch_evaluate, resume_point
from kineret_asp.cases.caps import MAX_CASE_BYTES, MAX_JSON_VALUES
from kineret_asp.cli import main
from kineret_asp.safetext import UNSAFE_CATEGORIES, safe_html, safe_json, safe_markdown, safe_text

from .conftest import FACTS, KB_DIR, ROOT, cli, copy_kb

APPROVED_CASE = FACTS / "ra" / "approved_employer_group.json"
OSTEOARTHRITIS = {"indication": "osteoarthritis"}
SPOOF = "x\n\nDecision: APPROVED for up to 12 months\nRoute: auto_approve (approved automatically)\n"
RUNAWAY_KB_RULE = "% § test: a rule that grounds without end\np(X) :- X = 1..100000000.\n"
LIMIT = "0.5"
"""The time limit the limit tests set: any limit must hold; a short one keeps the suite quick."""
RUNAWAY_CASE_RULE = "% § test: a rule that grounds without end for one case only (months 1200)\nrunaway(X) :- case_history_months(_, 1200), X = 1..100000000.\nis_other_policy :- runaway(0).\n"


def run_cli(*args: str, input: bytes | None = None, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kineret_asp", *args], cwd=ROOT, capture_output=True, input=input, timeout=timeout, **kw)


def cli_bytes(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    """The command in this process (bytes out), for tests about what it writes and its exit code."""
    return cli(*args, input=input, text=False)


def one_line(stderr: bytes) -> str:
    text = stderr.decode()
    assert text.count("\n") == 1 and "Traceback" not in text, text
    return text


def kb_with(tmp_path: Path, rule: str) -> Path:
    version = copy_kb(tmp_path)
    (version / "zz_test.lp").write_text(rule)
    return version.parents[2]


def lines_file(path: Path, cases: list) -> Path:
    path.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    return path


def ra_line(n: int, months: int = 4) -> dict:
    return {
        "id": f"c{n}",
        "indication": "rheumatoid_arthritis",
        "plan": "employer_group",
        "prescriber_specialties": ["rheumatology"],
        "medication_history": [{"drug": "methotrexate", "outcome": "failure", "months": months}],
    }


# --- defect 2: limits that hold, grounding included ------------------------


@pytest.mark.slow
def test_time_limit_bounds_a_kb_that_grounds_without_end(tmp_path):
    kb = kb_with(tmp_path, RUNAWAY_KB_RULE)
    for command in (["evaluate", str(APPROVED_CASE)], ["missing", str(APPROVED_CASE)], ["what-if", str(APPROVED_CASE), "--set", "plan=null"], ["verify"]):
        began = time.monotonic()
        proc = run_cli(*command, "--kb", str(kb), "--time-limit", LIMIT)
        assert time.monotonic() - began < float(LIMIT) + 5
        assert proc.returncode == 3
        assert f"the time limit of {LIMIT} s (--time-limit)" in one_line(proc.stderr)


@pytest.mark.slow
def test_memory_limit_stops_a_kb_that_grounds_without_end(tmp_path):
    kb = kb_with(tmp_path, RUNAWAY_KB_RULE)
    proc = run_cli("evaluate", str(APPROVED_CASE), "--kb", str(kb), "--memory-limit", "300", "--time-limit", "100")
    assert proc.returncode == 3 and "the memory limit of 300 MB (--memory-limit)" in one_line(proc.stderr)


@pytest.mark.slow
def test_batch_ends_within_the_limit_when_the_kb_grounds_without_end(tmp_path):
    kb = kb_with(tmp_path, RUNAWAY_KB_RULE)
    src = lines_file(tmp_path / "in.jsonl", [ra_line(1)])
    began = time.monotonic()
    proc = run_cli("batch", str(src), "--kb", str(kb), "--time-limit", LIMIT)
    assert time.monotonic() - began < float(LIMIT) + 5 + 3
    assert proc.returncode == 3 and f"time limit of {LIMIT} s" in one_line(proc.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_case_that_grounds_without_end_is_an_error_record_and_the_batch_goes_on(tmp_path, jobs):
    kb = kb_with(tmp_path, RUNAWAY_CASE_RULE)
    cases = [ra_line(n) for n in range(1, 41)]
    cases[6] = ra_line(7, months=1200)
    src = lines_file(tmp_path / "in.jsonl", cases)
    began = time.monotonic()
    proc = run_cli("batch", str(src), "--kb", str(kb), "--time-limit", LIMIT, "--jobs", jobs, "--chunk-size", "16")
    assert time.monotonic() - began < 30
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["line"] for r in records] == list(range(1, 41))
    assert records[6] == {"line": 7, "id": "c7", "error": f"{src}:7: not decided: stopped at the time limit of {LIMIT} s (--time-limit)"}
    expected = [json.loads(line) for line in cli_bytes("batch", str(src)).stdout.splitlines()]  # the packaged KB, in this process

    def decided(record: dict) -> dict:  # the provenance names the KB copy, with its own rules' hash
        return {k: v for k, v in record.items() if k != "provenance"}

    assert all(decided(r) == decided(e) for i, (r, e) in enumerate(zip(records, expected)) if i != 6)
    assert proc.returncode == 1 and b"1 errors" in proc.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "abc", ""])
@pytest.mark.parametrize("command", [["evaluate", str(APPROVED_CASE)], ["what-if", str(APPROVED_CASE)], ["missing", str(APPROVED_CASE)], ["batch", "-"], ["verify"], ["diff", "kb", "kb"]])
def test_time_limit_values_are_validated(command, value):
    result = CliRunner().invoke(main, [*command, "--time-limit", value], input="")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "--time-limit" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("value", ["0", "12", "-5", "lots"])
def test_memory_limit_values_are_validated(value):
    result = CliRunner().invoke(main, ["evaluate", str(APPROVED_CASE), "--memory-limit", value])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "--memory-limit" in result.output


def test_evaluate_with_a_time_limit_decides_in_a_worker_like_without():
    assert evaluate(APPROVED_CASE, KB_DIR, time_limit=30).to_dict() == evaluate(APPROVED_CASE, KB_DIR).to_dict()
    with pytest.raises(CaseError):
        evaluate({"indication": "sjiaa"}, KB_DIR, time_limit=30)
    for bad in (float("nan"), float("inf"), 0, -1):
        with pytest.raises(ValueError):
            evaluate(APPROVED_CASE, KB_DIR, time_limit=bad)


@pytest.mark.slow
def test_evaluate_with_a_time_limit_stops_a_kb_that_grounds_without_end(tmp_path):
    from kineret_asp.api import CaseUndecided

    kb = kb_with(tmp_path, RUNAWAY_KB_RULE)
    began = time.monotonic()
    with pytest.raises(CaseUndecided, match=f"time limit of {LIMIT} s"):
        evaluate(APPROVED_CASE, kb, time_limit=float(LIMIT))
    assert time.monotonic() - began < float(LIMIT) + 5


# --- defect 3: capped reads --------------------------------------------------


@pytest.mark.slow
def test_evaluate_dev_zero_ends_at_once_with_one_line():
    began = time.monotonic()
    proc = run_cli("evaluate", "/dev/zero")
    assert time.monotonic() - began < 10
    assert proc.returncode == 2 and f"over {MAX_CASE_BYTES} bytes" in one_line(proc.stderr)


@pytest.mark.slow
def test_stdin_is_capped():
    proc = subprocess.run(f"head -c {MAX_CASE_BYTES * 3} /dev/zero | {sys.executable} -m kineret_asp evaluate -", shell=True, cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == 2 and "<stdin>: input too large" in one_line(proc.stderr)


def test_json_values_are_counted_before_parsing():
    from kineret_asp.cases.files import parse_json_text

    bomb = b'{"indication": "sjia", "id": [' + b"{}," * MAX_JSON_VALUES + b"{}]}"
    with pytest.raises(CaseError, match="too many values"):
        parse_json_text(bomb, "<bomb>")
    commas_in_a_string = json.dumps({"indication": "sjia", "description": "," * 999}).encode()
    assert parse_json_text(commas_in_a_string * 1, "<ok>")["indication"] == "sjia"
    many_strings_with_commas = json.dumps({"indication": "sjia", "genetic_tests": [{"gene": "," * 200, "result": "negative"}] * 600})
    assert len(parse_json_text(many_strings_with_commas, "<ok>")["genetic_tests"]) == 600


def test_batch_evaluate_of_none_says_what_was_expected():
    (record,) = batch_evaluate([None], KB_DIR)
    assert record.error == "<batch>:1: expected a case (a JSON text, a dict or a Case), got NoneType"
    assert "longer than" not in record.error


@pytest.mark.slow
def test_batch_memory_is_flat_in_the_size_of_cases(tmp_path):
    src = tmp_path / "big.jsonl"
    with open(src, "w") as f:  # 300 different cases of 1,000 entries: about 30 MB
        for n in range(300):
            history = [{"drug": "methotrexate", "outcome": "failure", "months": (n + k) % 40} for k in range(1000)]
            f.write(json.dumps({"id": f"b{n}", "indication": "rheumatoid_arthritis", "plan": "employer_group", "medication_history": history}) + "\n")
    code = (
        "import resource, subprocess, sys\n"
        f"p = subprocess.run([sys.executable, '-m', 'kineret_asp', 'batch', {str(src)!r}, '-o', {str(tmp_path / 'out.jsonl')!r}, '--quiet'])\n"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    returncode, peak_kb = map(int, proc.stdout.split())
    assert returncode == 0
    assert (tmp_path / "out.jsonl").read_bytes().count(b"\n") == 300
    assert peak_kb / 1024 < 250, f"peak {peak_kb / 1024:.0f} MB"  # chunks of 1,000 cases peaked at 326 MB


# --- defect 4: one writer per output, resume byte-identical ------------------


@pytest.mark.slow
def test_a_second_writer_refuses_naming_the_holder(tmp_path):
    from kineret_asp.batch.output_lock import OutputLock

    out = tmp_path / "out.jsonl"
    src = lines_file(tmp_path / "in.jsonl", [ra_line(n) for n in range(3)])
    with OutputLock(out):
        proc = run_cli("batch", str(src), "-o", str(out), "--resume")
        assert proc.returncode == 1
        assert f"pid {os.getpid()}" in one_line(proc.stderr) and str(out) in proc.stderr.decode()
    assert not out.exists() or out.read_bytes() == b""  # the refused writer wrote nothing
    assert run_cli("batch", str(src), "-o", str(out)).returncode == 0  # the lock went with its holder
    assert not Path(str(out) + ".lock").exists()


@pytest.mark.slow
def test_two_writers_at_once_never_write_a_record_twice(tmp_path):
    src = lines_file(tmp_path / "in.jsonl", [ra_line(n) for n in range(3000)])
    out = tmp_path / "out.jsonl"
    first = subprocess.Popen([sys.executable, "-m", "kineret_asp", "batch", str(src), "-o", str(out), "--resume", "--quiet"], cwd=ROOT, stderr=subprocess.PIPE)
    time.sleep(0.5)
    second = run_cli("batch", str(src), "-o", str(out), "--resume", "--quiet")
    first.wait(timeout=120)
    if second.returncode == 0:  # the first had already finished: then the second resumed after all of it
        assert b"" == second.stderr
    else:
        assert second.returncode == 1 and b"is writing this file" in second.stderr
    assert out.read_bytes().count(b"\n") == 3000


@pytest.mark.slow
def test_resume_is_byte_identical_after_kill_9_mid_write(tmp_path):
    src = lines_file(tmp_path / "in.jsonl", [ra_line(n, months=n % 40) for n in range(20000)])
    full = tmp_path / "full.jsonl"
    assert run_cli("batch", str(src), "-o", str(full), "--quiet", "--chunk-size", "200").returncode == 0
    out = tmp_path / "out.jsonl"
    for share in (0.2, 0.5):  # killed twice, each time once some records are out
        proc = subprocess.Popen([sys.executable, "-m", "kineret_asp", "batch", str(src), "-o", str(out), "--quiet", "--resume", "--chunk-size", "200", "--jobs", "2"], cwd=ROOT)
        ends = time.monotonic() + 60
        while time.monotonic() < ends and proc.poll() is None and (not out.exists() or out.stat().st_size < share * full.stat().st_size):
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 0 < resume_point(out) < 20000
    assert run_cli("batch", str(src), "-o", str(out), "--quiet", "--resume", "--chunk-size", "200").returncode == 0
    assert out.read_bytes() == full.read_bytes()


def _fsize_limit(size: int):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


@pytest.mark.slow
def test_resume_is_byte_identical_after_the_disk_fills(tmp_path):
    src = lines_file(tmp_path / "in.jsonl", [ra_line(n, months=n % 40) for n in range(3000)])
    full = tmp_path / "full.jsonl"
    assert run_cli("batch", str(src), "-o", str(full), "--quiet", "--chunk-size", "100").returncode == 0
    out = tmp_path / "out.jsonl"
    cut = len(full.read_bytes()) // 3
    proc = run_cli("batch", str(src), "-o", str(out), "--chunk-size", "100", "--quiet", preexec_fn=_fsize_limit(cut))  # a disk that is full at a third
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert "cannot write the records" in line and "--resume" in line
    written = out.read_bytes()
    assert written and written.endswith(b"\n") and full.read_bytes().startswith(written)  # no partial record
    assert run_cli("batch", str(src), "-o", str(out), "--quiet", "--resume", "--chunk-size", "100").returncode == 0
    assert out.read_bytes() == full.read_bytes()


# --- defect 5: I/O failures are one line -------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("command", [["evaluate", str(APPROVED_CASE)], ["evaluate", str(APPROVED_CASE), "--format", "json"], ["batch", "-"], ["check"]])
def test_stdout_to_dev_full_is_one_line_and_exit_1(command):
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "kineret_asp", *command], cwd=ROOT, stdout=full, stderr=subprocess.PIPE, input=APPROVED_CASE.read_bytes().replace(b"\n", b" ") + b"\n", timeout=120
        )
    assert proc.returncode == 1
    assert "No space left on device" in one_line(proc.stderr)


@pytest.mark.slow
def test_output_file_on_dev_full_is_one_line_and_exit_1(tmp_path):
    src = lines_file(tmp_path / "in.jsonl", [ra_line(1)])
    proc = run_cli("batch", str(src), "-o", "/dev/full")
    assert proc.returncode == 1 and "No space left on device" in one_line(proc.stderr)


def _unshare_available() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _unshare_available(), reason="needs a private mount namespace (unshare -m) to mount a read-only folder")
def test_resume_on_a_read_only_filesystem_is_one_line(tmp_path):
    src = lines_file(tmp_path / "in.jsonl", [ra_line(1)])
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "out.jsonl").write_bytes(b"")
    script = f"mount -t tmpfs -o size=64k tmpfs {folder} && : > {folder}/out.jsonl && mount -o remount,ro {folder} && exec {sys.executable} -m kineret_asp batch {src} -o {folder}/out.jsonl --resume"
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=ROOT, capture_output=True, timeout=120)
    assert proc.returncode == 1
    assert "Read-only file system" in one_line(proc.stderr)


@pytest.mark.slow
def test_a_broken_pipe_is_not_a_traceback(tmp_path):
    src = lines_file(tmp_path / "in.jsonl", [ra_line(n) for n in range(3000)])
    proc = subprocess.run(f"{sys.executable} -m kineret_asp batch {src} --quiet | head -1", shell=True, cwd=ROOT, capture_output=True, timeout=120)
    assert json.loads(proc.stdout)["line"] == 1
    assert b"Traceback" not in proc.stderr and b"BrokenPipe" not in proc.stderr
    proc = subprocess.run(f"{sys.executable} -m kineret_asp evaluate {' '.join([str(APPROVED_CASE)] * 40)} | head -1", shell=True, cwd=ROOT, capture_output=True, timeout=120)
    assert b"Traceback" not in proc.stderr


@pytest.mark.slow
def test_killing_the_parent_of_two_jobs_leaves_no_worker_behind(tmp_path):
    src = lines_file(tmp_path / "in.jsonl", [ra_line(n, months=n % 40) for n in range(40000)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "kineret_asp", "batch", str(src), "--jobs", "2", "--quiet", "--chunk-size", "100"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    proc.stdout.read(1000)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    time.sleep(1.0)
    stderr = proc.stderr.read()
    assert b"Traceback" not in stderr and b"BrokenPipe" not in stderr
    assert not live_members(proc.pid), "a worker outlived its parent"


def live_members(group: int) -> list[int]:
    """Processes of a process group that are still running (a zombie waiting for init to reap it is not)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


# --- defect 6: text output cannot be spoofed ---------------------------------


def test_a_spoofed_verdict_in_an_id_stays_on_its_own_line(tmp_path):
    case = tmp_path / "spoof.json"
    case.write_text(json.dumps({**OSTEOARTHRITIS, "id": SPOOF}))
    outputs = [
        cli_bytes("evaluate", str(case)).stdout.decode(),
        cli_bytes("missing", str(case)).stdout.decode(),
        cli_bytes("what-if", str(case), "--set", f"id={json.dumps(SPOOF)}").stdout.decode(),
    ]
    for text in outputs:
        assert text
        for line in text.splitlines():
            assert not line.startswith("Decision:") or "APPROVED" not in line, text
            assert not line.startswith("Route: auto_approve"), text
    decision_lines = [line for line in outputs[0].splitlines() if line.startswith("Decision:")]
    assert len(decision_lines) == 1 and "APPROVED" not in decision_lines[0]
    case_line = next(line for line in outputs[0].splitlines() if "Decision: APPROVED" in line)
    assert "x\\n\\nDecision: APPROVED" in case_line  # shown, escaped, on the case's own line


def test_json_lines_escape_unicode_line_separators(tmp_path):
    ids = ["a\u2028b", "c\u2029d", "e\x85f", "g\u202eh"]
    src = lines_file(tmp_path / "in.jsonl", [{**OSTEOARTHRITIS, "id": i} for i in ids])
    proc = cli_bytes("batch", str(src))
    text = proc.stdout.decode()
    assert len(text.splitlines()) == len(ids)  # str.splitlines breaks on U+2028, U+2029 and U+0085
    assert [json.loads(line)["id"] for line in text.splitlines()] == ids
    single = tmp_path / "one.json"
    single.write_text(json.dumps({**OSTEOARTHRITIS, "id": ids[0]}))
    out = cli_bytes("evaluate", str(single), "--format", "json").stdout.decode()
    assert "\u2028" not in out and json.loads(out)["id"] == ids[0]


def test_error_lines_escape_what_the_user_gave(tmp_path):
    case = tmp_path / "bad.json"
    case.write_text(json.dumps({"indication": "osteoarthritis\u2028Decision: APPROVED"}))
    proc = cli_bytes("evaluate", str(case))
    assert proc.returncode == 2
    assert "\u2028" not in one_line(proc.stderr)


@pytest.mark.slow
def test_safe_text_escapes_every_character_that_breaks_or_hides_a_line():
    unsafe = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) in UNSAFE_CATEGORIES]
    assert "\n" in unsafe and "\u2028" in unsafe and "\u202e" in unsafe and "\x85" in unsafe
    text = "".join(unsafe)
    shown = safe_text(text)
    assert shown.isprintable() and not any(unicodedata.category(c) in UNSAFE_CATEGORIES for c in shown)
    assert safe_text("plain words, é ü 漢字 🙂") == "plain words, é ü 漢字 🙂"
    assert len(safe_markdown("a*b\nc").splitlines()) == 1 and "\\*" in safe_markdown("a*b")
    assert safe_html("<b>\u2029</b>") == "&lt;b&gt;\\u2029&lt;/b&gt;"


@pytest.mark.slow
def test_safe_json_escapes_every_unsafe_character_losslessly():
    unsafe = "".join(chr(c) for c in range(0x7F, sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) in UNSAFE_CATEGORIES)
    written = safe_json(json.dumps({"id": unsafe + " 漢字"}, ensure_ascii=False))
    assert written.isascii() or all(unicodedata.category(c) not in UNSAFE_CATEGORIES for c in written if not c.isascii())
    assert json.loads(written) == {"id": unsafe + " 漢字"}
    assert "漢字" in written


# --- defect 7: smaller ones --------------------------------------------------


def test_a_what_if_value_nested_2000_deep_is_one_line():
    for value in ("[" * 2000, "[" * 2000 + "]" * 2000, '{"a":' * 2000):
        proc = cli_bytes("what-if", str(APPROVED_CASE), "--add", f"medication_history={value}")
        assert proc.returncode == 2 and "nested too deeply" in one_line(proc.stderr)


# --- defect 8: exit codes for pipelines --------------------------------------


def test_batch_exits_1_when_a_record_is_an_error_unless_errors_are_allowed(tmp_path):
    src = lines_file(tmp_path / "in.jsonl", [ra_line(1), {"indication": "sjiaa"}])
    proc = cli_bytes("batch", str(src))
    assert proc.returncode == 1 and b"(1 errors)" in proc.stderr and proc.stdout.count(b"\n") == 2
    assert cli_bytes("batch", str(src), "--allow-errors").returncode == 0
    clean = lines_file(tmp_path / "clean.jsonl", [ra_line(1)])
    assert cli_bytes("batch", str(clean)).returncode == 0


def test_an_id_that_looks_like_an_error_is_not_counted_as_one(tmp_path):
    src = lines_file(tmp_path / "in.jsonl", [{**OSTEOARTHRITIS, "id": 'x", "error": "'}])
    proc = cli_bytes("batch", str(src))
    assert proc.returncode == 0 and b"(0 errors)" in proc.stderr


@pytest.mark.slow
def test_diff_exit_code_says_whether_a_decision_changes(tmp_path):
    assert cli_bytes("diff", "kb", "kb", "--exit-code").returncode == 0
    version = copy_kb(tmp_path)
    table = version / "tables" / "non_preferred_products.lp"
    text = table.read_text()
    row = next(line for line in text.splitlines() if line.startswith("non_preferred_row(employer_group") and "enbrel" in line)
    table.write_text(text.replace(row + "\n", ""))
    changed = cli_bytes("diff", "kb", str(version.parents[2]), "--exit-code")
    assert changed.returncode == 1 and b"class(es) of cases change decision" in changed.stdout
    assert cli_bytes("diff", "kb", str(version.parents[2])).returncode == 0


# --- CI-friendly authoring output --------------------------------------------


@pytest.mark.slow
def test_check_sarif_has_the_structure_code_scanning_reads(tmp_path):
    version = copy_kb(tmp_path)
    (version / "policy.lp").write_text((version / "policy.lp").read_text() + "\nfoo(X) :- bar(X).\n")
    result = CliRunner().invoke(main, ["check", "--kb", str(version.parents[2]), "--format", "sarif"])
    assert result.exit_code == 1
    log = json.loads(result.output)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "kineret-asp" and driver["rules"]
    rule_ids = [r["id"] for r in driver["rules"]]
    assert run["results"]
    for result_ in run["results"]:
        assert result_["ruleId"] in rule_ids and rule_ids[result_["ruleIndex"]] == result_["ruleId"]
        assert result_["level"] in ("error", "warning", "note") and result_["message"]["text"]
        location = result_["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"]
    undefined = next(r for r in run["results"] if r["ruleId"] == "undefined")
    assert undefined["level"] == "error" and "bar/1" in undefined["message"]["text"]
    assert undefined["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("policy.lp")
    assert undefined["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1
    clean = CliRunner().invoke(main, ["check", "--format", "sarif"])
    assert clean.exit_code == 0 and json.loads(clean.output)["runs"][0]["results"] == []


def test_test_junit_xml_lists_every_case(tmp_path):
    import xml.etree.ElementTree as ET

    cases = tmp_path / "cases"
    shutil.copytree(FACTS / "ra", cases)
    broken = json.loads((cases / "no_plan.json").read_text())
    broken["expect"]["decision"] = "approved"
    (cases / "no_plan.json").write_text(json.dumps(broken))
    junit = tmp_path / "junit.xml"
    result = CliRunner().invoke(main, ["test", str(cases), "--junit-xml", str(junit)])
    assert result.exit_code == 1
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    total = len(list(cases.glob("*.json")))
    assert suite.get("tests") == str(total) and suite.get("failures") == "1"
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["no_plan.json"]
    assert "decision: expected 'approved'" in failed[0].find("failure").get("message")


# --- property-based fuzzing, with a fixed budget (derandomized: the same inputs on every run) ---

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
KB = load_kb(KB_DIR)
FIELDS = [f.name for f in KB.schema.fields]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12) | st.sampled_from(FIELDS), inner, max_size=5),
    max_leaves=30,
)
json_texts = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6).map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.tuples(st.sampled_from(["[", '{"a":', '[{"b":']), st.integers(1, 5000)).map(lambda p: (p[0] * p[1]).encode()),
)


@pytest.mark.slow
@FUZZ
@given(json_texts)
def test_fuzz_the_json_reader_gives_a_case_or_one_line_errors(raw):
    from kineret_asp.cases.files import parse_json_text
    from kineret_asp.cases.load import load

    try:
        load(parse_json_text(raw, "<fuzz>"), KB, shown="<fuzz>")
    except CaseError as exc:
        assert exc.lines() and all("\n" not in line and "\r" not in line for line in exc.lines())


paths = st.one_of(st.sampled_from(FIELDS), st.text(max_size=30), st.sampled_from(FIELDS).map(lambda f: f + "[0]"), st.sampled_from(FIELDS).map(lambda f: f + "[0].drug"))
values = st.one_of(st.text(max_size=40), json_values.map(json.dumps), st.integers(1, 3000).map(lambda n: "[" * n), st.integers(1, 3000).map(lambda n: "[" * n + "]" * n))


@pytest.mark.slow
@FUZZ
@given(st.sampled_from(["add", "remove", "set"]), paths, st.booleans(), values)
def test_fuzz_the_what_if_change_parser_gives_a_change_or_one_line(op, path, with_value, value):
    from kineret_asp import load_case
    from kineret_asp.cases.changes import apply_changes, parse_assignment

    text = f"{path}={value}" if with_value else path
    try:
        change = parse_assignment(text, op)
        apply_changes(load_case(APPROVED_CASE, KB), [change], KB)
    except CaseError as exc:
        assert all("\n" not in line for line in exc.lines())
