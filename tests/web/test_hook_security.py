"""What stands between the network and the rules: Host names, CORS, CDS Hooks JWTs, fetched prefetch, escaping.

Every server, JWK Set and FHIR endpoint here listens on 127.0.0.1, started by
the test; the requests' public ``fhirServer`` values are never contacted.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from kineret_asp import load_kb
from kineret_asp.server import create_app
from kineret_asp.web.auth import AuthConfig
from kineret_asp.web.guard import default_hosts, host_name

from ..conftest import KB_DIR
from ..interop.test_cds import BASE, coverage_info, example, hook_request

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
ISS = "https://ehr.example.org"
SERVICE = f"{BASE}/cds-services/ip0243-order-sign"


# --- a local HTTP endpoint (a JWK Set, a FHIR server) that counts what it is asked -------------------------


@contextmanager
def local_server(routes: dict) -> Iterator[tuple[str, list]]:
    """An HTTP server on 127.0.0.1 answering GET paths (prefix match) with JSON; yields (base URL, the requests seen)."""
    seen: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            seen.append((self.path, self.headers.get("Authorization")))
            body = next((v for k, v in routes.items() if self.path.startswith(k)), None)
            data = json.dumps(body(self.path) if callable(body) else body).encode()
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


# --- Host and CORS ---------------------------------------------------------------------------------------------


def test_a_host_not_allowed_is_400_before_any_route():
    """DNS rebinding: a page whose own name resolves to 127.0.0.1 sends its own Host; the server refuses it."""
    client = TestClient(create_app(load_kb(KB_DIR), allowed_hosts=default_hosts("127.0.0.1")))
    refused = client.post("/evaluate", json={"indication": "sjia"}, headers={"host": "rebind.attacker.example"})
    assert refused.status_code == 400 and "rebind.attacker.example" in refused.json()["errors"][0]
    fhir = client.post("/cds-services/ip0243-order-sign", json={}, headers={"host": "rebind.attacker.example"})
    assert fhir.status_code == 400 and fhir.json()["resourceType"] == "OperationOutcome"
    for host in ("127.0.0.1:8000", "localhost", "[::1]:8000"):
        assert client.get("/health", headers={"host": host}).status_code == 200, host


def test_the_default_hosts_are_the_bound_address_and_loopbacks_names():
    assert default_hosts("127.0.0.1") == ["127.0.0.1", "::1", "localhost"]
    assert default_hosts("10.1.2.3") == ["10.1.2.3"]
    assert host_name("Example.ORG:443") == "example.org" and host_name("[::1]:80") == "::1"


def test_cors_preflight_and_answers_for_an_allowed_origin_only():
    client = TestClient(create_app(load_kb(KB_DIR), cors_origins=["https://ehr.example.org"]))
    ok = client.options(
        "/cds-services/ip0243-order-sign", headers={"origin": "https://ehr.example.org", "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type"}
    )
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == "https://ehr.example.org"
    assert "POST" in ok.headers["access-control-allow-methods"] and "Authorization" in ok.headers["access-control-allow-headers"]
    refused = client.options("/cds-services", headers={"origin": "https://evil.example", "access-control-request-method": "GET"})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    answer = client.get("/cds-services", headers={"origin": "https://ehr.example.org"})
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "https://ehr.example.org"
    assert "access-control-allow-origin" not in client.get("/cds-services", headers={"origin": "https://evil.example"}).headers


# --- CDS Hooks JWTs -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys():
    private = ec.generate_private_key(ec.SECP384R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    public.update(kid="k1", alg="ES384", use="sig")
    return private, {"keys": [public]}


def token(private, aud: str = SERVICE, iss: str = ISS, headers: dict | None = None, alg: str = "ES384", **claims) -> str:
    now = int(time.time())
    payload = {"iss": iss, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4()), **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, private, algorithm=alg, headers={"kid": "k1", "typ": "JWT", **(headers or {})})


@pytest.fixture(scope="module")
def secured(keys, tmp_path_factory):
    _, jwks = keys
    path = tmp_path_factory.mktemp("auth") / "issuers.json"
    path.write_text(json.dumps({"issuers": [{"iss": ISS, "jwks": jwks}]}))
    return TestClient(create_app(load_kb(KB_DIR), base_url=BASE, auth=AuthConfig.load(path, "static-secret")))


def bearer(value: str) -> dict:
    return {"authorization": f"Bearer {value}"}


def test_a_signed_jwt_from_a_trusted_issuer_is_accepted_on_discovery_and_services(secured, keys):
    """CDS Hooks 2.0: the client sends a signed JWT on every call, discovery included; aud is the endpoint's URL."""
    private, _ = keys
    assert secured.get("/cds-services", headers=bearer(token(private, aud=f"{BASE}/cds-services"))).status_code == 200
    answer = secured.post("/cds-services/ip0243-order-sign", json=hook_request(example("stills_adult_onset")), headers=bearer(token(private)))
    assert answer.status_code == 200 and coverage_info(answer.json())["covered"] == ["covered"]


@pytest.mark.parametrize("case", ["none", "garbage", "wrong aud", "expired", "no jti", "no iat", "unknown issuer", "unknown kid", "no typ"])
def test_a_jwt_that_does_not_verify_is_401(secured, keys, case):
    private, _ = keys
    value = {
        "none": "",
        "garbage": "not.a.jwt",
        "wrong aud": token(private, aud=f"{BASE}/cds-services/ip0243-order-select"),
        "expired": token(private, exp=int(time.time()) - 600),
        "no jti": token(private, jti=None),
        "no iat": token(private, iat=None),
        "unknown issuer": token(private, iss="https://other.example"),
        "unknown kid": token(private, headers={"kid": "k9"}),
        "no typ": jwt.encode({"iss": ISS, "aud": SERVICE, "exp": int(time.time()) + 60, "iat": int(time.time()), "jti": "x"}, private, algorithm="ES384", headers={"kid": "k1", "typ": None}),
    }[case]
    response = secured.post("/cds-services/ip0243-order-sign", json={}, headers=bearer(value) if value else {})
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_replayed_jwt_is_401(secured, keys):
    """jti: "A nonce string value that uniquely identifies this authentication JWT (used to protect against replay attacks)"."""
    private, _ = keys
    once = token(private, aud=f"{BASE}/cds-services")
    assert secured.get("/cds-services", headers=bearer(once)).status_code == 200
    again = secured.get("/cds-services", headers=bearer(once))
    assert again.status_code == 401 and "used before" in again.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("alg", ["HS256", "none"])
def test_symmetric_and_unsigned_jwts_are_refused(secured, alg):
    """ "JWTs SHALL NOT be signed using the none algorithm" nor "any symmetric algorithm"."""
    now = int(time.time())
    claims = {"iss": ISS, "aud": f"{BASE}/cds-services", "exp": now + 60, "iat": now, "jti": str(uuid.uuid4())}
    value = jwt.encode(claims, "shared-secret" if alg == "HS256" else None, algorithm=alg, headers={"kid": "k1", "typ": "JWT"})
    response = secured.get("/cds-services", headers=bearer(value))
    assert response.status_code == 401 and "asymmetric" in response.json()["issue"][0]["diagnostics"]


def test_the_static_token_stays_and_other_routes_need_it(secured, keys):
    private, _ = keys
    assert secured.get("/cds-services", headers=bearer("static-secret")).status_code == 200
    assert secured.post("/evaluate", json={"indication": "sjia"}, headers=bearer("static-secret")).status_code == 200
    assert secured.post("/evaluate", json={"indication": "sjia"}).status_code == 401
    assert secured.post("/evaluate", json={"indication": "sjia"}, headers=bearer(token(private, aud=f"{BASE}/evaluate"))).status_code == 401  # a JWT is for the CDS routes


def test_the_decision_log_and_reviewers_notes_routes_take_the_static_token_and_no_jwt(secured, keys):
    """The reviewer's notes follow GET /decisions/{id}: the static token opens them, a CDS client's JWT does not."""
    private, _ = keys
    record = secured.post("/evaluate", json={"indication": "sjia"}, headers=bearer("static-secret")).headers["x-decision-id"]
    for method, path, body in (
        ("GET", f"/decisions/{record}", None),
        ("GET", f"/decisions/{record}/notes", None),
        ("POST", f"/decisions/{record}/notes", {"comment": "seen"}),
        ("POST", "/review/decide", {"logged": record}),
    ):
        assert secured.request(method, path, json=body, headers=bearer(token(private, aud=f"{BASE}{path}"))).status_code == 401, path
        assert secured.request(method, path, json=body).status_code == 401, path
        assert secured.request(method, path, json=body, headers=bearer("static-secret")).status_code in (200, 201), path


def test_a_jwks_is_fetched_from_a_jku_on_the_issuers_list_only(keys, tmp_path):
    """ "CDS Services SHOULD limit the CDS Clients they trust by maintaining an allowlist of iss and jku urls."""
    private, jwks = keys
    with local_server({"/jwks.json": jwks}) as (listed, seen), local_server({"/jwks.json": jwks}) as (unlisted, seen_elsewhere):
        path = tmp_path / "issuers.json"
        path.write_text(json.dumps({"issuers": [{"iss": ISS, "jku": [f"{listed}/jwks.json"]}]}))
        client = TestClient(create_app(load_kb(KB_DIR), base_url=BASE, auth=AuthConfig.load(path)))
        ok = client.get("/cds-services", headers=bearer(token(private, aud=f"{BASE}/cds-services", headers={"jku": f"{listed}/jwks.json"})))
        assert ok.status_code == 200 and [p for p, _ in seen] == ["/jwks.json"]
        refused = client.get("/cds-services", headers=bearer(token(private, aud=f"{BASE}/cds-services", headers={"jku": f"{unlisted}/jwks.json"})))
        assert refused.status_code == 401 and seen_elsewhere == []  # never contacted


@pytest.mark.parametrize(
    "content, where",
    [("{", "issuers"), ('{"issuers": []}', "issuers"), ('{"issuers": [{"iss": "x"}]}', "issuers[0]"), ('{"issuers": [{"iss": "x", "jwks": {"keys": []}, "extra": 1}]}', "issuers[0].extra")],
)
def test_a_bad_issuers_file_is_one_line_naming_the_field(tmp_path, content, where):
    from kineret_asp.web.auth import AuthConfigError

    path = tmp_path / "issuers.json"
    path.write_text(content)
    with pytest.raises(AuthConfigError) as info:
        AuthConfig.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value) and (where in str(info.value) or where == "issuers")


# --- prefetch from the client's FHIR server -----------------------------------------------------------------


def fhir_routes(bundle: dict, patient: str = "p1") -> dict:
    """A FHIR server holding the Bundle's resources, answering the KB's searches with searchsets."""
    resources = [e["resource"] for e in bundle["entry"] if not (e["resource"]["resourceType"] == "MedicationRequest" and e["resource"].get("status") == "draft")]

    def search(kind: str):
        return lambda path: {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources if r["resourceType"] == kind]}

    return {f"/fhir/{kind}?": search(kind) for kind in ("Condition", "Coverage", "PractitionerRole", "MedicationStatement", "MedicationRequest", "Observation")}


def test_missing_prefetch_is_fetched_from_an_allowed_fhir_server_with_its_authorization():
    bundle = example("stills_adult_onset")
    bundle["entry"].append({"resource": {"resourceType": "Coverage", "id": "cov9", "status": "active", "beneficiary": {"reference": "Patient/p1"}, "payor": [{"display": "x"}]}})
    with local_server(fhir_routes(bundle)) as (base, seen):
        client = TestClient(create_app(load_kb(KB_DIR), base_url=BASE, fhir_servers=[f"{base}/fhir"]))
        request = hook_request(bundle)
        request.pop("prefetch")
        request["fhirServer"] = f"{base}/fhir"
        request["fhirAuthorization"] = {"access_token": "ehr-token-1", "token_type": "Bearer", "expires_in": 300, "scope": "user/*.read", "subject": "cds"}
        answer = client.post("/cds-services/ip0243-order-sign", json=request)
        assert answer.status_code == 200, answer.text
        assert coverage_info(answer.json())["covered"] == ["covered"]
        assert {p.split("?")[0] for p, _ in seen} >= {"/fhir/Condition", "/fhir/Coverage", "/fhir/PractitionerRole"}
        assert all(auth == "Bearer ehr-token-1" for _, auth in seen)


def test_a_fhir_server_not_on_the_allow_list_is_never_contacted_and_the_answer_is_412():
    """A request must never make the service contact a host it names (server-side request forgery)."""
    bundle = example("stills_adult_onset")
    with local_server(fhir_routes(bundle)) as (allowed, _), local_server(fhir_routes(bundle)) as (named, seen):
        client = TestClient(create_app(load_kb(KB_DIR), base_url=BASE, fhir_servers=[f"{allowed}/fhir"]))
        request = hook_request(bundle)
        request.pop("prefetch")
        request["fhirServer"] = f"{named}/fhir"
        answer = client.post("/cds-services/ip0243-order-sign", json=request)
        assert answer.status_code == 412 and answer.json()["resourceType"] == "OperationOutcome"
        assert seen == []


def test_a_fetched_resource_about_another_patient_is_400_and_never_used():
    bundle = example("stills_adult_onset")
    text = json.dumps(bundle).replace('"Patient/p1"', '"Patient/p2"')
    other = json.loads(text)
    with local_server(fhir_routes(other)) as (base, _):
        client = TestClient(create_app(load_kb(KB_DIR), base_url=BASE, fhir_servers=[f"{base}/fhir"]))
        request = hook_request(bundle)
        request.pop("prefetch")
        request["fhirServer"] = f"{base}/fhir"
        answer = client.post("/cds-services/ip0243-order-sign", json=request)
        assert answer.status_code == 400 and "Patient/p2" in answer.text


# --- what the answers carry ------------------------------------------------------------------------------------


def test_json_answers_escape_line_separators_and_bidirectional_overrides():
    """U+2028, U+202E and U+0085 are written as \\uXXXX escapes, as the command line writes them."""
    client = TestClient(create_app(load_kb(KB_DIR)))
    response = client.post("/evaluate", json={"id": "a\u2028b\u202ec\u0085d", "indication": "sjia"})
    assert response.status_code == 200
    raw = response.content.decode("utf-8")
    assert "\u2028" not in raw and "\u202e" not in raw and "\u0085" not in raw
    assert "\\u2028" in raw and "\\u202e" in raw and "\\u0085" in raw
    assert response.json()["id"] == "a\u2028b\u202ec\u0085d"


@pytest.mark.slow
def test_a_client_that_goes_away_or_sends_garbage_leaves_one_line_never_a_traceback():
    from ..test_server import running

    with running("--time-limit", "30", "--workers", "1") as server:
        for _ in range(3):  # a body cut short by a client that disconnects
            with socket.create_connection(("127.0.0.1", server.port)) as s:
                s.sendall(b"POST /cds-services/ip0243-order-sign HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n" + b"{" * 4000)
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(b"POST /Questionnaire/$next-question HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\n5")
            assert s.recv(100).startswith(b"HTTP/1.1 400")
        time.sleep(1.0)
        server.proc.send_signal(15)
        _, err = server.proc.communicate(timeout=60)
    text = err.decode("utf-8", "replace")
    assert "Traceback" not in text and "ClientDisconnect" not in text
    assert text.count("the client went away") == 3
