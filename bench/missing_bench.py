"""Benchmark: time of missing() over the example cases, warm process.

    python bench/missing_bench.py [--repeat 5]

Prints, per run, the median and 95th percentile over every example case under
facts/ (each case timed --repeat times), next to the target (median < 50 ms).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kineret_asp import load_case, load_kb  # noqa: E402
from kineret_asp.author.example_cases import discover  # noqa: E402
from kineret_asp.explain.missing import missing  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cases", type=int, default=0, help="only the first N example cases (0: all)")
    args = parser.parse_args()
    kb = load_kb(ROOT / "kb")
    cases = [load_case(p, kb) for p in discover([ROOT / "facts"])]
    cases = cases[: args.cases] if args.cases else cases
    first = {}
    for case in cases:  # warm: KB parsed, programs built
        first[id(case)] = missing(case, kb).to_dict()
    times: list[float] = []
    slowest = (0.0, "")
    differ = 0
    for case in cases:
        for _ in range(args.repeat):
            start = time.perf_counter()
            answer = missing(case, kb)
            elapsed = time.perf_counter() - start
            differ += answer.to_dict() != first[id(case)]
            times.append(elapsed)
            slowest = max(slowest, (elapsed, case.id or ""))
    median = statistics.median(times) * 1e3
    p95 = percentile(times, 0.95) * 1e3
    print(f"missing() over {len(cases)} example cases x {args.repeat} runs (warm process)")
    print(f"  median {median:7.1f} ms   target < 50 ms   ratio to target {median / 50:.2f}")
    print(f"  p95    {p95:7.1f} ms")
    print(f"  slowest {slowest[0] * 1e3:6.1f} ms ({slowest[1]})")
    print(f"same answer every run: {'yes' if not differ else f'NO ({differ} differ)'}")
    return 1 if differ else 0  # the bench's own check; the figures are printed, not judged


if __name__ == "__main__":
    sys.exit(main())
