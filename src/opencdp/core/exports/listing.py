"""What the outside sees of export runs: executions, the Sitecore-shaped file listings and reports (§4.5),
and the signed, expiring download links of the files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from opencdp.core.batch import links
from opencdp.core.errors import ApiError, NotFound
from opencdp.core.tenants import Tenant
from opencdp.core.values import format_timestamp
from opencdp.store.files import FileStore, chunks, export_prefix
from opencdp.store.rows import Record


def _stamp(value: datetime | None) -> str | None:
    return format_timestamp(value) if value else None


def _path(execution_ref: str, name: str) -> str:
    return f"/files/exports/{execution_ref}/{name}"


def file_url(key: bytes, base: str, execution_ref: str, name: str, expires: int) -> str:
    """A download link signed like the batch links (links.signature), in the query form §4.3 gives."""
    sig = links.signature(key, "GET", _path(execution_ref, name), "", expires)
    return f"{base}/files/exports/{execution_ref}/{quote(name)}?expires={expires}&sig={sig}"


def check_file_link(key: bytes, execution_ref: str, name: str, expires: str, sig: str, now: datetime) -> None:
    """403 for a link that was altered or has expired."""
    links.verify(key, "GET", _path(execution_ref, name), "", expires, sig, now)


def execution(base: str, found: Record, definition: Record, tenant: Tenant) -> dict[str, Any]:
    return {
        "executionRef": found["ref"],
        "href": f"{base}/opencdp/v1/exports/{definition['ref']}/executions/{found['ref']}",
        "definitionRef": definition["ref"],
        "friendlyId": definition["friendlyId"],
        "clientKey": tenant.client_key,
        "executionType": found["executionType"],
        "definitionType": found["definitionType"],
        "status": found["status"],
        "segmentRef": found["segmentRef"],
        "segmentBuildRef": found.get("segmentBuildRef"),
        "datasetDate": found.get("datasetDate"),
        "progress": {"written": found["written"], "total": found["total"]},
        "total": found["total"],
        "successes": found["successes"],
        "failures": found["failures"],
        "successAdd": found["successAdd"],
        "successRemove": found["successRemove"],
        "errors": found["errors"],
        "errorLogs": found["errorLogs"],
        "webhook": found.get("webhook"),
        "createdAt": _stamp(found["createdAt"]),
        "startTime": _stamp(found.get("startTime")),
        "endTime": _stamp(found.get("endTime")),
    }


def files_of(found: Record) -> list[dict[str, Any]]:
    """A successful run's files (404 otherwise), add files first; 410 once retention removed them."""
    if found["status"] != "success":
        raise NotFound(f"Execution {found['ref']} has no files: it is {found['status']}")
    if not found["files"]:
        raise ApiError("The files of this export have expired.", status=410)
    order = {"add": 0, None: 0, "remove": 1}
    return sorted(found["files"], key=lambda f: (order[f.get("deltaAction")], f["name"]))


def file_chunks(store: FileStore, execution_ref: str, name: str) -> Iterator[bytes] | None:
    """One file of a run, chunk by chunk; None when there is no such file (any more)."""
    if "/" in name or name.startswith("."):
        return None
    key = export_prefix(execution_ref) + name
    return None if store.size(key) is None else chunks(store, key)


def delete_files(store: FileStore, execution_ref: str) -> None:
    store.delete_prefix(export_prefix(execution_ref))


def listing(
    key: bytes,
    base: str,
    found: Record,
    definition: Record,
    tenant: Tenant,
    ttl: int,
    now: datetime,
    store: FileStore,
) -> dict[str, Any]:
    """The files of a run with links that expire: presigned by the store itself when it can (a bucket),
    else signed for OpenCDP's own download route."""
    expiry = (now + timedelta(seconds=ttl)).replace(microsecond=0)
    expires = int(expiry.timestamp())
    exports = []
    for file in files_of(found):
        direct = store.download_url(export_prefix(found["ref"]) + file["name"], ttl, file["name"])
        shown = {
            "url": direct or file_url(key, base, found["ref"], file["name"], expires),
            "sizeKB": math.ceil(file["size"] / 1024),
        }
        if file.get("deltaAction"):
            shown["deltaAction"] = file["deltaAction"]
        exports.append(shown)
    return {
        "executionRef": found["ref"],
        "definitionRef": definition["ref"],
        "friendlyId": definition["friendlyId"],
        "clientKey": tenant.client_key,
        "expireAt": format_timestamp(expiry),
        "numberOfFiles": len(exports),
        "totalSizeKB": sum(e["sizeKB"] for e in exports),
        "exports": exports,
    }


def report(found: Record, definition: Record, tenant: Tenant, segment_live: bool) -> dict[str, Any]:
    return {
        "clientKey": tenant.client_key,
        "executionRef": found["ref"],
        "definitionRef": definition["ref"],
        "friendlyId": definition["friendlyId"],
        "executionType": found["executionType"],
        "definitionType": found["definitionType"],
        "status": found["status"].upper(),
        "segmentExecutionType": "LIVE" if segment_live else "ON_DEMAND",
        "total": found["total"],
        "successes": found["successes"],
        "failures": found["failures"],
        "successAdd": found["successAdd"],
        "successRemove": found["successRemove"],
        "filterMatchedGuests": found["total"],
        "filterNotMatchedGuests": 0,
        "filterFailures": 0,
        "programmableErrors": found["errors"],
        "filterErrors": [],
        "errorLogs": found["errorLogs"],
        "datasetDate": found.get("datasetDate"),
        "startTime": _stamp(found.get("startTime")),
        "endTime": _stamp(found.get("endTime")),
    }
