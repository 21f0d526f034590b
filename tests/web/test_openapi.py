"""The OpenAPI document describes every body from the KB's JSON Schemas, and /docs needs no internet."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from kineret_asp import load_kb
from kineret_asp.server import create_app, schema_documents

from ..conftest import FACTS as FACTS_DIR
from ..conftest import KB_DIR

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(load_kb(KB_DIR)))


@pytest.fixture(scope="module")
def spec(client):
    return client.get("/openapi.json").json()


def test_every_posted_route_has_request_and_response_bodies(spec):
    for path in ("/evaluate", "/missing", "/what-if", "/questionnaire/next", "/batch", "/cds-services/{service}", "/Questionnaire/$next-question", "/Questionnaire/$questionnaire-package"):
        post = spec["paths"][path]["post"]
        assert post["requestBody"]["content"], path
        assert post["responses"]["200"]["content"], path


def test_the_reviewers_notes_routes_are_described_with_their_bodies(spec):
    notes = spec["paths"]["/decisions/{key}/notes"]
    assert notes["post"]["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ReviewNoteRequest"}
    assert notes["post"]["responses"]["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ReviewNote"}
    assert notes["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ReviewNotes"}
    assert {"404", "422"} <= notes["post"]["responses"].keys() and "404" in notes["get"]["responses"]
    one = spec["paths"]["/decisions/{key}/notes/{note}"]["get"]
    assert one["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ReviewNote"}
    assert spec["components"]["schemas"]["ReviewNote"]["properties"]["changes"]["items"] == {"$ref": "#/components/schemas/Change"}


def test_a_saved_note_is_what_its_schema_says(tmp_path):
    import jsonschema

    from kineret_asp import evaluate
    from kineret_asp.decision_log import DecisionLog, Entry

    url = str(tmp_path / "decisions.sqlite3")
    case = json.loads((FACTS_DIR / "ra" / "no_plan.json").read_text())
    record = DecisionLog(url).record(Entry("evaluate", case, evaluate(case, KB_DIR).to_dict()), issue_pa=True)
    client = TestClient(create_app(load_kb(KB_DIR), db=url))
    spec = client.get("/openapi.json").json()
    schemas = {"components": spec["components"]}
    request = {"changes": [{"op": "set", "path": "plan", "value": "employer_group"}], "reviewer": "nurse.a"}
    jsonschema.validate(request, {**schemas, **spec["components"]["schemas"]["ReviewNoteRequest"]})
    note = client.post(f"/decisions/{record.pa_number}/notes", json=request)
    assert note.status_code == 201
    jsonschema.validate(note.json(), {**schemas, **spec["components"]["schemas"]["ReviewNote"]})
    jsonschema.validate(client.get(f"/decisions/{record.pa_number}/notes").json(), {**schemas, **spec["components"]["schemas"]["ReviewNotes"]})


def test_the_bodies_are_the_kbs_json_schemas(spec):
    schemas = spec["components"]["schemas"]
    documents = schema_documents(load_kb(KB_DIR))
    assert schemas["Case"]["properties"].keys() == documents["case"]["properties"].keys()
    assert schemas["Decision"]["required"] == documents["decision"]["required"]
    evaluate = spec["paths"]["/evaluate"]["post"]
    assert {"$ref": "#/components/schemas/Case"} in evaluate["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert evaluate["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Decision"}


def test_every_reference_resolves(spec):
    text = json.dumps(spec)
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text))
    assert refs and refs <= set(spec["components"]["schemas"])
    assert "#/$defs/" not in text


def test_both_error_shapes_are_described_as_sent(client, spec):
    """The JSON API's {"errors": [lines]} and the FHIR routes' OperationOutcome, each where it is sent."""
    bad = spec["paths"]["/evaluate"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    fhir = spec["paths"]["/cds-services/{service}"]["post"]["responses"]["400"]["content"]["application/fhir+json"]["schema"]
    assert bad == {"$ref": "#/components/schemas/Errors"} and fhir == {"$ref": "#/components/schemas/OperationOutcome"}
    import jsonschema

    errors = dict(spec["components"]["schemas"]["Errors"])
    jsonschema.validate(client.post("/evaluate", json={"indication": "nope"}).json(), errors)
    outcome = client.post("/cds-services/ip0243-order-sign", json={"hook": "x"}).json()
    jsonschema.validate(outcome, spec["components"]["schemas"]["OperationOutcome"])


def test_the_docs_page_loads_its_assets_from_this_server(client):
    """/docs works without the internet: every script and style it loads is served here."""
    page = client.get("/docs").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "cdn" not in page.lower()


def test_the_answers_are_what_their_schemas_say(client):
    """The service's /evaluate answer and /batch records validate against the decision and record schemas it publishes
    (which name the KB folder in every provenance: over HTTP, by the folder's name alone)."""
    import jsonschema

    documents = schema_documents(load_kb(KB_DIR))
    body = (FACTS_DIR / "stills" / "approved.json").read_bytes()
    answer = client.post("/evaluate", content=body).json()
    jsonschema.validate(answer, documents["decision"])
    assert answer["provenance"]["kb"] == KB_DIR.name
    records = client.post("/batch", content=body.replace(b"\n", b" ") + b"\n").text.splitlines()
    assert len(records) == 1
    record = json.loads(records[0])
    jsonschema.validate(record, documents["record"])
    assert record["provenance"]["kb"] == KB_DIR.name and str(KB_DIR) not in records[0]


def test_a_kb_outside_the_working_folder_is_named_by_its_folder_alone(kb_copy):
    """A KB the command line names by its absolute path (it lies outside the working folder) is named over HTTP
    by its folder's name: no answer carries a path of this machine."""
    tree = kb_copy.parents[2]
    client = TestClient(create_app(tree))
    answer = client.post("/evaluate", content=(FACTS_DIR / "stills" / "approved.json").read_bytes())
    assert answer.status_code == 200 and answer.json()["provenance"]["kb"] == tree.name == "kb"
    assert str(tree) not in answer.text
