"""Benchmark: the warm engine's rule for values outside its domains, one case at a time.

    python bench/warm_bench.py [--n 2000] [--repeat 2]

A fresh process's ``evaluate()`` meets values its grounded program does not
declare (drugs, genes, months past its range). The engine declares such a
value when a case brings it a second time (a rebuild: a size class grounded
again) and decides a first sighting with the chunk engine; the other rule
declares every value at first sight. Both are run on the same seeded cases
(``bench/cases.py``), each in a new process, in turns; printed side by side:
the median, p90 and p99 of a case's latency, the total, and the rebuilds and
first sightings. The answers of both rules are compared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN = r"""
import hashlib, json, sys, time
sys.path.insert(0, "bench")
import cases as generator
from kineret_asp import evaluate
from kineret_asp.api import resident_for
from kineret_asp.cases.versions import Chooser
from kineret_asp.engine import warm

n, rule = int(sys.argv[1]), sys.argv[2]
if rule == "first-sight":  # every value declared when first met: as if each had been met before
    second_sighting = warm.ResidentEngine._widen

    def widen(self, atoms):
        for pos, values in self._new_values(atoms).items():
            self.pending.setdefault(pos, set()).update(values)
        return second_sighting(self, atoms)

    warm.ResidentEngine._widen = widen
cases = list(generator.generate(n, seed=20240601))
kb = Chooser.of(None).default()
latencies, digest = [], hashlib.sha256()
for case in cases:
    start = time.perf_counter()
    decision = evaluate(case, kb)
    latencies.append(time.perf_counter() - start)
    digest.update(decision.to_json().encode())
engine = resident_for(kb)
print(json.dumps({"latencies": latencies, "digest": digest.hexdigest(), "rebuilds": engine.rebuilds, "first_seen": engine.first_seen}))
"""


def run(n: int, rule: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", RUN, str(n), rule], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    rules = ("second-sight", "first-sight")
    runs: dict[str, list[dict]] = {rule: [] for rule in rules}
    for _ in range(args.repeat):
        for rule in rules:
            runs[rule].append(run(args.n, rule))
    print(f"{args.n} seeded cases (bench/cases.py), each rule {args.repeat} time(s) in a new process, in turns")
    print(f"  {'':<34} {'second sight':>14} {'first sight':>14}")

    def figure(rule: str, read) -> float:
        return statistics.median(read(r) for r in runs[rule])

    def pct(q: float):
        return lambda r: sorted(r["latencies"])[int(q * (len(r["latencies"]) - 1))] * 1e3

    rows = [
        ("median latency (ms)", pct(0.5), "{:.2f}"),
        ("p90 latency (ms)", pct(0.9), "{:.2f}"),
        ("p99 latency (ms)", pct(0.99), "{:.2f}"),
        ("total (s)", lambda r: sum(r["latencies"]), "{:.2f}"),
        ("rebuilds", lambda r: r["rebuilds"], "{:.0f}"),
        ("first sightings (chunk engine)", lambda r: r["first_seen"], "{:.0f}"),
    ]
    for label, read, fmt in rows:
        print(f"  {label:<34} {fmt.format(figure(rules[0], read)):>14} {fmt.format(figure(rules[1], read)):>14}")
    ratio = figure(rules[0], lambda r: sum(r["latencies"])) / figure(rules[1], lambda r: sum(r["latencies"]))
    print(f"  {'total, second / first sight':<34} {ratio:>13.2f}x")
    same = len({r["digest"] for rule in rules for r in runs[rule]}) == 1
    print(f"same decisions under both rules: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
