"""Benchmark: the whole test suite's time, against another commit, back to back.

    python bench/suite_bench.py [--against COMMIT] [--rounds 2] [--tests PATH ...]

The machine this project is measured on is shared: the same commit's suite
has taken from 101 s to 151 s depending on the hour. So a figure alone says
little; this script runs the suite (``pytest -n auto``, as the README's test
command) on the working tree and on ``COMMIT`` (a temporary git worktree),
alternately, and prints each run's seconds beside a calibration loop (plain
Python, timed just before), and the ratio of the two in each round. The
ratio is the figure to read. ``COMMIT`` is exported with ``git archive``
(the repository is not changed); ``--tests`` runs only those test files in
both trees (the CI smoke run). Exit status 1 when a suite fails.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"(\d+) passed.* in ([0-9.]+)s")


def calibration() -> float:
    """Seconds a fixed plain-Python loop takes now: how fast the machine is at the moment."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(5_000_000):
            total += i * i % 7
        best = min(best, time.perf_counter() - start)
    return best


def suite(folder: Path, tests: list[str], workers: str = "auto") -> tuple[int, float]:
    """(tests passed, seconds pytest reports) for the suite of the code in ``folder``."""
    env = {**os.environ, "PYTHONPATH": str(folder)}  # that tree's package, not the installed one
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", workers, "-q", "-p", "no:cacheprovider", *tests], cwd=folder, env=env, capture_output=True, text=True)
    found = SUMMARY.findall(proc.stdout)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"the suite failed in {folder}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    passed, seconds = found[-1]
    return int(passed), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD~1", help="the commit to compare with (default: HEAD~1)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tests", nargs="*", default=[], help="only these test files (in both trees)")
    parser.add_argument("-n", dest="workers", default="auto", help="pytest-xdist workers (default: auto, as the README's command)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "other"
        other.mkdir()
        archive = subprocess.run(["git", "archive", "--format=tar", args.against], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(other)], input=archive, check=True)
        print(f"test suite, pytest -n {args.workers}: this tree against {args.against}, {args.rounds} round(s), alternately")
        print(f"  {'round':>5}  {'tree':<10} {'calib s':>8} {'tests':>6} {'suite s':>8}")
        for n in range(1, args.rounds + 1):
            times = {}
            for name, folder in ((args.against, other), ("this tree", ROOT)):
                calib = calibration()
                passed, seconds = suite(folder, args.tests, args.workers)
                times[name] = seconds
                print(f"  {n:>5}  {name:<10} {calib:8.3f} {passed:6d} {seconds:8.1f}")
            print(f"  {n:>5}  this tree / {args.against}: {times['this tree'] / times[args.against]:.2f}")


if __name__ == "__main__":
    main()
