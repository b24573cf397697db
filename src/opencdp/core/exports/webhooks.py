"""The completion webhook of an export run (segments-exports.md §4.6): signed POST, retried, outcome stored."""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson

from opencdp.core.segments.builds import tenant_of
from opencdp.core.values import format_timestamp, utcnow
from opencdp.store import exports as export_store
from opencdp.store.database import Database
from opencdp.store.exports import EXPORTS
from opencdp.store.rows import Record
from opencdp.store.segments import SEGMENTS

log = logging.getLogger("opencdp.webhooks")
RETRIES = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))
TIMEOUT_SECONDS = 10.0


def body(base: str, execution: Record, definition: Record, segment: Record | None, client_key: str) -> dict[str, Any]:
    def stamp(value: datetime | None) -> str | None:
        return format_timestamp(value) if value else None

    return {
        "event": "audienceExport.finished",
        "apiUrl": f"{base}/v2/audienceExports/executions/{execution['ref']}/export",
        "audienceExportName": definition["name"],
        "clientKey": client_key,
        "definitionRef": definition["ref"],
        "definitionType": execution["definitionType"],
        "executionRef": execution["ref"],
        "executionType": execution["executionType"],
        "friendlyId": definition["friendlyId"],
        "segmentName": segment["name"] if segment else None,
        "segmentRef": execution["segmentRef"],
        "status": execution["status"].upper(),
        "total": execution["total"],
        "successes": execution["successes"],
        "failures": execution["failures"],
        "successAdd": execution["successAdd"],
        "successRemove": execution["successRemove"],
        "startTime": stamp(execution.get("startTime")),
        "endTime": stamp(execution.get("endTime")),
    }


def signature(secret: str | None, payload: bytes) -> str:
    return "sha256=" + hmac.new((secret or "").encode(), payload, hashlib.sha256).hexdigest()


class Webhooks:
    def __init__(self, db: Database, base_url: str, transport: httpx.BaseTransport | None = None) -> None:
        self.db, self.base_url = db, base_url.rstrip("/")
        self.client = httpx.Client(timeout=TIMEOUT_SECONDS, transport=transport, follow_redirects=False)

    def deliver_due(self) -> int:
        """Send every webhook that is due; each attempt and its outcome is stored on the execution."""
        sent = 0
        while True:
            with self.db.write() as conn:
                due = export_store.due_webhooks(conn, utcnow())
                if not due:
                    return sent
                # taken off the queue before sending: a crash loses at most one attempt, never sends twice at once
                for execution in due:
                    export_store.update_execution(conn, execution["ref"], {"webhookDue": None})
                work = [self._prepare(conn, execution) for execution in due]
            for execution, definition, payload in work:
                self._send(execution, definition, payload)
                sent += 1

    def _prepare(self, conn: Any, execution: Record) -> tuple[Record, Record, bytes]:
        definition = EXPORTS.get(conn, execution["tenantId"], execution["definitionRef"])
        assert definition is not None
        segment = SEGMENTS.get(conn, execution["tenantId"], execution["segmentRef"])
        tenant = tenant_of(conn, execution["tenantId"])
        payload = body(self.base_url, execution, definition, segment, tenant.client_key)
        return execution, definition, orjson.dumps(payload)

    def _send(self, execution: Record, definition: Record, payload: bytes) -> None:
        hook = definition.get("webhook") or {}
        state = dict(execution.get("webhook") or {"attempts": 0})
        state["attempts"] = state.get("attempts", 0) + 1
        headers = {"Content-Type": "application/json", "X-OpenCDP-Signature": signature(hook.get("secret"), payload)}
        try:
            response = self.client.post(hook["url"], content=payload, headers=headers)
            state["responseCode"] = response.status_code
            delivered = 200 <= response.status_code < 300
        except httpx.HTTPError as error:
            log.info("webhook of %s failed: %s", execution["ref"], error)
            state["responseCode"] = None
            delivered = False
        retry = None if delivered or state["attempts"] > len(RETRIES) else utcnow() + RETRIES[state["attempts"] - 1]
        state["status"] = "delivered" if delivered else "retrying" if retry else "failed"
        with self.db.write() as conn:
            export_store.update_execution(conn, execution["ref"], {"webhook": state, "webhookDue": retry})
