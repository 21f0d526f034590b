"""A policy change is a kb/ change only: new keys and criteria work without Python edits."""
from __future__ import annotations

from kineret_asp import CaseError, evaluate, load_case
from kineret_asp.abduction import missing
from kineret_asp.check import check_kb

import pytest


def append(path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text + "\n")


def test_a_new_biologic_is_known_to_cases_and_to_nc2(kb_copy):
    with pytest.raises(CaseError):
        load_case({"indication": "sjia", "current_medications": ["newmab"]}, kb_copy)
    table = kb_copy / "tables" / "appendix_drug_classes.lp"
    text = table.read_text()
    text = text.replace("appendix_row(4, rituximab,      cd20_antibody,                   ra).", "appendix_row(4, rituximab,      cd20_antibody,                   ra).\nappendix_row(4, newmab,         il6_blocker,                     ra).")
    text = text.replace('drug(rituximab, "Rituximab Intravenous Products").', 'drug(rituximab, "Rituximab Intravenous Products").\ndrug(newmab, "Newmab").')
    table.write_text(text)
    assert check_kb(kb_copy).errors == 0
    d = evaluate({"indication": "sjia", "prescriber_specialties": ["rheumatology"], "current_medications": ["newmab"]}, kb_copy)
    assert d.decision == "not_covered" and d.reasons[0].details == {"current_medications": ["newmab"]}


def test_a_new_indication_with_its_criteria(kb_copy):
    append(kb_copy / "vocabulary.lp", '% § 6 - a new covered condition\nindication(gout, "Gout").')
    (kb_copy / "criteria" / "6_gout.lp").write_text(
        "% § 6 - the criterion, in the policy's words.\n"
        'criterion("6", none, leaf, "Gout. The medication is prescribed by, or in consultation with, a rheumatologist.").\n\n'
        "% § 6 - a request for gout is decided by criterion 6.\n"
        'indication_criteria(gout, "6").\n\n'
        '% § 6 - "prescribed by, or in consultation with, a rheumatologist".\n'
        'accepted_specialty("6", rheumatology).\n'
    )
    assert check_kb(kb_copy).errors == 0
    approved = evaluate({"indication": "gout", "prescriber_specialties": ["rheumatology"]}, kb_copy)
    assert approved.decision == "approved" and approved.criteria[0].text.startswith("Gout.")
    unmet = evaluate({"indication": "gout"}, kb_copy)
    assert unmet.unmet == ("6",)
    options = missing({"indication": "gout"}, kb_copy)
    assert options.status == "options" and "a rheumatologist" in options.options[0].text


def test_a_new_effective_date_reaches_every_decision(kb_copy):
    path = kb_copy / "policy.lp"
    path.write_text(path.read_text().replace('effective_from("2024-06-01").', 'effective_from("2025-01-15").'))
    assert evaluate({"indication": "sjia"}, kb_copy).effective_date == "2025-01-15"
