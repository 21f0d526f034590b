"""Every bench/ script runs tiny, as a smoke test: it must finish and its own agreement check must hold.

The figures themselves are not judged here (they are measured on purpose,
beside each other, by running the scripts at full size); what a bench checks
about the answers it timed (the same decisions every way, byte-identical
resumes, one correct answer per request, the version each date selects) is.
``bench/pure_python.py`` is a module, not a script: batch_bench compares its
decisions with the batch's.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT

BENCH = ROOT / "bench"


def run(script: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def passed(proc: subprocess.CompletedProcess, line: str) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert line in proc.stdout, proc.stdout[-3000:]


def test_the_case_generator_writes_the_cases_asked_for(tmp_path):
    out = tmp_path / "cases.jsonl"
    proc = run("cases.py", "25", str(out))
    assert proc.returncode == 0, proc.stderr
    assert len([json.loads(line) for line in out.read_text().splitlines()]) == 25


@pytest.mark.slow
def test_batch_bench_smoke():
    passed(run("batch_bench.py", "--n", "300", "--rounds", "1", "--loop-sample", "20", "--no-million", "--no-memory"), "same decisions: batch, API, loop, evaluate(), pure Python")


@pytest.mark.slow
def test_load_bench_smoke():
    proc = run("load_bench.py", "--requests", "60", "--concurrency", "4", "--warmup", "10", "--local-seconds", "0.2")
    passed(proc, "every request got exactly one correct answer: yes")
    assert "60 of 60 answered, 0 wrong" in proc.stdout


def test_load_bench_fails_when_an_answer_is_wrong():
    """Its agreement check counts an answer that differs from the expected one (as a wrong provenance did)."""
    sys.path.insert(0, str(BENCH))
    try:
        import load_bench
    finally:
        sys.path.remove(str(BENCH))
    requests = [("evaluate", "/evaluate", b"{}", ("evaluate", 0)), ("health", "/health", b"", ("health", 0))]
    expected = {"evaluate": [{"decision": "approved", "provenance": {"chosen_by": "latest"}}], "health": [{"status": "ok"}]}
    right = {0: [((200, json.dumps(expected["evaluate"][0]).encode()), 1.0)], 1: [((200, b'{"status": "ok"}'), 1.0)]}
    assert load_bench.judge(requests, right, expected)[1:] == (0, 0, 0)
    pinned = {**right, 0: [((200, json.dumps({"decision": "approved", "provenance": {"chosen_by": "given"}}).encode()), 1.0)]}
    assert load_bench.judge(requests, pinned, expected)[1:] == (1, 0, 0)
    assert load_bench.judge(requests, {0: [], 1: right[1] * 2}, expected)[1:] == (0, 1, 1)


@pytest.mark.slow
def test_missing_bench_smoke():
    passed(run("missing_bench.py", "--repeat", "1", "--cases", "3"), "same answer every run: yes")


@pytest.mark.slow
def test_mutate_bench_smoke():
    """A few mutants (--since HEAD on a touched copy) with one job and two, the same answers; one Appendix row deleted in a copy, noticed."""
    proc = run("mutate_bench.py", "--tiny")
    passed(proc, "jobs 2 / jobs 1: ")
    assert "test then verify in a fresh process: 1 of 1 noticed" in proc.stdout, proc.stdout


@pytest.mark.slow
def test_warm_bench_smoke():
    """Both rules of the warm engine on a few cases: the same decisions, and the figures side by side."""
    proc = run("warm_bench.py", "--n", "40", "--repeat", "1")
    passed(proc, "same decisions under both rules: yes")
    assert "total, second / first sight" in proc.stdout and "first sightings (chunk engine)" in proc.stdout


@pytest.mark.slow
def test_reliability_bench_smoke():
    passed(run("reliability_bench.py", "--big", "2", "--repeat", "1", "--lines", "400", "--runaway-lines", "8", "--no-cold"), "checks: all hold")


@pytest.mark.slow
def test_suite_bench_smoke():
    proc = run("suite_bench.py", "--against", "HEAD", "--rounds", "1", "-n", "0", "--tests", "tests/test_memo.py")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "this tree / HEAD:" in proc.stdout


@pytest.mark.slow
def test_toolchain_bench_smoke():
    passed(run("toolchain_bench.py", "--repeat", "1"), "checks: every command answered as expected")


@pytest.mark.slow
def test_versions_bench_smoke():
    passed(run("versions_bench.py", "--n", "300", "--repeat", "1"), "every record names the version its date selects")


@pytest.mark.slow
def test_hooks_bench_smoke():
    """The CDS Hooks load with the decision log on a real PostgreSQL server: every request answered, every decision logged once."""
    import os

    sys.path.insert(0, str(ROOT))
    try:
        from tests.pgtemp import binaries
    finally:
        sys.path.remove(str(ROOT))
    if binaries() is None and not os.environ.get("KINERET_ASP_REQUIRE_POSTGRES"):
        pytest.skip("PostgreSQL's server binaries are not installed here (.ci/run installs them)")
    proc = run("hooks_bench.py", "--requests", "40", "--concurrency", "8", "--seconds", "30", "--warmup", "0")  # no warm-up: the smoke checks answers and records, it measures nothing
    passed(proc, "every request answered, every decision logged once: yes")
    assert "40/40" in proc.stdout and "log on PostgreSQL" in proc.stdout and "no log" in proc.stdout


def test_import_bench_smoke():
    """The command line starts without clingo or the server's libraries (what keeps `--help` and usage errors quick)."""
    passed(run("import_bench.py", "--repeat", "1"), "checks: the command line starts without clingo or the server")
