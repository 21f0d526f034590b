"""The reviewer's workbench (GET /review): its page, its answers, and a full review in headless Chromium.

The browser test drives Debian's Chromium through its DevTools protocol over
a pipe (``--remote-debugging-pipe``: no port, no extra package), against the
server on a loopback port. Its screenshots and the printed PDF are kept in
the test's temporary folder (``<pytest tmp>/test_a_reviewer_opens_the_uncl0/`` (under ``popen-gwN/`` with ``-n``):
``1-opened.png``, ``2-approved.png``, ``review.pdf``; pytest keeps the last
three runs' folders, ``--basetemp`` names the place).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kineret_asp.explain.workbench import CSP, controls
from kineret_asp.server import create_app

from ..chromium import INSTALL, chromium
from ..chromium import command as chromium_command
from ..conftest import FACTS, KB_DIR

UNCLASSED = FACTS / "drugs" / "unclassed_current_drug.json"
"""Rheumatoid arthritis, every criterion met, and a current drug the KB cannot class (zorbitrex): NC.2 is a question."""


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(KB_DIR))


def opened() -> dict:
    case = json.loads(UNCLASSED.read_text())
    case.pop("expect")
    return case


ANSWER = {"op": "add", "path": "drug_categories", "value": {"drug": "zorbitrex", "category": "other"}}


class Labels(HTMLParser):
    """Every form control's id and every label's for=, as the page is written."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[str] = []
        self.labelled: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("input", "select", "textarea"):
            self.controls.append(a.get("id") or "")
        if tag == "label" and a.get("for"):
            self.labelled.add(a["for"])


def test_the_page_is_served_with_a_policy_that_loads_nothing_from_outside(client):
    page = client.get("/review")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    assert "default-src 'none'" in CSP and "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page.text)  # nothing from another host
    assert "<style" not in page.text and not re.search(r"<script(?![^>]*(src=\"/review/|type=\"application/json\"))", page.text)  # nothing inline runs
    assert client.get("/review/workbench.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/review/workbench.css").status_code == 200


def test_every_control_is_labelled_and_made_from_the_case_schema(client, kb):
    page = client.get("/review").text
    labels = Labels()
    labels.feed(page)
    assert labels.controls and all(c and c in labels.labelled for c in labels.controls)
    made = {(c["op"], c["field"]) for c in controls(kb)}
    for f in kb.schema.fields:
        if f.kind.name == "entries" and not f.roles:
            assert ("add", f.name) in made and ("remove", f.name) in made and f'data-field="{f.name}"' in page
    assert not any(field in ("id", "expect", "version", "undetermined") for _, field in made)  # the program fills them in


def test_a_change_moves_the_decision_and_the_question_and_the_opened_case_is_never_altered(client):
    case = opened()
    before = client.post("/review/decide", json={"case": case, "changes": []}).json()
    assert before["decision"] == "undetermined" and before["blocking"] == ["NC.2"]
    assert before["asks"][0]["kind"] == "question" and "zorbitrex" in before["asks"][0]["text"]
    after = client.post("/review/decide", json={"case": case, "changes": [ANSWER]}).json()
    assert after["decision"] == "approved" and after["asks"] == [] and after["before"] == "undetermined"
    assert after["case"]["drug_categories"] == [ANSWER["value"]] and "drug_categories" not in case
    assert 'data-decision="approved"' in after["section"]
    printed = client.post("/review/page", json={"case": case, "changes": [ANSWER]})
    assert printed.headers["content-type"].startswith("text/html") and "<!DOCTYPE html>" in printed.text and "APPROVED" in printed.text


def test_a_bad_change_or_case_is_a_422_with_one_line_each(client):
    bad = client.post("/review/decide", json={"case": opened(), "changes": [{"op": "add", "path": "nope", "value": 1}]})
    assert bad.status_code == 422 and "unknown field 'nope'" in bad.json()["errors"][0]
    assert client.post("/review/decide", json={"changes": []}).status_code == 422
    assert client.post("/review/decide", content=b"{not json").status_code == 422


def test_user_strings_are_escaped_in_the_review_section(client):
    case = opened()
    case["id"] = "<img src=x onerror=alert(1)>"
    section = client.post("/review/decide", json={"case": case, "changes": []}).json()["section"]
    assert "<img" not in section and "&lt;img src=x onerror=alert(1)&gt;" in section


def test_the_workbench_answers_a_fhir_bundle(client):
    bundle = json.loads((FACTS / "fhir" / "ra_approved.json").read_text())
    assert client.post("/review/decide", json={"case": bundle, "changes": []}).json()["decision"] == "approved"


# --- a request from the decision log, and the reviewer's notes kept beside it ---------------------------


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A service on a decision log holding the unclassed-drug request with a prior-authorization number (as CRD issues them)."""
    from kineret_asp import evaluate
    from kineret_asp.decision_log import DecisionLog, Entry

    url = str(tmp_path_factory.mktemp("log") / "decisions.sqlite3")
    log = DecisionLog(url)
    record = log.record(Entry("cds:order-sign", opened(), evaluate(opened(), KB_DIR).to_dict(), "hook-1", "Patient/p1"), issue_pa=True)
    return TestClient(create_app(KB_DIR, db=url)), log, record


def raw_row(log, rid: str) -> tuple:
    """The logged record's row, every column, as the database holds it."""
    conn = log._conn()
    row = conn.execute("SELECT * FROM decisions WHERE id = ?", (rid,)).fetchone()
    log.backend.end_read(conn)
    return tuple(row)


def test_a_request_opens_by_its_prior_authorization_number_from_the_decision_log(logged, kb):
    client, log, record = logged
    for key in (record.pa_number, record.id):
        answer = client.post("/review/decide", json={"logged": key, "changes": []})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["decision"] == "undetermined" and body["blocking"] == ["NC.2"] and "zorbitrex" in body["asks"][0]["text"]
        assert body["logged"]["id"] == record.id and body["logged"]["prior_authorization_number"] == record.pa_number and body["logged"]["decision"] == "undetermined"
        assert record.pa_number in body["logged"]["line"] and isinstance(body["notes"], list)
        assert body["case"] == client.post("/review/decide", json={"case": record.case}).json()["case"]  # the case as logged
        assert kb.vocabulary.word("review_logged_line", id=record.id, number=kb.vocabulary.word("wb_number", number=record.pa_number), when=record.recorded_at) in body["section"]
    changed = client.post("/review/decide", json={"logged": record.pa_number, "changes": [ANSWER]}).json()
    assert changed["decision"] == "approved" and changed["logged"]["id"] == record.id  # changes are tried on the logged case
    assert "Changes tried, not saved: add drug_categories" in changed["section"]
    assert "logged" not in client.post("/review/decide", json={"case": opened(), "changes": []}).json()  # a pasted case names no record


def test_an_unknown_number_is_a_404_naming_it(logged, kb):
    client, _, record = logged
    expected = kb.vocabulary.word("api_no_decision", id="IP0243-20240101-NOSUCHNUMBER")
    for method, path, body in (
        ("post", "/review/decide", {"logged": "IP0243-20240101-NOSUCHNUMBER", "changes": []}),
        ("post", "/review/page", {"logged": "IP0243-20240101-NOSUCHNUMBER"}),
        ("get", "/decisions/IP0243-20240101-NOSUCHNUMBER/notes", None),
        ("post", "/decisions/IP0243-20240101-NOSUCHNUMBER/notes", {"changes": [ANSWER]}),
    ):
        answer = client.request(method.upper(), path, json=body)
        assert answer.status_code == 404 and answer.json() == {"errors": [expected]}, (path, answer.text)
    unknown_note = client.post("/review/page", json={"logged": record.id, "note": "no-such-note"})
    assert unknown_note.status_code == 404 and unknown_note.json()["errors"] == [kb.vocabulary.word("api_no_note", note="no-such-note", id=record.id)]
    assert client.get(f"/decisions/{record.id}/notes/no-such-note").status_code == 404


def test_without_a_decision_log_a_number_is_a_clear_404_not_a_crash(kb):
    client = TestClient(create_app(KB_DIR, db=False))
    expected = {"errors": [kb.vocabulary.word("api_no_log", number="IP0243-20240101-X")]}
    assert "--no-log" in expected["errors"][0]
    for method, path, body in (
        ("post", "/review/decide", {"logged": "IP0243-20240101-X", "changes": []}),
        ("post", "/review/page", {"logged": "IP0243-20240101-X"}),
        ("get", "/decisions/IP0243-20240101-X/notes", None),
        ("get", "/decisions/IP0243-20240101-X/notes/n", None),
        ("post", "/decisions/IP0243-20240101-X/notes", {"changes": [ANSWER]}),
    ):
        answer = client.request(method.upper(), path, json=body)
        assert answer.status_code == 404 and answer.json() == expected, (path, answer.text)
    assert client.post("/review/decide", json={"case": opened(), "changes": []}).json()["decision"] == "undetermined"  # a pasted case needs no log


def test_a_change_set_is_saved_as_a_note_and_the_logged_request_is_unchanged(logged):
    client, log, record = logged
    row, shown = raw_row(log, record.id), client.get(f"/decisions/{record.pa_number}").content
    saved = client.post(f"/decisions/{record.pa_number}/notes", json={"changes": [ANSWER], "reviewer": "nurse.a", "comment": "the prescriber says zorbitrex is neither"})
    assert saved.status_code == 201, saved.text
    note = saved.json()
    assert note["decision_id"] == record.id and note["reviewer"] == "nurse.a" and note["recorded_at"] and note["outcome"] == "approved"
    assert note["changes"] == [ANSWER] and note["decision"]["decision"] == "approved" and note["comment"].startswith("the prescriber")
    assert raw_row(log, record.id) == row and client.get(f"/decisions/{record.pa_number}").content == shown  # the original, byte for byte
    assert client.get(saved.headers["location"]).json() == note
    listed = client.get(f"/decisions/{record.pa_number}/notes").json()
    assert listed["decision_id"] == record.id and listed["prior_authorization_number"] == record.pa_number and note in listed["notes"]
    opened_again = client.post("/review/decide", json={"logged": record.pa_number, "changes": []}).json()
    shown_note = next(n for n in opened_again["notes"] if n["id"] == note["id"])
    assert shown_note["changes"] == [ANSWER] and "nurse.a" in shown_note["line"] and "APPROVED" in shown_note["line"]
    assert opened_again["decision"] == "undetermined"  # opening again shows the logged request, not the note's changes


def test_a_saved_note_is_reapplied_and_printed_as_the_review_page(logged):
    client, _, record = logged
    note = client.post(f"/decisions/{record.id}/notes", json={"changes": [ANSWER], "reviewer": "nurse.b"}).json()
    again = client.post("/review/decide", json={"logged": record.pa_number, "note": note["id"]}).json()
    assert again["decision"] == "approved" and again["note"] == note["id"] and again["changes"] == [ANSWER] and again["asks"] == []
    page = client.post("/review/page", json={"logged": record.pa_number, "note": note["id"]})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html") and "APPROVED" in page.text
    footer = page.text[page.text.index('<footer class="provenance">') :]
    assert f"Decision log: decision {record.id}, prior-authorization number {record.pa_number}" in footer
    assert f"note {note['id']} (nurse.b, {note['recorded_at']}): add drug_categories" in footer.replace("&#x27;", "'")
    reapplied = client.post("/review/decide", json={"logged": record.id, "changes": again["changes"]}).json()  # the workbench's Re-apply
    assert reapplied["decision"] == "approved"


def test_a_note_that_does_not_apply_or_is_malformed_is_refused_and_nothing_is_kept(logged):
    client, log, record = logged
    before = [n.id for n in log.notes(record.id)]
    bad = client.post(f"/decisions/{record.id}/notes", json={"changes": [{"op": "add", "path": "nope", "value": 1}]})
    assert bad.status_code == 422 and "unknown field 'nope'" in bad.json()["errors"][0]
    for body, where in (
        ({"changes": [], "reviewer": "x"}, "changes"),
        ({"changes": [ANSWER], "who": "x"}, "who"),
        ({"changes": [ANSWER], "reviewer": 7}, "reviewer"),
        ({"changes": [ANSWER], "comment": "x" * 5000}, "comment"),
        ([ANSWER], ""),
    ):
        refused = client.post(f"/decisions/{record.id}/notes", json=body)
        assert refused.status_code == 422 and refused.json()["errors"][0].startswith(f"<request>: {where}" if where else "<request>: expected"), (body, refused.text)
    both = client.post("/review/decide", json={"case": opened(), "logged": record.id})
    assert both.status_code == 422 and "logged" in both.json()["errors"][0]
    assert client.post("/review/decide", json={"logged": record.id, "note": "n", "changes": []}).status_code == 422
    assert [n.id for n in log.notes(record.id)] == before


def test_the_new_routes_follow_the_services_authentication_as_the_decision_log_routes_do(tmp_path):
    from kineret_asp import evaluate
    from kineret_asp.decision_log import DecisionLog, Entry

    url = str(tmp_path / "decisions.sqlite3")
    record = DecisionLog(url).record(Entry("evaluate", opened(), evaluate(opened(), KB_DIR).to_dict()), issue_pa=True)
    client = TestClient(create_app(KB_DIR, token="s3cret", db=url))
    calls = [
        ("GET", f"/decisions/{record.pa_number}", None),
        ("GET", f"/decisions/{record.pa_number}/notes", None),
        ("POST", f"/decisions/{record.pa_number}/notes", {"changes": [ANSWER]}),
        ("POST", "/review/decide", {"logged": record.pa_number}),
        ("POST", "/review/page", {"logged": record.pa_number}),
    ]
    for method, path, body in calls:
        assert client.request(method, path, json=body).status_code == 401, path
        assert client.request(method, path, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
    assert DecisionLog(url).notes(record.id) == []  # refused: nothing kept
    for method, path, body in calls:
        assert client.request(method, path, json=body, headers={"Authorization": "Bearer s3cret"}).status_code in (200, 201), path
    assert len(DecisionLog(url).notes(record.id)) == 1


@pytest.mark.slow  # loads a KB copy
def test_the_words_of_opening_by_number_and_of_notes_come_from_the_kb(kb_copy, tmp_path):
    from kineret_asp import evaluate
    from kineret_asp.decision_log import DecisionLog, Entry

    words = kb_copy.parents[2] / "framework" / "words"
    for name, old, new in (
        ("workbench.lp", '"Or a prior-authorization number (or decision id) from the decision log"', '"Zeta number label"'),
        ("workbench.lp", '"Decision log: decision {id}, {number}, recorded {when}"', '"Zeta record {id}"'),
        ("workbench.lp", '"{when}, {reviewer}: 1 change; with it the decision is {decision}"', '"Zeta note by {reviewer}"'),
        ("interop.lp", '"no reviewer\'s note {note} on the logged decision {id}"', '"Zeta no note {note}"'),
    ):
        path = words / name
        assert old in path.read_text(), old
        path.write_text(path.read_text().replace(old, new))
    url = str(tmp_path / "decisions.sqlite3")
    record = DecisionLog(url).record(Entry("evaluate", opened(), evaluate(opened(), KB_DIR).to_dict()))
    client = TestClient(create_app(kb_copy.parents[2], db=url))
    assert "Zeta number label" in client.get("/review").text
    client.post(f"/decisions/{record.id}/notes", json={"changes": [ANSWER], "reviewer": "nurse.z"})
    answer = client.post("/review/decide", json={"logged": record.id}).json()
    assert f"Zeta record {record.id}" in answer["section"] and answer["notes"][0]["line"] == "Zeta note by nurse.z"
    assert client.post("/review/page", json={"logged": record.id, "note": "x"}).json()["errors"] == ["Zeta no note x"]


# --- the browser ----------------------------------------------------------------------------------


class Browser:
    """Headless Chromium driven through the DevTools protocol over a pipe (fd 3 in, fd 4 out)."""

    def __init__(self, profile: Path):
        to_browser_r, self._write = os.pipe()
        self._read, from_browser_w = os.pipe()

        def fds() -> None:
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        command = chromium_command(profile, "--remote-debugging-pipe", "about:blank")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=fds, close_fds=False)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._id = 0
        self.session = None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method: str, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    assert "error" not in reply, reply["error"]
                    return reply["result"]
            chunk = os.read(self._read, 1 << 20)
            assert chunk, "Chromium closed its pipe"
            self._buffer += chunk
        raise AssertionError(f"no answer to {method} within 60 s")

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait(self, expression: str, seconds: float = 60.0):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"never true: {expression}")

    def key(self, name: str, code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=name, code=name, windowsVirtualKeyCode=code, text="\r" if kind == "keyDown" and name == "Enter" else "")

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]))

    def close(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        os.close(self._read)
        os.close(self._write)


ACCESSIBILITY = r"""(() => {
  const problems = [];
  const name = (el) => (el.getAttribute('aria-label') || '').trim() || (el.getAttribute('aria-labelledby') || '').split(/\s+/).map((id) => (document.getElementById(id) || {}).textContent || '').join(' ').trim()
    || Array.from(el.labels || []).map((l) => l.textContent).join(' ').trim();
  if (!document.documentElement.lang) problems.push('html has no lang');
  if (!document.title.trim()) problems.push('page has no title');
  if (document.querySelectorAll('main').length !== 1) problems.push('not exactly one main landmark');
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  let level = 0;
  for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
    const n = Number(h.tagName[1]);
    if (n > level + 1) problems.push('heading level skipped at ' + h.tagName + ': ' + h.textContent);
    if (!h.textContent.trim()) problems.push('empty heading ' + h.tagName);
    level = n;
  }
  const ids = new Map();
  for (const el of document.querySelectorAll('[id]')) ids.set(el.id, (ids.get(el.id) || 0) + 1);
  for (const [id, n] of ids) if (n > 1) problems.push('duplicate id ' + id);
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) if (!name(el)) problems.push('control without a label: ' + (el.id || el.name));
  for (const el of document.querySelectorAll('button, [role=button], a[href]')) if (!(el.textContent.trim() || name(el))) problems.push('control without text: ' + el.outerHTML.slice(0, 60));
  for (const el of document.querySelectorAll('[aria-describedby], [aria-labelledby]')) {
    for (const id of ((el.getAttribute('aria-describedby') || '') + ' ' + (el.getAttribute('aria-labelledby') || '')).split(/\s+/).filter(Boolean)) if (!document.getElementById(id)) problems.push('reference to a missing id ' + id);
  }
  for (const f of document.querySelectorAll('fieldset')) if (!f.querySelector(':scope > legend')) problems.push('fieldset without a legend');
  for (const el of document.querySelectorAll('[tabindex]')) if (Number(el.getAttribute('tabindex')) > 0) problems.push('positive tabindex on ' + el.tagName);
  for (const el of document.querySelectorAll('[onclick], div[role=button], span[role=button]')) problems.push('a click target that is not a button: ' + el.tagName);
  for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) problems.push('image without alt');
  for (const el of document.querySelectorAll('[role]')) if (!['alert', 'status', 'button', 'region', 'list', 'listitem'].includes(el.getAttribute('role'))) problems.push('unexpected role ' + el.getAttribute('role'));
  return problems;
})()"""
"""A small offline stand-in for axe-core's structural rules (what it covers: one lang, title, main and h1; no skipped
heading level; unique ids; every input, select and textarea named by a label or ARIA; every button and link with text;
ARIA references that resolve; a legend for every fieldset; no positive tabindex; no click handler on a non-button; alt
on images; only known roles). Colour contrast and the reading of the page by a screen reader are not checked."""


def serve_here(tmp_path: Path, db: str | None = None):
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(create_app(KB_DIR, db=db), log_level="warning", access_log=False))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # a thread of the test process
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, thread, sock, sock.getsockname()[1]


@pytest.mark.slow  # starts Chromium
@pytest.mark.skipif(chromium() is None, reason=INSTALL)
def test_a_reviewer_opens_the_unclassed_drug_case_answers_the_question_and_sees_approved(tmp_path):
    server, thread, sock, port = serve_here(tmp_path)
    browser = Browser(tmp_path / "profile")
    try:
        browser.call("Emulation.setDeviceMetricsOverride", width=1200, height=900, deviceScaleFactor=1, mobile=False)
        browser.call("Page.navigate", url=f"http://127.0.0.1:{port}/review")
        browser.wait("document.body && document.body.dataset.ready === 'true'")
        assert browser.js(ACCESSIBILITY) == [], "accessibility problems on the empty page"
        # open the request: the case pasted, Open pressed from the keyboard
        browser.js(f"document.getElementById('wb-case').value = {json.dumps(json.dumps(opened()))}; document.querySelector('#wb-open button').focus(); true")
        browser.key("Enter", 13)
        browser.wait("document.querySelector('#wb-review .decision') !== null")
        assert browser.js("document.querySelector('#wb-review .decision').dataset.decision") == "undetermined"
        first = browser.js("Array.from(document.querySelectorAll('#wb-review h3, #wb-review li[data-criterion]')).map((e) => e.textContent)")
        ask = browser.js("document.querySelector('#wb-review h3.ask').textContent")
        assert ask == "What to ask the prescriber"
        # "What to ask the prescriber" with the question about the drug, before any criterion of the tree
        at = first.index(ask)
        assert "zorbitrex" in first[at + 1] and first[at + 1].startswith("NC.2") and "Criteria" in first[at + 2 :]
        browser.screenshot(tmp_path / "1-opened.png")
        assert browser.js(ACCESSIBILITY) == [], "accessibility problems on the opened case"
        # answer it through the form made from the schema: drug_categories, zorbitrex is another kind of drug
        form = "form.change[data-op=add][data-field=drug_categories]"
        browser.js(f"document.querySelector('{form} input[name=drug]').focus(); true")
        browser.call("Input.insertText", text="zorbitrex")
        browser.js(f"const s = document.querySelector('{form} select[name=category]'); s.value = 'other'; document.querySelector('{form} button').focus(); true")
        browser.key("Enter", 13)
        browser.wait("document.querySelector('#wb-review .decision').dataset.decision === 'approved'")
        assert browser.js("document.getElementById('wb-status').textContent") == "Decision: APPROVED for up to 12 months"
        assert browser.js("document.querySelector('#wb-review ul.blocking').textContent.trim()") == "Nothing: the case is approved as it is."
        assert browser.js("Array.from(document.querySelectorAll('#wb-change-list li')).map((e) => e.textContent)") == ['add drug_categories {"drug":"zorbitrex","category":"other"}']
        browser.screenshot(tmp_path / "2-approved.png")
        assert browser.js(ACCESSIBILITY) == [], "accessibility problems after the change"
        # print: the page as printed shows the review, not the controls
        pdf = base64.b64decode(browser.call("Page.printToPDF", printBackground=False)["data"])
        (tmp_path / "review.pdf").write_bytes(pdf)
        assert pdf.startswith(b"%PDF") and len(pdf) > 1000
        browser.call("Emulation.setEmulatedMedia", media="print")
        assert browser.js("getComputedStyle(document.getElementById('wb-changes')).display") == "none"
        assert browser.js("getComputedStyle(document.getElementById('wb-review')).display") != "none"
    finally:
        browser.close()
        server.should_exit = True
        thread.join(30)
        sock.close()
    for name in ("1-opened.png", "2-approved.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow  # starts Chromium
@pytest.mark.skipif(chromium() is None, reason=INSTALL)
def test_a_reviewer_opens_a_logged_request_by_its_number_saves_a_note_and_reapplies_it(tmp_path):
    """The same review from the decision log: open by prior-authorization number, answer, save the change set beside the
    logged request, open it again and re-apply the note. Keeps ``3-logged.png``, ``4-noted.png`` and ``noted.pdf``."""
    from kineret_asp import evaluate
    from kineret_asp.decision_log import DecisionLog, Entry

    url = str(tmp_path / "decisions.sqlite3")
    log = DecisionLog(url)
    record = log.record(Entry("cds:order-sign", opened(), evaluate(opened(), KB_DIR).to_dict(), "hook-1", "Patient/p1"), issue_pa=True)
    row = raw_row(log, record.id)
    server, thread, sock, port = serve_here(tmp_path, url)
    browser = Browser(tmp_path / "profile")

    def open_number(number: str) -> None:
        browser.js("document.getElementById('wb-number').value = ''; document.getElementById('wb-number').focus(); true")
        browser.call("Input.insertText", text=number)
        browser.js("document.querySelector('#wb-open-logged button').focus(); true")
        browser.key("Enter", 13)

    try:
        browser.call("Emulation.setDeviceMetricsOverride", width=1200, height=900, deviceScaleFactor=1, mobile=False)
        browser.call("Page.navigate", url=f"http://127.0.0.1:{port}/review")
        browser.wait("document.body && document.body.dataset.ready === 'true'")
        # an unknown number: the server's line, in the page
        open_number("IP0243-20240101-NOSUCHNUMBER")
        browser.wait("document.getElementById('wb-errors').textContent.includes('NOSUCHNUMBER')")
        assert "no decision with the id or prior authorization number IP0243-20240101-NOSUCHNUMBER" in browser.js("document.getElementById('wb-errors').textContent")
        assert browser.js("document.getElementById('wb-changes').hidden") is True  # nothing opened
        # the logged request, by its number
        open_number(record.pa_number)
        browser.wait("document.querySelector('#wb-review .decision') !== null")
        assert browser.js("document.querySelector('#wb-review .decision').dataset.decision") == "undetermined"
        assert browser.js("document.getElementById('wb-errors').textContent") == ""
        assert record.pa_number in browser.js("document.getElementById('wb-logged').textContent") and browser.js("document.getElementById('wb-logged').hidden") is False
        assert browser.js("document.getElementById('wb-no-notes').hidden") is False
        assert "zorbitrex" in browser.js("document.querySelector('#wb-review h3.ask').nextElementSibling.textContent")
        browser.screenshot(tmp_path / "3-logged.png")
        assert browser.js(ACCESSIBILITY) == [], "accessibility problems on the logged request"
        # answer the question, then save the change set as a reviewer's note
        form = "form.change[data-op=add][data-field=drug_categories]"
        browser.js(f"document.querySelector('{form} input[name=drug]').focus(); true")
        browser.call("Input.insertText", text="zorbitrex")
        browser.js(f"document.querySelector('{form} select[name=category]').value = 'other'; document.querySelector('{form} button').focus(); true")
        browser.key("Enter", 13)
        browser.wait("document.querySelector('#wb-review .decision').dataset.decision === 'approved'")
        browser.js("document.getElementById('wb-reviewer').focus(); true")
        browser.call("Input.insertText", text="nurse.chromium")
        browser.js("document.querySelector('#wb-save button').focus(); true")
        browser.key("Enter", 13)
        browser.wait("document.querySelectorAll('#wb-notes > li').length === 1")
        assert browser.js("document.getElementById('wb-save-status').textContent").startswith("Saved beside the logged request")
        assert "nurse.chromium" in browser.js("document.querySelector('#wb-notes > li').textContent")
        notes = log.notes(record.id)
        assert len(notes) == 1 and notes[0].reviewer == "nurse.chromium" and notes[0].changes == [ANSWER] and notes[0].outcome == "approved"
        assert raw_row(log, record.id) == row  # the logged request and decision untouched
        browser.screenshot(tmp_path / "4-noted.png")
        assert browser.js(ACCESSIBILITY) == [], "accessibility problems with a note listed"
        # open it again: the logged request as it was, the note listed; re-apply it and print
        open_number(record.pa_number)
        browser.wait("document.querySelector('#wb-review .decision').dataset.decision === 'undetermined' && document.querySelectorAll('#wb-change-list li').length === 0")
        assert browser.js("document.querySelectorAll('#wb-notes > li').length") == 1
        browser.js("document.querySelector('#wb-notes > li button').focus(); true")
        browser.key("Enter", 13)
        browser.wait("document.querySelector('#wb-review .decision').dataset.decision === 'approved'")
        assert browser.js("Array.from(document.querySelectorAll('#wb-change-list li')).map((e) => e.textContent)") == ['add drug_categories {"category":"other","drug":"zorbitrex"}']
        assert f"Decision log: decision {record.id}" in browser.js("document.querySelector('#wb-review footer').textContent")
        pdf = base64.b64decode(browser.call("Page.printToPDF", printBackground=False)["data"])
        (tmp_path / "noted.pdf").write_bytes(pdf)
        assert pdf.startswith(b"%PDF") and len(pdf) > 1000
    finally:
        browser.close()
        server.should_exit = True
        thread.join(30)
        sock.close()
    for name in ("3-logged.png", "4-noted.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
