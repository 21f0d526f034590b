"""``kineret-asp trace``: where each passage of the policy's text is encoded.

Every passage of a version's text (:mod:`kineret_asp.author.policy_text`) is *cited*
(a quotation in a rule's paragraph finds it), *waived* (the KB says why no
rule cites it) or *uncovered*. :func:`trace` counts them per section;
:func:`render_text` and :meth:`Trace.to_dict` report them;
:mod:`kineret_asp.author.trace_page` writes them as one page. :func:`text_changes`
compares the texts of two versions, passage by passage, for ``diff``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from clingo.ast import ASTType

from ..errors import Diagnostic, KbError
from ..knowledge.base import KnowledgeBase
from ..knowledge.layout import display_path
from .policy_text import Citation, Passage, Section, SourceAnalysis, Statement, analyse

STATUSES = ("cited", "waived", "uncovered")


@dataclass
class SectionCount:
    """How many passages of a top-level section (its tables included) are cited, waived, uncovered."""

    section: Section
    passages: int = 0
    cited: int = 0
    waived: int = 0
    uncovered: int = 0

    def add(self, status: str) -> None:
        self.passages += 1
        setattr(self, status, getattr(self, status) + 1)

    @property
    def covered(self) -> float:
        """The share of passages cited or waived, in percent (100 for a section without passages)."""
        return 100.0 * (self.cited + self.waived) / self.passages if self.passages else 100.0

    def to_dict(self) -> dict:
        return {
            "id": self.section.id,
            "name": self.section.name,
            "strict": self.section.strict,
            "passages": self.passages,
            "cited": self.cited,
            "waived": self.waived,
            "uncovered": self.uncovered,
            "covered_percent": round(self.covered, 1),
        }


@dataclass
class Trace:
    """A version's text, passage by passage, with what cites or waives each."""

    kb: KnowledgeBase
    analysis: SourceAnalysis
    sections: list[SectionCount] = field(default_factory=list)
    total: Optional[SectionCount] = None

    @property
    def passages(self) -> list[Passage]:
        return self.analysis.source.passages if self.analysis.source is not None else []

    @property
    def problems(self) -> list[Diagnostic]:
        return [d for d in self.analysis.diagnostics if d.severity == "error"]

    def status(self, passage: Passage) -> str:
        return self.analysis.status(passage)

    def uncovered(self) -> list[Passage]:
        return self.analysis.uncovered()

    def to_dict(self) -> dict:
        a, v = self.analysis, self.kb.vocabulary
        declared = a.declared
        return {
            "policy": v.policy_id,
            "title": v.title,
            "effective_date": v.effective_from,
            "source": {
                "file": declared.file if declared else None,
                "path": display_path(a.source.path) if a.source else None,
                "sha256": a.sha256 or None,
                "declared_sha256": declared.sha256 if declared else None,
                "title": declared.title if declared else None,
                "number": declared.number if declared else None,
                "effective": declared.effective if declared else None,
            },
            "problems": [d.to_dict() for d in self.problems],
            "sections": [s.to_dict() for s in self.sections],
            "total": self.total.to_dict() if self.total else None,
            "passages": [self.passage_dict(p) for p in self.passages],
        }

    def passage_dict(self, p: Passage) -> dict:
        a = self.analysis
        return {
            "id": p.id,
            "section": p.section.id,
            "top_section": p.top.id,
            "place": p.place(),
            "label": p.label,
            "line": p.line,
            "text": p.text,
            "status": a.status(p),
            "citations": [citation_dict(c) for c in a.cited(p)],
            "checked_by": [citation_dict(c) for c in a.citations if p in c.passages and c.quote.part != "base"],
            "waivers": [{"reason": w.reason, "words": w.words, "file": w.file, "line": w.line} for w in a.waived(p)],
        }


def citation_dict(c: Citation) -> dict:
    q = c.quote
    return {"file": q.file, "line": q.line, "column": q.column, "quote": q.text, "kind": q.kind, "part": q.part, "ids": list(q.ids)}


def trace(kb: KnowledgeBase) -> Trace:
    """Count, per top-level section, the passages cited, waived and uncovered."""
    analysis = analyse(kb)
    if analysis.source is None:
        errors = [d for d in analysis.diagnostics if d.severity == "error"]
        raise KbError(errors or [Diagnostic(display_path(kb.path), 0, 0, "error", "the version declares no policy text (policy_source/5 and a file in source/)")])
    result = Trace(kb, analysis)
    counts: dict[str, SectionCount] = {}
    for s in analysis.source.sections:
        if s.parent is None:
            counts[s.id] = SectionCount(s)
    total = SectionCount(Section("", None, kb.vocabulary.word("trace_total"), ""))
    for p in analysis.source.passages:
        status = analysis.status(p)
        counts.setdefault(p.top.id, SectionCount(p.top)).add(status)
        total.add(status)
    result.sections = list(counts.values())
    result.total = total
    return result


def render_text(t: Trace) -> str:
    """The summary per section, then every uncovered passage."""
    kb = t.kb
    v = kb.vocabulary
    w = v.word
    a = t.analysis
    lines = [w("trace_header", policy=v.policy_id, title=v.title, effective=v.effective_from, file=display_path(a.source.path) if a.source else "")]
    lines.append(w("trace_hash", sha256=a.sha256))
    headings = w("trace_columns").split("|")
    mark = w("trace_strict_mark")
    rows = [[c.section.name + (f" {mark}" if c.section.strict else ""), str(c.passages), str(c.cited), str(c.waived), str(c.uncovered), f"{c.covered:.1f}%"] for c in t.sections]
    if t.total is not None:
        c = t.total
        rows.append([c.section.name, str(c.passages), str(c.cited), str(c.waived), str(c.uncovered), f"{c.covered:.1f}%"])
    widths = [max(len(r[i]) for r in [headings, *rows]) for i in range(len(headings))]
    fmt = lambda r: "  ".join([r[0].ljust(widths[0]), *(x.rjust(widths[i]) for i, x in enumerate(r) if i)])
    lines.append(fmt(headings))
    lines.extend(fmt(r) for r in rows)
    if any(c.section.strict for c in t.sections):
        lines.append(w("trace_strict_note"))
    uncovered = t.uncovered()
    lines.append("")
    if uncovered:
        lines.append(w("trace_uncovered_heading"))
        lines.extend("  " + w("trace_passage_line", id=p.id, place=p.place(), line=p.line, text=p.text) for p in uncovered)
    else:
        lines.append(w("trace_all_covered"))
    if t.problems:
        lines.append(w("trace_problems", count=len(t.problems)))
    return "\n".join(lines) + "\n"


# --- what the rules that cite a passage are about -------------------------------------


def _head_strings(statement: Statement) -> Iterable[str]:
    """The strings in a rule's head atom: the criterion or reason ids a rule decides (``met("3.A.i")``)."""
    node = statement.node
    if node.ast_type != ASTType.Rule or node.head.ast_type != ASTType.Literal or node.head.atom.ast_type != ASTType.SymbolicAtom:
        return
    sym = node.head.atom.symbol
    if sym.ast_type != ASTType.Function:
        return
    for arg in sym.arguments:
        if arg.ast_type == ASTType.SymbolicTerm and arg.symbol.type.name == "String":
            yield arg.symbol.string


def citation_ids(kb: KnowledgeBase, citation: Citation) -> list[str]:
    """The criterion and reason ids a citation's paragraph is about: its words' ids and its rules' heads."""
    known = set(kb.vocabulary.criteria) | set(kb.vocabulary.reason_texts)
    found = list(citation.quote.ids)
    if citation.quote.kind != "words":  # a § comment stands for its paragraph's rules; a fact's words for the fact
        for s in citation.quote.paragraph:
            found.extend(x for x in _head_strings(s) if x in known)
    return list(dict.fromkeys(x for x in found if x in known))


def passage_ids(analysis: SourceAnalysis, passage: Passage) -> list[str]:
    """Every criterion and reason id of the rules that cite a passage."""
    out: list[str] = []
    for c in analysis.cited(passage):
        out.extend(citation_ids(analysis.kb, c))
    return list(dict.fromkeys(out))


# --- across versions ----------------------------------------------------------------------


@dataclass
class TextChange:
    """Passages of the old text replaced by passages of the new one (either side may be empty)."""

    old: list[Passage]
    new: list[Passage]
    ids: list[str]  # the criterion and reason ids of the rules that cite them, in either version
    classes: list[int] = field(default_factory=list)  # the diff's classes whose flipped criteria these are

    def to_dict(self) -> dict:
        side = lambda ps: [{"id": p.id, "place": p.place(), "line": p.line, "text": p.text} for p in ps]
        return {"old": side(self.old), "new": side(self.new), "ids": self.ids, "classes": self.classes}


def text_changes(old: KnowledgeBase, new: KnowledgeBase) -> Optional[list[TextChange]]:
    """The passages of the policy's text that differ between two versions (None when one has no text).

    Passages are compared as normalised text, in order (``difflib`` over the
    two lists): a changed sentence is one change, a sentence added or
    removed another. Each change carries the ids of the rules citing its
    passages in either version, to relate it to the classes of cases whose
    decision changed.
    """
    a, b = analyse(old), analyse(new)
    if a.source is None or b.source is None:
        return None
    before, after = a.source.passages, b.source.passages
    matcher = difflib.SequenceMatcher(None, [p.text for p in before], [p.text for p in after], autojunk=False)
    changes = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        gone, came = before[i1:i2], after[j1:j2]
        ids = [x for p in gone for x in passage_ids(a, p)] + [x for p in came for x in passage_ids(b, p)]
        changes.append(TextChange(gone, came, list(dict.fromkeys(ids))))
    return changes


def relate(changes: list[TextChange], classes: list[Any], old: KnowledgeBase, new: KnowledgeBase) -> None:
    """Mark each text change with the diff classes (1-based) it lies behind.

    A class lies behind a change when the rules citing the changed passages
    decide a criterion that flipped in the class, or a reason its example
    gets in one version and not in the other.
    """
    touched: list[set[str]] = []
    for c in classes:
        ids = {f["id"] for f in c.flipped} | set(getattr(c, "reason_flips", ()))  # diff decided each example with both versions
        touched.append(ids)
    for change in changes:
        ids = set(change.ids)
        change.classes = [n for n, found in enumerate(touched, 1) if ids & found]


def render_changes(changes: Optional[list[TextChange]], kb: KnowledgeBase) -> str:
    """The text changes, after a diff's classes, each with the classes it lies behind (nothing when the text is the same)."""
    if not changes:
        return ""  # the same text (or a version without one): nothing to add
    w = kb.vocabulary.word
    lines = [w("diff_text_heading", count=len(changes))]
    for n, c in enumerate(changes, 1):
        lines.append(f"{n}. " + w("diff_text_change", place=(c.new or c.old)[0].place()))
        lines.extend("   " + w("diff_text_old", id=p.id, text=p.text) for p in c.old)
        lines.extend("   " + w("diff_text_new", id=p.id, text=p.text) for p in c.new)
        if c.ids:
            lines.append("   " + w("diff_text_ids", ids=", ".join(c.ids)))
        if c.classes:
            lines.append("   " + w("diff_text_classes", classes=", ".join(map(str, c.classes))))
    return "\n".join(lines) + "\n"
