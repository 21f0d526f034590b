"""Benchmark: what the limits, caps and fault handling cost and what they survive.

    python bench/reliability_bench.py [--big 2000] [--repeat 5]

Prints, side by side: how long each runaway (a KB that grounds without end,
one case that does) takes to be stopped and with which exit code; capped
reads; batch memory on cases of 1,000 entries; resume after kill -9 and
after a full disk; exit codes of I/O failures; and the cold-start figures
with and without the disk cache of derived programs (KINERET_ASP_CACHE=off),
and warm evaluate() with and without a time limit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = Path("policies") / "IP0243" / "2024-06-01"
CASE = ROOT / "facts" / "ra" / "approved_employer_group.json"
RUNAWAY_KB = "% § bench: grounds without end\np(X) :- X = 1..100000000.\n"
RUNAWAY_CASE = "% § bench: grounds without end for months 1200\nrunaway(X) :- case_history_months(_, 1200), X = 1..100000000.\nis_other_policy :- runaway(0).\n"


def cli(*args: str, env: dict | None = None, **kw) -> tuple[float, subprocess.CompletedProcess]:
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kineret_asp", *args], cwd=ROOT, capture_output=True, env=env, **kw)
    return time.perf_counter() - began, proc


def kb_with(tmp: Path, name: str, rule: str) -> Path:
    dest = tmp / name
    shutil.copytree(ROOT / "kb", dest, ignore=shutil.ignore_patterns("cases"))
    (dest / VERSION / "zz_bench.lp").write_text(rule)
    return dest


def ra(n: int, months: int) -> dict:
    return {
        "id": f"c{n}",
        "indication": "rheumatoid_arthritis",
        "plan": "employer_group",
        "prescriber_specialties": ["rheumatology"],
        "medication_history": [{"drug": "methotrexate", "outcome": "failure", "months": months}, {"drug": "humira", "outcome": "failure"}, {"drug": "enbrel", "outcome": "failure"}],
    }


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<58} {value:>12}  {note}")


def peak_mb(args: list[str]) -> tuple[float, float, int]:
    code = (
        "import resource, subprocess, sys, time\n"
        f"t = time.perf_counter(); p = subprocess.run([sys.executable, '-m', 'kineret_asp', *{args!r}])\n"
        "print(p.returncode, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return int(out[2]) / 1024, float(out[1]), int(out[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big", type=int, default=2000, help="cases of 1,000 entries for the memory figure")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--lines", type=int, default=20000, help="cases of the resume runs")
    parser.add_argument("--runaway-lines", type=int, default=1000, help="cases of the batch with one runaway case")
    parser.add_argument("--cold", action=argparse.BooleanOptionalAction, default=True, help="time cold starts and warm evaluate() (--no-cold: the CI smoke run)")
    args = parser.parse_args()
    failed: list[str] = []

    def check(label: str, holds: bool) -> None:
        if not holds:
            failed.append(label)

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        env = dict(os.environ, KINERET_ASP_CACHE=str(tmp / "cache"))
        runaway = kb_with(tmp, "runaway", RUNAWAY_KB)
        one_case = kb_with(tmp, "one_case", RUNAWAY_CASE)

        print("limits (a runaway is stopped; exit code 3 for one-case commands)")
        for command in (["evaluate", str(CASE)], ["missing", str(CASE)], ["verify"]):
            seconds, proc = cli(*command, "--kb", str(runaway), "--time-limit", "1", env=env)
            row(f"{command[0]}, KB grounds without end, --time-limit 1", f"{seconds:.2f} s", f"exit {proc.returncode}")
            check(f"{command[0]} stopped at its time limit", proc.returncode == 3)
        seconds, proc = cli("evaluate", str(CASE), "--kb", str(runaway), "--memory-limit", "300", "--time-limit", "600", env=env)
        row("evaluate, KB grounds without end, --memory-limit 300", f"{seconds:.2f} s", f"exit {proc.returncode}")
        check("evaluate stopped at its memory limit", proc.returncode == 3)
        src = tmp / "runaway.jsonl"
        src.write_text("".join(json.dumps(ra(n, 1200 if n == args.runaway_lines // 2 else n % 40)) + "\n" for n in range(args.runaway_lines)))
        for jobs in ("1", "2"):
            seconds, proc = cli("batch", str(src), "--kb", str(one_case), "--time-limit", "1", "--jobs", jobs, "-o", str(tmp / "r.jsonl"), env=env)
            errors = sum('"error"' in line for line in (tmp / "r.jsonl").read_text().splitlines())
            row(
                f"batch of {args.runaway_lines:,}, one case grounds without end, --jobs {jobs}",
                f"{seconds:.2f} s",
                f"exit {proc.returncode}, {errors} error record(s), {args.runaway_lines - errors:,} decided",
            )
            check(f"batch --jobs {jobs}: the runaway case alone is an error record", errors == 1 and proc.returncode == 1)

        print("capped reads")
        seconds, proc = cli("evaluate", "/dev/zero", env=env)
        row("evaluate /dev/zero", f"{seconds:.2f} s", f"exit {proc.returncode}")
        check("evaluate /dev/zero is refused", proc.returncode == 2)
        began = time.perf_counter()
        proc = subprocess.run(f"head -c 200000000 /dev/zero | {sys.executable} -m kineret_asp evaluate -", shell=True, cwd=ROOT, capture_output=True, env=env)
        row("evaluate - with 200 MB on stdin", f"{time.perf_counter() - began:.2f} s", f"exit {proc.returncode}")
        big = tmp / "big.jsonl"
        with open(big, "w") as f:
            for n in range(args.big):
                history = [{"drug": "methotrexate", "outcome": "failure", "months": (n + k) % 40} for k in range(1000)]
                f.write(json.dumps({"id": f"b{n}", "indication": "rheumatoid_arthritis", "plan": "employer_group", "medication_history": history}) + "\n")
        peak, seconds, code = peak_mb(["batch", str(big), "-o", os.devnull, "--quiet"])
        row(f"batch of {args.big:,} cases of 1,000 entries ({big.stat().st_size / 1e6:.0f} MB): peak memory", f"{peak:.0f} MB", f"{seconds:.0f} s, exit {code}")

        print("faults survived")
        src = tmp / "in.jsonl"
        src.write_text("".join(json.dumps(ra(n, n % 40)) + "\n" for n in range(args.lines)))
        full = tmp / "full.jsonl"
        cli("batch", str(src), "-o", str(full), "--quiet", "--chunk-size", "200", env=env)
        out = tmp / "out.jsonl"
        for share in (0.2, 0.6):
            proc = subprocess.Popen([sys.executable, "-m", "kineret_asp", "batch", str(src), "-o", str(out), "--quiet", "--resume", "--chunk-size", "200", "--jobs", "2"], cwd=ROOT, env=env)
            while proc.poll() is None and (not out.exists() or out.stat().st_size < share * full.stat().st_size):
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        cli("batch", str(src), "-o", str(out), "--quiet", "--resume", "--chunk-size", "200", env=env)
        row("resume after two kill -9 mid-write (--jobs 2): byte-identical", "yes" if out.read_bytes() == full.read_bytes() else "NO")
        check("resume after kill -9 is byte-identical", out.read_bytes() == full.read_bytes())
        out.unlink()
        size = full.stat().st_size // 3

        def fill_at_a_third() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

        _, first = cli("batch", str(src), "-o", str(out), "--quiet", "--chunk-size", "200", env=env, preexec_fn=fill_at_a_third)
        written = out.read_bytes()
        partial = not written or written.endswith(b"\n")  # cut back to its last complete record (none, when the first chunk did not fit)
        cli("batch", str(src), "-o", str(out), "--quiet", "--resume", "--chunk-size", "200", env=env)
        row("resume after a full disk: byte-identical", "yes" if out.read_bytes() == full.read_bytes() else "NO", f"exit {first.returncode}, no partial record: {'yes' if partial else 'NO'}")
        check("resume after a full disk is byte-identical, with no partial record", out.read_bytes() == full.read_bytes() and partial)
        with open("/dev/full", "wb") as sink:
            proc = subprocess.run([sys.executable, "-m", "kineret_asp", "evaluate", str(CASE)], cwd=ROOT, stdout=sink, stderr=subprocess.PIPE, env=env)
        row("evaluate > /dev/full", f"exit {proc.returncode}", f"{proc.stderr.decode().count(chr(10))} line on stderr")
        check("evaluate > /dev/full is one line and exit 1", proc.returncode == 1 and proc.stderr.decode().count(chr(10)) == 1)
        proc = subprocess.run(f"{sys.executable} -m kineret_asp batch {src} --quiet | head -1", shell=True, cwd=ROOT, capture_output=True, env=env)
        row("batch | head -1", "traceback" if b"Traceback" in proc.stderr else "clean", f"{len(proc.stderr)} bytes on stderr")
        check("batch | head -1 prints no traceback", b"Traceback" not in proc.stderr)
        if not args.cold:
            return report(failed)

        print(f"cold start, one `kineret-asp evaluate` in a new process (median of {args.repeat})")
        cold_env = dict(os.environ, KINERET_ASP_CACHE=str(tmp / "cold"))
        first, _ = cli("evaluate", str(CASE), env=cold_env)
        warm = statistics.median(cli("evaluate", str(CASE), env=cold_env)[0] for _ in range(args.repeat))
        off = statistics.median(cli("evaluate", str(CASE), env=dict(os.environ, KINERET_ASP_CACHE="off"))[0] for _ in range(args.repeat))
        row("first run, empty cache", f"{first:.2f} s")
        row("cache filled", f"{warm:.2f} s")
        row("KINERET_ASP_CACHE=off", f"{off:.2f} s", f"{off / warm:.1f}x the cached start")
        for command in (["check"], ["test"], ["verify"]):
            with_cache = statistics.median(cli(*command, env=cold_env)[0] for _ in range(3))
            without = statistics.median(cli(*command, env=dict(os.environ, KINERET_ASP_CACHE="off"))[0] for _ in range(3))
            row(f"{command[0]}: cache filled / off", f"{with_cache:.2f} / {without:.2f} s")

        print("warm evaluate() in one process")
        sys.path.insert(0, str(ROOT))
        os.environ["KINERET_ASP_CACHE"] = str(tmp / "cold")
        from kineret_asp import evaluate

        evaluate(CASE)
        fast = []
        for _ in range(300):
            began = time.perf_counter()
            evaluate(CASE)
            fast.append(time.perf_counter() - began)
        limited = []
        for _ in range(30):
            began = time.perf_counter()
            evaluate(CASE, time_limit=10)
            limited.append(time.perf_counter() - began)
        row("evaluate(case) median, no limit (in process)", f"{statistics.median(fast) * 1000:.2f} ms")
        row("evaluate(case, time_limit=10) median (a worker process)", f"{statistics.median(limited) * 1000:.1f} ms")
    return report(failed)


def report(failed: list[str]) -> int:
    """The bench's own checks: exit 1 when one failed (the figures are printed, not judged)."""
    print("checks: " + ("all hold" if not failed else "FAILED: " + "; ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
