"""kineret-asp trace: every passage of the text cited or waived; check --strict; the literate page; text changes in diff."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from kineret_asp.author.check import check_kb
from kineret_asp.author.policy_text import check_sources
from kineret_asp.author.trace import text_changes, trace
from kineret_asp.author.trace_page import render_page
from kineret_asp.cli import main

from ..chromium import INSTALL, chromium, dump_dom
from ..conftest import KB_DIR, revise_source

DURATION_RULE = """% § Authorization Duration - "Initial approval duration is up to 12 months.
% Reauthorization approval duration is up to 12 months."
authorization_duration(initial, 12).
authorization_duration(continuation, 12)."""


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_trace_on_the_shipped_kb_cites_or_waives_every_passage(kb):
    t = trace(kb)
    assert t.total.passages == len(t.passages) > 200
    assert t.total.uncovered == 0 and t.uncovered() == [] and t.problems == []
    strict = {c.section.id for c in t.sections if c.section.strict}
    assert strict == {"overview", "criteria", "reauthorization", "duration", "not_covered", "appendix"}
    for c in t.sections:
        assert c.cited + c.waived == c.passages and c.covered == 100.0
    criteria = next(c for c in t.sections if c.section.id == "criteria")
    assert criteria.cited > criteria.waived  # the criteria are encoded, not waived
    # check --strict's reading of the text; the rest of check --strict, the tables' pinning, is a mutation run of the
    # version, left to the slow lane: test_revision_guide.py runs it on the shipped version's tables and examples
    # (0 errors), test_mutate.py on a copy that lacks an example
    assert [d for d in check_sources(kb, strict=True) if d.severity == "error"] == []


def test_trace_text_and_json(kb):
    text = run("trace", "--kb", str(KB_DIR))
    assert text.exit_code == 0
    lines = text.output.splitlines()
    assert lines[0].startswith("IP0243 Anakinra, effective 2024-06-01: ") and lines[0].endswith("IP0243-anakinra-2024-06-01.txt")
    assert re.match(r"SHA-256 [0-9a-f]{64}$", lines[1])
    assert re.match(r"section +passages +cited +waived +uncovered +covered$", lines[2])
    assert any(re.match(r"Medical Necessity Criteria \* +\d+ +\d+ +\d+ +0 +100\.0%$", l) for l in lines)
    assert re.match(r"All sections +\d+ +\d+ +\d+ +0 +100\.0%$", next(l for l in lines if l.startswith("All sections")))
    assert lines[-1] == "Every passage is cited by a rule or waived with a reason."
    data = json.loads(run("trace", "--kb", str(KB_DIR), "--format", "json").output)
    assert data["total"]["uncovered"] == 0 and data["source"]["sha256"] == data["source"]["declared_sha256"]
    (p,) = [p for p in data["passages"] if p["label"] == "3.A.i"]
    assert p["status"] == "cited" and any(c["kind"] == "words" and c["ids"] == ["3.A.i"] for c in p["citations"])
    waived = [p for p in data["passages"] if p["status"] == "waived"]
    assert waived and all(p["waivers"] and p["waivers"][0]["words"] for p in waived)
    assert run("trace", "--kb", str(KB_DIR), "--format", "json").output == run("trace", "--kb", str(KB_DIR), "--format", "json").output


@pytest.mark.slow  # check --strict, trace and diff over the case space on KB copies; the fast lane keeps trace on the shipped KB and text_changes
def test_removing_the_rule_that_cites_a_passage_makes_strict_fail_and_trace_list_it(kb_copy):
    path = kb_copy / "reauthorization.lp"
    text = path.read_text()
    assert DURATION_RULE in text
    path.write_text(text.replace(DURATION_RULE, "% § Authorization Duration - approvals last a year.\nauthorization_duration(initial, 12).\nauthorization_duration(continuation, 12)."))
    assert check_kb(kb_copy).errors == 0  # the KB is sound; only the text is no longer accounted for
    strict = [d for d in check_kb(kb_copy, strict=True).diagnostics if d.severity == "error"]
    assert [d.code for d in strict] == ["coverage", "coverage"]
    assert all("Authorization Duration" in d.message and "neither cited by a rule nor waived" in d.message for d in strict)
    assert strict[0].file.endswith("IP0243-anakinra-2024-06-01.txt") and "Initial approval duration is up to 12 months." in strict[0].message
    result = run("check", "--kb", str(kb_copy), "--strict")
    assert result.exit_code == 1 and result.output.strip().splitlines()[-1].startswith("2 error(s), 0 warning(s) (KB: ")
    assert run("check", "--kb", str(kb_copy)).exit_code == 0
    listed = run("trace", "--kb", str(kb_copy))
    assert listed.exit_code == 0
    assert "Passages neither cited by a rule nor waived:" in listed.output
    assert "Authorization Duration (line 82): Initial approval duration is up to 12 months." in listed.output
    assert re.search(r"Authorization Duration \* +2 +0 +0 +2 +0\.0%", listed.output)


def test_trace_without_a_declared_text_fails_cleanly(kb_copy):
    path = kb_copy / "policy.lp"
    path.write_text(path.read_text().replace('policy_source("source/', '% policy_source("source/'))
    result = run("trace", "--kb", str(kb_copy))
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1 and "declares no policy text" in result.output


# --- the literate page ------------------------------------------------------------------------


class _Dom(HTMLParser):
    """The passages of a page: id -> label, status, and the texts and targets of their links; every element id."""

    def __init__(self):
        super().__init__()
        self.passages: dict[str, dict] = {}
        self.ids: set[str] = set()
        self.line_text: dict[str, str] = {}
        self._passage = None
        self._depth = 0
        self._link = None
        self._line = None
        self.scripts = 0
        self.external = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith("#"):
                self.external.append(a[key])
        if self._passage is not None and tag == "div":
            self._depth += 1
        if tag == "div" and "passage" in (a.get("class") or "").split():
            self._passage = a["id"]
            self._depth = 1
            self.passages[a["id"]] = {"label": a.get("data-label"), "status": a.get("data-status"), "links": [], "text": ""}
        if tag == "a" and self._passage is not None and "rule-link" in (a.get("class") or ""):
            self._link = [a["href"], ""]
        if tag == "span" and (a.get("class") == "line"):
            self._line = a["id"]
            self.line_text[self._line] = ""

    def handle_endtag(self, tag):
        if tag == "a" and self._link is not None:
            self.passages[self._passage]["links"].append(tuple(self._link))
            self._link = None
        if tag == "div" and self._passage is not None:
            self._depth -= 1
            if self._depth == 0:
                self._passage = None
        if tag == "pre":
            self._line = None

    def handle_data(self, data):
        if self._link is not None:
            self._link[1] += data
        elif self._passage is not None:
            self.passages[self._passage]["text"] += data
        if self._line is not None:
            self.line_text[self._line] += data


def _rule_lines(pattern: str, path: Path) -> list[int]:
    return [n for n, line in enumerate(path.read_text().splitlines(), 1) if re.search(pattern, line)]


def _check_page(html: str, kb) -> None:
    dom = _Dom()
    dom.feed(html)
    assert dom.scripts == 0 and dom.external == []  # self-contained
    (pid,) = [i for i, p in dom.passages.items() if p["label"] == "3.A.i"]
    passage = dom.passages[pid]
    assert passage["status"] == "cited"
    shown = {text for _, text in passage["links"]}
    rules = kb.path / "criteria" / "3_rheumatoid_arthritis.lp"
    deciding = _rule_lines(r'^met\("3\.A\.i"\) :-', rules)
    assert len(deciding) == 2
    for line in deciding:
        assert f"criteria/3_rheumatoid_arthritis.lp:{line}" in shown
    for href, text in passage["links"]:
        assert href[1:] in dom.ids  # every link lands on a line of the page
        if text.endswith(tuple(f":{line}" for line in deciding)):
            assert dom.line_text[href[1:]].lstrip("0123456789").startswith('met("3.A.i")')
    assert "ra/failure_too_short.json (3.A.i unmet)" in passage["text"]
    assert "ra/approved_employer_group.json (3.A.i met)" in passage["text"]
    assert "criteria_both_ways" in passage["text"]
    waived = [p for p in dom.passages.values() if p["status"] == "waived"]
    assert waived and all("Waived: " in p["text"] for p in waived)
    dosing = next(p for p in dom.passages.values() if "the dosage, frequency, duration of therapy" in p["text"])
    assert "the case format does not carry them" in dosing["text"]


def test_the_literate_page_links_the_rules_of_3_A_i(kb):
    html = render_page(trace(kb))
    _check_page(html, kb)
    assert html == render_page(trace(kb))  # the same bytes every time


@pytest.mark.slow  # starts Chromium
@pytest.mark.skipif(chromium() is None, reason=INSTALL)
def test_the_literate_page_renders_in_a_headless_browser(tmp_path, kb):
    page = tmp_path / "trace.html"
    result = run("trace", "--kb", str(KB_DIR), "--html", str(page))
    assert result.exit_code == 0 and page.exists()
    code, dom = dump_dom(page, tmp_path / "profile")
    assert code == 0
    assert dom.lstrip().lower().startswith("<!doctype html>") or dom.lstrip().startswith("<html")
    _check_page(dom, kb)


def test_trace_html_to_an_unwritable_place_fails_cleanly(tmp_path):
    result = run("trace", "--kb", str(KB_DIR), "--html", str(tmp_path / "no" / "such" / "page.html"))
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "cannot write" in result.output


# --- across versions ---------------------------------------------------------------------------


def test_an_unchanged_text_has_no_text_changes(kb):
    assert text_changes(kb, kb) == []


@pytest.mark.slow  # check --strict, trace and diff over the case space on KB copies; the fast lane keeps trace on the shipped KB and text_changes
def test_diff_lists_the_changed_passages_beside_the_decision_changes(kb_copy):
    """A new version moves 3.A.i from 3 to 6 months: diff names the changed sentence and the classes behind it."""
    revise_source(kb_copy, "Failure after 3 months to **ONE**", "Failure after 6 months to **ONE**")
    for path in sorted(kb_copy.rglob("*.lp")):
        text = path.read_text()
        changed = text.replace("after 3 months", "after 6 months").replace('minimum_trial_months("3.A.i", 3)', 'minimum_trial_months("3.A.i", 6)')
        if changed != text:
            path.write_text(changed)
    assert check_kb(kb_copy).errors == 0
    result = run("diff", str(KB_DIR), str(kb_copy), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    (change,) = data["text_changes"]
    assert [p["text"] for p in change["old"]] == [
        "i. Failure after 3 months to ONE conventional synthetic disease-modifying antirheumatic drug (csDMARD), unless contraindicated or intolerant to ALL csDMARDs"
    ]
    assert change["new"][0]["text"].startswith("i. Failure after 6 months") and change["new"][0]["place"] == "Medical Necessity Criteria 3.A.i"
    assert "3.A.i" in change["ids"]
    behind = [data["classes"][n - 1] for n in change["classes"]]
    assert behind and all(any(f["id"] == "3.A.i" for f in c["criteria"]) for c in behind)
    # patients approved before, and those only waiting on a drug the KB cannot class, now fail 3.A.i
    assert {(c["old"], c["new"]) for c in behind} == {("approved", "criteria_not_met"), ("undetermined", "criteria_not_met")}
    text = run("diff", str(KB_DIR), str(kb_copy)).output
    assert "1 change(s) in the policy's text:" in text
    assert "- P" in text and "i. Failure after 3 months" in text and "+ P" in text and "i. Failure after 6 months" in text
    assert "behind the decision changes: " + ", ".join(map(str, change["classes"])) in text


@pytest.mark.slow  # check --strict, trace and diff over the case space on KB copies; the fast lane keeps trace on the shipped KB and text_changes
def test_diff_of_a_kb_with_itself_prints_no_text_section(kb_copy):
    result = run("diff", str(KB_DIR), str(kb_copy))
    assert result.output.split("\n", 1)[1] == "no decision changes\n"  # after the line naming the two versions
    assert json.loads(run("diff", str(KB_DIR), str(kb_copy), "--format", "json").output)["text_changes"] == []


def test_the_authoring_guide_shows_the_trace_summary_of_the_shipped_kb(monkeypatch):
    from ..conftest import ROOT

    monkeypatch.chdir(ROOT)
    guide = (ROOT / "docs" / "authoring.md").read_text()
    shown = guide.split("$ kineret-asp trace\n", 1)[1].split("```", 1)[0]
    assert shown == run("trace").output
