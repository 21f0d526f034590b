"""Benchmark: the policy author's loop (check, test, verify, diff) on the packaged KB.

    python bench/toolchain_bench.py [--repeat 3]

Each command runs in a fresh process, as an author runs it, so the figures
include interpreter start, imports and KB loading. diff compares the KB with
a copy that adds a preferred product (the edit of docs/authoring.md).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"check": 1.0, "test": None, "verify": 10.0, "diff": 10.0}


EXPECTED = {"check": 0, "test": 0, "verify": 0, "diff": 1}
"""Each command's exit code: the packaged KB checks, its cases pass, its properties hold, and the edit changes decisions."""


def timed(args: list[str], codes: list[int]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kineret_asp", *args], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr}")
    codes.append(proc.returncode)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        edited = Path(tmp) / "kb"
        shutil.copytree(ROOT / "kb", edited)
        table = sorted(edited.glob("policies/*/*/tables/non_preferred_products.lp"))[-1]  # the latest version's table
        row_f = 'non_preferred_row(individual_family, "3.C", "3.C.F", xeljanz_family, "F. Xeljanz/XR [requires prior authorization]").'
        text = table.read_text()
        if row_f not in text:
            raise SystemExit(f"{table}: the row this bench edits is not there any more; update the bench")
        table.write_text(text.replace(row_f, row_f + '\nnon_preferred_row(individual_family, "3.C", "3.C.G", kevzara, "G. Kevzara [requires prior authorization]").'))
        commands = {
            "check": ["check"],
            "test": ["test"],
            "verify": ["verify"],
            "diff": ["diff", "kb", str(edited), "--exit-code"],
        }
        wrong = []
        print(f"author's loop on the packaged KB, fresh process per run, median of {args.repeat}")
        print(f"  {'command':<8} {'seconds':>8} {'target':>8} {'ratio':>7}")
        for name, cmd in commands.items():
            codes: list[int] = []
            median = statistics.median(timed(cmd, codes) for _ in range(args.repeat))
            if set(codes) != {EXPECTED[name]}:
                wrong.append(f"{name} exited {sorted(set(codes))}, expected {EXPECTED[name]}")
            target = TARGETS[name]
            ratio = f"{median / target:7.2f}" if target else "      -"
            shown = f"{target:8.1f}" if target else "       -"
            print(f"  {name:<8} {median:8.2f} {shown} {ratio}")
    print("checks: " + ("every command answered as expected" if not wrong else "FAILED: " + "; ".join(wrong)))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
