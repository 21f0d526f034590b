"""What a clinical reviewer reads: open-world medication histories, evidence,
what blocks approval, every input error at once, and `missing` that reads well.

The expectations come from the policy text (IP0243, 2024-06-01) and from the
issue "Decisions a clinical reviewer can act on".
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kineret_asp import CaseError, evaluate, evaluate_many, load_case, what_if
from kineret_asp.asp.symbols import Const
from kineret_asp.cli import main
from kineret_asp.explain.missing import missing

from ..conftest import FACTS, KB_DIR, decide, ra_case

FULL_RA = [
    {"drug": "methotrexate", "outcome": "failure", "months": 4},
    {"drug": "cimzia", "outcome": "failure"},
    {"drug": "enbrel", "outcome": "failure"},
]


# --- open-world medication histories -------------------------------------------------


def test_drugs_the_policy_does_not_name_are_accepted_count_for_nothing_and_are_noted():
    history = [{"drug": "prednisone", "outcome": "tried", "months": 6}, *FULL_RA, {"drug": "colchicine", "outcome": "failure", "months": 12}]
    d = decide(ra_case(history))
    assert d.decision == "approved"
    unnamed = [n for n in d.notes if n.id == "Appendix"]
    assert [n.field for n in unnamed] == ["medication_history[0]", "medication_history[4]"]
    assert all("not a drug this policy names" in n.text.lower() for n in unnamed)
    only_unnamed = decide(ra_case([{"drug": "prednisone", "outcome": "failure", "months": 6}]))
    assert only_unnamed.met("3.A.i") is False and only_unnamed.met("3.A.ii") is False


def test_an_unnamed_drug_reaches_the_rules_as_a_string_never_as_a_kb_constant():
    case = load_case(ra_case([{"drug": "zorbitrex", "outcome": "tried"}, {"drug": "enbrel", "outcome": "tried"}]), KB_DIR)
    history = [a for a in case.atoms() if a[0] == "case_history"]
    assert history[0][2] == "zorbitrex" and not isinstance(history[0][2], Const)
    assert isinstance(history[1][2], Const)


@pytest.mark.parametrize("name, key", [("enbrell", "enbrel"), ("enbrl", "enbrel"), ("methotrexat", "methotrexate"), ("Humria", "humira")])
def test_a_near_miss_of_a_drug_key_stays_an_error_with_the_suggestion(name, key):
    with pytest.raises(CaseError) as info:
        load_case(ra_case([{"drug": name, "outcome": "tried"}]), KB_DIR)
    assert info.value.path == "medication_history[0].drug"
    assert f"did you mean '{key}'?" in info.value.message


@pytest.mark.parametrize(
    "name, key",
    [("Enbrel", "enbrel"), ("Humira Pen", "humira"), ("xeljanz-xr", "xeljanz_xr"), ("Stelara", "ustekinumab"), ("methotrexate sodium", "methotrexate"), ("Amjevita", "amjevita")],
)
def test_a_name_the_kb_gives_a_drug_is_read_as_that_drug(name, key):
    case = load_case(ra_case([{"drug": name, "outcome": "tried"}]), KB_DIR)
    assert case.medication_history[0]["drug"] == key


@pytest.mark.parametrize("name", ["pred;nisone", "two\nlines", "", "x" * 81, "ß-blocker"])
def test_a_value_that_is_no_drug_name_is_refused(name):
    with pytest.raises(CaseError) as info:
        load_case(ra_case([{"drug": name, "outcome": "tried"}]), KB_DIR)
    assert info.value.path == "medication_history[0].drug"


def test_a_current_drug_the_kb_cannot_class_never_passes_unnoticed():
    """A current drug the KB cannot class could be a biologic NC.2 means: never an approval, NC.2 is undetermined for it."""
    assert evaluate(ra_case(FULL_RA), KB_DIR).decision == "approved"
    d = evaluate(ra_case(FULL_RA, current_medications=["zorbitrex"]), KB_DIR)
    assert d.decision == "undetermined" and d.route == "clinical_review" and not d.reasons
    assert [(u.id, u.field, u.value) for u in d.undetermined] == [("NC.2", "current_medications[0]", "zorbitrex")]
    d = evaluate(ra_case(FULL_RA, current_medications=["Enbrel"]), KB_DIR)
    assert d.decision == "not_covered" and [(r.id, r.details) for r in d.reasons] == [("NC.2", {"current_medications": ["enbrel"]})]


def test_an_lp_case_may_name_an_unnamed_drug_as_a_string_or_a_constant(tmp_path):
    facts = tmp_path / "case.lp"
    facts.write_text('case_indication(rheumatoid_arthritis).\ncase_history(0, "prednisone", tried).\ncase_history(1, colchicine, failure).\ncase_history(2, "enbrel", tried).\n')
    case = load_case(facts, KB_DIR)
    assert [e["drug"] for e in case.medication_history] == ["prednisone", "colchicine", "enbrel"]
    d = evaluate(case, KB_DIR)
    assert [n.field for n in d.notes if n.id == "Appendix"] == ["medication_history[0]", "medication_history[1]"]
    assert d.met("3.A.ii") is True


def test_the_warm_and_the_chunk_engines_agree_on_unnamed_drugs():
    cases = [ra_case([{"drug": name, "outcome": "tried"}, *FULL_RA]) for name in ["prednisone", "colchicine", "azathioprine", "prednisone"]]
    one_by_one = [evaluate(c, KB_DIR).to_dict() for c in cases]
    chunked = [d.to_dict() for d in evaluate_many(cases, KB_DIR)]
    assert one_by_one == chunked


def test_the_json_schema_of_an_open_key_takes_a_key_or_a_name(kb):
    from kineret_asp.author.json_schemas import CaseFormatSchema

    schema = CaseFormatSchema(kb.schema).document("case", "urn:case")
    item = schema["properties"]["medication_history"]["anyOf"][0]["items"]
    key, name = item["properties"]["drug"]["anyOf"]
    assert key == {"$ref": "#/$defs/drug_key"} and "amjevita" in schema["$defs"]["drug_key"]["enum"]
    assert name["pattern"].startswith("^[A-Za-z0-9]") and name["pattern"].endswith("$")
    import re

    assert re.match(name["pattern"], "prednisone 5 mg/day") and not re.match(name["pattern"], "x). decision(approved")


# --- biosimilars by class --------------------------------------------------------------


def test_done_when_prednisone_and_amjevita_in_the_history_are_decided():
    """Amjevita counts for 3.A.ii and as a concurrent biologic, not for row B."""
    history = [{"drug": "prednisone", "outcome": "tried"}, {"drug": "amjevita", "outcome": "failure"}, {"drug": "cimzia", "outcome": "failure"}]
    d = decide(ra_case(history))
    assert d.met("3.A.ii") is True
    assert d.met("3.C.B") is False and d.met("3.C") is False
    concurrent = decide(ra_case(FULL_RA, current_medications=["amjevita"]))
    assert concurrent.decision == "not_covered" and concurrent.reasons[0].details == {"current_medications": ["amjevita"]}


BIOSIMILARS = {
    "adalimumab": [
        "amjevita",
        "adalimumab_atto",
        "hadlima",
        "adalimumab_bwwd",
        "yusimry",
        "adalimumab_aqvh",
        "hulio",
        "adalimumab_fkjp",
        "idacio",
        "adalimumab_aacf",
        "yuflyma",
        "adalimumab_aaty",
        "abrilada",
        "adalimumab_afzb",
    ],
    "infliximab": ["remicade", "inflectra", "renflexis", "avsola"],
    "rituximab": ["rituxan", "truxima", "rituximab_abbs", "ruxience", "rituximab_pvvr", "riabni", "rituximab_arrx"],
    "actemra_iv": ["tofidence", "tyenne_iv", "avtozma_iv"],
    "actemra_sc": ["tyenne_sc", "avtozma_sc"],
}


@pytest.mark.parametrize("row, drug", [(row, d) for row, drugs in BIOSIMILARS.items() for d in drugs])
def test_each_biosimilar_is_a_member_of_its_class_for_3Aii_and_nc2_but_of_no_preferred_row(row, drug, kb):
    assert (drug, row) in kb.facts("appendix_member", 2)
    assert decide(ra_case([{"drug": drug, "outcome": "tried"}])).met("3.A.ii") is True
    assert decide(ra_case(FULL_RA, current_medications=[drug])).decision == "not_covered"
    preferred = decide(ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 4}, {"drug": drug, "outcome": "failure"}, {"drug": "cimzia", "outcome": "failure"}]))
    assert preferred.met("3.C") is False, "only the brands a preferred table names count for its row"


def test_tocilizumab_biosimilars_are_not_actemra_sc_for_row_a():
    for drug in ["tyenne_sc", "avtozma_sc"]:
        d = decide(ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 4}, {"drug": drug, "outcome": "failure"}, {"drug": "cimzia", "outcome": "failure"}]))
        assert d.met("3.C.A") is False


# --- 3.A.ii in the author's loop ------------------------------------------------------------


def test_verify_space_exercises_the_for_field(kb_copy):
    """Without the rule that an entry keeps what it was taken for, monotonic fails: adding 'for' another condition takes a trial away."""
    from kineret_asp.author.verify import verify_kb

    path = kb_copy / "properties" / "monotonic.lp"
    text = path.read_text()
    line = ":- case_history_for(b, N, _), case_history(a, N, _, _), not case_history_for(a, N, _)."
    assert line in text
    path.write_text(text.replace(line, ""))
    (result,) = verify_kb(kb_copy, ["monotonic"])
    assert not result.holds
    a, b = result.counterexample["a"], result.counterexample["b"]
    assert evaluate(a, kb_copy).decision == "approved" and evaluate(b, kb_copy).decision != "approved"
    assert any("for" in e and "for" not in x for e, x in zip(b["medication_history"], a["medication_history"]))


@pytest.mark.slow  # check on a KB copy (0.8 s)
def test_check_reads_space_values_by_the_field_they_name(kb_copy):
    from kineret_asp.author.check import check_kb

    path = kb_copy / "verify" / "space.lp"
    text = path.read_text()
    assert "space_entry_value(medication_history, for, (rheumatoid_arthritis; ankylosing_spondylitis))." in text
    path.write_text(text.replace("(rheumatoid_arthritis; ankylosing_spondylitis))", "(rheumatoid_arthritis; ankylosing_spondylits))"))
    errors = [d for d in check_kb(kb_copy).diagnostics if d.severity == "error"]
    assert len(errors) == 1 and "unknown indication key 'ankylosing_spondylits'" in errors[0].message
    assert "did you mean 'ankylosing_spondylitis'?" in errors[0].message


# --- evidence on every criterion ------------------------------------------------------------


def node(decision, cid):
    return next(n for root in decision.criteria for n in root.walk() if n.id == cid)


def evidence_of(decision, cid):
    return [(e.field, e.status, e.reason) for e in node(decision, cid).evidence]


def test_met_leaves_carry_the_case_facts_that_met_them_with_their_values():
    d = decide(ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 4}, {"drug": "cimzia", "outcome": "failure", "months": 6}, {"drug": "enbrel", "outcome": "intolerance"}]))
    assert d.decision == "approved"
    (mtx,) = node(d, "3.A.i").evidence
    assert (mtx.field, mtx.status, mtx.value) == ("medication_history[0]", "counted", {"drug": "methotrexate", "outcome": "failure", "months": 4, "sample": False})
    assert mtx.subject == "methotrexate failure, 4 months"
    assert evidence_of(d, "3.A.ii") == [("medication_history[1]", "counted", None), ("medication_history[2]", "counted", None)]
    assert evidence_of(d, "3.B") == [("prescriber_specialties[0]", "counted", None)]
    assert evidence_of(d, "3.C.C") == [("medication_history[1]", "counted", None)]
    assert evidence_of(d, "3.C.D") == [("medication_history[2]", "counted", None)]
    assert evidence_of(d, "3.C.A") == []


@pytest.mark.parametrize(
    "case, cid, field, reason",
    [
        (ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 2}]), "3.A.i", "medication_history[0]", "failure_too_short"),
        (ra_case([{"drug": "methotrexate", "outcome": "failure"}]), "3.A.i", "medication_history[0]", "failure_length_unknown"),
        (ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 6, "sample": True}]), "3.A.i", "medication_history[0]", "sample"),
        (ra_case([{"drug": "leflunomide", "outcome": "contraindication"}]), "3.A.i", "medication_history[0]", "not_all_csdmards"),
        (ra_case([{"drug": "leflunomide", "outcome": "tried", "months": 12}]), "3.A.i", "medication_history[0]", "a_trial_is_not_a_failure"),
        (ra_case([{"drug": "enbrel", "outcome": "contraindication"}]), "3.A.ii", "medication_history[0]", "contraindication_not_a_trial"),
        (ra_case([{"drug": "enbrel", "outcome": "tried", "for": "ankylosing_spondylitis"}]), "3.A.ii", "medication_history[0]", "taken_for_another_condition"),
        (ra_case([{"drug": "cosentyx", "outcome": "failure"}]), "3.A.ii", "medication_history[0]", "no_rheumatoid_arthritis_tick"),
        (ra_case([{"drug": "kineret", "outcome": "tried"}], request="continuation"), "3.A.ii", "medication_history[0]", "own_course"),
        (ra_case([{"drug": "enbrel", "outcome": "failure", "sample": True}]), "3.A.ii", "medication_history[0]", "sample"),
        (ra_case([{"drug": "prednisone", "outcome": "failure"}]), "3.A.ii", "medication_history[0]", "unnamed_drug"),
        (ra_case([{"drug": "cimzia", "outcome": "tried"}]), "3.C.C", "medication_history[0]", "a_trial_is_not_failure_contraindication_or_intolerance"),
        (ra_case([{"drug": "amjevita", "outcome": "failure"}]), "3.C.B", "medication_history[0]", "not_a_brand_of_the_row"),
        (ra_case([{"drug": "tyenne_sc", "outcome": "failure"}]), "3.C.A", "medication_history[0]", "not_a_brand_of_the_row"),
        (ra_case(prescriber_specialties=["dermatology"]), "3.B", "prescriber_specialties[0]", "specialty_not_named"),
        ({"indication": "dira", "genetic_tests": [{"gene": "NLRP3", "result": "mutation_confirmed"}]}, "2.A", "genetic_tests[0]", "another_gene"),
        ({"indication": "dira", "genetic_tests": [{"gene": "IL1RN", "result": "pending"}]}, "2.A", "genetic_tests[0]", "no_mutation_confirmed"),
        ({"indication": "caps", "prescriber_specialties": ["genetics"]}, "1.A", "indication", "syndrome_not_given"),
    ],
)
def test_unmet_criteria_say_what_was_found_and_why_it_did_not_count(case, cid, field, reason, kb):
    d = decide(case)
    assert d.met(cid) is False
    found = [e for e in node(d, cid).evidence if e.field == field]
    assert [(e.status, e.reason) for e in found] == [("not_counted", reason)]
    words = dict((str(k), str(t)) for k, t in kb.facts("evidence_text", 2))[reason]
    assert words in found[0].text and found[0].text != reason


def test_every_reason_a_rule_gives_has_its_words_in_the_kb(kb):
    import re

    reasons = {m for text in kb.texts.values() for m in re.findall(r"not_counted\(([a-z]\w*)\)", text)}
    words = {str(k) for k, _ in kb.facts("evidence_text", 2)}
    assert reasons and reasons <= words, sorted(reasons - words)


def test_the_json_decision_has_an_evidence_list_on_every_node():
    data = decide(ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 2}])).to_dict()
    nodes = []

    def walk(n):
        nodes.append(n)
        for c in n["children"]:
            walk(c)

    for root in data["criteria"]:
        walk(root)
    assert nodes and all(isinstance(n["evidence"], list) for n in nodes)
    (item,) = next(n for n in nodes if n["id"] == "3.A.i")["evidence"]
    assert item == {
        "field": "medication_history[0]",
        "value": {"drug": "methotrexate", "outcome": "failure", "months": 2, "sample": False},
        "status": "not_counted",
        "reason": "failure_too_short",
        "text": "not counted: documented for less than 3 months; 3.A.i asks for failure after 3 months",
    }


def test_the_text_tree_shows_the_evidence_under_each_leaf(tmp_path):
    path = tmp_path / "case.json"
    path.write_text(json.dumps(ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 2}, {"drug": "cosentyx", "outcome": "failure", "months": 6}])))
    out = CliRunner().invoke(main, ["evaluate", str(path)]).output
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "3.A.i  " in line)
    assert "evidence: medication_history[0] (methotrexate failure, 2 months): not counted: documented for less than 3 months" in lines[at + 1]
    assert any("medication_history[1] (Cosentyx failure, 6 months): not counted: the entry does not say what it was taken for" in line for line in lines)


def test_evidence_is_the_same_from_both_engines():
    cases = [ra_case([{"drug": "methotrexate", "outcome": "failure", "months": m}, {"drug": "cosentyx", "outcome": "failure", "for": "rheumatoid_arthritis"}]) for m in (2, 3, 4)]
    assert [evaluate(c, KB_DIR).to_dict() for c in cases] == [d.to_dict() for d in evaluate_many(cases, KB_DIR)]


# --- what blocks approval ---------------------------------------------------------------------


def test_a_continuation_missing_only_a_response_is_blocked_by_R_B_alone():
    d = evaluate(FACTS / "continuation" / "ra_no_response.json", KB_DIR)
    assert d.blocking == ("R.B",)
    assert set(d.unmet) == {"3.C.A", "3.C.B", "3.C.E", "3.C.F", "R", "R.B"}, "unmet stays as it was"


@pytest.mark.parametrize(
    "case, blocking",
    [
        (ra_case(FULL_RA), ()),
        (ra_case(FULL_RA, current_medications=["enbrel"]), ()),
        (ra_case(FULL_RA[:2]), ("3.C",)),
        (ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 2}, {"drug": "cimzia", "outcome": "contraindication"}, {"drug": "enbrel", "outcome": "contraindication"}]), ("3.A",)),
        (ra_case(FULL_RA, prescriber_specialties=[]), ("3.B",)),
        (ra_case(FULL_RA, prescriber_specialties=[], request="continuation"), ("3.B", "R.B")),
        ({"indication": "dira"}, ("2.A", "2.B")),
        ({"indication": "caps", "prescriber_specialties": ["genetics"]}, ("1.A",)),
        ({"indication": "stills_disease", "request": "continuation", "beneficial_response": True}, ("4",)),
        ({**ra_case(FULL_RA), "plan": None}, ("3.C",)),
    ],
)
def test_blocking_names_the_unmet_criteria_between_the_case_and_approval(case, blocking):
    assert decide(case).blocking == blocking


def test_blocking_takes_the_closest_alternatives_under_a_one_of_node():
    from kineret_asp.decisions.decision import CriterionResult as N
    from kineret_asp.decisions.decision import blocking

    def leaf(cid, met=False):
        return N(cid, cid, met)

    far = N("Y", "", False, (leaf("Y1"), leaf("Y2")))
    near = N("Z", "", False, (leaf("Z1", True), leaf("Z2")))
    root = N("X", "", False, (far, near))
    needs = {"X": 1, "Y": 2, "Z": 2}
    assert blocking((root,), needs, {}) == ("Z2",)
    tie = N("X", "", False, (N("Y", "", False, (leaf("Y1", True), leaf("Y2"))), near))
    assert blocking((tie,), needs, {}) == ("X",), "an open choice names the node itself"
    two_of_three = N("T", "", False, (leaf("A", True), leaf("B"), N("C", "", False, (leaf("C1"), leaf("C2")))))
    assert blocking((two_of_three,), {"T": 2, "C": 2}, {}) == ("B",)
    refers = N("R", "", False, (leaf("R.A"), leaf("R.B")))
    assert blocking((root, refers), {**needs, "R": 2}, {"R.A": "X"}) == ("Z2", "R.B")


def test_the_decision_format_gains_blocking_next_to_unmet_and_the_headline_shows_it():
    data = evaluate(FACTS / "continuation" / "ra_no_response.json", KB_DIR).to_dict()
    keys = list(data)
    assert keys.index("blocking") == keys.index("unmet") + 1
    assert data["blocking"] == ["R.B"]
    out = CliRunner().invoke(main, ["evaluate", str(FACTS / "continuation" / "ra_no_response.json")]).output
    assert "Decision: CRITERIA NOT MET (blocking: R.B)" in out


# --- `missing` that reads well ----------------------------------------------------------------


def test_a_missing_plan_type_is_a_question_to_answer_not_a_blocker():
    result = missing(FACTS / "ra" / "no_plan.json", KB_DIR)
    assert result.status == "options"
    (option,) = result.options
    (req,) = option.requirements
    assert req.question and option.questions == 1
    assert req.text == "state the plan type: Employer Group Plans or Individual and Family Plan"
    assert {c.to_dict()["value"] for c in req.alternatives} == {"employer_group", "individual_family"}
    assert [what_if(FACTS / "ra" / "no_plan.json", combo, KB_DIR).after.decision for combo in option.expanded()] == ["approved", "approved"]
    out = CliRunner().invoke(main, ["missing", str(FACTS / "ra" / "no_plan.json")]).output
    assert "[1 question]" in out and "- question: state the plan type: Employer Group Plans or Individual and Family Plan" in out


def test_a_plan_type_is_stated_once_with_the_documentation_it_still_needs():
    case = ra_case(FULL_RA[:2])
    del case["plan"]
    result = missing(case, KB_DIR)
    assert result.status == "options"
    for combo in result.expanded():
        assert sum(c.path == "plan" for c in combo) == 1
    option = result.options[0]
    assert option.requirements[0].question and option.size == 2
    out = CliRunner().invoke(main, ["missing", "-"], input=json.dumps(case)).output
    assert "[1 question, 1 addition]" in out


def test_missing_lists_each_requirement_on_its_line_and_its_alternatives_below_it():
    out = CliRunner().invoke(main, ["missing", str(FACTS / "ra" / "failure_too_short.json")]).output
    lines = out.splitlines()
    at = lines.index("  2. [1 addition]")
    assert lines[at + 1] == "     - one of:"
    assert lines[at + 2] == "       - documentation of failure after 3 months to one of: methotrexate, leflunomide, hydroxychloroquine, sulfasalazine"
    assert lines[at + 3].startswith("       - documentation of failure or intolerance to one of: ")
    four = lines.index("  4. [4 additions]")
    assert lines[four + 1 : four + 5] == [f"     - documentation of intolerance or contraindication to {d}" for d in ["methotrexate", "leflunomide", "hydroxychloroquine", "sulfasalazine"]]
    data = json.loads(CliRunner().invoke(main, ["missing", str(FACTS / "ra" / "failure_too_short.json"), "--format", "json"]).output)
    req = data["options"][1]["requirements"][0]
    assert len(req["parts"]) == 2 and req["question"] is False and req["text"] == "; or ".join(req["parts"])


def test_missing_proposes_an_earlier_biologic_for_rheumatoid_arthritis():
    history = [{"drug": "cosentyx", "outcome": "failure", "months": 6}, {"drug": "cimzia", "outcome": "contraindication"}, {"drug": "enbrel", "outcome": "contraindication"}]
    result = missing(ra_case(history), KB_DIR)
    texts = [r.text for o in result.options for r in o.requirements]
    assert any(t.startswith("documentation of an earlier biologic or targeted synthetic DMARD for rheumatoid arthritis: ") for t in texts)
    added = [c.value for combo in result.expanded() for c in combo if c.path == "medication_history"]
    assert {"drug": "kevzara", "outcome": "tried", "for": "rheumatoid_arthritis"} in added
    assert not any(v["drug"] in ("cosentyx", "kineret") and v.get("for") for v in added)


GRAMMAR_CASES = [
    ra_case([]),
    ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 1}, {"drug": "cimzia", "outcome": "contraindication"}], prescriber_specialties=[]),
    {**ra_case(FULL_RA[:1]), "plan": None},
    ra_case([{"drug": "sulfasalazine", "outcome": "failure"}], request="continuation"),
    ra_case(FULL_RA, current_medications=["enbrel", "xeljanz", "amjevita"]),
    {"indication": "dira"},
    {"indication": "caps"},
    {"indication": "stills_disease", "request": "continuation"},
    {"indication": "sjia", "current_medications": ["rituximab"]},
]
BROKEN = [r"[{}]", r"  ", r" ,", r" ;", r"\bof tried\b", r"\btried of\b", r"\bor tried\b", r"\b(of|to) (of|to)\b", r"\bcontraindication of\b", r"\bnone\b", r"[,;:]$", r"^[^a-z]", r"\(\)", r": :"]


def rendered_phrases(case, kb):
    """Every documentation item of a case in words: alone, and all items of a kind together."""
    from kineret_asp.explain.missing import Documentation, Words, _ground, item_changes

    loaded = load_case(case, kb)
    items = list(item_changes(loaded, kb))
    words = Words(kb, loaded, Documentation.read(_ground(loaded, kb, [], ["#show."])))
    kinds: dict[str, list] = {}
    for item in items:
        kinds.setdefault(item[0] if isinstance(item, tuple) else str(item), []).append(item)
    for kind, group in kinds.items():
        for item in group:
            yield kind, words.parts(kind, [item])
        yield kind, words.parts(kind, group)


@pytest.mark.slow  # every kind of documentation rendered for every grammar case
def test_every_documentation_item_reads_as_a_phrase(kb):
    import re

    seen = set()
    for case in GRAMMAR_CASES:
        for kind, parts in rendered_phrases(case, kb):
            seen.add(kind)
            for phrase in parts:
                plain = re.sub(r"\w+\[\d+\]", "", phrase)
                assert phrase and not re.search(r"\b[a-z]+_[a-z_]+\b", plain), phrase
                for pattern in BROKEN:
                    assert not re.search(pattern, phrase), (pattern, phrase)
    assert seen >= {"specialty", "genetic_test", "history", "earlier_biologic", "months", "beneficial_response", "discontinue", "plan_type"}
    assert "documentation of tried of one of" not in " ".join(p for c in GRAMMAR_CASES for _, ps in rendered_phrases(c, kb) for p in ps)


# --- every input error at once ------------------------------------------------------------------

THREE_MISTAKES = {
    "indication": "rheumatoid_artritis",
    "medication_history": [{"drug": "enbrl", "outcome": "failure", "months": 2000}],
    "current_medications": ["xeljanz_xr", "humra"],
}
THREE_PATHS = ["indication", "medication_history[0].drug", "medication_history[0].months", "current_medications[1]"]


def test_a_json_case_with_several_mistakes_reports_every_one_on_its_own_line_with_exit_2(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(THREE_MISTAKES))
    result = CliRunner().invoke(main, ["evaluate", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("kineret-asp: ")]
    assert [line.split(": ")[2] for line in lines] == THREE_PATHS
    assert "did you mean 'rheumatoid_arthritis'?" in lines[0] and "did you mean 'enbrel'?" in lines[1] and "did you mean 'humira'?" in lines[3]


def test_an_lp_case_with_several_mistakes_reports_each_at_its_line(tmp_path):
    path = tmp_path / "bad.lp"
    path.write_text("case_indication(rheumatoid_artritis).\ncase_history(0, enbrl, failure).\ncase_history_months(0, 2000).\ncase_current_medication(humra).\n")
    with pytest.raises(CaseError) as info:
        load_case(path, KB_DIR)
    lines = info.value.lines()
    assert len(lines) == 4
    assert [line.split(": ")[0] for line in lines] == [f"{path}:1:1", f"{path}:2:1", f"{path}:3:1", f"{path}:4:1"]


def test_a_what_if_change_that_breaks_the_case_reports_every_problem():
    with pytest.raises(CaseError) as info:
        what_if(
            ra_case(FULL_RA),
            [
                {"op": "set", "path": "plan", "value": "employer"},
                {"op": "add", "path": "current_medications", "value": "enbrell"},
                {"op": "set", "path": "medication_history[0].outcome", "value": "failed"},
            ],
            KB_DIR,
        )
    assert [e.path for e in info.value.errors] == ["plan", "medication_history[0].outcome", "current_medications[0]"]
    result = CliRunner().invoke(main, ["what-if", "-", "--set", "plan=employer", "--add", "current_medications=enbrell"], input=json.dumps(ra_case(FULL_RA)))
    assert result.exit_code == 2 and len([line for line in result.output.splitlines() if line.startswith("kineret-asp: ")]) == 2


def test_a_batch_error_record_carries_every_problem(tmp_path):
    from kineret_asp.batch.run import batch_evaluate

    records = batch_evaluate([json.dumps(THREE_MISTAKES), json.dumps(ra_case(FULL_RA))], KB_DIR)
    bad, good = (r.to_dict() for r in records)
    assert [e.split(": ")[1] for e in bad["errors"]] == THREE_PATHS
    assert bad["error"] == bad["errors"][0]
    assert good["decision"] == "approved" and "errors" not in good
    out = tmp_path / "out.jsonl"
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(THREE_MISTAKES) + "\n")
    assert CliRunner().invoke(main, ["batch", str(source), "-o", str(out), "--quiet", "--allow-errors"]).exit_code == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(record["errors"]) == 4 and record["error"] == record["errors"][0]


def test_the_vocabulary_listing_shows_each_biosimilars_class_table_and_row():
    data = json.loads(CliRunner().invoke(main, ["vocabulary", "drug", "--format", "json"]).output)
    keys = {k["key"]: k["details"] for k in data["vocabularies"][0]["keys"]}
    assert keys["amjevita"]["Appendix row"] == ["Adalimumab products (Humira, biosimilars)"]
    assert keys["amjevita"]["Appendix class"] == ["Tumor Necrosis Factor Inhibitors"]
    assert "Non-Preferred Product row" not in keys["amjevita"], "a biosimilar counts for no preferred row"
    assert keys["tyenne_sc"]["Appendix row"] == ["Actemra SC"] and keys["truxima"]["Appendix row"] == ["Rituximab Intravenous Products"]
    assert "Appendix row" not in keys["humira"], "a row's own brand needs no row detail"
