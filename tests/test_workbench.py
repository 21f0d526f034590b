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

from .conftest import FACTS, KB_DIR
from .test_report import chromium

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


# --- the browser ----------------------------------------------------------------------------------


class Browser:
    """Headless Chromium driven through the DevTools protocol over a pipe (fd 3 in, fd 4 out)."""

    def __init__(self, profile: Path):
        to_browser_r, self._write = os.pipe()
        self._read, from_browser_w = os.pipe()

        def fds() -> None:
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        command = [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
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


def serve_here(tmp_path: Path):
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(create_app(KB_DIR), log_level="warning", access_log=False))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # a thread of the test process
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, thread, sock, sock.getsockname()[1]


@pytest.mark.slow  # starts Chromium
@pytest.mark.skipif(chromium() is None, reason="no Chromium on this machine: install it with .ci/install-browser (apt-get install chromium) to run the browser test")
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
