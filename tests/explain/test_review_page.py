"""The review page read the way a reviewer reads it: what to ask first, rows not needed, counts, provenance."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kineret_asp import evaluate_many
from kineret_asp.cases.load import load
from kineret_asp.cli import main
from kineret_asp.explain.review_page import render_html, render_markdown, review_items

from ..conftest import FACTS, KB_DIR, ROOT
from .test_report import parse

UNDETERMINED = FACTS / "drugs" / "unclassed_current_drug.json"
BRANDS_ONCE = FACTS / "ra" / "adalimumab_brands_count_once.json"
APPROVED = FACTS / "ra" / "approved_employer_group.json"


def page(*args: str, input: str | None = None) -> str:
    result = CliRunner().invoke(main, ["evaluate", *args], input=input)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_page_asks_the_undetermined_question_before_any_criterion():
    question = "Is zorbitrex a biologic or a targeted synthetic DMARD used for an inflammatory condition?"
    md = page(str(UNDETERMINED), "--format", "markdown")
    ask, tree = md.index("### What to ask the prescriber"), md.index("### Criteria")
    assert md.index("### Decision") < ask < md.index(question) < tree
    assert md.index("1. \\[1 addition\\]\n   - discontinuation of zorbitrex") < tree  # the smallest sets, before the tree
    html = page(str(UNDETERMINED), "--format", "html")
    assert html.index('class="ask"') < html.index(question) < html.index('class="tree"')
    asked = parse(html).joined("blocking")
    assert asked.startswith("NC.2 Ask: " + question) and asked.endswith("(current_medications[1])")


def test_a_blocking_criterion_is_a_request_with_the_documentation_that_settles_it():
    md = page(str(BRANDS_ONCE), "--format", "markdown")
    head = md[: md.index("### Criteria")]
    assert "- **3.C** Ask for documentation that meets 3.C: Non-Preferred Product Criteria is met" in head
    assert "This would settle it:\n\n1. \\[1 addition\\]\n   - documentation of failure, intolerance or contraindication to one of: Actemra SC, Cimzia, Enbrel, Rinvoq, Xeljanz/XR" in head


def test_rows_a_met_two_of_did_not_need_are_shown_as_not_needed_not_unmet():
    md = page(str(APPROVED), "--format", "markdown")
    assert "- \\[not needed\\] **3.C.A** A. Actemra SC" in md and "- \\[met\\] **3.C.C** C. Cimzia" in md
    assert "\\[unmet\\]" not in md
    p = parse(page(str(APPROVED), "--format", "html"))
    rows = {attrs["data-criterion"]: attrs["class"] for tag, attrs in p.tags if tag == "li" and "data-criterion" in attrs and attrs.get("class")}
    assert rows["3.C.A"] == rows["3.C.B"] == rows["3.C.E"] == rows["3.C.F"] == "not-needed"
    assert rows["3.C.C"] == rows["3.C.D"] == "met" and "unmet" not in rows.values()
    # an unmet row under an unmet TWO-of is still unmet: it is what is missing
    assert "- \\[unmet\\] **3.C.A** A. Actemra SC" in page(str(BRANDS_ONCE), "--format", "markdown")


def test_a_two_of_says_how_many_products_are_documented_and_which_count_as_one():
    md = page(str(BRANDS_ONCE), "--format", "markdown")
    assert "  - \\[unmet\\] **3.C** Non-Preferred" in md
    assert "    - 1 of 2 required products documented (Humira (by AbbVie) and Hyrimoz (by Sandoz/Novartis) count as one: Adalimumab product)" in md
    assert "    - 2 of 2 required products documented\n" in page(str(APPROVED), "--format", "markdown")
    assert parse(page(str(BRANDS_ONCE), "--format", "html")).joined("count").startswith("1 of 2 required products documented (Humira")
    assert "required documented" not in md  # an ALL-of and a ONE-of carry no count


def test_past_the_first_few_options_the_page_says_how_many_more():
    wide = {"id": "wide", "indication": "rheumatoid_arthritis", "plan": "employer_group"}
    md = page("-", "--format", "markdown", input=json.dumps(wide))
    head = md[: md.index("### Criteria")]
    assert "3. \\[" in head and "4. \\[" not in head
    assert "options (" in head and "in all): kineret-asp missing lists every one" in head


def test_every_example_case_page_names_its_rules_in_markdown_and_html():
    """The provenance footer, checked over every example case (decided without `missing`: the footer needs none)."""
    paths = sorted(p for p in FACTS.rglob("*.json") if not p.name.endswith(".case.json") and '"resourceType"' not in p.read_text()[:200])
    loaded = [load(p, KB_DIR) for p in paths]
    decisions = evaluate_many([item.case for item in loaded], KB_DIR)
    items = review_items([item.case for item in loaded], decisions, KB_DIR, with_missing=False)
    assert len(items) > 50
    kb = loaded[0].choice.kb
    for item in items:
        p = item.decision.provenance
        for text in (render_markdown([item], kb), render_html([item], kb)):
            footer = text[text.index("Rules that decided") :]
            for value in (f"Rules: {p.policy} version {p.version}..", p.rules_sha256, p.framework_sha256, f"kineret-asp {p.package_version}", "Date of service: "):
                assert value in footer, (item.decision.source, value)
            assert f"KB: {p.kb} (policies/IP0243/2024-06-01)" in footer.replace("\\_", "_")
            assert str(ROOT) not in footer and p.kb == "kb"  # the packaged KB is named relative to the project
