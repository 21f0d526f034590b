"""CDS Hooks requests made from the example Bundles, for the tests and the hooks bench alike.

The draft order goes in the context, the other resources are prefetched
under the KB's own prefetch keys (null for a key with no data), and a
Coverage of the patient is added when the Bundle has none.
"""

from __future__ import annotations

import copy
from pathlib import Path

from kineret_asp import load_kb
from kineret_asp.interop.crd import prefetch_templates

KB_DIR = Path(__file__).resolve().parents[1] / "kb"
EXAMPLES = ("ra_approved", "stills_adult_onset", "caps_muckle_wells", "dira_il1rn_confirmed", "sjia_concurrent_etanercept", "covid_19")
KEY_OF = {
    "Condition": "conditions",
    "Coverage": "coverage",
    "PractitionerRole": "practitioner_role",
    "MedicationStatement": "medication_statements",
    "Medication": "medication_statements",
    "MedicationRequest": "medication_requests",
    "Observation": "genetic_variants",
}


def coverage_of(patient: str = "p1", cid: str = "cov-test", status: str = "active") -> dict:
    return {"resourceType": "Coverage", "id": cid, "status": status, "beneficiary": {"reference": f"Patient/{patient}"}, "payor": [{"display": "the plan"}]}


def hook_request(bundle: dict, hook: str = "order-sign", patient: str = "p1", coverage: bool = True) -> dict:
    """A CDS Hooks request: the draft order in the context, the rest prefetched under the KB's keys."""
    kb = load_kb(KB_DIR)
    resources = [copy.deepcopy(e["resource"]) for e in bundle["entry"]]
    drafts = [r for r in resources if r["resourceType"] == "MedicationRequest" and r.get("status") == "draft"]
    prefetch: dict = {key: None for key in prefetch_templates(kb)}
    if coverage and not any(r["resourceType"] == "Coverage" for r in resources):
        resources.append(coverage_of(patient))
    for r in resources:
        if r in drafts:
            continue
        if r["resourceType"] == "Patient":
            prefetch["patient"] = r
            continue
        key = KEY_OF.get(r["resourceType"], "conditions")
        if prefetch.get(key) is None:
            prefetch[key] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
        prefetch[key]["entry"].append({"resource": r})
    context = {"userId": "PractitionerRole/prescriber", "patientId": patient, "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": d} for d in drafts]}}
    if hook == "order-select":
        context["selections"] = [f"MedicationRequest/{d['id']}" for d in drafts]
    return {"hook": hook, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "context": context, "prefetch": prefetch}
