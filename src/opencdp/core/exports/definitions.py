"""Audience export definitions (segments-exports.md §4.1): checked bodies, statuses, schedules, runs."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import Connection

from opencdp.core.errors import Conflict, NotFound
from opencdp.core.exports.records import Shape, csv_cells, csv_columns, csv_line, fetch
from opencdp.core.schedule import cron_problem, explain, next_slot
from opencdp.core.segments import segments
from opencdp.core.segments.builds import tenant_of
from opencdp.core.segments.catalogue import GUEST_GROUPS
from opencdp.core.segments.definition import InvalidDefinition
from opencdp.core.segments.segments import compiler
from opencdp.core.tenants import Tenant
from opencdp.core.values import new_ref
from opencdp.store import exports as export_store
from opencdp.store import extensions as extension_store
from opencdp.store import segments as segment_store
from opencdp.store.exports import EXECUTIONS, EXPORTS
from opencdp.store.rows import Record
from opencdp.store.segments import SEGMENTS

FRIENDLY_ID = re.compile(r"^[a-z0-9_]{3,64}$")
GUEST_FIELDS = ("guestType", "title", "firstName", "lastName", "gender", "dateOfBirth", "email", "emails",
                "phoneNumbers", "language", "nationality", "street", "city", "state", "country", "postCode",
                "firstSeen", "lastSeen", "createdAt", "modifiedAt")  # fmt: skip
ORDER_FIELDS = ("ref", "referenceId", "orderedAt", "status", "channel", "pointOfSale", "price", "currencyCode",
                "paymentType", "cardType", "createdAt", "modifiedAt")  # fmt: skip
ITEM_FIELDS = ("ref", "referenceId", "type", "name", "description", "productId", "vendor", "status", "quantity",
               "price", "currencyCode", "originalPrice", "originalCurrencyCode", "language", "channel",
               "orderedAt")  # fmt: skip
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_FILE_RECORDS = 500_000
BODY = ("friendlyId", "name", "segmentRef", "type", "format", "csv", "output", "schedule", "maxRecordsPerFile",
        "webhook")  # fmt: skip
READ_ONLY = ("ref", "href", "status", "createdAt", "modifiedAt", "lastExecution", "nextRunAt")


@dataclass(frozen=True)
class Policy:
    """What the server allows: Parquet when its library is installed, private webhook hosts when told so.

    `webhook_host_private` is the answer of `private_webhook_host` for the body at hand, looked up before
    the write: a DNS lookup must not run inside a transaction (on SQLite it would hold the one writer).
    """

    parquet: bool
    private_webhooks: bool
    webhook_host_private: bool = False


class _Checker:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def fail(self, path: str, reason: str) -> None:
        self.errors.append((path, reason))

    def keys(self, raw: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.fail(path, "must be an object")
            return {}
        for key in raw:
            if key not in allowed:
                self.fail(path, f"unknown key '{key}'")
        return raw

    def choice(self, raw: Any, path: str, choices: tuple[str, ...], default: str) -> str:
        if raw is None:
            return default
        if raw not in choices:
            self.fail(path, f"value must be one of {', '.join(choices)}")
            return default
        return str(raw)

    def boolean(self, raw: Any, path: str, default: bool) -> bool:
        if raw is None:
            return default
        if not isinstance(raw, bool):
            self.fail(path, "value must be a boolean")
            return default
        return raw

    def integer(self, raw: Any, path: str, low: int, high: int, default: int) -> int:
        if raw is None:
            return default
        if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
            self.fail(path, f"value must be a whole number, {low}..{high}")
            return default
        return raw

    def subset(self, raw: Any, path: str, allowed: tuple[str, ...]) -> list[str]:
        if raw is None:
            return []
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            self.fail(path, "must be an array of strings")
            return []
        for index, value in enumerate(raw):
            if value not in allowed:
                self.fail(f"{path}[{index}]", f"unknown field '{value}'")
        return list(dict.fromkeys(raw))


def friendly_id_from(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:60]
    return slug if len(slug) >= 3 else f"export_{slug}".strip("_")


def check_body(conn: Connection, tenant: Tenant, body: Mapping[str, Any], policy: Policy) -> dict[str, Any]:
    """Every §4.1 field checked, defaults filled; the first error (and up to 20) with its path."""
    check = _Checker()
    check.keys(dict(body), "", BODY + READ_ONLY)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        check.fail("name", "value is required (a string of at most 200 characters)")
    friendly = body.get("friendlyId")
    if friendly is not None and (not isinstance(friendly, str) or not FRIENDLY_ID.match(friendly)):
        check.fail("friendlyId", "must match ^[a-z0-9_]{3,64}$")
    segment_ref = body.get("segmentRef")
    if not isinstance(segment_ref, str) or SEGMENTS.get(conn, tenant.id, segment_ref.lower()) is None:
        check.fail("segmentRef", "unknown segment")
    kind = check.choice(body.get("type"), "type", ("full", "delta"), "full")
    fmt = check.choice(body.get("format"), "format", ("csv", "ndjson", "parquet"), "csv")
    if fmt == "parquet" and not policy.parquet:
        check.fail("format", "Parquet is not supported by this server (install pyarrow)")
    csv = check.keys(body.get("csv") or {}, "csv", ("delimiter", "header", "quoteAll"))
    csv_options = {
        "delimiter": check.choice(csv.get("delimiter"), "csv.delimiter", (",", "|"), ","),
        "header": check.boolean(csv.get("header"), "csv.header", True),
        "quoteAll": check.boolean(csv.get("quoteAll"), "csv.quoteAll", False),
    }
    output = _output(conn, tenant, check, body.get("output") or {})
    schedule = _schedule(check, body.get("schedule") or {"type": "instant"})
    records = check.integer(body.get("maxRecordsPerFile"), "maxRecordsPerFile", 1, MAX_FILE_RECORDS, MAX_FILE_RECORDS)
    webhook = _webhook(check, body.get("webhook"), policy) if body.get("webhook") is not None else None
    if check.errors:
        raise InvalidDefinition([(path.lstrip(".") or "body", reason) for path, reason in check.errors])
    return {
        "name": name,
        "friendlyId": friendly,
        "segmentRef": str(segment_ref).lower(),
        "type": kind,
        "format": fmt,
        "csv": csv_options,
        "output": output,
        "schedule": schedule,
        "maxRecordsPerFile": records,
        "webhook": webhook,
    }


def _output(conn: Connection, tenant: Tenant, check: _Checker, raw: Any) -> dict[str, Any]:
    raw = check.keys(raw, "output", ("guest", "identifiers", "extensions", "orders"))
    guest = check.subset(raw.get("guest"), "output.guest", GUEST_FIELDS)
    providers = raw.get("identifiers") or []
    if not isinstance(providers, list) or not all(isinstance(p, str) and p for p in providers):
        check.fail("output.identifiers", "must be an array of providers")
        providers = []
    known = export_store.known_providers(conn, tenant.id, providers)
    for index, provider in enumerate(providers):
        if provider not in known:
            check.fail(f"output.identifiers[{index}]", f"unknown provider '{provider}'")
    keys = extension_store.all_key_types(conn, tenant.id).get("guest", {})
    extensions = raw.get("extensions") or []
    if not isinstance(extensions, list) or not all(isinstance(e, str) for e in extensions):
        check.fail("output.extensions", "must be an array of group.key")
        extensions = []
    for index, pair in enumerate(extensions):
        group, _, key = pair.partition(".")
        if group not in GUEST_GROUPS or key not in keys:
            check.fail(f"output.extensions[{index}]", f"unknown extension key '{pair}'")
    shown: dict[str, Any] = {"guest": guest, "identifiers": list(dict.fromkeys(providers)),
                             "extensions": list(dict.fromkeys(extensions))}  # fmt: skip
    if raw.get("orders") is not None:
        orders = check.keys(raw["orders"], "output.orders", ("limit", "fields", "itemFields", "extensions"))
        shown["orders"] = {
            "limit": check.integer(orders.get("limit"), "output.orders.limit", 1, 20, 20),
            "fields": check.subset(orders.get("fields"), "output.orders.fields", ORDER_FIELDS),
            "itemFields": check.subset(orders.get("itemFields"), "output.orders.itemFields", ITEM_FIELDS),
            "extensions": check.boolean(orders.get("extensions"), "output.orders.extensions", False),
        }
    return shown


def _schedule(check: _Checker, raw: Any) -> dict[str, Any]:
    """instant, daily and weekly as the spec has them; and `{"type": "cron", "expression": "30 6 * * 1-5"}`,
    OpenCDP's own, for slots the other three cannot say (5 fields, UTC)."""
    raw = check.keys(raw, "schedule", ("type", "time", "day", "expression"))
    kind = check.choice(raw.get("type"), "schedule.type", ("instant", "daily", "weekly", "cron"), "instant")
    if "expression" in raw and kind != "cron":
        check.fail("schedule.expression", f"not allowed for a {kind} schedule")
    if kind == "cron":
        for key in ("time", "day"):
            if key in raw:
                check.fail(f"schedule.{key}", "not allowed for a cron schedule")
        problem = cron_problem(raw.get("expression"))
        if problem is not None:
            check.fail("schedule.expression", problem)
        return {"type": "cron", "expression": raw.get("expression")}
    if kind == "instant":
        for key in ("time", "day"):
            if key in raw:
                check.fail(f"schedule.{key}", "not allowed for an instant schedule")
        return {"type": "instant"}
    at = raw.get("time", "01:00")
    if not isinstance(at, str) or not TIME.match(at):
        check.fail("schedule.time", "must be HH:MM (UTC)")
    if kind == "daily":
        if "day" in raw:
            check.fail("schedule.day", "not allowed for a daily schedule")
        return {"type": "daily", "time": at}
    day = check.choice(raw.get("day"), "schedule.day", DAYS, "monday")
    return {"type": "weekly", "day": day, "time": at}


def _webhook(check: _Checker, raw: Any, policy: Policy) -> dict[str, Any] | None:
    raw = check.keys(raw, "webhook", ("url", "secret"))
    url, secret = raw.get("url"), raw.get("secret")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        check.fail("webhook.url", "must be an http(s) URL")
        return None
    if secret is not None and (not isinstance(secret, str) or not secret):
        check.fail("webhook.secret", "must be a non-empty string")
    if not policy.private_webhooks and policy.webhook_host_private:
        check.fail("webhook.url", "host resolves to a loopback, link-local or private address")
    return {"url": url, "secret": secret}


def private_webhook_host(body: Mapping[str, Any]) -> bool:
    """Whether the body's webhook host resolves to a loopback, link-local or private address (or to
    nothing). It resolves DNS: call it before opening a transaction."""
    webhook = body.get("webhook")
    url = webhook.get("url") if isinstance(webhook, dict) else None
    host = urlsplit(url).hostname if isinstance(url, str) else None
    return bool(host) and _private(str(host))


def _private(host: str) -> bool:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return True
    for address in addresses:
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
        if ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_unspecified or ip.is_reserved:
            return True
    return False


def schedule_cron(schedule: Mapping[str, Any]) -> str | None:
    """A daily, weekly or cron schedule as the cron expression of its slots; None for instant."""
    if schedule["type"] == "instant":
        return None
    if schedule["type"] == "cron":
        return str(schedule["expression"])
    hour, minute = (int(part) for part in schedule["time"].split(":"))
    day = "*" if schedule["type"] == "daily" else str((DAYS.index(schedule["day"]) + 1) % 7)
    return f"{minute} {hour} * * {day}"


def describe_schedule(schedule: Mapping[str, Any], now: datetime) -> str:
    """A schedule in plain words with its next slots, for a person choosing one ("Every Monday at 06:00
    UTC: next on Monday 2026-12-14 at 06:00, then 2026-12-21"). A scheduled export runs at these slots
    once started; until then, and for `instant`, it runs only when asked. A schedule the checks refuse
    (a time such as 25:00) is described as nothing: saving it says why."""
    check = _Checker()
    schedule = _schedule(check, dict(schedule))  # the same checks a saved definition passes
    if check.errors:
        return ""
    cron = schedule_cron(schedule)
    if cron is None:
        return "Only when asked (Run now, or POST .../run)."
    if schedule["type"] == "weekly":
        when = f"Every {schedule['day'].capitalize()}"
    else:
        when = explain(cron) if schedule["type"] == "cron" else "Every day"
    first = next_slot(cron, now)
    then = next_slot(cron, first)
    at = "" if schedule["type"] == "cron" else f" at {schedule['time']}"
    return f"{when}{at} UTC, once started: next {first:%A %Y-%m-%d %H:%M}, then {then:%Y-%m-%d %H:%M}."


def require(conn: Connection, tenant: Tenant, ident: str) -> Record:
    """An export by ref or friendlyId; another tenant's is simply not found."""
    found = export_store.find_definition(conn, tenant.id, ident)
    if found is None:
        raise NotFound(f"Audience export {ident} for client key {tenant.client_key} was not found")
    return found


def create(conn: Connection, tenant: Tenant, body: Mapping[str, Any], policy: Policy, now: datetime) -> Record:
    values = check_body(conn, tenant, body, policy)
    values["friendlyId"] = _free_friendly_id(conn, tenant, values["friendlyId"], values["name"])
    record = {**values, "ref": new_ref(), "tenantId": tenant.id, "status": "draft", "nextRunAt": None,
              "baselineRef": None, "createdAt": now, "modifiedAt": now}  # fmt: skip
    EXPORTS.insert(conn, record)
    return record


def _free_friendly_id(conn: Connection, tenant: Tenant, given: str | None, name: str, own: str | None = None) -> str:
    if given is not None:
        holder = export_store.find_definition(conn, tenant.id, given)
        if holder is not None and holder["ref"] != own:
            raise Conflict(f"friendlyId {given} is already used by another audience export.")
        return given
    base = friendly_id_from(name)
    candidate, n = base, 1
    while (holder := export_store.find_definition(conn, tenant.id, candidate)) is not None and holder["ref"] != own:
        n += 1
        candidate = f"{base[:60]}_{n}"
    return candidate


def replace(
    conn: Connection, tenant: Tenant, ident: str, body: Mapping[str, Any], policy: Policy, now: datetime
) -> Record:
    """PUT: not while scheduled; a new segment or type starts the delta baseline afresh."""
    current = require(conn, tenant, ident)
    if _scheduled(current):
        raise Conflict("A scheduled audience export cannot be changed; pause it first.")
    values = check_body(conn, tenant, body, policy)
    values["friendlyId"] = _free_friendly_id(conn, tenant, values["friendlyId"] or current["friendlyId"],
                                             values["name"], current["ref"])  # fmt: skip
    if values["webhook"] and values["webhook"]["secret"] is None and current.get("webhook"):
        values["webhook"]["secret"] = current["webhook"].get("secret")
    if (values["segmentRef"], values["type"]) != (current["segmentRef"], current["type"]):
        values["baselineRef"] = None
    return EXPORTS.modify(conn, current, values, now)


def actions(definition: Mapping[str, Any]) -> tuple[str, ...]:
    """What an export can be asked to do as it stands: run, always; start, when it has a daily or weekly
    schedule and is not scheduled yet; pause and nothing else of its definition, while scheduled. The
    console shows only these."""
    scheduled = _scheduled(definition)
    startable = not scheduled and schedule_cron(definition["schedule"]) is not None
    steps = (("run", True), ("start", startable), ("pause", scheduled), ("delete", not scheduled))
    return tuple(step for step, applies in steps if applies)


def _scheduled(definition: Mapping[str, Any]) -> bool:
    return bool(definition["status"] == "scheduled")


def delete(conn: Connection, tenant: Tenant, ident: str) -> Record:
    current = require(conn, tenant, ident)
    if _scheduled(current):
        raise Conflict("A scheduled audience export cannot be deleted; pause it first.")
    EXPORTS.delete(conn, tenant.id, current["ref"])
    return current


def start(conn: Connection, tenant: Tenant, ident: str, now: datetime) -> Record:
    current = require(conn, tenant, ident)
    cron = schedule_cron(current["schedule"])
    if cron is None:
        raise Conflict("An export with an instant schedule cannot be started; run it instead.")
    if _scheduled(current):
        raise Conflict("The audience export is already scheduled.")
    return EXPORTS.modify(conn, current, {"status": "scheduled", "nextRunAt": next_slot(cron, now)}, now)


def pause(conn: Connection, tenant: Tenant, ident: str, now: datetime) -> Record:
    current = require(conn, tenant, ident)
    if not _scheduled(current):
        raise Conflict(f"A {current['status']} audience export cannot be paused.")
    return EXPORTS.modify(conn, current, {"status": "paused", "nextRunAt": None}, now)


def run(conn: Connection, tenant: Tenant, ident: str, build_segment: bool, scheduled: bool, now: datetime) -> Record:
    """Queue a run (or answer the one pending or running); it builds the segment first when asked or never built."""
    definition = require(conn, tenant, ident)
    active = export_store.active_execution(conn, definition["ref"])
    if active is not None:
        return active
    build_ref = None
    if build_segment or segment_store.latest_success(conn, definition["segmentRef"]) is None:
        build_ref = segments.request_build(conn, tenant, definition["segmentRef"], "export", now)["ref"]
    execution = {
        "ref": new_ref(), "tenantId": tenant.id, "definitionRef": definition["ref"],
        "executionType": "SCHEDULED" if scheduled else "INSTANT_RUN",
        "definitionType": "DELTA" if definition["type"] == "delta" else "FULL_SYNC", "status": "pending",
        "buildSegment": build_segment, "segmentRef": definition["segmentRef"], "segmentBuildRef": build_ref,
        "errors": [], "errorLogs": [], "files": [], "createdAt": now,
    }  # fmt: skip
    EXECUTIONS.insert(conn, execution)
    return export_store.get_execution(conn, tenant.id, execution["ref"]) or execution


def queue_scheduled(conn: Connection, now: datetime) -> int:
    """One run per slot of every scheduled export that is due, however many workers ask."""
    queued = 0
    for definition in export_store.due_definitions(conn, now):
        tenant = tenant_of(conn, definition["tenantId"])
        run(conn, tenant, definition["ref"], False, True, now)
        cron = schedule_cron(definition["schedule"])
        export_store.set_next_run(conn, definition["ref"], next_slot(cron, now) if cron else None)
        queued += 1
    return queued


@dataclass(frozen=True)
class Preview:
    """The first records of an export: as its file would hold them, and as a table (the CSV's columns and
    cells, whatever the format) for a person to read."""

    text: str
    columns: list[str]
    rows: list[list[Any]]


def preview(conn: Connection, tenant: Tenant, ident: str, limit: int, as_of: datetime) -> Preview:
    """The first records as a run would write them, for members as the segment's definition finds them now."""
    definition = require(conn, tenant, ident)
    segment = segments.require(conn, tenant, definition["segmentRef"])
    parsed = segments.check_definition(conn, tenant, segment["definition"])
    query = compiler(conn, tenant, as_of).members(parsed)
    refs = list(conn.execute(query.order_by(query.selected_columns[0]).limit(limit)).scalars())
    shape = Shape.of(definition["output"])
    found = fetch(conn, tenant.id, refs, shape)
    records = [found[ref] for ref in refs if ref in found]
    table = [csv_cells(record, shape) for record in records]
    return Preview(_file_text(definition, shape, records, table), csv_columns(shape), table)


def _file_text(definition: Record, shape: Shape, records: list[Record], table: list[list[Any]]) -> str:
    if definition["format"] != "csv":
        return "".join(orjson.dumps(record).decode() + "\n" for record in records)
    csv = definition["csv"]
    lines = [csv_line(cells, csv["delimiter"], csv["quoteAll"]) for cells in table]
    if csv["header"]:
        lines.insert(0, csv_line(csv_columns(shape), csv["delimiter"], csv["quoteAll"]))
    return b"".join(lines).decode()
