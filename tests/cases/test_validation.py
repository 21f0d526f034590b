"""The reading of a name that is not a key: a typo of a key is refused with the key suggested, another name passes."""

from __future__ import annotations

import random

from kineret_asp import load_kb
from kineret_asp.cases.validation import edit_distance, near_key

from ..conftest import KB_DIR


def levenshtein(a: str, b: str) -> int:
    """The textbook distance, every cell computed."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def test_the_banded_distance_is_the_distance_up_to_its_limit():
    rng = random.Random(7)
    for _ in range(20_000):
        a = "".join(rng.choice("abcd") for _ in range(rng.randint(0, 9)))
        b = "".join(rng.choice("abcd") for _ in range(rng.randint(0, 9)))
        d = levenshtein(a, b)
        for limit in (0, 1, 2, 3):
            assert edit_distance(a, b, limit) == (d if d <= limit else limit + 1), (a, b, limit)


def test_a_typo_of_a_drug_is_near_its_key_and_another_drug_is_not():
    drugs = {key: key for key in load_kb(KB_DIR).vocabulary.keys["drug"]}
    some = sorted(drugs)[:3]
    for key in some:
        typo = key[:-1] + ("x" if key[-1] != "x" else "y")
        assert near_key(typo, drugs) == key
        assert near_key(key.upper(), drugs) == key  # case and punctuation are not compared
    assert near_key("zorbitrexamab", drugs) is None
