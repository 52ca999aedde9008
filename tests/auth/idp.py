"""A local identity-provider stand-in: OIDC discovery and a JWKS over loopback HTTP.

A real ``http.server`` in a thread, so the service's fetch path (urllib in a
worker thread, timeouts, Cache-Control) runs for real. Keys are generated per
instance with ``cryptography``; every request is counted by path so tests can
assert how often the service asked. ``down`` makes it answer 503, ``delay``
makes it answer late.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

AUDIENCE = "ledger-api"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def new_private_key(alg: str) -> PrivateKey:
    if alg.startswith(("RS", "PS")):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(alg)


def public_jwk(key: PrivateKey, kid: str, alg: str) -> dict[str, Any]:
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


class IdP:
    """Discovery at ``<issuer>/.well-known/openid-configuration``, keys at ``/jwks``."""

    def __init__(self, realm: str = "test") -> None:
        self.realm = realm
        self.private: dict[str, tuple[PrivateKey, str]] = {}
        self.published: list[str] = []
        self.requests: Counter[str] = Counter()
        self.down = False
        self.delay = 0.0
        self.max_age: int | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.issuer = f"{self.base}/realms/{realm}"
        self.jwks_url = f"{self.base}/jwks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- keys --------------------------------------------------------------------------

    def add_key(self, alg: str = "RS256", *, publish: bool = True) -> str:
        kid = f"{alg.lower()}-{len(self.private) + 1}"
        self.private[kid] = (new_private_key(alg), alg)
        if publish:
            self.published.append(kid)
        return kid

    def rotate(self, alg: str = "RS256") -> str:
        """Publish a new key and withdraw the others."""
        kid = self.add_key(alg, publish=False)
        self.published = [kid]
        return kid

    def token(
        self,
        sub: str = "alice",
        *,
        kid: str | None = None,
        ttl: float = 300,
        iss: str | None = None,
        aud: str | list[str] = AUDIENCE,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        kid = kid or self.published[0]
        key, alg = self.private[kid]
        now = time.time()
        body = {"sub": sub, "iss": iss or self.issuer, "aud": aud, "iat": int(now)}
        body["exp"] = int(now + ttl)
        header = {"kid": kid, **(headers or {})}
        return jwt.encode({**body, **claims}, key, algorithm=alg, headers=header)

    def fetches(self) -> int:
        """How often the key set was asked for."""
        with self._lock:
            return self.requests["/jwks"]

    # -- serving -----------------------------------------------------------------------

    def _document(self, path: str) -> dict[str, Any] | None:
        if path == f"/realms/{self.realm}/.well-known/openid-configuration":
            return {"issuer": self.issuer, "jwks_uri": self.jwks_url}
        if path == "/jwks":
            keys = [public_jwk(self.private[k][0], k, self.private[k][1]) for k in self.published]
            return {"keys": keys}
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with idp._lock:
                    idp.requests[self.path] += 1
                if idp.delay:
                    time.sleep(idp.delay)
                document = None if idp.down else idp._document(self.path)
                if document is None:
                    self.send_response(503 if idp.down else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if idp.max_age is not None:
                    self.send_header("Cache-Control", f"public, max-age={idp.max_age}")
                self.end_headers()
                with contextlib.suppress(OSError):  # a client that gave up (timeout tests)
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[IdP]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
