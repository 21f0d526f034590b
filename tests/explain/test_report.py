"""Review pages a reviewer can file: Markdown and HTML, every word from the KB, every user string escaped.

The HTML page is also opened in a real headless browser (Chromium from the
system's packages; `.ci/install-browser` installs it), and the text of the
blocking criteria and the decision is read back from the page it renders.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from kineret_asp.cli import main

from ..chromium import INSTALL, chromium, dump_dom
from ..conftest import FACTS, ra_case

NO_RESPONSE = FACTS / "continuation" / "ra_no_response.json"
HOSTILE_ID = "<script>alert(1)</script> **bold** [x](javascript:alert(1)) \u2028fake line \x1b[31m"


def run(*args: str, input: str | None = None) -> str:
    result = CliRunner().invoke(main, list(args), input=input)
    assert result.exit_code == 0, result.output
    return result.output


class Elements(HTMLParser):
    """Text of the elements of a page, by class, and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.stack: list[tuple[str, set[str]]] = []
        self.text: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag not in ("meta", "br", "link", "img", "input"):
            self.stack.append((tag, set((attrs.get("class") or "").split())))

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        for _, classes in self.stack:
            for c in classes:
                self.text.setdefault(c, []).append(data)

    def joined(self, cls: str) -> str:
        return " ".join("".join(self.text.get(cls, [])).split())


def parse(page: str) -> Elements:
    p = Elements()
    p.feed(page)
    return p


def test_the_markdown_page_has_every_section_in_the_kbs_words():
    page = run("evaluate", str(NO_RESPONSE), "--format", "markdown")
    assert page.startswith("# Coverage review: IP0243 Anakinra (Kineret), effective 2024-06-01\n")
    for heading in ["### Decision", "### What to ask the prescriber", "### Criteria", "### Notes", "### Rules that decided"]:
        assert heading + "\n" in page
    assert "**Decision: CRITERIA NOT MET (blocking: R.B)**" in page
    assert "- **R.B** Ask for documentation that meets R.B: Beneficial response is demonstrated" in page
    assert "- \\[unmet\\] **R.B** Beneficial response is demonstrated" in page
    assert "evidence: medication\\_history\\[0\\] (methotrexate failure, 4 months): counted" in page
    assert "This would settle it:\n\n1. \\[1 addition\\]\n   - a documented beneficial response" in page


def test_the_missing_page_shows_a_question_apart_from_documentation():
    page = run("missing", str(FACTS / "ra" / "no_plan.json"), "--format", "markdown")
    assert "1. \\[1 question\\]\n   - question: state the plan type: Employer Group Plans or Individual and Family Plan" in page
    assert "**Decision: CRITERIA NOT MET (blocking: 3.C)**" in page


def test_the_html_page_is_self_contained_and_well_formed():
    page = run("evaluate", str(NO_RESPONSE), "--format", "html")
    tags = parse(page).tags
    assert [t for t, _ in tags if t in ("script", "link", "img", "iframe", "object", "embed")] == []
    assert not any(k in ("src", "href") for _, attrs in tags for k in attrs)
    assert "url(" not in page and "@import" not in page and "http" not in page
    assert page.startswith("<!DOCTYPE html>") and page.count("<html") == 1 and '<meta charset="utf-8">' in page
    p = parse(page)
    assert p.joined("decision") == "Decision: CRITERIA NOT MET (blocking: R.B)"
    assert p.joined("blocking") == "R.B Ask for documentation that meets R.B: Beneficial response is demonstrated"


def test_several_cases_make_one_page_with_a_section_each():
    page = run("evaluate", str(NO_RESPONSE), str(FACTS / "ra" / "approved_employer_group.json"), "--format", "html")
    assert page.count("<html") == 1 and page.count('<section class="case"') == 2
    p = parse(page)
    assert p.joined("blocking").split(" ")[:1] == ["R.B"] and "Nothing: the case is approved as it is." in p.joined("blocking")


def test_user_strings_are_escaped_in_both_pages(tmp_path):
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps({**ra_case(), "id": HOSTILE_ID}))
    html_page = run("evaluate", str(path), "--format", "html")
    assert "<script>" not in html_page and "&lt;script&gt;alert(1)&lt;/script&gt;" in html_page
    assert "\u2028" not in html_page and "\\u2028fake line" in html_page and "\x1b" not in html_page and "\\x1b[31m" in html_page
    assert [t for t, _ in parse(html_page).tags if t == "script"] == []
    md_page = run("evaluate", str(path), "--format", "markdown")
    assert "\\<script\\>alert(1)\\</script\\>" in md_page and "\\*\\*bold\\*\\*" in md_page and "\\[x\\](javascript:alert(1))" in md_page
    assert "\u2028" not in md_page and "\x1b" not in md_page


def test_a_drug_name_from_the_case_is_escaped_in_the_evidence(tmp_path):
    path = tmp_path / "case.json"
    path.write_text(json.dumps(ra_case([{"drug": "MTX & more", "outcome": "tried"}])))
    page = run("evaluate", str(path), "--format", "html")
    assert "MTX &amp; more tried): not counted: not a drug this policy names" in page


@pytest.mark.slow  # a KB copy derived anew for one page
def test_the_pages_words_come_from_the_kb(kb_copy):
    words = kb_copy.parent.parent.parent / "framework" / "words" / "answers.lp"
    text = words.read_text()
    assert 'text(blocking_heading, "What to ask the prescriber").' in text
    words.write_text(text.replace('text(blocking_heading, "What to ask the prescriber").', 'text(blocking_heading, "Standing between this case and approval").'))
    page = run("evaluate", str(NO_RESPONSE), "--format", "markdown", "--kb", str(kb_copy))
    assert "### Standing between this case and approval\n" in page and "What to ask the prescriber" not in page


@pytest.mark.slow  # starts Chromium
@pytest.mark.skipif(chromium() is None, reason=INSTALL)
def test_chromium_renders_the_blocking_criteria_and_the_decision(tmp_path):
    path = tmp_path / "review.html"
    path.write_text(run("evaluate", str(NO_RESPONSE), str(FACTS / "ra" / "no_plan.json"), "--format", "html"), encoding="utf-8")
    _, dom = dump_dom(path, tmp_path / "profile")
    assert "<body" in dom, "Chromium rendered no page"
    p = parse(dom)
    style = " ".join(p.text.get("", []))
    assert "display: none" not in dom and "visibility: hidden" not in dom, style
    decisions = [" ".join(t.split()) for t in "".join(p.text["decision"]).split("Decision:") if t.strip()]
    assert decisions == ["CRITERIA NOT MET (blocking: R.B)", "CRITERIA NOT MET (blocking: 3.C)"]
    assert (
        p.joined("blocking")
        == "R.B Ask for documentation that meets R.B: Beneficial response is demonstrated 3.C Ask for documentation that meets 3.C: Non-Preferred Product Criteria is met, refer to the below table(s) [Employer Group Plans, Individual and Family Plans]"
    )
    assert "state the plan type: Employer Group Plans or Individual and Family Plan" in p.joined("missing")


def test_every_word_the_program_asks_for_is_in_the_kb(kb):
    """A word missing from the KB would print its key: every key a renderer names must be a text/2 fact."""
    import re

    from ..conftest import ROOT

    keys = set()
    for path in (ROOT / "kineret_asp").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        keys |= set(re.findall(r"""(?:\bw|\bword)\(\s*["']([a-z_]+)["']""", source))
        for a, b in re.findall(r"""(?:\bw|\bword)\(\s*["']([a-z_]+)["'] if [^()]* else ["']([a-z_]+)["']""", source):
            keys |= {a, b}
    assert {"blocking_heading", "missing_question", "evidence_line", "report_title"} <= keys
    assert keys <= set(kb.vocabulary.words), sorted(keys - set(kb.vocabulary.words))
