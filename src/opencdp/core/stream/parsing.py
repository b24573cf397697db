"""Event attributes as the SDKs send them (stream-api.md §2, §3): checked, normalised, with exact paths."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from opencdp.core import fields, values
from opencdp.core.errors import ApiError, InvalidField, MissingField
from opencdp.core.models import GENDERS, ORDER_STATUSES, STATUS_ALIASES

RESERVED = frozenset(
    {
        "ADD", "ADD_CONSUMERS", "ADD_CONTACTS", "ADD_PRODUCT", "CALCULATOR", "CAMPAIGN_TRACKING", "CHAT",
        "CHECKOUT", "CLEAR_CART", "CLICK", "COMMENT", "CONFIRM", "CONSUMERS", "CONTACT_REQUEST", "EMAIL",
        "FORCE_CLOSE", "IDENTITY", "LOGIN", "NOTIFICATION", "ORDER_CHECKOUT", "ORDER_UPDATE", "PAYMENT",
        "PNR_RECORD", "PURCHASE", "SEARCH", "SELECT", "SMS", "SUBSCRIPTION", "TRIGGER", "TRIP_SUMMARY", "UPDATE",
        "VIEW",
    }
)  # fmt: skip
CHANNELS = (
    "WEB", "MOBILE_WEB", "MOBILE_APP", "AIRPORT_KIOSK", "BRANCH", "CALL_CENTER", "EMAIL", "GDS", "KIOSK", "SMS",
    "OFFLINE", "OTA", "OTHER",
)  # fmt: skip
EXT_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
EXT_LIMIT = 50


def text(value: Any, path: str, *, required: bool = False, limit: int | None = None) -> str | None:
    if value is None or value == "":
        if required:
            raise MissingField(path)
        return None
    if not isinstance(value, str) or "\x00" in value or (limit is not None and len(value) > limit):
        raise InvalidField(path)
    return value


def event_type(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MissingField("type")
    if value.upper() in RESERVED:
        return value.upper()
    if len(value) > 100 or re.search(r"\s", value):
        raise InvalidField("type")
    return value


def channel(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.upper() in CHANNELS:
        return value.upper()
    raise InvalidField("channel")


def currency(value: Any, path: str = "currency") -> str | None:
    if value is None or value == "":
        return None
    code = values.code(value, 3)
    if code is None:
        raise InvalidField(path)
    return code


def language(value: Any) -> str | None:
    """ISO 639-1, or a BCP 47 tag whose language part is (`en-US` is `EN`)."""
    if value is None or value == "":
        return None
    code = values.code(value.split("-", 1)[0] if isinstance(value, str) else value, 2)
    if code is None:
        raise InvalidField("language")
    return code


def timestamp(value: Any, path: str, *, past: bool = False) -> datetime | None:
    if value is None or value == "":
        return None
    parsed = values.parse_timestamp(value, allow_date=True)
    if parsed is None or (past and parsed >= datetime.now(UTC)):
        raise InvalidField(path)
    return parsed


def money(value: Any, path: str, *, required: bool = False) -> Decimal | None:
    if value is None:
        if required:
            raise MissingField(path)
        return None
    return fields.money(value, path)


def quantity(value: Any, path: str, *, required: bool = False) -> int | None:
    if value is None:
        if required:
            raise MissingField(path)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or not 0 <= value < 2**31:
        raise InvalidField(path)
    return int(value)


def order_status(value: Any, path: str) -> str:
    if value is None or value == "":
        raise MissingField(path)
    wanted = value.strip().upper() if isinstance(value, str) else None
    wanted = STATUS_ALIASES.get(wanted or "", wanted)
    if wanted not in ORDER_STATUSES:
        raise InvalidField(path)
    return wanted


def ext(value: Any) -> dict[str, Any]:
    """The event's flat extension: at most 50 keys, scalar values; null drops a key."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidField("ext")
    pairs: dict[str, Any] = {}
    for key, item in value.items():
        if not EXT_KEY.match(key):
            raise InvalidField(f"ext.{key}")
        if item is None:
            continue
        if not isinstance(item, str | int | float | bool) or (isinstance(item, str) and "\x00" in item):
            raise InvalidField(f"ext.{key}")
        pairs[key] = item
    if len(pairs) > EXT_LIMIT:
        raise ApiError("ext: not a valid value", f"Attribute ext is invalid (at most {EXT_LIMIT} attributes).")
    return pairs


def _first(data: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if data.get(name) not in (None, ""):
            return data[name]
    return None


def person(data: Any, path: str) -> dict[str, Any]:
    """Person fields (§3.1) as a REST person: a key beats its alias; `email` becomes `emails`."""
    if not isinstance(data, dict):
        raise InvalidField(path)
    prefix = f"{path}." if path else ""
    result: dict[str, Any] = {}
    for name in ("title", "city", "state", "nationality"):
        if (value := text(data.get(name), prefix + name)) is not None:
            result[name] = value
    for name, aliases in (("firstName", ("firstname", "firstName")), ("lastName", ("lastname", "lastName"))):
        if (value := text(_first(data, *aliases), prefix + aliases[0])) is not None:
            result[name] = value
    gender = data.get("gender")
    if gender not in (None, ""):
        if not isinstance(gender, str) or gender.lower() not in GENDERS:
            raise InvalidField(prefix + "gender")
        result["gender"] = gender.lower()
    if (born := timestamp(_first(data, "dob", "dateOfBirth"), prefix + "dob", past=True)) is not None:
        result["dateOfBirth"] = born
    email = text(data.get("email"), prefix + "email")
    if email is not None:
        if not re.match(r"^[^@\s]+@[^@\s]+$", email):
            raise InvalidField(prefix + "email")
        result["emails"] = [email]
    phones = [text(data.get(name), prefix + name) for name in ("mobile", "phone")]
    if any(phones):
        result["phoneNumbers"] = [phone for phone in phones if phone]
    street = data.get("street")
    if street not in (None, "", []):
        lines = [street] if isinstance(street, str) else street
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            raise InvalidField(prefix + "street")
        result["street"] = lines
    country = _first(data, "country", "country_code")
    if country is not None:
        code = values.code(country, 2)
        if code is None:
            raise InvalidField(prefix + "country")
        result["country"] = code
    post_code = text(_first(data, "postal_code", "postcode", "postalCode"), prefix + "postal_code")
    if post_code is not None:
        result["postCode"] = post_code.upper()
    if data.get("identifiers") is not None:
        result["identifiers"] = identifiers(data["identifiers"], prefix + "identifiers")
    return result


def identifiers(value: Any, path: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise InvalidField(path)
    found: list[dict[str, str]] = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(item, dict):
            raise InvalidField(where)
        identifier = {
            "provider": text(item.get("provider"), f"{where}.provider", required=True),
            "id": text(item.get("id"), f"{where}.id", required=True),
        }
        expiry = timestamp(_first(item, "expiry_date", "expiryDate"), f"{where}.expiry_date")
        if expiry is not None:
            identifier["expiryDate"] = values.format_timestamp(expiry)
        if not any(i["provider"] == identifier["provider"] and i["id"] == identifier["id"] for i in found):
            found.append(identifier)  # type: ignore[arg-type]
    return found


FLIGHT_TEXT = {
    "flightNumber": "flight_number", "carrier": "carrier", "operatingCarrier": "operating_carrier",
    "fareClass": "fare_class", "fareFamily": "fare_family", "bookingClass": "booking_class",
    "equipment": "equipment", "originDestination": "origin_destination",
    "departureDateTime": "departure_date_time", "arrivalDateTime": "arrival_date_time",
}  # fmt: skip


def segment(data: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Flight segment attributes; local times are kept exactly as written."""
    found: dict[str, Any] = {}
    for name in ("origin", "destination"):
        if (value := text(data.get(name), path + name)) is not None:
            found[name] = value.upper()
    for name, snake in FLIGHT_TEXT.items():
        if (value := text(_first(data, name, snake), path + name)) is not None:
            found[name] = value
    if data.get("id") not in (None, ""):
        found["id"] = str(data["id"])
    return found


def product(data: Any, path: str = "product") -> dict[str, Any]:
    """An ADD's product as a cart line (prices kept as exact decimal strings, JSON being the cart's store)."""
    if data is None:
        raise MissingField(path)
    if not isinstance(data, dict):
        raise InvalidField(path)
    line: dict[str, Any] = {
        "item_id": text(data.get("item_id"), f"{path}.item_id", required=True),
        "type": text(data.get("type"), f"{path}.type", required=True),
        "name": text(data.get("name"), f"{path}.name", required=True, limit=128),
        "price": str(money(data.get("price"), f"{path}.price", required=True)),
        "quantity": quantity(data.get("quantity"), f"{path}.quantity", required=True),
    }
    optional = {
        "currency": currency(data.get("currency"), f"{path}.currency"),
        "productId": text(data.get("productId"), f"{path}.productId"),
        "referenceId": text(data.get("referenceId"), f"{path}.referenceId"),
        "orderedAt": timestamp(data.get("orderedAt"), f"{path}.orderedAt"),
        "originalPrice": money(data.get("originalPrice"), f"{path}.originalPrice"),
        "originalCurrencyCode": currency(data.get("originalCurrencyCode"), f"{path}.originalCurrencyCode"),
    }
    for name, value in optional.items():
        if value is not None:
            line[name] = (
                values.format_timestamp(value)
                if isinstance(value, datetime)
                else str(value)
                if isinstance(value, Decimal)
                else value
            )
    segments = []
    own = segment(data, f"{path}.")
    if own:
        segments.append(own)
    raw_segments = _first(data, "flightSegments", "flight_segments")
    if raw_segments is not None:
        if not isinstance(raw_segments, list) or not all(isinstance(s, dict) for s in raw_segments):
            raise InvalidField(f"{path}.flightSegments")
        segments += [segment(s, f"{path}.flightSegments[{i}].") for i, s in enumerate(raw_segments)]
    if segments:
        line["flightSegments"] = segments
    return line


def one_or_many(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def reject_unknown(data: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
    for key in data:
        if key not in allowed:
            where = f"{path}.{key}"
            raise ApiError(f"{where}: not supported", f"Attribute {where} is invalid (not supported).")
