"""One event, from the wire to its effects (stream-api.md §2–§4).

An event is accepted by the checks that decide its answer and one append to the journal (`accept`);
its effects are applied later, in order, by the journal's applier (`apply`, core/stream/journal.py):
it joins its session, acts on identity, cart or orders, and is stored. The checks are the same
function both times, so what was accepted is what is applied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from opencdp.core import extensions
from opencdp.core.errors import ApiError, InvalidField, MissingField
from opencdp.core.stream import browsers, carts, identify, parsing, sessions
from opencdp.core.stream.working import WorkingSet
from opencdp.core.tenants import Tenant
from opencdp.core.values import new_ref
from opencdp.store.database import Memory
from opencdp.store.rows import Record

COMMON = frozenset(
    {"type", "browser_id", "channel", "pos", "currency", "language", "page", "client_key", "requested_at", "ext"}
)


def point_of_sale(body: Mapping[str, Any], tenant: Tenant, site_id: str | None, browser: Record) -> str:
    """The first non-empty of `pos`, `pointOfSale`, the site's mapped point of sale, the site id, the
    browser's previous one (§1.2)."""
    pos = parsing.text(body.get("pos"), "pos", limit=255)
    top = body.get("pointOfSale")
    if not pos and isinstance(top, str) and top:
        pos = parsing.text(top, "pointOfSale", limit=255)
    if not pos and site_id:
        pos = tenant.point_of_sale_of_site(site_id) or site_id
    return pos or browser.get("pointOfSale") or ""


def _ext_owner(kind: str) -> str:
    """Key types are fixed per event type; long custom names are folded to fit the owner column."""
    owner = f"event:{kind}"
    return owner if len(owner) <= 32 else "event#" + hashlib.sha256(kind.encode()).hexdigest()[:26]


@dataclass(frozen=True)
class Checked:
    """An event that passed every check that decides its answer, with what the checks parsed."""

    kind: str
    payload: dict[str, Any]
    context: dict[str, Any]
    page: str | None
    requested_at: datetime | None
    ext: dict[str, Any]
    pos_unknown: bool


def check(
    conn: Connection | Memory, tenant: Tenant, body: Mapping[str, Any], site_id: str | None, browser: Record
) -> Checked:
    """Every check of §2–§3 that decides the answer, in the spec's order. Defaults come from the browser
    as it stands; an extension key's type is claimed by the first event that sends it. Without a
    connection (the database's `Memory`), they are decided from what this process remembers, or raise
    `NeedsDatabase`."""
    kind = parsing.event_type(body.get("type"))
    payload = _validate(kind, body)
    context = {
        "channel": parsing.channel(body.get("channel")) or browser.get("channel") or "WEB",
        "pos": point_of_sale(body, tenant, site_id, browser),
        "currency": parsing.currency(body.get("currency")) or browser.get("currency") or tenant.default_currency,
        "language": parsing.language(body.get("language")),
    }
    page = body.get("page")
    if page is not None and not isinstance(page, str):
        raise InvalidField("page")
    requested_at = parsing.timestamp(body.get("requested_at"), "requested_at")
    ext = parsing.ext(body.get("ext"))
    try:
        extensions.check_types(conn, tenant, _ext_owner(kind), ext)
    except extensions.IncorrectType as error:
        raise ApiError(f"ext.{error.key}: Incorrect data type", error.developer_message) from None
    pos_unknown = bool(tenant.points_of_sale) and context["pos"] not in tenant.points_of_sale
    return Checked(kind, payload, context, page, requested_at, ext, pos_unknown)


def accept(
    conn: Connection | Memory, tenant: Tenant, body: Mapping[str, Any], site_id: str | None, now: datetime
) -> Record:
    """Check an event: the journal entry to append, whose ref is the event's. Its effects are applied
    later, in the order entries were appended (`apply`). Whether the browser exists is the only thing about
    it the answer needs (its remembered context only fills in defaults when the event is applied).

    Given the database's `Memory` instead of a connection, the checks are decided from what this process
    remembers (browsers and key types are only ever added), or raise `NeedsDatabase`: the caller then
    checks again with a connection."""
    parsing.event_type(body.get("type"))
    browser_id = body.get("browser_id")
    if not isinstance(browser_id, str) or not browser_id:
        raise MissingField("browser_id")
    browser_ref = browsers.known_ref(conn, tenant, browser_id)
    check(conn, tenant, body, site_id, {"ref": browser_ref})
    return {"tenantId": tenant.id, "eventRef": new_ref(), "browserRef": browser_ref, "receivedAt": now,
            "siteId": site_id, "body": dict(body)}  # fmt: skip


def apply(working: WorkingSet, entry: Record) -> str:
    """A journal entry's effects, as of when it was accepted: it joins its session, acts on identity, cart
    or orders, and is stored as the event the timeline reads. The applier holds the tenant's journal
    lock, so a browser's events apply one at a time, in order, against the batch's working set.
    Returns the guest the event was seen on; the applier writes when guests were seen once per batch."""
    tenant, body, now = working.tenant, entry["body"], entry["receivedAt"]
    browser = working.browser(entry["browserRef"])
    checked = check(working.conn, tenant, body, entry["siteId"], browser)
    kind, payload, context, pos_unknown = checked.kind, checked.payload, checked.context, checked.pos_unknown

    guest_ref = working.guest_ref(browser)
    if kind == "IDENTITY" and not pos_unknown:
        conn = working.through_database(browser, may_switch=True)
        guest_ref = identify.identify(conn, tenant, browser, payload["person"], context["channel"], now)
    session = sessions.session_for(working, browser, guest_ref, context["channel"], context["pos"], now)
    cart = session["cart"]
    event = {**context, **payload}
    result, order_ref = _apply(working, browser, kind, payload, cart, guest_ref, event, now, pos_unknown)

    working.add_event(
        {
            "ref": entry["eventRef"],
            "tenantId": tenant.id,
            "guestRef": guest_ref,
            "browserRef": browser["ref"],
            "sessionRef": session["ref"],
            "type": kind,
            "channel": context["channel"],
            "pointOfSale": context["pos"],
            "posUnknown": pos_unknown,
            "currency": context["currency"],
            "language": context["language"],
            "page": checked.page or "",
            "createdAt": now,
            "requestedAt": checked.requested_at,
            "ext": checked.ext or None,
            "data": {k: v for k, v in body.items() if k not in COMMON},
            "result": result,
            "orderRef": order_ref,
        }
    )
    joined = {"cart": cart, "lastEventAt": now, "eventCount": session["eventCount"] + 1}
    session = working.update_session(session, joined)
    if kind == "FORCE_CLOSE":
        working.update_session(session, sessions.closing(session, sessions.FORCE_CLOSE, now))
    remembered = {"channel": context["channel"], "currency": context["currency"], "pointOfSale": context["pos"]}
    if any(browser.get(name) != value for name, value in remembered.items()):
        working.update_browser(browser, remembered)
    return guest_ref


def _validate(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The type's own fields (§3.2–§3.3), checked before anything is written."""
    if kind == "IDENTITY":
        ids = body.get("identifiers")
        if not ids:
            raise MissingField("identifiers")
        return {"person": parsing.person(body, "")}
    if kind == "ADD":
        return {"line": parsing.product(body.get("product"))}
    if kind == "ADD_CONTACTS":
        people = parsing.one_or_many(body.get("contact"), "contact")
        if not people:
            people = [body]
        first = people[0]
        if not isinstance(first, dict) or not any(
            first.get(k) for k in ("identifiers", "email", "firstname", "lastname", "firstName", "lastName")
        ):
            raise MissingField("contact")
        return {"contact": parsing.person(first, "contact[0]")}
    if kind == "ADD_CONSUMERS":
        consumers = parsing.one_or_many(body.get("consumer"), "consumer")
        if not consumers:
            raise MissingField("consumer")
        parsed = []
        for index, raw in enumerate(consumers):
            path = f"consumer[{index}]"
            person = parsing.person(raw, path)
            for name, alias in (("firstName", "firstname"), ("lastName", "lastname")):
                if name not in person:
                    raise MissingField(f"{path}.{alias}")
            item_ids = parsing.one_or_many(raw.get("item_id"), f"{path}.item_id")
            if not all(isinstance(i, str) for i in item_ids):
                raise InvalidField(f"{path}.item_id")
            parsed.append({**person, "item_ids": item_ids})
        return {"consumers": parsed}
    if kind == "CONFIRM":
        products = parsing.one_or_many(body.get("product"), "product")
        if not products:
            raise MissingField("product")
        ids = []
        for index, raw in enumerate(products):
            if not isinstance(raw, dict):
                raise InvalidField(f"product[{index}]")
            ids.append(parsing.text(raw.get("item_id"), f"product[{index}].item_id", required=True))
        return {"item_ids": ids}
    if kind == "CHECKOUT":
        reference = parsing.text(body.get("reference_id"), "reference_id", required=True)
        return {"reference_id": reference, "status": parsing.order_status(body.get("status"), "status")}
    if kind == "PAYMENT":
        return {"pay_type": parsing.text(body.get("pay_type"), "pay_type", required=True)}
    if kind == "ORDER_CHECKOUT":
        return {"order": carts.parse_order(body.get("order"))}
    return {}


def _apply(
    working: WorkingSet,
    browser: Record,
    kind: str,
    payload: Mapping[str, Any],
    cart: carts.Cart,
    guest_ref: str,
    event: Mapping[str, Any],
    now: datetime,
    pos_unknown: bool,
) -> tuple[str | None, str | None]:
    """What the event does to its cart: in memory, or through the database for a payment and checkouts."""
    if kind in ("CHECKOUT", "ORDER_CHECKOUT") and pos_unknown:
        return "UNKNOWN_POS", None
    if pos_unknown:
        return None, None
    tenant = working.tenant
    if kind == "ADD":
        carts.add(cart, {**payload["line"], "currency": payload["line"].get("currency") or event["currency"],
                         "orderedAt": payload["line"].get("orderedAt") or now.isoformat()})  # fmt: skip
    elif kind == "ADD_CONTACTS":
        cart["contact"] = payload["contact"]
    elif kind == "ADD_CONSUMERS":
        cart["consumers"] = payload["consumers"]
    elif kind == "CONFIRM":
        carts.confirm(cart, payload["item_ids"])
    elif kind == "CLEAR_CART":
        carts.clear(cart)
    elif kind == "PAYMENT":
        carts.payment(working.through_database(browser), tenant, cart, payload["pay_type"], now)
    elif kind == "CHECKOUT":
        return carts.checkout(working.through_database(browser), tenant, cart, guest_ref, event, now)
    elif kind == "ORDER_CHECKOUT":
        result, order_ref = carts.order_checkout(working.through_database(browser), tenant, guest_ref, payload["order"],
                                                 event, now)  # fmt: skip
        if result in (carts.CREATED, carts.MATCHED):
            cart["converted"] = True
        return result, order_ref
    return None, None
