"""Issue 19, the second hostile probe: one named test for every finding, each failing without its fix.

The cache, ``#include`` and ``#script``, untrusted KB folders (links, loops,
``new-version``), batch outputs, limits on every command and on the server's
own work, and errors a person can read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from kineret_asp.author.check import check_kb

from .conftest import FACTS, KB_DIR, ROOT, cli, copy_kb
from .test_hardening import RUNAWAY_CASE_RULE, RUNAWAY_KB_RULE, kb_with, lines_file, one_line, ra_line, run_cli
from .test_server import free_port, running

CONCURRENT_ENBREL = FACTS / "not_covered" / "concurrent_biologic.json"


def env_with_cache(folder: Path, key: Path | None = None) -> dict:
    return {**os.environ, "KINERET_ASP_CACHE": str(folder), "KINERET_ASP_CACHE_KEY": str(key or folder.parent / "cache-key")}


def decision_json(case: Path, env: dict, kb: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    extra = ["--kb", str(kb)] if kb is not None else []
    return subprocess.run([sys.executable, "-m", "kineret_asp", "evaluate", str(case), "--format", "json", *extra], cwd=ROOT, capture_output=True, env=env, timeout=timeout)


def without_provenance_kb(out: bytes) -> dict:
    return json.loads(out)


# --- 1. a cache that is a pure speed-up ------------------------------------------------------


@pytest.mark.slow
def test_a_forged_cache_entry_with_its_header_rehashed_never_changes_a_decision(tmp_path):
    """An entry edited (not covered -> approved) and its header's hash recomputed, as anyone who can
    write the cache folder can, is not used: the decision equals the one made with the cache off."""
    folder = tmp_path / "cache"
    env = env_with_cache(folder)
    off = decision_json(CONCURRENT_ENBREL, {**env, "KINERET_ASP_CACHE": "off"})
    first = decision_json(CONCURRENT_ENBREL, env)
    assert json.loads(off.stdout)["decision"] == "not_covered" and first.stdout == off.stdout
    forged = 0
    for entry in folder.glob("*.lp"):
        head, _, body = entry.read_bytes().partition(b"\n")
        edited = body.replace(b"decision(not_covered) :-", b"decision(approved) :-").replace(b"not_covered) :-", b"approved) :-")
        if edited == body:
            continue
        words = head.split(b" ")
        words[-1] = hashlib.sha256(edited).hexdigest().encode()  # the hash anyone can compute
        entry.write_bytes(b" ".join(words) + b"\n" + edited)
        forged += 1
    assert forged
    again = decision_json(CONCURRENT_ENBREL, env)
    assert again.returncode == 0 and again.stdout == off.stdout


@pytest.mark.slow
def test_an_entry_made_with_another_key_is_not_used(tmp_path):
    folder = tmp_path / "cache"
    env = env_with_cache(folder)
    off = decision_json(CONCURRENT_ENBREL, {**env, "KINERET_ASP_CACHE": "off"})
    decision_json(CONCURRENT_ENBREL, env)
    (tmp_path / "cache-key").unlink()  # a new key: every entry was made with another one
    for entry in folder.glob("*.lp"):
        entry.write_bytes(entry.read_bytes().replace(b"not_covered) :-", b"approved) :-"))
    assert decision_json(CONCURRENT_ENBREL, env).stdout == off.stdout
    assert stat.S_IMODE((tmp_path / "cache-key").stat().st_mode) == 0o600


@pytest.mark.slow
def test_a_cache_key_readable_by_others_is_never_used(tmp_path):
    folder = tmp_path / "cache"
    key = tmp_path / "cache-key"
    key.write_text("00" * 32 + "\n")
    key.chmod(0o644)
    env = env_with_cache(folder, key)
    assert decision_json(CONCURRENT_ENBREL, env).returncode == 0
    assert not list(folder.glob("*.lp"))  # no entry made with a key others can read


@pytest.mark.slow
def test_a_cache_folder_of_another_user_is_skipped(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    os.chown(folder, 65534, 65534)
    env = env_with_cache(folder)
    off = decision_json(CONCURRENT_ENBREL, {**env, "KINERET_ASP_CACHE": "off"})
    assert decision_json(CONCURRENT_ENBREL, env).stdout == off.stdout
    assert not list(folder.iterdir())


def entry_names(tmp_path: Path) -> tuple[Path, list[str]]:
    """The names of the entries a first evaluate makes (then removed): where a hostile entry goes."""
    folder = tmp_path / "cache"
    decision_json(CONCURRENT_ENBREL, env_with_cache(folder))
    names = [p.name for p in folder.glob("*.lp")]
    assert names
    for name in names:
        (folder / name).unlink()
    return folder, names


@pytest.mark.slow
def test_a_fifo_cache_entry_neither_hangs_evaluate_nor_is_read(tmp_path):
    folder, names = entry_names(tmp_path)
    for name in names:
        os.mkfifo(folder / name)
    began = time.monotonic()
    proc = decision_json(CONCURRENT_ENBREL, env_with_cache(folder), timeout=30)
    assert proc.returncode == 0 and json.loads(proc.stdout)["decision"] == "not_covered"
    assert time.monotonic() - began < 20


@pytest.mark.slow
def test_a_cache_entry_linked_to_dev_zero_is_not_read(tmp_path):
    folder, names = entry_names(tmp_path)
    for name in names:
        (folder / name).symlink_to("/dev/zero")
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "kineret_asp", "evaluate", str(CONCURRENT_ENBREL), "--memory-limit", "600"], cwd=ROOT, capture_output=True, env=env_with_cache(folder), timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - began < 20


@pytest.mark.slow
@pytest.mark.parametrize("hostile", ["fifo", "link to /dev/zero"])
def test_serve_starts_with_a_hostile_cache_entry(tmp_path, hostile):
    folder, names = entry_names(tmp_path)
    for name in names:
        if hostile == "fifo":
            os.mkfifo(folder / name)
        else:
            (folder / name).symlink_to("/dev/zero")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kineret_asp", "serve", "--port", str(port), "--workers", "1"], cwd=ROOT, env=env_with_cache(folder), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail(f"serve did not start with a {hostile} for each cache entry")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


@pytest.mark.slow
def test_the_rules_hash_covers_every_byte_of_a_rule_file(tmp_path):
    from kineret_asp.knowledge.base import parse_kb

    version = copy_kb(tmp_path)
    before = parse_kb(version).rules_sha256
    path = version / "inputs.lp"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))  # the same text to a reader that folds line ends
    assert parse_kb(version).rules_sha256 != before


# --- 2. #include and #script --------------------------------------------------------------------


def include(version: Path, target: Path) -> Path:
    rule = version / "zz_include.lp"
    rule.write_text(f'% § test: a rule file that includes another\n#include "{target}".\n')
    return rule


@pytest.mark.slow
def test_a_stale_include_leaves_decisions_equal_to_the_cache_off(tmp_path):
    """A rule file including a file outside the KB: edited after a first run, the decision with the
    cache on must still equal the one with the cache off (the include is refused either way)."""
    version = copy_kb(tmp_path)
    outside = tmp_path / "outside.lp"
    outside.write_text("")
    include(version, outside)
    case = tmp_path / "stills.json"
    case.write_text(json.dumps({"indication": "stills_disease", "prescriber_specialties": ["dermatology"]}))
    env = env_with_cache(tmp_path / "cache")
    first = decision_json(case, env, version)
    outside.write_text('accepted_specialty("4", dermatology).\n')
    cached = decision_json(case, env, version)
    off = decision_json(case, {**env, "KINERET_ASP_CACHE": "off"}, version)
    assert (cached.returncode, cached.stdout) == (off.returncode, off.stdout)
    assert first.returncode == cached.returncode == 2 and b"#include is not allowed" in cached.stderr


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_an_include_is_refused_by_check_and_the_loader(tmp_path, where):
    version = copy_kb(tmp_path)
    target = version / "tables" / "appendix_drug_classes.lp" if where == "inside" else tmp_path / "outside.lp"
    if where == "outside":
        target.write_text("p.\n")
    rule = include(version, target)
    report = check_kb(version)
    errors = [d for d in report.diagnostics if d.severity == "error"]
    assert len(errors) == 1 and "#include is not allowed" in errors[0].message
    assert errors[0].file.endswith("zz_include.lp") and errors[0].line == 2
    proc = cli("evaluate", str(CONCURRENT_ENBREL), "--kb", str(version))
    assert proc.returncode == 2 and "#include is not allowed" in proc.stderr and str(rule.name) in proc.stderr


def test_an_include_hidden_in_a_comment_or_string_never_opens_a_file(tmp_path):
    from kineret_asp.knowledge.tree_files import blank_includes, directives

    fifo = tmp_path / "fifo.lp"
    os.mkfifo(fifo)
    text = f'%* block %* nested *% #include "{fifo}". *%\np("#include \\"{fifo}\\".").\n% #include "{fifo}".\n'
    kinds = [(kind, code) for kind, _, code in directives(text)]
    assert kinds == [("#include", False), ("#include", True), ("#include", False)]
    import clingo.ast as ast

    ast.parse_string(blank_includes(text), lambda node: None)  # returns: clingo never opened the FIFO


def test_check_names_a_script_block_in_one_line(tmp_path):
    version = copy_kb(tmp_path)
    (version / "zz_script.lp").write_text("% § test: a script\n#script (python)\nimport os\nos.system('true')\n#end.\n")
    report = check_kb(version)
    errors = [d for d in report.diagnostics if d.severity == "error"]
    assert len(errors) == 1 and "#script is not allowed" in errors[0].message and errors[0].file.endswith("zz_script.lp")
    proc = cli("check", "--kb", str(version))
    assert proc.returncode == 1 and proc.stdout.count("error:") == 1


# --- 5. untrusted KB folders ---------------------------------------------------------------------


def tree_of(version: Path) -> Path:
    return version.parents[2]


def test_a_rule_file_linked_out_of_the_tree_is_refused(tmp_path):
    version = copy_kb(tmp_path)
    outside = tmp_path / "outside.lp"
    outside.write_text('% § test\naccepted_specialty("4", dermatology).\n')
    (version / "zz_link.lp").symlink_to(outside)
    errors = [d for d in check_kb(version).diagnostics if d.severity == "error"]
    assert len(errors) == 1 and "link out of the KB tree" in errors[0].message
    assert cli("evaluate", str(CONCURRENT_ENBREL), "--kb", str(version)).returncode == 2


def test_a_rule_file_linked_inside_the_tree_is_read(tmp_path):
    version = copy_kb(tmp_path)
    table = version / "tables" / "non_preferred_products.lp"
    moved = tree_of(version) / "shared.lp"
    table.rename(moved)
    table.symlink_to(moved)
    assert check_kb(version).errors == 0


def test_a_fifo_named_like_a_rule_file_is_an_error_not_a_hang(tmp_path):
    version = copy_kb(tmp_path)
    os.mkfifo(version / "zz_fifo.lp")
    errors = [d for d in check_kb(version).diagnostics if d.severity == "error"]
    assert len(errors) == 1 and "not a regular file" in errors[0].message


def test_check_refuses_a_policy_text_linked_out_of_the_tree(tmp_path):
    version = copy_kb(tmp_path)
    (text,) = (version / "source").iterdir()
    outside = tmp_path / "text.txt"
    shutil.move(text, outside)
    text.symlink_to(outside)
    errors = [d for d in check_kb(version).diagnostics if d.severity == "error"]
    assert errors and all("source" in d.code for d in errors) and any("policy's text" in d.message for d in errors)


def test_a_version_folder_that_is_a_link_is_not_followed(tmp_path):
    version = copy_kb(tmp_path)
    (version.parent / "loop").symlink_to(".", target_is_directory=True)  # policies/IP0243/loop -> policies/IP0243
    assert check_kb(tree_of(version)).errors == 0


@pytest.mark.slow
def test_new_version_with_a_folder_link_loop_builds_the_copy_whole(tmp_path):
    version = copy_kb(tmp_path)
    (version / "loop").symlink_to("..", target_is_directory=True)
    proc = cli("new-version", "IP0243", "--effective", "2025-01-01", "--kb", str(tree_of(version)))
    assert proc.returncode == 0, proc.stderr
    new = version.parent / "2025-01-01"
    assert (new / "loop").is_symlink() and os.readlink(new / "loop") == ".."
    assert not [p for p in tree_of(version).iterdir() if p.name.startswith(".new-version")]
    errors = [d for d in check_kb(tree_of(version)).diagnostics if d.severity == "error"]
    assert [d.code for d in errors] == ["source"]  # only the copy's text, still the old one (new-version says so)


@pytest.mark.parametrize("hostile", ["file link out", "fifo"])
def test_new_version_refuses_what_it_cannot_copy_and_leaves_nothing(tmp_path, hostile):
    version = copy_kb(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("a file outside the KB\n")
    if hostile == "fifo":
        os.mkfifo(version / "source" / "pipe")
    else:
        (version / "source" / "secret.txt").symlink_to(secret)
    before = {p: p.read_bytes() for p in version.rglob("*.lp")}
    proc = cli("new-version", "IP0243", "--effective", "2025-01-01", "--kb", str(tree_of(version)))
    assert proc.returncode == 2 and "nothing was written" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (version.parent / "2025-01-01").exists()
    assert {p: p.read_bytes() for p in version.rglob("*.lp")} == before
    assert not [p for p in tree_of(version).iterdir() if p.name.startswith(".new-version")]


# --- 3. batch outputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["same path", "through a link", "resume", "stdin and stdout"])
def test_batch_with_its_input_as_its_output_leaves_the_input_byte_identical(tmp_path, how):
    src = lines_file(tmp_path / "x.jsonl", [ra_line(n) for n in range(5)])
    before = src.read_bytes()
    if how == "stdin and stdout":
        with open(src, "rb") as stdin, open(src, "ab") as stdout:
            proc = subprocess.run([sys.executable, "-m", "kineret_asp", "batch", "-", "-o", "-"], cwd=ROOT, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, timeout=60)
        err = proc.stderr
    else:
        out = src
        if how == "through a link":
            out = tmp_path / "link.jsonl"
            out.symlink_to(src)
        extra = ["--resume"] if how == "resume" else []
        proc = cli("batch", str(src), "-o", str(out), *extra, text=False)
        err = proc.stderr
    assert proc.returncode == 2
    assert src.read_bytes() == before
    assert b"is the input file" in err and err.count(b"\n") == 1
    assert not (tmp_path / "x.jsonl.lock").exists()


@pytest.mark.slow
def test_a_second_batch_writing_through_a_link_is_refused_naming_the_writer(tmp_path):
    from kineret_asp.batch.output_lock import OutputLock

    out = tmp_path / "out.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(out)
    src = lines_file(tmp_path / "in.jsonl", [ra_line(n) for n in range(3)])
    with OutputLock(out):
        proc = run_cli("batch", str(src), "-o", str(link))
        assert proc.returncode == 1 and f"pid {os.getpid()}" in one_line(proc.stderr)
    assert not out.exists() or out.read_bytes() == b""


@pytest.mark.slow
def test_a_second_batch_writing_a_hard_link_of_the_output_is_refused(tmp_path):
    import fcntl

    out = tmp_path / "out.jsonl"
    out.write_bytes(b"")
    other = tmp_path / "other.jsonl"
    os.link(out, other)
    src = lines_file(tmp_path / "in.jsonl", [ra_line(n) for n in range(3)])
    with open(out, "ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # a writer of the file by its first name
        proc = run_cli("batch", str(src), "-o", str(other))
    assert proc.returncode == 1 and "is writing this file" in one_line(proc.stderr)
    assert out.read_bytes() == b""


@pytest.mark.slow
def test_post_batch_past_its_cap_gives_a_record_for_every_line_naming_the_cap():
    lines = [json.dumps({**ra_line(n), "description": "x" * 150}) for n in range(30)]
    with running("--max-batch-body", "2000", "--workers", "1") as s:

        def chunks():
            for line in lines:  # streamed (no length declared), as a client sends a long batch
                yield (line + "\n").encode()

        response = httpx.post(s.url + "/batch", content=chunks(), timeout=60)
        assert response.status_code == 200
        records = [json.loads(l) for l in response.text.splitlines()]
        assert [r["line"] for r in records] == list(range(1, 31))
        decided = [r for r in records if "decision" in r]
        capped = [r for r in records if "error" in r]
        assert decided and capped and len(decided) + len(capped) == 30
        assert all("batch cap of 2000 bytes" in r["error"] and "longer than" not in r["error"] for r in capped)
        declared = httpx.post(s.url + "/batch", content="\n".join(lines).encode(), timeout=60)
        assert declared.status_code == 413 and declared.json() == {"errors": ["request body over 2000 bytes"]}


# --- 4. limits everywhere -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("command", [["trace"], ["trace", "--html", "PAGE"], ["schema", "case"], ["vocabulary"]])
def test_every_command_that_loads_a_kb_stops_at_its_time_limit(tmp_path, command):
    kb = kb_with(tmp_path, RUNAWAY_KB_RULE)
    args = [str(tmp_path / "page.html") if a == "PAGE" else a for a in command]
    began = time.monotonic()
    proc = run_cli(*args, "--kb", str(kb), "--time-limit", "0.5", timeout=60)
    assert time.monotonic() - began < 10
    assert proc.returncode == 3 and "the time limit of 0.5 s (--time-limit)" in one_line(proc.stderr)


@pytest.mark.slow
def test_serve_stops_its_start_at_the_limit_when_the_kb_grounds_without_end(tmp_path):
    kb = kb_with(tmp_path, RUNAWAY_KB_RULE)
    began = time.monotonic()
    proc = run_cli("serve", "--port", str(free_port()), "--kb", str(kb), "--start-time-limit", "1", timeout=60)
    assert time.monotonic() - began < 15
    assert proc.returncode == 3 and "--start-time-limit" in one_line(proc.stderr)


def server_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its live children (user and system), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


@pytest.mark.slow
def test_three_heavy_requests_stop_using_the_cpu_within_a_second_of_their_504(tmp_path):
    """The server's time limit stops the work itself: a request at its limit gets 504, and its
    worker is killed, so that nothing goes on computing for an answer already given up."""
    kb = kb_with(tmp_path, RUNAWAY_CASE_RULE)
    heavy = ra_line(1, months=1200)  # grounds without end under this KB
    with running("--kb", str(kb), "--time-limit", "1", "--workers", "2") as s:
        statuses: list[int] = []

        def post() -> None:
            statuses.append(httpx.post(s.url + "/evaluate", json=heavy, timeout=60).status_code)

        threads = [threading.Thread(target=post) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [504, 504, 504]
        time.sleep(1.0)
        before = server_cpu_seconds(s.proc.pid)
        time.sleep(2.0)
        assert server_cpu_seconds(s.proc.pid) - before < 0.5  # idle: no worker left computing
        assert httpx.post(s.url + "/evaluate", json=ra_line(2)).status_code == 200


@pytest.mark.slow
def test_a_full_queue_is_refused_with_503_at_once(tmp_path):
    kb = kb_with(tmp_path, RUNAWAY_CASE_RULE)
    heavy = ra_line(1, months=1200)
    with running("--kb", str(kb), "--time-limit", "3", "--workers", "1", "--queue", "1") as s:
        answers: list = []

        def post() -> None:
            began = time.monotonic()
            response = httpx.post(s.url + "/evaluate", json=heavy, timeout=60)
            answers.append((response.status_code, time.monotonic() - began, response.json()))

        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
            time.sleep(0.2)
        for t in threads:
            t.join()
        busy = [a for a in answers if a[0] == 503]
        assert busy and all(seconds < 2 and "busy" in body["errors"][0] for _, seconds, body in busy)
        assert {a[0] for a in answers} == {503, 504}


# --- 8. errors a person can read ------------------------------------------------------------------------


def test_an_error_about_many_codes_says_how_many_and_shows_a_few(tmp_path):
    bundle = json.loads((FACTS / "fhir" / "ra_approved.json").read_text())
    statement = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationStatement")
    for i in range(4980):  # under the Bundle's 5,000-entry cap: the medication list's own cap refuses it
        entry = json.loads(json.dumps(statement))
        entry["fullUrl"] = f"urn:uuid:x{i}"
        entry["resource"]["id"] = f"x{i}"
        entry["resource"]["medicationCodeableConcept"] = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": str(900000 + i)}]}
        bundle["entry"].append(entry)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    proc = cli("evaluate", str(path))
    assert proc.returncode == 2
    assert len(proc.stderr) < 2000 and proc.stderr.count("\n") == 1
    assert re.search(r"and 4,9\d\d more \(4,9\d\d in all\)", proc.stderr)


def test_the_markdown_page_makes_no_link_of_a_url_in_a_case(tmp_path):
    cmarkgfm = pytest.importorskip("cmarkgfm")
    case = {"id": "see http://evil.example/pay and www.evil.example now", "indication": "sjia", "prescriber_specialties": ["rheumatology"]}
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case))
    page = cli("evaluate", str(path), "--format", "markdown").stdout
    assert "evil" in page
    rendered = cmarkgfm.github_flavored_markdown_to_html(page)
    assert "<a " not in rendered and "http://evil.example/pay" in rendered


@pytest.mark.slow
def test_serve_on_a_busy_port_is_exit_1_naming_the_port():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        began = time.monotonic()
        proc = run_cli("serve", "--port", str(port), timeout=60)
    assert proc.returncode == 1 and f"port {port}" in one_line(proc.stderr)
    assert time.monotonic() - began < 10  # refused before the KB is loaded


@pytest.mark.slow
def test_every_http_error_has_one_format(tmp_path):
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    auth = {"Authorization": "Bearer t0ken"}
    with running("--max-body", "1000", "--token-file", str(token), "--workers", "1") as s:
        answers = [
            httpx.get(s.url + "/evaluate", headers=auth),  # 405
            httpx.get(s.url + "/batch", headers=auth),  # 405
            httpx.post(s.url + "/health", headers=auth),  # 405
            httpx.get(s.url + "/nope", headers=auth),  # 404
            httpx.post(s.url + "/evaluate", content=b"x" * 2000, headers=auth),  # 413
            httpx.post(s.url + "/evaluate", content=b"{not json", headers=auth),  # 422
            httpx.get(s.url + "/health"),  # 401
        ]
    assert [a.status_code for a in answers] == [405, 405, 405, 404, 413, 422, 401]
    for answer in answers:
        body = answer.json()
        assert list(body) == ["errors"] and body["errors"] and all(isinstance(line, str) and "\n" not in line for line in body["errors"]), body
    assert "GET is not allowed on /evaluate" in answers[0].json()["errors"][0]


# --- 6. a server that scales: requests that wait together ---------------------------------------------


def test_evaluate_requests_decided_together_answer_as_one_at_a_time():
    """From CHUNK_MIN waiting evaluate requests on, a worker decides them in one grounding: the same bytes as alone."""
    sys.path.insert(0, str(ROOT / "bench"))
    from cases import generate  # type: ignore[import-not-found]

    from kineret_asp.cases.versions import Chooser
    from kineret_asp.server import CHUNK_MIN, Handler

    handler = Handler(Chooser.of(KB_DIR), 10.0, answers=0)
    bodies = [json.dumps(c).encode() for c in generate(CHUNK_MIN + 6, 11)]
    bodies[3] = b"{not json"
    bodies[7] = json.dumps({"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrl", "outcome": "failure"}]}).encode()
    bodies[9] = (FACTS / "fhir" / "ra_approved.json").read_bytes()
    together = handler([("evaluate", b) for b in bodies])
    alone = [handler.one("evaluate", b) for b in bodies]
    assert together == alone
    assert [r[0] for r in together].count(422) == 2 and together[9][0] == 200


def test_a_worker_remembers_an_answer_by_its_request():
    from kineret_asp.cases.versions import Chooser
    from kineret_asp.server import Handler

    handler = Handler(Chooser.of(KB_DIR), 10.0)
    body = CONCURRENT_ENBREL.read_bytes()
    first = handler([("evaluate", body)])
    assert handler.answers.get(("evaluate", body)) == first[0]
    assert handler([("evaluate", body)]) == first
    assert Handler(Chooser.of(KB_DIR), 10.0, answers=0)([("evaluate", body)]) == first  # the same answer, decided again
