"""The main stored records, typed: what a row of each kind holds, by the wire's camelCase names.

`store/rows.py` reads and writes them as plain dicts (the names are converted mechanically); these
types let mypy check every key the core reads. `tests/test_records.py` holds each one to its table, so a
column added without its key (or the other way round) fails the suite.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict


class Order(TypedDict):
    """An order's header; its items, people and extensions are records of their own."""

    ref: str
    tenantId: int
    referenceId: str
    orderedAt: datetime
    currencyCode: str
    price: Decimal
    status: str | None
    channel: str | None
    pointOfSale: str | None
    paymentType: str | None
    cardType: str | None
    createdAt: datetime
    modifiedAt: datetime


class OrderItem(TypedDict):
    ref: str
    tenantId: int
    orderRef: str
    type: str
    name: str
    price: Decimal
    currencyCode: str
    status: str | None
    referenceId: str | None
    productId: str | None
    description: str | None
    vendor: str | None
    quantity: int | None
    originalPrice: Decimal | None
    originalCurrencyCode: str | None
    language: str | None
    channel: str | None
    orderedAt: datetime | None
    flightSegments: list[dict[str, Any]] | None
    createdAt: datetime
    modifiedAt: datetime


class _PersonFields(TypedDict):
    """What a guest and an order's contact or consumer both say about a person."""

    ref: str
    tenantId: int
    title: str | None
    firstName: str | None
    lastName: str | None
    city: str | None
    state: str | None
    postCode: str | None
    nationality: str | None
    passportNumber: str | None
    gender: str | None
    dateOfBirth: datetime | None
    emails: list[str] | None
    phoneNumbers: list[str] | None
    street: list[str] | None
    country: str | None
    passportExpiry: datetime | None
    identifiers: list[dict[str, str]] | None
    createdAt: datetime
    modifiedAt: datetime


class Person(_PersonFields):
    """An order's contact or consumer, and the guest it resolved to."""

    orderRef: str
    role: str
    guestRef: str | None


class Guest(_PersonFields):
    """A guest: a visitor, or a customer once an identifier names it; `mergedInto` once retired."""

    guestType: str
    language: str | None
    mergedInto: str | None
    firstSeen: datetime | None
    lastSeen: datetime | None
