"""The literate view (``kineret-asp trace --html``): the policy's text beside its rules.

One self-contained HTML page (no script, no outside resource): the text,
passage by passage, each with

- the rules that quote it, each linked to its file and line (the rules
  themselves follow the text, with their line numbers);
- the example cases of the version (``cases/``, as ``test --coverage`` runs
  them) in which those rules' criteria applied, or their reasons were cited;
- the ``verify`` properties that read what those rules define;
- or the waiver that says why no rule cites it.

Every word of the page's frame is a ``text/2`` fact of the KB.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..engine.program import rule_signatures
from ..knowledge.base import KnowledgeBase
from ..knowledge.layout import FRAMEWORK
from .policy_text import Citation, Passage, paragraph_ids
from .trace import Trace, passage_ids

STYLE = """
body{font-family:Georgia,serif;max-width:70em;margin:2em auto;padding:0 1em;line-height:1.45;color:#1b1b1b}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #bbb}h3{margin-bottom:.3em}
table{border-collapse:collapse}td,th{padding:.2em .7em;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}
.passage{margin:.5em 0;padding:.3em .7em;border-left:.35em solid #ccc}
.passage.cited{border-color:#2e7d32}.passage.waived{border-color:#9e9e9e;color:#555}.passage.uncovered{border-color:#c62828;background:#fdecea}
.pid{font-family:monospace;font-size:.8em;color:#777;text-decoration:none;margin-right:.4em}
.label{font-weight:bold;margin-right:.3em}
.links{font-size:.85em;font-family:sans-serif;margin:.2em 0 0 1em}
.links div{margin:.1em 0}.links a{margin-right:.6em}
.rule{margin:1em 0}.rule pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap;font-size:.85em}
.rule .n{color:#999;display:inline-block;width:3.5em;user-select:none}
.rule .line:target{background:#fff3bf}
"""


@dataclass
class _Block:
    """A paragraph of a KB file that quotes the text: its lines, and the passages it cites."""

    id: str
    file: str
    shown: str
    lines: list[tuple[int, str]]
    passages: list[Passage] = field(default_factory=list)


def _shown(kb: KnowledgeBase, file: str) -> str:
    """A KB file as an author names it: ``framework/criteria.lp``, or relative to the version folder."""
    path = Path(file).resolve()
    for base, prefix in ((kb.path, ""), (kb.root / FRAMEWORK, FRAMEWORK + "/")):
        try:
            return prefix + path.relative_to(base).as_posix()
        except ValueError:
            continue
    return file


class _Page:
    def __init__(self, t: Trace):
        self.t = t
        self.kb = t.kb
        self.a = t.analysis
        self.word = self.kb.vocabulary.word
        self.files = {f: i for i, f in enumerate(dict.fromkeys([*self.kb.texts]))}
        self.blocks: dict[tuple[str, int], _Block] = {}
        self.cases = self._cases()
        self.properties = self._properties()

    # -- what the page links

    def _cases(self) -> dict[str, list[tuple[str, str]]]:
        """For each criterion or reason id, the example cases where it applied: (case, status)."""
        from .example_cases import run_case_tests

        folder = self.kb.path / "cases"
        out: dict[str, list[tuple[str, str]]] = {}
        if not folder.is_dir():
            return out
        report = run_case_tests([folder], self.kb)
        met, unmet = self.word("status_met"), self.word("status_unmet")
        for r in report.results:
            if r.decision is None:
                continue
            name = Path(r.path).resolve().relative_to(folder.resolve()).as_posix()
            for cid, is_met in r.decision.statuses().items():
                out.setdefault(cid, []).append((name, met if is_met else unmet))
            for reason in r.decision.reasons:
                out.setdefault(reason.id, []).append((name, r.decision.decision))
        return out

    def _properties(self) -> list[tuple[str, str, set]]:
        """Each property's file, name and the predicates it reads (with and without its copy argument)."""
        from .verify import declared_property, properties_of

        out = []
        for file, statements in sorted(properties_of(self.kb).items()):
            declared = declared_property(statements)
            reads = {sig for s in statements if s.node.ast_type.name == "Rule" for sig in rule_signatures(s.node)[1]}
            out.append((file, declared[0] if declared else file, reads))
        return out

    def _block(self, citation: Citation) -> _Block:
        q = citation.quote
        text = self.kb.texts.get(q.file, "")
        ids = paragraph_ids(text)
        para = ids[q.line] if q.line < len(ids) else -1
        key = (q.file, para)
        block = self.blocks.get(key)
        if block is None:
            lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if n < len(ids) and ids[n] == para]
            block = self.blocks[key] = _Block(f"R{len(self.blocks) + 1}", q.file, _shown(self.kb, q.file), lines)
        return block

    def _statement_links(self, citation: Citation) -> list[tuple[tuple[int, int], str, str]]:
        """((file number, line), file:line, the statement) for the rules a citation stands for."""
        q = citation.quote
        statements = [s for s in q.paragraph if s.node.ast_type.name == "Rule"]
        if q.kind == "words":
            statements = [s for s in statements if s.line <= q.line <= s.node.location.end.line] or statements
        fid = self.files.get(q.file, 0)
        shown = _shown(self.kb, q.file)
        return [((fid, s.line), f"{shown}:{s.line}", str(s.node)) for s in statements]

    def _reading(self, p: Passage, citations: list[Citation]) -> list[str]:
        """The properties that read what the citing rules define, or that quote the passage themselves."""
        defined = set()
        for c in citations:
            for s in c.quote.paragraph:
                if s.node.ast_type.name == "Rule":
                    defined |= rule_signatures(s.node)[0]
        widened = defined | {(n, a + 1) for n, a in defined}
        quoting = {c.quote.file for c in self.a.citations if p in c.passages and c.quote.part != "base"}
        return [name for file, name, reads in self.properties if reads & widened or file in quoting]

    # -- the page

    def passage(self, p: Passage) -> str:
        e = html.escape
        status = self.a.status(p)
        cited = self.a.cited(p)
        label = f'<span class="label">{e(p.label)}</span>' if p.label else ""
        out = [
            f'<div class="passage {status}" id="{p.id}" data-label="{e(p.label)}" data-status="{status}">',
            f'<p class="text"><a class="pid" href="#{p.id}">{p.id}</a>{label}{e(p.text)}</p>',
            '<div class="links">',
        ]
        if cited:
            found: dict[tuple[int, int], str] = {}
            for c in cited:
                block = self._block(c)
                if p not in block.passages:
                    block.passages.append(p)
                for (fid, line), where, statement in self._statement_links(c):
                    found.setdefault((fid, line), f'<a class="rule-link" href="#L{fid}-{line}" title="{e(statement)}">{e(where)}</a>')
            out.append(f'<div class="cited-by">{e(self.word("page_cited_by"))}: {"".join(link for _, link in sorted(found.items()))}</div>')
            ids = passage_ids(self.a, p)
            if ids:
                cases = [f"{name} ({cid} {state})" for cid in ids for name, state in self.cases.get(cid, [])]
                shown = "; ".join(e(c) for c in cases) if cases else e(self.word("page_no_cases"))
                out.append(f'<div class="cases">{e(self.word("page_cases"))}: {shown}</div>')
            reading = self._reading(p, cited)
            if reading:
                out.append(f'<div class="properties">{e(self.word("page_properties"))}: {", ".join(e(r) for r in reading)}</div>')
        for w in self.a.waived(p):
            out.append(f'<div class="waiver">{e(self.word("page_waived"))}: {e(w.words)} <span class="pid">({e(_shown(self.kb, w.file))}:{w.line})</span></div>')
        if status == "uncovered":
            out.append(f'<div class="uncovered-note">{e(self.word("page_uncovered"))}</div>')
        out.append("</div></div>")
        return "".join(out)

    def summary(self) -> str:
        e = html.escape
        heads = self.word("trace_columns").split("|")
        rows = ["<tr>" + "".join(f"<th>{e(h)}</th>" for h in heads) + "</tr>"]
        counts = [*self.t.sections, *([self.t.total] if self.t.total else [])]
        mark = self.word("trace_strict_mark")
        for c in counts:
            name = c.section.name + (f" {mark}" if c.section.strict else "")
            cells = [f'<a href="#S-{e(c.section.id)}">{e(name)}</a>' if c.section.id else e(name), c.passages, c.cited, c.waived, c.uncovered, f"{c.covered:.1f}%"]
            rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
        return f'<table id="coverage">{"".join(rows)}</table><p>{e(self.word("trace_strict_note"))}</p>'

    def rules(self) -> str:
        e = html.escape
        out = []
        for block in sorted(self.blocks.values(), key=lambda b: (self.files.get(b.file, 0), b.lines[0][0] if b.lines else 0)):
            fid = self.files.get(block.file, 0)
            first = block.lines[0][0] if block.lines else 0
            lines = "\n".join(f'<span class="line" id="L{fid}-{n}"><span class="n">{n}</span>{e(text)}</span>' for n, text in block.lines)
            back = " ".join(f'<a href="#{p.id}">{p.id}</a>' for p in block.passages)
            out.append(f'<div class="rule" id="{block.id}"><h3>{e(block.shown)}:{first}</h3><pre>{lines}</pre><p>{e(self.word("page_back"))}: {back}</p></div>')
        return "".join(out)

    def render(self) -> str:
        e = html.escape
        v = self.kb.vocabulary
        a = self.a
        title = self.word("page_title", policy=v.policy_id, title=v.title)
        body = []
        current: Optional[str] = None
        for p in self.t.passages:
            if p.top.id != current:
                if current is not None:
                    body.append("</section>")
                current = p.top.id
                body.append(f'<section class="source-section" id="S-{e(p.top.id)}"><h3>{e(p.top.name)}</h3>')
            body.append(self.passage(p))
        if current is not None:
            body.append("</section>")
        source = a.declared
        header = self.word("trace_header", policy=v.policy_id, title=v.title, effective=v.effective_from, file=source.file if source else "")
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{e(title)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{e(title)}</h1><p>{e(self.word('page_intro'))}</p><p>{e(header)}<br>{e(self.word('trace_hash', sha256=a.sha256))}</p></header>"
            f'<section id="summary"><h2>{e(self.word("page_summary"))}</h2>{self.summary()}</section>'
            f'<main id="text"><h2>{e(self.word("page_text"))}</h2>{"".join(body)}</main>'
            f'<section id="rules"><h2>{e(self.word("page_rules"))}</h2>{self.rules()}</section>'
            "</body></html>\n"
        )


def render_page(t: Trace) -> str:
    """The literate page of a trace, as one HTML document."""
    return _Page(t).render()
