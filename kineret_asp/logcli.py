"""The command line of the decision log: ``decisions list|show|export`` and ``readjudicate``.

Every command reads the log named by ``--db`` (``postgresql://...``,
``sqlite:///path`` or a file; default: $KINERET_ASP_DB, else the user's
state folder, where ``serve`` writes). Output is JSON (``--format json``,
``export``: one record per line) or one line per record.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Optional

import click

DB_HELP = "The decision log: postgresql://..., sqlite:///path, or a file path (default: $KINERET_ASP_DB, else ~/.local/state/kineret-asp/decisions.sqlite3)."


def db_option(func: Callable) -> Callable:
    return click.option("--db", "db_url", default=None, metavar="URL", help=DB_HELP)(func)


def _open(db_url: Optional[str]) -> Any:
    from .cli import fail
    from .decisionlog import LogError, default_location, open_log

    if db_url is None and not default_location().exists():
        fail(f"--db: no decision log at {default_location()} (serve writes one there; name another with --db)")
    try:
        return open_log(db_url)
    except LogError as exc:
        fail(str(exc), code=exc.code)


def _words() -> Any:
    from .knowledge import load_kb

    return load_kb(None).vocabulary


def _line(record: Any, words: Any) -> str:
    from .safetext import safe_text

    d = record.decision.get("decision", "") if isinstance(record.decision, dict) else ""
    return words.word("decisions_line", seq=record.seq, id=record.id, when=record.recorded_at, source=safe_text(record.source), decision=words.decision_texts.get(d, d) or "-", number=record.pa_number or "-")


@click.group("decisions")
def decisions() -> None:
    """The decision log: every decision the service made (and evaluate/batch --log), append-only."""


@decisions.command("list")
@click.option("--source", default=None, help="Only records of this source (cds:order-sign, evaluate, batch, dtr:next-question ...).")
@click.option("--after", type=click.IntRange(0), default=0, show_default=True, help="Only records after this sequence number.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True, help="At most this many records.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@db_option
def list_cmd(source: Optional[str], after: int, limit: int, fmt: str, db_url: Optional[str]) -> None:
    """List records in the order they were written: sequence, id, time, source, decision, prior-authorization number."""
    from .cli import dump_json, fail
    from .decisionlog import LogError

    log = _open(db_url)
    try:
        records = log.find(source, after, limit)
    except LogError as exc:
        fail(str(exc), code=exc.code)
    if fmt == "json":
        click.echo(dump_json([r.to_dict() for r in records]))
        return
    words = _words()
    for r in records:
        click.echo(_line(r, words))


@decisions.command("show")
@click.argument("key", metavar="ID|PA-NUMBER")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="json", show_default=True, help="json: the whole record; text: the decision report kept with it.")
@db_option
def show_cmd(key: str, fmt: str, db_url: Optional[str]) -> None:
    """One record by its id (the coverage-assertion-id) or its prior-authorization number: request, decision, provenance, time."""
    from .cli import dump_json, fail
    from .decisionlog import LogError

    log = _open(db_url)
    try:
        record = log.get(key)
    except LogError as exc:
        fail(str(exc), code=exc.code)
    if record is None:
        fail(_words().word("api_no_decision", id=key))
    click.echo(dump_json(record.to_dict()) if fmt == "json" else (record.report or _line(record, _words())), nl=fmt == "json" or not record.report)


@decisions.command("export")
@click.option("-o", "--output", "output_path", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True), default="-", show_default=True, help="Write the records here (NDJSON, one record a line).")
@click.option("--source", default=None, help="Only records of this source.")
@db_option
def export_cmd(output_path: Path, source: Optional[str], db_url: Optional[str]) -> None:
    """Every record as NDJSON (one JSON record per line, in the order written), for an auditor or another system."""
    from .cli import fail
    from .decisionlog import LogError
    from .safetext import dumps

    log = _open(db_url)
    try:
        out = sys.stdout if str(output_path) == "-" else open(output_path, "w", encoding="utf-8")
    except OSError as exc:
        fail(f"{output_path}: cannot write: {exc.strerror or exc}", code=1)
    count = 0
    try:
        for record in log.each(source):
            out.write(dumps(record.to_dict(), indent=None, separators=(",", ":")) + "\n")
            count += 1
    except LogError as exc:
        fail(str(exc), code=exc.code)
    finally:
        if out is not sys.stdout:
            out.close()
    click.echo(_words().word("decisions_exported", count=count), err=True)


@click.command("readjudicate")
@click.option("--kb", "kb_dir", type=click.Path(path_type=Path, file_okay=False), default=None, help="The KB to decide with: a tree (each case by its date of service), a version folder, or a KB copy (default: the packaged KB).")
@click.option("--policy", default=None, metavar="ID", help="With --to: the policy of the tree whose version to use.")
@click.option("--to", "to_version", default=None, metavar="DATE", help="Decide every logged case with this version of the tree (its effective-from date).")
@click.option("--source", default=None, help="Only records of this source.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--exit-code", "exit_code", is_flag=True, help="Exit 1 when some decision would change, 0 when none would (like diff --exit-code).")
@db_option
def readjudicate_cmd(kb_dir: Optional[Path], policy: Optional[str], to_version: Optional[str], source: Optional[str], fmt: str, exit_code: bool, db_url: Optional[str]) -> None:
    """Decide the logged requests again under another version (or a KB copy) and report what would change: diff, on real traffic."""
    from .cli import EXIT_FAILED, dump_json, fail
    from .decisionlog import LogError
    from .errors import KbError, KineretError
    from .readjudicate import readjudicate, render

    log = _open(db_url)
    try:
        target: Any = kb_dir
        if to_version or policy:
            if not to_version:
                fail("readjudicate: --policy goes with --to DATE")
            from .versions import find_version

            target = find_version(kb_dir, policy, to_version)  # type: ignore[arg-type]
        report = readjudicate(log, target, source)
    except LogError as exc:
        fail(str(exc), code=exc.code)
    except KbError as exc:
        fail(exc.summary_line())
    except KineretError as exc:
        fail(str(exc))
    if fmt == "json":
        click.echo(dump_json(report.to_dict()))
    else:
        from .versions import Chooser

        click.echo(render(report, Chooser.of(target).default().vocabulary), nl=False)
    if exit_code and report.changes:
        sys.exit(EXIT_FAILED)
