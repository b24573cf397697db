"""A believable tenant for `opencdp demo-data tenant`: two years of customers and their orders, and
today's browsing sessions, generated here and loaded by the CLI through the public APIs only, so what
a user then sees in the console, the segments and the exports is what the product does with such data.

Everything is drawn from one seeded generator and dated back from `today`: the same seed and day give
the same tenant.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opencdp.demo import AIRPORTS, FIRST, LAST, PRODUCTS, STORES

HISTORY_DAYS = 730
# country, cities, currency, language, share of customers
COUNTRIES = [
    ("IE", ("Dublin", "Cork", "Galway"), "EUR", "EN", 20),
    ("GB", ("London", "Manchester", "Leeds"), "GBP", "EN", 25),
    ("DE", ("Berlin", "Munich", "Hamburg"), "EUR", "DE", 15),
    ("FR", ("Paris", "Lyon"), "EUR", "FR", 12),
    ("ES", ("Madrid", "Valencia"), "EUR", "ES", 8),
    ("US", ("New York", "Chicago", "Austin"), "USD", "EN", 20),
]
STATUSES = [("PURCHASED", 80), ("CANCELLED", 5), ("REFUNDED", 4), ("PARTIALY_REFUNDED", 2), ("CONFIRMED", 9)]
CHANNELS = [("WEB", 55), ("MOBILE_APP", 25), ("CALL_CENTER", 10), ("BRANCH", 10)]
PAGES = ("home", "search", "category/shoes", "category/books", "product", "offers", "help")


def _pick(rng: random.Random, weighted: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    return rng.choices(weighted, weights=[row[-1] for row in weighted])[0]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Customer:
    email: str
    first: str
    last: str
    country: str
    city: str
    currency: str
    language: str
    orders: list[datetime] = field(default_factory=list)


@dataclass
class Tenant:
    """What `generate` made: the batch records (guests first, then orders) and the customers, whom the
    browsing sessions of today sign in as."""

    records: list[dict[str, Any]]
    customers: list[Customer]
    run: str

    @property
    def orders(self) -> int:
        return sum(1 for record in self.records if record["schema"] == "order")


def _order_times(rng: random.Random, today: datetime) -> list[datetime]:
    """A long tail: most customers order once, some a few times, a few dozens of times; each after a gap
    drawn around the customer's own pace, from a first order somewhere in the last two years."""
    count = min(40, int(rng.paretovariate(1.3)))
    first = today - timedelta(days=rng.uniform(1, HISTORY_DAYS))
    pace = rng.uniform(10, 120)
    times = [first]
    while len(times) < count:
        following = times[-1] + timedelta(days=rng.expovariate(1 / pace), minutes=rng.randrange(600))
        if following >= today:
            break
        times.append(following)
    return times


def generate(today: datetime, customers: int = 1000, seed: int = 7) -> Tenant:
    rng = random.Random(seed)
    run = uuid.UUID(int=rng.getrandbits(128)).hex[:6]
    people: list[Customer] = []
    for index in range(customers):
        country, cities, currency, language, _ = _pick(rng, COUNTRIES)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}.{run}{index}@example.com"
        person = Customer(email, first, last, country, rng.choice(cities), currency, language)
        person.orders = _order_times(rng, today)
        people.append(person)
    records = [_guest_record(rng, person, today) for person in people]
    orders = sorted(((moment, person) for person in people for moment in person.orders), key=lambda pair: pair[0])
    for number, (moment, person) in enumerate(orders, start=1):
        records.append(_order_record(rng, person, moment, today, f"SHOP-{run.upper()}-{number:06d}"))
    return Tenant(records, people, run)


def _record(schema: str, mode: str, value: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    return {"ref": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "schema": schema, "mode": mode, "value": value}


def _guest_record(rng: random.Random, person: Customer, today: datetime) -> dict[str, Any]:
    """The customer as the CRM knows them: where they live, their language, their loyalty tier (by how
    often they order), and when a channel last saw them."""
    tier = "gold" if len(person.orders) >= 8 else "silver" if len(person.orders) >= 3 else "bronze"
    seen = person.orders[-1] + timedelta(days=rng.uniform(0, 30))
    value = {
        "email": person.email,
        "firstName": person.first,
        "lastName": person.last,
        "gender": rng.choice(["female", "male", "unknown"]),
        "country": person.country,
        "city": person.city,
        "language": person.language,
        "firstSeen": _stamp(person.orders[0] - timedelta(days=rng.uniform(0, 60))),
        "lastSeen": _stamp(min(seen, today)),
        "extensions": [{"name": "ext1", "key": "default", "loyaltyTier": tier, "newsletter": rng.random() < 0.4}],
    }
    return _record("guest", "upsert", value, rng)


def _order_record(
    rng: random.Random, person: Customer, moment: datetime, today: datetime, reference: str
) -> dict[str, Any]:
    """A retail order or, one time in six, a flight booked for the customer and maybe a companion. Orders
    of the last few days may still be only confirmed; older ones are mostly purchased."""
    status = _pick(rng, STATUSES)[0]
    if status == "CONFIRMED" and today - moment > timedelta(days=10):
        status = "PURCHASED"
    flight = rng.random() < 1 / 6
    items = _flight(rng, reference, moment, person.currency) if flight else _retail(rng, reference, person.currency)
    value: dict[str, Any] = {
        "referenceId": reference,
        "orderedAt": _stamp(moment),
        "channel": _pick(rng, CHANNELS)[0],
        "pointOfSale": f"shop.example.{person.country.lower()}",
        "status": status,
        "currencyCode": person.currency,
        "price": round(sum(item["price"] * item.get("quantity", 1) for item in items), 2),
        "paymentType": rng.choice(["Card", "Card", "Card", "PayPal", "Voucher"]),
        "cardType": rng.choice(["Visa", "Mastercard", "Amex"]),
        "contact": {"email": person.email, "firstName": person.first, "lastName": person.last},
        "orderItems": items,
        "extensions": [
            {"name": "ext", "key": "default", "storeLocation": rng.choice(STORES), "giftWrap": rng.random() < 0.15}
        ],
    }
    if flight:
        value["consumers"] = [{"firstName": person.first, "lastName": person.last, "email": person.email}]
        if rng.random() < 0.4:
            companion = f"{rng.choice(FIRST)}"
            value["consumers"].append({"firstName": companion, "lastName": person.last,
                                       "email": f"{companion.lower()}.{person.email}"})  # fmt: skip
    return _record("order", "upsert", value, rng)


def _retail(rng: random.Random, reference: str, currency: str) -> list[dict[str, Any]]:
    items = []
    for position in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
        kind, name, price = rng.choice(PRODUCTS)
        items.append({
            "referenceId": f"{reference}-{position + 1}", "type": kind, "productId": f"{kind[:2]}-{rng.randrange(60)}",
            "name": name, "description": f"{name}, demo", "vendor": "Demo Ltd",
            "price": round(price * rng.uniform(0.8, 1.3), 2), "currencyCode": currency, "status": "PURCHASED",
            "quantity": rng.choice([1, 1, 1, 2]),
        })  # fmt: skip
    return items


def _flight(rng: random.Random, reference: str, moment: datetime, currency: str) -> list[dict[str, Any]]:
    origin, destination = rng.sample(AIRPORTS, 2)
    departs = moment + timedelta(days=rng.randrange(3, 90), hours=rng.randrange(6, 21))
    arrives = departs + timedelta(minutes=rng.randrange(60, 600))
    local = "%Y-%m-%dT%H:%M"  # flight times are local, as airlines write them
    segment = {"id": "1", "origin": origin, "destination": destination, "departureDateTime": departs.strftime(local),
               "arrivalDateTime": arrives.strftime(local), "flightNumber": f"DA{rng.randrange(100, 999)}",
               "carrier": "DA", "fareClass": rng.choice("YMB")}  # fmt: skip
    return [
        {"referenceId": f"{reference}-1", "type": "FLIGHT", "productId": f"{origin}-{destination}",
         "name": f"{origin}-{destination}", "description": "Economy", "vendor": "Demo Air",
         "price": round(rng.uniform(49, 399), 2), "currencyCode": currency, "status": "CONFIRMED",
         "flightSegments": [segment]},
        {"referenceId": f"{reference}-2", "type": "BAG", "productId": "BAG-20", "name": "Checked bag",
         "description": "20 kg", "vendor": "Demo Air", "price": 25.0, "currencyCode": currency, "status": "CONFIRMED"},
    ]  # fmt: skip


@dataclass(frozen=True)
class Visit:
    """One browsing session of today: its events in order; `email` set when the shopper signs in."""

    email: str | None
    events: list[dict[str, Any]]
    outcome: str  # "browsed", "abandoned" or "bought"


def visits(tenant: Tenant, count: int, token: str, seed: int = 7) -> Iterator[Visit]:
    """Today's sessions: anonymous visitors who only look, and known customers who sign in, fill a cart,
    and either buy (a CHECKOUT the Stream API turns into an order) or leave it (a FORCE_CLOSE with
    items in the cart: an abandoned cart). `token` makes this run's order references its own: events,
    unlike batch records, are not recognised when sent again."""
    rng = random.Random(seed + 1)
    for number in range(count):
        person = rng.choice(tenant.customers) if rng.random() < 0.7 else None
        pages = rng.sample(PAGES, rng.randrange(1, 5))
        events: list[dict[str, Any]] = [{"type": "VIEW", "page": page} for page in pages]
        if person is None:
            yield Visit(None, events, "browsed")
            continue
        events.append({"type": "IDENTITY", "identifiers": [{"provider": "email", "id": person.email}],
                       "firstname": person.first, "lastname": person.last})  # fmt: skip
        lines = []
        for position in range(rng.randrange(1, 4)):
            kind, name, price = rng.choice(PRODUCTS)
            lines.append({"item_id": f"SKU_{position + 1}", "type": kind, "name": name, "price": price, "quantity": 1})
        events += [{"type": "ADD", "currency": person.currency, "product": line} for line in lines]
        if rng.random() < 0.5:
            events += [
                {"type": "ADD_CONTACTS", "contact": [{"email": person.email, "firstname": person.first,
                                                      "lastname": person.last}]},
                {"type": "CONFIRM", "product": [{"item_id": line["item_id"]} for line in lines]},
                {"type": "CHECKOUT", "reference_id": f"WEB-{token}-{number:05d}", "status": "PURCHASED"},
            ]  # fmt: skip
            yield Visit(person.email, events, "bought")
        else:
            events.append({"type": "FORCE_CLOSE"})
            yield Visit(person.email, events, "abandoned")
