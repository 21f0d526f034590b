"""kineret-asp serve: the HTTP API, started as a real uvicorn process on a free local port."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import httpx
import pytest

from kineret_asp import load_kb
from kineret_asp.author.json_schemas import CaseFormatSchema
from kineret_asp.batch.run import BatchWorker

from .conftest import FACTS, KB_DIR, ROOT
from .conftest import cli as run_cli

SLOW_CASE = {"indication": "rheumatoid_arthritis", "plan": "employer_group"}  # missing() takes about a second


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"


@contextmanager
def running(*args: str) -> Iterator[Server]:
    """A real `kineret-asp serve` on a free port, stopped (SIGTERM) afterwards."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kineret_asp", "serve", "--port", str(port), *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    server = Server(proc, port)
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode())
            try:
                if httpx.get(server.url + "/health", timeout=1).status_code in (200, 401):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running("--time-limit", "1.5", "--max-body", "200000") as s:
        yield s


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, input=stdin)


# --- routes -----------------------------------------------------------------------------


def test_health_and_policies(server):
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok" and health["kb_sha256"] == load_kb(KB_DIR).digest
    policies = httpx.get(server.url + "/policies").json()
    assert policies["in_use"]["policy"] == load_kb(KB_DIR).vocabulary.policy_id
    assert [v for v in policies["versions"] if v["in_use"]]


def test_openapi_lists_every_route(server):
    paths = set(httpx.get(server.url + "/openapi.json").json()["paths"])
    assert {
        "/evaluate",
        "/missing",
        "/what-if",
        "/batch",
        "/schemas/{name}",
        "/policies",
        "/health",
        "/cds-services",
        "/cds-services/{service}",
        "/Questionnaire/$next-question",
        "/questionnaire/next",
    } <= paths


def test_the_case_schema_is_the_kbs(server):
    kb = load_kb(KB_DIR)
    schema = httpx.get(server.url + "/schemas/case").json()
    assert schema["properties"].keys() == CaseFormatSchema(kb.schema).document("x", "y")["properties"].keys()
    assert httpx.get(server.url + "/schemas/nope").status_code == 404


@pytest.mark.parametrize("name", ["ra/no_plan.json", "not_covered/concurrent_biologic.json", "fhir/ra_approved.json"])
def test_evaluate_answers_what_the_command_prints(server, name):
    path = FACTS / name
    response = httpx.post(server.url + "/evaluate", content=path.read_bytes())
    assert response.status_code == 200
    expected = json.loads(cli("evaluate", "--format", "json", str(path)).stdout)
    assert response.json() == expected  # the packaged KB named as the command names it ("kb")
    assert str(KB_DIR) not in response.text and "X-Decision-Id" in response.headers  # each decision kept in the log


def scrubbed(data):
    """Command-line JSON as the server answers it: no provenance names the KB's folder."""
    from kineret_asp.server import scrub

    return scrub(data)


def test_bad_input_is_422_with_the_commands_lines(server):
    bad = {"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrl", "outcome": "failure"}], "plan": "x"}
    response = httpx.post(server.url + "/evaluate", json=bad)
    assert response.status_code == 422
    printed = cli("evaluate", "-", stdin=json.dumps(bad)).stderr.splitlines()
    assert [l.replace("<request>", "<stdin>") for l in response.json()["errors"]] == [l.removeprefix("kineret-asp: ") for l in printed]
    assert httpx.post(server.url + "/evaluate", content=b"{not json").status_code == 422


def test_missing_and_what_if_answer_as_the_command(server):
    path = FACTS / "ra" / "failure_without_months.json"
    got = httpx.post(server.url + "/missing", content=path.read_bytes()).json()
    assert got == scrubbed(json.loads(cli("missing", "--format", "json", str(path)).stdout))
    change = {"op": "set", "path": "medication_history[0].months", "value": 4}
    body = {"case": json.loads(path.read_text()), "changes": [change]}
    got = httpx.post(server.url + "/what-if", json=body).json()
    expected = scrubbed(json.loads(cli("what-if", str(path), "--set", "medication_history[0].months=4", "--format", "json").stdout))
    assert got == expected
    assert httpx.post(server.url + "/what-if", json={"case": {}, "changez": []}).status_code == 422


def batch_lines(n: int, seed: int = 7) -> list[str]:
    sys.path.insert(0, str(ROOT / "bench"))
    from cases import generate  # type: ignore[import-not-found]

    lines = [json.dumps(c) for c in generate(n, seed)]
    lines[3] = "{not json"
    lines[5] = ""
    lines[8] = json.dumps({"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrl", "outcome": "failure"}]})
    return lines


def expected_batch(lines: list[str]) -> str:
    worker = BatchWorker(KB_DIR, "<request>", 1.5, cache=0, served=True)  # the tree, as the server (and the command line) use it, as served
    return worker.json_lines([(i, l.encode()) for i, l in enumerate(lines, 1)])


def test_batch_streams_one_record_per_line_in_order(server):
    lines = batch_lines(450)
    response = httpx.post(server.url + "/batch", content="\n".join(lines).encode(), timeout=120)
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
    assert response.text == expected_batch(lines)
    records = [json.loads(l) for l in response.text.splitlines()]
    assert [r["line"] for r in records] == list(range(1, 451))
    decided = [r for r in records if "decision" in r]
    assert decided and all(r["provenance"]["kb"] == KB_DIR.name for r in decided) and str(KB_DIR) not in response.text  # nothing of this machine's folders leaves it
    assert "error" in records[3] and "error" in records[5] and "enbrl" in records[8]["error"]


def test_unknown_route_is_404_in_the_apis_words(server):
    response = httpx.get(server.url + "/nope")
    assert response.status_code == 404 and response.json() == {"errors": ["no such route: /nope"]}


# --- limits and faults ---------------------------------------------------------------------


def test_a_body_over_the_cap_is_413(server):
    big = json.dumps({"indication": "sjia", "description": "x" * 300_000})
    response = httpx.post(server.url + "/evaluate", content=big.encode())
    assert response.status_code == 413 and "200000 bytes" in response.json()["errors"][0]


@pytest.mark.slow  # a real server's signal handling and time limit (seconds each)
def test_a_request_past_the_time_limit_is_504_and_the_server_goes_on(tmp_path):
    from .test_hardening import RUNAWAY_CASE_RULE, kb_with, ra_line

    kb = kb_with(tmp_path, RUNAWAY_CASE_RULE)  # a case with 1200 months grounds without end: no answer in time, however fast the machine
    with running("--time-limit", "1", "--kb", str(kb)) as s:  # 1 s: the next request must also be answered within it on a busy machine
        started = time.monotonic()
        response = httpx.post(s.url + "/missing", json=ra_line(1, months=1200), timeout=30)
        assert response.status_code == 504 and "1 s" in response.json()["errors"][0]
        assert time.monotonic() - started < 3
        assert httpx.post(s.url + "/evaluate", json={"indication": "sjia"}).status_code == 200


def test_a_client_that_disconnects_mid_batch_leaves_the_server_serving(server):
    lines = batch_lines(600)
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"POST /batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n")
        part = ("\n".join(lines[:300]) + "\n").encode()
        s.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        s.recv(100)  # the first records came back
    # the connection is gone mid-stream; the server still answers, and a whole batch still comes back whole
    assert httpx.get(server.url + "/health").status_code == 200
    response = httpx.post(server.url + "/batch", content="\n".join(lines[:250]).encode(), timeout=120)
    assert response.text == expected_batch(lines[:250])
    assert server.proc.poll() is None


@pytest.mark.slow  # several batches at once against a real server
def test_concurrent_batches_each_get_their_own_records(server):
    inputs = [batch_lines(220, seed) for seed in (1, 2, 3, 4)]
    results: dict[int, str] = {}

    def post(i: int) -> None:
        results[i] = httpx.post(server.url + "/batch", content="\n".join(inputs[i]).encode(), timeout=180).text

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, lines in enumerate(inputs):
        assert results[i] == expected_batch(lines), i


@pytest.mark.slow  # a real server's signal handling and time limit (seconds each)
def test_sigterm_lets_the_request_in_flight_finish_then_exits_cleanly():
    with running("--time-limit", "30") as s:
        answer: dict = {}

        def slow() -> None:
            answer["response"] = httpx.post(s.url + "/missing", json=SLOW_CASE, timeout=60)

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)
        s.proc.send_signal(signal.SIGTERM)
        t.join(60)
        response = answer["response"]
        assert response.status_code == 200
        body = response.json()  # the whole answer: it parses
        assert body["status"] == "no_option" or body["status"] == "options"
        assert s.proc.wait(30) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(s.url + "/health", timeout=2)


@pytest.mark.slow  # starts a server of its own
def test_a_token_file_refuses_every_other_request(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    with running("--token-file", str(token)) as s:
        assert httpx.get(s.url + "/health").status_code == 401
        assert httpx.get(s.url + "/openapi.json").status_code == 401
        assert httpx.post(s.url + "/evaluate", json={"indication": "sjia"}, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert httpx.post(s.url + "/batch", content=b"{}", headers={"Authorization": "Basic s3cret-token"}).status_code == 401
        ok = httpx.post(s.url + "/evaluate", json={"indication": "sjia"}, headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200 and ok.json()["decision"] == "criteria_not_met"
        assert httpx.get(s.url + "/health", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


def test_serve_binds_to_this_machine_by_default():
    from kineret_asp.cli import serve_cmd

    host = next(p for p in serve_cmd.params if p.name == "host")
    assert host.default == "127.0.0.1"


def test_an_empty_token_file_is_one_line_and_exit_2(tmp_path):
    token = tmp_path / "token"
    token.write_text("\n")
    out = cli("serve", "--port", str(free_port()), "--token-file", str(token))
    assert out.returncode == 2 and "token file is empty" in out.stderr and "Traceback" not in out.stderr
