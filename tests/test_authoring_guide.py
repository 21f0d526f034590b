"""The edit docs/authoring.md walks through, performed on a copy of the KB."""
from __future__ import annotations

import pytest
import shutil

from kineret_asp import evaluate
from kineret_asp.casetests import run_case_tests
from kineret_asp.check import check_kb
from kineret_asp.diff import diff
from kineret_asp.knowledge import load_kb
from kineret_asp.verify import verify_kb

from .conftest import FACTS, KB_DIR, ROOT, copy_kb

ROW_F = 'non_preferred_row(individual_family, "3.C", "3.C.F", xeljanz_family, "F. Xeljanz/XR [requires prior authorization]").'


def add_row(kb, key: str) -> None:
    path = kb / "tables" / "non_preferred_products.lp"
    text = path.read_text()
    assert ROW_F in text
    path.write_text(text.replace(ROW_F, ROW_F + f'\nnon_preferred_row(individual_family, "3.C", "3.C.G", {key},         "G. Kevzara [requires prior authorization]").'))


@pytest.mark.slow
def test_the_guide_edit_end_to_end(tmp_path):
    assert "3.C.G" in (ROOT / "docs" / "authoring.md").read_text()
    kb = copy_kb(tmp_path / "first")
    add_row(kb, "kevzra")
    errors = [d for d in check_kb(kb).diagnostics if d.severity == "error"]
    assert len(errors) == 1 and "did you mean 'kevzara'?" in errors[0].message
    kb = copy_kb(tmp_path / "second")
    add_row(kb, "kevzara")
    assert check_kb(kb).errors == 0
    report = run_case_tests([FACTS], load_kb(kb))
    failed = sorted(r.path.split("facts/")[1] for r in report.results if not r.passed)
    assert failed == ["ra/approved_individual_family_contraindications.json", "ra/xeljanz_and_xr_count_once.json"]
    for r in report.results:
        if not r.passed:
            assert set(r.differences) == {"unmet"}
            want, got = r.differences["unmet"]
            assert sorted(got) == sorted(want + ["3.C.G"])
    assert all(r.holds for r in verify_kb(kb))
    changes = diff(KB_DIR, kb).classes
    assert len(changes) == 2
    for c in changes:
        assert (c.indication, c.plan, c.old, c.new) == ("rheumatoid_arthritis", "individual_family", "criteria_not_met", "approved")
        assert "kevzara" in {e["drug"] for e in c.example["medication_history"]}
        assert evaluate(c.example, kb).decision == "approved"
