"""Realistic demo data: gzipped NDJSON batch files of retail and flight orders, with a chosen share of bad lines.

Used by the README, the tests and the benchmarks; the same seed always gives the same file.
"""

from __future__ import annotations

import gzip
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

FIRST = ["Ann", "Bob", "Chen", "Dara", "Eve", "Femi", "Gita", "Hugo", "Ines", "Jon", "Kai", "Lea"]
LAST = ["Lee", "Ng", "Okafor", "Patel", "Quinn", "Rossi", "Silva", "Tanaka", "Ueda", "Varga"]
PRODUCTS = [
    ("BOOK", "Atlas", 24.5),
    ("MOBILE", "Phone", 399.0),
    ("BAG", "Tote", 35.0),
    ("SHOE", "Runner", 89.9),
    ("HOME", "Lamp", 49.99),
    ("TOY", "Kite", 15.25),
]
AIRPORTS = ["DUB", "LHR", "CDG", "AMS", "JFK", "MAD", "FCO", "BER"]
STORES = ["London", "Dublin", "Paris", "Madrid", "Berlin"]


@dataclass
class Truth:
    """What a generated file should produce: the good order records and the bad lines."""

    orders: int = 0
    bad: int = 0


def order_records(
    count: int, *, bad_share: float = 0.0, seed: int = 7, items: int = 3, prefix: str = "DEMO"
) -> Iterator[bytes | dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for index in range(count):
        if rng.random() < bad_share:
            yield rng.choice(
                [
                    b"{broken json",
                    orjson.dumps(
                        {
                            "ref": str(uuid.UUID(int=rng.getrandbits(128))),
                            "schema": "order",
                            "mode": "insert",
                            "value": {"referenceId": f"{prefix}-BAD-{index}"},
                        }
                    ),
                ]
            )
            continue
        flight = rng.random() < 0.2
        ordered = start + timedelta(minutes=index * 7 + rng.randrange(5))
        reference = f"{prefix}-{index:07d}"
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}{rng.randrange(20_000)}@example.com"
        lines = _flight_items(rng, reference) if flight else _retail_items(rng, reference, items)
        price = round(sum(item["price"] * item.get("quantity", 1) for item in lines), 2)
        value: dict[str, Any] = {
            "referenceId": reference,
            "orderedAt": ordered.isoformat().replace("+00:00", "Z"),
            "channel": rng.choice(["WEB", "MOBILE_APP", "CALL_CENTER"]),
            "pointOfSale": "demo.example",
            "status": "PURCHASED",
            "currencyCode": "EUR",
            "price": price,
            "paymentType": "Card",
            "cardType": rng.choice(["Visa", "Mastercard"]),
            "contact": {"email": email, "firstName": first, "lastName": last},
            "orderItems": lines,
            "extensions": [
                {"name": "ext", "key": "default", "storeLocation": rng.choice(STORES), "totalUnits": len(lines)}
            ],
        }
        if flight:
            value["consumers"] = [{"firstName": first, "lastName": last, "email": email}]
        yield {
            "ref": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "schema": "order",
            "mode": "insert",
            "value": value,
        }


def _retail_items(rng: random.Random, reference: str, count: int) -> list[dict[str, Any]]:
    items = []
    for position in range(count):
        kind, name, price = rng.choice(PRODUCTS)
        items.append(
            {
                "referenceId": f"{reference}-{position + 1}",
                "type": kind,
                "productId": f"{kind[:2]}-{rng.randrange(900)}",
                "name": name,
                "description": f"{name}, demo",
                "vendor": "Demo Ltd",
                "price": price,
                "currencyCode": "EUR",
                "status": "PURCHASED",
                "quantity": rng.randrange(1, 3),
                "extensions": [{"name": "ext", "key": "default", "giftWrap": rng.random() < 0.2}],
            }
        )
    return items


def _flight_items(rng: random.Random, reference: str) -> list[dict[str, Any]]:
    origin, destination = rng.sample(AIRPORTS, 2)
    segment = {
        "id": "1",
        "origin": origin,
        "destination": destination,
        "departureDateTime": "2025-08-15T16:00Z",
        "arrivalDateTime": "2025-08-15T18:05Z",
        "flightNumber": f"EI{rng.randrange(100, 999)}",
        "fareClass": "Y",
        "carrier": "EI",
    }
    return [
        {
            "referenceId": f"{reference}-1",
            "type": "FLIGHT",
            "productId": f"{origin}-{destination}",
            "name": f"{origin}-{destination}",
            "description": "Economy",
            "vendor": "Demo Air",
            "price": round(rng.uniform(49, 399), 2),
            "currencyCode": "EUR",
            "status": "CONFIRMED",
            "flightSegments": [segment],
        },
        {
            "referenceId": f"{reference}-2",
            "type": "BAG",
            "productId": "BAG-20",
            "name": "Checked bag",
            "description": "20 kg",
            "vendor": "Demo Air",
            "price": 25.0,
            "currencyCode": "EUR",
            "status": "CONFIRMED",
        },
    ]


def write_orders(
    path: Path, count: int, *, bad_share: float = 0.0, seed: int = 7, items: int = 3, prefix: str = "DEMO"
) -> Truth:
    truth = Truth()
    with gzip.open(path, "wb", compresslevel=6) as out:
        for entry in order_records(count, bad_share=bad_share, seed=seed, items=items, prefix=prefix):
            if isinstance(entry, dict):
                truth.orders += 1
                out.write(orjson.dumps(entry) + b"\n")
            else:
                truth.bad += 1
                out.write(entry + b"\n")
    return truth
