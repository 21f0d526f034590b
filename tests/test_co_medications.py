"""A generated run of realistic cases with co-medications: NC.2 only for biologics and tsDMARDs, never an approval over an unknown drug.

Cases come from bench/cases.py (seeded, spread over every path of the
policy); to each, co-medications are added as patients take them: drugs the
KB classes as neither biologic nor tsDMARD (by any of their names, as
records write them), now and then a biologic, and a few names nobody knows.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from kineret_asp import evaluate_many, load_kb

from .conftest import KB_DIR

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from cases import random_case  # noqa: E402

UNKNOWN = ["zorbitrex", "Vexilumab 40 mg pen", "study drug XR-17"]


def categories(kb) -> dict[str, str]:
    """Every drug key with its category, from the KB's own answer (category_of/2 is static)."""
    return {str(d): str(c) for d, c in kb.facts("category_of", 2)}


def realistic_cases(n: int, seed: int) -> list[dict]:
    kb = load_kb(KB_DIR)
    category = categories(kb)
    others = sorted(k for k, c in category.items() if c == "other")
    named = {k: [str(n) for (v, key, n) in kb.facts("key_name", 3) if str(v) == "drug" and str(key) == k] for k in others}
    biologics = sorted(k for k, c in category.items() if c != "other" and k != "kineret")
    rng = random.Random(seed)
    out = []
    for i in range(n):
        case = random_case(rng, i)
        current = list(case.get("current_medications", []))
        for _ in range(rng.choice([0, 1, 2, 2, 3, 4])):
            key = rng.choice(others)
            current.append(rng.choice([key, *named[key]]) if named[key] and rng.random() < 0.5 else key)
        if rng.random() < 0.05:
            current.append(rng.choice(UNKNOWN))
        if rng.random() < 0.05:
            current.append(rng.choice(biologics))
        if current:
            case["current_medications"] = list(dict.fromkeys(current))
        out.append(case)
    return out


def check(n: int, seed: int) -> None:
    kb = load_kb(KB_DIR)
    category = categories(kb)
    cases = realistic_cases(n, seed)
    decisions = evaluate_many(cases, kb)
    seen = {"approved": 0, "undetermined": 0, "nc2": 0}
    for case, d in zip(cases, decisions):
        nc2 = [r for r in d.reasons if r.id == "NC.2"]
        if nc2:
            seen["nc2"] += 1
            drugs = nc2[0].details.get("current_medications", [])
            assert drugs and all(category.get(str(x)) in ("biologic", "targeted_synthetic_dmard") for x in drugs), (case, drugs)
        unknown = [u for u in d.undetermined if u.id == "NC.2"]
        if d.decision == "approved":
            seen["approved"] += 1
            assert not d.undetermined, case
        if unknown:
            seen["undetermined"] += 1
            assert d.decision != "approved" and d.route != "auto_approve"
    assert all(seen.values()), seen  # the run reached every kind of answer it checks


def test_a_generated_run_with_co_medications_cites_nc2_only_for_biologics_and_never_approves_an_unknown_drug():
    check(2_000, seed=18)


@pytest.mark.slow  # 10,000 cases (about 10 s); the fast lane runs 2,000 of another seed
def test_ten_thousand_generated_cases_with_co_medications():
    check(10_000, seed=2024)
