"""``kineret-asp lsp``: the checks of ``kineret-asp check`` in the author's editor.

A Language Server (the Language Server Protocol over stdio, with pygls)
for the ``.lp`` files of a KB tree:

- diagnostics: ``check``'s errors and warnings, at their places, when a
  file is opened or saved, and while it is edited (after a short pause; the
  unsaved text is checked in a copy of the tree, so the same checks run on
  what the author sees). The check runs in a worker process within a time
  limit, like every command that grounds;
- hover: on a quotation of a ``§`` comment, the passages of the policy's
  text it cites; on a criterion id (``"3.A.i"``), the criterion's words and
  the policy's passage it encodes; on a key, its vocabulary and words;
- go to definition: from a key to the vocabulary fact declaring it, from a
  criterion id to its ``criterion/4`` fact (or the table row a derived one
  comes from), from a field name to its ``input_field/4`` or
  ``entry_field/5``, from a predicate to its first rule;
- completion: the vocabulary keys and the case's field names, with their
  words.

Everything shown comes from the KB as ``check``, ``trace`` and
``vocabulary`` read it; the server names no key, field or criterion
itself.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlparse

from ..errors import Diagnostic, KbError
from ..knowledge.base import KnowledgeBase, load_kb
from ..knowledge.layout import FRAMEWORK, tree_root, version_folders

CHECK_SECONDS = 60.0
"""How long one check may take in its worker (a KB that grounds without end cannot hang the editor)."""
PAUSE_SECONDS = 0.4
"""How long typing must pause before the unsaved text is checked."""

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_']*")


# --- positions ----------------------------------------------------------------------------------


def path_of(uri: str) -> Path:
    """The file a ``file://`` URI names."""
    parsed = urlparse(uri)
    return Path(unquote(parsed.path))


def uri_of(path: Path) -> str:
    return path.resolve().as_uri()


def utf16_column(line: str, byte_column: int) -> int:
    """The LSP character offset (UTF-16 units) of clingo's 1-based byte column on a line."""
    data = line.encode("utf-8")
    prefix = data[: max(byte_column - 1, 0)].decode("utf-8", errors="ignore")
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in prefix)


_OUTLINE_ID = re.compile(r"[A-Za-z0-9]+(?:\.[A-Za-z0-9_]+)+")


def word_at(line: str, character: int) -> tuple[str, int, int, bool]:
    """The word under the cursor: the text of a double-quoted string, an outline id (``3.A.i``) or an identifier; (text, start, end, quoted)."""
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"', line):
        if m.start() <= character <= m.end():
            return m.group(1), m.start(1), m.end(1), True
    for pattern in (_OUTLINE_ID, _IDENT):
        for m in pattern.finditer(line):
            if m.start() <= character <= m.end():
                return m.group(0), m.start(), m.end(), False
    return "", character, character, False


# --- the KB a file belongs to ---------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """The KB a file belongs to: the tree's root, and the version folder (None for a framework file)."""

    root: Path
    version: Optional[Path]

    @property
    def target(self) -> Path:
        """What ``check`` runs on: the version folder, or the whole tree for a framework file."""
        return self.version or self.root


def place_of(path: Path) -> Optional[Place]:
    try:
        root, version = tree_root(path.resolve().parent)
    except (OSError, ValueError):
        return None
    if not (root / FRAMEWORK).is_dir():
        return None
    return Place(root, version)


class KbViews:
    """The KBs the open files belong to: the last one that loaded, by version folder (hover and definitions read them)."""

    def __init__(self) -> None:
        self._last: dict[Path, KnowledgeBase] = {}
        self._lock = threading.Lock()

    def version_for(self, place: Place) -> Optional[Path]:
        if place.version is not None:
            return place.version
        folders = version_folders(place.root)
        return folders[-1].path if folders else None

    def kb(self, place: Place) -> Optional[KnowledgeBase]:
        version = self.version_for(place)
        if version is None:
            return None
        try:
            kb = load_kb(version)
            kb.vocabulary
        except (KbError, OSError):
            with self._lock:
                return self._last.get(version)  # the last one that loaded, while the author fixes this one
        with self._lock:
            self._last[version] = kb
        return kb


# --- diagnostics -----------------------------------------------------------------------------------


class Shadow:
    """A copy of a KB tree where unsaved editor text is checked (the tree on disk is never written)."""

    def __init__(self, root: Path):
        self.root = root
        self.folder = Path(tempfile.mkdtemp(prefix="kineret-asp-lsp-")) / root.name
        self._copied: dict[Path, tuple[int, int]] = {}

    def sync(self, unsaved: dict[Path, str]) -> None:
        """Bring the copy up to the files on disk, then write the unsaved texts over them."""
        seen = set()
        for path in self.root.rglob("*"):
            if not path.is_file() or "cases" in path.relative_to(self.root).parts or path.suffix not in (".lp", ".txt"):
                continue
            seen.add(path)
            try:
                st = path.stat()
            except OSError:
                continue
            key = (st.st_mtime_ns, st.st_size)
            target = self.folder / path.relative_to(self.root)
            if self._copied.get(path) != key or path in unsaved:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                self._copied[path] = key if path not in unsaved else (-1, -1)
        for gone in [p for p in self._copied if p not in seen]:
            (self.folder / gone.relative_to(self.root)).unlink(missing_ok=True)
            del self._copied[gone]
        for path, text in unsaved.items():
            target = self.folder / path.relative_to(self.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            self._copied[path] = (-1, -1)

    def real(self, file: str) -> str:
        """A file of the copy, as the tree's own file."""
        path = Path(file)
        if not path.is_absolute():
            path = Path.cwd() / path
        try:
            return str(self.root / path.resolve().relative_to(self.folder.resolve()))
        except ValueError:
            return file

    def close(self) -> None:
        shutil.rmtree(self.folder.parent, ignore_errors=True)


def run_check(target: Path, strict: bool = False) -> list[Diagnostic]:
    """``check`` on a version folder or a tree, in a worker within :data:`CHECK_SECONDS`."""
    from ..limits import Limits, run_limited
    from .check import check_kb

    outcome = run_limited(lambda: check_kb(target, strict=strict).diagnostics, Limits(CHECK_SECONDS))
    if outcome.ok:
        return list(outcome.value)
    limits = Limits(CHECK_SECONDS)
    return [
        Diagnostic(
            str(target), 0, 0, "error", f"check stopped at {limits.describe(outcome.status, options=False)}" if outcome.status in ("time", "memory") else f"check failed: {outcome.detail}", "lsp"
        )
    ]


def by_file(diagnostics: list[Diagnostic]) -> dict[Path, list[Diagnostic]]:
    out: dict[Path, list[Diagnostic]] = {}
    for d in diagnostics:
        path = Path(d.file)
        if not path.is_absolute():
            path = Path.cwd() / path
        out.setdefault(path.resolve(), []).append(d)
    return out


# --- what hover and definitions read ----------------------------------------------------------------


def criterion_hover(kb: KnowledgeBase, cid: str) -> Optional[str]:
    """A criterion's words and the passage of the policy's text it encodes (Markdown)."""
    from .policy_text import analyse

    crit = kb.vocabulary.criteria.get(cid)
    lines: list[str] = []
    if crit is not None:
        parent = f", under {crit.parent}" if crit.parent else ""
        lines.append(f"**{cid}** ({crit.rule}{parent}): {crit.text}")
    else:
        reason = kb.vocabulary.reason_texts.get(cid)
        if reason is None:
            return None
        lines.append(f"**{cid}**: {reason}")
    try:
        analysis = kb.derived("lsp_source_analysis", lambda: analyse(kb))
    except KbError:
        analysis = None
    if analysis is not None and analysis.source is not None:
        passages = [p for p in analysis.source.passages if p.label == cid]
        for p in passages:
            lines.append(f"{kb.vocabulary.word('trace_passage_line', id=p.id, place=p.place(), line=p.line, text=p.text)}")
    return "\n\n".join(lines)


def quotation_hover(kb: KnowledgeBase, file: Path, line: int, column: int) -> Optional[str]:
    """The passages the quotation of a § comment that opens at (line, column) cites, or why it cites none."""
    from ..knowledge.layout import display_path
    from .policy_text import QuoteReader, analyse, resolve

    try:
        analysis = kb.derived("lsp_source_analysis", lambda: analyse(kb))
    except KbError:
        return None
    if analysis.source is None:
        return None
    shown = display_path(file)
    reader = QuoteReader(kb, [(str(n), a, t, (None if i == "none" else i)) for n, a, t, i in kb.facts("policy_words", 4)])
    on_line = [q for q in reader.quotes if q.file == shown and q.line == line and q.kind == "comment" and q.column <= column]
    if not on_line:
        return None
    quote = max(on_line, key=lambda q: q.column)
    places, problem = resolve(analysis.source, quote)
    if problem is not None:
        return problem.message
    return "\n\n".join(kb.vocabulary.word("trace_passage_line", id=p.id, place=p.place(), line=p.line, text=p.text) for p in dict.fromkeys(x for ps in places for x in ps))


def key_hover(kb: KnowledgeBase, key: str) -> Optional[str]:
    vocab = kb.vocabulary
    found = [(v, labels[key]) for v, labels in vocab.keys.items() if key in labels]
    if not found:
        return None
    return "\n\n".join(f"**{key}**: {label} ({vocab.nouns.get(v, v)}, `{v}`)" for v, label in found)


def field_hover(kb: KnowledgeBase, name: str) -> Optional[str]:
    schema = kb.schema
    f = schema.by_name.get(name)
    if f is not None:
        return f"**{name}** (case field, {f.presence}): {f.description}"
    for top in schema.fields:
        e = top.entry_field(name)
        if e is not None:
            return f"**{top.name}.{name}** (entry field, {e.presence}): {e.description}"
    return None


def definition(kb: KnowledgeBase, word: str, quoted: bool) -> Optional[tuple[str, int, int]]:
    """Where a key, criterion id, field or predicate is declared: (file, line, byte column)."""
    from ..engine.program import rule_atoms
    from ..knowledge.parse import rule_head

    facts: dict[tuple[str, str], tuple[str, int, int]] = {}
    strings: dict[str, tuple[str, int, int]] = {}
    for s in kb.statements:
        head = rule_head(s.node)
        if head is None or not head.fact or not head.args:
            continue
        facts.setdefault((head.name, head.first_text), (s.file, head.line, head.column))
        for a in head.args:
            text = str(a)
            if text.startswith('"'):
                strings.setdefault(text.strip('"'), (s.file, head.line, head.column))
    if quoted:
        return facts.get(("criterion", word)) or strings.get(word)
    for v in kb.vocabulary.keys:
        if word in kb.vocabulary.keys[v] and (v, word) in facts:
            return facts[(v, word)]
    if ("input_field", word) in facts:
        return facts[("input_field", word)]
    for s in kb.statements:
        head = rule_head(s.node)
        if head is not None and head.name == "entry_field" and len(head.args) > 1 and str(head.args[1]) == word:
            return (s.file, head.line, head.column)
    if ("vocabulary", word) in facts:
        return facts[("vocabulary", word)]
    for s in kb.statements:  # a predicate: its first rule or fact
        if s.node.ast_type.name != "Rule":
            continue
        defines, _ = rule_atoms(s.node)
        for sig, sym in defines:
            if sig[0] == word:
                loc = sym.location.begin
                return (s.file, loc.line, loc.column)
    return None


def completions(kb: KnowledgeBase) -> list[tuple[str, str, str, str]]:
    """Every case field name and vocabulary key: (label, kind, detail, documentation).

    Field names come first: a vocabulary whose keys are field names (the case's own field list)
    must not make a field look like an enum member in the editor."""
    out: list[tuple[str, str, str, str]] = []
    seen: set[str] = set()
    for f in kb.schema.fields:
        if f.name not in seen:
            seen.add(f.name)
            out.append((f.name, "field", f"case field ({f.kind.name})", f.description))
        for e in f.entry_fields:
            if e.name not in seen:
                seen.add(e.name)
                out.append((e.name, "field", f"entry field of {f.name} ({e.kind.name})", e.description))
    vocab = kb.vocabulary
    for v, keys in vocab.keys.items():
        for key, label in keys.items():
            if key in seen or not _IDENT.fullmatch(key):
                continue
            seen.add(key)
            out.append((key, "key", f"{v}: {label}", vocab.nouns.get(v, "")))
    return out


# --- the server ------------------------------------------------------------------------------------


def make_server() -> Any:
    """The Language Server (pygls), its features registered."""
    from lsprotocol import types as lsp
    from pygls.lsp.server import LanguageServer

    from .. import __version__

    server = LanguageServer("kineret-asp", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Full)
    views = KbViews()
    shadows: dict[Path, Shadow] = {}
    published: dict[Path, set[str]] = {}  # tree root -> the URIs given diagnostics last time
    pending: dict[Path, asyncio.Task] = {}

    severity = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning, "info": lsp.DiagnosticSeverity.Information}

    def unsaved_texts(place: Place) -> dict[Path, str]:
        out = {}
        for uri, doc in list(server.workspace.text_documents.items()):
            path = path_of(uri)
            try:
                if place.root not in path.resolve().parents:
                    continue
                on_disk = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                on_disk = None
            if doc.source != on_disk:
                out[path.resolve()] = doc.source
        return out

    def check_place(place: Place) -> list[Diagnostic]:
        unsaved = unsaved_texts(place)
        if not unsaved:
            return run_check(place.target)
        shadow = shadows.get(place.root)
        if shadow is None:
            shadow = shadows[place.root] = Shadow(place.root)
        shadow.sync(unsaved)
        target = shadow.folder / place.target.relative_to(place.root) if place.version is not None else shadow.folder
        text_root, real_root = str(shadow.folder), str(place.root)
        return [Diagnostic(shadow.real(d.file), d.line, d.column, d.severity, d.message.replace(text_root, real_root), d.code) for d in run_check(target)]

    def lines_of(path: Path) -> list[str]:
        doc = server.workspace.text_documents.get(uri_of(path))
        if doc is not None:
            return doc.source.split("\n")
        try:
            return path.read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError):
            return []

    def to_lsp(d: Diagnostic, lines: list[str]) -> Any:
        row = max(d.line - 1, 0)
        text = lines[row] if row < len(lines) else ""
        start = utf16_column(text, d.column) if d.column > 0 else 0
        _, _, end, _ = word_at(text, start)
        end = max(end, start + 1) if text else start
        return lsp.Diagnostic(
            range=lsp.Range(start=lsp.Position(line=row, character=start), end=lsp.Position(line=row, character=end)),
            message=d.message,
            severity=severity.get(d.severity, lsp.DiagnosticSeverity.Information),
            source="kineret-asp check",
            code=d.code or None,
        )

    async def publish(place: Place) -> None:
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(None, check_place, place)
        grouped = by_file(found)
        uris = set()
        for path, diags in grouped.items():
            lines = lines_of(path)
            uri = uri_of(path)
            uris.add(uri)
            server.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[to_lsp(d, lines) for d in diags]))
        for uri in published.get(place.root, set()) - uris:  # fixed since the last check: cleared
            server.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        published[place.root] = uris

    def schedule(uri: str, delay: float) -> None:
        place = place_of(path_of(uri))
        if place is None:
            return
        previous = pending.get(place.root)
        if previous is not None and not previous.done():
            previous.cancel()

        async def later() -> None:
            if delay:
                await asyncio.sleep(delay)
            await publish(place)

        pending[place.root] = asyncio.ensure_future(later())

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: Any, params: lsp.DidOpenTextDocumentParams) -> None:
        schedule(params.text_document.uri, 0.0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: Any, params: lsp.DidSaveTextDocumentParams) -> None:
        schedule(params.text_document.uri, 0.0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: Any, params: lsp.DidChangeTextDocumentParams) -> None:
        schedule(params.text_document.uri, PAUSE_SECONDS)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: Any, params: lsp.DidCloseTextDocumentParams) -> None:
        schedule(params.text_document.uri, 0.0)  # the file on disk is what counts again

    def at(params: Any) -> tuple[Optional[Place], Optional[KnowledgeBase], str, str, int, int, bool, Path, int]:
        path = path_of(params.text_document.uri)
        place = place_of(path)
        lines = lines_of(path)
        row = params.position.line
        text = lines[row] if row < len(lines) else ""
        word, start, end, quoted = word_at(text, params.position.character)
        kb = views.kb(place) if place is not None else None
        return place, kb, text, word, start, end, quoted, path, row

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: Any, params: lsp.HoverParams) -> Optional[lsp.Hover]:
        place, kb, text, word, start, end, quoted, path, row = at(params)
        if kb is None or not word:
            return None
        shown: Optional[str] = None
        cursor = params.position.character
        comment = text.find("%")
        in_comment = 0 <= comment < cursor
        opened = text[comment:cursor].count('"') % 2 == 1 if in_comment else False
        if in_comment and opened:  # inside a quotation of a § comment (it may go on over the next lines)
            mark = text.rfind('"', 0, cursor)
            shown = criterion_hover(kb, word) if quoted else None
            shown = shown or quotation_hover(kb, path.resolve(), row + 1, mark + 1)  # the quote mark's column, 1-based
        elif quoted:
            shown = criterion_hover(kb, word)
        else:
            shown = criterion_hover(kb, word) if in_comment else None
            shown = shown or key_hover(kb, word) or field_hover(kb, word)
        if not shown:
            return None
        return lsp.Hover(
            contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=shown), range=lsp.Range(start=lsp.Position(line=row, character=start), end=lsp.Position(line=row, character=end))
        )

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def goto(ls: Any, params: lsp.DefinitionParams) -> Optional[lsp.Location]:
        place, kb, text, word, start, end, quoted, path, row = at(params)
        if kb is None or not word:
            return None
        found = definition(kb, word, quoted)
        if found is None:
            return None
        file, line, col = found
        target = Path(file) if Path(file).is_absolute() else Path.cwd() / file
        lines = lines_of(target)
        line_text = lines[line - 1] if 0 < line <= len(lines) else ""
        pos = lsp.Position(line=max(line - 1, 0), character=utf16_column(line_text, col))
        return lsp.Location(uri=uri_of(target), range=lsp.Range(start=pos, end=pos))

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=["(", ",", " ", '"']))
    def complete(ls: Any, params: lsp.CompletionParams) -> lsp.CompletionList:
        path = path_of(params.text_document.uri)
        place = place_of(path)
        kb = views.kb(place) if place is not None else None
        if kb is None:
            return lsp.CompletionList(is_incomplete=False, items=[])
        kinds = {"key": lsp.CompletionItemKind.EnumMember, "field": lsp.CompletionItemKind.Field}
        items = [lsp.CompletionItem(label=label, kind=kinds[kind], detail=detail, documentation=doc or None) for label, kind, detail, doc in completions(kb)]
        return lsp.CompletionList(is_incomplete=False, items=items)

    ended = {"shutdown": False}

    def close_shadows() -> None:
        for shadow in list(shadows.values()):
            shadow.close()
        shadows.clear()

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: Any, params: Any) -> None:
        ended["shutdown"] = True
        close_shadows()

    @server.feature(lsp.EXIT)
    def exit_now(ls: Any, params: Any) -> None:
        """End the process at once, as the protocol asks (0 after a shutdown request, else 1).

        A check still running would otherwise hold the interpreter's exit:
        its thread waits for its worker (up to :data:`CHECK_SECONDS`), and
        the threads of an executor are joined before a process ends. The
        worker ends with this process (it is forked to die with its parent).
        """
        close_shadows()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0 if ended["shutdown"] else 1)

    return server


def serve_stdio() -> None:
    """Run the server on stdin and stdout until the client ends it."""
    server = make_server()
    server.start_io()
