"""Benchmark: batch adjudication against clingo itself and the obvious alternatives, in one run.

    python bench/batch_bench.py [--n 20000] [--rounds 3] [--million | --no-million]

On N seeded random cases (bench/cases.py: histories of the length real
requests carry; the first line says what the cases hold), prints side by side:

- the clingo floor: clingo alone grounding and solving the batch's own
  facts (every case's input atoms, made beforehand), one Control per chunk
  of the batch's chunk size, with the batch's chunk program; nothing read
  back, nothing validated or written;
- batch with 1 job, two ways: the engine in this process
  (``run_batch(..., time_limit=None)``: no worker process, no time limit),
  and ``kineret-asp batch IN -o OUT`` as a user runs it (a new process, the
  default 10 s time limit: cases decided in a worker process); batch with
  2 jobs (the command with ``--jobs 2``); batch without the decision cache;
- the Python API on the same cases: ``kineret_asp.batch_evaluate`` (the
  JSON lines, no time limit) and ``kineret_asp.evaluate_many`` (the decoded
  dicts), every result consumed, reading what a caller that triages reads
  (``decision``, ``authorization_months`` and ``route`` of each decision);
  and once more reading everything (``to_dict()`` of each);
- the ratio of each to the floor, with the target (the command, batch in
  this process, ``batch_evaluate`` and ``evaluate_many`` each >= 60 %);
  the floor and the batches run in turns, ``--rounds`` times, and the
  medians are shown (this machine is shared: compare within a run);
- a plain loop that makes one clingo Control per case (on a sample: it is
  slow) and the pure-Python evaluator (bench/pure_python.py);
- warm ``evaluate()`` latency (median, p99), cold ``kineret-asp evaluate``,
  peak memory of ``kineret-asp batch`` on 10,000 and 1,000,000 cases;
- whether every way gave the same decisions (and the batches the same bytes).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import cases as generator  # noqa: E402
import clingo  # noqa: E402
import pure_python  # noqa: E402

from kineret_asp import batch_evaluate, evaluate, evaluate_many  # noqa: E402
from kineret_asp.asp.symbols import SymbolDecoder, fact_text, to_symbol  # noqa: E402
from kineret_asp.batch.run import CACHE_ENTRIES, DEFAULT_CHUNK, run_batch  # noqa: E402
from kineret_asp.cases.load import load  # noqa: E402
from kineret_asp.cases.versions import Chooser  # noqa: E402
from kineret_asp.decisions.decision import build_decision, builder  # noqa: E402
from kineret_asp.engine.program import CASE_GUARD, compiled  # noqa: E402

TARGET = 0.6  # each many-case path (the command, batch in process, batch_evaluate, evaluate_many) / clingo floor


def summary_of(record: dict) -> tuple:
    if "error" in record:
        return ("error",)
    reasons = [r["id"] if isinstance(r, dict) else r for r in record["reasons"]]
    return (record["decision"], record["authorization_months"], tuple(record["unmet"]), tuple(reasons), record["route"])


def floor_chunks(lines: list[bytes], chooser: Chooser) -> list[list[clingo.Symbol]]:
    """The batch's facts, chunk by chunk: each case's input atoms numbered by its place in the chunk."""
    kb = chooser.default()
    out = []
    for start in range(0, len(lines), DEFAULT_CHUNK):
        symbols = []
        for k, line in enumerate(lines[start : start + DEFAULT_CHUNK]):
            number = clingo.Number(k)
            symbols.append(clingo.Function(CASE_GUARD, [number]))
            for atom in load(json.loads(line), kb, shown="bench").case.atoms():
                symbols.append(clingo.Function(atom[0], [number, *map(to_symbol, atom[1:])]))
        out.append(symbols)
    return out


def clingo_floor(chunks: list[list[clingo.Symbol]], program: str) -> tuple[float, float]:
    """Cases/s (wall, CPU) of clingo alone: per chunk a Control, the chunk program, the facts through the backend, ground, solve."""
    cases = 0
    start, cpu = time.perf_counter(), time.process_time()
    for symbols in chunks:
        control = clingo.Control(["--warn=none"])
        control.add("base", [], program)
        with control.backend() as backend:
            for symbol in symbols:
                backend.add_rule([backend.add_atom(symbol)])
        control.ground([("base", [])])
        if not control.solve().satisfiable:
            raise SystemExit("the floor's program has no answer")
        cases += sum(1 for s in symbols if s.name == CASE_GUARD)
    return cases / (time.perf_counter() - start), cases / (time.process_time() - cpu)


def in_process(data: bytes, chooser: Chooser, cache: int = CACHE_ENTRIES) -> tuple[float, float, bytes]:
    """Cases/s (wall, CPU) and output of run_batch in this process, one job, no time limit (no worker process).

    The decision builders start empty, as in a new process: what an earlier
    run remembered would flatter the later ones."""
    for kb in chooser.versions():
        builder(kb).forget()
    sink = io.BytesIO()
    start, cpu = time.perf_counter(), time.process_time()
    summary = run_batch(io.BytesIO(data), sink, chooser, "bench", time_limit=None, cache=cache)
    return summary.records / (time.perf_counter() - start), summary.records / (time.process_time() - cpu), sink.getvalue()


def triage(decision) -> tuple:
    """What a caller that sorts decisions reads of one: the verdict, the months, the route."""
    return (decision.decision, decision.authorization_months, decision.route)


def api_batch_evaluate(lines: list[bytes], chooser: Chooser, full: bool = False) -> tuple[float, float, list]:
    """Cases/s (wall, CPU) of ``batch_evaluate`` over the JSON lines, every record consumed, and what was read.

    Each record's decision is read as :func:`triage` reads it, or (``full``)
    whole, as ``to_dict()``. The decision builders start empty."""
    for kb in chooser.versions():
        builder(kb).forget()
    start, cpu = time.perf_counter(), time.process_time()
    read = [r.to_dict() if full else triage(r.decision) for r in batch_evaluate(lines, chooser, time_limit=None)]
    return len(read) / (time.perf_counter() - start), len(read) / (time.process_time() - cpu), read


def api_evaluate_many(cases: list[dict], chooser: Chooser, full: bool = False) -> tuple[float, float, list]:
    """Cases/s (wall, CPU) of ``evaluate_many`` over the decoded cases, every decision consumed, and what was read."""
    for kb in chooser.versions():
        builder(kb).forget()
    start, cpu = time.perf_counter(), time.process_time()
    read = [d.to_dict() if full else triage(d) for d in evaluate_many(cases, chooser)]
    return len(read) / (time.perf_counter() - start), len(read) / (time.process_time() - cpu), read


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def command(path: Path, out: Path, *extra: str) -> tuple[float, float, bytes]:
    """Cases/s (wall, CPU of its processes) and output of `kineret-asp batch` in a new process,
    as a user runs it (start-up included)."""
    start, cpu = time.perf_counter(), children_cpu()
    subprocess.run([sys.executable, "-m", "kineret_asp", "batch", str(path), "-o", str(out), "--quiet", *extra], cwd=ROOT, check=True)
    elapsed, used = time.perf_counter() - start, children_cpu() - cpu
    data = out.read_bytes()
    return data.count(b"\n") / elapsed, data.count(b"\n") / used, data


def per_case_control(lines: list[bytes], chooser: Chooser) -> list[tuple]:
    """The obvious way: a fresh Control per case, the KB files loaded each time."""
    kb = chooser.default()
    decode = SymbolDecoder()
    out = []
    for n, line in enumerate(lines, 1):
        case = load(json.loads(line), kb, shown=f"line {n}").case
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
        out.append(summary_of({"line": n, **build_decision(case, shown, kb).to_dict()}))
    return out


def peak_memory(path: Path) -> float:
    """Peak resident memory (MB) of `kineret-asp batch` on a file (its worker included), output to /dev/null."""
    code = (
        "import os, resource, subprocess, sys;"
        f"subprocess.run([sys.executable, '-m', 'kineret_asp', 'batch', {str(path)!r}, '-o', os.devnull, '--quiet'], check=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
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
    print(f"  {label:<50} {value:>12}  {target:<12} {verdict}")


def ok(flag: bool) -> str:
    return "met" if flag else "NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="Turns of floor and batches; medians are shown.")
    parser.add_argument("--loop-sample", type=int, default=300)
    parser.add_argument("--million", action=argparse.BooleanOptionalAction, default=True, help="Measure peak memory on 1,000,000 cases (takes minutes).")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True, help="Measure peak memory on 10,000 cases, and cold starts (--no-memory: the CI smoke run).")
    args = parser.parse_args()
    chooser = Chooser.of(ROOT / "kb")  # the tree, as the command reads it: the same provenance, the same bytes
    program = compiled(chooser.default()).chunk_text
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cases.jsonl"
        generator.write(args.n, str(path))
        data = path.read_bytes()
        lines = data.splitlines()
        dicts = [json.loads(line) for line in lines]
        print(f"{args.n:,} seeded random cases (bench/cases.py), chunks of {DEFAULT_CHUNK}, {args.rounds} rounds; {os.cpu_count()} cores, Python {sys.version.split()[0]}, clingo {clingo.__version__}")
        print(f"the cases hold {generator.history_stats(dicts)}")

        chunks = floor_chunks(lines, chooser)
        in_process(data[: data.index(b"\n", 2000) + 1], chooser)  # warm: the KB loaded and rewritten once
        rates: dict[str, list[float]] = {}
        outputs: dict[str, bytes] = {}

        def measured(key: str, result: tuple) -> None:
            """Keep a run's wall and CPU rates (``key`` and ``key_cpu``) and its output."""
            rates.setdefault(key, []).append(result[0])
            rates.setdefault(f"{key}_cpu", []).append(result[1])
            if len(result) > 2:
                outputs[key] = result[2]

        for _ in range(args.rounds):
            measured("floor", clingo_floor(chunks, program))
            measured("in_process", in_process(data, chooser))
            measured("command", command(path, Path(tmp) / "out1.jsonl"))
            measured("jobs2", command(path, Path(tmp) / "out2.jsonl", "--jobs", "2"))
            measured("no_cache", in_process(data, chooser, cache=0))
            measured("batch_evaluate", api_batch_evaluate(lines, chooser))
            measured("evaluate_many", api_evaluate_many(dicts, chooser))
            measured("batch_evaluate_full", api_batch_evaluate(lines, chooser, full=True))
            measured("evaluate_many_full", api_evaluate_many(dicts, chooser, full=True))
        med = {k: statistics.median(v) for k, v in rates.items()}

        start = time.perf_counter()
        pure = [summary_of(json.loads(r)) for r in pure_python.run_lines(lines)]
        pure_rate = len(lines) / (time.perf_counter() - start)

        sample = lines[: args.loop_sample]
        start = time.perf_counter()
        loop = per_case_control(sample, chooser)
        loop_rate = len(sample) / (time.perf_counter() - start)

        sample_cases = [json.loads(line) for line in lines[:2000]]
        evaluate(sample_cases[0], chooser.default())
        latencies, warm = [], []
        for case in sample_cases:
            start = time.perf_counter()
            d = evaluate(case, chooser.default())
            latencies.append(time.perf_counter() - start)
            warm.append(summary_of(d.to_dict()))
        latencies.sort()
        median_ms = latencies[len(latencies) // 2] * 1e3
        p99_ms = latencies[int(0.99 * (len(latencies) - 1))] * 1e3
        cold_first, cold = cold_cli() if args.memory else (float("nan"), float("nan"))
        mem_10k = mem_1m = None
        if args.memory:
            small = Path(tmp) / "10k.jsonl"
            generator.write(10_000, str(small))
            mem_10k = peak_memory(small)
        if args.million:
            big = Path(tmp) / "1m.jsonl"
            generator.write(1_000_000, str(big))
            start = time.perf_counter()
            mem_1m = peak_memory(big)
            million_rate = 1_000_000 / (time.perf_counter() - start)

    records = [json.loads(line) for line in outputs["in_process"].splitlines()]
    batch = [summary_of(r) for r in records]
    same_bytes = len({outputs[k] for k in ("in_process", "command", "jobs2", "no_cache")}) == 1
    # the API's decisions, read whole, are the batch's records (as dicts); read for triage, the same verdicts
    triaged = [(r["decision"], r["authorization_months"], r["route"]) for r in records]
    as_json = lambda items: [json.loads(json.dumps(x)) for x in items]  # noqa: E731 - tuples read as the JSON lists they are written as
    api_same = (
        as_json(outputs["batch_evaluate_full"]) == records
        and as_json(outputs["evaluate_many_full"]) == [{k: v for k, v in r.items() if k != "line"} for r in records]
        and outputs["batch_evaluate"] == triaged
        and outputs["evaluate_many"] == triaged
    )
    agree = same_bytes and api_same and batch == pure and loop == batch[: len(loop)] and warm == batch[: len(warm)]

    print()
    print("throughput (cases/s, median of the rounds)                   wall      per CPU second")
    both = lambda key: f"{med[key]:>12,.0f}  {med[key + '_cpu']:>12,.0f}"  # noqa: E731
    print(f"  {'clingo floor (ground and solve only)':<50} {both('floor')}")
    print(f"  {'batch, 1 job, engine in this process':<50} {both('in_process')}")
    print(f"  {'batch, 1 job, `kineret-asp batch` (worker process)':<50} {both('command')}")
    print(f"  {'batch, 2 jobs, `kineret-asp batch --jobs 2`':<50} {med['jobs2']:>12,.0f}")
    print(f"  {'batch, 1 job, in this process, no decision cache':<50} {both('no_cache')}")
    print(f"  {'batch_evaluate(lines), reading each verdict':<50} {both('batch_evaluate')}")
    print(f"  {'evaluate_many(dicts), reading each verdict':<50} {both('evaluate_many')}")
    print(f"  {'batch_evaluate(lines), to_dict() of each':<50} {both('batch_evaluate_full')}")
    print(f"  {'evaluate_many(dicts), to_dict() of each':<50} {both('evaluate_many_full')}")
    row(f"per-case Control loop (sample of {len(sample)})", f"{loop_rate:,.0f}")
    row("pure-Python evaluator", f"{pure_rate:,.0f}")
    print("ratios (wall; per CPU second in brackets: this machine is shared, CPU time is steadier)")
    for key, label in (
        ("in_process", "batch 1 job, in this process"),
        ("command", "batch 1 job, `kineret-asp batch`"),
        ("batch_evaluate", "batch_evaluate, verdicts"),
        ("evaluate_many", "evaluate_many, verdicts"),
    ):
        ratio, cpu_ratio = med[key] / med["floor"], med[key + "_cpu"] / med["floor_cpu"]
        row(
            f"{label} / clingo floor",
            f"{ratio:.1%} ({cpu_ratio:.1%})",
            f">= {TARGET:.0%}",
            ok(ratio >= TARGET) + ("" if (ratio >= TARGET) == (cpu_ratio >= TARGET) else f" (CPU: {ok(cpu_ratio >= TARGET)})"),
        )
    for key, label in (("batch_evaluate_full", "batch_evaluate, to_dict()"), ("evaluate_many_full", "evaluate_many, to_dict()")):
        row(f"{label} / clingo floor", f"{med[key] / med['floor']:.1%} ({med[key + '_cpu'] / med['floor_cpu']:.1%})")
    row("batch 1 job, no cache / clingo floor", f"{med['no_cache'] / med['floor']:.0%} ({med['no_cache_cpu'] / med['floor_cpu']:.0%})")
    row("batch 2 jobs / batch 1 job (commands)", f"{med['jobs2'] / med['command']:.2f}x")
    row("batch 1 job (this process) / per-case loop", f"{med['in_process'] / loop_rate:.0f}x")
    row("pure Python / batch 1 job (this process)", f"{pure_rate / med['in_process']:.1f}x")
    print("latency and memory")
    row("warm evaluate() median", f"{median_ms:.2f} ms", "< 2 ms", ok(median_ms < 2))
    row("warm evaluate() p99", f"{p99_ms:.2f} ms")
    row("cold `kineret-asp evaluate`, one case", f"{cold:.2f} s", "< 0.5 s", ok(cold < 0.5))
    row("  (very first run, empty program cache)", f"{cold_first:.2f} s", "< 0.5 s", ok(cold_first < 0.5))
    if mem_10k is not None:
        row("peak memory, `kineret-asp batch` of 10,000", f"{mem_10k:.0f} MB")
    if mem_1m is not None and mem_10k is not None:
        row("peak memory, `kineret-asp batch` of 1,000,000", f"{mem_1m:.0f} MB", "< 2x 10,000", ok(mem_1m < 2 * mem_10k))
        row("  (throughput of that run, 1 job)", f"{million_rate:,.0f}")
    print("agreement")
    row("the batches wrote the same bytes (1/2 jobs, cache on/off)", "yes" if same_bytes else "NO", "", ok(same_bytes))
    row("the API's decisions are the batch's records", "yes" if api_same else "NO", "", ok(api_same))
    row("same decisions: batch, API, loop, evaluate(), pure Python", "yes" if agree else "NO", "", ok(agree))
    return 0 if agree else 1  # the figures are printed; the agreement is the bench's own check


if __name__ == "__main__":
    sys.exit(main())
