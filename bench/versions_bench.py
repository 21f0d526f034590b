"""Benchmark: choosing the version by date of service costs nothing measurable.

    python bench/versions_bench.py [--n 20000] [--repeat 3]

Builds, in a temporary copy of the KB, a second version of IP0243 with
`kineret-asp new-version` (effective 2025-01-01; initial approvals of 6
months, Enbrel dropped from the Employer Group table), then runs `batch` in
process on the same N seeded random cases (bench/cases.py):

- on the packaged one-version KB, the cases without a date, and the same
  cases each dated at random from 2024-06-01 to 2025-12-31;
- on the two-version tree, the same dated cases: each is decided by the
  version in force on its date (each chunk grouped by version, one
  grounding per version and chunk).

Prints each side by side (cases per CPU second of the process, the median
of --repeat back-to-back rounds), with the decision cache on and off, and
the median ratio of two versions to one on the same input within a round
(target: within 10 %): a shared machine's load drifts, a round's runs see
the same load. Also checks that every record names the version its date
selects.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import cases as generator  # noqa: E402
import clingo  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from kineret_asp.batch.run import run_batch  # noqa: E402
from kineret_asp.cli import main as cli  # noqa: E402

OLD, NEW = "2024-06-01", "2025-01-01"


def two_versions(dest: Path) -> Path:
    """A copy of the KB with a second version of IP0243 made by new-version and edited."""
    shutil.copytree(ROOT / "kb", dest)
    result = CliRunner().invoke(cli, ["new-version", "IP0243", "--effective", NEW, "--kb", str(dest)])
    assert result.exit_code == 0, result.output
    new = dest / "policies" / "IP0243" / NEW
    path = new / "reauthorization.lp"
    path.write_text(path.read_text().replace("authorization_duration(initial, 12).", "authorization_duration(initial, 6)."))
    path = new / "tables" / "non_preferred_products.lp"
    path.write_text("\n".join(line for line in path.read_text().splitlines() if '"3.C.D", enbrel,' not in line or "employer_group" not in line) + "\n")
    return dest


def dated_lines(n: int, seed: int) -> tuple[list[bytes], list[bytes], list[str]]:
    """The same cases undated and dated at random over 2024-06-01 .. 2025-12-31; and each one's version."""
    rng = random.Random(seed)
    days = 366 + 365 - 152  # 2024-06-01 .. 2025-12-31
    plain, dated, versions = [], [], []
    import datetime

    first = datetime.date.fromisoformat(OLD)
    for case in generator.generate(n, seed):
        plain.append(json.dumps(case).encode())
        day = (first + datetime.timedelta(days=rng.randrange(days))).isoformat()
        dated.append(json.dumps({**case, "date_of_service": day}).encode())
        versions.append(OLD if day < NEW else NEW)
    return plain, dated, versions


def rate(lines: list[bytes], kb: str, cache: int) -> tuple[float, list[dict]]:
    """Cases per CPU second of this process (steadier than wall time on a shared machine)."""
    data = b"".join(line + b"\n" for line in lines)
    sink = io.BytesIO()
    start = time.process_time()
    run_batch(io.BytesIO(data), sink, kb, "<bench>", cache=cache, time_limit=None)  # in this process: its CPU time is the cost
    return len(lines) / (time.process_time() - start), [json.loads(line) for line in sink.getvalue().splitlines()]


def paired(runs: dict[str, tuple[list[bytes], str]], repeat: int, cache: int) -> tuple[dict[str, float], dict[str, float], dict[str, list[dict]]]:
    """Median throughput of each run, and the median ratio of each run to the first over back-to-back rounds.

    Each round runs every variant once, one after the other, so a ratio
    compares runs made under the same load; the median of the rounds
    discounts the rounds another process disturbed.
    """
    rates: dict[str, list[float]] = {name: [] for name in runs}
    ratios: dict[str, list[float]] = {name: [] for name in runs}
    records: dict[str, list[dict]] = {}
    first = next(iter(runs))
    for _ in range(repeat):
        got = {}
        for name, (lines, kb) in runs.items():
            got[name], records[name] = rate(lines, kb, cache)
            rates[name].append(got[name])
        for name in runs:
            ratios[name].append(got[name] / got[first])
    return ({k: statistics.median(v) for k, v in rates.items()}, {k: statistics.median(v) for k, v in ratios.items()}, records)


def row(label: str, value: str, target: str = "", verdict: str = "") -> None:
    print(f"  {label:<46} {value:>12}  {target:<14} {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20250101)
    args = parser.parse_args()
    print(f"{args.n} seeded random cases (bench/cases.py); machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, clingo {clingo.__version__}")
    plain, dated, versions = dated_lines(args.n, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tree = str(two_versions(Path(tmp) / "kb"))
        single = str(ROOT / "kb")
        runs = {"single": (dated, single), "mixed": (dated, tree), "undated": (plain, single)}
        for lines, kb in runs.values():  # warm every engine before timing
            rate(lines[:2000], kb, 20_000)
        warmed = [r.get("provenance", {}).get("version") for r in rate(dated[:2000], tree, 0)[1]]
        results = {cache: paired(runs, args.repeat, cache) for cache in (20_000, 0)}
    chosen = [r.get("provenance", {}).get("version") for r in results[0][2]["mixed"]]
    print()
    print(f"batch throughput, 1 job (cases per CPU second, median of {args.repeat} back-to-back rounds)")
    for cache, label in ((20_000, "decision cache on"), (0, "decision cache off")):
        best, ratio, _ = results[cache]
        print(f" {label}")
        row("one version, cases without a date", f"{best['undated']:,.0f}")
        row("one version, the same cases dated", f"{best['single']:,.0f}")
        row("two versions, the same cases dated", f"{best['mixed']:,.0f}")
        verdict = "met" if ratio["mixed"] >= 0.9 else "NOT met"
        row("  two versions / one version (same input)", f"{ratio['mixed']:.2f}x", ">= 0.90x", verdict)
        row("  one version dated / undated", f"{1 / ratio['undated']:.2f}x")
    old_share = versions.count(OLD) / len(versions)
    row("cases decided by 2024-06-01 / 2025-01-01", f"{old_share:.0%} / {1 - old_share:.0%}")
    same = chosen == versions and warmed == versions[:2000]
    row("every record names the version its date selects", "yes" if same else "NO", "", "met" if same else "NOT met")
    return 0 if same else 1  # the bench's own check; the figures are printed, not judged


if __name__ == "__main__":
    sys.exit(main())
