"""The resident engine answers like the chunk engine, without grounding per case."""

from __future__ import annotations

import sys

import pytest

from kineret_asp import load_case, load_kb
from kineret_asp.engine.chunked import ChunkEngine
from kineret_asp.engine.warm import SIZE_CLASSES, ResidentEngine

from ..conftest import KB_DIR, ROOT

sys.path.insert(0, str(ROOT / "bench"))
import cases as generator  # noqa: E402


def same(a, b) -> bool:
    norm = lambda o: {k: sorted(map(repr, v)) for k, v in o.items()}  # noqa: E731
    return norm(a) == norm(b)


def engines():
    kb = load_kb(KB_DIR)
    chunk = ChunkEngine(kb)
    return kb, chunk, ResidentEngine(kb, chunk)


@pytest.mark.slow
def test_typical_cases_are_answered_without_falling_back():
    kb, chunk, resident = engines()
    cases = [load_case(c, kb) for c in generator.generate(600, seed=42)]
    expected = chunk.run([c.atoms() for c in cases])
    for case, want in zip(cases, expected):
        assert same(resident.run_one(case.atoms()), want)
    assert resident.fallbacks == resident.first_seen  # only a value met for the first time goes to the chunk engine
    assert resident.first_seen < len(cases) // 10 and resident.rebuilds < resident.first_seen
    assert set(resident._sized) <= set(SIZE_CLASSES)
    before = resident.fallbacks
    for case, want in zip(cases, expected):  # every value met before: the same cases again, answered warm
        assert same(resident.run_one(case.atoms()), want)
    assert resident.fallbacks == before


def test_a_case_larger_than_every_size_class_falls_back_to_the_chunk_engine():
    kb, chunk, resident = engines()
    history = [{"drug": "enbrel", "outcome": "tried"}] * (max(SIZE_CLASSES) + 1)
    case = load_case(
        {
            "indication": "rheumatoid_arthritis",
            "plan": "employer_group",
            "prescriber_specialties": ["rheumatology"],
            "medication_history": history + [{"drug": "cimzia", "outcome": "failure"}, {"drug": "enbrel", "outcome": "failure"}],
        },
        kb,
    )
    answer = resident.run_one(case.atoms())
    assert resident.fallbacks == 1
    assert same(answer, chunk.run([case.atoms()])[0]) and answer["decision"] == [("approved",)]


@pytest.mark.slow
def test_new_months_and_genes_widen_the_domains():
    kb, chunk, resident = engines()
    odd = load_case(
        {
            "indication": "rheumatoid_arthritis",
            "plan": "employer_group",
            "prescriber_specialties": ["rheumatology"],
            "medication_history": [{"drug": "leflunomide", "outcome": "failure", "months": 999}, {"drug": "cimzia", "outcome": "failure"}, {"drug": "rinvoq", "outcome": "failure"}],
        },
        kb,
    )
    gene = load_case({"indication": "dira", "prescriber_specialties": ["genetics"], "genetic_tests": [{"gene": "TNFRSF1A", "result": "mutation_confirmed"}]}, kb)
    for case in (odd, gene, odd, gene):  # met once: decided by the chunk engine; met again: declared
        assert same(resident.run_one(case.atoms()), chunk.run([case.atoms()])[0])
    assert resident.rebuilds == 1 and resident.fallbacks == resident.first_seen == 2  # one rebuild declares both
    extra = {v for values in resident.extra.values() for v in values}
    assert 999 in extra and "TNFRSF1A" in extra


def test_nearby_new_months_widen_the_domain_once():
    kb, chunk, resident = engines()
    for months in (37, 40, 43, 47):  # one block of 12 past the months declared at first (0..36)
        case = load_case(
            {
                "indication": "rheumatoid_arthritis",
                "plan": "employer_group",
                "prescriber_specialties": ["rheumatology"],
                "medication_history": [{"drug": "methotrexate", "outcome": "failure", "months": months}, {"drug": "cimzia", "outcome": "failure"}, {"drug": "rinvoq", "outcome": "failure"}],
            },
            kb,
        )
        assert same(resident.run_one(case.atoms()), chunk.run([case.atoms()])[0])
    assert resident.rebuilds == 1 and resident.fallbacks == resident.first_seen == 1  # 37 met first; 40 brings its block back


def test_a_value_met_once_is_not_declared_and_met_again_is_declared_with_every_value_waiting():
    """A rebuild grounds a size class again: a value met once (free text, a rare drug) is decided by the chunk engine."""
    kb, chunk, resident = engines()

    def ra(*drugs: str):
        return load_case(
            {
                "indication": "rheumatoid_arthritis",
                "plan": "employer_group",
                "prescriber_specialties": ["rheumatology"],
                "medication_history": [{"drug": drug, "outcome": "failure"} for drug in drugs],
            },
            kb,
        )

    first, second = ra("methotrexate", "cimzia", "rinvoq"), ra("zorbitrex")  # drugs of the KB, a name it does not know
    for case in (first, second):
        assert same(resident.run_one(case.atoms()), chunk.run([case.atoms()])[0])
    declared = {str(v) for values in resident.extra.values() for v in values}
    assert resident.rebuilds == 0 and resident.first_seen == 2 and "cimzia" not in declared and "zorbitrex" not in declared
    assert same(resident.run_one(first.atoms()), chunk.run([first.atoms()])[0])  # cimzia again: both declared at once
    declared = {str(v) for values in resident.extra.values() for v in values}
    assert resident.rebuilds == 1 and {"cimzia", "zorbitrex"} <= declared and resident.pending == {}
    assert same(resident.run_one(second.atoms()), chunk.run([second.atoms()])[0])
    assert resident.rebuilds == 1 and resident.fallbacks == 2


def test_values_waiting_to_come_back_are_bounded(monkeypatch):
    import kineret_asp.engine.warm as warm

    monkeypatch.setattr(warm, "MAX_PENDING", 5)
    kb, chunk, resident = engines()
    for n in range(12):
        case = load_case({"indication": "dira", "prescriber_specialties": ["genetics"], "genetic_tests": [{"gene": f"GENE{n}", "result": "mutation_confirmed"}]}, kb)
        assert same(resident.run_one(case.atoms()), chunk.run([case.atoms()])[0])
        assert sum(map(len, resident.pending.values())) <= 5
    assert resident.first_seen == 12 and resident.rebuilds == 0


def test_the_drugs_are_declared_as_cases_bring_them_each_with_the_keys_like_it():
    """A large vocabulary is declared lazily: every declared key makes every solve walk its atoms."""
    kb, chunk, resident = engines()
    first = load_case({"indication": "sjia", "prescriber_specialties": ["rheumatology"], "current_medications": ["prednisone"]}, kb)
    for _ in range(2):  # met once, then again: declared
        assert same(resident.run_one(first.atoms()), chunk.run([first.atoms()])[0])
    declared = {str(v) for v in resident.extra[("case_current_medication", 0)]}
    assert "prednisone" in declared and "enbrel" not in declared and len(declared) < len(kb.vocabulary.keys["drug"]) // 4
    second = load_case({"indication": "sjia", "prescriber_specialties": ["rheumatology"], "current_medications": ["enbrel", "zorbitrex"]}, kb)
    for _ in range(2):
        answer = resident.run_one(second.atoms())
        assert same(answer, chunk.run([second.atoms()])[0]) and answer["decision"] == [("not_covered",)]
    assert "enbrel" in {str(v) for v in resident.extra[("case_current_medication", 0)]} and resident.fallbacks == resident.first_seen == 2
