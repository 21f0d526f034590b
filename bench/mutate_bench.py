"""Benchmark: `kineret-asp test --mutate` on the shipped KB, with one job and with two.

    python bench/mutate_bench.py [--repeat 1] [--tiny]

Each run is the command an author runs, in a fresh process with an empty
cache of derived programs (what a first run on a new KB pays): every
single-change mutant of the version's deciding rules and tables through the
KB's constraints, the example cases and the properties, the rest looked for
in the case space. Prints, side by side, the mutants, the score, the
seconds with --jobs 1 and --jobs 2 (the median of --repeat rounds, the two
run back to back in each round: a shared machine's load drifts, a round's
runs see the same load), the mutants a second, the ratio of two jobs to one,
and the ratio of the two-job run to its target (5 minutes on this 2-core
machine).

Then the checks the test suite makes on a sample only: the score against
the one docs/authoring.md records for the shipped KB, and every Appendix
row, rheumatoid-arthritis tick and product brand deleted in a copy of the
version, each run with `test` (and `verify` when `test` passes) as an author
would, in a fresh process each: all of them must be noticed. Exits 1 when a
run fails, the two runs disagree on any mutant, the two-job run misses the
target, the score is below the recorded one, or a deletion goes unnoticed.

--tiny (the CI smoke run): the same, on a copy of the KB in a git repository
of its own with one table row touched, mutating only what changed since the
commit (`--since HEAD`): a few mutants, the two runs sharing one cache, and
one Appendix row deleted in a copy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = Path("policies") / "IP0243" / "2024-06-01"
TARGET_SECONDS = 300.0  # --jobs 2, this 2-core machine (issue 25)
APPENDIX = "tables/appendix_drug_classes.lp"


def run(kb: Path, jobs: int, since: str | None, cache: str) -> tuple[float, dict]:
    """One `test --mutate --format json` in a fresh process with the cache folder given: seconds and the report."""
    env = {**os.environ, "KINERET_ASP_CACHE": cache}
    args = [sys.executable, "-m", "kineret_asp", "test", "--mutate", "--jobs", str(jobs), "--format", "json", "--kb", str(kb), "--time-limit", "3600"]
    if since is not None:
        args += ["--since", since]
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"test --mutate --jobs {jobs} failed ({proc.returncode}): {proc.stderr.strip()}")
    return seconds, json.loads(proc.stdout)


def recorded_score() -> float:
    """The shipped KB's mutation score as docs/authoring.md records it (the CI lane's floor)."""
    match = re.search(r"mutation score of the shipped KB: ([0-9.]+) %", (ROOT / "docs" / "authoring.md").read_text(encoding="utf-8"))
    if match is None:
        raise SystemExit("docs/authoring.md records no mutation score of the shipped KB")
    return float(match.group(1))


def appendix_deletions(kb: Path, tiny: bool) -> list:
    """The mutants that delete an Appendix row, a row's rheumatoid-arthritis tick or a product's brand (--tiny: one row)."""
    from kineret_asp.author.mutation import CELL_DELETED, ROW_DELETED, TABLE_KINDS, generate
    from kineret_asp.knowledge.base import load_kb

    version = load_kb(kb)
    out = []
    for m in generate(version, TABLE_KINDS).mutants:
        if not m.file.endswith(APPENDIX):
            continue
        row = m.row.startswith("appendix_row(")
        if (m.kind == ROW_DELETED and row) or (m.kind == CELL_DELETED and ((row and m.before == "ra") or m.row.startswith("product_member("))):
            out.append((m, version.texts[m.file]))
    return out[:1] if tiny else out


def noticed_in_a_copy(kb: Path, deletions: list, cache: str) -> list[str]:
    """Each deletion written into a copy of the version, then `test` (and `verify` when it passes) in a fresh process: the unnoticed ones."""
    env = {**os.environ, "KINERET_ASP_CACHE": cache}
    missed = []
    with tempfile.TemporaryDirectory(prefix="mutate-bench-copy-") as tmp:
        root = Path(tmp) / "kb"
        shutil.copytree(kb.parents[2], root, ignore=shutil.ignore_patterns(".git"))
        table = root / VERSION / APPENDIX
        for m, text in deletions:
            table.write_text(m.apply(text), encoding="utf-8")
            for command in ("test", "verify"):
                proc = subprocess.run([sys.executable, "-m", "kineret_asp", command, "--kb", str(root / VERSION)], cwd=ROOT, capture_output=True, text=True, env=env)
                if proc.returncode != 0:
                    break
            else:
                missed.append(f"{m.location}: {m.kind} {m.before[:60]}")
    return missed


def tiny_kb(dest: Path) -> Path:
    """A copy of the KB in its own git repository, one Appendix row touched after the commit."""
    shutil.copytree(ROOT / "kb", dest)
    git = ["git", "-C", str(dest), "-c", "user.email=bench@example.org", "-c", "user.name=bench"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "the KB"], check=True)
    table = dest / VERSION / "tables" / "appendix_drug_classes.lp"
    text = table.read_text()
    row = "appendix_row(1, enbrel,         tnf_inhibitor, (ra; jia; as; psa; pso))."
    assert row in text, "the touched row is not in the table"
    table.write_text(text.replace(row, row.replace("(ra; jia;", "(ra;  jia;")))
    return dest / VERSION


def outcomes(report: dict) -> dict:
    return {(m["file"].split("policies/")[-1], m["line"], m["column"], m["kind"], m["before"], m["after"]): (m["status"], m["by"], m["why"]) for m in report["mutants"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--tiny", action="store_true", help="a few mutants (--since HEAD on a touched copy), one row deleted in a copy: the CI smoke run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mutate-bench-") as tmp:
        kb, since = (tiny_kb(Path(tmp) / "kb"), "HEAD") if args.tiny else (ROOT / "kb" / VERSION, None)
        times: dict[int, list[float]] = {1: [], 2: []}
        reports: dict[int, dict] = {}
        shared = str(Path(tmp) / "cache")
        for _ in range(max(1, args.repeat)):
            for jobs in (1, 2):
                with tempfile.TemporaryDirectory(prefix="mutate-bench-cache-") as fresh:
                    seconds, reports[jobs] = run(kb, jobs, since, shared if args.tiny else fresh)
                times[jobs].append(seconds)
        start = time.perf_counter()
        deletions = appendix_deletions(kb, args.tiny)
        missed = noticed_in_a_copy(kb, deletions, shared)
        copies = time.perf_counter() - start
    one, two = reports[1], reports[2]
    median = {jobs: statistics.median(t) for jobs, t in times.items()}
    each = "one cache shared by both runs" if args.tiny else "fresh process and empty cache each run"
    print(f"test --mutate on {'a touched copy, --since HEAD' if args.tiny else 'the shipped KB'} ({one['version']}), {len(one['mutants'])} mutants, {max(1, args.repeat)} round(s), {each}")
    print("  jobs  seconds  mutants/s  killed  survived  equivalent  invalid  score")
    for jobs, report in ((1, one), (2, two)):
        rate = len(report["mutants"]) / median[jobs] if median[jobs] else 0.0
        print(f"  {jobs:>4}  {median[jobs]:>7.1f}  {rate:>9.1f}  {report['killed']:>6}  {report['survived']:>8}  {report['equivalent']:>10}  {report['invalid']:>7}  {report['score']} %")
    ratio = median[2] / median[1] if median[1] else 0.0
    print(f"  jobs 2 / jobs 1: {ratio:.2f}")
    print(f"  jobs 2 / target ({TARGET_SECONDS:.0f} s): {median[2] / TARGET_SECONDS:.3f}")
    recorded = recorded_score()
    print(f"  score / recorded in docs/authoring.md ({recorded} %): {one['score']} %")
    print(f"Appendix rows, ticks and brands deleted in a copy of the version, test then verify in a fresh process: {len(deletions) - len(missed)} of {len(deletions)} noticed in {copies:.1f} s")
    problems = []
    if outcomes(one) != outcomes(two):
        problems.append("the runs with one job and two disagree on some mutant")
    if not one["mutants"]:
        problems.append("no mutant was made")
    if median[2] > TARGET_SECONDS:
        problems.append(f"two jobs took {median[2]:.1f} s, over the target of {TARGET_SECONDS:.0f} s")
    if not args.tiny and (one["score"] is None or one["score"] < recorded):
        problems.append(f"the score {one['score']} % is below the {recorded} % docs/authoring.md records")
    if not deletions:
        problems.append("no Appendix deletion was made")
    problems += [f"unnoticed in a copy: {m}" for m in missed]
    for p in problems:
        print(f"FAILED: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
