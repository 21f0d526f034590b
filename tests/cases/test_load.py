"""cases/load.py: one loader for every input, the same case and decision whatever form it arrives in."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kineret_asp import CaseError, evaluate, load_case
from kineret_asp.cases.load import load

from ..conftest import FACTS, KB_DIR, cli

BUNDLE = FACTS / "fhir" / "ra_approved.json"
CASE_JSON = FACTS / "fhir" / "ra_approved.case.json"


def _forms(path: Path):
    """The one case as every input the loader takes."""
    raw = path.read_bytes()
    data = json.loads(raw)
    return {
        "path": path,
        "str path": str(path),
        "dict": data,
        "bytes": raw,
        "stream": io.BytesIO(raw),
        "Case": load_case(data, KB_DIR),
    }


@pytest.mark.parametrize("form", ["path", "str path", "dict", "bytes", "stream", "Case"])
def test_every_form_of_a_json_case_loads_the_same_case(form):
    loaded = load(_forms(CASE_JSON)[form], KB_DIR)
    assert loaded.case.to_dict() == load_case(CASE_JSON, KB_DIR).to_dict()
    assert loaded.choice.kb.path == load(CASE_JSON, KB_DIR).choice.kb.path


@pytest.mark.parametrize("form", ["path", "str path", "dict", "bytes", "stream"])
def test_every_form_of_a_bundle_reads_the_bundle_with_its_notes(form):
    loaded = load(_forms(BUNDLE)[form], KB_DIR)
    assert loaded.bundle is not None  # read as FHIR, not as a case
    reference = load(BUNDLE, KB_DIR)
    assert loaded.case.to_dict() == reference.case.to_dict()
    assert loaded.notes == reference.notes


def test_the_python_api_decides_a_bundle_path_as_the_command_does():
    """`kineret_asp.evaluate` takes a Bundle's path as `kineret-asp evaluate` does: the same decision, notes included."""
    proc = cli("evaluate", str(BUNDLE), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    from_cli = json.loads(proc.stdout)
    from_api = evaluate(BUNDLE, KB_DIR).to_dict()
    assert from_api["decision"] == from_cli["decision"]
    assert from_api.get("notes") == from_cli.get("notes")


def test_an_lp_case_loads_through_the_same_loader():
    lp = sorted((FACTS / "lp").glob("*.lp"))[0]
    loaded = load(lp, KB_DIR)
    assert loaded.bundle is None and loaded.case.source == str(lp)


@pytest.mark.parametrize("source, shown", [(b"{", "<bytes>"), (io.BytesIO(b"[1]"), "<stdin>"), ({"indication": "nope"}, "<dict>")])
def test_what_is_not_a_case_is_one_case_error_naming_the_input(source, shown):
    with pytest.raises(CaseError) as raised:
        load(source, KB_DIR)
    assert str(raised.value).startswith(shown)


def test_a_name_given_for_the_input_is_used_in_errors():
    with pytest.raises(CaseError) as raised:
        load(b"{", KB_DIR, shown="intake-form#7")
    assert str(raised.value).startswith("intake-form#7")


def test_a_case_is_validated_against_the_version_its_date_chooses():
    data = json.loads(CASE_JSON.read_text())
    loaded = load(data, KB_DIR)
    assert loaded.case.schema is loaded.choice.kb.schema
    assert Path(loaded.choice.kb.path).resolve() == (KB_DIR / "policies" / "IP0243" / "2024-06-01").resolve()
