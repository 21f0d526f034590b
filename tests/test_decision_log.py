"""The decision log on SQLite and on a real PostgreSQL server: append-only, migrated, concurrent, crash-safe.

The PostgreSQL server is a private one this module starts (tests/pgtemp.py:
its own folder, 127.0.0.1, a free port); ``.ci/run`` installs PostgreSQL, so
these tests are skipped only on a machine without its server binaries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from kineret_asp import evaluate, load_kb
from kineret_asp.decision_log import SCHEMA_VERSION, DecisionLog, Entry, LogError, backend_for

from .conftest import FACTS, KB_DIR, ROOT
from .pgtemp import TempPostgres, binaries

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def pg():
    if binaries() is None:
        if os.environ.get("KINERET_ASP_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL's server binaries are not installed, and this run requires them (.ci/install-postgres)")
        pytest.skip("PostgreSQL's server binaries are not installed here (.ci/run installs them)")
    with TempPostgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "decisions.sqlite3")
    return request.getfixturevalue("pg").new_database()


def approved() -> dict:
    return evaluate(json.loads((FACTS / "sjia" / "approved.json").read_text()), KB_DIR).to_dict()


def test_a_record_reads_back_with_its_ids_and_provenance(url):
    log = DecisionLog(url)
    kb = load_kb(KB_DIR)
    record = log.record(Entry("evaluate", {"indication": "sjia"}, approved(), "req-1", "Patient/p1", "ab" * 32, "report"), kb, issue_pa=True)
    for key in (record.id, record.pa_number):
        back = log.get(key)
        assert back.id == record.id and back.pa_number == record.pa_number and back.case == {"indication": "sjia"} and back.decision["decision"] == "approved"
        assert back.request_id == "req-1" and back.subject == "Patient/p1" and back.input_sha256 == "ab" * 32 and back.report == "report"
        assert back.policy == "IP0243" and back.rules_sha256 == kb.rules_sha256 and back.framework_sha256 == kb.framework_sha256 and back.package_version
        assert back.rule_files and all(len(h) == 64 for h in back.rule_files.values()) and any(p.startswith("framework/") for p in back.rule_files)
    assert "kb" not in record.decision["provenance"]  # this machine's folders are not kept
    assert log.get("nothing") is None and log.count() == 1


def test_the_log_is_append_only(url):
    log = DecisionLog(url)
    log.record(Entry("evaluate", {}, approved()))
    conn = log._conn()
    for statement in ("UPDATE decisions SET outcome = 'x'", "DELETE FROM decisions"):
        with pytest.raises(Exception, match="append-only"):
            log.backend.begin(conn)
            conn.execute(statement)
        log.backend.rollback(conn)
    assert log.count() == 1 and log.find()[0].outcome == "approved"


def test_an_older_schema_is_migrated_keeping_its_records(url):
    old = DecisionLog.__new__(DecisionLog)
    old.__setstate__({"url": url})
    old.migrate(upto=1)  # what the first version of the program created
    assert old.schema_version() == 1
    old._transaction(
        lambda conn: conn.execute(
            old.backend.sql(
                "INSERT INTO decisions (id, recorded_at, source, input_case, decision, outcome, policy, version, rules_sha256, framework_sha256, package_version) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            ),
            ("old-1", "2024-01-01T00:00:00+00:00", "evaluate", "{}", "{}", "approved", "IP0243", "2024-06-01", "r", "f", "0.1.0"),
        )
    )
    old.close()
    log = DecisionLog(url)
    assert log.schema_version() == SCHEMA_VERSION == 3
    assert log.get("old-1").outcome == "approved" and log.get("old-1").parent is None
    log.record(Entry("dtr:next-question", {}, approved(), parent="old-1"))
    assert [r.parent for r in log.find(parent="old-1")] == ["old-1"]


def raw_record(log: DecisionLog, rid: str) -> tuple:
    """A record's row as the database holds it, every column."""
    conn = log._conn()
    row = conn.execute(log.backend.sql("SELECT * FROM decisions WHERE id = ?"), (rid,)).fetchone()
    log.backend.end_read(conn)
    return tuple(row)


CHANGE = [{"op": "set", "path": "plan", "value": "employer_group"}]


def test_a_reviewers_note_is_kept_beside_its_record_and_never_alters_it(url):
    log = DecisionLog(url)
    record = log.record(Entry("evaluate", {"indication": "sjia"}, approved()), issue_pa=True)
    other = log.record(Entry("evaluate", {"indication": "sjia"}, approved()))
    before = raw_record(log, record.id)
    first = log.add_note(record.id, CHANGE, approved(), "nurse.a", "asked the prescriber")
    second = log.add_note(record.id, [], approved())
    assert first is not None and second is not None and first.id != second.id and first.decision_id == record.id
    assert raw_record(log, record.id) == before  # the logged request and decision, byte for byte
    assert log.get(record.id).case == record.case and log.get(record.id).decision == record.decision
    back = log.notes(record.id)
    assert [n.id for n in back] == [first.id, second.id] and back[0].changes == CHANGE and back[0].reviewer == "nurse.a" and back[0].comment == "asked the prescriber"
    assert back[0].outcome == "approved" and back[0].recorded_at and back[1].reviewer is None
    assert log.note(record.id, first.id).to_dict() == first.to_dict() and log.note(other.id, first.id) is None
    assert log.notes(other.id) == [] and log.add_note("no-such-record", CHANGE, approved()) is None
    assert log.count() == 2 and [n.id for n in log.notes(record.id)] == [first.id, second.id]  # the refused note left nothing


def test_reviewers_notes_are_append_only(url):
    log = DecisionLog(url)
    record = log.record(Entry("evaluate", {}, approved()))
    log.add_note(record.id, CHANGE, approved(), "nurse.a")
    conn = log._conn()
    for statement in ("UPDATE review_notes SET reviewer = 'x'", "DELETE FROM review_notes"):
        with pytest.raises(Exception, match="append-only"):
            log.backend.begin(conn)
            conn.execute(statement)
        log.backend.rollback(conn)
    assert log.notes(record.id)[0].reviewer == "nurse.a"


def test_a_log_of_the_previous_schema_takes_notes_after_its_migration(url):
    """A log file written before notes existed (schema 2) is migrated in place: its records stay as they were, and take notes."""
    old = DecisionLog.__new__(DecisionLog)
    old.__setstate__({"url": url})
    old.migrate(upto=2)
    record = old.record(Entry("evaluate", {"indication": "sjia"}, approved()), issue_pa=True)
    before = raw_record(old, record.id)
    old.close()
    log = DecisionLog(url)
    assert log.schema_version() == 3 and raw_record(log, record.id) == before
    assert log.add_note(record.id, CHANGE, approved(), "nurse.b") is not None and log.notes(record.id)[0].reviewer == "nurse.b"
    DecisionLog(url).close()  # opening it again migrates nothing
    assert log.schema_version() == 3


def test_a_log_written_by_a_newer_program_is_refused(url):
    log = DecisionLog(url)
    log._transaction(lambda conn: conn.execute(log.backend.sql("INSERT INTO kineret_log_schema (version, applied_at) VALUES (?, ?)"), (SCHEMA_VERSION + 1, "later")))
    log.close()
    with pytest.raises(LogError, match="newer than this program"):
        DecisionLog(url)


def test_thirty_two_concurrent_writers_lose_and_duplicate_nothing(url):
    """Done when: 32 concurrent clients writing with no record lost or duplicated (each thread its own connection)."""
    log = DecisionLog(url)
    decision = approved()
    written: list = []
    errors: list = []
    lock = threading.Lock()

    def client(n: int) -> None:
        try:
            for i in range(8):
                r = log.record(Entry("evaluate", {"client": n, "i": i}, decision), issue_pa=True)
                with lock:
                    written.append((r.id, r.pa_number, r.seq))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    records = list(log.each())
    assert len(records) == len(written) == 256
    assert len({r.id for r in records}) == len({r.pa_number for r in records}) == len({r.seq for r in records}) == 256
    assert {(r.case["client"], r.case["i"]) for r in records} == {(n, i) for n in range(32) for i in range(8)}


WRITER = textwrap.dedent("""
    import sys
    from kineret_asp.decision_log import DecisionLog, Entry
    log = DecisionLog(sys.argv[1])
    decision = {"decision": "approved", "policy": "IP0243", "provenance": {"policy": "IP0243", "version": "2024-06-01", "rules_sha256": "r", "framework_sha256": "f", "package_version": "0"}}
    i = 0
    while True:
        r = log.record(Entry("batch", {"i": i, "pad": "x" * 4000}, decision), issue_pa=True)
        print(r.id, flush=True)  # printed only once committed
        i += 1
""")


@pytest.mark.slow
def test_a_writer_killed_mid_write_loses_nothing_committed(url, tmp_path):
    """Done when: a kill -9 mid-write loses nothing committed (every id the writer printed after its commit is there)."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    DecisionLog(url).close()  # the schema exists before the writer starts
    proc = subprocess.Popen([sys.executable, str(script), url], stdout=subprocess.PIPE, cwd=ROOT, text=True)
    committed = []
    deadline = time.monotonic() + 60
    while len(committed) < 150 and time.monotonic() < deadline:
        committed.append(proc.stdout.readline().strip())
    proc.kill()  # SIGKILL, in the middle of some write
    proc.wait()
    committed += [line.strip() for line in proc.stdout.read().splitlines() if line.strip()]
    assert len(committed) >= 150
    log = DecisionLog(url)
    ids = {r.id for r in log.each()}
    assert set(committed) <= ids and len(ids) - len(committed) <= 1  # at most the write it was killed in, whole or not at all
    if backend_for(url).__class__.__name__ == "_Sqlite":
        assert log._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_bad_urls_are_one_line(tmp_path):
    for url, expected in [("ftp://x/y", "expected postgresql://"), ("sqlite::memory:", "a file every worker process can open"), (str(tmp_path / "missing" / "deep" / "x.sqlite3"), None)]:
        if expected is None:
            DecisionLog(url).close()  # folders are made
            continue
        with pytest.raises(LogError, match=expected):
            DecisionLog(url)


def test_an_unreachable_postgresql_is_one_line_without_the_password():
    with pytest.raises(LogError) as info:
        DecisionLog("postgresql://user:secret@127.0.0.1:9/db")
    assert "secret" not in str(info.value) and "***" in str(info.value) and "\n" not in str(info.value)


# --- the service and the command line on a log ------------------------------------------------------------------


def test_every_prior_authorization_number_resolves_through_the_service_on_postgresql(pg):
    """Done when: every number resolves through GET /decisions/{id} to its request, decision and provenance, on PostgreSQL too."""
    from fastapi.testclient import TestClient

    from kineret_asp.server import create_app

    from .interop.test_cds import coverage_info, example, hook_request

    url = pg.new_database()
    client = TestClient(create_app(load_kb(KB_DIR), time_limit=60, db=url))
    numbers = []
    for patient in ("p1", "p2"):
        bundle = json.loads(json.dumps(example("stills_adult_onset")).replace('"Patient/p1"', f'"Patient/{patient}"').replace('"id": "p1"', f'"id": "{patient}"'))
        info = coverage_info(client.post("/cds-services/ip0243-order-sign", json=hook_request(bundle, patient=patient)).json())
        numbers.append(info["satisfied-pa-id"][0])
    assert numbers[0] != numbers[1]  # two patients, the same facts: two numbers
    for number, patient in zip(numbers, ("p1", "p2")):
        record = client.get(f"/decisions/{number}").json()
        assert record["prior_authorization_number"] == number and record["subject"] == f"Patient/{patient}" and record["decision"]["decision"] == "approved"
    assert DecisionLog(url).get(numbers[1]).subject == "Patient/p2"


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kineret_asp", *args], capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.slow
def test_evaluate_and_batch_log_when_asked_and_decisions_lists_shows_and_exports(tmp_path):
    db = str(tmp_path / "log.sqlite3")
    case = FACTS / "sjia" / "approved.json"
    assert run_cli("evaluate", str(case), "--db", db).returncode == 0 and not Path(db).exists()  # not asked: nothing kept
    assert run_cli("evaluate", "--log", "--db", db, str(case)).returncode == 0
    lines = tmp_path / "in.jsonl"
    lines.write_text(json.dumps(json.loads(case.read_text())) + "\n" + json.dumps({"indication": "osteoarthritis"}) + "\n{bad\n")
    batch = run_cli("batch", str(lines), "--log", "--db", db, "--quiet", "--allow-errors", "-o", str(tmp_path / "out.jsonl"))
    assert batch.returncode == 0, batch.stderr
    listed = json.loads(run_cli("decisions", "list", "--db", db, "--format", "json").stdout)
    assert [r["source"] for r in listed] == ["evaluate", "batch", "batch"] and listed[1]["request_id"].endswith(":1")  # the bad line is no decision
    shown = run_cli("decisions", "show", listed[0]["id"], "--db", db)
    assert json.loads(shown.stdout)["decision"]["decision"] == "approved"
    assert "APPROVED" in run_cli("decisions", "show", listed[0]["id"], "--db", db, "--format", "text").stdout
    text = run_cli("decisions", "list", "--db", db).stdout.splitlines()
    assert len(text) == 3 and "APPROVED" in text[0]
    exported = run_cli("decisions", "export", "--db", db)
    assert [json.loads(line)["id"] for line in exported.stdout.splitlines()] == [r["id"] for r in listed] and "3 records" in exported.stderr
    missing = run_cli("decisions", "show", "no-such-id", "--db", db)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


@pytest.mark.slow
def test_readjudicate_reports_what_a_new_version_would_change(tmp_path, kb_copy):
    """kineret-asp readjudicate: the logged requests decided again under a KB copy where criterion 5 (SJIA) asks for a dermatologist."""
    db = str(tmp_path / "log.sqlite3")
    log = DecisionLog(db)
    for name in ("ra/approved_employer_group.json", "sjia/approved.json"):
        case = json.loads((FACTS / name).read_text())
        log.record(Entry("evaluate", case, evaluate(case, KB_DIR).to_dict()))
    log.record(Entry("dtr:package", {}, {}))  # a questionnaire's start: nothing decided
    same = run_cli("readjudicate", "--db", db, "--format", "json", "--exit-code")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["changed"] == 0 and json.loads(same.stdout)["skipped"] == 1 and json.loads(same.stdout)["decided"] == 2
    rules = kb_copy / "criteria" / "5_sjia.lp"
    rules.write_text(rules.read_text().replace('accepted_specialty("5", rheumatology).', 'accepted_specialty("5", dermatology).'))
    changed = run_cli("readjudicate", "--db", db, "--kb", str(kb_copy), "--exit-code")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "2 logged decisions decided again: 1 would change" in changed.stdout and "APPROVED -> CRITERIA NOT MET: 1" in changed.stdout
    report = json.loads(run_cli("readjudicate", "--db", db, "--kb", str(kb_copy), "--format", "json").stdout)
    assert report["changes"][0]["before"]["decision"] == "approved" and report["changes"][0]["after"]["blocking"] == ["5"]


def test_readjudicate_chooses_a_version_by_date_and_names_a_bad_choice_or_a_broken_kb_in_one_line(tmp_path, kb_copy):
    from click.testing import CliRunner

    from kineret_asp.cli import main

    db = str(tmp_path / "log.sqlite3")
    case = json.loads((FACTS / "sjia" / "approved.json").read_text())
    DecisionLog(db).record(Entry("evaluate", case, evaluate(case, KB_DIR).to_dict()))
    same = CliRunner().invoke(main, ["readjudicate", "--db", db, "--kb", str(KB_DIR), "--to", "2024-07-01", "--format", "json"])
    assert same.exit_code == 0, same.output
    assert json.loads(same.output)["decided"] == 1 and json.loads(same.output)["changed"] == 0  # the version in force that day
    nowhere = CliRunner().invoke(main, ["readjudicate", "--db", db, "--kb", str(KB_DIR), "--to", "2020-01-01"])
    assert nowhere.exit_code == 2 and nowhere.output.count("\n") == 1 and "no version of" in nowhere.output and "Traceback" not in nowhere.output
    (kb_copy / "criteria" / "5_sjia.lp").write_text("criterion(\n")
    broken = CliRunner().invoke(main, ["readjudicate", "--db", db, "--kb", str(kb_copy)])
    assert broken.exit_code == 2 and broken.output.count("\n") == 1 and "5_sjia.lp" in broken.output, broken.output


def test_an_application_s_private_log_folder_goes_when_the_application_closes():
    from fastapi.testclient import TestClient

    from kineret_asp.server import create_app

    app = create_app(KB_DIR)
    folder = Path(app.state.private_db.name)
    with TestClient(app) as client:
        assert client.post("/evaluate", json=json.loads((FACTS / "ra" / "approved_employer_group.json").read_text())).status_code == 200
        assert (folder / "decisions.sqlite3").exists()
    assert not folder.exists()


def test_an_application_never_closed_leaves_no_log_folder_behind_when_its_process_ends():
    script = "from kineret_asp.server import create_app; app = create_app(%r); print(app.state.private_db.name)" % str(KB_DIR)
    env = {k: v for k, v in os.environ.items() if k != "KINERET_ASP_DB"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip())
    assert folder.name.startswith("kineret-asp-log-")
    assert not folder.exists()
