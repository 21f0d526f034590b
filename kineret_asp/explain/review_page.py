"""A review page a reviewer can file: one case or several, as Markdown or as HTML.

Each case shows the policy and its version, the decision and where it goes,
what blocks approval, the criteria tree with met/unmet marks and the
evidence under each criterion, the reasons, what is missing and the notes.
Every word comes from the KB (``text/2`` and the decision's own words); this
module only lays them out. The HTML page is self-contained: its style is
inline, and it loads nothing.

Everything printed passes through :func:`~kineret_asp.safetext.safe_html` or
:func:`~kineret_asp.safetext.safe_markdown` (KB words included: they are text, never markup).
A value from a case (an id, a file name, a drug or gene name) can hold a
control character, a Unicode line or paragraph separator, or markup; each
is shown, never obeyed: the first two are written as visible escapes
(``\\u2028``), the last is escaped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from ..decisions.decision import CriterionResult, Decision, header_facts, node_notes, verdict
from ..templates import fill
from ..safetext import safe_html, safe_markdown

if TYPE_CHECKING:  # pragma: no cover
    from .missing import Missing
    from ..cases.case import Case
    from ..knowledge.base import KnowledgeBase

MARKDOWN, HTML = "markdown", "html"
FORMATS = (MARKDOWN, HTML)
_SLOT = re.compile(r"(\{\w+\})")


@dataclass(frozen=True)
class ReviewCase:
    """What one case's section shows."""

    case: "Case"
    decision: Decision
    missing: Optional["Missing"] = None
    missing_unavailable: bool = False


class _Page:
    """The layout of one format: how headings, lines, lists and marks are written."""

    def __init__(self, kb: "KnowledgeBase", escape: Callable[[Any], str]):
        self.kb = kb
        self.vocab = kb.vocabulary
        self.esc = escape

    def word(self, key: str, **values: Any) -> str:
        """A KB word with its values filled in, every part escaped (its placeholders kept)."""
        template = "".join(part if _SLOT.fullmatch(part) else self.esc(part) for part in _SLOT.split(self.vocab.words.get(key, key)))
        return fill(template, {k: self.esc(v) for k, v in values.items()})

    def title(self, decision: Decision) -> str:
        v = self.vocab
        return self.word("report_title", policy=v.policy_id, title=v.title, drug=v.drug_name, effective=decision.effective_date)

    def case_heading(self, decision: Decision) -> str:
        return self.word("case_line", id=decision.id or self.vocab.word("no_id"), source=decision.source)

    def verdict(self, decision: Decision) -> str:
        return self.word("verdict_line", verdict=verdict(decision, self.vocab))

    def route(self, decision: Decision) -> str:
        return self.word("route_line", route=decision.route, text=self.vocab.route_texts.get(decision.route, decision.route))

    def blocking(self, decision: Decision) -> list[tuple[str, str]]:
        """What blocks approval, as (id, text), escaped: a criterion in the policy's words, an undetermined fact as its question."""
        criteria = self.vocab.criteria

        def text(cid: str) -> str:
            if cid in criteria:
                return criteria[cid].text
            questions = [u.text for u in decision.undetermined if u.id == cid]
            return " ".join(questions) if questions else cid

        return [(self.esc(cid), self.esc(text(cid))) for cid in decision.blocking]

    def undetermined_lines(self, decision: Decision) -> list[tuple[str, str, str]]:
        """The facts the case does not establish, as (id, field, question), escaped."""
        return [(self.esc(u.id), self.esc(u.field), self.esc(u.text)) for u in decision.undetermined]

    def evidence_lines(self, decision: Decision, node: CriterionResult) -> list[str]:
        lines = [self.word("note_line", text=note) for note in node_notes(decision, node)]
        lines += [self.word("evidence_line", field=e.field, subject=e.subject, status=e.text) for e in node.evidence]
        return lines

    def missing_lines(self, item: ReviewCase) -> list[tuple[int, str]]:
        """What is missing, as (depth, line): the options, each requirement, each alternative."""
        from .missing import option_counts, option_lines

        result = item.missing
        if item.missing_unavailable or result is None:
            return [(0, self.word("missing_unavailable"))]
        if result.status == "approved":
            return [(0, self.word("missing_approved"))]
        if result.status == "no_option":
            return [(0, self.word("missing_none"))] + [(1, f"{self.esc(b.id)} {self.esc(b.text)}") for b in result.blockers]
        out = [(0, self.word("missing_options", count=len(result.options)))]
        for n, option in enumerate(result.options, 1):
            out.append((1, self.word("missing_option", n=n, counts=option_counts(option, self.kb))))
            out.extend((2 + depth, self.esc(line)) for depth, line in option_lines(option, self.kb))
        return out


def _marks(kb: "KnowledgeBase") -> dict[bool, str]:
    return {True: kb.vocabulary.word("status_met"), False: kb.vocabulary.word("status_unmet")}


def render_markdown(items: Sequence[ReviewCase], kb: "KnowledgeBase") -> str:
    """The review page as Markdown: a title, then one section per case."""
    page = _Page(kb, safe_markdown)
    marks = _marks(kb)
    esc = page.esc
    out: list[str] = []
    if items:
        out += [f"# {page.title(items[0].decision)}", ""]
    for item in items:
        d, case = item.decision, item.case
        w = page.word
        out += [f"## {page.case_heading(d)}", ""]
        facts = header_facts(kb.vocabulary, case, kb)
        if facts:
            out += [esc(facts), ""]
        out += [f"### {w('decision_heading')}", "", f"**{page.verdict(d)}**  ", page.route(d), ""]
        out += [f"### {w('blocking_heading')}", ""]
        if d.blocking:
            out += [f"- **{cid}** {text}" for cid, text in page.blocking(d)]
        else:
            out.append(f"- {w('nothing_blocks')}")
        out.append("")
        if d.criteria:
            out += [f"### {w('criteria_heading')}", ""]

            def show(node: CriterionResult, depth: int) -> None:
                pad = "  " * depth
                out.append(f"{pad}- \\[{esc(marks[node.met])}\\] **{esc(node.id)}** {esc(node.text)}")
                for line in page.evidence_lines(d, node):
                    out.append(f"{pad}  - {line}")
                for child in node.children:
                    show(child, depth + 1)

            for root in d.criteria:
                show(root, 0)
            out.append("")
        if d.reasons:
            out += [f"### {w('reasons_heading')}", ""]
            for r in d.reasons:
                extra = r.details_text()
                out.append(f"- **{esc(r.id)}** {esc(r.text)}" + (f" ({esc(extra)})" if extra else ""))
            out.append("")
        if d.undetermined:
            out += [f"### {w('undetermined_heading')}", ""]
            out += [f"- **{rid}** ({where}) {question}" for rid, where, question in page.undetermined_lines(d)]
            out.append("")
        out += [f"### {w('missing_heading')}", ""]
        for depth, line in page.missing_lines(item):
            if depth == 0 or (depth == 1 and line[:1].isdigit()):
                out.append(line)  # a paragraph, or an option: its KB words number it ("1. ...")
            else:
                out.append(f"{' ' * (2 * depth - 1) if depth > 1 else ''}- {_unbullet(line)}")
        out.append("")
        if d.notes:
            out += [f"### {w('notes_heading')}", ""]
            out += [f"- **{esc(n.id)}** ({esc(n.field)}) {esc(n.text)}" for n in d.notes]
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _unbullet(line: str) -> str:
    """A KB line written as a bullet ("- ..."), without its bullet: the list supplies it."""
    return line[2:] if line.startswith("- ") else line


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; line-height: 1.45; color: #1b1b1b; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.2rem; border-top: 1px solid #ccc; padding-top: 1rem; } h3 { font-size: 1.05rem; }
.decision { font-weight: bold; } .route { color: #444; }
ul.tree, ul.tree ul { list-style: none; padding-left: 1.4rem; }
.mark { display: inline-block; min-width: 4.5rem; font-weight: bold; }
.met .mark { color: #176117; } .unmet > .mark { color: #a11; }
.id { font-weight: bold; margin-right: .4rem; }
.evidence, .note { color: #333; font-size: .92rem; }
""".strip()


def render_html(items: Sequence[ReviewCase], kb: "KnowledgeBase") -> str:
    """The review page as one self-contained HTML document."""
    page = _Page(kb, safe_html)
    marks = _marks(kb)
    esc = page.esc
    title = page.title(items[0].decision) if items else ""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{title}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>", f"<h1>{title}</h1>"]
    for n, item in enumerate(items, 1):
        d, case = item.decision, item.case
        w = page.word
        out.append(f'<section class="case" id="case-{n}">')
        out.append(f"<h2>{page.case_heading(d)}</h2>")
        facts = header_facts(kb.vocabulary, case, kb)
        if facts:
            out.append(f'<p class="facts">{esc(facts)}</p>')
        out.append(f"<h3>{w('decision_heading')}</h3>")
        out.append(f'<p class="decision" data-decision="{esc(d.decision)}">{page.verdict(d)}</p>')
        out.append(f'<p class="route" data-route="{esc(d.route)}">{page.route(d)}</p>')
        out.append(f"<h3>{w('blocking_heading')}</h3>")
        out.append('<ul class="blocking">')
        if d.blocking:
            out += [f'<li data-criterion="{cid}"><span class="id">{cid}</span> {text}</li>' for cid, text in page.blocking(d)]
        else:
            out.append(f"<li>{w('nothing_blocks')}</li>")
        out.append("</ul>")
        if d.criteria:
            out.append(f"<h3>{w('criteria_heading')}</h3>")
            out.append('<ul class="tree">')

            def show(node: CriterionResult) -> None:
                state = "met" if node.met else "unmet"
                out.append(f'<li class="{state}" data-criterion="{esc(node.id)}"><span class="mark">{esc(marks[node.met])}</span> <span class="id">{esc(node.id)}</span> {esc(node.text)}')
                lines = page.evidence_lines(d, node)
                if lines or node.children:
                    out.append("<ul>")
                    out.extend(f'<li class="evidence">{line}</li>' for line in lines)
                    for child in node.children:
                        show(child)
                    out.append("</ul>")
                out.append("</li>")

            for root in d.criteria:
                show(root)
            out.append("</ul>")
        if d.reasons:
            out.append(f"<h3>{w('reasons_heading')}</h3>")
            out.append('<ul class="reasons">')
            for r in d.reasons:
                extra = r.details_text()
                out.append(f'<li><span class="id">{esc(r.id)}</span> {esc(r.text)}' + (f" ({esc(extra)})" if extra else "") + "</li>")
            out.append("</ul>")
        if d.undetermined:
            out.append(f"<h3>{w('undetermined_heading')}</h3>")
            out.append('<ul class="undetermined">')
            out += [f'<li data-field="{where}"><span class="id">{rid}</span> ({where}) {question}</li>' for rid, where, question in page.undetermined_lines(d)]
            out.append("</ul>")
        out.append(f"<h3>{w('missing_heading')}</h3>")
        out += _html_missing(page.missing_lines(item))
        if d.notes:
            out.append(f"<h3>{w('notes_heading')}</h3>")
            out.append('<ul class="notes">')
            out += [f'<li class="note"><span class="id">{esc(n.id)}</span> ({esc(n.field)}) {esc(n.text)}</li>' for n in d.notes]
            out.append("</ul>")
        out.append("</section>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _html_missing(lines: list[tuple[int, str]]) -> list[str]:
    """(depth, line) as nested lists: depth 0 a paragraph, deeper lines list items."""
    out: list[str] = []
    depth = 0
    for level, line in lines:
        if level == 0:
            while depth:
                out.append("</li></ul>")
                depth -= 1
            out.append(f'<p class="missing">{line}</p>')
            continue
        if level > depth:
            out.extend('<ul class="missing">' for _ in range(level - depth))
            depth = level
        else:
            out.append("</li>")
            while depth > level:
                out.append("</ul></li>")
                depth -= 1
        out.append(f"<li>{_unbullet(line)}")
    while depth:
        out.append("</li></ul>")
        depth -= 1
    return out


def review_items(cases: Sequence["Case"], decisions: Sequence[Decision], kb: "KnowledgeBase", with_missing: bool = True) -> list[ReviewCase]:
    """Each case with its decision and, when asked, what is missing (computed here)."""
    from .missing import AbductionLimit, missing

    out = []
    for case, decision in zip(cases, decisions):
        if not with_missing:
            out.append(ReviewCase(case, decision))
            continue
        try:
            out.append(ReviewCase(case, decision, missing(case, kb)))
        except AbductionLimit:
            out.append(ReviewCase(case, decision, None, True))
    return out


def render_report(items: Sequence[ReviewCase], kb: "KnowledgeBase", fmt: str) -> str:
    """The review page in a format of :data:`FORMATS`."""
    return render_html(items, kb) if fmt == HTML else render_markdown(items, kb)
