"""Client authentication: CDS Hooks 2.0 JWTs, and the static bearer token.

CDS Hooks 2.0 ("Trusting CDS Clients"): a client sends, on every call
(discovery included), ``Authorization: Bearer <JWT>`` signed with its
private key. The service verifies it with PyJWT:

- the header: ``alg`` an asymmetric algorithm (never ``none``, never HMAC),
  ``typ`` JWT, ``kid`` naming a key of the client's JWK Set;
- the issuer (``iss``) on the allow-list (``--jwt-issuers FILE``), each with
  its JWK Set given in the file (inline, or a file path), or fetched from a
  ``jku`` URL only when that URL is on the issuer's own list (never a URL
  the token alone names);
- ``aud`` the URL of the endpoint called, under the configured base URL;
- ``exp`` and ``iat`` present, not expired (with a small leeway);
- ``jti`` present and never seen before while the token lives (replay).

The issuers file (JSON)::

    {"issuers": [
        {"iss": "https://ehr.example.org", "jwks": {"keys": [...]}},
        {"iss": "https://other.example.org", "jwks_file": "other-jwks.json"},
        {"iss": "https://third.example.org", "jku": ["https://third.example.org/jwks.json"]}],
     "leeway_seconds": 30}

The static token (``--token-file``) stays: every route accepts it.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..errors import KineretError

ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
JWKS_SECONDS = 300.0  # a fetched JWK Set is used this long before it is fetched again
MAX_JWKS_BYTES = 256 * 1024
MAX_TOKEN_BYTES = 16 * 1024


class AuthConfigError(KineretError):
    """The issuers file is not readable or not as documented: one line."""


class Refused(Exception):
    """A token refused: ``key`` names the KB's words for why."""

    def __init__(self, key: str, **values: Any):
        super().__init__(key)
        self.key = key
        self.values = values


@dataclass
class Issuer:
    iss: str
    jwks: Optional[dict] = None
    jku: tuple[str, ...] = ()


@dataclass
class AuthConfig:
    """The static token, the JWT issuers, and the leeway on ``exp``/``iat``."""

    token: Optional[str] = None
    issuers: dict[str, Issuer] = field(default_factory=dict)
    leeway: int = 30

    @property
    def jwt(self) -> bool:
        return bool(self.issuers)

    @property
    def any(self) -> bool:
        return self.token is not None or self.jwt

    @classmethod
    def load(cls, path: Optional[Path], token: Optional[str] = None) -> "AuthConfig":
        """Read an issuers file (see the module's docstring); any problem is one line naming the file and field."""
        if path is None:
            return cls(token)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise AuthConfigError(f"{path}: cannot read the JWT issuers file: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("issuers"), list) or not data["issuers"]:
            raise AuthConfigError(f'{path}: issuers: expected a list of issuers ({{"iss": ..., "jwks" | "jwks_file" | "jku": ...}})')
        issuers: dict[str, Issuer] = {}
        for i, item in enumerate(data["issuers"]):
            where = f"{path}: issuers[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("iss"), str) or not item["iss"]:
                raise AuthConfigError(f"{where}.iss: expected the issuer's URI (a string)")
            unknown = sorted(set(item) - {"iss", "jwks", "jwks_file", "jku"})
            if unknown:
                raise AuthConfigError(f"{where}.{unknown[0]}: unknown field; expected iss, jwks, jwks_file, jku")
            jwks = item.get("jwks")
            if "jwks_file" in item:
                try:
                    jwks = json.loads((path.parent / str(item["jwks_file"])).read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, ValueError) as exc:
                    raise AuthConfigError(f"{where}.jwks_file: cannot read the JWK Set: {exc}") from None
            jku = item.get("jku", [])
            if jku and (not isinstance(jku, list) or not all(isinstance(u, str) and u.startswith(("https://", "http://")) for u in jku)):
                raise AuthConfigError(f"{where}.jku: expected a list of JWK Set URLs")
            if jwks is not None and (not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list)):
                raise AuthConfigError(f'{where}.jwks: expected a JWK Set ({{"keys": [...]}})')
            if jwks is None and not jku:
                raise AuthConfigError(f"{where}: expected jwks, jwks_file or jku (where the issuer's public keys are)")
            issuers[item["iss"]] = Issuer(item["iss"], jwks, tuple(jku))
        leeway = data.get("leeway_seconds", 30)
        if not isinstance(leeway, int) or isinstance(leeway, bool) or not 0 <= leeway <= 300:
            raise AuthConfigError(f"{path}: leeway_seconds: expected a whole number of seconds from 0 to 300")
        return cls(token, issuers, leeway)


class Verifier:
    """Checks the ``Authorization`` header of a request (thread-safe: a jku fetch runs in a thread)."""

    def __init__(self, config: AuthConfig, base_url: str):
        self.config = config
        self.base_url = base_url.rstrip("/")
        self._seen: dict[str, float] = {}  # jti -> when it expires
        self._fetched: dict[str, tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def static_ok(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        token = self.config.token
        return token is not None and scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())

    def needs_fetch(self, header: str) -> bool:
        """Whether checking this token would fetch a JWK Set (the caller then runs :meth:`check` in a thread)."""
        try:
            import jwt

            head = jwt.get_unverified_header(header.partition(" ")[2].strip())
        except Exception:  # noqa: BLE001 - a token that cannot be read is refused by check()
            return False
        url = head.get("jku")
        with self._lock:
            cached = self._fetched.get(url) if isinstance(url, str) else None
        return isinstance(url, str) and (cached is None or cached[0] < time.monotonic())

    def check(self, header: str, path: str, jwt_allowed: bool) -> None:
        """None when the request may pass; :class:`Refused` otherwise."""
        if self.static_ok(header):
            return
        if not (jwt_allowed and self.config.jwt):
            raise Refused("api_unauthorized")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused("auth_no_jwt")
        self.verify(token.strip(), f"{self.base_url}{path}")

    def verify(self, token: str, audience: str) -> dict:
        import jwt

        if len(token) > MAX_TOKEN_BYTES:
            raise Refused("auth_bad_jwt", why="too long")
        try:
            head = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Refused("auth_bad_jwt", why=str(exc)[:200]) from None
        alg = head.get("alg")
        if alg not in ASYMMETRIC:
            raise Refused("auth_bad_alg", alg=str(alg)[:40])
        if head.get("typ") != "JWT":
            raise Refused("auth_bad_header", field="typ")
        kid = head.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Refused("auth_bad_header", field="kid")
        iss = claims.get("iss")
        issuer = self.config.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise Refused("auth_unknown_issuer", iss=str(iss)[:200])
        jwks = self._jwks(issuer, head.get("jku"))
        jwk = next((k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid), None)
        if jwk is None:
            raise Refused("auth_unknown_key", kid=kid[:100])
        try:
            key = jwt.PyJWK(jwk, algorithm=alg).key
            verified = jwt.decode(token, key, algorithms=[alg], audience=audience, issuer=iss, leeway=self.config.leeway, options={"require": ["iss", "aud", "exp", "iat", "jti"]})
        except jwt.PyJWTError as exc:
            raise Refused("auth_bad_jwt", why=str(exc)[:200]) from None
        jti = verified.get("jti")
        if not isinstance(jti, str) or not jti:
            raise Refused("auth_bad_jwt", why="jti")
        now = time.time()
        with self._lock:
            for seen, until in list(self._seen.items()):
                if until < now:
                    del self._seen[seen]
            if f"{iss}\0{jti}" in self._seen:
                raise Refused("auth_replayed", jti=jti[:100])
            self._seen[f"{iss}\0{jti}"] = float(verified["exp"]) + self.config.leeway
        return verified

    def _jwks(self, issuer: Issuer, jku: Any) -> dict:
        if jku is None:
            if issuer.jwks is None:
                raise Refused("auth_no_jku")
            return issuer.jwks
        if not isinstance(jku, str) or jku not in issuer.jku:
            raise Refused("auth_jku_not_allowed", jku=str(jku)[:200])
        with self._lock:
            cached = self._fetched.get(jku)
        if cached is not None and cached[0] >= time.monotonic():
            return cached[1]
        from ..interop.prefetch import _NoRedirect

        try:
            opener = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))
            with opener.open(urllib.request.Request(jku, headers={"Accept": "application/json"}), timeout=10) as response:
                data = json.loads(response.read(MAX_JWKS_BYTES))
        except (OSError, ValueError) as exc:
            raise Refused("auth_jku_failed", jku=jku[:200], why=" ".join(str(exc).split())[:200]) from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise Refused("auth_jku_failed", jku=jku[:200], why="not a JWK Set")
        with self._lock:
            self._fetched[jku] = (time.monotonic() + JWKS_SECONDS, data)
        return data
