"""Load test of `kineret-asp serve` on 127.0.0.1: throughput and latency beside in-process evaluate().

    python bench/load_bench.py [--requests 5000] [--concurrency 16] [--seed 1]

Starts the server as a real process on a free local port, sends a bounded
number of requests (mixed routes: evaluate, evaluate of a FHIR Bundle,
what-if, missing, health) from a fixed number of client threads with
keep-alive connections, and checks that every request got exactly one
answer equal to the one computed in this process beforehand. Prints
throughput and p50/p99 latency per route and overall, beside the warm
in-process evaluate() figures. Traffic goes to 127.0.0.1 only; the run stops
by itself after the requests (or --deadline seconds).
"""
from __future__ import annotations

import argparse
import json
import queue
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cases import generate  # noqa: E402

from kineret_asp import evaluate, load_kb, missing, what_if  # noqa: E402
from kineret_asp.fhir import annotate, load_input  # noqa: E402

FACTS = ROOT / "facts"
MIX = [("evaluate", 70), ("evaluate_bundle", 10), ("what_if", 10), ("missing", 5), ("health", 5)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def build_requests(n: int, seed: int, kb) -> list[tuple[str, str, bytes, object]]:
    """(route kind, path, body, expected JSON) for n requests in a seeded mix."""
    rng = random.Random(seed)
    cases = list(generate(400, seed))
    bundles = sorted(p for p in (FACTS / "fhir").glob("*.json") if not p.name.endswith(".case.json"))
    small = [FACTS / "ra" / "failure_without_months.json", FACTS / "ra" / "no_rheumatologist.json", FACTS / "caps" / "unspecified_syndrome.json", FACTS / "dira" / "il1rn_pending.json"]
    expected_eval = [evaluate(c, kb).to_dict() for c in cases]
    expected_bundle = []
    for p in bundles:
        case, notes = load_input(p, kb)
        expected_bundle.append(annotate(evaluate(case, kb), notes).to_dict())
    change = [{"op": "add", "path": "prescriber_specialties", "value": "rheumatology"}]
    expected_whatif = [what_if(c, change, kb).to_dict() for c in cases[:50]]
    expected_missing = [missing(str(p), kb).to_dict() for p in small]
    health = {"status": "ok", "policy": kb.vocabulary.policy_id, "effective_from": kb.vocabulary.effective_from, "kb_sha256": kb.digest}
    kinds = [k for k, w in MIX for _ in range(w)]
    out = []
    for _ in range(n):
        kind = rng.choice(kinds)
        if kind == "evaluate":
            i = rng.randrange(len(cases))
            out.append((kind, "/evaluate", json.dumps(cases[i]).encode(), expected_eval[i]))
        elif kind == "evaluate_bundle":
            i = rng.randrange(len(bundles))
            out.append((kind, "/evaluate", bundles[i].read_bytes(), expected_bundle[i]))
        elif kind == "what_if":
            i = rng.randrange(50)
            out.append((kind, "/what-if", json.dumps({"case": cases[i], "changes": change}).encode(), expected_whatif[i]))
        elif kind == "missing":
            i = rng.randrange(len(small))
            out.append((kind, "/missing", small[i].read_bytes(), expected_missing[i]))
        else:
            out.append((kind, "/health", b"", health))
    return out


def in_process(kb, seconds: float = 3.0) -> dict[str, tuple[float, float, float]]:
    """Warm in this process, one case at a time: evaluate() alone, and the server's whole path
    without HTTP (JSON text in, decision JSON text out). Cases/s, median and p99 ms."""
    from kineret_asp.case import parse_json_text
    from kineret_asp.fhir import read_input

    cases = list(generate(2000, 99))
    texts = [json.dumps(c).encode() for c in cases]

    def whole(raw: bytes) -> str:
        case, notes = read_input(parse_json_text(raw, "<request>"), "<request>", kb)
        return json.dumps(annotate(evaluate(case, kb), notes).to_dict())

    out = {}
    for name, func, items in (("evaluate()", lambda c: evaluate(c, kb), cases), ("JSON in, JSON out", whole, texts)):
        for item in items[:200]:
            func(item)
        times = []
        start = time.perf_counter()
        for item in items:
            t = time.perf_counter()
            func(item)
            times.append((time.perf_counter() - t) * 1000)
            if time.perf_counter() - start > seconds:
                break
        out[name] = (len(times) / (time.perf_counter() - start), statistics.median(times), pct(times, 99))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=900.0, help="stop sending after this many seconds")
    args = parser.parse_args()

    kb = load_kb(ROOT / "kb")
    print(f"building {args.requests} requests and their expected answers in-process ...", file=sys.stderr)
    requests = build_requests(args.requests, args.seed, kb)
    local = in_process(kb)

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "kineret_asp", "serve", "--port", str(port), "--time-limit", "30"], cwd=ROOT, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        work: "queue.Queue[int]" = queue.Queue()
        for i in range(len(requests)):
            work.put(i)
        answers: dict[int, list] = {i: [] for i in range(len(requests))}
        lock = threading.Lock()
        stop_at = time.monotonic() + args.deadline

        def client() -> None:
            with httpx.Client(base_url=url, timeout=60) as http:
                while time.monotonic() < stop_at:
                    try:
                        i = work.get_nowait()
                    except queue.Empty:
                        return
                    kind, path, body, _ = requests[i]
                    t = time.perf_counter()
                    try:
                        r = http.get(path) if kind == "health" else http.post(path, content=body)
                        result = (r.status_code, r.json())
                    except (httpx.HTTPError, ValueError) as exc:
                        result = (0, repr(exc))
                    with lock:
                        answers[i].append((result, (time.perf_counter() - t) * 1000))

        began = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)

    latencies: dict[str, list[float]] = {}
    wrong = unanswered = twice = 0
    for i, (kind, _, _, expected) in enumerate(requests):
        got = answers[i]
        if not got:
            unanswered += 1
            continue
        if len(got) > 1:
            twice += 1
        (status, body), ms = got[0]
        if status != 200 or body != expected:
            wrong += 1
        latencies.setdefault(kind, []).append(ms)
    every = [ms for v in latencies.values() for ms in v]
    done = len(every)
    print(f"load test: {args.requests} requests, {args.concurrency} concurrent clients, 127.0.0.1, seed {args.seed}")
    print(f"  {'route':<18}{'requests':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for kind, _ in MIX:
        v = latencies.get(kind, [])
        if v:
            print(f"  {kind:<18}{len(v):>10}{pct(v, 50):>10.1f}{pct(v, 99):>10.1f}")
    print(f"  {'all':<18}{done:>10}{pct(every, 50):>10.1f}{pct(every, 99):>10.1f}")
    print(f"over HTTP, mixed routes     (requests/s) {done / elapsed:>8,.0f}   in {elapsed:.1f} s")
    for name, (rate, median, p99) in local.items():
        print(f"in-process {name:<22} (cases/s) {rate:>8,.0f}   median {median:.2f} ms, p99 {p99:.2f} ms")
    print(f"answers: {done} of {args.requests} answered, {wrong} wrong, {twice} answered twice, {unanswered} unanswered")
    ok = wrong == 0 and twice == 0 and unanswered == 0
    print("every request got exactly one correct answer: " + ("yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
