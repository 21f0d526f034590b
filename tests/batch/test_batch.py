"""kineret-asp batch and batch_evaluate: order, error records, resume, jobs, streaming."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kineret_asp import CaseError, evaluate, load_case, load_kb
from kineret_asp.author.example_cases import discover
from kineret_asp.batch.run import BatchWorker, batch_evaluate, resume_point, run_batch
from kineret_asp.cli import main

from ..conftest import FACTS, KB_DIR, ROOT, cli, copy_kb

sys.path.insert(0, str(ROOT / "bench"))
import cases as generator  # noqa: E402

EXAMPLES = discover([FACTS])


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def mixed_lines() -> list[str]:
    good = [json.dumps(load_case(p).to_dict()) for p in EXAMPLES[:12]]
    bad = [
        "",
        "not json",
        json.dumps({"id": "typo", "indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrl", "outcome": "failure"}]}),
        json.dumps([1, 2, 3]),
        json.dumps({"id": "x", "indication": "sjia", "dose": 3}),
    ]
    lines = []
    for i, g in enumerate(good):
        lines.append(g)
        if i < len(bad):
            lines.append(bad[i])
    return lines


def run_cli(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    """``python -m kineret_asp``: for tests about processes (--jobs workers, per-case time limits)."""
    return subprocess.run([sys.executable, "-m", "kineret_asp", *args], cwd=ROOT, capture_output=True, input=input)


def run_here(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    """The command in this process, for tests about what it writes and its exit code."""
    return cli(*args, input=input, text=False)


def test_one_record_per_line_in_order_with_line_and_id(tmp_path):
    lines = mixed_lines()
    src = write_lines(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    proc = run_here("batch", str(src), "-o", str(out))
    assert proc.returncode == 1, proc.stderr  # some lines are errors (--allow-errors accepts them)
    records = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(records) == len(lines)
    assert [r["line"] for r in records] == list(range(1, len(lines) + 1))
    for line, record in zip(lines, records):
        if "error" in record:
            continue
        case = json.loads(line)
        assert record["id"] == case.get("id")
        assert {k: v for k, v in record.items() if k != "line"} == evaluate(case, KB_DIR).to_dict()
    assert sum("error" in r for r in records) == 5


def test_error_records_carry_the_message_evaluate_prints(tmp_path):
    lines = mixed_lines()
    src = write_lines(tmp_path / "in.jsonl", lines)
    records = [json.loads(l) for l in run_here("batch", str(src)).stdout.splitlines()]
    errors = {r["line"]: r for r in records if "error" in r}
    for number, record in errors.items():
        single = tmp_path / "single.json"
        single.write_text(lines[number - 1])
        with pytest.raises(CaseError) as info:
            load_case(single)
        assert record["error"] == info.value.line().replace(str(single), f"{src}:{number}")
        assert "\n" not in record["error"]
    typo = next(r for r in errors.values() if r["id"] == "typo")
    assert "medication_history[0].drug" in typo["error"] and "did you mean 'enbrel'?" in typo["error"]


@pytest.mark.slow
def test_two_jobs_and_no_cache_give_the_same_bytes(tmp_path):
    src = tmp_path / "in.jsonl"
    generator.write(3000, str(src), seed=7)
    outs = []
    for extra in ([], ["--jobs", "2", "--chunk-size", "250"], ["--no-cache"]):
        out = tmp_path / f"out{len(outs)}.jsonl"
        proc = run_cli("batch", str(src), "-o", str(out), "--quiet", *extra)
        assert proc.returncode == 0 and proc.stderr == b""
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    assert outs[0].count(b"\n") == 3000


@pytest.mark.slow
def test_resume_after_an_interruption(tmp_path):
    src = tmp_path / "in.jsonl"
    generator.write(2500, str(src), seed=11)
    full = tmp_path / "full.jsonl"
    assert run_here("batch", str(src), "-o", str(full), "--quiet").returncode == 0
    expected = full.read_bytes()
    cut = expected.index(b"\n", len(expected) // 2) + 40  # inside a record: a half-written line
    partial = tmp_path / "partial.jsonl"
    partial.write_bytes(expected[:cut])
    assert resume_point(partial) == expected[:cut].count(b"\n")
    assert partial.read_bytes() == expected[: expected.rindex(b"\n", 0, cut) + 1]
    proc = run_here("batch", str(src), "-o", str(partial), "--resume")
    assert proc.returncode == 0
    assert partial.read_bytes() == expected
    assert b"resumed after" in proc.stderr


def test_resume_needs_an_output_file(tmp_path):
    src = write_lines(tmp_path / "in.jsonl", mixed_lines()[:2])
    proc = run_here("batch", str(src), "--resume")
    assert proc.returncode == 2 and proc.stderr.decode().count("\n") == 1


@pytest.mark.slow
def test_progress_bar_only_on_request_or_terminal(tmp_path):
    src = tmp_path / "in.jsonl"
    generator.write(300, str(src), seed=3)  # three chunks of 100 under --progress: the bar is about stderr, not volume
    piped = run_here("batch", str(src), "-o", str(tmp_path / "a.jsonl"))
    assert b"\r" not in piped.stderr and b"records (0 errors)" in piped.stderr
    forced = run_here("batch", str(src), "-o", str(tmp_path / "b.jsonl"), "--progress", "--chunk-size", "100")
    assert b"\rkineret-asp batch: " in forced.stderr and b"cases/s" in forced.stderr
    quiet = run_here("batch", str(src), "-o", str(tmp_path / "c.jsonl"), "--quiet", "--progress")
    assert quiet.stderr == b""


def test_stdin_to_stdout(tmp_path):
    lines = mixed_lines()[:4]
    proc = run_here("batch", "-", input=("\n".join(lines) + "\n").encode())
    records = [json.loads(l) for l in proc.stdout.splitlines()]
    assert len(records) == 4 and records[1]["error"].startswith("<stdin>:2: ")


class CountingStream(io.BytesIO):
    """Records how much input had been read each time output was written."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.read_so_far = 0

    def readline(self, size: int = -1) -> bytes:
        line = super().readline(size)
        self.read_so_far += len(line)
        return line


class RecordingSink(io.BytesIO):
    def __init__(self, source: CountingStream):
        super().__init__()
        self.source = source
        self.read_at_writes: list[int] = []

    def write(self, data: bytes) -> int:
        self.read_at_writes.append(self.source.read_so_far)
        return super().write(data)


@pytest.mark.slow
def test_batch_streams_in_fixed_size_chunks():
    data = b"".join(json.dumps(c).encode() + b"\n" for c in generator.generate(2000, seed=5))
    source = CountingStream(data)
    sink = RecordingSink(source)
    summary = run_batch(source, sink, load_kb(KB_DIR), "<mem>", chunk_size=200)
    assert summary.records == 2000 and sink.getvalue().count(b"\n") == 2000
    assert len(sink.read_at_writes) == 10
    assert sink.read_at_writes[0] < len(data) / 5  # the first records went out after reading a fifth


def test_batch_evaluate_python_api():
    items = [load_case(EXAMPLES[0]).to_dict(), "not json", {"indication": "sjia"}, load_case(EXAMPLES[1])]
    records = list(batch_evaluate(items, KB_DIR))
    assert [r.line for r in records] == [1, 2, 3, 4]
    assert records[1].decision is None and "invalid JSON" in records[1].error
    assert records[0].decision.to_dict() == evaluate(EXAMPLES[0], KB_DIR).to_dict()
    assert records[2].decision.decision == "criteria_not_met"
    assert records[3].to_dict()["line"] == 4


@pytest.mark.slow
def test_batch_and_evaluate_agree_on_generated_cases():
    cases = list(generator.generate(1500, seed=99))
    for case, record in zip(cases, batch_evaluate(cases, KB_DIR)):
        assert record.decision.to_dict() == evaluate(case, KB_DIR).to_dict()


def test_batch_and_evaluate_agree_on_100_generated_cases():
    """The fast lane's twin of the 1,500-case comparison: 100 cases of another seed."""
    cases = list(generator.generate(100, seed=98))
    for case, record in zip(cases, batch_evaluate(cases, KB_DIR)):
        assert record.decision.to_dict() == evaluate(case, KB_DIR).to_dict()


@pytest.mark.slow
def test_decision_cache_is_exact():
    kb = load_kb(KB_DIR)
    worker = BatchWorker(kb, "<mem>", cache=100)
    cases = [json.dumps(c) for c in generator.generate(400, seed=1)]
    first = worker.json_lines(list(enumerate(cases + cases, 1)))
    assert worker.cache.hits >= 400
    fresh = BatchWorker(kb, "<mem>", cache=0).json_lines(list(enumerate(cases + cases, 1)))
    assert first == fresh


HARD = """
% § test - a search that never ends quickly: 13 pigeons, 12 holes
pigeon(1..13). hole(1..12).
1 { sits(P, H) : hole(H) } 1 :- pigeon(P), case_indication(other).
:- sits(P, H), sits(Q, H), P < Q.
"""


@pytest.mark.slow
def test_time_limit_gives_an_error_record(tmp_path):
    kb = copy_kb(tmp_path)
    (kb / "hard.lp").write_text(HARD)
    src = write_lines(tmp_path / "in.jsonl", [json.dumps({"id": "slow", "indication": "other"}), json.dumps({"id": "fast", "indication": "sjia", "prescriber_specialties": ["rheumatology"]})])
    proc = run_cli("batch", str(src), "--kb", str(kb), "--time-limit", "0.5", "--allow-errors")
    assert proc.returncode == 0, proc.stderr
    slow, fast = [json.loads(l) for l in proc.stdout.splitlines()]
    assert slow["id"] == "slow" and "did not finish within 0.5 s" in slow["error"]
    assert fast["decision"] == "approved"


@pytest.mark.parametrize("setup, words", [("missing", "KB folder does not exist"), ("broken", "policy.lp:2:1: error: syntax error"), ("file", "KB path is not a folder")])
def test_bad_kb_exits_2_with_one_line(tmp_path, setup, words):
    src = write_lines(tmp_path / "in.jsonl", mixed_lines()[:2])
    kb = tmp_path / "kb"
    if setup == "broken":
        kb = copy_kb(tmp_path)
        (kb / "policy.lp").write_text("policy(")
    if setup == "file":
        kb.write_text('policy("IP0243").')
    proc = run_here("batch", str(src), "--kb", str(kb))
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


def test_unreadable_kb_folder_exits_2(tmp_path, monkeypatch):
    import os

    kb = copy_kb(tmp_path)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(kb) else real_access(p, mode))
    result = CliRunner().invoke(main, ["batch", "-", "--kb", str(kb)], input="{}\n")
    assert result.exit_code == 2
    assert result.output.strip().endswith("KB folder is not readable") and result.output.count("\n") == 1


def test_unreadable_kb_file_exits_2(tmp_path, monkeypatch):
    import os

    kb = copy_kb(tmp_path)
    target = kb / "policy.lp"
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(target) else real_access(p, mode))
    result = CliRunner().invoke(main, ["batch", "-", "--kb", str(kb)], input="{}\n")
    assert result.exit_code == 2 and "policy.lp:0:0: error: file is not readable" in result.output


def test_missing_input_file_exits_2(tmp_path):
    proc = run_here("batch", str(tmp_path / "nope.jsonl"))
    assert proc.returncode == 2 and b"nope.jsonl" in proc.stderr


def test_an_in_process_batch_gives_the_frozen_heap_back_to_the_collector():
    import gc

    before = gc.get_freeze_count()
    sink = io.BytesIO()
    run_batch(io.BytesIO(b'{"indication": "sjia"}\n'), sink, load_kb(KB_DIR), "<mem>", time_limit=None)
    assert sink.getvalue().count(b"\n") == 1
    assert gc.get_freeze_count() == before and gc.isenabled()


def test_a_case_with_more_atoms_than_the_cache_keeps_is_decided_but_not_kept(monkeypatch):
    """The decision cache keeps cases of up to MAX_CACHED_ATOMS input atoms (a bigger key would weigh more than the solve it saves)."""
    from kineret_asp.batch import run

    small = {"id": "s", "indication": "sjia"}
    big = {"id": "b", "indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrel", "outcome": "failure", "months": m} for m in range(1, 6)]}
    worker = BatchWorker(None, "in", None)
    atoms = {name: len(load_case(case).atoms()) for name, case in (("small", small), ("big", big))}
    monkeypatch.setattr(run, "MAX_CACHED_ATOMS", atoms["small"])
    lines = [(1, json.dumps(small)), (2, json.dumps(big))]
    first, _ = worker.decide(lines)
    assert atoms["big"] > atoms["small"] and len(worker.cache) == 1  # the small case kept, the big one not
    again, _ = worker.decide(lines)
    assert again == first and worker.cache.hits == 1


def test_a_worker_sends_a_chunks_records_as_the_bytes_they_are_written_with():
    """A worker process replies with the chunk's records encoded once (the parent writes them as they come): the same
    bytes as the batch in this process, non-ASCII ids and error records included."""
    from kineret_asp.batch.run import Supervisor, _batch_server
    from kineret_asp.limits import Limits, Worker

    lines = [json.dumps({"id": "é ñ 漢字", "indication": "sjia"}, ensure_ascii=False), *mixed_lines()[:6]]
    chunk = [(n, line.encode("utf-8")) for n, line in enumerate(lines, start=1)]
    serve = _batch_server(None, "in", 10.0, 0)  # run in worker processes only: its start sets the process's collector up for a batch
    worker = Worker(serve, Limits(10.0))
    try:
        assert worker.call(("start", None), 60).value == ("ready", None)
        kind, data, errors = worker.call(("chunk", chunk), 60).value
    finally:
        worker.close()
    here, here_errors = BatchWorker(None, "in", None, cache=0).decide(chunk)
    assert kind == "text" and type(data) is bytes and data == here.encode("utf-8") and errors == here_errors >= 1
    supervisor = Supervisor(serve, 1, Limits(10.0), "in")
    try:
        got = list(supervisor.results([chunk[:3], chunk[3:]]))
    finally:
        supervisor.close()
    assert all(type(d) is bytes for d, _, _ in got) and b"".join(d for d, _, _ in got) == data
    assert [n for _, n, _ in got] == [3, len(chunk) - 3] and sum(e for _, _, e in got) == errors
