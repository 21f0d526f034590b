"""Every example case under facts/ decides as its expect block says."""

from __future__ import annotations

import pytest

from kineret_asp import load_case
from kineret_asp.author.example_cases import compare, discover

from .conftest import FACTS, decide

CASES = discover([FACTS])


@pytest.mark.slow
def test_there_are_examples_for_every_path():
    assert len(CASES) >= 40
    indications = {load_case(p).indication for p in CASES}
    for key in ["cinca", "fcas", "muckle_wells", "nomid", "dira", "rheumatoid_arthritis", "stills_disease", "sjia", "covid_19", "other"]:
        assert key in indications
    decisions = {load_case(p).expect.get("decision") for p in CASES} - {None}
    assert decisions == {"approved", "criteria_not_met", "not_covered", "other_policy", "undetermined"}
    reasons = {r for p in CASES for r in load_case(p).expect.get("reasons", [])}
    assert {"NC.1", "NC.2", "NC.3", "NC.4", "NC.5", "NC.6", "NC.other", "OV.covid_19"} <= reasons
    requests = {(load_case(p).request, load_case(p).expect.get("decision")) for p in CASES}
    assert ("continuation", "approved") in requests and ("continuation", "criteria_not_met") in requests


@pytest.mark.parametrize("path", CASES, ids=[str(p.relative_to(FACTS)) for p in CASES])
def test_example_case(path):
    case = load_case(path)
    assert case.expect, f"{path} has no expect block"
    decision = decide(case)
    assert compare(dict(case.expect), decision) == {}


def test_lp_case_file_decides_like_its_json_twin():
    lp = load_case(FACTS / "lp" / "ra_approved_facts.lp")
    assert lp.indication == "rheumatoid_arthritis" and lp.plan == "individual_family"
    assert [e.drug for e in lp.medication_history] == ["hydroxychloroquine", "enbrel", "rinvoq"]
    assert decide(lp).decision == "approved"
    as_json = dict(lp.to_dict())
    assert decide(as_json).to_dict() == decide(lp).to_dict()
