"""Tenants, their settings and credentials.

Tokens are random and long, so a plain SHA-256 is a sound stored form: there is nothing to brute-force
that a slow hash would protect. Comparison is constant-time all the same.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from opencdp.core.errors import ApiError, InvalidField, MissingField, UnsupportedField
from opencdp.core.values import utcnow
from opencdp.store import tenants as tenant_store
from opencdp.store.database import forget, remembered

DEFAULT_IDENTITY_RULES = ("email",)


@dataclass(frozen=True)
class Tenant:
    id: int
    name: str
    client_key: str
    identity_rules: tuple[str, ...] = DEFAULT_IDENTITY_RULES
    points_of_sale: tuple[str, ...] = ()
    session_timeout_minutes: int = 20
    default_currency: str = "EUR"
    context_ids: tuple[str, ...] = ()
    sites: tuple[tuple[str, str], ...] = ()

    def point_of_sale_of_site(self, site_id: str) -> str | None:
        return dict(self.sites).get(site_id)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Tenant:
        return cls(
            id=record["id"],
            name=record["name"],
            client_key=record["clientKey"],
            identity_rules=tuple(record["identityRules"]),
            points_of_sale=tuple(record["pointsOfSale"]),
            session_timeout_minutes=record["sessionTimeoutMinutes"],
            default_currency=record["defaultCurrency"],
            context_ids=tuple(record["contextIds"]),
            sites=tuple(sorted(record["sites"].items())),
        )


@dataclass(frozen=True)
class Credentials:
    tenant: Tenant
    api_token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_client_key() -> str:
    return "ck_" + secrets.token_hex(12)


def new_api_token() -> str:
    return "tok_" + secrets.token_urlsafe(32)


def create_tenant(
    conn: Connection, name: str, *, client_key: str | None = None, api_token: str | None = None
) -> Credentials:
    if tenant_store.find_by_name(conn, name) is not None:
        raise ApiError(f"Tenant {name} already exists.", status=409)
    client_key = client_key or new_client_key()
    if tenant_store.find_by_client_key(conn, client_key) is not None:
        raise ApiError(f"Client key {client_key} is taken.", status=409)
    tenant_id = tenant_store.insert_tenant(
        conn,
        {
            "name": name,
            "clientKey": client_key,
            "identityRules": list(DEFAULT_IDENTITY_RULES),
            "pointsOfSale": [],
            "sessionTimeoutMinutes": 20,
            "defaultCurrency": "EUR",
            "createdAt": utcnow(),
            "contextIds": [],
            "sites": {},
        },
    )
    token = api_token or new_api_token()
    tenant_store.insert_token(conn, tenant_id, hash_token(token), "initial", utcnow())
    return Credentials(Tenant(id=tenant_id, name=name, client_key=client_key), token)


def tenant_named(conn: Connection, name: str) -> Tenant:
    record = tenant_store.find_by_name(conn, name)
    if record is None:
        raise ApiError(f"Tenant {name} does not exist.", status=404)
    return Tenant.from_record(record)


def list_tenants(conn: Connection) -> list[Tenant]:
    return [Tenant.from_record(record) for record in tenant_store.list_tenants(conn)]


def create_token(conn: Connection, tenant: Tenant, label: str) -> tuple[int, str]:
    token = new_api_token()
    return tenant_store.insert_token(conn, tenant.id, hash_token(token), label, utcnow()), token


def list_tokens(conn: Connection, tenant: Tenant) -> list[dict[str, Any]]:
    return tenant_store.list_tokens(conn, tenant.id)


def revoke_token(conn: Connection, tenant: Tenant, token_id: int) -> None:
    if not tenant_store.revoke_token(conn, tenant.id, token_id, utcnow()):
        raise ApiError(f"Token {token_id} of tenant {tenant.name} does not exist or is already revoked.", status=404)


def authenticate(conn: Connection, client_key: str, api_token: str) -> Tenant | None:
    """The tenant these credentials open, or None; never says which half was wrong."""
    record = tenant_store.find_by_client_key(conn, client_key)
    presented = hash_token(api_token)
    matched = False
    for stored in tenant_store.active_token_hashes(conn, record["id"]) if record else ():
        matched |= hmac.compare_digest(stored, presented)
    return Tenant.from_record(record) if record and matched else None


MAX_RULES = 20


def identity_rules(conn: Connection, tenant: Tenant) -> tuple[str, ...]:
    """The rules as stored now (the Tenant an API call carries may be a few seconds old), read once per
    transaction: a batch chunk or a group commit resolves many people under the same rules."""
    memo = remembered(conn, "identity_rules")
    if tenant.id not in memo:
        memo[tenant.id] = tuple(tenant_store.find_by_id(conn, tenant.id)["identityRules"])
    rules: tuple[str, ...] = memo[tenant.id]
    return rules


def set_identity_rules(conn: Connection, tenant: Tenant, body: Mapping[str, Any]) -> tuple[str, ...]:
    """Replace the ordered list of identifier providers that identity resolution tries."""
    for key in body:
        if key != "identityRules":
            raise UnsupportedField(key)
    rules = body.get("identityRules")
    if rules is None:
        raise MissingField("identityRules")
    if not isinstance(rules, list) or not 1 <= len(rules) <= MAX_RULES:
        raise InvalidField("identityRules", f"must be a list of 1 to {MAX_RULES} providers")
    for index, provider in enumerate(rules):
        if not isinstance(provider, str) or not provider.strip() or "\x00" in provider or len(provider) > 200:
            raise InvalidField(f"identityRules[{index}]")
    if len(set(rules)) != len(rules):
        raise InvalidField("identityRules", "providers must be unique")
    tenant_store.update_tenant(conn, tenant.id, {"identityRules": rules})
    forget(conn)
    return tuple(rules)


def stream_tenant(conn: Connection, client_key: str | None, context_id: str | None) -> Tenant | None:
    """The tenant a Stream API call names: by client key, else by a context id (the client key is one too)."""
    if client_key:
        record = tenant_store.find_by_client_key(conn, client_key)
        return Tenant.from_record(record) if record else None
    if context_id:
        for record in tenant_store.list_tenants(conn):
            if context_id == record["clientKey"] or context_id in record["contextIds"]:
                return Tenant.from_record(record)
    return None


def configure(
    conn: Connection,
    tenant: Tenant,
    *,
    session_timeout_minutes: int | None = None,
    default_currency: str | None = None,
    points_of_sale: list[str] | None = None,
    context_ids: list[str] | None = None,
    sites: dict[str, str] | None = None,
) -> Tenant:
    """Change the Stream settings of a tenant; what is not given stays."""
    changes: dict[str, Any] = {}
    if session_timeout_minutes is not None:
        if not 1 <= session_timeout_minutes <= 24 * 60:
            raise InvalidField("sessionTimeoutMinutes", "must be between 1 and 1440")
        changes["sessionTimeoutMinutes"] = session_timeout_minutes
    if default_currency is not None:
        if not (len(default_currency) == 3 and default_currency.isalpha()):
            raise InvalidField("defaultCurrency")
        changes["defaultCurrency"] = default_currency.upper()
    if points_of_sale is not None:
        changes["pointsOfSale"] = points_of_sale
    if context_ids is not None:
        changes["contextIds"] = context_ids
    if sites is not None:
        changes["sites"] = sites
    if changes:
        tenant_store.update_tenant(conn, tenant.id, changes)
    return Tenant.from_record(tenant_store.find_by_id(conn, tenant.id))
