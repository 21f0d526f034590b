"""How the KB's files are laid out: the framework's words apart from its rules, long rule bodies
one literal per line, and a criterion file's paragraphs in a fixed order."""

from __future__ import annotations

from pathlib import Path

import clingo.ast as ast
import pytest

from ..conftest import KB_DIR

FRAMEWORK = KB_DIR / "framework"
WORDS = FRAMEWORK / "words"
CRITERIA = sorted((KB_DIR / "policies").glob("*/*/criteria/*.lp"))

# the facts a program prints, never reads: words, output formats
PRESENTATION = {("text", 2), ("decision_text", 2), ("route_text", 2), ("evidence_text", 2), ("entry_text", 2), ("undetermined_text", 2), ("output_format", 2), ("output_field", 3)}


def statements(path: Path) -> list[ast.AST]:
    found: list[ast.AST] = []
    ast.parse_string(path.read_text(encoding="utf-8"), found.append)
    return [s for s in found if s.ast_type == ast.ASTType.Rule]


def head(rule: ast.AST) -> tuple[str, int] | None:
    """The head atom's name and arity (None for a constraint, a choice or an aggregate)."""
    if rule.head.ast_type != ast.ASTType.Literal or rule.head.atom.ast_type != ast.ASTType.SymbolicAtom:
        return None
    sym = rule.head.atom.symbol
    if sym.ast_type == ast.ASTType.Function:
        return sym.name, len(sym.arguments)
    return None


def test_the_frameworks_words_and_formats_are_in_a_folder_of_their_own():
    """Every word and output-format fact of the framework is under framework/words/, which holds nothing else."""
    outside = [(f.relative_to(KB_DIR), r.location.begin.line) for f in FRAMEWORK.rglob("*.lp") if WORDS not in f.parents for r in statements(f) if head(r) in PRESENTATION]
    assert not outside
    words = sorted(WORDS.glob("*.lp"))
    assert {f.name for f in words} >= {"answers.lp", "author.lp", "formats.lp", "interop.lp"}
    for f in words:
        rules = statements(f)
        assert rules and all(not r.body and head(r) in PRESENTATION for r in rules), f


@pytest.mark.parametrize("path", sorted(KB_DIR.rglob("*.lp")), ids=lambda p: str(p.relative_to(KB_DIR)))
def test_rule_bodies_of_more_than_three_literals_are_one_literal_per_line(path):
    for rule in statements(path):
        if len(rule.body) <= 3:
            continue
        lines = [b.location.begin.line for b in rule.body]
        where = f"{path.relative_to(KB_DIR)}:{rule.location.begin.line}"
        assert lines[0] > rule.location.begin.line and lines == list(range(lines[0], lines[0] + len(lines))), where
        assert all(b.location.end.line == b.location.begin.line for b in rule.body), where


DECIDE, EXPLAIN, WORDS_, DOCUMENTATION = range(4)
KINDS = {
    "note": EXPLAIN,
    "evidence_for": EXPLAIN,
    "note_text": WORDS_,
    "evidence_text": WORDS_,
    "text": WORDS_,
    "key_detail": WORDS_,
    "abducible": DOCUMENTATION,
    "documents": DOCUMENTATION,
    "documents_entry": DOCUMENTATION,
}


@pytest.mark.parametrize("path", CRITERIA, ids=lambda p: p.name)
def test_a_criterion_file_decides_then_explains_then_words_then_documentation(path):
    """Each paragraph is of the latest kind any of its heads is; the kinds never go back."""
    text = path.read_text(encoding="utf-8")
    paragraph, blank = [0], True
    for line in text.splitlines():
        paragraph.append(paragraph[-1] + (1 if blank and line.strip() else 0))
        blank = not line.strip()
    kinds: dict[int, int] = {}
    for rule in statements(path):
        h = head(rule)
        p = paragraph[rule.location.begin.line]
        kinds[p] = max(kinds.get(p, DECIDE), KINDS.get(h[0], DECIDE) if h else DECIDE)
    order = [kinds[p] for p in sorted(kinds)]
    assert CRITERIA and order == sorted(order), [("decide", "explain", "words", "documentation")[k] for k in order]
