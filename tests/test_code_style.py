"""The code is checked like the KB: ruff's lint and format, and the import layers, on the package, tests and benches.

The settings live in pyproject.toml (``[tool.ruff]``, ``[tool.importlinter]``);
``.ci/run`` runs this file with the rest of the suite, so a change that
breaks a layer, leaves an unused import or is not formatted fails CI.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

CODE = ["kineret_asp", "tests", "bench"]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]' installs it")
    return found


def test_ruff_finds_nothing():
    proc = subprocess.run([_tool("ruff"), "check", "--no-cache", *CODE], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_code_is_formatted_as_ruff_formats_it():
    proc = subprocess.run([_tool("ruff"), "format", "--check", "--no-cache", *CODE], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_import_runs_back_up_a_layer_or_round_a_loop():
    proc = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout
