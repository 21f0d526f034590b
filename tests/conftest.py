"""Shared fixtures: the packaged KB, and small builders of cases."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

# keep the suite's derived-program cache apart from the user's (subprocesses inherit it)
os.environ.setdefault("KINERET_ASP_CACHE", tempfile.mkdtemp(prefix="kineret-asp-test-cache-"))

from kineret_asp import evaluate, load_kb

ROOT = Path(__file__).resolve().parent.parent
FACTS = ROOT / "facts"
KB_DIR = ROOT / "kb"
VERSION = Path("policies") / "IP0243" / "2024-06-01"  # the version folder, within a KB tree


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


@pytest.fixture
def kb_copy(tmp_path) -> Path:
    """A copy of the packaged KB that a test may break: its version folder (rules, tables, words)."""
    return copy_kb(tmp_path)


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
