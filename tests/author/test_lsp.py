"""kineret-asp lsp: check's diagnostics, hover, go to definition and completion, tested over the protocol.

The server runs as a subprocess (``python -m kineret_asp lsp``) and a
pygls LanguageClient talks to it over stdio, as an editor would.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("pygls")

from lsprotocol import types as lsp  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from kineret_asp import load_kb  # noqa: E402
from kineret_asp.author.check import check_kb  # noqa: E402
from kineret_asp.author.policy_text import analyse  # noqa: E402

from ..conftest import KB_DIR, ROOT, VERSION  # noqa: E402

pytestmark = pytest.mark.slow  # a server process per module (about 2 s to start and load the KB)

TYPO_OLD = "concurrent_biologic_or_tsdmard(D) :- case_current_medication(D), biologic_or_tsdmard(D)"
TYPO_NEW = "concurrent_biologic_or_tsdmard(D) :- case_current_medication(D), biologc_or_tsdmard(D)"


class Session:
    """A client on its own event loop (in a thread), so that tests can call it one request at a time."""

    def __init__(self, cwd: Path):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.diagnostics: dict[str, list[lsp.Diagnostic]] = {}
        self.versions: dict[str, int] = {}
        self.client = LanguageClient("kineret-asp-tests", "1")

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = list(params.diagnostics)
            self.versions[params.uri] = self.versions.get(params.uri, 0) + 1

        self.run(self.client.start_io(sys.executable, "-m", "kineret_asp", "lsp", cwd=str(cwd)))
        self.run(self.client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities(), root_uri=cwd.resolve().as_uri())))
        self.client.initialized(lsp.InitializedParams())

    def run(self, coro, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, func, *args):
        async def go():
            return func(*args)

        return self.run(go())

    def open(self, path: Path) -> str:
        uri = path.resolve().as_uri()
        self.call(self.client.text_document_did_open, lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(uri=uri, language_id="clingo", version=1, text=path.read_text())))
        return uri

    def wait_diagnostics(self, uri: str, after: int = 0, timeout: float = 60.0) -> list[lsp.Diagnostic]:
        """The diagnostics of a file, once the server has published them more than ``after`` times."""
        ends = time.monotonic() + timeout
        while time.monotonic() < ends:
            if self.versions.get(uri, 0) > after:
                return self.diagnostics[uri]
            time.sleep(0.05)
        raise AssertionError(f"no diagnostics for {uri} within {timeout} s")

    def position(self, path: Path, needle: str, offset: int = 0) -> lsp.Position:
        for row, line in enumerate(path.read_text().split("\n")):
            if needle in line:
                return lsp.Position(line=row, character=line.index(needle) + offset)
        raise AssertionError(f"{needle!r} not in {path}")

    def hover(self, path: Path, needle: str, offset: int = 1):
        where = lsp.TextDocumentPositionParams(text_document=lsp.TextDocumentIdentifier(uri=path.resolve().as_uri()), position=self.position(path, needle, offset))
        return self.run(self.client.text_document_hover_async(lsp.HoverParams(text_document=where.text_document, position=where.position)))

    def definition(self, path: Path, needle: str, offset: int = 1):
        return self.run(
            self.client.text_document_definition_async(lsp.DefinitionParams(text_document=lsp.TextDocumentIdentifier(uri=path.resolve().as_uri()), position=self.position(path, needle, offset)))
        )

    def close(self) -> None:
        """Shut the server down as an editor does; kill it if it does not end (a loaded machine may be slow)."""
        try:
            self.run(self.client.shutdown_async(None), timeout=60)
            self.call(self.client.exit, None)
            self.run(self.client.stop(), timeout=60)
        except Exception:  # noqa: BLE001 - the tests' assertions are made; the server must not outlive them
            server = getattr(self.client, "_server", None)
            if server is not None and server.returncode is None:
                server.kill()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A KB copy whose conditions_not_covered.lp has a typo in a predicate."""
    root = tmp_path_factory.mktemp("lsp") / "kb"
    shutil.copytree(KB_DIR, root, ignore=shutil.ignore_patterns("cases"))
    path = root / VERSION / "conditions_not_covered.lp"
    text = path.read_text()
    assert TYPO_OLD in text
    path.write_text(text.replace(TYPO_OLD, TYPO_NEW))
    return root


@pytest.fixture(scope="module")
def session(tree):
    s = Session(tree.parent)
    yield s
    s.close()


def test_opening_a_file_with_a_typo_publishes_the_diagnostics_check_prints(tree, session):
    path = tree / VERSION / "conditions_not_covered.lp"
    uri = session.open(path)
    got = session.wait_diagnostics(uri)
    printed = [d for d in check_kb(tree / VERSION).diagnostics if Path(d.file).resolve() == path.resolve()]
    assert printed and any("biologc_or_tsdmard/1 is used but never defined" in d.message for d in printed)
    lines = path.read_text().split("\n")
    expected = sorted((d.line - 1, d.column - 1, d.severity, d.message) for d in printed)
    shown = sorted((d.range.start.line, d.range.start.character, {lsp.DiagnosticSeverity.Error: "error", lsp.DiagnosticSeverity.Warning: "warning"}[d.severity], d.message) for d in got)
    assert shown == expected
    typo = next(d for d in got if "biologc" in d.message)
    assert lines[typo.range.start.line][typo.range.start.character : typo.range.end.character] == "biologc_or_tsdmard"
    assert all(d.source == "kineret-asp check" for d in got)


def test_typing_is_checked_without_saving_and_a_fix_clears_the_diagnostics(tree, session):
    path = tree / VERSION / "conditions_not_covered.lp"
    uri = path.resolve().as_uri()
    session.open(path)
    before = session.versions.get(uri, 0)
    fixed = path.read_text().replace(TYPO_NEW, TYPO_OLD)
    session.call(
        session.client.text_document_did_change,
        lsp.DidChangeTextDocumentParams(text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2), content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=fixed)]),
    )
    assert session.wait_diagnostics(uri, after=before) == []
    assert TYPO_NEW in path.read_text()  # the file on disk was never written
    again = session.versions[uri]
    broken = fixed.replace("biologic_or_tsdmard(D), not requested_drug(D).", "biologic_or_tsdmard(D, not requested_drug(D).", 1)
    assert broken != fixed
    session.call(
        session.client.text_document_did_change,
        lsp.DidChangeTextDocumentParams(text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=3), content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=broken)]),
    )
    syntax = session.wait_diagnostics(uri, after=again)
    assert any("syntax error" in d.message for d in syntax) and not any("never defined" in d.message for d in syntax)
    session.call(
        session.client.text_document_did_change,
        lsp.DidChangeTextDocumentParams(text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=4), content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=path.read_text())]),
    )


def test_hover_on_a_criterion_id_shows_its_words_and_the_policy_text_of_it(tree, session):
    path = tree / VERSION / "criteria" / "3_rheumatoid_arthritis.lp"
    session.open(path)
    kb = load_kb(KB_DIR)
    passage = next(p for p in analyse(kb).source.passages if p.label == "3.A.i")
    hover = session.hover(path, 'criterion("3.A.i"', len('criterion("') + 2)
    text = hover.contents.value
    assert passage.text in text and kb.vocabulary.criteria["3.A.i"].text in text
    used = session.hover(path, 'met("3.A.i")', len('met("') + 1)
    assert passage.text in used.contents.value


def test_hover_on_a_section_quotation_shows_the_passages_it_cites(tree, session):
    path = tree / VERSION / "reauthorization.lp"
    session.open(path)
    hover = session.hover(path, '"Initial approval duration is up to 12 months.', 3)
    assert hover is not None and "Initial approval duration is up to 12 months." in hover.contents.value and "Authorization Duration" in hover.contents.value


def test_go_to_definition_from_a_key_and_a_criterion_id(tree, session):
    table = tree / VERSION / "tables" / "non_preferred_products.lp"
    session.open(table)
    found = session.definition(table, "enbrel,", 1)
    target = Path(found.uri.removeprefix("file://"))
    assert target.name == "appendix_drug_classes.lp"
    assert target.read_text().split("\n")[found.range.start.line].startswith("drug(enbrel, ")
    rules = tree / VERSION / "criteria" / "3_rheumatoid_arthritis.lp"
    found = session.definition(rules, 'met("3.A.i")', len('met("') + 1)
    line = Path(found.uri.removeprefix("file://")).read_text().split("\n")[found.range.start.line]
    assert line.startswith('criterion("3.A.i", "3.A",')
    inputs = tree / VERSION / "verify" / "space.lp"
    session.open(inputs)
    found = session.definition(inputs, "current_medications,", 1)
    assert Path(found.uri.removeprefix("file://")).read_text().split("\n")[found.range.start.line].startswith("input_field(current_medications, ")


def test_completion_offers_vocabulary_keys_and_field_names(tree, session):
    path = tree / VERSION / "criteria" / "4_stills_disease.lp"
    session.open(path)
    result = session.run(
        session.client.text_document_completion_async(lsp.CompletionParams(text_document=lsp.TextDocumentIdentifier(uri=path.resolve().as_uri()), position=lsp.Position(line=0, character=0)))
    )
    items = {i.label: i for i in result.items}
    kb = load_kb(KB_DIR)
    assert set(kb.vocabulary.keys["specialty"]) <= set(items) and set(kb.vocabulary.keys["drug"]) & set(items)
    assert {f.name for f in kb.schema.fields} <= set(items)
    assert items["rheumatology"].kind == lsp.CompletionItemKind.EnumMember and items["rheumatology"].detail == "specialty: a rheumatologist"
    assert items["medication_history"].kind == lsp.CompletionItemKind.Field


def test_the_guide_shows_how_to_start_the_server_from_vs_code_and_neovim():
    guide = (ROOT / "docs" / "authoring.md").read_text()
    section = guide.split("## The checks in your editor", 1)[1].split("\n## ", 1)[0]
    assert "kineret-asp lsp" in section and "VS Code" in section and "Neovim" in section and "vim.lsp" in section


def test_exit_ends_the_server_at_once_while_a_check_is_running(tmp_path):
    """An editor that closes sends shutdown and exit: the server ends then, with code 0, not when a check in flight ends.

    The check of this tree grounds without end (it would run for the check's
    whole time limit); the process must be gone a few seconds after exit,
    its check's worker with it.
    """
    root = tmp_path / "kb"
    shutil.copytree(KB_DIR, root, ignore=shutil.ignore_patterns("cases"))
    runaway = root / VERSION / "zz_runaway.lp"
    runaway.write_text("% § test: grounds for minutes in little memory\n:- X = 1..100000, Y = 1..100000, X * Y = -1.\n")
    s = Session(tmp_path)
    s.open(runaway)
    time.sleep(1.0)  # the check has started: its worker grounds the runaway rule
    server = s.client._server
    s.run(s.client.shutdown_async(None), timeout=30)
    s.call(s.client.exit, None)
    ends = time.monotonic() + 10
    while server.returncode is None and time.monotonic() < ends:
        time.sleep(0.1)
    ended = server.returncode
    if ended is None:
        server.kill()
    s.loop.call_soon_threadsafe(s.loop.stop)
    s.thread.join(5)
    assert ended == 0
