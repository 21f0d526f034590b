"""Prefetch a CDS client did not send: fetched from its FHIR server, only from one on the allow-list.

CDS Hooks 2.0: a client sends the prefetch templates it chose to satisfy
(``null`` for one with no data, an OperationOutcome for one it failed on);
"if the CDS Service is unable to obtain required data because it cannot
access the FHIR server and the request did not contain the necessary
prefetch keys, the service SHALL respond with an HTTP 412". The service
fetches a missing key from the request's ``fhirServer`` with its
``fhirAuthorization`` bearer token, but only when that base URL is on the
server's allow-list (``--fhir-server``; empty by default): a request must
never make the service contact a host it names (server-side request
forgery). Redirects are not followed; an answer is capped in size.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from .operation_outcome import FhirProblem, Issue, is_outcome

if TYPE_CHECKING:  # pragma: no cover
    from ..knowledge.base import KnowledgeBase

TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
USER_TOKENS = {"userPractitionerId": "Practitioner", "userPractitionerRoleId": "PractitionerRole", "userPatientId": "Patient", "userRelatedPersonId": "RelatedPerson"}
MAX_FETCH_BYTES = 8 * 1024 * 1024
FETCH_SECONDS = 10.0


def resolve(template: str, context: Mapping[str, Any]) -> Optional[str]:
    """The template with its tokens filled from the hook's context; None when one cannot be filled."""
    unresolved = False

    def value(match: "re.Match[str]") -> str:
        nonlocal unresolved
        name = match.group(1)
        if name in USER_TOKENS:
            user = context.get("userId")
            kind, _, ident = str(user or "").partition("/")
            if kind != USER_TOKENS[name] or not ident:
                unresolved = True
                return ""
            return urllib.parse.quote(ident, safe="")
        if name.startswith("context."):
            field = context.get(name[len("context.") :])
            if isinstance(field, (str, int)) and not isinstance(field, bool) and str(field):
                return urllib.parse.quote(str(field), safe="")
        unresolved = True
        return ""

    out = TOKEN.sub(value, template)
    return None if unresolved else out


def prefetch_templates(kb: "KnowledgeBase") -> dict[str, str]:
    """The prefetch templates the KB declares (fhir_prefetch/2)."""
    return {str(key): str(query) for key, query in kb.facts("fhir_prefetch", 2)}


def required_keys(kb: "KnowledgeBase", context: Mapping[str, Any]) -> list[str]:
    """The prefetch keys a request must satisfy: those whose tokens its context can fill."""
    return [key for key, template in prefetch_templates(kb).items() if resolve(template, context) is not None]


def normal_base(url: str) -> Optional[str]:
    """A FHIR base URL compared with the allow-list: scheme and host lower-cased, no trailing slash, no query."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.query or parts.fragment or parts.username or parts.password:
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{parts.hostname.lower()}{port}{parts.path.rstrip('/')}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:  # a redirect could lead anywhere: not followed
        return None


def _get(url: str, token: Optional[str]) -> Any:
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))
    with opener.open(urllib.request.Request(url, headers=headers), timeout=FETCH_SECONDS) as response:
        if response.status != 200:
            raise urllib.error.HTTPError(url, response.status, "", response.headers, None)
        data = response.read(MAX_FETCH_BYTES + 1)
    if len(data) > MAX_FETCH_BYTES:
        raise ValueError(f"over {MAX_FETCH_BYTES} bytes")
    return json.loads(data)


def missing_keys(body: Any, kb: "KnowledgeBase") -> list[str]:
    """The required prefetch keys a request neither sent nor could send (absent, or an OperationOutcome)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("context"), Mapping):
        return []
    prefetch = body.get("prefetch") if isinstance(body.get("prefetch"), Mapping) else {}
    return [k for k in required_keys(kb, body["context"]) if k not in prefetch or is_outcome(prefetch.get(k))]


def fetch_missing(body: Any, kb: "KnowledgeBase", allowed: Sequence[str]) -> dict[str, Any]:
    """The missing prefetch keys fetched from the request's FHIR server, when it is allowed; {} when none is.

    Raises FhirProblem 412 when the server is allowed but a search fails.
    Returns {} (nothing fetched) when the request names no allowed server:
    the service then answers 412 itself, once it knows the request is one
    it decides.
    """
    keys = missing_keys(body, kb)
    if not keys:
        return {}
    server = body.get("fhirServer")
    base = normal_base(server) if isinstance(server, str) else None
    if base is None or base not in {normal_base(a) for a in allowed}:
        return {}
    auth = body.get("fhirAuthorization")
    token = auth.get("access_token") if isinstance(auth, Mapping) and isinstance(auth.get("access_token"), str) else None
    w = kb.vocabulary.word
    out: dict[str, Any] = {}
    problems = []
    for key in keys:
        query = resolve(prefetch_templates(kb)[key], body["context"])
        if query is None:
            continue
        try:
            out[key] = _get(f"{base}/{query.lstrip('/')}", token)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problems.append(Issue(w("crd_fetch_failed", name=key, why=" ".join(str(exc).split())[:200]), f"prefetch.{key}", "incomplete"))
    if problems:
        raise FhirProblem(412, problems)
    return out
