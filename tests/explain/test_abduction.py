"""What is missing: options are sound, minimal, complete, and read the policy right."""

from __future__ import annotations

import itertools
import json
import random

import pytest
from click.testing import CliRunner

from kineret_asp import evaluate_many, load_case
from kineret_asp.author.example_cases import discover
from kineret_asp.cases.changes import apply_changes
from kineret_asp.cli import main
from kineret_asp.explain.missing import item_changes, missing

from ..conftest import FACTS, KB_DIR, copy_kb, ra_case

_ALL = discover([FACTS])
_READINGS = [p for p in _ALL if p.relative_to(FACTS).parts[0] == "readings"]
EXAMPLES = [p for p in _ALL if p not in _READINGS] + _READINGS[::10]  # the readings' 141 cases vary one fact each: every tenth keeps the suite's time
ADALIMUMAB = {"humira", "hyrimoz", "adalimumab_adaz", "cyltezo", "adalimumab_adbm", "simlandi", "adalimumab_ryvk"}


def decisions(case, change_lists, kb):
    changed = [apply_changes(case, changes, kb) for changes in change_lists]
    return [d.decision for d in evaluate_many(changed, kb)]


def check_sound_and_minimal(case, kb, sample: int | None = None):
    """Every single option gives approved; dropping any one of its changes does not.

    With ``sample``, every grouped option is checked through its first and
    last expansion and a seeded sample of the rest (a case far from approval
    stands for thousands of single options).
    """
    result = missing(case, kb)
    if result.status != "options":
        return result
    sizes = [o.size for o in result.options]
    assert sizes == sorted(sizes)
    expanded = []
    rng = random.Random(7)
    for option in result.options:
        combos = list(option.expanded())
        assert combos and len(combos) == option.count()
        if sample is not None and len(combos) > sample:
            combos = [combos[0], combos[-1], *rng.sample(combos[1:-1], sample - 2)]
        expanded.extend(combos)
    assert set(decisions(case, expanded, kb)) == {"approved"}
    # each set one change short of an option, decided once (options that share all but one group share these)
    smaller = {frozenset(json.dumps(c.to_dict(), sort_keys=True) for c in combo[:i] + combo[i + 1 :]): combo[:i] + combo[i + 1 :] for combo in expanded for i in range(len(combo))}
    assert "approved" not in decisions(case, list(smaller.values()), kb)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(FACTS)) for p in EXAMPLES])
def test_options_of_every_example_are_sound_and_minimal(path, kb):
    case = load_case(path, kb)
    result = check_sound_and_minimal(case, kb)
    if case.expect.get("decision") == "approved":
        assert result.status == "approved" and result.options == ()


def random_case(rng: random.Random, kb) -> dict:
    v = kb.vocabulary
    indication = rng.choice(["cinca", "dira", "rheumatoid_arthritis", "rheumatoid_arthritis", "stills_disease", "sjia", "osteoarthritis"])
    drugs = list(v.keys["drug"])
    case = {
        "indication": indication,
        "plan": rng.choice(["employer_group", "individual_family"]),
        "request": rng.choice(["initial", "continuation"]),
        "prescriber_specialties": rng.sample(list(v.keys["specialty"]), rng.randint(0, 2)),
        "medication_history": [
            {"drug": rng.choice(drugs), "outcome": rng.choice(list(v.keys["outcome"])), "months": rng.choice([1, 2, 3, 6]), "sample": rng.random() < 0.15} for _ in range(rng.randint(0, 3))
        ],
        "current_medications": rng.sample(drugs, rng.randint(0, 1)),
        "beneficial_response": rng.random() < 0.5,
    }
    if indication == "dira" and rng.random() < 0.5:
        case["genetic_tests"] = [{"gene": "IL1RN", "result": rng.choice(["negative", "pending", "mutation_confirmed"])}]
    return case


@pytest.mark.slow
def test_options_of_generated_cases_are_sound_and_minimal(kb):
    rng = random.Random(20240601)
    statuses = set()
    # 30 seeded cases, every option of each checked through its first, last and 6 sampled
    # expansions (with 20 a case, the test decided 29,000 changed cases in 30 s; with 8, 17 s)
    for _ in range(30):
        statuses.add(check_sound_and_minimal(load_case(random_case(rng, kb), kb), kb, sample=8).status)
    assert statuses == {"approved", "options", "no_option"}


def brute_force(case, kb, max_size):
    """Minimal approving sets found by deciding every subset of the abducible items."""
    changes = item_changes(case, kb)
    items = list(changes)
    subsets = [combo for size in range(max_size + 1) for combo in itertools.combinations(items, size)]
    verdicts = decisions(case, [[changes[i] for i in combo] for combo in subsets], kb)
    approving = [frozenset(c) for c, d in zip(subsets, verdicts) if d == "approved"]
    return {s for s in approving if not any(t < s for t in approving)}, len(items)


def as_items(result):
    found = set()
    for option in result.options:
        for combo in itertools.product(*(r.items for r in option.requirements)):
            found.add(frozenset(combo))
    return found


@pytest.mark.parametrize(
    "case",
    [
        {"indication": "dira"},
        {"indication": "dira", "genetic_tests": [{"gene": "IL1RN", "result": "negative"}]},
        {"indication": "nomid"},
        {"indication": "stills_disease", "request": "continuation"},
        {"indication": "sjia", "current_medications": ["enbrel", "humira", "methotrexate"]},
        {"indication": "cinca", "request": "continuation", "prescriber_specialties": ["autoinflammatory"], "current_medications": ["xeljanz"]},
    ],
)
def test_complete_against_brute_force_on_small_cases(case, kb):
    loaded = load_case(case, kb)
    expected, n_items = brute_force(loaded, kb, max_size=99)
    assert n_items <= 12
    assert as_items(missing(loaded, kb)) == expected
    assert expected


@pytest.mark.slow
def test_complete_against_brute_force_up_to_two_additions_for_rheumatoid_arthritis(kb):
    case = load_case(ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 1}, {"drug": "cimzia", "outcome": "contraindication"}]), kb)
    expected, n_items = brute_force(case, kb, max_size=2)
    assert n_items > 50
    found = {s for s in as_items(missing(case, kb)) if len(s) <= 2}
    assert found == expected


def test_one_missing_product_reads_as_one_option_with_an_any_of_group(kb):
    case = ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 4}, {"drug": "humira", "outcome": "failure"}])
    result = missing(case, kb)
    assert result.status == "options" and len(result.options) == 1
    (option,) = result.options
    assert option.size == 1
    assert option.text == "documentation of failure, intolerance or contraindication to one of: Actemra SC, Cimzia, Enbrel, Rinvoq, Xeljanz/XR"
    drugs = {c.value["drug"] for c in option.requirements[0].alternatives}
    assert drugs == {"actemra_sc", "cimzia", "enbrel", "rinvoq", "xeljanz", "xeljanz_xr"}
    assert option.count() == 18
    from kineret_asp import what_if

    assert what_if(case, option.first(), kb).after.decision == "approved"


def test_two_adalimumab_brands_never_make_an_option_on_their_own(kb):
    case = ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 4}])
    result = missing(case, kb)
    assert result.status == "options"
    for combo in result.expanded():
        brands = [c.value["drug"] for c in combo if c.path == "medication_history" and c.value["drug"] in ADALIMUMAB]
        assert len(brands) <= 1
    assert all(o.size == 2 for o in result.options)


def test_samples_never_count_in_an_option(kb):
    history = [
        {"drug": "methotrexate", "outcome": "failure", "months": 4},
        {"drug": "cimzia", "outcome": "failure"},
        {"drug": "enbrel", "outcome": "failure", "sample": True},
    ]
    result = missing(ra_case(history), kb)
    assert result.status == "options"
    assert all(o.size == 1 for o in result.options)
    expanded = result.expanded()
    assert [{"op": "add", "path": "medication_history", "value": {"drug": "enbrel", "outcome": "failure"}}] in [[c.to_dict() for c in combo] for combo in expanded]
    longer = ra_case([{"drug": "methotrexate", "outcome": "failure", "months": 1, "sample": True}, {"drug": "cimzia", "outcome": "failure"}, {"drug": "enbrel", "outcome": "failure"}])
    paths = {c.path for combo in missing(longer, kb).expanded() for c in combo}
    assert "medication_history[0].months" not in paths


def test_a_contraindication_is_never_offered_as_a_trial(kb):
    case = ra_case([], plan="employer_group")
    case["medication_history"] = [{"drug": "cimzia", "outcome": "contraindication"}, {"drug": "enbrel", "outcome": "contraindication"}]
    result = missing(case, kb)
    for combo in result.expanded():
        if len(combo) == 1:
            (change,) = combo
            assert change.value["outcome"] != "contraindication" or change.value["drug"] in {"methotrexate", "leflunomide", "hydroxychloroquine", "sulfasalazine"}
            assert not (change.value["outcome"] == "contraindication" and change.value["drug"] not in {"methotrexate"})


@pytest.mark.slow
def test_indication_and_plan_are_never_changed(kb):
    for path in EXAMPLES:
        case = load_case(path, kb)
        for combo in missing(case, kb).expanded():
            assert not {c.path for c in combo} & {"indication", "request"}
            assert "plan" not in {c.path for c in combo} or case.plan is None, "only a missing plan type is asked for"


@pytest.mark.parametrize("name, blocker", [("not_covered/osteoarthritis.json", "NC.5"), ("not_covered/other.json", "NC.other"), ("other_policy/covid_19.json", "OV.covid_19")])
def test_no_option_says_so_and_cites_the_reason(name, blocker, kb):
    result = missing(FACTS / name, kb)
    assert result.status == "no_option" and result.options == ()
    assert [b.id for b in result.blockers] == [blocker]
    assert result.blockers[0].text


@pytest.mark.slow
def test_the_abducible_vocabulary_lives_in_the_kb(tmp_path, kb):
    copy = copy_kb(tmp_path)
    path = copy.parents[2] / "framework" / "library" / "reauthorization.lp"  # the library the version includes
    text = path.read_text()
    rule = "abducible(beneficial_response) :- reauthorization_criteria(_, _, B), applies(B)."
    assert text.count(rule) == 1
    path.write_text(text.replace(rule, ""))
    case = FACTS / "continuation" / "ra_no_response.json"
    assert missing(case, KB_DIR).status == "options"
    assert missing(case, copy).status == "no_option"


@pytest.mark.slow
def test_missing_command_text_and_json():
    runner = CliRunner()
    out = runner.invoke(main, ["missing", str(FACTS / "dira" / "no_specialist.json")]).output
    assert "1 option;" in out and "one of: a rheumatologist, a geneticist, a dermatologist" in out
    data = json.loads(runner.invoke(main, ["missing", str(FACTS / "ra" / "failure_without_months.json"), "--format", "json", "--expand"]).output)
    assert data["status"] == "options" and data["decision"] == "criteria_not_met"
    assert [o["size"] for o in data["options"]] == sorted(o["size"] for o in data["options"])
    assert len(data["expanded"]) == sum(o["count"] for o in data["options"])
    out = runner.invoke(main, ["missing", str(FACTS / "other_policy" / "covid_19.json")]).output
    assert "No documentation can make this case approved" in out and "OV.covid_19" in out
