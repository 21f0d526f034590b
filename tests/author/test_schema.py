"""The published JSON Schemas: current with the KB, and true of every case, decision and record the program reads or writes."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from kineret_asp import evaluate, evaluate_many, load_case, load_kb
from kineret_asp.author.example_cases import discover
from kineret_asp.author.json_schemas import NAMES, REFRESH, json_schema, relative_path, schema_text, stale_files, write_schemas
from kineret_asp.batch.run import batch_evaluate
from kineret_asp.errors import CaseError
from kineret_asp.explain.missing import item_changes
from kineret_asp.knowledge.schema import BOOLEAN, DATE, ENTRIES, INTEGER, KEY, LIST, NAME, OBJECT, TEXT

from ..conftest import FACTS, KB_DIR, ROOT, cli

KB = load_kb(KB_DIR)
SCHEMAS = ROOT / "schemas"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def validator(name: str, kb=KB) -> Draft202012Validator:
    return Draft202012Validator(json_schema(kb, name), format_checker=FormatChecker())


CASE, DECISION, CHANGE, RECORD = (validator(n) for n in NAMES)


def errors(v: Draft202012Validator, data) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(data)]


def example_paths():
    return [p for p in discover([FACTS]) if p.suffix == ".json"]


# --- the files in the repository ---------------------------------------------------------


def test_the_schema_files_are_current():
    stale = stale_files(KB_DIR, SCHEMAS)
    assert not stale, f"stale JSON Schemas: {', '.join(map(str, stale))}; refresh them with: {REFRESH}"


def test_a_stale_or_stray_schema_file_is_found(tmp_path):
    dest = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, dest)
    assert stale_files(KB_DIR, dest) == []
    target = dest / relative_path(KB, "decision")
    target.write_text(target.read_text().replace("approved", "aproved", 1))
    stray = dest / "IP0243" / "1999-01-01" / "case.schema.json"
    stray.parent.mkdir()
    stray.write_text("{}")
    (dest / relative_path(KB, "change")).unlink()
    assert stale_files(KB_DIR, dest) == [target, dest / relative_path(KB, "change"), stray]
    assert sorted(write_schemas(KB_DIR, dest)) == sorted([target, dest / relative_path(KB, "change")])
    assert stale_files(KB_DIR, dest) == [stray]


def test_one_set_of_schemas_per_version_folder():
    versions = sorted(p.relative_to(KB_DIR / "policies") for p in (KB_DIR / "policies").glob("*/*") if p.is_dir())
    assert sorted({p.relative_to(SCHEMAS).parent for p in SCHEMAS.rglob("*.schema.json")}) == versions
    for version in versions:
        assert sorted(p.name for p in (SCHEMAS / version).iterdir()) == sorted(f"{n}.schema.json" for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_each_schema_is_a_valid_draft_2020_12_schema_and_the_cli_prints_it(name):
    schema = json_schema(KB, name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert KB.vocabulary.policy_id in schema["title"] and KB.vocabulary.effective_from in schema["$id"]
    out = cli("schema", name)
    assert out.returncode == 0 and out.stdout == schema_text(KB, name)
    assert out.stdout == (SCHEMAS / relative_path(KB, name)).read_text()


def test_the_schema_command_refuses_an_unknown_name():
    out = cli("schema", "decison")
    assert out.returncode == 2 and "did you mean 'decision'?" in out.stderr and "Traceback" not in out.stderr


def test_the_schema_command_writes_every_version(tmp_path):
    out = cli("schema", "--write", str(tmp_path))
    assert out.returncode == 0
    assert stale_files(KB_DIR, tmp_path) == []


# --- the case schema ---------------------------------------------------------------------------


def test_the_case_schema_is_the_kbs_declaration():
    schema = json_schema(KB, "case")
    fields = KB.schema.fields
    assert list(schema["properties"]) == [f.name for f in fields]
    assert schema["required"] == [f.name for f in fields if f.presence == "required"]
    assert schema["additionalProperties"] is False
    for f in fields:
        prop = schema["properties"][f.name]
        assert prop["description"] == f.description
        assert ({"type": "null"} in prop.get("anyOf", [])) == (f.presence != "required")
    for key_def in (k for k in schema["$defs"] if k.endswith("_key")):
        vocabulary = key_def[: -len("_key")]
        assert schema["$defs"][key_def]["enum"] == list(KB.vocabulary.keys[vocabulary])
    entries = [f for f in fields if f.kind.name == ENTRIES]
    assert entries
    for f in entries:
        item = schema["properties"][f.name]["anyOf"][0]["items"]
        assert item["additionalProperties"] is False
        assert item["required"] == [e.name for e in f.entry_fields if e.presence == "required"]
        assert [item["properties"][e.name]["description"] for e in f.entry_fields] == [e.description for e in f.entry_fields]


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: str(p.relative_to(FACTS)))
def test_every_example_case_is_valid(path):
    assert errors(CASE, json.loads(path.read_text())) == []


def test_an_lp_example_as_json_is_valid():
    lp = [p for p in FACTS.rglob("*.lp")]
    assert lp
    for path in lp:
        assert errors(CASE, load_case(path, KB).to_dict(with_expect=True)) == []


def test_the_case_schema_rejects_what_the_validator_rejects():
    good = json.loads((FACTS / "ra" / "approved_employer_group.json").read_text())
    assert errors(CASE, good) == []
    keyed = next(f for f in KB.schema.fields if f.kind.name == KEY and f.presence == "required")
    entries = next(f for f in KB.schema.fields if f.kind.name == ENTRIES)
    bad = [
        {**good, "unknown_field": 1},
        {**good, keyed.name: "not_a_key"},
        {**good, keyed.name: None},
        {k: v for k, v in good.items() if k != keyed.name},
        {**good, entries.name: [{"no_such": 1}]},
        {**good, entries.name: [{}]},
        {**good, "id": "a\x00b"},
        {**good, "id": "x" * 1001},
        {**good, "version": 2},
    ]
    for data in bad:
        assert errors(CASE, data), data
        with pytest.raises(CaseError):
            load_case(data, KB)


def test_the_case_schema_knows_what_an_expect_block_may_say():
    good = json.loads((FACTS / "ra" / "no_plan.json").read_text())
    assert good["expect"] and errors(CASE, good) == []
    for expect in ({"decison": "approved"}, {"unmet": ["9.Z"]}, {"reasons": ["NC.99"]}, {"decision": "denied"}, {"route": "deny"}):
        assert errors(CASE, {**good, "expect": expect}), expect


# --- decisions and records -------------------------------------------------------------------------


def test_every_decision_of_the_examples_is_valid():
    cases = [load_case(p, KB) for p in discover([FACTS])]
    decisions = list(evaluate_many(cases, KB))
    assert len(decisions) == len(cases) > 40
    assert {d.decision for d in decisions} == set(KB.vocabulary.decision_texts)
    assert any(d.notes for d in decisions) and any(d.reasons for d in decisions) and any(r.details for d in decisions for r in d.reasons)
    for case, d in zip(cases, decisions):
        assert errors(DECISION, d.to_dict()) == [], case.source
        assert errors(DECISION, json.loads(evaluate(case, KB).to_json())) == [], case.source


def test_every_batch_record_of_the_examples_is_valid():
    lines = [json.dumps(json.loads(p.read_text())) for p in example_paths()]
    lines += ["", "{not json", json.dumps({"id": "typo", "indication": "rheumatoid_arthritis", "plann": "x"}), "[1, 2]"]
    records = [r.to_dict() for r in batch_evaluate(lines, KB)]
    assert len(records) == len(lines)
    decided = Draft202012Validator({**json_schema(KB, "record"), "oneOf": [{"$ref": "#/$defs/decision_record"}]})
    failed = Draft202012Validator({**json_schema(KB, "record"), "oneOf": [{"$ref": "#/$defs/error_record"}]})
    for record in records:
        assert errors(RECORD, record) == [], record
        assert decided.is_valid(record) == ("error" not in record)
        assert failed.is_valid(record) == ("error" in record)
    assert sum("error" in r for r in records) == 4


def test_a_decision_may_gain_fields_but_its_parts_may_not():
    d = evaluate(json.loads((FACTS / "ra" / "no_plan.json").read_text()), KB).to_dict()
    assert errors(DECISION, {**d, "added_later": {"kb": "kb/"}}) == []
    assert errors(DECISION, {**d, "provenance": {**d["provenance"], "rules_sha256": "x"}})  # a part: closed
    node = dict(d["criteria"][0], colour="red")
    assert errors(DECISION, {**d, "criteria": [node]})
    assert errors(DECISION, {**d, "decision": "denied"})
    assert errors(DECISION, {**d, "route": "deny"})
    assert errors(DECISION, {**d, "unmet": ["9.Z"]})
    assert errors(DECISION, {k: v for k, v in d.items() if k != "route"})
    assert errors(DECISION, {**d, "notes": [{"id": "3.C", "text": "x", "field": "no_such_field"}]})
    assert errors(RECORD, {"line": 1, "id": None}) and errors(RECORD, {**d, "line": 0})


def test_the_decision_schema_is_the_kbs_words():
    schema = json_schema(KB, "decision")
    v = KB.vocabulary
    props = schema["properties"]
    assert props["decision"]["enum"] == list(v.decision_texts)
    assert props["route"]["enum"] == list(v.route_texts)
    assert schema["$defs"]["criterion_id"]["enum"] == list(v.criteria)
    assert schema["$defs"]["reason_id"]["enum"] == list(v.reason_texts)
    echoed = [str(a[0]) for a in KB.facts("decision_echo", 1)]
    assert echoed and all(props[name]["description"] == KB.schema.by_name[name].description for name in echoed)
    assert schema["additionalProperties"] is True
    assert schema["$defs"]["criterion"]["properties"]["children"]["items"] == {"$ref": "#/$defs/criterion"}
    described = {(str(f), str(n)): str(t) for f, n, t in KB.facts("output_field", 3)}
    assert all(props[k]["description"] == described[("decision", k)] for k in props if k not in echoed)


# --- changes ----------------------------------------------------------------------------------------


@pytest.mark.slow  # every change for every example case
def test_every_change_missing_proposes_is_valid():
    seen = 0
    paths = discover([FACTS])
    readings = [p for p in paths if p.relative_to(FACTS).parts[0] == "readings"]  # one fact varied each: every tenth keeps the suite's time
    for path in [p for p in paths if p not in readings] + readings[::10]:
        for change in item_changes(load_case(path, KB), KB).values():
            assert errors(CHANGE, change.to_dict()) == [], change
            seen += 1
    assert seen > 20


def test_the_change_schema_follows_the_case_fields():
    lists = [f for f in KB.schema.fields if f.kind.name in (LIST, ENTRIES)]
    scalars = [f for f in KB.schema.fields if f.kind.name not in (LIST, ENTRIES)]
    entries = next(f for f in lists if f.kind.name == ENTRIES and any(e.presence != "required" for e in f.entry_fields))
    optional_entry_field = next(e for e in entries.entry_fields if e.presence != "required")
    key_list = next(f for f in lists if f.kind.name == LIST)
    first_key = next(iter(KB.vocabulary.keys[key_list.kind.item.vocabulary]))
    integer = next((e for e in entries.entry_fields if e.kind.name == INTEGER), None)
    good = [
        {"op": "add", "path": key_list.name, "value": first_key},
        {"op": "remove", "path": key_list.name, "value": first_key},
        {"op": "remove", "path": f"{entries.name}[0]"},
        {"op": "set", "path": next(f.name for f in scalars if f.presence == "optional"), "value": None},
        {"op": "set", "path": f"{entries.name}[0].{optional_entry_field.name}", "value": None},
    ]
    bad = [
        {"op": "append", "path": key_list.name, "value": first_key},
        {"op": "add", "path": scalars[0].name, "value": 1},
        {"op": "add", "path": "no_such_field", "value": 1},
        {"op": "add", "path": key_list.name},
        {"op": "add", "path": key_list.name, "value": "!not a key nor a name"},  # an open list takes other names, never this
        {"op": "set", "path": f"{key_list.name}[0].x", "value": 1},
        {"op": "add", "path": key_list.name, "value": first_key, "extra": 1},
        {"op": "set", "path": f"{entries.name}[0].{entries.entry_fields[0].name}", "value": None},
    ]
    if integer is not None:
        good.append({"op": "set", "path": f"{entries.name}[2].{integer.name}", "value": integer.kind.maximum})
        bad.append({"op": "set", "path": f"{entries.name}[2].{integer.name}", "value": integer.kind.maximum + 1})
    for change in good:
        assert errors(CHANGE, change) == [], change
    for change in bad:
        assert errors(CHANGE, change), change


# --- generated cases ----------------------------------------------------------------------------------


def value_strategy(kind, schema=KB.schema):
    """Valid values of a kind, as the KB declares it."""
    if kind.name == KEY:
        return st.sampled_from(list(schema.vocabularies[kind.vocabulary]))
    if kind.name == "open_key":  # a key, or a name no key is near
        return st.one_of(st.sampled_from(list(schema.vocabularies[kind.vocabulary])), st.sampled_from(["prednisone", "colchicine", "azathioprine"]))
    if kind.name == NAME:
        return st.one_of(st.sampled_from(list(schema.vocabularies.get(kind.vocabulary, {})) or ["X1"]), st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,10}\Z"))
    if kind.name == INTEGER:
        return st.integers(kind.minimum, kind.maximum)
    if kind.name == BOOLEAN:
        return st.booleans()
    if kind.name == DATE:
        return st.dates().map(lambda d: d.isoformat())
    if kind.name == TEXT:
        return st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30)
    if kind.name == LIST:
        return st.lists(value_strategy(kind.item), max_size=4)
    raise AssertionError(kind)


def field_strategy(f):
    if "requested_drug" in f.roles:  # a request asks for a drug its version decides (another is refused before validation)
        from kineret_asp.cases.versions import drugs_of

        return st.sampled_from(list(drugs_of(KB)))
    if f.kind.name == ENTRIES:
        entry = st.fixed_dictionaries(
            {e.name: value_strategy(e.kind) for e in f.entry_fields if e.presence == "required"},
            optional={e.name: st.one_of(st.none(), value_strategy(e.kind)) for e in f.entry_fields if e.presence != "required"},
        )
        return st.lists(entry, max_size=4)
    return value_strategy(f.kind)


def case_strategy(schema=KB.schema):
    """Cases drawn from the KB's own declarations: every field, any value it may take."""
    fields = [f for f in schema.fields if f.kind.name != OBJECT and not f.roles & {"format_version"}]
    return st.fixed_dictionaries(
        {f.name: field_strategy(f) for f in fields if f.presence == "required"},
        optional={f.name: st.one_of(st.none(), field_strategy(f)) for f in fields if f.presence != "required"},
    )


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-3, 1300), st.text(max_size=4), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=1))


@st.composite
def mutated_cases(draw):
    """A valid case with one field replaced by junk, or one unknown field added."""
    case = draw(case_strategy())
    names = [f.name for f in KB.schema.fields if f.kind.name != OBJECT]
    if draw(st.booleans()):
        case[draw(st.sampled_from(names))] = draw(JUNK)
    else:
        case[draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in KB.schema.by_name))] = draw(JUNK)
    return case


def assert_case_and_decision_are_valid(case: dict) -> None:
    assert errors(CASE, case) == []
    decision = evaluate(case, KB).to_dict()
    assert errors(DECISION, decision) == []
    assert errors(RECORD, {"line": 1, **decision}) == []


# the fast lane decides 30 generated cases (a fixed seed: the same 30 each run); the slow lane 150
@settings(SETTINGS, max_examples=30, derandomize=True, database=None)
@given(case_strategy())
def test_generated_cases_and_their_decisions_are_valid(case):
    assert_case_and_decision_are_valid(case)


@pytest.mark.slow
@settings(SETTINGS, derandomize=True, database=None)
@given(case_strategy())
def test_150_generated_cases_and_their_decisions_are_valid(case):
    assert_case_and_decision_are_valid(case)


def assert_schema_and_validator_agree(case: dict) -> None:
    try:
        load_case(case, KB)
        accepted = True
    except CaseError:
        accepted = False
    assert accepted == (not errors(CASE, case)), case


# the fast lane reads 40 mutated cases (a fixed seed: the same 40 each run); the slow lane 150
@settings(SETTINGS, max_examples=40, derandomize=True, database=None)
@given(mutated_cases())
def test_the_case_schema_and_the_validator_agree(case):
    assert_schema_and_validator_agree(case)


@pytest.mark.slow
@settings(SETTINGS, derandomize=True, database=None)
@given(mutated_cases())
def test_the_case_schema_and_the_validator_agree_on_150_mutated_cases(case):
    assert_schema_and_validator_agree(case)


def test_a_new_kb_key_reaches_the_schema(kb_copy):
    vocabulary = kb_copy / "vocabulary.lp"
    vocabulary.write_text(vocabulary.read_text() + '\n% § Medical Necessity Criteria - a new plan type.\nplan(medicare, "Medicare").\n')
    kb = load_kb(kb_copy)
    assert "medicare" in json_schema(kb, "case")["$defs"]["plan_key"]["enum"]
    assert "medicare" not in json_schema(KB, "case")["$defs"]["plan_key"]["enum"]
    assert relative_path(kb, "case") == relative_path(KB, "case")


# --- the case-format section of docs/formats.md --------------------------------------------------------


def formats_case_section() -> str:
    text = (ROOT / "docs" / "formats.md").read_text()
    return text.split("## Case format (version 1)", 1)[1].split("\n## ", 1)[0]


def test_the_documented_case_format_table_is_the_schema():
    rows = {}
    for line in formats_case_section().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells
    declared = {}
    for f in KB.schema.fields:
        declared[f.name] = f
        for e in f.entry_fields:
            declared[f"{f.name}[].{e.name}"] = e
    assert list(rows) == list(declared)
    for path, f in declared.items():
        _, _, presence, text = rows[path]
        assert text == f.description, path
        assert presence.split()[0] == {"default": "default"}.get(f.presence, f.presence), path


def test_the_documented_case_example_is_real_json_valid_and_decides_as_it_expects():
    import re

    from kineret_asp.author.example_cases import compare

    blocks = re.findall(r"```json\n(.*?)```", formats_case_section(), re.S)
    assert len(blocks) == 1 and " | " not in blocks[0]
    case = json.loads(blocks[0])
    assert errors(CASE, case) == []
    assert set(case) == {f.name for f in KB.schema.fields}  # every field shown
    loaded = load_case(case, KB)
    assert compare(dict(loaded.expect), evaluate(loaded, KB)) == {}


def test_the_case_format_docs_point_to_the_schema_files_and_commands():
    section = formats_case_section()
    assert str(relative_path(KB, "case").parent) in section
    assert "kineret-asp schema case" in section and "kineret-asp vocabulary" in section and REFRESH in section


def _entry_field_values():
    """Values for any entry field: its vocabulary's keys, near misses, numbers at and past the bounds, other types."""
    keys = sorted({k for table in KB.schema.vocabularies.values() for k in table})
    return st.one_of(
        st.sampled_from(keys),
        st.sampled_from(keys).map(str.upper),
        st.text(max_size=8),
        st.integers(-5, 2000),
        st.booleans(),
        st.floats(allow_nan=False),
        st.none(),
        st.lists(st.integers(), max_size=2),
    )


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_a_value_an_entry_reader_skips_is_one_it_would_return_unchanged(data):
    """The quick test that lets validation skip a reader agrees with that reader, kind by kind."""
    from kineret_asp.cases.validation import Problems, validator

    readers = [(e, read, as_given) for rows in validator(KB.schema)._entry_readers.values() for e, read, _, as_given in rows if as_given is not None]
    assert {e.kind.name for e, _, _ in readers} >= {KEY, INTEGER, BOOLEAN}
    e, read, as_given = data.draw(st.sampled_from(readers))
    value = data.draw(_entry_field_values())
    if as_given(value):
        problems = Problems("<test>")
        assert read(value, e.name, problems) is value and problems.errors == []
