"""Hostile input: generated cases (hypothesis), invalid files, and ASP injection."""

from __future__ import annotations

import json
import subprocess
import sys

import clingo
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kineret_asp import CaseError, evaluate, load_case, load_kb
from kineret_asp.asp.facts import FactAdder
from kineret_asp.asp.symbols import Const, FactWriter, term_text
from kineret_asp.batch.run import batch_evaluate

from .conftest import KB_DIR, ROOT, cli

KB = load_kb(KB_DIR)
VOCAB = KB.vocabulary
BIOLOGIC_KEYS = {str(a[1]) for a in KB.static_model if a[0] == "biologic_or_tsdmard"}
COVERED = {str(a[1]) for a in KB.static_model if a[0] == "indication_criteria"}
DRUGS = sorted(VOCAB.keys["drug"])
BIOLOGICS = sorted(d for d in BIOLOGIC_KEYS if d != "kineret")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

entries = st.fixed_dictionaries(
    {"drug": st.sampled_from(DRUGS), "outcome": st.sampled_from(sorted(VOCAB.keys["outcome"]))},
    optional={"months": st.integers(0, 40), "sample": st.booleans()},
)
cases = st.fixed_dictionaries(
    {"indication": st.sampled_from(sorted(VOCAB.keys["indication"]))},
    optional={
        "id": st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20),
        "plan": st.sampled_from(sorted(VOCAB.keys["plan"])),
        "request": st.sampled_from(sorted(VOCAB.keys["request"])),
        "prescriber_specialties": st.lists(st.sampled_from(sorted(VOCAB.keys["specialty"])), max_size=4, unique=True),
        "genetic_tests": st.lists(st.fixed_dictionaries({"gene": st.sampled_from(["IL1RN", "NLRP3", "MEFV"]), "result": st.sampled_from(sorted(VOCAB.keys["test_result"]))}), max_size=2),
        "medication_history": st.lists(entries, max_size=6),
        "current_medications": st.lists(st.sampled_from(DRUGS), max_size=2),
        "beneficial_response": st.one_of(st.none(), st.booleans()),
    },
)
# RA cases near approval, so that the metamorphic properties below bite
ra_cases = st.fixed_dictionaries(
    {
        "indication": st.just("rheumatoid_arthritis"),
        "plan": st.sampled_from(sorted(VOCAB.keys["plan"])),
        "prescriber_specialties": st.just(["rheumatology"]),
        "medication_history": st.lists(entries, min_size=2, max_size=5).map(lambda h: [{"drug": "methotrexate", "outcome": "failure", "months": 3}, *h]),
    },
    optional={"request": st.sampled_from(sorted(VOCAB.keys["request"])), "beneficial_response": st.booleans()},
)


@pytest.mark.slow
@SETTINGS
@given(cases)
def test_decisions_are_deterministic(case):
    first = evaluate(case, KB_DIR).to_json()
    second = evaluate(json.loads(json.dumps(case)), KB_DIR).to_json()
    assert first == second


def assert_evaluate_and_batch_agree(many: list[dict]) -> None:
    records = list(batch_evaluate(many, KB_DIR))
    assert len(records) == len(many)
    for case, record in zip(many, records):
        assert record.decision is not None
        assert record.decision.to_dict() == evaluate(case, KB_DIR).to_dict()


@pytest.mark.slow
@settings(SETTINGS, max_examples=50)  # each list is a batch in a worker process; the record of tests/contracts compares 2,000 generated cases besides
@given(st.lists(cases, min_size=1, max_size=6))
def test_evaluate_and_batch_agree(many):
    assert_evaluate_and_batch_agree(many)


# the fast lane's twin: 4 generated lists (a fixed seed, the same each run); the slow lane draws 50 anew
@settings(SETTINGS, max_examples=4, derandomize=True, database=None)
@given(st.lists(cases, min_size=1, max_size=6))
def test_evaluate_and_batch_agree_on_4_seeded_lists(many):
    assert_evaluate_and_batch_agree(many)


@pytest.mark.slow
@SETTINGS
@given(st.one_of(cases, ra_cases), st.sampled_from(BIOLOGICS))
def test_adding_a_concurrent_biologic_never_yields_approved(case, drug):
    with_drug = {**case, "current_medications": [*case.get("current_medications", []), drug]}
    decision = evaluate(with_drug, KB_DIR)
    assert decision.decision != "approved"
    if decision.decision == "not_covered":
        assert any(r.id == "NC.2" for r in decision.reasons) or case["indication"] not in COVERED


@pytest.mark.slow
@SETTINGS
@given(st.one_of(cases, ra_cases), st.data())
def test_removing_a_specialty_never_turns_criteria_not_met_into_approved(case, data):
    specialties = case.get("prescriber_specialties") or []
    if not specialties:
        return
    gone = data.draw(st.sampled_from(specialties))
    before = evaluate(case, KB_DIR).decision
    after = evaluate({**case, "prescriber_specialties": [s for s in specialties if s != gone]}, KB_DIR).decision
    assert not (before == "criteria_not_met" and after == "approved")
    if before != "approved":
        assert after != "approved"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
case_shaped = st.dictionaries(
    st.sampled_from(["indication", "plan", "request", "prescriber_specialties", "medication_history", "genetic_tests", "current_medications", "beneficial_response", "id", "version", "bogus"]),
    json_values,
    max_size=6,
)


@pytest.mark.slow
@SETTINGS
@given(st.lists(st.one_of(json_values, case_shaped), min_size=1, max_size=8))
def test_invalid_values_give_error_records_never_a_crash(values):
    lines = [json.dumps(v) for v in values]
    records = list(batch_evaluate(lines, KB_DIR))
    assert len(records) == len(lines)
    for record in records:
        assert (record.decision is None) != (record.error is None)
        if record.error is not None:
            assert record.error.startswith(f"<batch>:{record.line}") and "\n" not in record.error


INJECTIONS = [
    '"). approved("x',
    "x). decision(approved",
    ":- not decision(approved).",
    "#show decision/1.",
    '#include "/etc/passwd".',
    "#script (python)\nimport os\n#end.",
    "a\nb",
    "nul\x00byte",
    "' OR 1=1 --",
    '\\"\\',
    "%* comment",
    "rheumatology). case_specialty(rheumatology",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_in_free_text_changes_no_decision(text):
    clean = {
        "indication": "rheumatoid_arthritis",
        "plan": "employer_group",
        "prescriber_specialties": ["dermatology"],
        "medication_history": [{"drug": "methotrexate", "outcome": "failure", "months": 2}],
    }
    baseline = evaluate(clean, KB_DIR).to_dict()
    for field in ("id", "description"):
        try:
            decision = evaluate({**clean, field: text}, KB_DIR).to_dict()
        except CaseError as exc:
            assert "NUL" in exc.message and "\x00" in text
            continue
        assert {k: v for k, v in decision.items() if k != "id"} == {k: v for k, v in baseline.items() if k != "id"}
        assert decision["decision"] == "criteria_not_met"


@pytest.mark.parametrize("text", INJECTIONS)
@pytest.mark.parametrize(
    "path",
    [
        "indication",
        "plan",
        "request",
        "prescriber_specialties[0]",
        "medication_history[0].drug",
        "medication_history[0].outcome",
        "current_medications[0]",
        "genetic_tests[0].gene",
        "genetic_tests[0].result",
    ],
)
def test_injection_in_keyed_fields_is_rejected_before_clingo(text, path):
    case = {
        "indication": "dira",
        "prescriber_specialties": ["genetics"],
        "medication_history": [{"drug": "enbrel", "outcome": "failure"}],
        "current_medications": ["methotrexate"],
        "genetic_tests": [{"gene": "IL1RN", "result": "negative"}],
    }
    field, _, rest = path.partition("[")
    if not rest:
        case[field] = text
    elif "." in rest:
        case[field][0][rest.split(".")[1]] = text
    else:
        case[field][0] = text
    with pytest.raises(CaseError) as info:
        load_case(case, KB_DIR)
    assert info.value.path == path


@pytest.mark.slow
@SETTINGS
@given(st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=60))
def test_strings_reach_clingo_only_as_strings(text):
    written = FactWriter().fact(("p", text, Const("k"), 7))
    parsed = clingo.parse_term(written.rstrip("."))
    assert parsed.name == "p" and parsed.arguments[0] == clingo.String(text)
    assert term_text(text) == str(clingo.String(text))
    control = clingo.Control(["--warn=none"])
    FactAdder().add(control, [("case_genetic_test", 0, text, Const("negative"))], [1])
    control.ground([("base", [])])
    (atom,) = [a.symbol for a in control.symbolic_atoms.by_signature("case_genetic_test", 4)]
    assert atom.arguments[2] == clingo.String(text)


@pytest.mark.parametrize("text", ["nul\x00", "lone \ud800 surrogate"])
def test_strings_clingo_cannot_hold_are_refused(text):
    with pytest.raises(ValueError):
        FactWriter().fact(("p", text))
    with pytest.raises(ValueError):
        FactAdder().add(clingo.Control(), [("p", text)])
    with pytest.raises(CaseError):
        load_case({"indication": "sjia", "id": text})


def test_a_lone_surrogate_in_a_line_is_an_error_record_not_a_crash():
    (record,) = batch_evaluate(['{"indication": "sjia", "id": "\\ud800"}'], KB_DIR)
    assert record.decision is None and "surrogate" in record.error and record.id is None


@pytest.mark.parametrize("bad", ["approved). p(x", "Upper", "a b", "x\ny", "", "1x"])
def test_constants_that_are_not_identifiers_are_refused(bad):
    with pytest.raises(ValueError):
        FactWriter().fact(("p", Const(bad)))
    with pytest.raises(ValueError):
        FactAdder().add(clingo.Control(), [("p", Const(bad))])


@pytest.mark.slow
def test_hostile_file_gives_one_record_per_line(tmp_path):
    deep = "[" * 50_000 + "]" * 50_000
    lines = [
        b"\xff\xfe\x00garbage",
        b"",
        b"   ",
        b'{"indication": "sjia", "prescriber_specialties": ["rheumatology"]}',
        deep.encode(),
        json.dumps({"indication": "sjia", "current_medications": ["enbrel"] * 5000}).encode(),
        json.dumps({"indication": 7, "plan": [], "request": {}}).encode(),
        json.dumps({"indication": "sjia", "id": "\u0000"}).encode(),
        json.dumps({"indication": "sjia", "genetic_tests": [{"gene": 'IL1RN"). approved("x', "result": "negative"}]}).encode(),
        b'{"indication": "sjia", "indication": "dira"}',
        b'{"indication": "sjia", "medication_history": [{"drug": "enbrel", "outcome": "failure", "months": 1e400}]}',
        b"\xef\xbb\xbf" + json.dumps({"indication": "stills_disease", "prescriber_specialties": ["rheumatology"]}).encode(),
        b"x" * (100 * 1024 * 1024),
        b'{"indication": "sjia", "prescriber_specialties": ["rheumatology"]}',
    ]
    src = tmp_path / "hostile.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    proc = subprocess.run([sys.executable, "-m", "kineret_asp", "batch", str(src), "-o", str(out), "--quiet", "--allow-errors"], cwd=ROOT, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    records = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(records) == len(lines)
    decided = [r["line"] for r in records if "decision" in r]
    assert decided == [4, 12, 14]
    errors = {r["line"]: r["error"] for r in records if "error" in r}
    assert "not UTF-8" in errors[1] and "empty input" in errors[2] and "nested too deeply" in errors[5]
    assert "at most 1000 entries" in errors[6] and "NUL" in errors[8] and "gene name" in errors[9]
    assert "duplicate key" in errors[10] and "whole number" in errors[11] and "line longer than" in errors[13]


def test_empty_input_file_gives_no_records(tmp_path):
    src = tmp_path / "empty.jsonl"
    src.write_bytes(b"")
    proc = cli("batch", str(src), text=False)
    assert proc.returncode == 0 and proc.stdout == b""
    assert b"0 records" in proc.stderr


def test_empty_case_file_is_a_clear_error(tmp_path):
    src = tmp_path / "empty.json"
    src.write_bytes(b"")
    proc = cli("evaluate", str(src))
    assert proc.returncode == 2 and proc.stderr.strip() == f"kineret-asp: {src}: empty input: expected a JSON object (a case)"


# symbols as clingo builds them: numbers, strings of any text, constants (signed), functions and tuples
_names = st.from_regex(r"_{0,2}[a-z][A-Za-z0-9_']{0,6}", fullmatch=True)
_texts = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12)
symbols = st.recursive(
    st.one_of(
        st.integers(-(2**31), 2**31 - 1).map(clingo.Number),
        _texts.map(clingo.String),
        st.tuples(_names, st.booleans()).map(lambda nb: clingo.Function(nb[0], [], nb[1])),
        st.just(clingo.Infimum),
        st.just(clingo.Supremum),
    ),
    lambda inner: st.one_of(
        st.tuples(_names, st.lists(inner, min_size=1, max_size=4), st.booleans()).map(lambda f: clingo.Function(f[0], f[1], f[2])),
        st.lists(inner, max_size=4).map(lambda args: clingo.Function("", args)),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(symbols)
def test_reading_a_symbol_from_its_text_gives_what_clingos_api_gives(symbol):
    from kineret_asp.asp.symbols import to_value, value_of_text

    assert repr(value_of_text(str(symbol))) == repr(to_value(symbol))
