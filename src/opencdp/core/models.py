"""The field tables of data model 2.1 (rest-api.md §5), in the spec's order."""

from __future__ import annotations

from opencdp.core.fields import Field, Kind, Model

ORDER_STATUSES = (
    "BROWSED", "CANCELLED", "CONFIRMED", "DECLINED", "PARTIALY_CONFIRMED", "PARTIALY_REFUNDED",
    "PAYMENT_PENDING", "PENDING", "PURCHASED", "REFUNDED", "RESERVED", "SEARCHED", "UNKNOWN",
)  # fmt: skip
STATUS_ALIASES = {"PARTIALLY_CONFIRMED": "PARTIALY_CONFIRMED", "PARTIALLY_REFUNDED": "PARTIALY_REFUNDED"}
CHANNELS = (
    "WEB", "MOBILE_WEB", "MOBILE_APP", "CALL_CENTER", "AIRPORT_KIOSK", "BRANCH", "KIOSK", "OFFLINE", "GDS",
    "OTA", "OTHER",
)  # fmt: skip
# Not in the public contract: an index can only hold so much, and a longer order id is surely a mistake.
REFERENCE_ID_MAX = 1024
GENDERS = ("male", "female", "unknown")
GUEST_TYPES = ("visitor", "customer", "traveller")

ORDER = Model(
    "order",
    (
        Field("referenceId", Kind.STRING, required=True, max_length=REFERENCE_ID_MAX),
        Field("orderedAt", Kind.TIMESTAMP, required=True),
        Field("currencyCode", Kind.CURRENCY, required=True),
        Field("price", Kind.MONEY, required=True),
        Field("status", Kind.ENUM, choices=ORDER_STATUSES, aliases=STATUS_ALIASES),
        Field("channel", Kind.ENUM, choices=CHANNELS),
        Field("pointOfSale", Kind.STRING),
        Field("paymentType", Kind.STRING),
        Field("cardType", Kind.STRING),
    ),
    links=frozenset({"orderItems", "contacts", "consumers"}),
)

ORDER_ITEM = Model(
    "orderItem",
    (
        Field("type", Kind.ITEM_TYPE, required=True),
        Field("name", Kind.NAME, required=True),
        Field("price", Kind.MONEY, required=True),
        Field("currencyCode", Kind.CURRENCY, required=True),
        Field("status", Kind.STRING),
        Field("referenceId", Kind.STRING),
        Field("productId", Kind.STRING),
        Field("description", Kind.STRING),
        Field("vendor", Kind.STRING),
        Field("quantity", Kind.QUANTITY),
        Field("originalPrice", Kind.MONEY),
        Field("originalCurrencyCode", Kind.CURRENCY),
        Field("language", Kind.LANGUAGE),
        Field("channel", Kind.ENUM, choices=CHANNELS),
        Field("orderedAt", Kind.TIMESTAMP),
    ),
    links=frozenset({"order", "flightSegments"}),  # flight data comes from events and batches only
)


def _person_fields(*, names_required: bool) -> tuple[Field, ...]:
    return (
        Field("title", Kind.STRING),
        Field("firstName", Kind.STRING, required=names_required),
        Field("lastName", Kind.STRING, required=names_required),
        Field("city", Kind.STRING),
        Field("state", Kind.STRING),
        Field("postCode", Kind.STRING),
        Field("nationality", Kind.STRING),
        Field("passportNumber", Kind.STRING),
        Field("gender", Kind.ENUM, choices=GENDERS),
        Field("dateOfBirth", Kind.PAST_DATE),
        Field("emails", Kind.EMAILS),
        Field("phoneNumbers", Kind.STRINGS),
        Field("street", Kind.STRINGS),
        Field("country", Kind.COUNTRY),
        Field("passportExpiry", Kind.DATE),
        Field("identifiers", Kind.IDENTIFIERS),
    )


PERSON_FIELDS = _person_fields(names_required=False)

CONTACT = Model("orderContact", _person_fields(names_required=True), links=frozenset({"order", "guest"}))

CONSUMER = Model(
    "orderConsumer",
    (*_person_fields(names_required=True), Field("orderItems", Kind.ITEM_LINKS)),
    links=frozenset({"order", "guest"}),
)

GUEST = Model(
    "guest",
    (
        Field("guestType", Kind.ENUM, required=True, choices=GUEST_TYPES),
        *PERSON_FIELDS,
        Field("language", Kind.LANGUAGE),
        Field("email", Kind.STRING),
        Field("subscriptions", Kind.EMPTY_LIST),
    ),
    links=frozenset({"dataExtensions", "firstSeen", "lastSeen"}),
)


# The Batch API's order model (batch-api.md §6.2): stricter than REST on insert, looser on item types.
BATCH_ORDER = Model(
    "batchOrder",
    (
        Field("referenceId", Kind.STRING, required=True, max_length=REFERENCE_ID_MAX),
        Field("orderedAt", Kind.TIMESTAMP, required=True),
        Field("channel", Kind.ENUM, required=True, choices=CHANNELS),
        Field("pointOfSale", Kind.STRING, required=True),
        Field("status", Kind.ENUM, required=True, choices=ORDER_STATUSES, aliases=STATUS_ALIASES),
        Field("currencyCode", Kind.CURRENCY, required=True),
        Field("price", Kind.MONEY, required=True),
        Field("paymentType", Kind.STRING, required=True),
        Field("cardType", Kind.STRING),
    ),
    links=frozenset({"contact", "consumers", "orderItems", "extensions"}),
)

BATCH_ITEM = Model(
    "batchOrderItem",
    (
        Field("referenceId", Kind.STRING, required=True),
        Field("type", Kind.STRING, required=True),
        Field("productId", Kind.STRING, required=True),
        Field("name", Kind.NAME, required=True),
        Field("description", Kind.STRING, required=True),
        Field("vendor", Kind.STRING, required=True),
        Field("price", Kind.MONEY, required=True),
        Field("currencyCode", Kind.CURRENCY, required=True),
        Field("status", Kind.STRING, required=True),
        Field("orderedAt", Kind.TIMESTAMP),
        Field("quantity", Kind.QUANTITY),
        Field("originalPrice", Kind.MONEY),
        Field("originalCurrencyCode", Kind.CURRENCY),
        Field("channel", Kind.ENUM, choices=CHANNELS),
        Field("language", Kind.LANGUAGE),
        Field("consumerTypeCode", Kind.STRING),
        Field("tripType", Kind.STRING),
    ),
    links=frozenset({"flightSegments", "extensions"}),
)
