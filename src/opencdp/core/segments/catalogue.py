"""The attributes a segment definition may name (segments-exports.md §1.3), with their types.

Only names and types live here; the store maps each to its SQL fragment. Extension keys join the
catalogue from the tenant's own key types, so a key the tenant never received is an unknown attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opencdp.core.models import CHANNELS, GENDERS, GUEST_TYPES, ORDER_STATUSES
from opencdp.core.stream.parsing import CHANNELS as STREAM_CHANNELS

# The surfaces take a definition's shapes from here: the store keeps them, the core answers for them.
from opencdp.store.segment_tree import Attribute as Attribute
from opencdp.store.segment_tree import Type as Type

ENTITIES = ("guest", "order", "orderItem", "session", "event")
GUEST_GROUPS = ("ext", "ext1", "ext2", "ext3", "ext4", "ext5")
IDENTIFIERS_PREFIX = "guest.identifiers."


def _fields(entity: str, kinds: Mapping[Type, tuple[str, ...]]) -> dict[str, Attribute]:
    return {
        f"{entity}.{field}": Attribute(f"{entity}.{field}", entity, field, kind)
        for kind, names in kinds.items()
        for field in names
    }


def _enum(entity: str, field: str, values: tuple[str, ...]) -> dict[str, Attribute]:
    return {f"{entity}.{field}": Attribute(f"{entity}.{field}", entity, field, Type.ENUM, values)}


def _money(entity: str, field: str, currency_field: str) -> dict[str, Attribute]:
    name = f"{entity}.{field}"
    return {name: Attribute(name, entity, field, Type.MONEY, currency_field=currency_field)}


STRING_TIMES = ("createdAt", "modifiedAt")
FIXED: dict[str, Attribute] = {
    **_fields(
        "guest",
        {
            Type.STRING: (
                "ref",
                "title",
                "firstName",
                "lastName",
                "nationality",
                "city",
                "state",
                "country",
                "postCode",
                "language",
            ),
            Type.STRING_LIST: ("email", "phoneNumbers", "street"),
            Type.DATETIME: ("dateOfBirth", "firstSeen", "lastSeen", *STRING_TIMES),
            Type.INTEGER: ("age",),
        },
    ),
    **_enum("guest", "guestType", GUEST_TYPES),
    **_enum("guest", "gender", GENDERS),
    **_fields(
        "order",
        {
            Type.STRING: ("ref", "referenceId", "pointOfSale", "paymentType", "cardType", "currencyCode"),
            Type.DATETIME: ("orderedAt", *STRING_TIMES),
            Type.INTEGER: ("itemCount",),
        },
    ),
    **_enum("order", "status", ORDER_STATUSES),
    **_enum("order", "channel", CHANNELS),
    **_money("order", "price", "currencyCode"),
    **_fields(
        "orderItem",
        {
            Type.STRING: (
                "ref",
                "referenceId",
                "type",
                "name",
                "description",
                "productId",
                "vendor",
                "status",
                "language",
                "currencyCode",
                "originalCurrencyCode",
            ),
            Type.INTEGER: ("quantity",),
            Type.DATETIME: ("orderedAt",),
        },
    ),
    **_enum("orderItem", "channel", CHANNELS),
    **_money("orderItem", "price", "currencyCode"),
    **_money("orderItem", "originalPrice", "originalCurrencyCode"),
    **_fields(
        "session",
        {
            Type.STRING: ("ref", "pointOfSale"),
            Type.DATETIME: ("startedAt", "lastEventAt", "closedAt"),
            Type.INTEGER: ("eventCount",),
        },
    ),
    **_enum("session", "channel", STREAM_CHANNELS),
    **_enum("session", "status", ("OPEN", "CLOSED")),
    **_enum("session", "cartType", ("BROWSED", "ABANDONED", "CONVERTED", "CLOSED")),
    **_enum("session", "closeReason", ("TIMEOUT", "FORCE_CLOSE", "SWITCH")),
    **_money("session", "abandonedRevenue", "abandonedCurrency"),
    **_fields(
        "event",
        {
            Type.STRING: ("ref", "type", "page", "pointOfSale", "language", "currency"),
            Type.DATETIME: ("createdAt",),
        },
    ),
    **_enum("event", "channel", STREAM_CHANNELS),
}

# Which extension owner type (as key types are recorded) each entity's `ext` groups belong to.
EXTENSION_OWNERS = {"guest": "guest", "order": "order", "orderItem": "orderItem"}
_KEY_TYPES = {"string": Type.STRING, "number": Type.NUMBER, "boolean": Type.BOOLEAN}


@dataclass(frozen=True)
class Catalogue:
    """The fixed attributes plus one tenant's extension keys, by owner type: {owner: {key: value type}}."""

    extension_keys: Mapping[str, Mapping[str, str]]

    def find(self, name: str) -> Attribute | None:
        if name in FIXED:
            return FIXED[name]
        if name.startswith(IDENTIFIERS_PREFIX) and len(name) > len(IDENTIFIERS_PREFIX):
            return Attribute(name, "guest", "identifiers", Type.STRING_LIST, provider=name[len(IDENTIFIERS_PREFIX) :])
        entity, _, rest = name.partition(".")
        group, _, key = rest.partition(".")
        owner = EXTENSION_OWNERS.get(entity)
        groups = GUEST_GROUPS if entity == "guest" else ("ext",)
        if owner is None or group not in groups or not key:
            return None
        kind = self.extension_keys.get(owner, {}).get(key)
        return Attribute(name, entity, key, _KEY_TYPES[kind], group=group) if kind else None

    def listing(self) -> list[Attribute]:
        """Every attribute a definition may use; extension keys once per group they may live in."""
        found = list(FIXED.values())
        for entity, owner in EXTENSION_OWNERS.items():
            for group in GUEST_GROUPS if entity == "guest" else ("ext",):
                for key, kind in sorted(self.extension_keys.get(owner, {}).items()):
                    found.append(Attribute(f"{entity}.{group}.{key}", entity, key, _KEY_TYPES[kind], group=group))
        return found
