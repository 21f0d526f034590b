"""The policy's own text beside its rules: passages, normalisation, quotes.

A version folder keeps the text it encodes in ``source/`` and declares it
(``policy_source/5``), its sections (``source_section/4``) and the passages
no rule cites (``source_waiver/2``); ``kb/framework/source.lp`` says what
each declaration means. This module

- splits the text into numbered passages: the sections the KB declares,
  their list items (labelled by the text's own outline, ``3.A.i``), table
  rows, and the sentences of every other line;
- normalises text the same way for the source and for a quotation, so that
  only layout differs (see :func:`normalise`);
- reads every quotation of the version's files: the double-quoted text of
  a ``%`` comment after a ``§`` header, and the strings of the facts the KB
  declares to hold the policy's words (``policy_words/4``), except in a
  paragraph marked ``% check: own words`` (the framework, shared by every
  policy, quotes none);
- finds each quotation in the text, and the passages it cites; a quotation
  found in several places cites those the ``§`` header names (``§ 3.B``,
  ``§ Conditions Not Covered 2``, ``§ Employer Group Plans``).

:func:`analyse` does all of it once for a version; ``check`` reports its
diagnostics and ``trace`` its passages.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import clingo
from clingo.ast import ASTType

from ..asp.symbols import Value, to_value
from ..errors import Diagnostic, KbError
from ..knowledge.base import KnowledgeBase
from ..knowledge.layout import FRAMEWORK, display_path
from ..knowledge.parse import Statement, rule_head
from ..knowledge.tree_files import TreeFileError, inside, read_tree_file
from ..memo import IdentityMemo

# What the package reads of a version's source declarations (check's "never used" list).
SOURCE_READS = {("policy_source", 5), ("source_section", 4), ("strict_section", 1), ("source_outline", 2), ("source_waiver", 2), ("waiver_reason", 2), ("policy_words", 4)}

OWN_WORDS = "check: own words"  # a paragraph whose fact strings are the KB's words, not the policy's
SECTION_MARK = "§"

# --- normalisation ------------------------------------------------------------

_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^>]*)?/?>")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_FOOTNOTE = re.compile(r"\^\{[^}]*\}|[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKS = re.compile(r"\[[®™]\]|[®™*•◦▪]")
_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "′": "'", "“": '"', "”": '"', "„": '"', "″": '"'})
_DASHES = re.compile(r"\s*[-‐‑‒–—−]\s*")
_SPACE = re.compile(r"\s+")
_BEFORE_PUNCT = re.compile(r" (?=[,;:.)\]])")
_AFTER_OPEN = re.compile(r"(?<=[(\[]) ")
ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…)\s*")


def normalise(text: str) -> str:
    """The text with its layout taken out, for comparing a quotation with the source.

    Only what does not change a word goes: markup the PDF's extraction left
    (``**bold**``, ``*italics*``, ``<ul ...>`` tags, ``[link](#)`` and
    ``<https://...>`` links (their text kept), footnote
    marks such as ``^{15,16}`` or ``¹⁶``, ``®`` and ``™``, bullet marks),
    typographic quotes (made plain), dashes (made ``-``, without the spaces
    around them), and whitespace (one space; none before ``, ; : . ) ]`` or
    after ``( [``). Letters, digits, words and their case are compared as
    written.
    """
    text = unicodedata.normalize("NFC", text).replace("\u00a0", " ")
    text = _AUTOLINK.sub(r"\1", text)
    text = _TAG.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _FOOTNOTE.sub("", text)
    text = _MARKS.sub("", text)
    text = text.translate(_QUOTES)
    text = _DASHES.sub("-", text)
    text = _SPACE.sub(" ", text).strip()
    text = _BEFORE_PUNCT.sub("", text)
    return _AFTER_OPEN.sub("", text)


def fragments(quote: str) -> list[str]:
    """A quotation's parts: ``...`` (or ``…``) marks words left out between them."""
    return [f for f in (normalise(p) for p in ELLIPSIS.split(quote)) if f]


# --- the declarations -----------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A section of the source, as the KB declares it (``source_section/4``)."""

    id: str
    parent: Optional[str]
    name: str
    first_line: str
    strict: bool = False
    outline: str = ""  # the outline label its items continue ("3.C": rows 3.C.A, 3.C.B ...)


@dataclass(frozen=True)
class Passage:
    """A numbered passage: a sentence, a list item's sentence or a table row."""

    number: int
    section: Section
    top: Section  # the top-level section it lies in
    label: str  # the text's own outline label ("3.A.i"), or ""
    text: str  # normalised
    line: int  # where it starts in the source file

    @property
    def id(self) -> str:
        return f"P{self.number}"

    def place(self) -> str:
        """Where the passage stands, in the source's own terms: ``Conditions Not Covered 4``."""
        names = [self.top.name] if self.top is self.section else [self.top.name, self.section.name]
        return " ".join([", ".join(dict.fromkeys(names)), self.label]).strip()


@dataclass(frozen=True)
class Piece:
    """A stretch of the joined text: a passage, or a heading (no passage)."""

    start: int
    end: int
    passage: Optional[Passage]
    top: Section


_MARKER = re.compile(r"(\d+|[A-Z]|[ivx]+)\.\s+")
_BULLET = re.compile(r"[-•◦▪]\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(\[])")
_NO_BREAK_AFTER = ("e.g.", "i.e.", "vs.", "al.", "etc.")
_WORD = re.compile(r"\w")


def _level(marker: str) -> int:
    if marker.isdigit():
        return 0
    if re.fullmatch(r"[ivx]+", marker):
        return 2
    return 1


def _sentences(text: str) -> list[tuple[int, str]]:
    """(offset, sentence) for each sentence of a normalised block of text."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        before = text[start : m.start()].rsplit(" ", 1)[-1].lower()
        if before.endswith(_NO_BREAK_AFTER):
            continue
        out.append((start, text[start : m.start()]))
        start = m.end()
    out.append((start, text[start:]))
    return [(o, s) for o, s in out if s]


@dataclass
class _Block:
    line: int
    label: str
    table: bool
    heading: bool
    parts: list[tuple[int, str]] = field(default_factory=list)  # (line, raw text)


class SourceText:
    """A policy's text split into sections and numbered passages, with one joined text to search."""

    def __init__(self, path: Path, raw: str, sections: list[Section], problems: list[str]):
        self.path = path
        self.raw = raw
        self.sections = sections
        self.problems = problems  # sections the text does not have
        self.missing: list[Section] = []  # the declared sections no line of the text begins
        self.passages: list[Passage] = []
        self.pieces: list[Piece] = []
        self.joined = ""
        self._build()

    # -- splitting

    @staticmethod
    def line_text(line: str) -> str:
        """A line as a section's first line is compared with it: bullet marks off, normalised."""
        return normalise(_BULLET.sub("", line.strip(), count=1) if _BULLET.match(line.strip()) else line)

    def _starts(self, lines: list[str]) -> list[tuple[int, Section]]:
        starts: list[tuple[int, Section]] = []
        after = -1
        for section in self.sections:
            first = normalise(section.first_line)
            found = None
            for i in range(after + 1, len(lines)):
                text = self.line_text(lines[i])
                if text.startswith(first) and (len(text) == len(first) or not _WORD.match(text[len(first)]) or not _WORD.match(first[-1:] or " ")):
                    found = i
                    break
            if found is None:
                self.problems.append(f'section {section.id}: no line of the text after the previous section begins with "{section.first_line}"')
                self.missing.append(section)
                continue
            starts.append((found, section))
            after = found
        return starts

    def _blocks(self, lines: list[tuple[int, str]], section: Section, first: int) -> list[_Block]:
        blocks: list[_Block] = []
        stack: list[Optional[str]] = [None, None, None]
        top_count = 0
        continuable = False
        for number, line in lines:
            stripped = line.strip()
            if not stripped:
                continue
            if not blocks and number == first:
                heading = normalise(stripped).lower() == section.name.lower()
                blocks.append(_Block(number, "", not heading, heading, [(number, stripped)]))
                continue  # a section's first line is its heading, or a title kept whole
            table = "\t" in line
            if not table and continuable and stripped[:1].islower():
                blocks[-1].parts.append((number, stripped))  # a sentence running on after a page break
                continue
            text = stripped
            bullet = bool(_BULLET.match(text))
            if bullet:
                text = _BULLET.sub("", text, count=1)
            marker = _MARKER.match(normalise(text))
            if marker:
                level = _level(marker.group(1))
                stack[level] = marker.group(1)
                for deeper in range(level + 1, 3):
                    stack[deeper] = None
                if level == 0:
                    top_count = int(marker.group(1))
                label = ".".join(x for x in stack[: level + 1] if x)
            elif bullet and not table:
                top_count += 1
                stack = [str(top_count), None, None]  # an unnumbered item numbers on
                label = stack[0] or ""
            else:
                stack = [None, None, None]
                label = ""
            blocks.append(_Block(number, label, table, False, [(number, text)]))
            continuable = not table
        return blocks

    def _build(self) -> None:
        lines = self.raw.split("\n")
        starts = self._starts(lines)
        if not starts:
            return
        bounds = [s for s, _ in starts] + [len(lines)]
        tops: dict[str, Section] = {}
        for (begin, section), end in zip(starts, bounds[1:]):
            top = section if section.parent is None else tops.get(section.parent, section)
            tops[section.id] = top
            numbered = [(i + 1, lines[i]) for i in range(0 if begin == bounds[0] else begin, end)]
            for block in self._blocks(numbered, section, begin + 1):
                self._add_block(block, section, top)

    def _add_block(self, block: _Block, section: Section, top: Section) -> None:
        if block.heading:
            self._piece(normalise(block.parts[0][1]), None, top)
            return
        if block.table:
            for label, text in self._row_items(block):
                self._passage(text, section, top, label, block.line)
            return
        text, lines = "", []
        for number, raw in block.parts:
            part = normalise(raw)
            if text:
                text += " "
            lines.append((len(text), number))
            text += part
        marker = _MARKER.match(text)
        head = marker.group(0) if marker else ""
        for offset, sentence in _sentences(text[len(head) :]):
            line = max((n for o, n in lines if o <= offset + len(head)), default=block.line)
            self._passage((head + sentence) if offset == 0 and head else sentence, section, top, block.label, line)

    @staticmethod
    def _row_items(block: _Block) -> list[tuple[str, str]]:
        """A table row; a row holding a list (``<ul ...> A. ... B. ...``) is its lead and one passage per item."""
        raw = block.parts[0][1]
        tag = re.search(r"<ul[^>]*>", raw)
        if not tag:
            return [(block.label, normalise(raw))]
        rest = normalise(raw[tag.end() :])
        letter, cuts = "A", []
        for m in re.finditer(r"(?:^| )([A-Z])\. ", rest):
            if m.group(1) == letter:
                cuts.append((m.start(1), letter))
                letter = chr(ord(letter) + 1)
        lead = normalise(raw[: tag.start()] + " " + rest[: cuts[0][0] if cuts else len(rest)])  # nothing before item A is lost
        items: list[tuple[str, str]] = [(block.label, lead)]
        for (start, label), nxt in zip(cuts, [c for c, _ in cuts[1:]] + [len(rest)]):
            items.append((label, rest[start:nxt].strip()))
        return [(label, text) for label, text in items if text]

    def _piece(self, text: str, passage: Optional[Passage], top: Section) -> None:
        if self.joined:
            self.joined += " "
        start = len(self.joined)
        self.joined += text
        self.pieces.append(Piece(start, len(self.joined), passage, top))

    def _passage(self, text: str, section: Section, top: Section, label: str, line: int) -> None:
        if not text:
            return
        if section.outline:
            label = f"{section.outline}.{label}" if label else section.outline
        passage = Passage(len(self.passages) + 1, section, top, label, text, line)
        self.passages.append(passage)
        self._piece(text, passage, top)

    # -- searching

    def occurrences(self, quote: str) -> list[tuple[Passage, ...]]:
        """Every place a quotation stands in the text: the passages each place touches.

        A quotation's first letter may differ in case, and a final ``. : ; ,``
        may be the quotation's own; parts joined by ``...`` must follow each
        other within one top-level section, and cite only the passages they
        touch (the words left out are not quoted).
        """
        parts = fragments(quote)
        if not parts:
            return []
        places: list[tuple[Passage, ...]] = []
        for start, end in self._find_all(parts[0], 0, len(self.joined)):
            spans = [(start, end)]
            limit = self._top_end(start)
            for part in parts[1:]:
                found = self._find_all(part, spans[-1][1], limit, first=True)
                if not found:
                    spans = []
                    break
                spans.append(found[0])
            if spans:
                touched = tuple(dict.fromkeys(p for s, e in spans for p in self._passages_in(s, e)))
                if touched and touched not in places:
                    places.append(touched)
        return places

    @staticmethod
    def _variants(part: str) -> list[str]:
        """The forms a quotation part is looked for in, most faithful first: as written, with its
        first letter's case changed, without a final ``. : ; ,``, both."""
        out = [part]
        if part[:1].isalpha():
            out.append(part[0].swapcase() + part[1:])
        if part[-1:] in ".:;," and len(part) > 1:
            out += [v[:-1] for v in list(out)]
        return out

    def _find_all(self, part: str, begin: int, end: int, first: bool = False) -> list[tuple[int, int]]:
        """Where a part stands between two offsets, in the first of its forms found at all."""
        for variant in self._variants(part):
            found: list[tuple[int, int]] = []
            i = self.joined.find(variant, begin, end)
            while i >= 0:
                j = i + len(variant)
                if self._bounded(i, j):
                    found.append((i, j))
                    if first:
                        break
                i = self.joined.find(variant, i + 1, end)
            if found:
                return found
        return []

    def _bounded(self, i: int, j: int) -> bool:
        """A match does not begin or end inside a word."""
        text = self.joined
        left = i == 0 or not (_WORD.match(text[i - 1]) and _WORD.match(text[i]))
        right = j >= len(text) or not (_WORD.match(text[j - 1]) and _WORD.match(text[j]))
        return left and right

    def _top_end(self, offset: int) -> int:
        top = next((p.top for p in self.pieces if p.start <= offset < p.end + 1), None)
        ends = [p.end for p in self.pieces if p.top is top]
        return max(ends) if ends else len(self.joined)

    def _passages_in(self, start: int, end: int) -> list[Passage]:
        return [p.passage for p in self.pieces if p.passage is not None and p.start < end and start < p.end]

    def closest(self, quote: str) -> tuple[Optional[Passage], str, str]:
        """The passage nearest a quotation not found, and where the two part ways (quote's words, policy's words).

        When a good part of the quotation's beginning stands in the text, the
        passage where that beginning stops matching; otherwise the passage
        (with the ones after it, as long as the quotation) that holds most
        of the quotation's words in order.
        """
        target = " ".join(fragments(quote))
        if not target or not self.passages:
            return None, "", ""
        low, high, at = 0, len(target), -1
        while low < high:  # the longest beginning of the quotation found in the text
            mid = (low + high + 1) // 2
            found = self.joined.find(target[:mid])
            if found >= 0:
                low, at = mid, found
            else:
                high = mid - 1
        if at >= 0 and low >= min(30, len(target) // 2):
            apart = at + max(low - 1, 0)  # the passage where the quotation leaves the text
            passage = next((p.passage for p in self.pieces if p.passage is not None and p.start <= apart < p.end), None)
            if passage is not None:
                return passage, target[low : low + 40], self.joined[at + low : at + low + 40]
        best: Optional[Passage] = None
        best_score: tuple[float, float] = (-1.0, -1.0)
        best_parting = ("", "")
        texts = [p.text for p in self.passages]
        for i, passage in enumerate(self.passages):
            window, j = texts[i], i + 1
            while len(window) < len(target) and j < len(texts) and self.passages[j].top is passage.top:
                window += " " + texts[j]
                j += 1
            matcher = difflib.SequenceMatcher(None, target, window, autojunk=False)
            blocks = [m for m in matcher.get_matching_blocks() if m.size >= 4]
            score = (sum(m.size for m in blocks) / len(target), matcher.ratio())
            if score > best_score and blocks:
                first = blocks[0]
                common = first.size
                while first.a + common < len(target) and first.b + common < len(window) and target[first.a + common] == window[first.b + common]:
                    common += 1
                best, best_score = passage, score
                best_parting = (target[first.a + common : first.a + common + 40], window[first.b + common : first.b + common + 40])
        return best, best_parting[0], best_parting[1]


# --- quotations in the KB -----------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """A quotation of the policy in the KB, and the paragraph it stands in."""

    file: str
    line: int
    column: int
    text: str
    locator: str  # the § header's words before " - "
    kind: str  # "comment" | "words"
    part: str  # the program part of its paragraph
    paragraph: tuple[Statement, ...]  # the rules and facts the quotation belongs to
    ids: tuple[str, ...] = ()  # criterion or reason ids the words belong to

    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def paragraph_ids(text: str) -> list[int]:
    """For each line number (1-based; index 0 unused) the paragraph it belongs to (blank lines separate)."""
    ids, current, blank = [0], 0, True
    for line in text.splitlines():
        if not line.strip():
            blank = True
            ids.append(current)
            continue
        if blank:
            current += 1
            blank = False
        ids.append(current)
    return ids


def _locator(header: str) -> str:
    after = header.split(SECTION_MARK, 1)[1]
    for stop in (" - ", " – ", '"'):
        if stop in after:
            after = after.split(stop, 1)[0]
    return after.strip().rstrip(".:")


_COMMENT_LINES = IdentityMemo(50_000)
"""_comment_lines by comment node: nodes are shared between a KB and its edited copies."""


def _comment_lines(node) -> tuple[tuple[int, int, str], ...]:
    """(line, column, text) of a comment's lines, with the comment marks replaced by spaces."""
    return _COMMENT_LINES.of(node, lambda: tuple(_read_comment_lines(node)))


def _read_comment_lines(node) -> list[tuple[int, int, str]]:
    loc = node.location.begin
    value = node.value
    out = []
    for k, line in enumerate(value.split("\n")):
        col = loc.column if k == 0 else 1
        body = line
        for mark in ("%*", "*%", "%"):
            if body.lstrip().startswith(mark):
                lead = len(body) - len(body.lstrip())
                body = body[:lead] + " " * len(mark) + body[lead + len(mark) :]
                break
        if body.rstrip().endswith("*%"):
            body = body.rstrip()[:-2]
        out.append((loc.line + k, col, body))
    return out


class QuoteReader:
    """Every quotation of a KB: § comments and the facts that hold the policy's words."""

    def __init__(self, kb: KnowledgeBase, words: list[tuple[str, int, int, Optional[int]]]):
        self.kb = kb
        self.words = words
        self.problems: list[Diagnostic] = []
        self.quotes: list[Quote] = []
        self.own_words: list[tuple[str, int, int, str]] = []
        self._paragraphs = {file: paragraph_ids(text) for file, text in kb.texts.items()}
        self._statements: dict[tuple[str, int], list[Statement]] = {}
        self._parts: dict[str, list[tuple[int, str]]] = {}
        for s in kb.statements:
            self._statements.setdefault((s.file, self._para(s.file, s.line)), []).append(s)
            self._parts.setdefault(s.file, []).append((s.line, s.part))
        self._comments: dict[tuple[str, int], list] = {}
        for c in kb.comments:
            for line, col, body in _comment_lines(c.node):
                self._comments.setdefault((c.file, self._para(c.file, line)), []).append((line, col, body))
        self._read_comments()
        self._read_words()

    def _para(self, file: str, line: int) -> int:
        ids = self._paragraphs.get(file, [])
        return ids[line] if 0 < line < len(ids) else -1

    def _part(self, file: str, line: int) -> str:
        part = "base"
        for start, name in self._parts.get(file, []):
            if start > line:
                break
            part = name
        return part

    def _read_comments(self) -> None:
        for (file, para), lines in sorted(self._comments.items()):
            lines.sort()
            joined, where = "", []
            headers: list[tuple[int, str]] = []
            for line, col, body in lines:
                header = body.lstrip().startswith(SECTION_MARK)
                if not headers and not header:
                    continue  # quotations count from the § header on
                if joined:
                    joined += " "
                    where.append((line, col))
                if header:
                    headers.append((len(joined) + body.index(SECTION_MARK), _locator(body)))
                for k in range(len(body)):
                    where.append((line, col + k))
                joined += body
            marks = [i for i, ch in enumerate(joined) if ch == '"']
            statements = tuple(self._statements.get((file, para), ()))
            if len(marks) % 2:
                line, col = where[marks[-1]]
                self.problems.append(
                    Diagnostic(file, line, col, "error", "a quotation mark in a § comment is not closed: double quotes there quote the policy (write the KB's own words in `backticks`)", "quote")
                )
                marks = marks[:-1]
            for a, b in zip(marks[::2], marks[1::2]):
                text = " ".join(joined[a + 1 : b].split())
                if not text:
                    continue
                locator = next((loc for at, loc in reversed(headers) if at < a), "")
                line, col = where[a]
                self.quotes.append(Quote(file, line, col, text, locator, "comment", self._part(file, line), statements))

    def locator_at(self, file: str, line: int) -> str:
        """The locator of the § header in force at a line (the last one above it in its paragraph)."""
        comments = self._comments.get((file, self._para(file, line)), [])
        headers = [_locator(body) for at, _, body in sorted(comments) if body.lstrip().startswith(SECTION_MARK) and at <= line]
        return headers[-1] if headers else ""

    def _read_words(self) -> None:
        facts = written_facts(self.kb)
        found = []
        for name, arity, text_at, id_at in self.words:
            for sym, s in facts.get((name, arity), []):
                found.append((s.rank, text_at, id_at, sym, s))
        for _, text_at, id_at, sym, s in sorted(found, key=lambda f: (f[0], f[1])):
            term = sym.arguments[text_at - 1]
            if term.ast_type != ASTType.SymbolicTerm or term.symbol.type != clingo.SymbolType.String:
                continue
            para = self._para(s.file, s.line)
            comments = self._comments.get((s.file, para), [])
            loc = term.location.begin
            if any(OWN_WORDS in body for _, _, body in comments):
                self.own_words.append((s.file, loc.line, loc.column, term.symbol.string))
                continue
            ident = ()
            if id_at is not None:
                arg = sym.arguments[id_at - 1]
                ident = (arg.symbol.string if arg.ast_type == ASTType.SymbolicTerm and arg.symbol.type == clingo.SymbolType.String else str(arg),)
            statements = tuple(self._statements.get((s.file, para), ()))
            self.quotes.append(Quote(s.file, loc.line, loc.column, term.symbol.string, self.locator_at(s.file, loc.line), "words", s.part, statements, ident))
        for file, para in sorted({(f, self._para(f, line)) for f, line, _, _ in self.own_words}):
            marks = [(line, col, body) for line, col, body in self._comments.get((file, para), []) if OWN_WORDS in body]
            for line, col, body in marks:
                reason = body.split(OWN_WORDS, 1)[1].strip(" -:()")
                if not reason:
                    self.problems.append(Diagnostic(file, line, col, "error", f"'% {OWN_WORDS}' must say why the words are the KB's own: '% {OWN_WORDS} - the reason'", "quote"))


# --- locators: which places a § header names ----------------------------------------

_LABEL = re.compile(r"^(\d+|[A-Z]|[ivx]+)(\.(\d+|[A-Z]|[ivx]+))*$")
_ROMAN = ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x"]


def _expand(token: str) -> list[str]:
    """A label or a range of labels: ``3-6``, ``A-F``, ``1.A.i-iv``."""
    if "-" not in token:
        return [token] if _LABEL.match(token) else []
    left, right = token.split("-", 1)
    if not _LABEL.match(left) or not re.fullmatch(r"\d+|[A-Z]|[ivx]+", right):
        return []
    prefix, first = (left.rsplit(".", 1) + [""])[:2] if "." in left else ("", left)
    prefix = prefix + "." if prefix else ""
    if first.isdigit() and right.isdigit():
        values = [str(n) for n in range(int(first), int(right) + 1)]
    elif first in _ROMAN and right in _ROMAN:
        values = _ROMAN[_ROMAN.index(first) : _ROMAN.index(right) + 1]
    elif len(first) == 1 and first.isupper() and right.isupper():
        values = [chr(c) for c in range(ord(first), ord(right) + 1)]
    else:
        return []
    return [prefix + v for v in values]


def names(locator: str, sections: list[Section], passage: Passage) -> bool:
    """Whether a § header's locator names a passage: its section (by name) and, if given, its label."""
    chain = {passage.top.name.lower(), passage.section.name.lower()}
    known = sorted({s.name.lower() for s in sections}, key=len, reverse=True)
    context: set[str] = set()
    for part in locator.split(","):
        text = part.strip()
        lowered = text.lower()
        named = set()
        for name in known:
            at = lowered.find(name)
            if at >= 0 and not any(name in other for other in named):
                named.add(name)
                text = text[:at] + " " + text[at + len(name) :]
                lowered = text.lower()
        context = named or context
        labels = [label for token in re.findall(r"[0-9A-Za-z.]+(?:-[0-9A-Za-z]+)?", text) for label in _expand(token.strip("."))]
        if context and not chain & context:
            continue
        if not labels:
            if context and named:
                return True
            continue
        if passage.label and any(passage.label == l or passage.label.startswith(l + ".") or (named and passage.label.endswith("." + l)) for l in labels):
            return True
    return False


# --- the analysis ---------------------------------------------------------------------


@dataclass(frozen=True)
class Citation:
    """A quotation with the passages it cites."""

    quote: Quote
    passages: tuple[Passage, ...]


@dataclass(frozen=True)
class Waiver:
    """Passages the KB says no rule cites, and why."""

    what: str  # the quotation, range or section, as written
    reason: str  # the waiver_reason key
    words: str  # why, in the KB's words
    file: str
    line: int
    column: int
    passages: tuple[Passage, ...]


@dataclass
class PolicySource:
    """The declared source of a version (``policy_source/5``)."""

    file: str
    title: str
    number: str
    effective: str
    sha256: str
    where: tuple[str, int, int]


@dataclass
class SourceAnalysis:
    """Everything check and trace know about a version's text and its quotations."""

    kb: KnowledgeBase
    declared: Optional[PolicySource]
    source: Optional[SourceText]
    sha256: str = ""
    citations: list[Citation] = field(default_factory=list)
    waivers: list[Waiver] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    quotes: int = 0

    def cited(self, passage: Passage, part: str = "base") -> list[Citation]:
        return [c for c in self.citations if passage in c.passages and c.quote.part == part]

    def waived(self, passage: Passage) -> list[Waiver]:
        return [w for w in self.waivers if passage in w.passages]

    def status(self, passage: Passage) -> str:
        if self.cited(passage):
            return "cited"
        if self.waived(passage):
            return "waived"
        return "uncovered"

    def uncovered(self, strict_only: bool = False) -> list[Passage]:
        if self.source is None:
            return []
        return [p for p in self.source.passages if (p.top.strict or not strict_only) and self.status(p) == "uncovered"]


def written_facts(kb: KnowledgeBase) -> dict[tuple[str, int], list[tuple[object, Statement]]]:
    """Every fact as written in the KB, by name/arity: its head symbol (AST) and its statement (one pass, kept with the KB)."""

    def make() -> dict[tuple[str, int], list[tuple[object, Statement]]]:
        out: dict[tuple[str, int], list[tuple[object, Statement]]] = {}
        for s in kb.statements:
            head = rule_head(s.node)
            if head is not None and head.fact:
                out.setdefault((head.name, len(head.args)), []).append((head.symbol, s))
        return out

    return kb.derived("source.written_facts", make)


def _facts_at(kb: KnowledgeBase, name: str, arity: int) -> list[tuple[tuple, tuple[str, int, int]]]:
    """Facts name/arity as written in the KB: their arguments and where each is."""
    out = []
    for sym, s in written_facts(kb).get((name, arity), []):
        try:
            args = tuple(to_value(clingo.parse_term(str(a))) for a in sym.arguments)
        except RuntimeError:
            continue
        loc = s.node.location.begin
        out.append((args, (s.file, loc.line, loc.column)))
    return out


def _text(value: Value) -> str:
    if isinstance(value, tuple):
        return f"{value[0]}({','.join(_text(v) for v in value[1:])})"
    return str(value)


def _declared_sections(kb: KnowledgeBase) -> list[Section]:
    strict = {str(s) for (s,) in kb.facts("strict_section", 1)}
    outline = {str(i): str(label) for i, label in kb.facts("source_outline", 2)}
    rows = kb.facts("source_section", 4)
    parents = {str(i): (None if str(p) == "none" else str(p)) for i, p, _, _ in rows}

    def top(i: str) -> str:
        seen = set()
        while parents.get(i) and i not in seen:
            seen.add(i)
            i = parents[i] or i
        return i

    return [Section(str(i), parents[str(i)], str(n), str(f), top(str(i)) in strict or str(i) in strict, outline.get(str(i), "")) for i, _, n, f in rows]


def _declared(kb: KnowledgeBase, diags: list[Diagnostic]) -> Optional[PolicySource]:
    rows = _facts_at(kb, "policy_source", 5)
    if not rows:
        return None
    if len(rows) > 1:
        file, line, col = rows[1][1]
        diags.append(Diagnostic(file, line, col, "error", "a version declares its text once: policy_source/5 is written twice", "source"))
    args, where = rows[0]
    return PolicySource(*(str(a) for a in args), where=where)


def analyse(kb: KnowledgeBase) -> SourceAnalysis:
    """Read a version's source, check its hash, find every quotation and waiver in it."""
    diags: list[Diagnostic] = []
    declared = _declared(kb, diags)
    analysis = SourceAnalysis(kb, declared, None, diagnostics=diags)
    if declared is None:
        diags.append(Diagnostic(display_path(kb.path), 0, 0, "warning", "the version declares no policy text (policy_source/5 and a file in source/): its quotations are not checked", "source"))
        return analysis
    file, line, col = declared.where
    path = kb.path / declared.file
    if (kb.path / "source").resolve() not in path.resolve().parents or not inside(path, kb.root):
        diags.append(Diagnostic(file, line, col, "error", f"the policy's text must lie in the version's source/ folder, not at {declared.file}", "source"))
        return analysis
    try:
        data = read_tree_file(path, kb.root)
    except TreeFileError as exc:
        diags.append(Diagnostic(file, line, col, "error", f"the policy's text {display_path(path)} cannot be read: {exc}", "source"))
        return analysis
    analysis.sha256 = hashlib.sha256(data).hexdigest()
    if analysis.sha256 != declared.sha256.lower():
        diags.append(
            Diagnostic(
                file,
                line,
                col,
                "error",
                f"{display_path(path)} has SHA-256 {analysis.sha256}, but the KB declares {declared.sha256}: the text is not the one the rules were checked against (if the policy changed, review the rules that quote it, then declare the new hash)",
                "source",
            )
        )
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        diags.append(Diagnostic(file, line, col, "error", f"{display_path(path)} is not UTF-8 text: {exc}", "source"))
        return analysis
    vocabulary = kb.vocabulary
    if declared.effective != vocabulary.effective_from:
        diags.append(
            Diagnostic(file, line, col, "error", f"the policy's text takes effect on {declared.effective}, but the version is in force from {vocabulary.effective_from} (effective_from/1)", "source")
        )
    source = SourceText(path, raw, _declared_sections(kb), [])
    analysis.source = source
    for problem in source.problems:
        where = next((w for args, w in _facts_at(kb, "source_section", 4) if problem.startswith(f"section {args[0]}:")), declared.where)
        diags.append(Diagnostic(where[0], where[1], where[2], "error", problem, "source"))
    words = [(str(n), a, t, (None if i == "none" else i)) for n, a, t, i in kb.facts("policy_words", 4)]
    reader = QuoteReader(kb, words)
    diags.extend(reader.problems)
    framework = kb.root / FRAMEWORK
    declaring = _declaring(kb)
    for quote in reader.quotes:
        if framework in Path(quote.file).resolve().parents:
            continue  # the framework cites no policy (check reports a § comment there)
        analysis.quotes += 1
        places, problem = resolve(source, quote)
        if problem is not None:
            diags.append(problem)
            continue
        if quote.paragraph and all(st.rank in declaring or st.node.ast_type == ASTType.Program for st in quote.paragraph):
            continue  # checked, but the text's own declarations (sections, waivers) cite nothing
        if not quote.paragraph:  # a comment alone encodes nothing: the passage stays uncited
            diags.append(
                Diagnostic(
                    quote.file,
                    quote.line,
                    quote.column,
                    "warning",
                    "a quotation with no rule or fact in its paragraph cites nothing: write the rule that encodes the passage below it, or declare the library that does (library/1, framework/versions.lp)",
                    "quote",
                )
            )
            continue
        analysis.citations.append(Citation(quote, tuple(dict.fromkeys(x for p in places for x in p))))
    _waivers(kb, source, analysis, reader)
    return analysis


def _declaring(kb: KnowledgeBase) -> set[int]:
    """The statements (by rank) that declare the text (a section, a waiver ...) rather than encode it."""
    facts = written_facts(kb)
    return {s.rank for sig in SOURCE_READS for _, s in facts.get(sig, [])}


def resolve(source: SourceText, quote: Quote) -> tuple[list[tuple[Passage, ...]], Optional[Diagnostic]]:
    """The places a quotation stands: all of them, or those its § header names when there are several."""
    places = source.occurrences(quote.text)
    if not places:
        return [], _not_found(quote, source, display_path(source.path))
    if len(places) == 1:
        return places, None
    named = [p for p in places if any(names(quote.locator, source.sections, x) for x in p)]
    if named:
        return named, None
    listed = "; ".join(", ".join(f"{x.id} ({x.place()})" for x in p) for p in places[:6])
    header = f'"§ {quote.locator}" names none of them' if quote.locator else "it has none"
    message = f"quotation found in {len(places)} places of the policy's text ({listed}): name the one meant in the § header ({header})"
    cause = _missing_section_cause(source, quote)
    return places, Diagnostic(quote.file, quote.line, quote.column, "error", f"{message}{cause}", "quote")


def _missing_section_cause(source: SourceText, quote: Quote) -> str:
    """Why a § header may name no place: a section it names (or any) that the text does not have as declared."""
    if not source.missing:
        return ""
    locator = quote.locator.lower()
    named = [s for s in source.missing if s.name and s.name.lower() in locator] or source.missing
    shown = "; ".join(f'section {s.id} ("{s.name}"): no line after the previous section begins with "{s.first_line}"' for s in named[:3])
    return f"; the cause may be a section the text does not have as declared: {shown} (a new text needs its sections declared again, source_section/4)"


def _not_found(quote: Quote, source: SourceText, shown: str) -> Diagnostic:
    passage, ours, theirs = source.closest(quote.text)
    text = quote.text if len(quote.text) <= 80 else quote.text[:77] + "..."
    message = f'quotation not found in the policy\'s text ({shown}): "{text}"'
    if passage is not None:
        message += f'; closest passage {passage.id} ({passage.place()}, line {passage.line}): "{passage.text if len(passage.text) <= 300 else passage.text[:297] + "..."}"'
        if ours or theirs:
            message += f'; they part at "{ours}" (quoted) / "{theirs}" (policy)'
    return Diagnostic(quote.file, quote.line, quote.column, "error", message, "quote")


def _waivers(kb: KnowledgeBase, source: SourceText, analysis: SourceAnalysis, reader: QuoteReader) -> None:
    """Every waiver's passages; its quotations are found like a rule's (its § header names the place)."""
    reasons = {str(k): str(w) for k, w in kb.facts("waiver_reason", 2)}
    by_section: dict[str, list[Passage]] = {}
    for p in source.passages:
        by_section.setdefault(p.section.id, []).append(p)
        if p.top is not p.section:
            by_section.setdefault(p.top.id, []).append(p)

    def places(text: Value, file: str, line: int, col: int) -> list[tuple[Passage, ...]]:
        found, problem = resolve(source, Quote(file, line, col, str(text), reader.locator_at(file, line), "waiver", "base", ()))
        if problem is not None:
            analysis.diagnostics.append(problem)
            return []
        return found

    for (what, reason), (file, line, col) in _facts_at(kb, "source_waiver", 2):
        key = _text(reason)
        if key not in reasons:
            analysis.diagnostics.append(Diagnostic(file, line, col, "error", f"waiver reason '{key}' has no waiver_reason/2 saying why", "waiver"))
        passages: list[Passage] = []
        if isinstance(what, tuple) and what[0] == "section" and len(what) == 2:
            passages = by_section.get(str(what[1]), [])
            if not passages:
                analysis.diagnostics.append(Diagnostic(file, line, col, "error", f"no section '{what[1]}' with passages is declared (source_section/4)", "waiver"))
        elif isinstance(what, tuple) and what[0] == "range" and len(what) == 3:
            first, last = places(what[1], file, line, col), places(what[2], file, line, col)
            if first and last:
                begin = first[0][0].number
                end = next((p[-1].number for p in last if p[-1].number >= begin), None)
                if end is None:
                    analysis.diagnostics.append(Diagnostic(file, line, col, "error", f'the range ends before it begins: "{what[2]}" stands before "{what[1]}"', "waiver"))
                else:
                    passages = source.passages[begin - 1 : end]
        elif isinstance(what, str):
            passages = list(dict.fromkeys(x for p in places(what, file, line, col) for x in p))
        else:
            analysis.diagnostics.append(Diagnostic(file, line, col, "error", 'a waiver names a quotation, range("from", "to") or section(Id)', "waiver"))
        analysis.waivers.append(Waiver(_text(what), key, reasons.get(key, key), file, line, col, tuple(passages)))
    for w in analysis.waivers:
        if w.passages and not w.what.startswith("section(") and all(analysis.cited(p) for p in w.passages):
            analysis.diagnostics.append(Diagnostic(w.file, w.line, w.column, "warning", f"waiver not needed: rules cite every passage it waives ({', '.join(p.id for p in w.passages)})", "waiver"))


def check_sources(kb: KnowledgeBase, strict: bool = False) -> list[Diagnostic]:
    """``check``'s findings about the policy's text: hash, quotations, waivers; with ``strict``, uncovered passages."""
    try:
        analysis = analyse(kb)
    except KbError as exc:
        return exc.diagnostics
    diags = list(analysis.diagnostics)
    if strict:
        diags = [Diagnostic(d.file, d.line, d.column, "error", d.message, d.code) if d.code == "source" and d.severity == "warning" else d for d in diags]
    if analysis.source is not None:
        # a passage of a strict section that nothing cites nor waives (a deleted table row was its only
        # citation, a new text's passage not yet encoded): an error with --strict, a warning otherwise
        shown = display_path(analysis.source.path)
        severity = "error" if strict else "warning"
        for p in analysis.uncovered(strict_only=True):
            diags.append(
                Diagnostic(shown, p.line, 1, severity, f'passage {p.id} ({p.place()}) is neither cited by a rule nor waived: "{p.text if len(p.text) <= 120 else p.text[:117] + "..."}"', "coverage")
            )
    return diags
