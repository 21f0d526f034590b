"""Drugs by any name, classed for NC.2, and a drug the KB cannot class as a question, never a verdict.

The readings come from the policy text (IP0243, 2024-06-01): Conditions Not
Covered 2 excludes concurrent use with "another biologic or with a targeted
synthetic DMARD used for an inflammatory condition (See APPENDIX for
examples)", and "This does NOT exclude the use of conventional synthetic
DMARDs (e.g., MTX, leflunomide, hydroxychloroquine, and sulfasalazine) in
combination with Kineret"; 3.A.ii counts "a biologic or targeted synthetic
DMARD for rheumatoid arthritis"; the Non-Preferred Product rows name brands.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kineret_asp import CaseError, evaluate, load_case, load_kb
from kineret_asp.cli import main
from kineret_asp.explain.missing import missing
from kineret_asp.knowledge.names import NameIndex

from .conftest import KB_DIR, decide, ra_case

MTX_4 = {"drug": "methotrexate", "outcome": "failure", "months": 4}
APPROVED_RA = [MTX_4, {"drug": "cimzia", "outcome": "failure"}, {"drug": "enbrel", "outcome": "intolerance"}]


def drug_key(name: str) -> str:
    return load_case(ra_case([{"drug": name, "outcome": "tried"}]), KB_DIR).medication_history[0]["drug"]


# --- names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, key",
    [
        ("Humira", "humira"),
        ("HUMIRA PEN 40 MG/0.8 ML", "humira"),
        ("adalimumab 40 MG/0.4ML Prefilled Syringe [Humira]", "humira"),
        ("adalimumab", "adalimumab_unspecified"),
        ("etanercept", "etanercept"),
        ("Erelzi", "erelzi"),
        ("etanercept-szzs", "erelzi"),
        ("Arava", "leflunomide"),
        ("certolizumab pegol", "certolizumab"),
        ("tofacitinib", "tofacitinib"),
        ("Methotrexate 10 MG Oral Tablet", "methotrexate"),
        ("MTX", "methotrexate"),
        ("Azulfidine EN-tabs", "sulfasalazine"),
        ("tofacitinib 1 MG/ML Oral Solution [Xeljanz]", "xeljanz_oral_solution"),
        ("Xeljanz 5 MG Oral Tablet", "xeljanz"),
        ("Xeljanz XR", "xeljanz_xr"),
        ("Actemra ACTPen 162 mg", "actemra_sc"),
        ("Actemra", "tocilizumab"),
        ("Kineret 100 mg/0.67 mL syringe", "kineret"),
        ("anakinra", "kineret"),
        ("infliximab [Remicade]", "remicade"),
        ("predniSONE 5 MG Oral Tablet", "prednisone"),
        ("Acetaminophen 325 MG / HYDROcodone Bitartrate 5 MG Oral Tablet", "acetaminophen_hydrocodone"),
        ("Colchicine 0.6 MG [Colcrys]", "colchicine"),
        ("chloroquine", "chloroquine"),
        ("Ilaris", "canakinumab"),
    ],
)
def test_a_drug_is_read_by_any_of_its_names(name, key):
    assert drug_key(name) == key


@pytest.mark.parametrize("name", ["Humira biosimilar", "Humira and Enbrel", "prednisolone-xyz", "zorbitrex 10 mg"])
def test_a_name_with_words_the_kb_does_not_read_is_no_drug_it_names(name):
    """Taking the one drug a name holds could read another drug: the name stays a name the rules do not know."""
    assert drug_key(name) == name


def test_did_you_mean_only_for_a_name_that_is_no_drug_at_all():
    with pytest.raises(CaseError) as info:
        drug_key("enbrl")
    assert "did you mean 'enbrel'?" in info.value.message
    assert drug_key("chloroquine") == "chloroquine"  # a drug of its own, never "hydroxychloroquine"
    assert drug_key("hydroxychloroquine") == "hydroxychloroquine"


def test_the_name_index_reads_only_the_kb_words():
    index = NameIndex.build({"a_b": "A B"}, [("a_b", "Alpha")], ["mg"], True, [])
    assert index.key_of("alpha 40 mg") == "a_b" and index.key_of("alpha gamma") is None and index.key_of("a-b") == "a_b"


def test_two_keys_that_share_a_name_or_a_name_of_no_key_are_check_errors(kb_copy):
    from kineret_asp.author.check import check_kb

    names = kb_copy / "codes" / "drug_names.lp"
    names.write_text(names.read_text() + '\n% § Appendix Table 1 - "Enbrel".\nkey_name(drug, cimzia, "Enbrel").\nkey_name(drug, enbrell, "Enbrel Mini Pen").\n')
    errors = [d.message for d in check_kb(kb_copy).diagnostics if d.severity == "error"]
    assert any("key_name(drug, cimzia, 'Enbrel'): the name is already a name of 'enbrel'" in m for m in errors)
    assert any("'enbrell' is not a key of 'drug'; did you mean 'enbrel'?" in m for m in errors)
    assert load_kb(kb_copy).vocabulary.names["drug"].key_of("Enbrel") == "enbrel"  # the KB still loads: check says what is wrong


# --- 3.A.ii and 3.C ---------------------------------------------------------------


def test_a_generic_name_counts_for_3Aii_as_its_product_does():
    d = decide(ra_case([{"drug": "etanercept", "outcome": "failure"}]))
    assert d.met("3.A.ii") is True
    d = decide(ra_case([{"drug": "adalimumab", "outcome": "failure"}]))
    assert d.met("3.A.ii") is True


def test_for_a_3C_row_only_the_brands_it_names_count():
    generic = decide(ra_case([MTX_4, {"drug": "etanercept", "outcome": "failure"}, {"drug": "adalimumab", "outcome": "failure"}]))
    assert generic.met("3.C.B") is False and generic.met("3.C.D") is False and generic.decision == "criteria_not_met"
    brands = decide(ra_case([MTX_4, {"drug": "Humira Pen 40 mg", "outcome": "failure"}, {"drug": "Enbrel SureClick", "outcome": "failure"}]))
    assert brands.met("3.C.B") is True and brands.met("3.C.D") is True and brands.decision == "approved"


def test_an_ingredient_whose_products_share_no_ra_tick_counts_only_when_the_entry_says_so():
    assert decide(ra_case([{"drug": "tofacitinib", "outcome": "failure"}])).met("3.A.ii") is False
    assert decide(ra_case([{"drug": "tofacitinib", "outcome": "failure", "for": "rheumatoid_arthritis"}])).met("3.A.ii") is True


# --- NC.2 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "current",
    ["prednisone", "Ibuprofen 200 MG Oral Tablet", "folic acid", "colchicine", "Azulfidine", "Methotrexate 10 MG Oral Tablet", "omeprazole", "azathioprine", "Tylenol"],
)
def test_a_current_drug_that_is_neither_a_biologic_nor_a_tsdmard_never_makes_a_case_not_covered(current):
    d = decide(ra_case(APPROVED_RA, current_medications=[current]))
    assert d.decision == "approved" and not d.reasons and not d.undetermined


@pytest.mark.parametrize("current", ["anakinra", "Kineret", "Kineret 100 mg/0.67 mL syringe"])
def test_the_requested_drug_under_any_of_its_names_is_never_concurrent_with_itself(current):
    assert decide(ra_case(APPROVED_RA, current_medications=[current])).decision == "approved"


@pytest.mark.parametrize("current, key", [("Erelzi", "erelzi"), ("etanercept", "etanercept"), ("Ilaris", "canakinumab"), ("Cibinqo", "abrocitinib"), ("adalimumab", "adalimumab_unspecified")])
def test_a_biologic_or_tsdmard_by_any_name_is_concurrent_use(current, key):
    d = decide(ra_case(APPROVED_RA, current_medications=[current]))
    assert d.decision == "not_covered" and [(r.id, r.details) for r in d.reasons] == [("NC.2", {"current_medications": [key]})]


def test_a_current_drug_the_kb_cannot_class_is_undetermined_and_blocks():
    d = decide(ra_case(APPROVED_RA, current_medications=["methotrexate", "zorbitrex"]))
    assert d.decision == "undetermined" and d.route == "clinical_review" and not d.reasons
    assert d.blocking == ("NC.2",)
    (fact,) = d.undetermined
    assert (fact.id, fact.field, fact.value) == ("NC.2", "current_medications[1]", "zorbitrex")
    assert fact.text.startswith("Is zorbitrex a biologic or a targeted synthetic DMARD")
    assert d.to_dict()["undetermined"] == [{"id": "NC.2", "field": "current_medications[1]", "value": "zorbitrex", "text": fact.text}]


def test_an_undetermined_drug_beside_an_unmet_criterion_is_blocking_too():
    d = decide(ra_case([MTX_4], current_medications=["zorbitrex"]))
    assert d.decision == "criteria_not_met" and "NC.2" in d.blocking and d.blocking[-1] == "NC.2"


def test_an_undetermined_drug_beside_a_condition_not_covered_is_not_blocking():
    d = decide({"indication": "osteoarthritis", "current_medications": ["zorbitrex"]})
    assert d.decision == "not_covered" and d.blocking == () and [r.id for r in d.reasons] == ["NC.5"]
    assert [u.id for u in d.undetermined] == ["NC.2"]


def test_documenting_the_category_settles_an_undetermined_drug():
    case = ra_case(APPROVED_RA, current_medications=["zorbitrex"])
    other = decide(dict(case, drug_categories=[{"drug": "zorbitrex", "category": "other"}]))
    assert other.decision == "approved" and not other.undetermined
    biologic = decide(dict(case, drug_categories=[{"drug": "zorbitrex", "category": "biologic"}]))
    assert biologic.decision == "not_covered" and [r.id for r in biologic.reasons] == ["NC.2"]


def test_a_documented_category_never_overrides_the_kbs_own_class():
    d = decide(ra_case(APPROVED_RA, current_medications=["enbrel"], drug_categories=[{"drug": "enbrel", "category": "other"}]))
    assert d.decision == "not_covered" and [r.id for r in d.reasons] == ["NC.2"]


def test_missing_offers_the_category_or_the_discontinuation_of_an_undetermined_drug():
    answer = missing(ra_case(APPROVED_RA, current_medications=["zorbitrex"]), KB_DIR)
    assert sorted(option.text for option in answer.options) == ["discontinuation of zorbitrex", "documentation that zorbitrex is neither a biologic nor a targeted synthetic DMARD"]
    assert all(option.size == 1 for option in answer.options)


def test_the_text_json_and_review_page_say_the_same_question():
    case = ra_case(APPROVED_RA, current_medications=["zorbitrex"])
    question = decide(case).undetermined[0].text
    import json

    text = CliRunner().invoke(main, ["evaluate", "-", "--kb", str(KB_DIR)], input=json.dumps(case)).output
    assert question in text and "Decision: UNDETERMINED (blocking: NC.2)" in text
    data = json.loads(CliRunner().invoke(main, ["evaluate", "-", "--format", "json", "--kb", str(KB_DIR)], input=json.dumps(case)).output)
    assert data["decision"] == "undetermined" and data["undetermined"][0]["text"] == question and data["blocking"] == ["NC.2"]
    page = CliRunner().invoke(main, ["evaluate", "-", "--format", "markdown", "--kb", str(KB_DIR)], input=json.dumps(case)).output
    assert question in page


def test_the_two_engines_agree_on_undetermined_drugs():
    from kineret_asp import evaluate_many

    cases = [ra_case(APPROVED_RA, current_medications=[name]) for name in ["zorbitrex", "prednisone", "Ilaris", "zorbitrex"]]
    assert [evaluate(c, KB_DIR).to_dict() for c in cases] == [d.to_dict() for d in evaluate_many(cases, KB_DIR)]
