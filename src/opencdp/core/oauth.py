"""Bearer tokens for the Sitecore-compatible export read API (segments-exports.md §4.5).

A token is self-contained and signed with the server secret: client key, which API token it came from
(a prefix of that token's stored hash) and expiry. Nothing is stored, yet revoking the API token voids
every bearer token issued for it, because verification looks for that token among the active ones.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from opencdp.core.tenants import Tenant, authenticate, hash_token
from opencdp.store import tenants as tenant_store

LIFETIME_SECONDS = 86400
HASH_PREFIX = 24


def _sign(key: bytes, payload: bytes) -> str:
    return hmac.new(key, b"oauth\n" + payload, hashlib.sha256).hexdigest()


def issue(conn: Connection, key: bytes, client_key: str, api_token: str, now: datetime) -> dict[str, Any] | None:
    """The token response for valid client credentials; None when they are not."""
    if authenticate(conn, client_key, api_token) is None:
        return None
    expires = int(now.timestamp()) + LIFETIME_SECONDS
    payload = f"{client_key}:{hash_token(api_token)[:HASH_PREFIX]}:{expires}".encode()
    token = base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _sign(key, payload)
    return {"access_token": token, "token_type": "Bearer", "expires_in": LIFETIME_SECONDS}


def verify(conn: Connection, key: bytes, token: str, now: datetime) -> Tenant | None:
    encoded, _, signature = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        client_key, prefix, expires = payload.decode().rsplit(":", 2)
        moment = int(expires)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not hmac.compare_digest(_sign(key, payload), signature) or datetime.fromtimestamp(moment, UTC) < now:
        return None
    record = tenant_store.find_by_client_key(conn, client_key)
    if record is None or not any(h.startswith(prefix) for h in tenant_store.active_token_hashes(conn, record["id"])):
        return None
    return Tenant.from_record(record)
