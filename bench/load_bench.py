"""Load test of `kineret-asp serve` on 127.0.0.1: throughput and latency, this tree beside another commit.

    python bench/load_bench.py [--requests 5000] [--concurrency 16] [--seed 1] [--against COMMIT] [--rounds 1]

Starts the server as a real process on a free local port, sends a bounded
number of requests (mixed routes: evaluate, evaluate of a FHIR Bundle,
what-if, missing, health) from a fixed number of client threads with
keep-alive connections, and checks that every request got exactly one
answer, equal to the one the same tree's code computes in process
beforehand, as the server means it: the server decides with the KB tree
(each case by the version its date of service chooses), so the expected
answers are computed with the tree too, in a process of that tree's own
code. Prints throughput and p50/p99 latency per route and overall.

With ``--against COMMIT`` the same requests go to that commit's server too
(its code and KB exported with ``git archive`` into a temporary folder; the
repository is not touched), in turns, and the figures are printed side by
side with their ratio and the targets: evaluate p99 under 25 ms and at
least twice the other commit's throughput. The clients are plain sockets
(HTTP/1.1, keep-alive), so that they cost the two cores little.

Exit status 1 when some request did not get exactly one correct answer
(for any tree); the figures themselves are printed, not judged.
Traffic goes to 127.0.0.1 only; each run stops by itself after its
requests (or --deadline seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from cases import generate  # noqa: E402

MIX = [("evaluate", 70), ("evaluate_bundle", 10), ("what_if", 10), ("missing", 5), ("health", 5)]
SMALL = ["ra/failure_without_months.json", "ra/no_rheumatologist.json", "caps/unspecified_syndrome.json", "dira/il1rn_pending.json"]
CHANGE = [{"op": "add", "path": "prescriber_specialties", "value": "rheumatology"}]
EVALUATE_P99_MS = 25.0
THROUGHPUT_RATIO = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def facts(tree: Path) -> Path:
    return tree / "kb" / "policies" / "IP0243" / "2024-06-01" / "cases"


def build_requests(n: int, seed: int, tree: Path) -> list[tuple[str, str, bytes, tuple]]:
    """(route kind, path, body, what the expected answer is) for n requests in a seeded mix."""
    rng = random.Random(seed)
    bundles = sorted(p.name for p in (facts(tree) / "fhir").glob("*.json") if not p.name.endswith(".case.json"))
    cases = list(generate(400, seed))
    kinds = [k for k, w in MIX for _ in range(w)]
    out = []
    for _ in range(n):
        kind = rng.choice(kinds)
        if kind == "evaluate":
            i = rng.randrange(len(cases))
            out.append((kind, "/evaluate", json.dumps(cases[i]).encode(), ("evaluate", i)))
        elif kind == "evaluate_bundle":
            i = rng.randrange(len(bundles))
            out.append((kind, "/evaluate", (facts(tree) / "fhir" / bundles[i]).read_bytes(), ("bundle", bundles[i])))
        elif kind == "what_if":
            i = rng.randrange(50)
            out.append((kind, "/what-if", json.dumps({"case": cases[i], "changes": CHANGE}).encode(), ("what_if", i)))
        elif kind == "missing":
            i = rng.randrange(len(SMALL))
            out.append((kind, "/missing", (facts(tree) / SMALL[i]).read_bytes(), ("missing", SMALL[i])))
        else:
            out.append((kind, "/health", b"", ("health", 0)))
    return out


def expected_answers(tree: Path, seed: int) -> dict:
    """What the tree's own code answers, in process, deciding with the KB tree as the server does (run in that tree's code)."""
    from kineret_asp import evaluate, load_kb, missing, what_if

    kb_tree = tree / "kb"
    cases = list(generate(400, seed))
    out: dict = {"evaluate": [evaluate(c, kb_tree).to_dict() for c in cases], "bundle": {}, "what_if": [], "missing": {}}
    for p in sorted((facts(tree) / "fhir").glob("*.json")):
        if not p.name.endswith(".case.json"):
            out["bundle"][p.name] = bundle_decision(p, kb_tree)
    out["what_if"] = [what_if(c, CHANGE, kb_tree).to_dict() for c in cases[:50]]
    out["missing"] = {name: missing(str(facts(tree) / name), kb_tree).to_dict() for name in SMALL}
    kb = load_kb(kb_tree)
    out["health"] = [{"status": "ok", "policy": kb.vocabulary.policy_id, "effective_from": kb.vocabulary.effective_from, "kb_sha256": kb.digest}]
    return out


def bundle_decision(path: Path, kb_tree: Path) -> dict:
    """A Bundle's decision with its notes, in the code of the tree running (the one loader reads a Bundle;
    a tree from before it had a reader of its own)."""
    import importlib

    from kineret_asp import evaluate, load_kb

    try:
        importlib.import_module("kineret_asp.cases.load")
    except ImportError:
        old = importlib.import_module("kineret_asp.fhir")
        case, notes = old.load_input(path, load_kb(kb_tree))
        return old.annotate(evaluate(case, kb_tree), notes).to_dict()
    return evaluate(path, kb_tree).to_dict()


def expected_in(tree: Path, seed: int) -> dict:
    """expected_answers() in a process running ``tree``'s code."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        subprocess.run([sys.executable, __file__, "--expect", str(tree), "--seed", str(seed), "--out", out.name], env=env, check=True, cwd=tree)
        return json.loads(Path(out.name).read_text())


def in_process(seconds: float) -> dict[str, tuple[float, float, float]]:
    """Warm in this process (this tree's code), one case at a time: evaluate() alone, and the server's
    whole path without HTTP (JSON text in, decision JSON text out). Cases/s, median and p99 ms."""
    from kineret_asp import evaluate, load_kb
    from kineret_asp.api import decide
    from kineret_asp.cases.files import parse_json_text
    from kineret_asp.cases.load import load

    kb = load_kb(ROOT / "kb")
    cases = list(generate(2000, 99))
    texts = [json.dumps(c).encode() for c in cases]

    def whole(raw: bytes) -> str:
        return json.dumps(decide(load(parse_json_text(raw, "<request>"), kb, shown="<request>")).to_dict())

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


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1: a request's bytes out, (status, body bytes) back."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")

    def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        self.sock.sendall(head.encode("ascii") + body)
        status = int(self.file.readline().split()[1])
        length = 0
        while True:
            line = self.file.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, self.file.read(length)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def load(tree: Path, requests: list, concurrency: int, deadline: float, warmup: list = (), options: tuple = ()) -> tuple[dict[int, list], float]:
    """Start ``tree``'s server, send ``warmup`` (not measured), then every request from ``concurrency`` clients, stop it: the answers and the seconds."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    server = subprocess.Popen(
        [sys.executable, "-m", "kineret_asp", "serve", "--port", str(port), "--time-limit", "30", "--kb", str(tree / "kb"), *options], cwd=tree, env=env, stderr=subprocess.DEVNULL
    )
    try:
        started = time.monotonic()
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                    probe.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    if probe.recv(12).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() - started > 120:
                raise SystemExit(f"the server of {tree} did not start")
            time.sleep(0.1)
        if warmup:
            send(port, list(warmup), concurrency, deadline)
        return send(port, requests, concurrency, deadline)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def send(port: int, requests: list, concurrency: int, deadline: float) -> tuple[dict[int, list], float]:
    """Every request from ``concurrency`` clients with keep-alive connections: each request's answers, and the seconds."""
    work: "queue.Queue[int]" = queue.Queue()
    for i in range(len(requests)):
        work.put(i)
    answers: dict[int, list] = {i: [] for i in range(len(requests))}
    lock = threading.Lock()
    stop_at = time.monotonic() + deadline

    def client() -> None:
        connection = Connection(port)
        try:
            while time.monotonic() < stop_at:
                try:
                    i = work.get_nowait()
                except queue.Empty:
                    return
                kind, path, body, _ = requests[i]
                t = time.perf_counter()
                try:
                    result = connection.request("GET" if kind == "health" else "POST", path, body)
                except (OSError, ValueError, IndexError) as exc:
                    result = (0, repr(exc).encode())
                    connection.close()
                    connection = Connection(port)
                with lock:
                    answers[i].append((result, (time.perf_counter() - t) * 1000))
        finally:
            connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers, time.perf_counter() - began


def kb_by_name(answer: Any) -> Any:
    """An answer with every provenance's KB folder named by its name alone, as the service gives it over HTTP
    (a server from before that gave the absolute path; the in-process answers give it too)."""
    if isinstance(answer, dict):
        provenance = "rules_sha256" in answer and isinstance(answer.get("kb"), str)
        return {k: os.path.basename(v.rstrip("/")) if provenance and k == "kb" else kb_by_name(v) for k, v in answer.items()}
    if isinstance(answer, list):
        return [kb_by_name(v) for v in answer]
    return answer


def judge(requests: list, answers: dict[int, list], expected: dict) -> tuple[dict[str, list[float]], int, int, int]:
    """Latencies by route, and how many requests were answered wrongly, twice, or not at all."""
    latencies: dict[str, list[float]] = {}
    wrong = unanswered = twice = 0
    for i, (kind, _, _, (table, key)) in enumerate(requests):
        got = answers[i]
        if not got:
            unanswered += 1
            continue
        if len(got) > 1:
            twice += 1
        (status, body), ms = got[0]
        want = expected[table][key]
        try:
            same = status == 200 and kb_by_name(json.loads(body)) == kb_by_name(want)
        except ValueError:
            same = False
        wrong += not same
        latencies.setdefault(kind, []).append(ms)
    return latencies, wrong, twice, unanswered


def export(commit: str, folder: Path) -> Path:
    """``commit``'s files in ``folder`` (git archive: the repository itself is not changed)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--against", metavar="COMMIT", help="also load that commit's server, in turns, and compare")
    parser.add_argument("--rounds", type=int, default=1, help="turns of each server (with --against)")
    parser.add_argument("--no-answer-cache", action="store_true", help="this tree's server decides every request (its workers remember no answer)")
    parser.add_argument("--warmup", type=int, default=500, help="requests each server gets first, not measured (another seed)")
    parser.add_argument("--deadline", type=float, default=900.0, help="stop sending after this many seconds")
    parser.add_argument("--local-seconds", type=float, default=3.0, help="seconds of the in-process figures (0: none)")
    parser.add_argument("--expect", metavar="TREE", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.expect:  # the expected answers, in a process of that tree's code
        Path(args.out).write_text(json.dumps(expected_answers(Path(args.expect), args.seed)))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        trees = [("this tree", ROOT)]
        if args.against:
            trees.insert(0, (args.against, export(args.against, Path(tmp) / "other")))
        print(f"building {args.requests} requests and each tree's expected answers in-process ...", file=sys.stderr)
        requests = build_requests(args.requests, args.seed, ROOT)
        warmup = build_requests(args.warmup, args.seed + 1000, ROOT)
        expected = {name: expected_in(tree, args.seed) for name, tree in trees}
        local = in_process(args.local_seconds) if args.local_seconds > 0 else {}
        results: dict[str, list] = {name: [] for name, _ in trees}
        for _ in range(args.rounds if args.against else 1):
            for name, tree in trees:
                options = ("--no-answer-cache",) if args.no_answer_cache and tree == ROOT else ()
                answers, elapsed = load(tree, requests, args.concurrency, args.deadline, warmup, options)
                results[name].append((judge(requests, answers, expected[name]), elapsed))

    print(
        f"load test: {args.requests} requests, {args.concurrency} concurrent clients, 127.0.0.1, seed {args.seed} (after {args.warmup} not measured)"
        + (", this tree's answer cache off" if args.no_answer_cache else "")
    )
    ok = True
    rates: dict[str, list[float]] = {}
    p99s: dict[str, list[float]] = {}
    for name, _ in trees:
        for n, ((latencies, wrong, twice, unanswered), elapsed) in enumerate(results[name], 1):
            every = [ms for v in latencies.values() for ms in v]
            done = len(every)
            print(f"{name}" + (f", round {n}" if len(results[name]) > 1 else ""))
            print(f"  {'route':<18}{'requests':>10}{'p50 ms':>10}{'p99 ms':>10}")
            for kind, _ in MIX:
                v = latencies.get(kind, [])
                if v:
                    print(f"  {kind:<18}{len(v):>10}{pct(v, 50):>10.1f}{pct(v, 99):>10.1f}")
            if every:
                print(f"  {'all':<18}{done:>10}{pct(every, 50):>10.1f}{pct(every, 99):>10.1f}")
            print(f"  over HTTP, mixed routes (requests/s) {done / elapsed:>8,.0f}   in {elapsed:.1f} s")
            print(f"  answers: {done} of {args.requests} answered, {wrong} wrong, {twice} answered twice, {unanswered} unanswered")
            ok = ok and wrong == 0 and twice == 0 and unanswered == 0
            rates.setdefault(name, []).append(done / elapsed)
            p99s.setdefault(name, []).append(pct(latencies.get("evaluate", [0.0]), 99))
    for name, (rate, median, p99) in local.items():
        print(f"in-process {name:<22} (cases/s) {rate:>8,.0f}   median {median:.2f} ms, p99 {p99:.2f} ms")
    mine = statistics.median(rates["this tree"])
    p99 = statistics.median(p99s["this tree"])
    print(f"target: evaluate p99 under {EVALUATE_P99_MS:g} ms (this tree): {p99:.1f} ms  {'met' if p99 < EVALUATE_P99_MS else 'NOT met'}")
    if args.against:
        theirs = statistics.median(rates[args.against])
        ratio = mine / theirs
        print(
            f"throughput: this tree {mine:,.0f} requests/s, {args.against} {theirs:,.0f} requests/s: {ratio:.2f}x (target at least {THROUGHPUT_RATIO:g}x)  {'met' if ratio >= THROUGHPUT_RATIO else 'NOT met'}"
        )
    print("every request got exactly one correct answer: " + ("yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
