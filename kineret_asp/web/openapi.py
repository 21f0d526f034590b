"""The server's OpenAPI document with its bodies, and ``/docs`` served from this machine.

Request and response bodies come from the KB's JSON Schemas (those
``kineret-asp schema`` prints: case, decision, change, record), each put
under ``components/schemas`` with its ``$defs`` beside it (refs rewritten),
so that a client generator sees the same contract the command line
validates. Errors are described as the server sends them: ``{"errors":
[lines]}`` on the JSON API, an OperationOutcome on the FHIR-facing routes
(CDS Hooks, the Questionnaire and its operations).

``/docs`` is Swagger UI from the ``swagger-ui-bundle`` package, its assets
served by this server (no request leaves for a CDN); without the package,
``/docs`` says so and links the OpenAPI document.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..knowledge.base import KnowledgeBase

NAMES = {"case": "Case", "decision": "Decision", "change": "Change", "record": "BatchRecord"}
FHIR = "application/fhir+json"
ERRORS = {
    "type": "object",
    "required": ["errors"],
    "properties": {"errors": {"type": "array", "items": {"type": "string"}, "description": "one line per problem: where, and what was expected"}},
    "additionalProperties": False,
}
OUTCOME = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "description": "A FHIR R4 OperationOutcome: each issue's expression says where, its diagnostics what",
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {"severity": {"type": "string"}, "code": {"type": "string"}, "diagnostics": {"type": "string"}, "expression": {"type": "array", "items": {"type": "string"}}},
            },
        },
    },
}
FHIR_RESOURCE = {"type": "object", "required": ["resourceType"], "properties": {"resourceType": {"type": "string"}}, "description": "A FHIR R4 resource (JSON)"}
HOOK_REQUEST = {
    "type": "object",
    "required": ["hook", "hookInstance", "context"],
    "description": "A CDS Hooks 2.0 request (Da Vinci CRD 2.2.1)",
    "properties": {
        "hook": {"type": "string"},
        "hookInstance": {"type": "string"},
        "fhirServer": {"type": "string"},
        "fhirAuthorization": {"type": "object"},
        "context": {
            "type": "object",
            "required": ["patientId"],
            "properties": {
                "patientId": {"type": "string"},
                "userId": {"type": "string"},
                "draftOrders": {"$ref": "#/components/schemas/FhirResource"},
                "selections": {"type": "array", "items": {"type": "string"}},
                "dispatchedOrders": {"type": "array", "items": {"type": "string"}},
                "appointments": {"$ref": "#/components/schemas/FhirResource"},
            },
        },
        "prefetch": {"type": "object", "additionalProperties": {"oneOf": [{"$ref": "#/components/schemas/FhirResource"}, {"type": "null"}]}},
    },
}
HOOK_RESPONSE = {
    "type": "object",
    "required": ["cards"],
    "description": "A CDS Hooks 2.0 response: the coverage information as a system action (no card unless an advisory card is configured)",
    "properties": {
        "cards": {"type": "array", "items": {"type": "object"}},
        "systemActions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "resource"],
                "properties": {"type": {"const": "update"}, "description": {"type": "string"}, "resource": {"$ref": "#/components/schemas/FhirResource"}},
            },
        },
    },
}
DISCOVERY = {
    "type": "object",
    "required": ["services"],
    "properties": {
        "services": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["hook", "id", "description"],
                "properties": {
                    "hook": {"type": "string"},
                    "id": {"type": "string"},
                    "title": {"type": "string"},
                    "description": {"type": "string"},
                    "prefetch": {"type": "object", "additionalProperties": {"type": "string"}},
                    "extension": {"type": "object"},
                },
            },
        }
    },
}
LOG_RECORD = {
    "type": "object",
    "required": ["id", "recorded_at", "source", "input", "decision", "provenance"],
    "description": "A record of the decision log",
    "properties": {
        "id": {"type": "string"},
        "seq": {"type": "integer"},
        "recorded_at": {"type": "string"},
        "source": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "subject": {"type": ["string", "null"]},
        "coverage_assertion_id": {"type": "string"},
        "prior_authorization_number": {"type": ["string", "null"]},
        "parent": {"type": ["string", "null"]},
        "input": {"type": "object", "properties": {"case": {"type": "object"}, "sha256": {"type": ["string", "null"]}}},
        "decision": {"type": "object"},
        "provenance": {"type": "object"},
    },
}

REVIEW_NOTE = {
    "type": "object",
    "required": ["id", "decision_id", "recorded_at", "changes", "outcome", "decision"],
    "description": "A reviewer's note kept beside a logged decision (never altering it): the changes tried on its request, who saved them (as given) and when, and the decision they led to",
    "properties": {
        "id": {"type": "string"},
        "seq": {"type": "integer"},
        "decision_id": {"type": "string", "description": "the id of the logged record the note is about"},
        "recorded_at": {"type": "string"},
        "reviewer": {"type": ["string", "null"]},
        "comment": {"type": ["string", "null"]},
        "changes": {"type": "array", "items": {"$ref": "#/components/schemas/Change"}},
        "outcome": {"type": "string"},
        "decision": {"type": "object", "description": "the decision of the logged request with the changes applied (the decision format)"},
    },
}
REVIEW_NOTES = {
    "type": "object",
    "required": ["decision_id", "notes"],
    "properties": {
        "decision_id": {"type": "string"},
        "prior_authorization_number": {"type": ["string", "null"]},
        "notes": {"type": "array", "items": {"$ref": "#/components/schemas/ReviewNote"}},
    },
}
NOTE_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "description": "The changes to keep (applied to the logged request first: one that does not apply is refused), with who gives them and why; changes or a comment",
    "properties": {
        "changes": {"type": "array", "items": {"$ref": "#/components/schemas/Change"}},
        "reviewer": {"type": "string", "maxLength": 200},
        "comment": {"type": "string", "maxLength": 4000},
    },
}


def components(documents: dict[str, dict]) -> dict[str, dict]:
    """The KB's JSON Schemas as OpenAPI components: each schema, and its $defs as Name_def, refs rewritten."""
    out: dict[str, dict] = {}
    for name, doc in documents.items():
        title = NAMES.get(name, name.title())
        text = json.dumps({k: v for k, v in doc.items() if k not in ("$schema", "$id")})
        text = text.replace('"#/$defs/', f'"#/components/schemas/{title}_')
        body = json.loads(text)
        for key, sub in body.pop("$defs", {}).items():
            out[f"{title}_{key}"] = sub
        out[title] = body
    out.update(
        {
            "Errors": ERRORS,
            "OperationOutcome": OUTCOME,
            "FhirResource": FHIR_RESOURCE,
            "CdsHooksRequest": HOOK_REQUEST,
            "CdsHooksResponse": HOOK_RESPONSE,
            "CdsServices": DISCOVERY,
            "LogRecord": LOG_RECORD,
            "ReviewNote": REVIEW_NOTE,
            "ReviewNotes": REVIEW_NOTES,
            "ReviewNoteRequest": NOTE_REQUEST,
        }
    )
    return out


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(media: str, schema: dict) -> dict:
    return {"content": {media: {"schema": schema}}}


def _errors(fhir: bool, codes: tuple[int, ...]) -> dict:
    media, name = (FHIR, "OperationOutcome") if fhir else ("application/json", "Errors")
    words = {
        400: "bad request",
        401: "no valid credentials",
        404: "not found",
        412: "prefetch missing and not fetchable",
        413: "body too large",
        422: "not processable",
        503: "busy, or the decision log cannot be written",
        504: "past the time limit",
    }
    return {str(c): {"description": words.get(c, str(c)), **_body(media, _ref(name))} for c in codes}


def bodies(posted: dict[str, tuple[str, str]]) -> dict[str, dict]:
    """The OpenAPI paths of the routes FastAPI does not describe itself (the plain ASGI ones)."""
    either = {"oneOf": [_ref("Case"), _ref("FhirResource")]}
    json_errors = (401, 413, 422, 503, 504)
    paths = {
        "/evaluate": {
            "post": {
                "requestBody": _body("application/json", either),
                "responses": {"200": {"description": "the decision", **_body("application/json", _ref("Decision"))}, **_errors(False, json_errors)},
            }
        },
        "/missing": {
            "post": {
                "requestBody": _body("application/json", either),
                "responses": {"200": {"description": "the missing documentation", **_body("application/json", {"type": "object"})}, **_errors(False, json_errors)},
            }
        },
        "/what-if": {
            "post": {
                "requestBody": _body("application/json", {"type": "object", "required": ["case"], "properties": {"case": either, "changes": {"type": "array", "items": _ref("Change")}}}),
                "responses": {"200": {"description": "the decisions before and after", **_body("application/json", {"type": "object"})}, **_errors(False, json_errors)},
            }
        },
        "/questionnaire/next": {
            "post": {
                "requestBody": _body("application/json", {"type": "object", "properties": {"case": {"type": "object"}, "declined": {"type": "array", "items": _ref("Change")}}}),
                "responses": {"200": {"description": "the next question or the decision", **_body("application/json", {"type": "object"})}, **_errors(False, json_errors)},
            }
        },
        "/Questionnaire/$next-question": {
            "post": {
                "requestBody": _body(FHIR, _ref("FhirResource")),
                "responses": {
                    "200": {"description": "the QuestionnaireResponse with the next question (or Parameters: return)", **_body(FHIR, _ref("FhirResource"))},
                    **_errors(True, (400, 401, 413, 503, 504)),
                },
            }
        },
        "/Questionnaire/$questionnaire-package": {
            "post": {
                "requestBody": _body(FHIR, _ref("FhirResource")),
                "responses": {
                    "200": {"description": "Parameters: packagebundle (the Questionnaire and a QuestionnaireResponse), outcome", **_body(FHIR, _ref("FhirResource"))},
                    **_errors(True, (400, 401, 413, 503, 504)),
                },
            }
        },
        "/cds-services/{service}": {
            "post": {
                "summary": "A CDS Hooks call (Da Vinci CRD 2.2.1): the coverage-information system action",
                "parameters": [{"name": "service", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": _body("application/json", _ref("CdsHooksRequest")),
                "responses": {
                    "200": {"description": "cards (none unless configured) and the system action", **_body("application/json", _ref("CdsHooksResponse"))},
                    **_errors(True, (400, 401, 404, 412, 413, 422, 503, 504)),
                },
            }
        },
        "/batch": {
            "post": {
                "summary": "NDJSON in, NDJSON out: one decision (or error) record per input line, in order",
                "requestBody": _body("application/x-ndjson", {"type": "string", "description": "one case (or FHIR Bundle) per line"}),
                "responses": {"200": {"description": "one record per input line (each a BatchRecord)", **_body("application/x-ndjson", {"type": "string"})}, **_errors(False, (401, 413))},
            }
        },
    }
    for path, (_, summary) in posted.items():
        paths[path]["post"]["summary"] = summary
    return paths


def add_docs(app: Any, kb: "KnowledgeBase", documents: dict[str, dict], posted: dict[str, tuple[str, str]]) -> None:
    """OpenAPI with bodies and components, and /docs from local assets."""
    from fastapi.responses import HTMLResponse

    documented = app.openapi
    w = kb.vocabulary.word

    def openapi() -> dict:
        if app.openapi_schema is not None and "Case" in app.openapi_schema.get("components", {}).get("schemas", {}):
            return app.openapi_schema
        schema = documented()
        schema.setdefault("paths", {}).update(bodies(posted))
        described = (
            ("/cds-services", "application/json", "CdsServices"),
            ("/decisions/{key}", "application/json", "LogRecord"),
            ("/decisions/{key}/notes", "application/json", "ReviewNotes"),
            ("/decisions/{key}/notes/{note}", "application/json", "ReviewNote"),
        )
        for path, media, name in described:
            get = schema["paths"].get(path, {}).get("get")
            if get is not None:
                get.setdefault("responses", {})["200"] = {"description": "the answer", **_body(media, _ref(name))}
                if path.startswith("/decisions/"):
                    get["responses"].update(_errors(False, (401, 404)))
        schema["paths"].setdefault("/decisions/{key}/notes", {})["post"] = {  # a plain ASGI route: described here
            "summary": w("api_doc_note_post"),
            "parameters": [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}, "description": "the logged decision's id or prior-authorization number"}],
            "requestBody": _body("application/json", _ref("ReviewNoteRequest")),
            "responses": {"201": {"description": "the note kept (Location: its URL)", **_body("application/json", _ref("ReviewNote"))}, **_errors(False, (401, 404, 413, 422, 503, 504))},
        }
        schema.setdefault("components", {}).setdefault("schemas", {}).update(components(documents))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
    try:
        import swagger_ui_bundle
        from starlette.staticfiles import StaticFiles
    except ImportError:
        assets = None
    else:
        assets = swagger_ui_bundle.swagger_ui_path
        app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if assets is None:
            return HTMLResponse(w("api_docs_offline"))
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=app.title,
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )
