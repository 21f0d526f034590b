"""The case format (v1): valid cases load; bad input gives one clear line."""

from __future__ import annotations

import json

import pytest

from kineret_asp import Case, CaseError, MedicationEntry, load_case
from kineret_asp.cases.files import parse_json_text
from kineret_asp.knowledge.schema import MAX_LIST_ITEMS

from ..conftest import decide


def error_of(data, source="<dict>") -> CaseError:
    with pytest.raises(CaseError) as info:
        load_case(data)
    return info.value


def test_defaults_and_round_trip():
    case = load_case({"indication": "sjia"})
    assert case.request == "initial" and case.plan is None and case.prescriber_specialties == ()
    again = load_case(case.to_dict())
    assert again == case


def test_entry_fields_are_kept():
    case = load_case({"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrel", "outcome": "failure", "months": 5, "sample": True}]})
    assert case.medication_history == (MedicationEntry("enbrel", "failure", 5, True),)
    assert case.to_dict()["medication_history"] == [{"drug": "enbrel", "outcome": "failure", "months": 5, "sample": True}]


def test_gene_symbols_match_the_kb_case_insensitively_and_keep_others():
    case = load_case({"indication": "dira", "genetic_tests": [{"gene": "il1rn", "result": "negative"}, {"gene": "NLRP3", "result": "pending"}]})
    assert [t.gene for t in case.genetic_tests] == ["IL1RN", "NLRP3"]


@pytest.mark.parametrize(
    "data, path, words",
    [
        ({"indication": "rheumatoid_arthritis", "current_medications": ["enbrel", "x", "enbrl"]}, "current_medications[2]", "did you mean 'enbrel'?"),
        ({"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrl", "outcome": "failure"}]}, "medication_history[0].drug", "did you mean 'enbrel'?"),
        ({"indication": "rheumatoid_artritis"}, "indication", "did you mean 'rheumatoid_arthritis'?"),
        ({"indication": "sjia", "prescriber_specialties": ["rheumatolgy"]}, "prescriber_specialties[0]", "did you mean 'rheumatology'?"),
        ({"indication": "sjia", "plan": "employer"}, "plan", "expected one of employer_group, individual_family"),
        ({"indication": "sjia", "request": "renewal"}, "request", "expected one of continuation, initial"),
        ({"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrel", "outcome": "failed"}]}, "medication_history[0].outcome", "did you mean 'failure'?"),
        ({"indication": "dira", "genetic_tests": [{"gene": "IL1RN", "result": "positive"}]}, "genetic_tests[0].result", "expected one of mutation_confirmed, negative, pending"),
        ({}, "indication", "missing required field"),
        ({"indication": "sjia", "prescriber_speciality": []}, "prescriber_speciality", "did you mean 'prescriber_specialties'?"),
        ({"indication": "sjia", "prescriber_specialties": "rheumatology"}, "prescriber_specialties", "expected a list, got the string 'rheumatology'"),
        ({"indication": 7}, "indication", "expected an indication key (a string), got the number 7"),
        ({"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrel", "outcome": "failure", "months": "4"}]}, "medication_history[0].months", "expected a whole number, got"),
        ({"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrel", "outcome": "failure", "months": 2.5}]}, "medication_history[0].months", "expected a whole number, got"),
        ({"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrel", "outcome": "failure", "months": True}]}, "medication_history[0].months", "expected a whole number, got"),
        (
            {"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrel", "outcome": "failure", "months": -1}]},
            "medication_history[0].months",
            "expected a whole number from 0 to 1200, got -1",
        ),
        ({"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrel"}]}, "medication_history[0].outcome", "missing required field"),
        ({"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrel", "outcome": "failure", "dose": 40}]}, "medication_history[0].dose", "unknown field"),
        ({"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrel", "outcome": "failure", "sample": "yes"}]}, "medication_history[0].sample", "expected true or false"),
        ({"indication": "sjia", "beneficial_response": "yes"}, "beneficial_response", "expected true or false"),
        ({"indication": "sjia", "version": 2}, "version", "unsupported case format version 2"),
        ({"indication": "sjia", "id": 12}, "id", "expected a string"),
        ({"indication": "dira", "genetic_tests": [{"gene": 'IL1RN"). approved("x', "result": "negative"}]}, "genetic_tests[0].gene", "expected a gene name: letters, digits"),
        ({"indication": "sjia", "current_medications": ["enbrel"] * (MAX_LIST_ITEMS + 1)}, "current_medications", f"expected at most {MAX_LIST_ITEMS} entries"),
        ([1, 2], "", "expected a JSON object (a case), got a list"),
    ],
)
def test_bad_input_names_the_field_and_what_was_expected(data, path, words):
    err = error_of(data)
    assert err.path == path
    assert words in err.message, err.message
    line = err.line()
    assert "\n" not in line and line.startswith("<dict>")


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"", "empty input"),
        (b"   \n", "empty input"),
        (b'{"indication": ', "invalid JSON at line 1"),
        (b"\xff\xfe{}", "not UTF-8 text"),
        (b'{"indication": "sjia", "indication": "dira"}', "duplicate key 'indication'"),
        (b'{"indication": "sjia", "months": NaN}', "NaN is not valid JSON"),
        (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    ],
)
def test_unreadable_json_is_one_line(raw, words):
    with pytest.raises(CaseError) as info:
        parse_json_text(raw, "x.json")
    assert words in info.value.line()
    assert info.value.line().startswith("x.json: ")


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"indication": "rheumatoid_arthritis", "medication_history": [{"drug": "enbrl", "outcome": "failure"}]}))
    err = error_of(bad)
    assert (
        err.line() == f"{bad}: medication_history[0].drug: unknown drug 'enbrl'; expected a drug key of the KB (kb/policies/IP0243/2024-06-01/tables/appendix_drug_classes.lp); did you mean 'enbrel'?"
    )
    assert error_of(tmp_path / "missing.json").line() == f"{tmp_path / 'missing.json'}: no such file"
    assert error_of(tmp_path).message.startswith("is a folder")


def test_lp_case_accepts_only_case_facts(tmp_path):
    good = tmp_path / "c.lp"
    good.write_text("case_indication(stills_disease).\ncase_specialty(rheumatology).\n")
    assert decide(load_case(good)).decision == "approved"
    for text, words in [
        ("case_indication(sjia).\napproved :- case_indication(sjia).\n", "bad.lp:2:10: a rule or constraint"),
        ("#script (python)\nprint(1)\n#end.\n", "only facts"),
        ('case_indication(sjia).\n#include "/etc/passwd".\n', "only facts"),
        ("case_indication(sjia).\ndecision(approved).\n", "bad.lp:2:1: unknown case fact decision/1"),
        ("case_indication(sjia). case_indication(dira).", "given twice"),
        ("case_indication(X).", "a variable ('X') is not allowed"),
        ("case_indication(sjia", "the file ends before"),
        ("case_indication(sjia).\ncase_history(0, enbrl, failure).", "did you mean 'enbrel'?"),
    ]:
        bad = tmp_path / "bad.lp"
        bad.write_text(text)
        err = error_of(bad)
        assert words in err.line(), (text, err.line())
        assert "\n" not in err.line()


def test_case_objects_are_accepted_by_evaluate():
    case = Case(indication="sjia", prescriber_specialties=("rheumatology",))
    assert decide(case).decision == "approved"


def _variants() -> list:
    """Cases well formed and not: what the quick reading must read as the readers do (or leave to them)."""
    import sys

    from ..conftest import ROOT

    sys.path.insert(0, str(ROOT / "bench"))
    from cases import generate

    history = [{"drug": "enbrel", "outcome": "failure", "months": 4}, {"drug": "methotrexate", "outcome": "intolerance"}]
    base = {"indication": "rheumatoid_arthritis", "medication_history": history, "current_medications": ["prednisone"]}
    odd = [
        {**base, "indication": "RA"},  # a name the KB knows for a key
        {**base, "current_medications": ["Humira", "folic_acid"]},  # a drug's name, not its key
        {**base, "current_medications": ["some_new_drug", "prednisone"]},  # a name no rule knows (an open vocabulary)
        {**base, "current_medications": ["enbrl"]},
        {**base, "current_medications": [["enbrel"]]},
        {**base, "current_medications": [{"drug": "enbrel"}]},
        {**base, "current_medications": ("enbrel", "humira")},
        {**base, "prescriber_specialties": ["rheumatology", "rheumatology"]},
        {**base, "medication_history": [{**history[0], "months": True}]},
        {**base, "medication_history": [{**history[0], "months": 10**6}]},
        {**base, "medication_history": [{**history[0], "drug": "Enbrel"}]},
        {**base, "medication_history": [{**history[0], "sample": 1}]},
        {**base, "medication_history": [{**history[0], "dose": 40}]},
        {**base, "medication_history": [{"drug": "enbrel"}]},
        {**base, "medication_history": [{**history[0], "months": None}]},
        {**base, "medication_history": [MedicationEntry(drug="enbrel", outcome="failure")]},
        {**base, "medication_history": ["enbrel"]},
        {**base, "medication_history": {"drug": "enbrel"}},
        {**base, "id": "a\x00b"},
        {**base, "id": "\ud800"},
        {**base, "id": "x" * 1001},
        {**base, "id": "é ñ 漢字"},
        {**base, "id": 7},
        {**base, "beneficial_response": 1},
        {**base, "request": "Continuation"},
        {**base, "plan": None, "request": None},
        {**base, "version": True},
        {**base, "version": 1},
        {**base, "version": 0},
        {**base, "plan": None},
        {**base, "expect": {"decision": "approved"}},
        {**base, "unknown_field": 1},
        {"indication": "dira", "genetic_tests": [{"gene": "il1rn", "result": "negative"}]},  # a known gene in other letters
        {"indication": "dira", "genetic_tests": [{"gene": "NLRP3", "result": "negative"}]},  # a gene the KB does not name
        {"indication": "dira", "genetic_tests": [{"gene": "IL1RN; x", "result": "negative"}]},
        {"indication": "sjia", "undetermined": [{"field": "plan", "why": "not on the form"}]},
        {"indication": "sjia", "undetermined": [{"field": "plan", "why": "a\x00"}]},
    ]
    return [*generate(300, seed=5), *odd]


def test_the_quick_reading_of_well_formed_values_gives_what_the_readers_give(kb, monkeypatch):
    """Every case validates to the same values, atoms and messages with and without the quick reading; a well-formed one skips the readers."""
    from kineret_asp.cases.validation import Validator

    def outcome(validator, data):
        try:
            case = validator.validate(data, "<dict>")
        except CaseError as exc:
            return ("error", exc.lines())
        return ("case", case.to_dict(with_expect=True), case.atoms(), [type(v) for _, v in case.fields()])

    quick = Validator(kb.schema)
    slow = Validator(kb.schema)
    slow._plan = [(f, read, default, None) for f, read, default, _ in slow._plan]
    slow._quick_by_name = dict.fromkeys(slow._quick_by_name)
    variants = _variants()
    outcomes = [outcome(quick, data) for data in variants]
    assert outcomes == [outcome(slow, data) for data in variants]
    assert sum(o[0] == "error" for o in outcomes) >= 15 and sum(o[0] == "case" for o in outcomes) >= 300
    calls = []
    for name in ("_top", "_entries", "_entry", "_list", "_key", "_open_key", "_text"):
        method = getattr(Validator, name)
        monkeypatch.setattr(Validator, name, lambda self, *args, _m=method, _n=name: calls.append(_n) or _m(self, *args))
    watched = Validator(kb.schema)
    well_formed = [data for data, o in zip(variants[:300], outcomes) if o[0] == "case"]
    for data in well_formed:
        watched.validate(data, "<dict>")
    assert len(well_formed) == 300 and calls == []  # the quick reading read every value
    watched.validate({**well_formed[0], "current_medications": ["Humira"]}, "<dict>")
    assert "_list" in calls  # a value it does not vouch for goes to its reader


def test_an_entry_read_once_is_one_object_and_equal_values_of_other_types_are_read_again(kb):
    """Validation reads each well-formed entry once: equal entries are one Entry (its atoms made once for each place);
    ``1``, ``1.0`` and ``true`` are equal in Python but not as JSON values, and each is read as the first reading of it would read it."""
    from kineret_asp.cases.atoms import AtomWriter
    from kineret_asp.cases.validation import Validator

    def outcome(validator, data):
        try:
            case = validator.validate(data, "<dict>")
        except CaseError as exc:
            return ("error", exc.lines())
        return ("case", case.to_dict(), case.atoms(), AtomWriter(kb.schema).atoms(dict(case.fields())))

    entry = {"drug": "enbrel", "outcome": "failure", "months": 1, "sample": True}
    warm = Validator(kb.schema)
    first = warm.validate({"indication": "rheumatoid_arthritis", "medication_history": [entry]}, "<a>")
    again = warm.validate({"indication": "rheumatoid_arthritis", "medication_history": [dict(entry), {"drug": "humira", "outcome": "failure"}, dict(entry)]}, "<b>")
    assert again.medication_history[0] is first.medication_history[0] is again.medication_history[2]
    atoms = again.atoms()
    assert atoms == AtomWriter(kb.schema).atoms(dict(again.fields()))  # the same entry's atoms at places 0 and 2, each with its own place
    assert sum(1 for a in atoms if a[1:2] == (0,)) == sum(1 for a in atoms if a[1:2] == (2,)) >= 2
    variants = [
        {"indication": "rheumatoid_arthritis", "medication_history": [{**entry, **change}]}
        for change in ({"months": True}, {"months": 1.0}, {"sample": 1}, {"sample": 1.0}, {"months": 1, "sample": True}, {"months": [1]}, {"drug": "Enbrel"})
    ]
    assert [outcome(warm, data) for data in variants] == [outcome(Validator(kb.schema), data) for data in variants]
    assert [o[0] for o in (outcome(warm, data) for data in variants)].count("error") >= 4
