"""Signed links for uploads and logs: HMAC-SHA256 over method, path, client key and expiry (batch-api.md §2.2)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import Connection

from opencdp.core.errors import ApiError
from opencdp.store import batches as batch_store


def secret(conn: Connection, configured: str | None) -> bytes:
    """OPENCDP_SECRET_KEY, or a key generated once and kept in the database for every process."""
    return (configured or batch_store.setting(conn, "batch_link_secret", secrets.token_hex(32))).encode()


def signature(key: bytes, method: str, path: str, client_key: str, expires: int) -> str:
    message = f"{method}\n{path}\n{client_key}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(key: bytes, base: str, method: str, path: str, client_key: str, expiry: datetime) -> str:
    expires = int(expiry.timestamp())
    query = urlencode({"clientKey": client_key, "expires": expires,
                       "signature": signature(key, method, path, client_key, expires)})  # fmt: skip
    return f"{base}{path}?{query}"


def expiry_from(now: datetime, ttl_seconds: int) -> datetime:
    """Whole seconds, since the link carries Unix seconds."""
    return (now + timedelta(seconds=ttl_seconds)).replace(microsecond=0)


def verify(key: bytes, method: str, path: str, client_key: str, expires: str, given: str, now: datetime) -> None:
    """403 for an altered link, then 403 for an expired one, in that order."""
    try:
        moment = int(expires)
    except ValueError:
        raise ApiError("Signature does not match", status=403) from None
    if not hmac.compare_digest(signature(key, method, path, client_key, moment), given):
        raise ApiError("Signature does not match", status=403)
    if datetime.fromtimestamp(moment, UTC) < now:
        raise ApiError("Request has expired", status=403)
