"""The ``kineret-asp`` command.

Every command that reads a KB takes ``--kb DIR`` (default: the packaged KB).
User mistakes (a bad case, a broken KB) end with one line on stderr and exit
code 2, never a traceback.
"""
from __future__ import annotations

import contextlib
import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import click

from .errors import CaseError, KbError, KineretError

EXIT_INPUT = 2


def kb_option(func: Callable) -> Callable:
    return click.option("--kb", "kb_dir", type=click.Path(path_type=Path, readable=False), default=None, help="KB folder to use (default: the packaged kb/).")(func)


def format_option(func: Callable) -> Callable:
    return click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format.")(func)


def report_format_option(func: Callable) -> Callable:
    """--format for the answers a reviewer files: text, json, or a Markdown or HTML review page."""
    return click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "html"]), default="text", show_default=True, help="Output format (markdown and html: a review page with what is missing).")(func)


def fail(*messages: str) -> None:
    for message in messages:
        click.echo(f"kineret-asp: {message}", err=True)
    sys.exit(EXIT_INPUT)


def kb_error_line(exc: KbError) -> str:
    first = str(exc.diagnostics[0]) if exc.diagnostics else str(exc)
    more = len(exc.diagnostics) - 1
    return first + (f" (and {more} more; run 'kineret-asp check' to see all)" if more > 0 else "")


def handle_errors(func: Callable) -> Callable:
    """Turn the package's own errors into one line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KbError as exc:
            fail(kb_error_line(exc))
        except CaseError as exc:
            fail(*exc.lines())
        except KineretError as exc:
            fail(str(exc))

    return wrapper


def read_case_arg(arg: str, kb: Any):
    """A case from a path, or from stdin for ``-``."""
    from .case import load_case, parse_case, parse_json_text

    if arg == "-":
        raw = sys.stdin.buffer.read()
        return parse_case(parse_json_text(raw, "<stdin>"), "<stdin>", kb)
    return load_case(arg, kb)


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kineret-asp")
def main() -> None:
    """Cigna Coverage Policy IP0243 (anakinra, Kineret) as clingo rules.

    Anything but an approval is routed to a clinical reviewer: this program
    never denies a request on its own.
    """


@main.command()
@click.argument("cases", nargs=-1, required=True)
@report_format_option
@kb_option
@handle_errors
def evaluate(cases: tuple[str, ...], fmt: str, kb_dir: Optional[Path]) -> None:
    """Decide one or more cases (JSON, or .lp case facts; - reads stdin)."""
    from .api import evaluate_many
    from .decision import render_text
    from .knowledge import load_kb

    kb = load_kb(kb_dir)
    loaded = []
    errors = []
    for arg in cases:
        try:
            loaded.append(read_case_arg(arg, kb))
        except CaseError as exc:
            errors.extend(exc.lines())
    decisions = list(zip(loaded, evaluate_many(loaded, kb)))
    if fmt == "json":
        payload = [d.to_dict() for _, d in decisions]
        if decisions:
            click.echo(dump_json(payload[0] if len(cases) == 1 else payload))
    elif fmt in ("markdown", "html"):
        from .report import render_report, review_items

        if decisions:
            click.echo(render_report(review_items([c for c, _ in decisions], [d for _, d in decisions], kb), kb, fmt), nl=False)
    else:
        click.echo("\n".join(render_text(d, kb.vocabulary, c, kb) for c, d in decisions), nl=False)
    for line in errors:
        click.echo(f"kineret-asp: {line}", err=True)
    if errors:
        sys.exit(EXIT_INPUT)


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--coverage", is_flag=True, help="List, for every criterion, the cases where it was met and unmet.")
@format_option
@kb_option
@handle_errors
def test_cmd(paths: tuple[Path, ...], coverage: bool, fmt: str, kb_dir: Optional[Path]) -> None:
    """Run the example cases that carry an expect block (default: facts/)."""
    from .casetests import format_report, run_case_tests
    from .knowledge import load_kb

    kb = load_kb(kb_dir)
    targets = list(paths) or [Path("facts")]
    for t in targets:
        if not t.exists():
            fail(f"{t}: no such file or folder")
    report = run_case_tests(targets, kb)
    if not report.results:
        fail(f"no case with an expect block under {', '.join(map(str, targets))}")
    if fmt == "json":
        payload: dict[str, Any] = {"passed": report.passed, "failed": report.failed, "results": [r.to_dict() for r in report.results]}
        if coverage:
            payload["coverage"] = report.coverage.to_dict()
        click.echo(dump_json(payload))
    else:
        click.echo(format_report(report, coverage), nl=False)
    sys.exit(1 if report.failed else 0)


@main.command("what-if")
@click.argument("case")
@click.option("--add", "adds", multiple=True, metavar="PATH=VALUE", help="Add an item to a list field: FIELD=KEY, or FIELD='{...}' (JSON) for an entry with fields. 'kineret-asp schema case' lists the fields.")
@click.option("--remove", "removes", multiple=True, metavar="PATH[=VALUE]", help="Remove the matching items of a list field (FIELD=VALUE), or an entry by its index (FIELD[1]).")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE", help="Set a field (FIELD=VALUE) or a field of an entry (FIELD[0].NAME=VALUE); null clears it.")
@click.option("--changes", "changes_file", type=click.Path(path_type=Path, exists=True, dir_okay=False), help="A JSON list of changes [{op, path, value}], applied before the options.")
@format_option
@kb_option
@handle_errors
def what_if_cmd(case: str, adds: tuple[str, ...], removes: tuple[str, ...], sets: tuple[str, ...], changes_file: Optional[Path], fmt: str, kb_dir: Optional[Path]) -> None:
    """Decide CASE before and after changes; show the criteria that flipped.

    Options apply in order: --changes, then every --remove, --set, --add.
    """
    from .case import parse_json_text
    from .changes import parse_assignment
    from .knowledge import load_kb
    from .whatif import render_what_if, what_if

    kb = load_kb(kb_dir)
    loaded = read_case_arg(case, kb)
    changes: list[Any] = []
    if changes_file is not None:
        data = parse_json_text(changes_file.read_bytes(), str(changes_file))
        if not isinstance(data, list):
            raise CaseError(str(changes_file), "", "expected a JSON list of changes")
        changes.extend(data)
    changes += [parse_assignment(t, "remove") for t in removes]
    changes += [parse_assignment(t, "set") for t in sets]
    changes += [parse_assignment(t, "add") for t in adds]
    result = what_if(loaded, changes, kb)
    click.echo(dump_json(result.to_dict()) if fmt == "json" else render_what_if(result, kb), nl=fmt == "json")


@main.command("missing")
@click.argument("case")
@click.option("--expand", is_flag=True, help="List every single option (each any-of choice made) instead of grouped options.")
@report_format_option
@kb_option
@handle_errors
def missing_cmd(case: str, expand: bool, fmt: str, kb_dir: Optional[Path]) -> None:
    """What documentation is missing for approval: every smallest way to get there."""
    from .abduction import missing, render_missing
    from .knowledge import load_kb

    kb = load_kb(kb_dir)
    result = missing(read_case_arg(case, kb), kb)
    if fmt in ("markdown", "html"):
        from .report import ReviewCase, render_report

        click.echo(render_report([ReviewCase(result.case, result.decision, result)], kb, fmt), nl=False)
        return
    if fmt == "json":
        payload = result.to_dict()
        if expand:
            payload["expanded"] = [[c.to_dict() for c in combo] for combo in result.expanded()]
        click.echo(dump_json(payload))
        return
    click.echo(render_missing(result, kb), nl=False)
    if expand and result.options:
        click.echo("\nEvery single option:")
        for n, combo in enumerate(result.expanded(), 1):
            click.echo(f"  {n}. " + "; ".join(c.describe() for c in combo))


@main.command("check")
@kb_option
@format_option
def check_cmd(kb_dir: Optional[Path], fmt: str) -> None:
    """Check a KB like a compiler: file:line:col: error|warning: message."""
    from .check import check_kb

    report = check_kb(kb_dir)
    if fmt == "json":
        click.echo(dump_json(report.to_dict()))
    else:
        for d in report.diagnostics:
            click.echo(str(d))
        click.echo(f"{report.errors} error(s), {report.warnings} warning(s)")
    sys.exit(1 if report.errors else 0)


@main.command("verify")
@click.option("--property", "only", multiple=True, help="Check only this property (by name); repeatable.")
@format_option
@kb_option
@handle_errors
def verify_cmd(only: tuple[str, ...], fmt: str, kb_dir: Optional[Path]) -> None:
    """Check the KB's properties over every case of its declared space."""
    from .knowledge import load_kb
    from .verify import render_results, verify_kb

    kb = load_kb(kb_dir)
    results = verify_kb(kb, list(only) or None)
    if only and not results:
        fail(f"no property named {', '.join(only)}")
    if fmt == "json":
        click.echo(dump_json({"holds": all(r.holds for r in results), "properties": [r.to_dict() for r in results]}))
    else:
        click.echo(render_results(results), nl=False)
    sys.exit(0 if all(r.holds for r in results) else 1)


@main.command("diff")
@click.argument("old_kb", type=click.Path(path_type=Path, readable=False))
@click.argument("new_kb", type=click.Path(path_type=Path, readable=False))
@format_option
@handle_errors
def diff_cmd(old_kb: Path, new_kb: Path, fmt: str) -> None:
    """Which classes of cases change decision from OLD_KB to NEW_KB (over NEW_KB's space)."""
    from .diff import diff, render_diff
    from .knowledge import load_kb

    old, new = load_kb(old_kb), load_kb(new_kb)
    report = diff(old, new)
    if fmt == "json":
        click.echo(dump_json({"changes": len(report.classes), "classes": [c.to_dict(new) for c in report.classes]}))
    else:
        click.echo(render_diff(report, new), nl=False)


@main.command("batch")
@click.argument("input_path", metavar="IN.jsonl", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("-o", "--output", "output_path", type=click.Path(path_type=Path, dir_okay=False), help="Write records here (default: stdout).")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes.")
@click.option("--resume", is_flag=True, help="Continue after the last complete record of --output.")
@click.option("--chunk-size", type=click.IntRange(1, 100_000), default=1000, show_default=True, help="Cases per clingo grounding.")
@click.option("--time-limit", type=click.FloatRange(min=0.001), default=10.0, show_default=True, help="Seconds the solver may spend on one case.")
@click.option("--no-cache", is_flag=True, help="Solve every case, even one whose facts were seen before.")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary on stderr.")
@click.option("--progress/--no-progress", "show_progress", default=None, help="Force the progress bar on or off (default: on when stderr is a terminal).")
@kb_option
@handle_errors
def batch_cmd(input_path: Path, output_path: Optional[Path], jobs: int, resume: bool, chunk_size: int, time_limit: float, no_cache: bool, quiet: bool, show_progress: Optional[bool], kb_dir: Optional[Path]) -> None:
    """Decide every line of IN.jsonl (one case per line); one record per line, in order."""
    from .batch import CACHE_ENTRIES, Progress, resume_point, run_batch
    from .knowledge import load_kb

    kb = load_kb(kb_dir)
    if resume and output_path is None:
        fail("--resume needs --output: records written to stdout cannot be resumed")
    name = "<stdin>" if str(input_path) == "-" else str(input_path)
    with contextlib.ExitStack() as files:
        try:
            source = sys.stdin.buffer if name == "<stdin>" else files.enter_context(open(input_path, "rb"))
        except OSError as exc:
            fail(f"{input_path}: cannot read: {exc.strerror or exc}")
        start = resume_point(output_path) if resume and output_path is not None else 0
        try:
            sink = files.enter_context(open(output_path, "ab" if resume else "wb")) if output_path is not None else sys.stdout.buffer
        except OSError as exc:
            fail(f"{output_path}: cannot write: {exc.strerror or exc}")
        enabled = (sys.stderr.isatty() if show_progress is None else show_progress) and not quiet
        summary = run_batch(source, sink, kb, name, jobs=jobs, chunk_size=chunk_size, start=start, time_limit=time_limit, cache=0 if no_cache else CACHE_ENTRIES, progress=Progress(enabled))
    if not quiet:
        rate = summary.records / max(summary.seconds, 1e-9)
        resumed = f", resumed after {start}" if start else ""
        click.echo(f"kineret-asp batch: {summary.records} records ({summary.errors} errors{resumed}) in {summary.seconds:.2f} s, {rate:,.0f} cases/s", err=True)


@main.command("schema")
@click.argument("name", required=False, metavar="case|decision|change|record")
@click.option("--write", "write_dir", type=click.Path(path_type=Path, file_okay=False), help="Write every schema of every version of the KB tree under DIR/<policy>/<version>/ (the repository keeps them in schemas/).")
@kb_option
@handle_errors
def schema_cmd(name: Optional[str], write_dir: Optional[Path], kb_dir: Optional[Path]) -> None:
    """Print the JSON Schema (draft 2020-12) of a case, a decision, a what-if change or a batch record."""
    from .errors import did_you_mean
    from .jsonschema_export import NAMES, schema_text, write_schemas
    from .knowledge import load_kb

    if write_dir is not None:
        if name is not None:
            fail("--write writes every schema: give no NAME with it")
        for path in write_schemas(kb_dir, write_dir):
            click.echo(f"wrote {path}", err=True)
        return
    if name not in NAMES:
        hint = did_you_mean(name, NAMES) if name else ""
        fail(f"expected a schema name, one of {', '.join(NAMES)}, got {name!r}{hint}" if name else f"expected a schema name: one of {', '.join(NAMES)}")
    click.echo(schema_text(load_kb(kb_dir), name), nl=False)


@main.command("vocabulary")
@click.argument("name", required=False)
@format_option
@kb_option
@handle_errors
def vocabulary_cmd(name: Optional[str], fmt: str, kb_dir: Optional[Path]) -> None:
    """List every vocabulary (or NAME's) with its keys, their words and details: the keys a case may use."""
    from .knowledge import load_kb
    from .listing import listing_json, render_listing, vocabularies

    kb = load_kb(kb_dir)
    listings = vocabularies(kb, name)
    click.echo(listing_json(listings) if fmt == "json" else render_listing(listings, kb), nl=fmt == "json")
