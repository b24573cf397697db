"""HTTP Basic (and the export API's bearer tokens) for every non-public surface.

The middleware only finds out who is calling: it resolves the credentials a request under a protected
prefix carries and leaves the tenant, or None, in the request's state. Whether a route needs one is the
route's own declaration: every protected route takes `CurrentTenant` (api/deps.py), which answers 401
without one, and a route that verifies a signed link itself simply does not. A request no route answers
gets 401 instead of its 404/405 when it carries no valid credentials (api/errors.py), because the spec
answers 401 first: an unauthenticated caller learns nothing about which paths exist. Verified
credentials are cached briefly so that a request costs no extra query; a revoked token stops working
within `auth_cache_seconds`.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from opencdp.api.responses import JsonResponse, error_body
from opencdp.core import oauth
from opencdp.core.batch import links
from opencdp.core.tenants import Tenant, authenticate, hash_token
from opencdp.core.values import utcnow
from opencdp.store.database import Database

PROTECTED_PREFIXES = ("/v2.1", "/v2/", "/opencdp/")
BEARER_PREFIX = "/v2/audienceExports/"
UNAUTHORIZED_MESSAGE = (
    "Authentication credentials are required to access the resource. All requests must be authenticated."
)


class Unauthenticated(Exception):
    """Raised by a route that needs a tenant when the request carried no valid credentials."""


def protected(path: str) -> bool:
    """Every API but the Stream API, the console (its own sign-in) and the docs."""
    return path == "/v2.1" or path.startswith(PROTECTED_PREFIXES)


def unauthorized(more_info_url: str) -> JsonResponse:
    """The spec's 401, word for word: clients compare it."""
    body = error_body("UNAUTHORIZED", 401, UNAUTHORIZED_MESSAGE, None, more_info_url)
    return JsonResponse(body, 401, headers={"WWW-Authenticate": 'Basic realm="OpenCDP"'})


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if "\x00" in decoded:  # no key or token holds one, and PostgreSQL could not even be asked
        return None
    return (user, password) if sep and user and password else None


class BasicAuth:
    def __init__(
        self, app: ASGIApp, db: Database, more_info_url: str, cache_seconds: float, secret_key: str | None = None
    ) -> None:
        self.app = app
        self.secret_key = secret_key
        self.db = db
        self.more_info_url = more_info_url
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str], tuple[Tenant, float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization")
        credentials = parse_basic(header)
        tenant = await self._tenant(*credentials) if credentials else None
        if tenant is None and header and header[:7].lower() == "bearer " and scope["path"].startswith(BEARER_PREFIX):
            tenant = await anyio.to_thread.run_sync(self._bearer, header[7:].strip())
        scope.setdefault("state", {})["tenant"] = tenant
        await self.app(scope, receive, send)

    async def _tenant(self, client_key: str, token: str) -> Tenant | None:
        key = (client_key, hash_token(token))
        cached = self._cache.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        tenant = await anyio.to_thread.run_sync(self._lookup, client_key, token)
        if tenant is not None and self.cache_seconds > 0:
            self._cache[key] = (tenant, time.monotonic() + self.cache_seconds)
        return tenant

    def _bearer(self, token: str) -> Tenant | None:
        with self.db.read() as conn:
            return oauth.verify(conn, links.secret(conn, self.secret_key), token, utcnow())

    def _lookup(self, client_key: str, token: str) -> Tenant | None:
        with self.db.read() as conn:
            return authenticate(conn, client_key, token)


def _header(scope: Scope, name: bytes) -> str | None:
    headers: Any = scope.get("headers") or ()
    for key, value in headers:
        if key == name:
            return str(value.decode("latin-1"))
    return None
