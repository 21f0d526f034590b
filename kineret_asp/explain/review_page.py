"""A review page a reviewer can file: one case or several, as Markdown or as HTML.

Each case is laid out in the order a reviewer works: the decision and where
it goes; what to ask the prescriber (each blocking criterion, undetermined
fact or reason as a request, then the first few smallest sets of
documentation that would settle them); the criteria tree, where a row a met
ONE/TWO-of did not need is shown as not needed and each counted criterion
says how many of its rows are documented and which keys count as one; the
reasons and notes; and a footer naming the rules that decided (policy,
version and how it was chosen, KB folder, hashes, package version, date of
service).

Both formats are written from one model (:func:`review_model`), so they say
the same. Every word comes from the KB (``text/2``, ``needs_text/2`` and the
decision's own words); this module only lays them out. The HTML page is
self-contained: its style is inline, and it loads nothing.

Everything printed passes through :func:`~kineret_asp.safetext.safe_html` or
:func:`~kineret_asp.safetext.safe_markdown` (KB words included: they are text, never markup).
A value from a case (an id, a file name, a drug or gene name) can hold a
control character, a Unicode line or paragraph separator, or markup; each
is shown, never obeyed: the first two are written as visible escapes
(``\\u2028``), the last is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

from ..decisions.decision import CriterionResult, Decision, header_facts, node_notes, provenance_lines, verdict
from ..safetext import safe_html, safe_markdown
from ..templates import fill

if TYPE_CHECKING:  # pragma: no cover
    from ..cases.case import Case
    from ..knowledge.base import KnowledgeBase
    from .missing import Missing

MARKDOWN, HTML = "markdown", "html"
FORMATS = (MARKDOWN, HTML)
MET, UNMET, NOT_NEEDED = "met", "unmet", "not-needed"
ASK_CRITERION, ASK_QUESTION, ASK_REASON = "criterion", "question", "reason"
OPTIONS_SHOWN = 3
"""How many of the smallest documentation sets a page shows before saying how many more there are."""


@dataclass(frozen=True)
class ReviewCase:
    """What one case's section shows."""

    case: "Case"
    decision: Decision
    missing: Optional["Missing"] = None
    missing_unavailable: bool = False
    logged: tuple[str, ...] = ()  # the footer's lines naming the decision log's record the case was read from, and its changes


@dataclass(frozen=True)
class Row:
    """A criterion of the tree as the page shows it: met, unmet, or not needed."""

    id: str
    text: str
    state: str  # MET | UNMET | NOT_NEEDED
    mark: str
    count: str  # "1 of 2 required products documented (...)", or ""
    lines: tuple[str, ...]  # its notes and evidence
    children: tuple["Row", ...] = ()


@dataclass(frozen=True)
class Ask:
    """One request to the prescriber: a blocking criterion, an undetermined fact, or a reason that applies."""

    id: str
    kind: str  # ASK_CRITERION | ASK_QUESTION | ASK_REASON
    text: str
    field: str = ""


@dataclass(frozen=True)
class Section:
    """Everything one case's section says, in the KB's words, unescaped: both formats lay this out."""

    heading: str
    facts: str
    decision: str
    verdict: str
    route: str
    route_line: str
    asks: tuple[Ask, ...]
    nothing_to_ask: str
    settle: tuple[tuple[int, str], ...]  # (depth, line): depth 0 a paragraph, 1 an option, 2.. its requirements
    tree: tuple[Row, ...]
    reasons: tuple[tuple[str, str], ...]
    notes: tuple[tuple[str, str, str], ...]
    footer: tuple[str, ...]


@dataclass(frozen=True)
class Headings:
    decision: str
    ask: str
    criteria: str
    reasons: str
    notes: str
    provenance: str


def _headings(kb: "KnowledgeBase") -> Headings:
    w = kb.vocabulary.word
    return Headings(w("decision_heading"), w("blocking_heading"), w("criteria_heading"), w("reasons_heading"), w("notes_heading"), w("provenance_heading"))


def _asks(d: Decision, kb: "KnowledgeBase") -> list[Ask]:
    """What to ask, in the decision's order: the reasons, the blocking criteria, each undetermined fact."""
    v = kb.vocabulary
    out = [Ask(r.id, ASK_REASON, v.word("ask_reason", id=r.id, text=r.text) + (f" ({r.details_text()})" if r.details else "")) for r in d.reasons]
    undetermined_ids = {u.id for u in d.undetermined}
    for cid in d.blocking:
        if cid in v.criteria and cid not in undetermined_ids:
            out.append(Ask(cid, ASK_CRITERION, v.word("ask_criterion", id=cid, text=v.criteria[cid].text)))
    out += [Ask(u.id, ASK_QUESTION, v.word("ask_question", text=u.text, field=u.field), u.field) for u in d.undetermined]
    return out


def _settle(item: ReviewCase, kb: "KnowledgeBase") -> list[tuple[int, str]]:
    """The smallest documentation sets that would settle the requests: the first few, then how many more."""
    from .missing import option_counts, option_lines

    w = kb.vocabulary.word
    result = item.missing
    if item.missing_unavailable:
        return [(0, w("missing_unavailable"))]
    if result is None or result.status == "approved":
        return []
    if result.status == "no_option":
        return [(0, w("missing_none"))] + [(1, f"{b.id} {b.text}") for b in result.blockers]
    total = len(result.options)
    out = [(0, kb.vocabulary.counted("ask_options", total))]
    for n, option in enumerate(result.options[:OPTIONS_SHOWN], 1):
        out.append((1, w("missing_option", n=n, counts=option_counts(option, kb))))
        out.extend((2 + depth, line) for depth, line in option_lines(option, kb))
    if total > OPTIONS_SHOWN:
        more = total - OPTIONS_SHOWN
        out.append((0, kb.vocabulary.counted("ask_more_options", more, more=more, total=total)))
    return out


def _as_one(node: CriterionResult, kb: "KnowledgeBase") -> list[str]:
    """The keys of one group (key_group/3) that the node's counted evidence names more than once: they count as one."""
    v = kb.vocabulary
    seen: dict[tuple[str, str], list[str]] = {}
    for e in node.evidence:
        value = e.value
        if not e.counted or not isinstance(value, dict):
            continue
        for item in value.values():
            for vocabulary, groups in v.key_groups.items():
                for group, members in groups.items():
                    if isinstance(item, str) and item in members and item not in seen.setdefault((vocabulary, group), []):
                        seen[(vocabulary, group)].append(item)
    out = []
    for (vocabulary, group), keys in seen.items():
        if len(keys) > 1:
            names = v.word("and_join").join(v.label(vocabulary, k) for k in keys)
            out.append(v.word("count_as_one", names=names, group=v.group_names.get(vocabulary, {}).get(group, group)))
    return out


def _rows(d: Decision, kb: "KnowledgeBase") -> tuple[Row, ...]:
    v = kb.vocabulary
    marks = {MET: v.word("status_met"), UNMET: v.word("status_unmet"), NOT_NEEDED: v.word("status_not_needed")}
    needs = dict(d.needs)
    texts = {str(c): str(t) for c, t in kb.facts("needs_text", 2)}

    def count(node: CriterionResult) -> str:
        need = needs.get(node.id)
        declared = len(v.children.get(node.id, ()))
        if need is None or need < 2 or not node.children or need >= declared:
            return ""  # a ONE-of says itself; an ALL-of needs every row
        documented = sum(c.met for c in node.children)
        own = texts.get(node.id)
        line = fill(own, {"count": documented, "need": need}) if own is not None else v.word("needs_count", count=documented, need=need)
        alike = [p for child in node.children if child.met for p in _as_one(child, kb)]
        return line + (f" ({v.word('field_separator').join(alike)})" if alike else "")

    def row(node: CriterionResult, needed: bool) -> Row:
        state = MET if node.met else UNMET if needed else NOT_NEEDED
        lines = tuple(v.word("note_line", text=note) for note in node_notes(d, node))
        lines += tuple(v.word("evidence_line", field=e.field, subject=e.subject, status=e.text) for e in node.evidence)
        kids = tuple(row(k, needed and not node.met) for k in node.children)
        return Row(node.id, node.text, state, marks[state], count(node), lines, kids)

    return tuple(row(root, True) for root in d.criteria)


def _footer(item: ReviewCase, kb: "KnowledgeBase") -> tuple[str, ...]:
    from ..knowledge.schema import DATE_OF_SERVICE

    v = kb.vocabulary
    case = item.case
    name = case.schema.role(DATE_OF_SERVICE) if case.schema is not None else None
    date = case.get(name) if name else None
    return tuple(provenance_lines(item.decision, v, case)) + (v.word("date_of_service_line", date=date or v.word("no_date_of_service")),) + item.logged


def review_model(item: ReviewCase, kb: "KnowledgeBase") -> Section:
    """One case's section, unescaped, in the KB's words: what both formats show."""
    v = kb.vocabulary
    d = item.decision
    return Section(
        heading=v.word("case_line", id=d.id or v.word("no_id"), source=d.source),
        facts=header_facts(v, item.case, kb),
        decision=d.decision,
        verdict=v.word("verdict_line", verdict=verdict(d, v)),
        route=d.route,
        route_line=v.word("route_line", route=d.route, text=v.route_texts.get(d.route, d.route)),
        asks=tuple(_asks(d, kb)),
        nothing_to_ask=v.word("nothing_blocks"),
        settle=tuple(_settle(item, kb)),
        tree=_rows(d, kb),
        reasons=tuple((r.id, r.text + (f" ({r.details_text()})" if r.details else "")) for r in d.reasons),
        notes=tuple((n.id, n.field, n.text) for n in d.notes),
        footer=_footer(item, kb),
    )


def _title(items: Sequence[ReviewCase], kb: "KnowledgeBase") -> str:
    v = kb.vocabulary
    return v.word("report_title", policy=v.policy_id, title=v.title, drug=v.drug_name, effective=items[0].decision.effective_date) if items else ""


def render_markdown(items: Sequence[ReviewCase], kb: "KnowledgeBase") -> str:
    """The review page as Markdown: a title, then one section per case."""
    esc = safe_markdown
    h = _headings(kb)
    out: list[str] = []
    if items:
        out += [f"# {esc(_title(items, kb))}", ""]
    for item in items:
        s = review_model(item, kb)
        out += [f"## {esc(s.heading)}", ""]
        if s.facts:
            out += [esc(s.facts), ""]
        out += [f"### {esc(h.decision)}", "", f"**{esc(s.verdict)}**  ", esc(s.route_line), ""]
        out += [f"### {esc(h.ask)}", ""]
        out += [f"- **{esc(a.id)}** {esc(a.text)}" for a in s.asks] or [f"- {esc(s.nothing_to_ask)}"]
        out.append("")
        if s.settle:
            for depth, line in s.settle:
                if depth == 0:
                    out += [esc(line), ""] if out[-1] == "" else ["", esc(line), ""]
                elif depth == 1:
                    out.append(esc(line))  # an option: its KB words number it ("1. ...")
                else:
                    out.append(f"{' ' * (2 * (depth - 1) + 1)}- {esc(_unbullet(line))}")
            if out[-1] != "":
                out.append("")
        if s.tree:
            out += [f"### {esc(h.criteria)}", ""]

            def show(r: Row, depth: int) -> None:
                pad = "  " * depth
                out.append(f"{pad}- \\[{esc(r.mark)}\\] **{esc(r.id)}** {esc(r.text)}")  # noqa: B023 (show runs within this iteration)
                if r.count:
                    out.append(f"{pad}  - {esc(r.count)}")  # noqa: B023
                out.extend(f"{pad}  - {esc(line)}" for line in r.lines)  # noqa: B023
                for child in r.children:
                    show(child, depth + 1)

            for root in s.tree:
                show(root, 0)
            out.append("")
        if s.reasons:
            out += [f"### {esc(h.reasons)}", ""]
            out += [f"- **{esc(rid)}** {esc(text)}" for rid, text in s.reasons]
            out.append("")
        if s.notes:
            out += [f"### {esc(h.notes)}", ""]
            out += [f"- **{esc(nid)}** ({esc(where)}) {esc(text)}" for nid, where, text in s.notes]
            out.append("")
        out += [f"### {esc(h.provenance)}", ""]
        out += [esc(line) + "  " for line in s.footer[:-1]] + [esc(s.footer[-1]), ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _unbullet(line: str) -> str:
    """A KB line written as a bullet ("- ..."), without its bullet: the list supplies it."""
    return line[2:] if line.startswith("- ") else line


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; line-height: 1.45; color: #1b1b1b; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.2rem; border-top: 1px solid #ccc; padding-top: 1rem; } h3 { font-size: 1.05rem; }
.decision { font-weight: bold; } .route { color: #444; }
ul.blocking li { margin-bottom: .3rem; }
ul.tree, ul.tree ul { list-style: none; padding-left: 1.4rem; }
.mark { display: inline-block; min-width: 5.5rem; font-weight: bold; }
.met > .mark { color: #176117; } .unmet > .mark { color: #a11; } .not-needed > .mark { color: #666; font-weight: normal; }
.not-needed { color: #555; }
.id { font-weight: bold; margin-right: .4rem; }
.count { font-style: italic; }
.evidence, .note { color: #333; font-size: .92rem; }
footer.provenance { margin-top: 1.5rem; border-top: 1px solid #ddd; padding-top: .5rem; color: #444; font-size: .85rem; }
footer.provenance p { margin: .1rem 0; }
""".strip()


def render_html(items: Sequence[ReviewCase], kb: "KnowledgeBase") -> str:
    """The review page as one self-contained HTML document."""
    esc = safe_html
    h = _headings(kb)
    title = esc(_title(items, kb))
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{title}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>", "<main>", f"<h1>{title}</h1>"]
    for n, item in enumerate(items, 1):
        out += html_section(review_model(item, kb), h, n)
    out += ["</main>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


def html_section(s: Section, h: Headings, n: int) -> list[str]:
    """One case's section of the HTML page (the workbench shows the same)."""
    esc = safe_html
    out = [f'<section class="case" id="case-{n}">', f"<h2>{esc(s.heading)}</h2>"]
    if s.facts:
        out.append(f'<p class="facts">{esc(s.facts)}</p>')
    out.append(f"<h3>{esc(h.decision)}</h3>")
    out.append(f'<p class="decision" data-decision="{esc(s.decision)}">{esc(s.verdict)}</p>')
    out.append(f'<p class="route" data-route="{esc(s.route)}">{esc(s.route_line)}</p>')
    out.append(f'<h3 class="ask">{esc(h.ask)}</h3>')
    out.append('<ul class="blocking">')
    if s.asks:
        for a in s.asks:
            field = f' data-field="{esc(a.field)}"' if a.field else ""
            out.append(f'<li data-criterion="{esc(a.id)}" data-kind="{esc(a.kind)}"{field}><span class="id">{esc(a.id)}</span> {esc(a.text)}</li>')
    else:
        out.append(f"<li>{esc(s.nothing_to_ask)}</li>")
    out.append("</ul>")
    out += _html_missing([(depth, esc(line)) for depth, line in s.settle])
    if s.tree:
        out.append(f"<h3>{esc(h.criteria)}</h3>")
        out.append('<ul class="tree">')

        def show(r: Row) -> None:
            out.append(f'<li class="{r.state}" data-criterion="{esc(r.id)}"><span class="mark">{esc(r.mark)}</span> <span class="id">{esc(r.id)}</span> {esc(r.text)}')
            if r.count or r.lines or r.children:
                out.append("<ul>")
                if r.count:
                    out.append(f'<li class="count">{esc(r.count)}</li>')
                out.extend(f'<li class="evidence">{esc(line)}</li>' for line in r.lines)
                for child in r.children:
                    show(child)
                out.append("</ul>")
            out.append("</li>")

        for root in s.tree:
            show(root)
        out.append("</ul>")
    if s.reasons:
        out.append(f"<h3>{esc(h.reasons)}</h3>")
        out.append('<ul class="reasons">')
        out += [f'<li><span class="id">{esc(rid)}</span> {esc(text)}</li>' for rid, text in s.reasons]
        out.append("</ul>")
    if s.notes:
        out.append(f"<h3>{esc(h.notes)}</h3>")
        out.append('<ul class="notes">')
        out += [f'<li class="note"><span class="id">{esc(nid)}</span> ({esc(where)}) {esc(text)}</li>' for nid, where, text in s.notes]
        out.append("</ul>")
    out.append('<footer class="provenance">')
    out.append(f"<h3>{esc(h.provenance)}</h3>")
    out += [f"<p>{esc(line)}</p>" for line in s.footer]
    out.append("</footer>")
    out.append("</section>")
    return out


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


def review_items(cases: Sequence["Case"], decisions: Sequence[Decision], kb: Any, with_missing: bool = True) -> list[ReviewCase]:
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
