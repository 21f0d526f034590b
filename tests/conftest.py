"""Shared fixtures: the packaged KB, and small builders of cases."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

# With PYTHONDONTWRITEBYTECODE set, every xdist worker would rewrite the asserts of
# every test module anew on each run (about 3.5 s of a worker's start); keep the
# rewritten modules in tests/__pycache__ (git-ignored) while collecting, as
# pytest does by default, and give the setting back once collection is done.
_DONT_WRITE_BYTECODE = sys.dont_write_bytecode
sys.dont_write_bytecode = False


def pytest_collection_finish(session) -> None:
    sys.dont_write_bytecode = _DONT_WRITE_BYTECODE


def _private_folder(variable: str, prefix: str, file: str = "") -> None:
    """Point ``variable`` at a fresh folder of this run (subprocesses and xdist workers inherit it), removed when the run ends."""
    if variable in os.environ:
        return
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, True)
    os.environ[variable] = os.path.join(folder, file) if file else folder


# keep the suite's derived-program cache apart from the user's
_private_folder("KINERET_ASP_CACHE", "kineret-asp-test-cache-")
# and its key (kept outside the cache folder) apart from the user's too
_private_folder("KINERET_ASP_CACHE_KEY", "kineret-asp-test-key-", "cache-key")
# and the decision log of every server the suite starts apart from the user's
_private_folder("KINERET_ASP_DB", "kineret-asp-test-log-", "decisions.sqlite3")

from kineret_asp import evaluate, load_kb  # noqa: E402 (the environment above first)

ROOT = Path(__file__).resolve().parent.parent
FACTS = ROOT / "facts"
KB_DIR = ROOT / "kb"
VERSION = Path("policies") / "IP0243" / "2024-06-01"  # the version folder, within a KB tree


@pytest.fixture(scope="session", autouse=True)
def _warm_kb() -> None:
    """Every worker derives the packaged KB's programs once, before its first test.

    Commands with a time limit run in a worker forked from the test process:
    what the parent has already derived, every such worker starts with (about
    0.3 s saved per command run on the packaged KB). ``check`` reads every
    rule of the packaged KB once here: a KB copied and edited by a test shares
    the unchanged rules' syntax trees, and what was read of them, with it
    (about 0.25 s saved on the first command on each edited copy).
    """
    from kineret_asp.author.check import check_kb
    from kineret_asp.engine.program import compiled
    from kineret_asp.explain.missing import missing

    example = FACTS / "sjia" / "approved.json"
    evaluate(example, KB_DIR)
    missing(example, KB_DIR)
    check_kb(KB_DIR)
    compiled(load_kb(KB_DIR)).dynamic


@pytest.fixture(scope="session")
def kb():
    return load_kb(KB_DIR)


def ra_case(history: list[dict] | None = None, **fields: Any) -> dict:
    """A rheumatoid-arthritis case that meets 3.A.i and 3.B unless overridden."""
    case: dict[str, Any] = {
        "indication": "rheumatoid_arthritis",
        "plan": "employer_group",
        "prescriber_specialties": ["rheumatology"],
        "medication_history": [{"drug": "methotrexate", "outcome": "failure", "months": 4}] if history is None else history,
    }
    case.update(fields)
    return case


def decide(case: dict, kb_dir: Path = KB_DIR):
    return evaluate(case, kb_dir)


def copy_kb(tmp_path: Path) -> Path:
    """A copy of the KB tree (without its example cases); returns the copied version folder."""
    import shutil

    dest = tmp_path / "kb"
    shutil.copytree(KB_DIR, dest, ignore=shutil.ignore_patterns("cases"))
    return dest / VERSION


@pytest.fixture(scope="session")
def future_version_tree(tmp_path_factory) -> Path:
    """The packaged KB with a second IP0243 version that takes effect in 2099 (initial approvals of 6 months there, 12 now)."""
    import shutil

    from click.testing import CliRunner

    from kineret_asp.cli import main

    root = tmp_path_factory.mktemp("future") / "kb"
    shutil.copytree(KB_DIR, root)
    made = CliRunner().invoke(main, ["new-version", "IP0243", "--effective", "2099-01-01", "--kb", str(root)])
    assert made.exit_code == 0, made.output
    later = root / "policies" / "IP0243" / "2099-01-01" / "reauthorization.lp"
    later.write_text(later.read_text().replace("authorization_duration(initial, 12).", "authorization_duration(initial, 6)."))
    return root


@pytest.fixture
def kb_copy(tmp_path) -> Path:
    """A copy of the packaged KB that a test may break: its version folder (rules, tables, words)."""
    return copy_kb(tmp_path)


def add_newmab(version: Path) -> None:
    """A KB edit only: a new biologic, "Newmab", an interleukin-6 blocker with a rheumatoid-arthritis tick in Appendix Table 4."""
    table = version / "tables" / "appendix_drug_classes.lp"
    text = table.read_text()
    text = text.replace(
        "appendix_row(4, rituximab,      cd20_antibody,                   ra).",
        "appendix_row(4, rituximab,      cd20_antibody,                   ra).\nappendix_row(4, newmab,         il6_blocker,                     ra).",
    )
    text = text.replace('drug(rituximab, "Rituximab Intravenous Products").', 'drug(rituximab, "Rituximab Intravenous Products").\ndrug(newmab, "Newmab").')
    assert "newmab" in text
    table.write_text(text)


def revise_source(version: Path, old: str, new: str) -> None:
    """Revise the policy's text in a KB copy (``old`` -> ``new``, once) and declare the new text's SHA-256.

    A policy change that adds words the rules quote comes with its text:
    ``check`` finds every quotation in the version's source/.
    """
    import hashlib
    import re

    (source,) = sorted((version / "source").iterdir())
    text = source.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    source.write_text(text.replace(old, new), encoding="utf-8")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    policy = version / "policy.lp"
    policy.write_text(re.sub(r'"[0-9a-f]{64}"', f'"{digest}"', policy.read_text(encoding="utf-8"), count=1), encoding="utf-8")


def cli(*args: str, input: str | bytes | None = None, cwd: Path = ROOT, text: bool = True) -> subprocess.CompletedProcess:
    """Run ``kineret-asp ARGS`` in this process and return what a subprocess run would.

    For tests about a command's output and exit code: click's runner saves the
    interpreter start and KB load a ``python -m kineret_asp`` run pays (about
    half a second each time). Tests about processes themselves (limits,
    signals, I/O failures, installs, the ``-m`` entry point) start real ones.
    The command runs in ``cwd`` (the repository, as the subprocess runs did),
    since the cwd-KB warning reads it.
    """
    from click.testing import CliRunner

    from kineret_asp.cli import main

    if isinstance(input, str) and not text:
        input = input.encode()
    before = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    finally:
        os.chdir(before)
    if text:
        return subprocess.CompletedProcess(["kineret-asp", *args], result.exit_code, result.stdout, result.stderr)
    return subprocess.CompletedProcess(["kineret-asp", *args], result.exit_code, result.stdout_bytes, result.stderr_bytes)
