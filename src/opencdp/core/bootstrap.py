"""What `opencdp serve` does to an empty database: a default tenant whose credentials an operator can use."""

from __future__ import annotations

from sqlalchemy import Connection

from opencdp.core import tenants
from opencdp.core.tenants import Tenant
from opencdp.core.values import utcnow
from opencdp.store import tenants as tenant_store

DEFAULT_TENANT = "default"


def ensure_default_tenant(conn: Connection, client_key: str | None, api_token: str | None) -> tuple[Tenant, str | None]:
    """The tenant named `default`, created when absent; its token is returned only when it can still be shown.

    A token given in the environment is made valid for the tenant, so a deployment can pin its credentials.
    """
    if tenant_store.find_by_name(conn, DEFAULT_TENANT) is None:
        credentials = tenants.create_tenant(conn, DEFAULT_TENANT, client_key=client_key, api_token=api_token)
        return credentials.tenant, credentials.api_token
    tenant = tenants.tenant_named(conn, DEFAULT_TENANT)
    if api_token and tenants.authenticate(conn, tenant.client_key, api_token) is None:
        tenant_store.insert_token(conn, tenant.id, tenants.hash_token(api_token), "environment", utcnow())
    return tenant, api_token
