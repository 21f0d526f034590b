"""Two FHIR validators for every resource the service emits: fhirclient (R4, 4.0.1) and fhir.resources (R4B)."""

from __future__ import annotations

import json
from typing import Any


def valid_r4(resource: dict) -> None:
    """Raises when ``resource`` is not valid FHIR R4 (fhirclient, strict) or R4B (fhir.resources)."""
    from fhir.resources.R4B import get_fhir_model_class
    from fhirclient.models.fhirelementfactory import FHIRElementFactory

    plain = json.loads(json.dumps(resource))  # numbers kept as sent come back as JSON numbers
    model = FHIRElementFactory.instantiate(plain["resourceType"], plain)
    assert model.as_json()["resourceType"] == plain["resourceType"]
    get_fhir_model_class(plain["resourceType"]).model_validate(plain)


def emitted(answer: Any) -> list[dict]:
    """The FHIR resources of an answer: a CDS response's actions, a Parameters, a Bundle, a resource."""
    if isinstance(answer, dict) and "systemActions" in answer:
        return [a["resource"] for a in answer["systemActions"]]
    if isinstance(answer, dict) and "resourceType" in answer:
        return [answer]
    return []
