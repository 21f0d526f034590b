"""What every request passes before a route: the Host header, CORS, and authentication.

- **Allowed hosts.** A request whose ``Host`` header names a host not on the
  list is refused (400): with no other check a web page could reach a server
  on this machine by DNS rebinding (its own name resolving to 127.0.0.1).
  ``serve`` allows the address it binds (and, bound to loopback, the names
  of loopback) unless ``--allowed-host`` says otherwise.
- **CORS.** Browser clients of the allowed origins (``--cors-origin``) get
  their preflight answered (204) and the answers they may read; a preflight
  from another origin is refused (403). None by default.
- **Authentication** (:mod:`kineret_asp.web.auth`): the static token on every
  route, a CDS Hooks JWT on the CDS Hooks routes.

Errors on the FHIR-facing routes (``/cds-services``, ``/Questionnaire``) are
OperationOutcomes, elsewhere ``{"errors": [lines]}``. Everything is plain
ASGI: request bodies stream through untouched.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Callable, Optional, Sequence

from ..interop.operation_outcome import FHIR_JSON, lines_outcome
from ..safetext import safe_json

FHIR_PREFIXES = ("/cds-services", "/Questionnaire")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_fhir_path(path: str) -> bool:
    return path.startswith(FHIR_PREFIXES)


def json_bytes(content: Any) -> bytes:
    """JSON as the server writes it: compact UTF-8, every separator, control and format character escaped
    (U+2028, U+202E, U+0085 ... as \\uXXXX, as the command line writes them)."""
    return safe_json(json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))).encode("utf-8")


def error_body(path: str, status: int, lines: list[str]) -> tuple[bytes, str]:
    """An error's body and media type for a path: an OperationOutcome on FHIR routes, {"errors": lines} elsewhere."""
    if is_fhir_path(path):
        return json_bytes(lines_outcome(status, lines)), FHIR_JSON
    return json_bytes({"errors": lines}), "application/json"


def host_name(header: str) -> str:
    """The host of a Host header, without its port, lower-cased (``[::1]:8000`` is ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def default_hosts(bound: str) -> list[str]:
    """The hosts a server bound to ``bound`` answers to: that address, and loopback's names when it is loopback."""
    try:
        loopback = ipaddress.ip_address(bound).is_loopback
    except ValueError:
        loopback = bound.lower() == "localhost"
    return sorted({bound.lower(), *(LOOPBACK_NAMES if loopback else ())})


async def send_error(send: Any, path: str, status: int, lines: list[str], headers: Optional[list] = None) -> None:
    body, media = error_body(path, status, lines)
    raw = [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())] + (headers or [])
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: Host, then CORS, then authentication, then the app."""

    def __init__(self, inner: Any, word: Callable[..., str], allowed_hosts: Optional[Sequence[str]] = None, cors_origins: Sequence[str] = (), verifier: Any = None):
        self.inner = inner
        self.word = word
        self.hosts = {h.lower().strip("[]") for h in allowed_hosts} if allowed_hosts else None
        self.origins = set(cors_origins)
        self.verifier = verifier

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        path = scope.get("path", "")
        w = self.word
        if self.hosts is not None:
            host = host_name(headers.get(b"host", b"").decode("latin-1"))
            if host not in self.hosts:
                await send_error(send, path, 400, [w("api_bad_host", host=host or "(none)")])
                return
        origin = headers.get(b"origin", b"").decode("latin-1")
        cors: list = []
        if origin and origin in self.origins:
            cors = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        if scope.get("method") == "OPTIONS" and origin and b"access-control-request-method" in headers:
            if not cors:
                await send_error(send, path, 403, [w("api_cors_refused", origin=origin)])
                return
            allow = cors + [
                (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                (b"access-control-allow-headers", b"Authorization, Content-Type"),
                (b"access-control-max-age", b"600"),
                (b"content-length", b"0"),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": allow})
            await send({"type": "http.response.body", "body": b""})
            return
        if self.verifier is not None and self.verifier.config.any:
            from .auth import Refused

            given = headers.get(b"authorization", b"").decode("latin-1")
            jwt_route = path == "/cds-services" or path.startswith("/cds-services/")
            try:
                if jwt_route and self.verifier.needs_fetch(given):
                    import anyio

                    await anyio.to_thread.run_sync(self.verifier.check, given, path, jwt_route)
                else:
                    self.verifier.check(given, path, jwt_route)
            except Refused as exc:
                await send_error(send, path, 401, [w(exc.key, **exc.values)], [(b"www-authenticate", b"Bearer")] + cors)
                return
        if not cors:
            await self.inner(scope, receive, send)
            return

        async def with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers") or []) + cors}
            await send(message)

        await self.inner(scope, receive, with_cors)
