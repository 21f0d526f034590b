"""The ``kineret-asp`` command.

Every command that reads a KB takes ``--kb DIR`` (default: the packaged KB).
User mistakes (a bad case, a broken KB, a bad option value) end with one line
on stderr and exit code 2; a failure of the environment (a full disk, a
closed pipe, a read-only folder) with one line and exit code 1; work stopped
at ``--time-limit`` or ``--memory-limit`` with one line naming the limit and
exit code 3. Never a traceback. The README's "Exit codes" table lists them.

Every command that grounds or solves runs its work in a worker process
(:mod:`kineret_asp.limits`) that is stopped at the limits, so a KB that
grounds without end cannot hang the command or fill the machine's memory.
"""

from __future__ import annotations

import contextlib
import functools
import io
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import click

from .errors import CaseError, KbError, KineretError
from .limits import DEFAULT_MEMORY_MB, EXIT_LIMIT, Limits, MegaBytes, PositiveSeconds, run_limited
from .safetext import dumps, safe_text

EXIT_FAILED = 1  # a check said no (test, check, verify, diff --exit-code, batch errors), or the environment failed
EXIT_INPUT = 2


def kb_option(func: Callable) -> Callable:
    return click.option(
        "--kb",
        "kb_dir",
        type=click.Path(path_type=Path, readable=False),
        default=None,
        callback=_kb_in_use,
        help="KB folder to use: a KB tree (each case decided by the version in force on its date of service) or one version's folder (default: the packaged kb/).",
    )(func)


def _kb_in_use(ctx: click.Context, param: click.Parameter, value: Optional[Path]) -> Optional[Path]:
    """A missing --kb folder is one plain line; without --kb, say when ./kb is not the KB in use."""
    if value is not None:
        if not value.exists():
            fail(f"{value}: KB folder does not exist")
        if not value.is_dir():
            fail(f"{value}: KB path is not a folder")
        return value
    from .cases.versions import shadowing_warning

    warning = shadowing_warning(Path.cwd())
    if warning:
        click.echo(f"kineret-asp: warning: {warning}", err=True)
    return None


def format_option(func: Callable) -> Callable:
    return click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format.")(func)


def report_format_option(func: Callable) -> Callable:
    """--format for the answers a reviewer files: text, json, or a Markdown or HTML review page."""
    return click.option(
        "--format", "fmt", type=click.Choice(["text", "json", "markdown", "html"]), default="text", show_default=True, help="Output format (markdown and html: a review page with what is missing)."
    )(func)


def fail(*messages: str, code: int = EXIT_INPUT) -> None:
    for message in messages:
        click.echo(f"kineret-asp: {safe_text(message)}", err=True)
    sys.exit(code)


def kb_error_line(exc: KbError) -> str:
    return exc.summary_line()


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


def _captured(func: Callable, args: tuple, kwargs: dict) -> tuple[bytes, bytes, int, Any]:
    """Run a command's body with its output kept (in a worker: the parent writes it).

    A body may return a follow-up (an object with ``finish() -> exit code``)
    for what only the parent can do once the output is written: ask the
    user at the terminal (``test --update`` without ``--yes``).
    """
    out, err = io.BytesIO(), io.BytesIO()
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8", errors="backslashreplace", write_through=True)
    sys.stderr = io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True)
    code = 0
    follow_up = None
    try:
        follow_up = func(*args, **kwargs)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_FAILED)
    sys.stdout.flush()
    sys.stderr.flush()
    return out.getvalue(), err.getvalue(), code, follow_up if hasattr(follow_up, "finish") else None


def limited(default_seconds: float) -> Callable[[Callable], Callable]:
    """Give a command ``--time-limit`` and ``--memory-limit`` and run its body in a worker within them."""

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, time_limit: float, memory_limit: int, **kwargs: Any) -> None:
            limits = Limits(time_limit, memory_limit)
            name = click.get_current_context().info_name
            outcome = run_limited(lambda: _captured(func, args, kwargs), limits)
            if not outcome.ok:
                if outcome.status in ("time", "memory"):
                    fail(f"{name}: stopped at {limits.describe(outcome.status)}; nothing was decided", code=EXIT_LIMIT)
                fail(f"{name}: internal error: {outcome.detail}", code=EXIT_FAILED)
            out, err, code, follow_up = outcome.value
            write_stdout(out)
            if err:
                sys.stderr.buffer.write(err)
                sys.stderr.flush()
            if follow_up is not None:
                code = follow_up.finish()
            sys.exit(code)

        wrapper = click.option("--memory-limit", type=MegaBytes(), default=DEFAULT_MEMORY_MB, show_default=True, help="Memory the worker process may use, in MB.")(wrapper)
        return click.option("--time-limit", type=PositiveSeconds(), default=default_seconds, show_default=True, help="Seconds the command may take, grounding included.")(wrapper)

    return decorate


def write_stdout(data: bytes) -> None:
    """Write bytes to stdout (errors are turned into one line by the command group)."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


def read_arg(arg: str, chooser: Any):
    """A case argument (a JSON case, a FHIR Bundle or ``.lp`` facts; ``-``: stdin, capped) read by the one loader."""
    from .cases.load import load

    return load(sys.stdin.buffer, chooser, shown="<stdin>") if arg == "-" else load(arg, chooser)


def kb_line(kb: Any) -> str:
    """The line naming the KB folder and version in use (the KB's own words)."""
    return kb.vocabulary.word("kb_line", kb=kb.root, folder=kb.folder)


def version_options(func: Callable) -> Callable:
    """``--policy`` and ``--version``: which version of a KB tree a command that decides no case reads."""
    func = click.option("--version", "version", metavar="DATE", help="The version to read: its effective-from date, or any date it is in force on (default: the latest).")(func)
    return click.option("--policy", "policy", metavar="ID", help="The policy to read (default: the tree's only policy).")(func)


def chosen_kb(kb_dir: Optional[Path], policy: Optional[str], version: Optional[str], *, to_stderr: bool = True) -> Any:
    """The version --kb, --policy and --version choose, loaded; the line saying which (on stderr unless the caller prints it)."""
    from .knowledge.base import choose_version
    from .knowledge.layout import version_folders

    choice = choose_version(kb_dir, policy=policy, version=version)
    if to_stderr and choice.how != "folder" and (choice.how != "latest" or len(version_folders(choice.kb.root)) > 1):
        click.echo(version_line(choice), err=True)  # which version, when the tree leaves a choice (a tree of one version has none)
    return choice


def every_version(kb_dir: Optional[Path], policy: Optional[str], version: Optional[str]) -> list:
    """The versions a command without a case reads: every version of every policy in a tree of several (none narrowed by --policy or --version), else the one chosen_kb chooses."""
    from .knowledge.base import VersionChoice, load_tree
    from .knowledge.layout import _check_folder, default_kb_path, tree_root

    if policy is None and version is None:
        folder = Path(kb_dir) if kb_dir is not None else default_kb_path()
        _check_folder(folder)
        _, given = tree_root(folder.resolve())
        if given is None:
            policies = load_tree(folder).policies
            if len(policies) > 1:
                return [VersionChoice(kb, "every", pid) for pid, versions in policies.items() for kb in versions]
    return [chosen_kb(kb_dir, policy, version, to_stderr=False)]


def version_line(choice: Any) -> str:
    """``KB: kb (policies/IP0243/2024-06-01: the latest version of IP0243)``, in the KB's words."""
    kb = choice.kb
    how = kb.vocabulary.word(f"version_chosen_{choice.how}", policy=choice.policy, date=choice.on or "")
    return kb.vocabulary.word("kb_version_line", kb=kb.root, folder=kb.folder, how=how)


def dump_json(data: Any) -> str:
    return dumps(data, indent=2)


def io_error_line(exc: OSError, what: str = "") -> str:
    """An environment failure in one line: what failed and the system's words for why."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = what or (safe_text(exc.filename) if getattr(exc, "filename", None) else "")
    return f"{where}: {reason}" if where else reason


class CommandGroup(click.Group):
    """The command group: every usage error, interruption and I/O failure ends in one line."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        code = 0
        try:
            returned = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = returned if isinstance(returned, int) else 0
            code = _flush_stdout() or code
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.ClickException as exc:
            message = " ".join(exc.format_message().split())
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if isinstance(exc, click.UsageError) and ctx is not None else ""
            _say(f"{safe_text(message)}{hint}")
            code = exc.exit_code
        except click.exceptions.Abort:
            _say("interrupted")
            code = 130
        except KeyboardInterrupt:
            _say("interrupted")
            code = 130
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_FAILED)
            code = _flush_stdout() or code
        except OSError as exc:
            _say(io_error_line(exc, "stdout" if exc.filename is None else ""))
            _silence_stdout()
            code = EXIT_FAILED
        sys.exit(code)


def _flush_stdout() -> int:
    """Flush stdout now, so that a full disk or a closed pipe is one line and exit 1, not a traceback at exit."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        _say(io_error_line(exc, "stdout"))
        _silence_stdout()
        return EXIT_FAILED
    except ValueError:
        pass
    return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def _say(line: str) -> None:
    try:
        sys.stderr.write(f"kineret-asp: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kineret-asp")
def main() -> None:
    """Cigna Coverage Policy IP0243 (anakinra, Kineret) as clingo rules.

    Anything but an approval is routed to a clinical reviewer: this program
    never denies a request on its own.
    """


@main.command()
@click.argument("cases", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "jsonl", "markdown", "html"]),
    default="text",
    show_default=True,
    help="Output format. jsonl: one decision per line, whatever the number of cases (one shape for a program to read); json: one decision for one case, a list for several (kept as it was); markdown and html: a review page with what to ask the prescriber.",
)
@click.option("--log", "log_it", is_flag=True, help="Also record each decision in the decision log (--db).")
@click.option(
    "--db",
    "db_url",
    default=None,
    metavar="URL",
    help="The decision log of --log: postgresql://..., sqlite:///path, or a file (default: $KINERET_ASP_DB, else ~/.local/state/kineret-asp/decisions.sqlite3).",
)
@kb_option
@limited(60.0)
@handle_errors
def evaluate(cases: tuple[str, ...], fmt: str, log_it: bool, db_url: Optional[str], kb_dir: Optional[Path]) -> None:
    """Decide one or more cases (JSON, a FHIR R4 Bundle, or .lp case facts; - reads stdin)."""
    from .api import decide_many
    from .cases.versions import Chooser
    from .decisions.decision import render_text

    chooser = Chooser.of(kb_dir)
    loaded = []
    errors = []
    for arg in cases:
        try:
            loaded.append(read_arg(arg, chooser))
        except CaseError as exc:
            errors.extend(exc.lines())
    decisions = [((item.case, item.choice), d) for item, d in zip(loaded, decide_many(loaded))]
    if log_it and decisions:
        _log_decisions(db_url, [(case, choice.kb, d) for (case, choice), d in decisions])
    if fmt == "jsonl":
        for _, d in decisions:
            click.echo(dumps(d.to_dict(), indent=None))
    elif fmt == "json":
        payload = [d.to_dict() for _, d in decisions]
        if decisions:
            click.echo(dump_json(payload[0] if len(cases) == 1 else payload))
    elif fmt in ("markdown", "html"):
        from .explain.review_page import render_report, review_items

        if decisions:  # missing is answered with each case's own version; the page takes the first case's words
            words = decisions[0][0][1].kb
            click.echo(render_report(review_items([c for (c, _), _ in decisions], [d for _, d in decisions], chooser), words, fmt), nl=False)
    else:
        click.echo("\n".join(render_text(d, ch.kb.vocabulary, c, ch.kb) for (c, ch), d in decisions), nl=False)
    for line in errors:
        click.echo(f"kineret-asp: {line}", err=True)
    if errors:
        sys.exit(EXIT_INPUT)


def _log_decisions(db_url: Optional[str], decided: list) -> None:
    """evaluate --log: each decision recorded (source: evaluate); a log that cannot be written is one line, exit 1."""
    from .decision_log import Entry, LogError, open_log
    from .decisions.decision import render_text

    try:
        log = open_log(db_url)
        for case, kb, decision in decided:
            log.record(Entry("evaluate", case.to_dict(), decision.to_dict(), None, None, None, render_text(decision, kb.vocabulary, case, kb)), kb)
    except LogError as exc:
        fail(str(exc), code=EXIT_FAILED)


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--coverage", is_flag=True, help="List, for every criterion of each version, the cases where it was met and unmet.")
@click.option("--junit-xml", "junit_path", type=click.Path(path_type=Path, dir_okay=False), help="Also write the results as JUnit XML (for CI test reports).")
@click.option(
    "--update",
    is_flag=True,
    help="Show, as a diff, the expect block each failing case would need, and write it (asked for each; --yes writes all). A case whose input fails validation is never touched.",
)
@click.option("--yes", "-y", is_flag=True, help="With --update: write every new expect block without asking.")
@click.option(
    "--mutate",
    is_flag=True,
    help="Change the version's deciding rules and tables one edit at a time (a mutant) and run its examples and properties on each: the mutation score, and every mutant they miss with a case that tells it apart.",
)
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="With --mutate: worker processes sharing the mutants.")
@click.option("--since", "since", metavar="REV", help="With --mutate: only the statements changed since the git revision REV.")
@click.option("--mutant-time-limit", type=PositiveSeconds(), default=10.0, show_default=True, help="With --mutate: seconds each solve of a mutant may take.")
@click.option(
    "--min-score", type=click.FloatRange(0, 100), default=None, help="With --mutate: exit 1 when the mutation score is below this percentage (default: when a survivor has no known-gap comment)."
)
@click.option(
    "--sample",
    type=click.IntRange(1, None),
    default=None,
    metavar="N",
    help="With --mutate: only N of the mutants, drawn at random (the same N every run for one --seed): a quick estimate of the score.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="With --sample: the seed of the draw.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text", show_default=True, help="Output format (sarif, with --mutate: each survivor and equivalent mutant at its place)."
)
@kb_option
@limited(300.0)
@handle_errors
def test_cmd(
    paths: tuple[Path, ...],
    coverage: bool,
    junit_path: Optional[Path],
    update: bool,
    yes: bool,
    mutate: bool,
    jobs: int,
    since: Optional[str],
    mutant_time_limit: float,
    min_score: Optional[float],
    sample: Optional[int],
    seed: int,
    fmt: str,
    kb_dir: Optional[Path],
) -> Any:
    """Run the example cases that carry an expect block.

    Without PATHS: the cases/ folder of every version of the KB, each case
    decided by its own version (its date of service, else its folder).
    With --mutate: how many wrong edits of the version's rules and tables
    its examples and properties would notice.
    """
    from .author.example_cases import example_folders, format_report, run_case_tests
    from .cases.versions import Chooser
    from .knowledge.layout import display_path

    if mutate:
        if paths or update or coverage or junit_path is not None:
            fail("--mutate runs the version's own examples and properties: give it no PATHS, --update, --coverage or --junit-xml")
        return _test_mutate(kb_dir, jobs, since, mutant_time_limit, min_score, sample, seed, fmt)
    if fmt == "sarif":
        fail("--format sarif goes with --mutate")
    for name, given in (("--jobs", jobs != 1), ("--since", since is not None), ("--min-score", min_score is not None), ("--sample", sample is not None), ("--seed", seed != 0)):
        if given:
            fail(f"{name} goes with --mutate")
    if yes and not update:
        fail("--yes goes with --update")
    if update and fmt == "json" and not yes:
        fail("--update --format json cannot ask for each block: add --yes")
    chooser = Chooser.of(kb_dir)
    targets = list(paths) or example_folders(chooser)
    for t in targets:
        if not t.exists():
            fail(f"{t}: no such file or folder")
    report = run_case_tests(targets, chooser)
    if not report.results:
        fail(f"no case with an expect block under {', '.join(display_path(t) for t in targets) or chooser.root}")
    if update:
        return _test_update(report, chooser, coverage, junit_path, yes, fmt)
    if junit_path is not None:
        from .author.ci_reports import junit_xml

        try:
            junit_path.write_text(junit_xml(report), encoding="utf-8")
        except OSError as exc:
            fail(io_error_line(exc, str(junit_path)), code=EXIT_FAILED)
    tables = (_table_coverage(report) if not paths else [chooser.default().vocabulary.word("pinning_own_cases")]) if coverage else []
    if fmt == "json":
        payload: dict[str, Any] = {"kb": str(chooser.root), "passed": report.passed, "failed": report.failed, "results": [r.to_dict() for r in report.results]}
        if coverage:
            from .author.mutation import table_coverage_dict

            payload["coverage"] = {**report.coverage.to_dict(), "tables": [table_coverage_dict(t) if not isinstance(t, str) else {"not_measured": t} for t in tables]}
        click.echo(dump_json(payload))
    else:
        click.echo(kb_line(chooser.default()) if chooser.fixed is not None else f"KB: {chooser.root}")
        text = format_report(report, coverage)
        if tables:
            from .author.mutation import render_table_coverage

            summary = text.splitlines()[-1]
            text = "\n".join(text.splitlines()[:-1]) + "\n" + "".join(render_table_coverage(t) if not isinstance(t, str) else f"\n{t}\n" for t in tables) + summary + "\n"
        click.echo(text, nl=False)
    sys.exit(1 if report.failed else 0)


def _table_coverage(report: Any) -> list:
    """test --coverage: the tables' pinning of each version whose cases ran (or why it is not measured: its cases fail)."""
    from .author.mutation import MutateError, own_examples_fail, table_pinning
    from .knowledge.base import load_kb

    out: list = []
    for cov in report.coverage.versions:
        ran = [r for r in report.results if r.decision is not None and r.decision.provenance is not None and r.decision.provenance.folder == cov.folder and r.file is not None]
        if not ran:
            continue
        p = ran[0].decision.provenance
        version = load_kb(Path(p.kb) / p.folder)
        folder = version.path.resolve()
        # an example of the version's folder that fails (one a tree routes elsewhere or refuses included): nothing to measure against
        failing = [r.path for r in report.results if not r.passed and r.file is not None and r.file.resolve().is_relative_to(folder)]
        if failing:
            out.append(version.vocabulary.word("pinning_not_measured", why=str(own_examples_fail(failing))))
            continue
        try:
            out.append(table_pinning(version, cases=[r.file for r in ran]))
        except MutateError as exc:
            out.append(version.vocabulary.word("pinning_not_measured", why=str(exc)))
    return out


@main.command("what-if")
@click.argument("case")
@click.option(
    "--add", "adds", multiple=True, metavar="PATH=VALUE", help="Add an item to a list field: FIELD=KEY, or FIELD='{...}' (JSON) for an entry with fields. 'kineret-asp schema case' lists the fields."
)
@click.option("--remove", "removes", multiple=True, metavar="PATH[=VALUE]", help="Remove the matching items of a list field (FIELD=VALUE), or an entry by its index (FIELD[1]).")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE", help="Set a field (FIELD=VALUE) or a field of an entry (FIELD[0].NAME=VALUE); null clears it.")
@click.option("--changes", "changes_file", type=click.Path(path_type=Path, exists=True, dir_okay=False), help="A JSON list of changes [{op, path, value}], applied before the options.")
@format_option
@kb_option
@limited(60.0)
@handle_errors
def what_if_cmd(case: str, adds: tuple[str, ...], removes: tuple[str, ...], sets: tuple[str, ...], changes_file: Optional[Path], fmt: str, kb_dir: Optional[Path]) -> None:
    """Decide CASE before and after changes; show the criteria that flipped.

    Options apply in order: --changes, then every --remove, --set, --add.
    """
    from .cases.changes import parse_assignment
    from .cases.files import MAX_FILE_BYTES, parse_json_text, read_case_file
    from .cases.versions import Chooser
    from .decisions.decision import provenance_lines
    from .explain.whatif import render_what_if, what_if

    chooser = Chooser.of(kb_dir)
    read = read_arg(case, chooser)
    loaded, choice = read.case, read.choice
    changes: list[Any] = []
    if changes_file is not None:
        data = parse_json_text(read_case_file(changes_file, str(changes_file), MAX_FILE_BYTES), str(changes_file))
        if not isinstance(data, list):
            raise CaseError(str(changes_file), "", "expected a JSON list of changes")
        changes.extend(data)
    changes += [parse_assignment(t, "remove") for t in removes]
    changes += [parse_assignment(t, "set") for t in sets]
    changes += [parse_assignment(t, "add") for t in adds]
    result = what_if(loaded, changes, chooser)
    if fmt == "json":
        click.echo(dump_json(result.to_dict()))
        return
    kb = choice.kb
    header = provenance_lines(result.before, kb.vocabulary, result.case)[:2]
    if result.after.provenance != result.before.provenance:
        header += provenance_lines(result.after, kb.vocabulary, result.changed_case)[:2]
    click.echo("\n".join(header))
    click.echo(render_what_if(result, kb), nl=False)


@main.command("missing")
@click.argument("case")
@click.option("--expand", is_flag=True, help="List every single option (each any-of choice made) instead of grouped options.")
@report_format_option
@kb_option
@limited(60.0)
@handle_errors
def missing_cmd(case: str, expand: bool, fmt: str, kb_dir: Optional[Path]) -> None:
    """What documentation is missing for approval: every smallest way to get there."""
    from .cases.versions import Chooser
    from .decisions.decision import provenance_lines
    from .explain.missing import missing, render_missing

    chooser = Chooser.of(kb_dir)
    read = read_arg(case, chooser)
    kb = read.choice.kb
    result = missing(read.case, chooser)
    if fmt in ("markdown", "html"):
        from .explain.review_page import ReviewCase, render_report

        click.echo(render_report([ReviewCase(result.case, result.decision, result)], kb, fmt), nl=False)
        return
    if fmt == "json":
        payload = result.to_dict()
        if expand:
            payload["expanded"] = [[c.to_dict() for c in combo] for combo in result.expanded()]
        click.echo(dump_json(payload))
        return
    click.echo("\n".join(provenance_lines(result.decision, kb.vocabulary, result.case)[:2]))
    click.echo(render_missing(result, kb), nl=False)
    if expand and result.options:
        click.echo("\nEvery single option:")
        for n, combo in enumerate(result.expanded(), 1):
            click.echo(f"  {n}. " + "; ".join(c.describe() for c in combo))


@main.command("check")
@kb_option
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text", show_default=True, help="Output format (sarif: SARIF 2.1.0, for code-scanning annotations).")
@click.option("--strict", is_flag=True, help="Also fail on a passage of a strict section of the policy's text that no rule cites and no waiver explains.")
@limited(300.0)
def check_cmd(kb_dir: Optional[Path], fmt: str, strict: bool) -> None:
    """Check a KB like a compiler: file:line:col: error|warning: message."""
    from .author.check import check_kb
    from .knowledge.layout import default_kb_path

    report = check_kb(kb_dir, strict=strict)
    folder = (kb_dir or default_kb_path()).resolve()
    if fmt == "sarif":
        from .author.ci_reports import sarif_log

        click.echo(dump_json(sarif_log(report)))
    elif fmt == "json":
        click.echo(dump_json({**report.to_dict(), "kb": str(folder)}))
    else:
        for d in report.diagnostics:
            click.echo(str(d))
        click.echo(report.summary(folder))
    sys.exit(1 if report.errors else 0)


@main.command("verify")
@click.option("--property", "only", multiple=True, help="Check only this property (by name); repeatable.")
@format_option
@kb_option
@version_options
@limited(600.0)
@handle_errors
def verify_cmd(only: tuple[str, ...], fmt: str, kb_dir: Optional[Path], policy: Optional[str], version: Optional[str]) -> None:
    """Check the KB's properties over every case of its declared space (one version: --policy, --version; default the latest)."""
    from .author.verify import render_results, verify_kb

    choices = every_version(kb_dir, policy, version)
    runs = [(choice, verify_kb(choice.kb, list(only) or None)) for choice in choices]
    if only and not any(results for _, results in runs):
        fail(f"no property named {', '.join(only)}")
    holds = all(r.holds for _, results in runs for r in results)
    reports = [{"kb": str(c.kb.root), "version": c.kb.folder, "chosen_by": c.how, "holds": all(r.holds for r in results), "properties": [r.to_dict() for r in results]} for c, results in runs]
    if fmt == "json":
        click.echo(dump_json(reports[0] if len(choices) == 1 else {"kb": reports[0]["kb"], "holds": holds, "versions": reports}))
    else:
        for n, (choice, results) in enumerate(runs):
            click.echo(("\n" if n else "") + version_line(choice))
            click.echo(render_results(results), nl=False)
    sys.exit(0 if holds else 1)


@main.command("diff")
@click.argument("old_kb", required=False, type=click.Path(path_type=Path, readable=False))
@click.argument("new_kb", required=False, type=click.Path(path_type=Path, readable=False))
@click.option("--policy", "policy", metavar="ID", help="The policy whose versions --from and --to name (default: the KB's only policy).")
@click.option("--from", "from_version", metavar="DATE", help="The old version: its effective-from date.")
@click.option("--to", "to_version", metavar="DATE", help="The new version: its effective-from date.")
@click.option("--exit-code", "exit_code", is_flag=True, help="Exit 1 when some decision changes, 0 when none does (like git diff --exit-code).")
@click.option(
    "--examples",
    type=click.IntRange(1, 20),
    default=1,
    show_default=True,
    help="Up to N examples per class, smallest first, each read differently by the versions (a different set of criteria met and unmet, or of reasons).",
)
@click.option("--where", "where", multiple=True, metavar="FIELD=VALUE", help="Only the cases whose FIELD has VALUE (none: not given; LIST.FIELD=VALUE: some entry has it); repeatable, all must hold.")
@format_option
@kb_option
@limited(600.0)
@handle_errors
def diff_cmd(
    old_kb: Optional[Path],
    new_kb: Optional[Path],
    policy: Optional[str],
    from_version: Optional[str],
    to_version: Optional[str],
    exit_code: bool,
    examples: int,
    where: tuple[str, ...],
    fmt: str,
    kb_dir: Optional[Path],
) -> None:
    """Which classes of cases change decision from OLD_KB to NEW_KB (over both versions' case spaces).

    Either two folders, or two versions of one tree: --from DATE --to DATE
    (each a version's effective-from date, or a day it is in force). In a
    tree of several policies, --policy ID narrows to one; without it, each
    policy's versions in force on the two dates are diffed, labelled (a
    policy not in force on one date, or with one version on both, is named
    and not diffed). Each version
    decides a case on the fields it declares; classes are grouped by the
    change in the criteria's outcomes.
    """
    from .author.diff import diff, parse_where, render_diff
    from .author.trace import relate, render_changes, text_changes
    from .knowledge.base import load_kb

    if from_version or to_version or policy:
        if old_kb or new_kb or not (from_version and to_version):
            fail("diff takes two KB folders, or --from DATE --to DATE (and --policy ID) over one KB tree (--kb)")
        if policy is None and _diff_dates_over_policies(kb_dir, from_version, to_version, examples, where, fmt, exit_code):
            return
        old, new = load_kb(kb_dir, policy=policy, version=from_version), load_kb(kb_dir, policy=policy, version=to_version)
    elif old_kb and new_kb:
        pairs = _policy_pairs(old_kb, new_kb)
        if pairs is not None:  # two trees, one of them of several policies: each policy's latest versions, labelled
            diffs = [_policy_diff(old, new, {"from": _version_of(old), "to": _version_of(new)}, examples, where, fmt) for old, new in pairs]
            _echo_policy_diffs(diffs, fmt, exit_code)
            return
        old, new = load_kb(old_kb), load_kb(new_kb)
    else:
        fail("diff takes two KB folders, or --from DATE --to DATE (and --policy ID) over one KB tree (--kb)")
    report = diff(old, new, examples=examples, where=[parse_where(w) for w in where])
    changes = text_changes(old, new)
    if changes:
        relate(changes, report.classes, old, new)
    versions = {"from": _version_of(old), "to": _version_of(new)}
    if fmt == "json":
        click.echo(
            dump_json(
                {**versions, "changes": len(report.classes), "classes": [c.to_dict(new, old) for c in report.classes], "text_changes": None if changes is None else [c.to_dict() for c in changes]}
            )
        )
    else:
        click.echo(f"{versions['from']['label']} -> {versions['to']['label']}")
        click.echo(render_diff(report, new, changes, old) + render_changes(changes, new), nl=False)
    if exit_code and report.classes:
        sys.exit(EXIT_FAILED)


def _diff_dates_over_policies(kb_dir: Optional[Path], from_date: str, to_date: str, examples: int, where: tuple[str, ...], fmt: str, exit_code: bool) -> bool:
    """diff --from DATE --to DATE over a tree of several policies: each policy's versions in force on the two dates, labelled.

    A policy with no version in force on one of the dates, or with the same
    version on both, is named with what it has, and not diffed. False when
    the tree holds one policy (the caller diffs it as before).
    """
    from .errors import KbChoiceError
    from .knowledge.base import choose_version, load_tree

    policies = load_tree(kb_dir).policies
    if len(policies) < 2:
        return False
    out: list[tuple[Any, bool]] = []
    for pid in sorted(policies):
        ends = []
        for date in (from_date, to_date):
            try:
                ends.append(choose_version(kb_dir, policy=pid, version=date).kb)
            except KbChoiceError:
                ends.append(None)
        old, new = ends
        versions = {"policy": pid, "from": _version_of(old) if old is not None else None, "to": _version_of(new) if new is not None else None}
        if old is None or new is None or old.folder == new.folder:
            periods = ", ".join(kb.identity.period for kb in policies[pid])
            note = (
                f"no version in force on {from_date if old is None else to_date}; its versions: {periods}"
                if old is None or new is None
                else f"the same version is in force on {from_date} and {to_date}: no change"
            )
            if fmt == "json":
                out.append(({**versions, "changes": 0, "classes": [], "note": note}, False))
            else:
                shown = (old or new).identity.policy if (old or new) is not None else pid
                out.append((f"{versions['from']['label'] if old is not None else shown} -> {versions['to']['label'] if new is not None else shown}: {note}\n", False))
            continue
        out.append(_policy_diff(old, new, versions, examples, where, fmt))
    _echo_policy_diffs(out, fmt, exit_code)
    return True


def _policy_diff(old: Any, new: Any, versions: dict, examples: int, where: tuple[str, ...], fmt: str) -> tuple[Any, bool]:
    """One policy's diff within a diff over several: its entry (JSON value or text) and whether any class changed."""
    from .author.diff import diff, parse_where, render_diff

    report = diff(old, new, examples=examples, where=[parse_where(w) for w in where])
    if fmt == "json":
        return {**versions, "changes": len(report.classes), "classes": [c.to_dict(new, old) for c in report.classes]}, bool(report.classes)
    return f"{versions['from']['label']} -> {versions['to']['label']}\n" + render_diff(report, new, None, old), bool(report.classes)


def _echo_policy_diffs(diffs: list[tuple[Any, bool]], fmt: str, exit_code: bool) -> None:
    """Print each policy's diff (JSON: under "policies"), and exit 1 with --exit-code when any changed."""
    out = [entry for entry, _ in diffs]
    click.echo(dump_json({"policies": out}) if fmt == "json" else "\n".join(out), nl=fmt == "json")  # type: ignore[arg-type]
    if exit_code and any(changed for _, changed in diffs):
        sys.exit(EXIT_FAILED)


def _policy_pairs(old_kb: Path, new_kb: Path) -> Optional[list]:
    """Two KB trees of which one holds several policies: the latest version of each policy in both, old and new (None otherwise)."""
    from .knowledge.base import load_tree
    from .knowledge.layout import _check_folder, tree_root

    trees = []
    for folder in (old_kb, new_kb):
        _check_folder(folder)
        if tree_root(folder.resolve())[1] is not None:
            return None  # a version folder: one version
        trees.append(load_tree(folder).policies)
    if max(len(trees[0]), len(trees[1])) < 2:
        return None
    both = [pid for pid in trees[0] if pid in trees[1]]
    if not both:
        fail(f"the two KB trees share no policy ({', '.join(trees[0])}; {', '.join(trees[1])})")
    return [(trees[0][pid][-1], trees[1][pid][-1]) for pid in both]


def _test_mutate(kb_dir: Optional[Path], jobs: int, since: Optional[str], time_limit: float, min_score: Optional[float], sample: Optional[int], seed: int, fmt: str) -> None:
    """test --mutate: the mutation run, as text, JSON or SARIF; exit 1 below --min-score, or on a survivor no known-gap comment explains."""
    from .author.mutation import MutateError, mutate, mutation_diagnostics, render_mutation
    from .knowledge.base import load_kb

    kb = load_kb(kb_dir)
    try:
        report = mutate(kb, jobs=jobs, time_limit=time_limit, since=since, sample=sample, seed=seed)
    except MutateError as exc:
        fail(str(exc), code=exc.code)
    if fmt == "json":
        click.echo(dump_json(report.to_dict()))
    elif fmt == "sarif":
        from .author.check import CheckReport
        from .author.ci_reports import sarif_log

        click.echo(dump_json(sarif_log(CheckReport(mutation_diagnostics(report)))))
    else:
        click.echo(render_mutation(report), nl=False)
    below = min_score is not None and report.score is not None and report.score < min_score
    sys.exit(1 if below or (min_score is None and report.unexplained()) else 0)


def _test_update(report: Any, chooser: Any, coverage: bool, junit_path: Optional[Path], yes: bool, fmt: str) -> Any:
    """test --update: the failing cases' new expect blocks, written (--yes) or asked for in the parent (a follow-up)."""
    from .author.example_cases import UpdateSession, format_report, proposed_updates

    updates, _ = proposed_updates(report)
    session = UpdateSession(updates, report.passed, report.failed - len(updates), {k: v for k, v in chooser.default().vocabulary.words.items() if k.startswith("test_update")})
    if not yes:
        click.echo(kb_line(chooser.default()) if chooser.fixed is not None else f"KB: {chooser.root}")
        click.echo(format_report(report, coverage, leave_out={u.path for u in updates}), nl=False)
        return session
    written = session.write_all()
    if junit_path is not None:
        from .author.ci_reports import junit_xml

        try:
            junit_path.write_text(junit_xml(report), encoding="utf-8")
        except OSError as exc:
            fail(io_error_line(exc, str(junit_path)), code=EXIT_FAILED)
    if fmt == "json":
        payload: dict[str, Any] = {
            "kb": str(chooser.root),
            "passed": report.passed + len(written),
            "failed": report.failed - len(written),
            "updated": [u.to_dict() for u in written],
            "results": [r.to_dict() for r in report.results],
        }
        if coverage:
            payload["coverage"] = report.coverage.to_dict()
        click.echo(dump_json(payload))
    else:
        click.echo(kb_line(chooser.default()) if chooser.fixed is not None else f"KB: {chooser.root}")
        click.echo(format_report(report, coverage, updated=written, words=session.words), nl=False)
    sys.exit(1 if report.failed - len(written) else 0)


def _version_of(kb: Any) -> dict:
    """A version as diff names it: policy, effective-from, folder and KB."""
    ident = kb.identity
    return {"label": f"{ident.policy} {ident.period} ({kb.root / kb.folder})", "policy": ident.policy, "version": ident.effective_from, "folder": kb.folder, "kb": str(kb.root)}


@main.command("policies")
@format_option
@kb_option
@limited(120.0)
@handle_errors
def policies_cmd(fmt: str, kb_dir: Optional[Path]) -> None:
    """The policies of a KB tree and each one's versions: effective period, folder, content hash."""
    from .knowledge.base import load_tree

    tree = load_tree(kb_dir)
    listing = []
    for pid, versions in tree.policies.items():
        latest = versions[-1]
        listing.append(
            {
                "id": pid,
                "title": latest.vocabulary.title,
                "drug": latest.vocabulary.drug_name,
                "versions": [{"effective_from": v.identity.effective_from, "effective_to": v.identity.effective_to, "folder": v.folder, "rules_sha256": v.rules_sha256} for v in versions],
            }
        )
    if fmt == "json":
        click.echo(dump_json({"kb": str(tree.root), "framework_sha256": tree.framework_sha256, "policies": listing}))
        return
    click.echo(f"KB: {tree.root}")
    click.echo(f"framework  sha256 {tree.framework_sha256}")
    for p in listing:
        click.echo(f"{p['id']}  {p['title']} ({p['drug']})")
        for v in p["versions"]:
            period = f"{v['effective_from']}..{v['effective_to'] or ''}"
            click.echo(f"  {period:<22}  {v['folder']}  sha256 {v['rules_sha256']}")


@main.command("new-version")
@click.argument("policy", metavar="POLICY")
@click.option("--effective", required=True, metavar="YYYY-MM-DD", help="The first day the new version is in force.")
@kb_option
@limited(120.0)
@handle_errors
def new_version_cmd(policy: str, effective: str, kb_dir: Optional[Path]) -> None:
    """Start a new version of POLICY: copy its latest version to a folder named --effective, and close the previous period the day before."""
    from .author.new_version import new_version, render

    click.echo(render(new_version(policy, effective, kb_dir)), nl=False)


@main.command("new-policy")
@click.argument("policy", metavar="ID")
@click.option("--drug", required=True, metavar="KEY", help="The key of the drug the policy authorizes (lower-case letters, digits and _).")
@click.option("--effective", required=True, metavar="YYYY-MM-DD", help="The first day the policy is in force.")
@kb_option
@limited(120.0)
@handle_errors
def new_policy_cmd(policy: str, drug: str, effective: str, kb_dir: Optional[Path]) -> None:
    """Start a policy for another drug: the smallest first version that passes check, in policies/ID/--effective."""
    from .author.new_policy import new_policy, render

    click.echo(render(new_policy(policy, drug, effective, kb_dir)), nl=False)


@main.command("trace")
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False), help="Also write the literate page here: the policy's text with the rules, cases and properties of each passage.")
@format_option
@kb_option
@version_options
@limited(120.0)
@handle_errors
def trace_cmd(html_path: Optional[Path], fmt: str, kb_dir: Optional[Path], policy: Optional[str], version: Optional[str]) -> None:
    """Per section of the policy's text: the passages rules cite, the KB waives, and neither (one version: --policy, --version)."""
    from .author.trace import render_text, trace

    choices = every_version(kb_dir, policy, version)
    if len(choices) > 1:  # a tree of several policies: each version's trace, labelled
        if html_path is not None:
            fail("--html writes one version's page: pass --policy (and --version) with it")
        results = []
        for c in choices:
            try:
                results.append((c, trace(c.kb)))
            except KbError as exc:  # a version without its policy's text (check warns of it): said, and the others traced
                click.echo(version_line(c), err=True)
                click.echo(str(exc).splitlines()[0], err=True)
        if not results:
            fail("no version of the tree declares its policy's text (policy_source/5)")
        if fmt == "json":
            click.echo(dump_json({"versions": [{"version": c.kb.folder, **r.to_dict()} for c, r in results]}))
        else:
            click.echo("\n".join(version_line(c) + "\n" + render_text(r) for c, r in results), nl=False)
        return
    kb = chosen_kb(kb_dir, policy, version).kb
    result = trace(kb)
    if html_path is not None:
        from .author.trace_page import render_page

        try:
            html_path.write_text(render_page(result), encoding="utf-8")
        except OSError as exc:
            fail(f"{html_path}: cannot write: {exc.strerror or exc}")
    click.echo(dump_json(result.to_dict()) if fmt == "json" else render_text(result), nl=fmt == "json")


@main.command("batch")
@click.argument("input_path", metavar="IN.jsonl", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option(
    "-o",
    "--output",
    "output_path",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    help="Write records here (default, or -: stdout); locked against a second writer; never the input file.",
)
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes.")
@click.option("--resume", is_flag=True, help="Continue after the last complete record of --output.")
@click.option("--chunk-size", type=click.IntRange(1, 100_000), default=1000, show_default=True, help="Cases per clingo grounding (a chunk also closes at 2 MB of input).")
@click.option("--time-limit", type=PositiveSeconds(), default=10.0, show_default=True, help="Seconds one case may take, grounding included; a case over it becomes an error record.")
@click.option("--memory-limit", type=MegaBytes(), default=DEFAULT_MEMORY_MB, show_default=True, help="Memory each worker process may use, in MB.")
@click.option("--allow-errors", is_flag=True, help="Exit 0 even when some records are errors (default: exit 1).")
@click.option("--no-cache", is_flag=True, help="Solve every case, even one whose facts were seen before.")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary on stderr.")
@click.option("--progress/--no-progress", "show_progress", default=None, help="Force the progress bar on or off (default: on when stderr is a terminal).")
@click.option("--log", "log_it", is_flag=True, help="Also record each decision in the decision log (--db), with its line number.")
@click.option("--db", "db_url", default=None, metavar="URL", help="The decision log of --log (default: $KINERET_ASP_DB, else ~/.local/state/kineret-asp/decisions.sqlite3).")
@kb_option
@handle_errors
def batch_cmd(
    input_path: Path,
    output_path: Optional[Path],
    jobs: int,
    resume: bool,
    chunk_size: int,
    time_limit: float,
    memory_limit: int,
    allow_errors: bool,
    no_cache: bool,
    quiet: bool,
    show_progress: Optional[bool],
    log_it: bool,
    db_url: Optional[str],
    kb_dir: Optional[Path],
) -> None:
    """Decide every line of IN.jsonl (one case per line); one record per line, in order.

    Exit 0 when every line was decided, 1 when some record is an error (see
    --allow-errors) or the output cannot be written, 2 for a bad KB or option.
    """
    from .batch.output_lock import OutputBusy, OutputLock
    from .batch.run import CACHE_ENTRIES, BatchStopped, OutputError, Progress, count_lines, resume_point, run_batch
    from .cases.versions import Chooser
    from .knowledge.layout import _check_folder

    if kb_dir is not None:
        _check_folder(kb_dir)  # a missing or unreadable folder is one line before any work starts
    log_url = None
    if log_it:
        from .decision_log import LogError, open_log

        try:
            log_url = open_log(db_url).url  # created or migrated once, before the workers start
        except LogError as exc:
            fail(str(exc), code=exc.code)
    if output_path is not None and str(output_path) == "-":
        output_path = None  # -o - is stdout
    if resume and output_path is None:
        fail("--resume needs --output: records written to stdout cannot be resumed")
    name = "<stdin>" if str(input_path) == "-" else str(input_path)
    with contextlib.ExitStack() as files:
        try:
            source = sys.stdin.buffer if name == "<stdin>" else files.enter_context(open(input_path, "rb"))
        except OSError as exc:
            fail(f"{input_path}: cannot read: {exc.strerror or exc}")
        _refuse_same_file(source, name, output_path)  # before anything is opened for writing
        sink: Any = sys.stdout.buffer
        start = 0
        if output_path is not None:
            try:
                if OutputLock.needed(output_path):
                    sink, start = files.enter_context(OutputLock.writing(output_path, resume))
                else:
                    start = resume_point(output_path) if resume else 0
                    sink = files.enter_context(open(output_path, "ab" if resume else "wb", buffering=0))
            except OutputBusy as exc:
                fail(str(exc), code=EXIT_FAILED)
            except OSError as exc:
                fail(f"{output_path}: cannot write: {exc.strerror or exc}", code=EXIT_FAILED)
        enabled = (sys.stderr.isatty() if show_progress is None else show_progress) and not quiet
        words = functools.lru_cache(maxsize=1)(lambda: Chooser.of(kb_dir).default().vocabulary)
        total = None
        if enabled:
            try:
                lines = count_lines(source)  # a file's size is known: the bar gives a total, a percent and the time left
            except OSError as exc:
                fail(f"{name}: cannot read: {exc.strerror or exc}", code=EXIT_FAILED)
            total = None if lines is None else max(lines - start, 0)
        try:
            summary = run_batch(
                source,
                sink,
                kb_dir,
                name,
                jobs=jobs,
                chunk_size=chunk_size,
                start=start,
                time_limit=time_limit,
                cache=0 if no_cache else CACHE_ENTRIES,
                progress=Progress(enabled, total=total, words=words),
                memory_limit=memory_limit,
                log=log_url,
            )
        except BatchStopped as exc:
            fail(*exc.lines, code=exc.code)
        except OutputError as exc:
            if output_path is None:
                _silence_stdout()
                fail(f"stdout: {exc}", code=EXIT_FAILED)
            fail(f"{output_path}: {exc}; the output holds only complete records (--resume continues)", code=EXIT_FAILED)
        except OSError as exc:
            fail(f"{name}: cannot read: {exc.strerror or exc}", code=EXIT_FAILED)
    if not quiet:
        from .knowledge.layout import default_kb_path

        vocabulary = words()
        rate = summary.records / max(summary.seconds, 1e-9)
        resumed = vocabulary.word("batch_resumed", start=start) if start else ""
        click.echo(
            vocabulary.word(
                "batch_summary", records=summary.records, errors=summary.errors, resumed=resumed, seconds=f"{summary.seconds:.2f}", rate=f"{rate:,.0f}", kb=(kb_dir or default_kb_path()).resolve()
            ),
            err=True,
        )
        if summary.first_errors:
            shown = len(summary.first_errors)
            click.echo(vocabulary.counted("batch_first_errors", summary.errors, shown=shown, errors=summary.errors), err=True)
            for message in summary.first_errors:
                click.echo(vocabulary.word("batch_error_line", error=message), err=True)
    if summary.errors and not allow_errors:
        sys.exit(EXIT_FAILED)


def _refuse_same_file(source: Any, name: str, output_path: Optional[Path]) -> None:
    """Exit 2 when the output (a path, through any link, or stdout) is the input's very file (same device and inode).

    ``batch x.jsonl -o x.jsonl`` would truncate its input before reading a
    line; ``--resume`` would take the cases for finished records. Only
    regular files are compared (a terminal is both stdin and stdout).
    """
    import os
    import stat

    try:
        given = os.fstat(source.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return
    try:
        taken = os.stat(output_path) if output_path is not None else os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return
    if stat.S_ISREG(given.st_mode) and (given.st_dev, given.st_ino) == (taken.st_dev, taken.st_ino):
        where = str(output_path) if output_path is not None else "stdout"
        fail(f"{where}: is the input file {name} itself: its cases would be overwritten by their records; write the records to another file")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (the default answers this machine only).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--token-file", type=click.Path(path_type=Path, dir_okay=False), default=None, help="File whose first line is the bearer token every request must carry.")
@click.option("--max-body", type=click.IntRange(1), default=1_000_000, show_default=True, help="Largest request body accepted, in bytes (batch streams have their own cap).")
@click.option(
    "--max-batch-body", type=click.IntRange(1), default=256 * 1024 * 1024, show_default=True, help="Bytes of one POST /batch stream decided; each line past it gets an error record naming this cap."
)
@click.option("--time-limit", type=click.FloatRange(min=0.001, max=3600), default=10.0, show_default=True, help="Seconds a request may take; its worker process is killed at the limit (504).")
@click.option("--memory-limit", type=MegaBytes(), default=DEFAULT_MEMORY_MB, show_default=True, help="Memory each worker process may use (and the start), in MB.")
@click.option("--start-time-limit", type=PositiveSeconds(), default=120.0, show_default=True, help="Seconds loading and grounding the KB may take at start.")
@click.option("--workers", type=click.IntRange(1, 256), default=None, help="Worker processes deciding requests (default: one per core).")
@click.option("--queue", "queue_limit", type=click.IntRange(1), default=None, help="Requests that may wait for a worker; more are refused with 503 (default: 64 per worker).")
@click.option("--no-answer-cache", is_flag=True, help="Decide every request, even one a worker has answered before (each remembers its last 2,000 answers by request).")
@click.option(
    "--base-url",
    default=None,
    metavar="URL",
    help="Where clients reach this server (behind TLS termination: its https:// address): card links, the Questionnaire's canonical URL, the audience of CDS Hooks JWTs (default: http://HOST:PORT).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A Host header this server answers to; repeatable (default: the address bound and, on loopback, localhost; and the host of --base-url).",
)
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN", help="A browser origin (https://ehr.example.org) allowed to call this server; repeatable (default: none).")
@click.option(
    "--jwt-issuers",
    "jwt_issuers",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="JSON file of the CDS clients trusted: their iss and JWK Set (or allowed jku URLs); CDS Hooks calls then need a signed JWT (docs/integration.md).",
)
@click.option(
    "--fhir-server", "fhir_servers", multiple=True, metavar="URL", help="A FHIR base URL missing prefetch may be fetched from (with the request's fhirAuthorization); repeatable (default: none: 412)."
)
@click.option(
    "--db", "db_url", default=None, metavar="URL", help="The decision log: postgresql://..., sqlite:///path, or a file (default: $KINERET_ASP_DB, else ~/.local/state/kineret-asp/decisions.sqlite3)."
)
@click.option("--no-log", is_flag=True, help="Keep no decision (no prior-authorization number can then be issued).")
@click.option("--advisory-card", is_flag=True, help="Add a CDS card beside the coverage information: the criteria that block approval and what would meet them.")
@kb_option
@handle_errors
def serve_cmd(
    host: str,
    port: int,
    token_file: Optional[Path],
    max_body: int,
    max_batch_body: int,
    time_limit: float,
    memory_limit: int,
    start_time_limit: float,
    workers: Optional[int],
    queue_limit: Optional[int],
    no_answer_cache: bool,
    base_url: Optional[str],
    allowed_hosts: tuple[str, ...],
    cors_origins: tuple[str, ...],
    jwt_issuers: Optional[Path],
    fhir_servers: tuple[str, ...],
    db_url: Optional[str],
    no_log: bool,
    advisory_card: bool,
    kb_dir: Optional[Path],
) -> None:
    """Serve the policy over HTTP: evaluate, missing, what-if, batch, CDS Hooks (Da Vinci CRD), the DTR questionnaire, the decision log."""
    from .decision_log import LogError
    from .server import ANSWERS_KEPT, Integration, ServeError, read_token, serve
    from .web.auth import AuthConfig

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        fail("serve needs FastAPI and uvicorn: pip install 'kineret-asp[serve]'")
    token = read_token(token_file)
    if host in ("0.0.0.0", "::", "") and not allowed_hosts and not base_url:
        fail(f"--host {host or '(all)'}: a server on every address answers to names only you know: give them with --allowed-host NAME (or --base-url)")
    if no_log and db_url:
        fail("--no-log and --db: choose one")
    integration = Integration(base_url, allowed_hosts, cors_origins, AuthConfig.load(jwt_issuers, token), fhir_servers, False if no_log else db_url, advisory_card)

    def announce(kb: Any) -> None:
        click.echo(f"kineret-asp: serving {kb.vocabulary.policy_id} ({kb.display_path(kb.path)}) on http://{host}:{port} (OpenAPI at /openapi.json)", err=True)

    try:  # each case decided by the version its date of service chooses, as on the command line
        serve(
            kb_dir,
            host,
            port,
            token,
            max_body,
            time_limit,
            workers,
            memory_limit,
            start_time_limit,
            queue_limit,
            max_batch_body,
            announce,
            answers=0 if no_answer_cache else ANSWERS_KEPT,
            integration=integration,
        )
    except ServeError as exc:
        fail(str(exc), code=exc.code)
    except LogError as exc:
        fail(str(exc), code=exc.code)


# --- the decision log: decisions list|show|export, readjudicate ----------------------------------------

DB_HELP = "The decision log: postgresql://..., sqlite:///path, or a file path (default: $KINERET_ASP_DB, else ~/.local/state/kineret-asp/decisions.sqlite3)."


def db_option(func: Callable) -> Callable:
    return click.option("--db", "db_url", default=None, metavar="URL", help=DB_HELP)(func)


def _open_log(db_url: Optional[str]) -> Any:
    from .decision_log import LogError, default_location, open_log

    if db_url is None and not default_location().exists():
        fail(f"--db: no decision log at {default_location()} (serve writes one there; name another with --db)")
    try:
        return open_log(db_url)
    except LogError as exc:
        fail(str(exc), code=exc.code)


def _log_words() -> Any:
    from .knowledge.base import load_kb

    return load_kb(None).vocabulary


def _log_line(record: Any, words: Any) -> str:
    d = record.decision.get("decision", "") if isinstance(record.decision, dict) else ""
    return words.word(
        "decisions_line", seq=record.seq, id=record.id, when=record.recorded_at, source=safe_text(record.source), decision=words.decision_texts.get(d, d) or "-", number=record.pa_number or "-"
    )


@main.group("decisions")
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
    from .decision_log import LogError

    log = _open_log(db_url)
    try:
        records = log.find(source, after, limit)
    except LogError as exc:
        fail(str(exc), code=exc.code)
    if fmt == "json":
        click.echo(dump_json([r.to_dict() for r in records]))
        return
    words = _log_words()
    for r in records:
        click.echo(_log_line(r, words))


@decisions.command("show")
@click.argument("key", metavar="ID|PA-NUMBER")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="json", show_default=True, help="json: the whole record; text: the decision report kept with it.")
@db_option
def show_cmd(key: str, fmt: str, db_url: Optional[str]) -> None:
    """One record by its id (the coverage-assertion-id) or its prior-authorization number: request, decision, provenance, time."""
    from .decision_log import LogError

    log = _open_log(db_url)
    try:
        record = log.get(key)
    except LogError as exc:
        fail(str(exc), code=exc.code)
    if record is None:
        fail(_log_words().word("api_no_decision", id=key))
    click.echo(dump_json(record.to_dict()) if fmt == "json" else (record.report or _log_line(record, _log_words())), nl=fmt == "json" or not record.report)


@decisions.command("export")
@click.option(
    "-o", "--output", "output_path", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True), default="-", show_default=True, help="Write the records here (NDJSON, one record a line)."
)
@click.option("--source", default=None, help="Only records of this source.")
@db_option
def export_cmd(output_path: Path, source: Optional[str], db_url: Optional[str]) -> None:
    """Every record as NDJSON (one JSON record per line, in the order written), for an auditor or another system."""
    from .decision_log import LogError

    log = _open_log(db_url)
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
    click.echo(_log_words().word("decisions_exported", count=count), err=True)


@main.command("readjudicate")
@click.option(
    "--kb",
    "kb_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The KB to decide with: a tree (each case by its date of service), a version folder, or a KB copy (default: the packaged KB).",
)
@click.option("--policy", default=None, metavar="ID", help="With --to: the policy of the tree whose version to use.")
@click.option("--to", "to_version", default=None, metavar="DATE", help="Decide every logged case with this version of the tree: its effective-from date, or any date it is in force on.")
@click.option("--source", default=None, help="Only records of this source.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--exit-code", "exit_code", is_flag=True, help="Exit 1 when some decision would change, 0 when none would (like diff --exit-code).")
@db_option
def readjudicate_cmd(kb_dir: Optional[Path], policy: Optional[str], to_version: Optional[str], source: Optional[str], fmt: str, exit_code: bool, db_url: Optional[str]) -> None:
    """Decide the logged requests again under another version (or a KB copy) and report what would change: diff, on real traffic."""
    from .author.readjudicate import readjudicate, render
    from .decision_log import LogError
    from .errors import KbError, KineretError

    log = _open_log(db_url)
    try:
        target: Any = kb_dir
        if to_version or policy:
            if not to_version:
                fail("readjudicate: --policy goes with --to DATE")
            from .knowledge.base import load_kb

            target = load_kb(kb_dir, policy=policy, version=to_version)
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
        from .cases.versions import Chooser

        click.echo(render(report, Chooser.of(target).default().vocabulary), nl=False)
    if exit_code and report.changes:
        sys.exit(EXIT_FAILED)


@main.command("lsp")
def lsp_cmd() -> None:
    """Serve the Language Server Protocol on stdin/stdout for the .lp files of a KB: check's diagnostics as you type, hover, go to definition, completion.

    Start it from an editor (docs/authoring.md shows VS Code and Neovim);
    it needs pygls: pip install 'kineret-asp[lsp]'.
    """
    try:
        import pygls  # noqa: F401
    except ImportError:
        fail("lsp needs pygls: pip install 'kineret-asp[lsp]'")
    from .author.language_server import serve_stdio

    serve_stdio()


@main.command("schema")
@click.argument("name", required=False, metavar="case|decision|change|record")
@click.option(
    "--write",
    "write_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write every schema of every version of the KB tree under DIR/<policy>/<version>/ (the repository keeps them in schemas/).",
)
@kb_option
@version_options
@limited(120.0)
@handle_errors
def schema_cmd(name: Optional[str], write_dir: Optional[Path], kb_dir: Optional[Path], policy: Optional[str], version: Optional[str]) -> None:
    """Print the JSON Schema (draft 2020-12) of a case, a decision, a what-if change or a batch record."""
    from .author.json_schemas import NAMES, schema_text, write_schemas
    from .errors import did_you_mean

    if write_dir is not None:
        if name is not None:
            fail("--write writes every schema: give no NAME with it")
        if policy is not None or version is not None:
            fail("--write writes the schemas of every version of the tree: give no --policy or --version with it")
        for path in write_schemas(kb_dir, write_dir):
            click.echo(f"wrote {path}", err=True)
        return
    if name not in NAMES:
        hint = did_you_mean(name, NAMES) if name else ""
        fail(f"expected a schema name, one of {', '.join(NAMES)}, got {name!r}{hint}" if name else f"expected a schema name: one of {', '.join(NAMES)}")
    choices = every_version(kb_dir, policy, version)
    if len(choices) > 1:  # a tree of several policies: every version's schema, by its folder
        from .author.json_schemas import json_schema

        for c in choices:
            click.echo(version_line(c), err=True)
        click.echo(dump_json({c.kb.folder: json_schema(c.kb, name) for c in choices}))
        return
    click.echo(schema_text(chosen_kb(kb_dir, policy, version).kb, name), nl=False)


@main.command("vocabulary")
@click.argument("name", required=False)
@format_option
@kb_option
@version_options
@limited(120.0)
@handle_errors
def vocabulary_cmd(name: Optional[str], fmt: str, kb_dir: Optional[Path], policy: Optional[str], version: Optional[str]) -> None:
    """List every vocabulary (or NAME's) with its keys, their words and details: the keys a case may use (one version: --policy, --version)."""
    from .author.vocabulary_listing import listing_json, render_listing, vocabularies

    choices = every_version(kb_dir, policy, version)
    if len(choices) > 1 and name is not None:  # only the versions that have the vocabulary (the first one says so when none has)
        choices = [c for c in choices if name in c.kb.vocabulary.keys] or choices[:1]
    if len(choices) > 1 or choices[0].how == "every":  # a tree of several policies: every version's listing, labelled
        if fmt == "json":
            click.echo('{"versions": [' + ", ".join(f'{{"version": {dumps(c.kb.folder)}, "listing": {listing_json(vocabularies(c.kb, name))}}}' for c in choices) + "]}")
        else:
            click.echo("\n".join(version_line(c) + "\n" + render_listing(vocabularies(c.kb, name), c.kb) for c in choices), nl=False)
        return
    kb = chosen_kb(kb_dir, policy, version).kb
    listings = vocabularies(kb, name)
    click.echo(listing_json(listings) if fmt == "json" else render_listing(listings, kb), nl=fmt == "json")
