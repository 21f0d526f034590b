"""Load test of the CDS Hooks service with the decision log on PostgreSQL, beside the same load with no log.

    python bench/hooks_bench.py [--requests 1200] [--concurrency 32] [--seconds 60] [--workers 2] [--sqlite]

Starts a private PostgreSQL server (tests/pgtemp.py: a temporary folder,
127.0.0.1, a free port), then ``kineret-asp serve`` as a real process,
once with ``--db postgresql://...`` and once with ``--no-log`` (and with
``--sqlite`` once more on a SQLite file), each on a free local port, and
sends the same order-sign requests (the example Bundles as CDS Hooks calls,
each with its own hookInstance) from ``--concurrency`` clients with
keep-alive connections, for at most ``--seconds`` per run. Prints, side by
side, requests answered, throughput and p50/p99 latency, and the ratio of
each run's to the run with no log.

Checks, exit status 1 when one fails: every request answered 200 with one
coverage-information system action; with a log, every decision logged once
(the log holds exactly one record per hookInstance sent, and each answer's
coverage-assertion-id is that record's id, each prior-authorization number
unique). Traffic goes to 127.0.0.1 only; every run stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from load_bench import Connection, free_port, pct  # noqa: E402

from tests.hook_requests import EXAMPLES, hook_request  # noqa: E402 (the tests' requests: the same Bundles, the same prefetch)

EXT = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"


def build(n: int) -> list[tuple[str, bytes]]:
    folder = ROOT / "kb" / "policies" / "IP0243" / "2024-06-01" / "cases" / "fhir"
    templates = [hook_request(json.loads((folder / f"{name}.json").read_text())) for name in EXAMPLES]
    out = []
    for i in range(n):
        request = templates[i % len(templates)]
        instance = str(uuid.uuid4())
        out.append((instance, json.dumps({**request, "hookInstance": instance}).encode()))
    return out


def start(args: list[str], env: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kineret_asp", "serve", "--port", str(port), *args], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    began = time.monotonic()
    while True:
        try:
            c = Connection(port)
            status, _ = c.request("GET", "/health", b"")
            c.close()
            if status == 200:
                return proc, port
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() - began > 120:
            proc.kill()
            raise SystemExit(f"the server ({' '.join(args)}) did not start")
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load(port: int, requests: list[tuple[str, bytes]], concurrency: int, seconds: float) -> tuple[dict, float]:
    """Each request's (status, body, ms), sent by ``concurrency`` clients until done or ``seconds`` pass."""
    work: "queue.Queue[int]" = queue.Queue()
    for i in range(len(requests)):
        work.put(i)
    results: dict = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        connection = Connection(port)
        try:
            while time.monotonic() < stop_at:
                try:
                    i = work.get_nowait()
                except queue.Empty:
                    return
                t = time.perf_counter()
                try:
                    status, body = connection.request("POST", "/cds-services/ip0243-order-sign", requests[i][1])
                except (OSError, ValueError, IndexError):
                    status, body = 0, b""
                    connection.close()
                    connection = Connection(port)
                with lock:
                    results[i] = (status, body, (time.perf_counter() - t) * 1000)
        finally:
            connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - began


def assertion(body: bytes) -> tuple[str, str | None]:
    answer = json.loads(body)
    (action,) = answer["systemActions"]
    ext = next(e for e in action["resource"]["extension"] if e["url"] == EXT)
    values = {s["url"]: s.get("valueString") for s in ext["extension"]}
    return values["coverage-assertion-id"], values.get("satisfied-pa-id")


def logged(url: str, instances: set[str]) -> dict[str, list[tuple[str, str | None]]]:
    """The log's records of these hookInstances: instance -> [(record id, prior-authorization number)]."""
    from kineret_asp.decision_log import DecisionLog

    out: dict = {}
    for r in DecisionLog(url).each("cds:order-sign"):
        if r.request_id in instances:
            out.setdefault(r.request_id, []).append((r.id, r.pa_number))
    return out


def run(name: str, options: list[str], requests: list, args: argparse.Namespace, url: str | None, env: dict) -> dict:
    proc, port = start(["--time-limit", "30", "--workers", str(args.workers), *options], env)
    try:
        warm = build(args.warmup)
        load(port, warm, min(args.concurrency, 8), args.seconds)
        results, seconds = load(port, requests, args.concurrency, args.seconds)
    finally:
        stop(proc)
    ok = [i for i, (status, body, _) in results.items() if status == 200 and len(json.loads(body).get("systemActions", [])) == 1]
    ms = [results[i][2] for i in ok]
    row = {
        "run": name,
        "sent": len(requests),
        "answered": len(results),
        "ok": len(ok),
        "seconds": seconds,
        "rate": len(ok) / seconds if seconds else 0.0,
        "p50": pct(ms, 50) if ms else float("nan"),
        "p99": pct(ms, 99) if ms else float("nan"),
        "logged_once": None,
    }
    if url is not None:
        instances = {requests[i][0] for i in range(len(requests))}
        records = logged(url, instances)
        ids = {requests[i][0]: assertion(results[i][1]) for i in ok}
        once = all(len(records.get(inst, [])) == 1 for inst in instances)
        matches = all(records[inst][0] == ids[inst] for inst in ids if inst in records and len(records[inst]) == 1)
        numbers = [n for rs in records.values() for _, n in rs if n]
        row["logged_once"] = once and matches and len(numbers) == len(set(numbers)) and len(records) == len(instances)
        row["records"] = sum(len(v) for v in records.values())
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0, help="the most each run may send for (bounded)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=60, help="requests each server gets first, not measured")
    parser.add_argument("--sqlite", action="store_true", help="also a run with the log on a SQLite file")
    args = parser.parse_args()

    from tests.pgtemp import TempPostgres, binaries

    if binaries() is None:
        print("PostgreSQL's server (initdb, pg_ctl) is not installed: apt-get install postgresql (.ci/install-postgres)", file=sys.stderr)
        return 2
    requests = build(args.requests)
    rows = []
    with TempPostgres() as pg, tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "KINERET_ASP_DB": str(Path(tmp) / "default.sqlite3")}
        url = pg.new_database()
        rows.append(run("log on PostgreSQL", ["--db", url], requests, args, url, env))
        if args.sqlite:
            lite = str(Path(tmp) / "bench.sqlite3")
            rows.append(run("log on SQLite", ["--db", lite], requests, args, lite, env))
        rows.append(run("no log", ["--no-log"], requests, args, None, env))
    base = rows[-1]
    print(f"{args.requests} order-sign requests, {args.concurrency} clients, {args.workers} workers, at most {args.seconds:g} s a run, 127.0.0.1")
    print(f"{'run':<20} {'answered':>10} {'ok':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'p50 x':>6} {'p99 x':>6}  logged once")
    for r in rows:
        once = "-" if r["logged_once"] is None else ("yes" if r["logged_once"] else "NO")
        print(
            f"{r['run']:<20} {r['answered']:>6}/{r['sent']:<4} {r['ok']:>5} {r['rate']:>8.1f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['p50'] / base['p50']:>6.2f} {r['p99'] / base['p99']:>6.2f}  {once}"
        )
    good = all(r["answered"] == r["sent"] == r["ok"] for r in rows) and all(r["logged_once"] in (None, True) for r in rows)
    print(f"every request answered, every decision logged once: {'yes' if good else 'NO'}")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
