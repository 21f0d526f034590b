"""The ``kineret-asp`` command.

Every command that reads a KB takes ``--kb DIR`` (default: the packaged KB).
User mistakes (a bad case, a broken KB) end with one line on stderr and exit
code 2, never a traceback.
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import click

from .errors import CaseError, KbError, KineretError

EXIT_INPUT = 2


def kb_option(func: Callable) -> Callable:
    return click.option("--kb", "kb_dir", type=click.Path(path_type=Path), default=None, help="KB folder to use (default: the packaged kb/).")(func)


def format_option(func: Callable) -> Callable:
    return click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format.")(func)


def fail(message: str) -> None:
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
            fail(exc.line())
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
@format_option
@kb_option
@handle_errors
def evaluate(cases: tuple[str, ...], fmt: str, kb_dir: Optional[Path]) -> None:
    """Decide one or more cases (JSON, or .lp case facts; - reads stdin)."""
    from .api import evaluate as run
    from .decision import render_text
    from .knowledge import load_kb

    kb = load_kb(kb_dir)
    loaded = []
    errors = []
    for arg in cases:
        try:
            loaded.append(read_case_arg(arg, kb))
        except CaseError as exc:
            errors.append(exc.line())
    decisions = [(c, run(c, kb)) for c in loaded]
    if fmt == "json":
        payload = [d.to_dict() for _, d in decisions]
        if decisions:
            click.echo(dump_json(payload[0] if len(cases) == 1 else payload))
    else:
        click.echo("\n".join(render_text(d, kb.vocabulary, c) for c, d in decisions), nl=False)
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
