"""An .lp case file is data, read strictly as declared facts (issue 8, item 3).

Each way an .lp file could change a decision or crash the process when it
was handed to clingo as program text has its own named test here, through
the command a user runs: every one is refused with exit code 2 and one line
naming the file and line, and none changes a decision.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ..conftest import ROOT, cli

STILLS = b"case_indication(stills_disease).\n"  # criteria not met: no rheumatologist


def run(path: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """The command in this process, under a time limit of ``timeout`` seconds."""
    return cli("evaluate", str(path), "--format", "json", "--time-limit", str(timeout), text=False)


def refused(tmp_path: Path, data: bytes, line: int, *words: str, timeout: float = 60) -> str:
    path = tmp_path / "case.lp"
    path.write_bytes(data)
    proc = run(path, timeout)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, (proc.returncode, err, proc.stdout[:200])
    assert proc.stdout == b"" and err.count("\n") == 1 and "Traceback" not in err and "PANIC" not in err, err
    assert f"{path}:{line}:" in err, err
    for word in words:
        assert word in err, err
    return err


def test_the_plain_case_decides():
    path = ROOT / "facts" / "lp" / "ra_approved_facts.lp"
    proc = run(path)
    assert proc.returncode == 0 and b'"decision": "approved"' in proc.stdout


def test_classical_negation_of_a_fact_is_refused_not_read_as_the_fact(tmp_path):
    refused(tmp_path, STILLS + b"-case_specialty(rheumatology).\n", 2, "classical negation")


def test_a_negated_argument_is_refused_not_read_as_the_constant(tmp_path):
    refused(tmp_path, STILLS + b"case_specialty(-rheumatology).\n", 2)


def test_two_entries_under_one_number_are_refused_not_merged(tmp_path):
    data = b"case_indication(rheumatoid_arthritis).\ncase_history(1, enbrel, intolerance).\ncase_history(1, rinvoq, failure).\n"
    refused(tmp_path, data, 3, "numbered 1")


def test_an_integer_past_32_bits_is_refused_not_wrapped(tmp_path):
    data = b"case_indication(rheumatoid_arthritis).\ncase_history(0, methotrexate, failure).\ncase_history_months(0, 4294967299).\n"
    refused(tmp_path, data, 3, "4294967299")


def test_a_nul_byte_is_refused_and_hides_nothing(tmp_path):
    # clingo stopped reading at a NUL: the concurrent biologic after it went unseen
    data = b"case_indication(sjia).\ncase_specialty(rheumatology).\n%\x00\ncase_current_medication(enbrel).\n"
    refused(tmp_path, data, 3, "NUL")


def test_a_byte_order_mark_is_refused(tmp_path):
    refused(tmp_path, b"\xef\xbb\xbf" + STILLS, 1)


def test_bytes_that_are_not_utf8_are_refused(tmp_path):
    refused(tmp_path, STILLS + b"case_specialty(rheumatolog\xff).\n", 2)


def test_a_non_ascii_letter_outside_a_string_is_refused_without_aborting(tmp_path):
    # clingo's logger raised on the message and the process aborted with PANIC
    refused(tmp_path, STILLS + "case_specialty(rhéumatology).\n".encode(), 2)


def test_a_directive_hidden_after_a_string_that_spans_lines_is_refused_unopened(tmp_path):
    fifo = tmp_path / "p"
    os.mkfifo(fifo)  # opened by clingo, it would hang the process
    data = STILLS + b'x("\n. #include "' + str(fifo).encode() + b'". %"\n'
    refused(tmp_path, data, 2, timeout=30)


@pytest.mark.parametrize("depth", [600, 30_000])
def test_terms_nested_deeper_than_the_schema_allows_are_refused(tmp_path, depth):
    # 600 levels gave a RecursionError traceback, 30,000 a segmentation fault
    data = STILLS + b"case_specialty(" + b"f(" * depth + b"x" + b")" * depth + b").\n"
    refused(tmp_path, data, 2)


def test_a_file_over_the_cap_is_refused_before_it_is_read_whole(tmp_path):
    # 100,000 facts took 41 s to reject when clingo read them
    data = STILLS + b"case_specialty(rheumatology).\n" * 100_000
    refused(tmp_path, data, 1, "bytes", timeout=30)
