"""Seeded random valid cases, spread over every indication and path of the policy.

    python bench/cases.py N OUT.jsonl [--seed S]

Each case is built to land near a decision boundary: documentation is drawn
so that covered indications are approved about half the time, with samples,
short trials, missing plans, concurrent drugs and continuations mixed in.

Histories have the length real requests have: a rheumatoid-arthritis
request documents two to five earlier drugs (one or two csDMARDs, one to
three biologics or tsDMARDs, sometimes a corticosteroid or an NSAID), and
nine requests in ten for other indications document some (2.5 entries a
case on average); half of the cases also list current co-medications
(corticosteroids, NSAIDs, folic acid, colchicine), and one in eight a
biologic, tsDMARD, csDMARD or Kineret. :func:`history_stats` says what a
set of cases holds (the benches print it).
"""

from __future__ import annotations

import argparse
import json
import random
from typing import Iterable, Iterator

INDICATIONS = [
    "caps",
    "cinca",
    "fcas",
    "muckle_wells",
    "nomid",
    "dira",
    "rheumatoid_arthritis",
    "rheumatoid_arthritis",
    "rheumatoid_arthritis",
    "stills_disease",
    "sjia",
    "ankylosing_spondylitis",
    "inflammatory_bowel_disease",
    "crohns_disease",
    "ulcerative_colitis",
    "lupus_arthritis",
    "osteoarthritis",
    "reactive_arthritis",
    "covid_19",
    "other",
]
SPECIALTIES = ["rheumatology", "genetics", "dermatology", "autoinflammatory"]
CSDMARDS = ["methotrexate", "leflunomide", "hydroxychloroquine", "sulfasalazine"]
PREFERRED = ["actemra_sc", "humira", "hyrimoz", "adalimumab_adaz", "cyltezo", "adalimumab_adbm", "simlandi", "adalimumab_ryvk", "cimzia", "enbrel", "rinvoq", "xeljanz", "xeljanz_xr"]
OTHER_BIOLOGICS = [
    "actemra_iv",
    "xeljanz_oral_solution",
    "infliximab",
    "simponi",
    "simponi_aria",
    "cosentyx",
    "siliq",
    "taltz",
    "ilumya",
    "skyrizi_iv",
    "skyrizi_sc",
    "tremfya",
    "stelara_sc",
    "stelara_iv",
    "olumiant",
    "otezla",
    "zeposia",
    "sotyktu",
    "kevzara",
    "orencia_iv",
    "orencia_sc",
    "rituximab",
]
OUTCOMES = ["failure", "intolerance", "contraindication", "tried"]
SUPPORTIVE = ["prednisone", "prednisolone", "methylprednisolone", "ibuprofen", "naproxen", "celecoxib"]
CO_MEDICATIONS = SUPPORTIVE + ["folic_acid", "colchicine"]


def random_case(rng: random.Random, n: int) -> dict:
    indication = rng.choice(INDICATIONS)
    case: dict = {"id": f"case-{n}", "indication": indication}
    if rng.random() < 0.85:
        case["plan"] = rng.choice(["employer_group", "individual_family"])
    if rng.random() < 0.3:
        case["request"] = "continuation"
        case["beneficial_response"] = rng.random() < 0.7
    wanted = rng.random() < 0.6
    if wanted:
        case["prescriber_specialties"] = [rng.choice(["rheumatology"] * 3 + SPECIALTIES)]
    else:
        case["prescriber_specialties"] = rng.sample(SPECIALTIES, rng.randint(0, 2))
    if indication == "dira" or rng.random() < 0.05:
        case["genetic_tests"] = [{"gene": rng.choice(["IL1RN", "IL1RN", "NLRP3"]), "result": rng.choice(["mutation_confirmed", "mutation_confirmed", "negative", "pending"])}]
    history = []
    ra = indication == "rheumatoid_arthritis"
    if ra or rng.random() < 0.9:  # most requests document what was tried before: RA requests two to five entries
        for _ in range(rng.choice([1, 1, 2]) if ra else rng.choice([0, 0, 1, 1, 2])):  # csDMARDs (methotrexate first)
            entry = {"drug": rng.choice(["methotrexate"] * 3 + CSDMARDS), "outcome": rng.choice(["failure", "failure", "intolerance", "contraindication"])}
            if rng.random() < 0.85:
                entry["months"] = rng.choice([1, 2, 3, 3, 4, 6, 12, 24])
            history.append(entry)
        for _ in range(rng.choice([1, 1, 2, 2, 3]) if ra else rng.choice([0, 1, 1, 2, 2])):  # biologics and tsDMARDs
            entry = {"drug": rng.choice(PREFERRED + OTHER_BIOLOGICS[:4]), "outcome": rng.choice(OUTCOMES)}
            if rng.random() < 0.5:
                entry["months"] = rng.randint(1, 24)
            if rng.random() < 0.08:
                entry["sample"] = True
            history.append(entry)
        for _ in range(rng.choice([0, 0, 1]) if ra else rng.choice([0, 1, 1])):  # a corticosteroid or an NSAID
            history.append({"drug": rng.choice(SUPPORTIVE), "outcome": rng.choice(["failure", "tried"])})
    if history:
        case["medication_history"] = history[:5]
    current = rng.sample(CO_MEDICATIONS, rng.choice([0, 0, 1, 1, 2]))  # what the patient takes beside: steroids, NSAIDs, folic acid
    if rng.random() < 0.12:
        current.append(rng.choice(PREFERRED + OTHER_BIOLOGICS + CSDMARDS + ["kineret"]))
    if current:
        case["current_medications"] = current
    return case


def history_stats(cases: Iterable[dict]) -> str:
    """What the cases hold: medication-history entries and current medications per case, on average."""
    n = entries = current = 0
    for case in cases:
        n += 1
        entries += len(case.get("medication_history", ()))
        current += len(case.get("current_medications", ()))
    return f"{entries / max(n, 1):.2f} medication-history entries and {current / max(n, 1):.2f} current medications a case"


def generate(n: int, seed: int = 20240601) -> Iterator[dict]:
    rng = random.Random(seed)
    for i in range(n):
        yield random_case(rng, i)


def write(n: int, path: str, seed: int = 20240601) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for case in generate(n, seed):
            f.write(json.dumps(case, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", type=int)
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()
    write(args.n, args.out, args.seed)
