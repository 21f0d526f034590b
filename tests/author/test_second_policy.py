"""Several policies in one KB tree: each request routed to its drug's policy.

The module fixture is the packaged KB with a second, fictional policy beside
IP0243: FX0001 (``tests/data/second_policy``), for the made-up drug
zelkimab, which claims FMF (IP0243 does not know it) and SJIA (IP0243 claims
it too, for anakinra). Every request is routed by the drug it asks for
(``requested_drug``), then by the claims (``claim/3``); provenance says how.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kineret_asp import batch_evaluate, evaluate, evaluate_many, load_case
from kineret_asp.cases.load import load
from kineret_asp.cases.versions import Chooser
from kineret_asp.cli import main

from ..conftest import FACTS, KB_DIR, ROOT

FIXTURE = ROOT / "tests" / "data" / "second_policy"
EXAMPLES = KB_DIR / "policies" / "IP0243" / "2024-06-01" / "cases"
FMF = {"indication": "fmf", "age": 5, "prescriber_specialties": ["rheumatology"], "medication_history": [{"drug": "anakinra", "outcome": "failure"}]}
SJIA = {"indication": "sjia", "age": 9, "crp_mg_l": 12, "prescriber_specialties": ["rheumatology"]}

SJIA_EXAMPLES = sorted(  # IP0243's examples for SJIA name no drug: in a tree where FX0001 also claims SJIA they are refused
    p.relative_to(FACTS).as_posix() for p in FACTS.rglob("*.json") if json.loads(p.read_text()).get("indication") == "sjia" and "requested_drug" not in json.loads(p.read_text())
)


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input)


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> Path:
    """The packaged KB with FX0001 beside IP0243."""
    root = tmp_path_factory.mktemp("two") / "kb"
    shutil.copytree(KB_DIR, root)
    shutil.copytree(FIXTURE / "FX0001", root / "policies" / "FX0001")
    return root


@pytest.fixture(scope="module")
def chooser(two) -> Chooser:
    return Chooser.of(two)


def routed(decision) -> tuple:
    p = decision.provenance
    return (decision.decision, p.policy, p.policy_chosen_by, p.claim)


def test_each_request_is_decided_by_its_drugs_policy_in_one_evaluate_and_one_batch(two, chooser, tmp_path):
    cases = [
        {**SJIA, "id": "a", "requested_drug": "zelkimab"},
        {"id": "b", "indication": "sjia", "prescriber_specialties": ["rheumatology"], "requested_drug": "Kineret"},  # a brand, read as its key
        {**FMF, "id": "c"},  # only FX0001 claims FMF: no drug needed
        {"id": "d", "indication": "rheumatoid_arthritis", "prescriber_specialties": ["rheumatology"]},  # only IP0243 claims RA
    ]
    expected = [
        ("approved", "FX0001", "claim", ("zelkimab", "indication", "sjia")),
        ("approved", "IP0243", "claim", ("kineret", "indication", "sjia")),
        ("approved", "FX0001", "claim", ("zelkimab", "indication", "fmf")),
        ("criteria_not_met", "IP0243", "claim", ("kineret", "indication", "rheumatoid_arthritis")),
    ]
    assert [routed(d) for d in evaluate_many(cases, chooser)] == expected
    records = list(batch_evaluate(cases, two))
    assert [(r.decision.decision, r.decision.provenance.policy, r.decision.provenance.to_dict()["claim"]) for r in records] == [
        (d, p, dict(zip(("drug", "field", "value"), c))) for d, p, _, c in expected
    ]
    # and on the command line, one evaluate run over several files, each decision saying how its policy was chosen
    paths = []
    for case in cases:
        paths.append(tmp_path / f"{case['id']}.json")
        paths[-1].write_text(json.dumps(case))
    result = run("evaluate", *map(str, paths), "--kb", str(two))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Policy: ")]
    assert lines == [
        "Policy: FX0001, chosen by its claim of zelkimab for indication sjia",
        "Policy: IP0243, chosen by its claim of kineret for indication sjia",
        "Policy: FX0001, chosen by its claim of zelkimab for indication fmf",
        "Policy: IP0243, chosen by its claim of kineret for indication rheumatoid_arthritis",
    ]


def test_a_request_without_a_drug_two_policies_claim_is_refused_naming_the_drugs_and_policies(two):
    result = run("evaluate", "-", "--kb", str(two), input=json.dumps(SJIA))
    assert result.exit_code == 2
    assert result.output == "kineret-asp: <stdin>: requested_drug: several policies could decide this case (FX0001 for zelkimab; IP0243 for kineret); name the drug it asks for in requested_drug\n"


def test_a_drug_no_policy_of_the_tree_decides_is_refused_in_one_line(two):
    result = run("evaluate", "-", "--kb", str(two), input=json.dumps({**SJIA, "requested_drug": "humira"}))
    assert result.exit_code == 2
    assert result.output == "kineret-asp: <stdin>: requested_drug: no policy of the KB decides requests for humira (policies: FX0001 for zelkimab; IP0243 for kineret)\n"
    typo = run("evaluate", "-", "--kb", str(two), input=json.dumps({**SJIA, "requested_drug": "zelkimabb"}))
    assert typo.exit_code == 2 and len(typo.output.splitlines()) == 1 and "did you mean 'zelkimab'?" in typo.output


def test_a_request_for_the_other_drug_is_checked_against_its_own_policys_schema(two):
    """An FMF request is FX0001's (never refused with IP0243's 'unknown indication'), an IP0243 field is refused by FX0001 for zelkimab."""
    assert routed(evaluate({**FMF, "requested_drug": "Zelkira"}, two))[:2] == ("approved", "FX0001")
    result = run("evaluate", "-", "--kb", str(two), input=json.dumps({**SJIA, "requested_drug": "zelkimab", "plan": "employer_group"}))
    assert result.exit_code == 2 and result.output.startswith("kineret-asp: <stdin>: plan: unknown field")
    wrong = run("evaluate", "-", "--kb", str(two), input=json.dumps({**FMF, "requested_drug": "kineret"}))
    assert wrong.exit_code == 2 and "indication: unknown indication 'fmf'" in wrong.output  # anakinra for FMF is IP0243's to refuse


def test_a_case_naming_a_policy_that_does_not_decide_its_drug_is_refused(two):
    result = run("evaluate", "-", "--kb", str(two), input=json.dumps({"indication": "sjia", "requested_drug": "zelkimab", "policy": "IP0243"}))
    assert result.exit_code == 2
    assert result.output == "kineret-asp: <stdin>: requested_drug: IP0243 does not decide requests for zelkimab (FX0001 does); it decides requests for kineret\n"


def test_a_v1_case_without_a_drug_is_decided_as_before_in_a_tree_of_ip0243_alone():
    case = FACTS / "sjia" / "approved.json"
    decision = evaluate(case)
    assert decision.decision == json.loads(case.read_text())["expect"]["decision"]
    assert decision.provenance.to_dict()["policy_chosen_by"] == "only_policy" and decision.provenance.claim is None
    named = evaluate({**json.loads(case.read_text()), "requested_drug": "anakinra"})
    assert named.decision == decision.decision and named.provenance.claim == ("kineret", "indication", "sjia")


def test_a_requested_drug_is_read_by_its_key_name_or_rxnorm_code():
    base = {"indication": "sjia", "prescriber_specialties": ["rheumatology"]}
    for given in ("kineret", "Kineret", "anakinra", "72435"):
        assert load_case({**base, "requested_drug": given}).get("requested_drug") == "kineret", given
    other = run("evaluate", "-", input=json.dumps({**base, "requested_drug": "humira"}))
    assert other.exit_code == 2 and other.output == "kineret-asp: <stdin>: requested_drug: IP0243 does not decide requests for humira; it decides requests for kineret\n"


def test_the_fhir_orders_medication_fills_the_requested_drug(two):
    alone = load(FACTS / "fhir" / "sjia_concurrent_etanercept.json")
    assert alone.case.get("requested_drug") == "kineret"
    # in the two-policy tree, the Bundle's SJIA order is anakinra's, so IP0243 decides it by its claim
    decision = evaluate(FACTS / "fhir" / "sjia_concurrent_etanercept.json", two)
    assert decision.provenance.policy == "IP0243" and decision.provenance.claim == ("kineret", "indication", "sjia")


def test_every_ip0243_example_routed_through_the_two_policy_tree_decides_as_with_ip0243_alone(two, chooser):
    """COVID-19 included; an SJIA case that names no drug is refused there, and decides as alone once it names anakinra."""
    paths = sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".json", ".lp") and p.is_file())
    assert len(paths) > 50 and any("covid" in p.name for p in paths)
    alone = Chooser.of(KB_DIR)
    pairs, refused = [], []
    for path in paths:
        try:
            pairs.append((load(path, chooser), load(path, alone)))
        except Exception as exc:  # only an SJIA request naming no drug may be refused: FX0001 claims SJIA too
            data = json.loads(path.read_text())
            assert data.get("indication") == "sjia" and "requested_drug" not in data and "requested_drug: several policies could decide" in str(exc), path
            refused.append(path)
            named = {**data, "requested_drug": "anakinra"}
            pairs.append((load(named, chooser, shown=str(path)), load(named, alone, shown=str(path))))
    assert refused  # the SJIA examples exercise the refusal
    from kineret_asp.api import decide_many

    routed_decisions = list(decide_many([a for a, _ in pairs]))
    alone_decisions = list(decide_many([b for _, b in pairs]))
    for (a, _), x, y in zip(pairs, routed_decisions, alone_decisions):
        assert x.provenance.policy == "IP0243", a.case.source
        assert {k: v for k, v in x.to_dict().items() if k != "provenance"} == {k: v for k, v in y.to_dict().items() if k != "provenance"}, a.case.source
    covid = [x for (a, _), x in zip(pairs, routed_decisions) if "covid" in a.case.source]
    assert covid and all(d.decision == "other_policy" for d in covid)


def test_the_example_cases_of_both_policies_pass_in_the_tree(two):
    result = run("test", str(two / "policies" / "FX0001"), "--kb", str(two))
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.output


# --- decimal quantities with units (FX0001's C-reactive protein: decimal(mg_per_l, 1), 2.B needs 10 mg/L) ---------


def crp(two, value) -> object:
    return evaluate({**SJIA, "requested_drug": "zelkimab", "crp_mg_l": value}, two)


def test_a_crp_of_9_5_mg_l_is_accepted_and_is_below_a_10_mg_l_threshold(two):
    decision = crp(two, 9.5)
    assert decision.decision == "criteria_not_met" and "2.B" in [c for c in decision.blocking]
    assert load({**SJIA, "requested_drug": "zelkimab", "crp_mg_l": 9.5}, two).case.atoms().count(("case_crp", 95)) == 1


def test_a_crp_of_10_mg_l_meets_a_10_mg_l_threshold(two):
    assert crp(two, 10).decision == "approved" and crp(two, 10.0).decision == "approved"


def test_a_crp_of_0_95_mg_dl_is_read_as_9_5_mg_l(two):
    assert load({**SJIA, "requested_drug": "zelkimab", "crp_mg_l": {"value": 0.95, "unit": "mg/dL"}}, two).case.get("crp_mg_l") == 9.5
    assert crp(two, {"value": 0.95, "unit": "mg/dL"}).decision == "criteria_not_met"
    assert crp(two, {"value": 1, "unit": "MG/DL"}).decision == "approved"


def test_a_value_in_a_unit_the_kb_cannot_convert_is_refused_in_one_line(two):
    result = run("evaluate", "-", "--kb", str(two), input=json.dumps({**SJIA, "requested_drug": "zelkimab", "crp_mg_l": {"value": 1, "unit": "mmol/L"}}))
    assert result.exit_code == 2
    assert result.output == "kineret-asp: <stdin>: crp_mg_l.unit: no conversion from 'mmol/L' to mg/L is declared; expected one of mg/L, mg/dL\n"


def test_a_value_with_more_decimal_places_than_declared_is_refused_not_rounded(two):
    result = run("evaluate", "-", "--kb", str(two), input=json.dumps({**SJIA, "requested_drug": "zelkimab", "crp_mg_l": 9.95}))
    assert result.exit_code == 2
    assert result.output == "kineret-asp: <stdin>: crp_mg_l: expected a number in mg/L with at most 1 decimal place(s), got 9.95\n"


def test_missing_offers_a_crp_of_at_least_10_mg_l(two):
    result = run("missing", str(FIXTURE / "FX0001" / "2025-01-01" / "cases" / "sjia_low_crp.json"), "--kb", str(two))
    assert result.exit_code == 0, result.output
    assert "     - a C-reactive protein of at least 10 mg/L" in result.output.splitlines()


def test_what_if_sets_a_decimal_given_with_a_unit(two):
    result = run("what-if", str(FIXTURE / "FX0001" / "2025-01-01" / "cases" / "sjia_low_crp.json"), "--kb", str(two), "--set", 'crp_mg_l={"value": 1.2, "unit": "mg/dL"}')
    assert result.exit_code == 0, result.output
    assert "After:  APPROVED for up to 6 months  [auto_approve]" in result.output


def test_an_lp_case_gives_a_decimal_as_the_whole_number_the_rules_read(two, tmp_path):
    facts = tmp_path / "crp.lp"
    facts.write_text("case_indication(sjia).\ncase_crp(95).\ncase_age(9).\ncase_specialty(rheumatology).\n")
    loaded = load(facts, two / "policies" / "FX0001" / "2025-01-01")
    assert loaded.case.get("crp_mg_l") == 9.5 and evaluate(loaded.case, two / "policies" / "FX0001" / "2025-01-01").decision == "criteria_not_met"


def test_the_json_schema_of_a_decimal_field_takes_a_number_or_a_value_with_a_convertible_unit(two):
    result = run("schema", "case", "--kb", str(two), "--policy", "FX0001")
    assert result.exit_code == 0, result.output
    field = json.loads(result.stdout)["properties"]["crp_mg_l"]["anyOf"][0]
    assert field["anyOf"][0] == {"type": "number"} and field["description"] == "in mg/L"
    assert field["anyOf"][1]["properties"]["unit"]["enum"][:2] == ["mg/L", "mg/dL"]


# --- decimal quantities from FHIR: an Observation's valueQuantity (UCUM) through FX0001's codes/fhir.lp -----------

UCUM = "http://unitsofmeasure.org"
UNSETTLED = ("criteria_not_met", ["crp_mg_l"])  # never approved: 2.B unmet, the CRP named as the fact to establish


def crp_bundle(tmp_path, *quantities: dict) -> Path:
    """A Bundle ordering zelkimab for SJIA from a rheumatologist, with one final CRP Observation per quantity."""
    own = "urn:kineret-asp:vocabulary:"
    entries = [
        {"resource": {"resourceType": "Patient", "id": "p"}},
        {
            "resource": {
                "resourceType": "MedicationRequest",
                "id": "order",
                "status": "draft",
                "intent": "order",
                "subject": {"reference": "Patient/p"},
                "medicationCodeableConcept": {"coding": [{"system": own + "drug", "code": "zelkimab"}]},
                "reasonCode": [{"coding": [{"system": own + "indication", "code": "sjia"}]}],
            }
        },
        {"resource": {"resourceType": "PractitionerRole", "id": "role", "specialty": [{"coding": [{"system": own + "specialty", "code": "rheumatology"}]}]}},
    ]
    for i, q in enumerate(quantities):
        entries.append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": f"crp{i}",
                    "status": "final",
                    "subject": {"reference": "Patient/p"},
                    "code": {"coding": [{"system": "http://loinc.org", "code": "1988-5"}]},
                    "valueQuantity": q,
                }
            }
        )
    path = tmp_path / f"crp_bundle_{len(list(tmp_path.glob('crp_bundle_*')))}.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    return path


def decided(path: Path, two: Path, chooser: Chooser) -> tuple[str, list[str]]:
    """The decision of the case read from the Bundle (with the age FX0001 takes from the request form, fhir_not_read), and the facts it lists as undetermined.

    An undetermined fact is never approved (framework/decision.lp); with
    2.B unmet for want of a value, the decision is criteria_not_met with the
    CRP listed as the fact to establish: a clinical review either way.
    """
    answer = evaluate({**load(path, chooser).case.to_dict(), "age": 9}, two).to_dict()
    return answer["decision"], [u["id"] for u in answer["undetermined"]]


def test_a_fhir_crp_of_9_5_mg_l_is_read_and_is_below_a_10_mg_l_threshold(two, chooser, tmp_path):
    path = crp_bundle(tmp_path, {"value": 9.5, "system": UCUM, "code": "mg/L", "unit": "mg/L"})
    loaded = load(path, chooser)
    assert loaded.case.get("crp_mg_l") == 9.5 and not loaded.case.get("undetermined")
    assert routed(evaluate(path, two))[1] == "FX0001" and decided(path, two, chooser) == ("criteria_not_met", [])
    above = crp_bundle(tmp_path, {"value": 12, "system": UCUM, "code": "mg/L"})
    assert decided(above, two, chooser) == ("approved", [])


def test_a_fhir_crp_of_0_95_mg_dl_is_converted_to_9_5_mg_l(two, chooser, tmp_path):
    path = crp_bundle(tmp_path, {"value": 0.95, "system": UCUM, "code": "mg/dL"})
    assert load(path, chooser).case.get("crp_mg_l") == 9.5
    assert decided(path, two, chooser) == ("criteria_not_met", [])
    assert decided(crp_bundle(tmp_path, {"value": 1.2, "system": UCUM, "code": "mg/dL"}), two, chooser) == ("approved", [])


def test_a_fhir_crp_in_a_unit_the_kb_cannot_convert_is_undetermined_never_approved(two, chooser, tmp_path):
    """Even at a value that would meet the threshold in mg/L: the unit says it is not mg/L."""
    path = crp_bundle(tmp_path, {"value": 120, "system": UCUM, "code": "nmol/L"})
    case = load(path, chooser).case
    assert case.get("crp_mg_l") is None
    assert [(u.field, u.why) for u in case.get("undetermined")] == [("crp_mg_l", "Observation/crp0: 120 nmol/L: no conversion to mg/L is declared (the units the KB reads: mg/L, mg/dL)")]
    assert decided(path, two, chooser) == UNSETTLED
    # a unit given only as display text (no UCUM code) is not read as one either
    text_only = crp_bundle(tmp_path, {"value": 12, "unit": "mg/L"})
    assert decided(text_only, two, chooser) == UNSETTLED
    assert "its unit is not coded in UCUM" in load(text_only, chooser).case.get("undetermined")[0].why


def test_a_fhir_crp_with_a_comparator_is_a_bound_neither_meeting_nor_failing_the_threshold(two, chooser, tmp_path):
    """FHIR R4 Quantity.comparator: "<10 mg/L" says the value is below 10, not that it is 9.99; ">10" is never taken as 10 or more here either."""
    for comparator, value in (("<", 10), (">", 10), ("<=", 9.5), (">=", 12), ("ad", 12)):
        path = crp_bundle(tmp_path, {"value": value, "comparator": comparator, "system": UCUM, "code": "mg/L"})
        case = load(path, chooser).case
        assert case.get("crp_mg_l") is None, comparator
        assert [u.why for u in case.get("undetermined")] == [f"Observation/crp0: {comparator}{value} mg/L is a bound (FHIR Quantity.comparator), not a value; the value itself is not known"]
        assert decided(path, two, chooser) == UNSETTLED, comparator
    # a bound beside an exact value settles nothing: the reviewer reads both
    both = crp_bundle(tmp_path, {"value": 12, "system": UCUM, "code": "mg/L"}, {"value": 10, "comparator": "<", "system": UCUM, "code": "mg/L"})
    assert decided(both, two, chooser) == UNSETTLED


def test_a_fhir_crp_more_precise_than_the_field_is_undetermined_not_rounded(two, chooser, tmp_path):
    path = crp_bundle(tmp_path, {"value": 0.996, "system": UCUM, "code": "mg/dL"})  # 9.96 mg/L: rounded to 10.0 it would meet 2.B
    case = load(path, chooser).case
    assert case.get("crp_mg_l") is None and "more precise than the 1 decimal place(s) in mg/L" in case.get("undetermined")[0].why
    assert decided(path, two, chooser) == UNSETTLED


# --- every command at home in a tree of several policies ----------------------------------------------------------


def test_verify_runs_every_policy_of_the_tree_labelled_without_naming_one(two):
    result = run("verify", "--kb", str(two))
    assert result.exit_code == 0, result.output
    labels = [line for line in result.output.splitlines() if line.startswith("KB: ")]
    assert [line.split("(")[1].split(":")[0] for line in labels] == ["policies/FX0001/2025-01-01", "policies/IP0243/2024-06-01"]
    assert "5 of 5 properties hold" in result.output and "10 of 10 properties hold" in result.output
    as_json = json.loads(run("verify", "--kb", str(two), "--format", "json").output)
    assert as_json["holds"] and [v["version"] for v in as_json["versions"]] == ["policies/FX0001/2025-01-01", "policies/IP0243/2024-06-01"]


def test_vocabulary_and_schema_list_every_policy_of_the_tree_labelled(two):
    listing = run("vocabulary", "indication", "--kb", str(two))
    assert listing.exit_code == 0, listing.output
    assert "policies/FX0001/2025-01-01" in listing.output.split("fmf")[0] and "policies/IP0243/2024-06-01" in listing.output
    units = run("vocabulary", "unit", "--kb", str(two))  # only FX0001 has units: only it is listed
    assert units.exit_code == 0 and "mg_per_dl  mg/dL" in units.output and "IP0243" not in units.output
    schemas = CliRunner().invoke(main, ["schema", "case", "--kb", str(two)])
    assert schemas.exit_code == 0, schemas.output
    by_folder = json.loads(schemas.stdout)
    assert list(by_folder) == ["policies/FX0001/2025-01-01", "policies/IP0243/2024-06-01"]
    assert "crp_mg_l" in by_folder["policies/FX0001/2025-01-01"]["properties"] and "plan" in by_folder["policies/IP0243/2024-06-01"]["properties"]
    narrowed = CliRunner().invoke(main, ["schema", "case", "--kb", str(two), "--policy", "IP0243"])
    assert json.loads(narrowed.stdout)["properties"]["requested_drug"]["anyOf"][0] == {"type": "string", "enum": ["kineret"]}


def test_trace_runs_every_policy_of_the_tree_and_says_which_has_no_text(two):
    result = CliRunner().invoke(main, ["trace", "--kb", str(two)])
    assert result.exit_code == 0, result.output
    assert "policies/IP0243/2024-06-01" in result.stdout and "IP0243 Anakinra, effective 2024-06-01" in result.stdout
    assert "policies/FX0001/2025-01-01:0:0: error: the version declares no policy text" in result.stderr


def test_diff_of_two_trees_of_several_policies_labels_each_policy(two, tmp_path):
    new = tmp_path / "kb"
    shutil.copytree(two, new)
    rules = new / "policies" / "FX0001" / "2025-01-01" / "criteria.lp"
    rules.write_text(rules.read_text().replace("V >= 100.", "V >= 95."))
    result = run("diff", str(two), str(new))
    assert result.exit_code == 0, result.output
    fx, ip = result.output.split("\n\nIP0243 ")
    assert fx.startswith("FX0001 2025-01-01.. (") and "criteria_not_met -> approved" in fx and '"crp_mg_l": 9.5' in fx
    assert ip.splitlines()[1] == "no decision changes"


def test_diff_from_to_dates_in_a_tree_of_several_policies_diffs_each_policys_versions_in_force_labelled(two, tmp_path):
    """Without --policy: each policy's versions in force on the two dates; a policy not yet in force, or with one version on both dates, is named and not diffed."""
    tree = tmp_path / "kb"
    shutil.copytree(two, tree)
    later = tree / "policies" / "FX0001" / "2025-07-01"
    shutil.copytree(tree / "policies" / "FX0001" / "2025-01-01", later)
    shutil.rmtree(later / "cases")
    (later / "policy.lp").write_text((later / "policy.lp").read_text().replace('effective_from("2025-01-01")', 'effective_from("2025-07-01")'))
    (later / "criteria.lp").write_text((later / "criteria.lp").read_text().replace("V >= 100.", "V >= 95."))
    result = run("diff", "--from", "2025-02-01", "--to", "2025-08-01", "--kb", str(tree))
    assert result.exit_code == 0, result.output
    fx, ip = result.output.split("\n\nIP0243 ")
    assert fx.startswith("FX0001 2025-01-01.. (") and " -> FX0001 2025-07-01.. (" in fx.splitlines()[0]
    assert "criteria_not_met -> approved" in fx and '"crp_mg_l": 9.5' in fx
    assert ip.rstrip("\n").endswith(": the same version is in force on 2025-02-01 and 2025-08-01: no change")
    assert run("diff", "--from", "2025-02-01", "--to", "2025-08-01", "--kb", str(tree), "--exit-code").exit_code == 1
    before = json.loads(run("diff", "--from", "2024-07-01", "--to", "2025-02-01", "--kb", str(tree), "--format", "json").output)
    assert [(p["policy"], p["from"] and p["from"]["version"], p["to"]["version"], p["changes"], p.get("note")) for p in before["policies"]] == [
        ("FX0001", None, "2025-01-01", 0, "no version in force on 2024-07-01; its versions: 2025-01-01.., 2025-07-01.."),
        ("IP0243", "2024-06-01", "2024-06-01", 0, "the same version is in force on 2024-07-01 and 2025-02-01: no change"),
    ]
    narrowed = run("diff", "--from", "2025-02-01", "--to", "2025-08-01", "--kb", str(tree), "--policy", "FX0001")
    assert narrowed.exit_code == 0 and "IP0243" not in narrowed.output and "criteria_not_met -> approved" in narrowed.output


def test_test_coverage_counts_each_policy_of_the_tree_apart(two):
    result = run("test", "--kb", str(two), "--coverage", "--format", "json")
    payload = json.loads(result.output)
    by_version = {c["version"]: c for c in payload["coverage"]["versions"]} if "versions" in payload["coverage"] else None
    assert by_version is not None and set(by_version) >= {"FX0001 2025-01-01..", "IP0243 2024-06-01.."}
    # IP0243's SJIA examples are refused when routed through this tree: its tables' pinning is not measured on the rest
    (refused,) = [t["not_measured"] for t in payload["coverage"]["tables"] if "not_measured" in t]
    assert "the version's own examples fail" in refused and "/IP0243/" in refused


# --- routing that cannot change silently --------------------------------------------------------------------------


def test_test_routes_every_example_through_the_tree_and_fails_one_it_would_refuse(two):
    result = run("test", "--kb", str(two))
    assert result.exit_code != 0
    failed = [line for line in result.output.splitlines() if line.startswith("FAIL ")]
    assert [line.split("/cases/")[1].split()[0] for line in failed] == SJIA_EXAMPLES
    assert "routed through the tree as a request, it is refused: requested_drug: several policies could decide this case (FX0001 for zelkimab; IP0243 for kineret)" in result.output


def test_check_warns_of_two_drugs_claiming_one_use_and_of_the_examples_it_reroutes(two):
    from kineret_asp.author.check import check_kb

    warnings = [d for d in check_kb(two).diagnostics if d.severity == "warning" and d.code in ("versions", "routing")]
    claims = [d for d in warnings if d.code == "versions"]
    assert len(claims) == 1 and claims[0].file.endswith("FX0001/2025-01-01/policy.lp")
    assert (
        claims[0].message
        == "FX0001 2025-01-01.. claims indication sjia for zelkimab, as IP0243 2024-06-01.. does for kineret, from 2025-01-01: such a request that names no drug (requested_drug) is refused"
    )
    assert sorted(Path(d.file).relative_to(two / "policies" / "IP0243" / "2024-06-01" / "cases").as_posix() for d in warnings if d.code == "routing") == SJIA_EXAMPLES
    assert not [d for d in check_kb(two).diagnostics if d.severity == "error"]


# --- the contract of a version, and a new policy ---------------------------------------------------------------------


def test_new_policy_writes_a_first_version_that_passes_check(tmp_path):
    from kineret_asp.author.check import check_kb

    root = tmp_path / "kb"
    shutil.copytree(KB_DIR, root, ignore=shutil.ignore_patterns("cases"))
    result = run("new-policy", "FX0002", "--drug", "zelkimab", "--effective", "2025-02-01", "--kb", str(root))
    assert result.exit_code == 0, result.output
    folder = root / "policies" / "FX0002" / "2025-02-01"
    assert sorted(p.name for p in folder.iterdir()) == ["criteria.lp", "inputs.lp", "policy.lp", "vocabulary.lp"]
    assert result.output.splitlines()[0] == f"new policy {folder} for zelkimab, effective 2025-02-01"
    errors = [d for d in check_kb(root).diagnostics if d.severity == "error" and "FX0002" in d.file]
    assert errors == []
    again = run("new-policy", "FX0002", "--drug", "zelkimab", "--effective", "2025-03-01", "--kb", str(root))
    assert again.exit_code == 2 and again.output == f"kineret-asp: policy FX0002 is already in {root}: start its next version with kineret-asp new-version FX0002 --effective 2025-03-01\n"


def test_a_version_missing_criterion_4_gets_one_error_naming_its_folder(tmp_path):
    from kineret_asp.author.check import check_kb

    root = tmp_path / "kb"
    shutil.copytree(KB_DIR, root, ignore=shutil.ignore_patterns("cases"))
    assert run("new-policy", "FX0002", "--drug", "zelkimab", "--effective", "2025-02-01", "--kb", str(root)).exit_code == 0
    folder = root / "policies" / "FX0002" / "2025-02-01"
    criteria = folder / "criteria.lp"
    criteria.write_text("\n".join(line for line in criteria.read_text().splitlines() if not line.startswith("criterion(")) + "\n")
    errors = [d for d in check_kb(root).diagnostics if d.severity == "error"]
    assert len(errors) == 1, errors
    assert errors[0].file == str(folder) and errors[0].message.startswith(
        'the version does not define criterion/4, which every version must: its criteria: criterion(Id, Parent, Rule, "the policy\'s words")'
    )
