"""A policy change is a kb/ change only: new keys and criteria work without Python edits."""

from __future__ import annotations

import pytest

from kineret_asp import evaluate, load_kb
from kineret_asp.author.check import check_kb
from kineret_asp.explain.missing import missing

from .conftest import add_newmab, revise_source


def append(path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text + "\n")


@pytest.mark.slow
def test_a_new_biologic_is_known_to_cases_and_to_nc2(kb_copy):
    assert "newmab" not in load_kb(kb_copy).vocabulary.keys["drug"]
    add_newmab(kb_copy)
    assert check_kb(kb_copy).errors == 0
    d = evaluate({"indication": "sjia", "prescriber_specialties": ["rheumatology"], "current_medications": ["newmab"]}, kb_copy)
    assert d.decision == "not_covered" and d.reasons[0].details == {"current_medications": ["newmab"]}


@pytest.mark.slow
def test_a_new_indication_with_its_criteria(kb_copy):
    sjia = "- 5. Systemic Juvenile Idiopathic Arthritis (SJIA).** The medication is prescribed by, or in consultation with, a rheumatologist.\n"
    revise_source(kb_copy, sjia, sjia + "- 6. Gout.** The medication is prescribed by, or in consultation with, a rheumatologist.\n")
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


@pytest.mark.slow
def test_a_new_effective_date_reaches_every_decision(kb_copy):
    path = kb_copy / "policy.lp"
    path.write_text(path.read_text().replace('effective_from("2024-06-01").', 'effective_from("2025-01-15").'))
    assert evaluate({"indication": "sjia"}, kb_copy).effective_date == "2025-01-15"


def _python_literals():
    """Every string literal of the package's modules, docstrings aside, with where it is."""
    import ast as pyast

    from .conftest import ROOT

    for path in sorted((ROOT / "kineret_asp").rglob("*.py")):
        tree = pyast.parse(path.read_text(encoding="utf-8"))
        docs = {
            id(n.body[0].value)
            for n in pyast.walk(tree)
            if isinstance(n, (pyast.Module, pyast.FunctionDef, pyast.AsyncFunctionDef, pyast.ClassDef)) and n.body and isinstance(n.body[0], pyast.Expr) and isinstance(n.body[0].value, pyast.Constant)
        }
        for n in pyast.walk(tree):
            if isinstance(n, pyast.Constant) and isinstance(n.value, str) and id(n) not in docs:
                yield f"{path.name}:{n.lineno}", n.value


@pytest.mark.slow
def test_no_python_literal_names_a_key_an_id_or_a_word_of_the_policy():
    """Drug, indication and specialty keys, criterion and reason ids, the policy's number and words live in kb/ only."""
    import re

    kb = load_kb()
    v = kb.vocabulary
    keys = set()
    for vocabulary in ("drug", "indication", "specialty", "product"):
        keys |= set(v.keys[vocabulary])
    ids = {i for i in [*v.criteria, *v.reason_texts] if len(i) > 1}  # "3.A.ii", "NC.2", "R.B" (a lone digit is any number)
    labels = {label for vocabulary in ("drug", "indication", "specialty") for label in v.keys[vocabulary].values()}
    words = {v.policy_id, v.title, *labels}
    package = re.compile(r"kineret[-_]asp", re.I)
    hits = []
    for where, text in _python_literals():
        bare = package.sub("", text)  # the program's own name is not the policy's word
        tokens = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", bare)) | set(re.findall(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)+", bare))
        bare = bare.lower()
        found = (tokens & keys) | (tokens & ids) | {w for w in words if len(w) > 3 and re.search(rf"\b{re.escape(w.lower())}\b", bare)}
        if re.search(rf"\b{re.escape(v.drug_name.lower())}\b", bare):
            found.add(v.drug_name)
        if found:
            hits.append((where, sorted(found)))
    assert keys and ids and words and not hits
