"""Benchmark: batch adjudication against the obvious alternatives, in one run.

    python bench/batch_bench.py [--n 20000] [--million | --no-million]

Prints side by side, on N seeded random cases (bench/cases.py):
- cases/s of a plain loop that creates one clingo Control per case (on a
  sample: it is slow), of `batch` with 1 job and 2 jobs (and 1 job without
  the decision cache), and of the pure-Python evaluator (bench/pure_python.py);
- the ratios between them;
- peak memory of `kineret-asp batch` on 10,000 and 1,000,000 cases;
- warm evaluate() latency (median, p99) and cold `kineret-asp evaluate` time;
- a check that every engine gave the same decisions on every case.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import clingo  # noqa: E402

import cases as generator  # noqa: E402
import pure_python  # noqa: E402
from kineret_asp import evaluate, load_kb  # noqa: E402
from kineret_asp.batch import run_batch  # noqa: E402
from kineret_asp.case import parse_case  # noqa: E402
from kineret_asp.decision import build_decision  # noqa: E402
from kineret_asp.terms import SymbolDecoder, fact_text  # noqa: E402

SUMMARY = ("decision", "authorization_months", "unmet", "reasons", "route")


def summary_of(record: dict) -> tuple:
    if "error" in record:
        return ("error",)
    reasons = [r["id"] if isinstance(r, dict) else r for r in record["reasons"]]
    return (record["decision"], record["authorization_months"], tuple(record["unmet"]), tuple(reasons), record["route"])


def per_case_control(lines: list[bytes], kb) -> list[tuple]:
    """The obvious way: a fresh Control per case, the KB files loaded each time."""
    decode = SymbolDecoder()
    out = []
    for n, line in enumerate(lines, 1):
        case = parse_case(json.loads(line), f"line {n}", kb)
        control = clingo.Control(["--warn=none"])
        for f in kb.files:
            control.load(str(f))
        control.add("base", [], "\n".join(fact_text(a) for a in case.atoms()))
        control.ground([("base", [])])
        shown: dict = {}
        with control.solve(yield_=True) as handle:
            for model in handle:
                for s in model.symbols(shown=True):
                    atom = decode(s)
                    atom = atom if isinstance(atom, tuple) else (str(atom),)
                    shown.setdefault(atom[0], []).append(atom[1:])
        record = {"line": n, **build_decision(case, shown, kb.vocabulary).to_dict()}
        out.append(summary_of(record))
    return out


def run_in_process(path: Path, kb, jobs: int, cache: int) -> tuple[float, list[tuple]]:
    sink = io.BytesIO()
    with open(path, "rb") as source:
        start = time.perf_counter()
        summary = run_batch(source, sink, kb, str(path), jobs=jobs, cache=cache)
        elapsed = time.perf_counter() - start
    records = [summary_of(json.loads(line)) for line in sink.getvalue().splitlines()]
    assert summary.records == len(records)
    return elapsed, records


def peak_memory(path: Path) -> float:
    """Peak resident memory (MB) of `kineret-asp batch` on a file, output to /dev/null."""
    code = (
        "import resource, subprocess, sys;"
        f"p = subprocess.run([sys.executable, '-m', 'kineret_asp', 'batch', {str(path)!r}, '-o', os.devnull, '--quiet']);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    proc = subprocess.run([sys.executable, "-c", "import os;" + code], cwd=ROOT, capture_output=True, text=True, check=True)
    return int(proc.stdout.strip()) / 1024


def cold_cli(repeat: int = 5) -> tuple[float, float]:
    """Seconds for one `kineret-asp evaluate` in a new process: the very first run
    (empty program cache), and the median of later runs (cache filled)."""
    case = ROOT / "facts" / "ra" / "approved_employer_group.json"
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "KINERET_ASP_CACHE": cache}
        times = []
        for _ in range(repeat + 1):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "kineret_asp", "evaluate", str(case)], cwd=ROOT, capture_output=True, check=True, env=env)
            times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:])


def row(label: str, value: str, target: str = "", verdict: str = "") -> None:
    print(f"  {label:<44} {value:>14}  {target:<18} {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--loop-sample", type=int, default=300)
    parser.add_argument("--million", action=argparse.BooleanOptionalAction, default=True, help="Measure peak memory on 1,000,000 cases (takes minutes).")
    args = parser.parse_args()
    kb = load_kb(ROOT / "kb")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "cases.jsonl"
        generator.write(args.n, str(data))
        lines = data.read_bytes().splitlines()
        print(f"{args.n} seeded random cases (bench/cases.py), machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, clingo {clingo.__version__}")

        start = time.perf_counter()
        pure = [summary_of(json.loads(r)) for r in pure_python.run_lines(lines)]
        pure_rate = len(lines) / (time.perf_counter() - start)

        sample = lines[: args.loop_sample]
        start = time.perf_counter()
        loop = per_case_control(sample, kb)
        loop_rate = len(sample) / (time.perf_counter() - start)

        t1, batch1 = run_in_process(data, kb, jobs=1, cache=20_000)
        t1n, batch1n = run_in_process(data, kb, jobs=1, cache=0)
        t2, batch2 = run_in_process(data, kb, jobs=2, cache=20_000)
        rate1, rate1n, rate2 = len(lines) / t1, len(lines) / t1n, len(lines) / t2

        sample_cases = [json.loads(line) for line in lines[:2000]]
        evaluate(sample_cases[0], kb)
        latencies, warm = [], []
        for case in sample_cases:
            start = time.perf_counter()
            d = evaluate(case, kb)
            latencies.append(time.perf_counter() - start)
            warm.append(summary_of({"line": 0, **d.to_dict()}))
        latencies.sort()
        median_ms = latencies[len(latencies) // 2] * 1e3
        p99_ms = latencies[int(0.99 * (len(latencies) - 1))] * 1e3
        cold_first, cold = cold_cli()

        mem_10k = peak_memory(data) if args.n == 10_000 else None
        if mem_10k is None:
            small = Path(tmp) / "10k.jsonl"
            generator.write(10_000, str(small))
            mem_10k = peak_memory(small)
        mem_1m = None
        if args.million:
            big = Path(tmp) / "1m.jsonl"
            generator.write(1_000_000, str(big))
            start = time.perf_counter()
            mem_1m = peak_memory(big)
            million_rate = 1_000_000 / (time.perf_counter() - start)

    agree = (
        batch1 == pure == batch1n == batch2
        and loop == batch1[: len(loop)]
        and warm == batch1[: len(warm)]
    )

    def ok(flag: bool) -> str:
        return "met" if flag else "NOT met"

    print()
    print("throughput (cases/s)")
    row("per-case Control loop (sample)", f"{loop_rate:,.0f}", f"({len(sample)} cases)")
    row("batch, 1 job", f"{rate1:,.0f}", ">= 10,000", ok(rate1 >= 10_000))
    row("batch, 1 job, no decision cache", f"{rate1n:,.0f}")
    row("batch, 2 jobs", f"{rate2:,.0f}")
    row("pure-Python evaluator", f"{pure_rate:,.0f}")
    print("ratios")
    row("batch 1 job / per-case loop", f"{rate1 / loop_rate:.1f}x", ">= 20x", ok(rate1 / loop_rate >= 20))
    row("batch 1 job, no cache / per-case loop", f"{rate1n / loop_rate:.1f}x")
    row("batch 2 jobs / batch 1 job", f"{rate2 / rate1:.2f}x")
    row("pure Python / batch 1 job", f"{pure_rate / rate1:.1f}x", "<= 10x", ok(pure_rate / rate1 <= 10))
    row("pure Python / batch 1 job, no cache", f"{pure_rate / rate1n:.1f}x")
    print("latency and memory")
    row("warm evaluate() median", f"{median_ms:.2f} ms", "< 2 ms", ok(median_ms < 2))
    row("warm evaluate() p99", f"{p99_ms:.2f} ms")
    row("cold `kineret-asp evaluate`, one case", f"{cold:.2f} s", "< 0.5 s", ok(cold < 0.5))
    row("  (very first run, empty program cache)", f"{cold_first:.2f} s", "< 0.5 s", ok(cold_first < 0.5))
    row("peak memory, batch of 10,000", f"{mem_10k:.0f} MB")
    if mem_1m is not None:
        row("peak memory, batch of 1,000,000", f"{mem_1m:.0f} MB", "< 300 MB", ok(mem_1m < 300))
        row("  (throughput of that run, 1 job)", f"{million_rate:,.0f}")
    print("agreement")
    row("same decisions: loop, batch 1/2 jobs, cache on/off, evaluate(), pure Python", "yes" if agree else "NO", "", ok(agree))


if __name__ == "__main__":
    main()
