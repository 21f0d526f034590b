"""A small hand-written evaluator of IP0243 in plain Python: the speed limit.

It reads the same JSON lines and writes, per line, the decision, the
authorization months, the unmet criterion ids, the reason ids and the route,
with no solver and no validation beyond what the decision needs. The
benchmark uses it as the fastest this problem can be decided in Python, and
compares its decisions with the KB's on every case: two independent
readings of the policy that must agree.
"""

from __future__ import annotations

import json
from typing import Iterable, Iterator

CSDMARDS = {"methotrexate", "leflunomide", "hydroxychloroquine", "sulfasalazine"}
ADALIMUMAB = {"humira", "hyrimoz", "adalimumab_adaz", "cyltezo", "adalimumab_adbm", "simlandi", "adalimumab_ryvk"}
BIOLOGICS = ADALIMUMAB | {
    "cimzia",
    "enbrel",
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
    "rinvoq",
    "xeljanz",
    "xeljanz_oral_solution",
    "xeljanz_xr",
    "otezla",
    "zeposia",
    "sotyktu",
    "actemra_iv",
    "actemra_sc",
    "kevzara",
    "kineret",
    "orencia_iv",
    "orencia_sc",
    "rituximab",
}
BIOSIMILARS = {
    "amjevita",
    "adalimumab_atto",
    "hadlima",
    "adalimumab_bwwd",
    "yusimry",
    "adalimumab_aqvh",
    "hulio",
    "adalimumab_fkjp",
    "idacio",
    "adalimumab_aacf",
    "yuflyma",
    "adalimumab_aaty",
    "abrilada",
    "adalimumab_afzb",
    "remicade",
    "inflectra",
    "renflexis",
    "avsola",
    "rituxan",
    "truxima",
    "rituximab_abbs",
    "ruxience",
    "rituximab_pvvr",
    "riabni",
    "rituximab_arrx",
    "tofidence",
    "tyenne_iv",
    "tyenne_sc",
    "avtozma_iv",
    "avtozma_sc",
}
BIOLOGICS |= BIOSIMILARS
NO_RA_TICK = {"cosentyx", "siliq", "taltz", "ilumya", "skyrizi_iv", "skyrizi_sc", "tremfya", "stelara_sc", "stelara_iv", "otezla", "zeposia", "sotyktu", "xeljanz_oral_solution"}
PRODUCT = {d: "adalimumab" for d in ADALIMUMAB} | {"xeljanz": "xeljanz_family", "xeljanz_xr": "xeljanz_family"}
ROWS = [("3.C.A", "actemra_sc"), ("3.C.B", "adalimumab"), ("3.C.C", "cimzia"), ("3.C.D", "enbrel"), ("3.C.E", "rinvoq"), ("3.C.F", "xeljanz_family")]
CAPS = {"cinca": "1.A.i", "fcas": "1.A.ii", "muckle_wells": "1.A.iii", "nomid": "1.A.iv"}
ROOT = {k: "1" for k in CAPS} | {"caps": "1", "dira": "2", "rheumatoid_arthritis": "3", "stills_disease": "4", "sjia": "5"}
EXCLUDED = {
    "ankylosing_spondylitis": "NC.1",
    "inflammatory_bowel_disease": "NC.3",
    "crohns_disease": "NC.3",
    "ulcerative_colitis": "NC.3",
    "lupus_arthritis": "NC.4",
    "osteoarthritis": "NC.5",
    "reactive_arthritis": "NC.6",
}


def decide(case: dict) -> dict:
    """decision, authorization_months, unmet (tree order), reasons, route."""
    indication = case["indication"]
    if indication == "covid_19":
        return {"decision": "other_policy", "authorization_months": None, "unmet": [], "reasons": ["OV.covid_19"], "route": "other_policy"}
    specialties = set(case.get("prescriber_specialties") or [])
    history = [e for e in case.get("medication_history") or [] if not e.get("sample")]
    reasons = []
    if indication in EXCLUDED:
        reasons.append(EXCLUDED[indication])
    elif indication not in ROOT:
        reasons.append("NC.other")
    if any(d in BIOLOGICS and d != "kineret" for d in case.get("current_medications") or []):
        reasons.append("NC.2")
    tree: list[tuple[str, bool]] = []
    root = ROOT.get(indication)
    if root == "1":
        alts = [(cid, CAPS.get(indication) == cid) for cid in ("1.A.i", "1.A.ii", "1.A.iii", "1.A.iv")]
        a = any(m for _, m in alts)
        b = bool(specialties & {"rheumatology", "genetics", "dermatology"})
        tree = [("1", a and b), ("1.A", a), *alts, ("1.B", b)]
    elif root == "2":
        a = any(t.get("gene") == "IL1RN" and t.get("result") == "mutation_confirmed" for t in case.get("genetic_tests") or [])
        b = bool(specialties & {"rheumatology", "genetics", "dermatology", "autoinflammatory"})
        tree = [("2", a and b), ("2.A", a), ("2.B", b)]
    elif root == "3":
        a1 = any(e["drug"] in CSDMARDS and e["outcome"] == "failure" and (e.get("months") or 0) >= 3 and e.get("months") is not None for e in history)
        a1 = a1 or CSDMARDS <= {e["drug"] for e in history if e["outcome"] in ("contraindication", "intolerance")}
        continuation = case.get("request") == "continuation"
        a2 = any(
            e["drug"] in BIOLOGICS
            and e["outcome"] in ("failure", "intolerance", "tried")
            and (e.get("for") == "rheumatoid_arthritis" or (e.get("for") is None and e["drug"] not in NO_RA_TICK))
            and not (continuation and e["drug"] == "kineret")
            for e in history
        )
        b = "rheumatology" in specialties
        documented = {PRODUCT.get(e["drug"], e["drug"]) for e in history if e["outcome"] in ("failure", "contraindication", "intolerance")}
        plan = case.get("plan")
        rows = [(cid, product in documented) for cid, product in ROWS] if plan else []
        c = sum(m for _, m in rows) >= 2
        tree = [("3", (a1 or a2) and b and c), ("3.A", a1 or a2), ("3.A.i", a1), ("3.A.ii", a2), ("3.B", b), ("3.C", c), *rows]
    elif root in ("4", "5"):
        tree = [(root, "rheumatology" in specialties)]
    initial = bool(tree) and tree[0][1]
    if tree and case.get("request") == "continuation":
        response = case.get("beneficial_response") is True
        tree += [("R", initial and response), ("R.A", initial), ("R.B", response)]
        approved = initial and response
    else:
        approved = initial
    if reasons:
        decision, route, months = "not_covered", "clinical_review", None
    elif approved:
        decision, route, months = "approved", "auto_approve", 12
    else:
        decision, route, months = "criteria_not_met", "clinical_review", None
    return {"decision": decision, "authorization_months": months, "unmet": [cid for cid, m in tree if not m], "reasons": sorted(reasons, key=_reason_key), "route": route}


def _reason_key(rid: str) -> tuple:
    head, _, tail = rid.partition(".")
    return (head, not tail.isdigit(), int(tail) if tail.isdigit() else 0, tail)


def run_lines(lines: Iterable[bytes]) -> Iterator[str]:
    for n, line in enumerate(lines, start=1):
        try:
            case = json.loads(line)
            record: dict = {"line": n, "id": case.get("id"), **decide(case)}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            record = {"line": n, "id": None, "error": str(exc)}
        yield json.dumps(record)
