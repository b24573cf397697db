"""Parsing and formatting of the wire's scalar values: timestamps, money, codes.

Kept apart from the field tables so that the Stream and Batch surfaces format a timestamp or a price
exactly as the REST API does.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from time import time_ns

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}:?\d{2})?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Instants near the ends of Python's range would overflow the 48-hour matching window; nobody orders then.
_EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
_LATEST = datetime(9998, 12, 31, tzinfo=UTC)


def parse_timestamp(value: object, *, allow_date: bool = False) -> datetime | None:
    """An ISO 8601 instant as an aware UTC datetime, or None when it is not one.

    Naive times are UTC; fractions beyond microseconds are cut, since Python keeps six digits.
    """
    if not isinstance(value, str):
        return None
    if allow_date and _DATE.match(value):
        try:
            day = datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        except ValueError:
            return None
        return day if _EARLIEST <= day <= _LATEST else None
    if not _TIMESTAMP.match(value):
        return None
    text = value
    fraction = re.search(r"\.(\d+)", text)
    if fraction and len(fraction.group(1)) > 6:
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6])
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return parsed if _EARLIEST <= parsed <= _LATEST else None


def format_timestamp(value: datetime) -> str:
    """UTC with milliseconds and Z, the one output form the spec allows."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def nth_instant(now: datetime, position: int) -> datetime:
    """When the `position`th row of a list written at `now` was created: a microsecond after the one
    before, so that rows created together still list in the order they were sent."""
    return now + timedelta(microseconds=position)


def utcnow() -> datetime:
    """Now, truncated to milliseconds so that what is stored equals what is shown."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# Prices and totals stay below a quadrillion in magnitude: every such integer is exact as a JSON number
# (below 2**53), so whatever is stored renders as the number that was sent.
MONEY_LIMIT = Decimal(10) ** 15
MONEY_RANGE = "must be greater than -1000000000000000 and less than 1000000000000000"


def parse_money(value: object) -> Decimal | None:
    """A JSON number as an exact decimal; booleans and strings are not numbers.

    A float is read through its shortest repr, so 30.6 becomes Decimal('30.6'), never 30.5999…
    Whether it is in range is `money_in_range`'s question, so that the error can say which rule broke.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def money_in_range(number: Decimal) -> bool:
    return -MONEY_LIMIT < number < MONEY_LIMIT


def money_to_json(value: Decimal) -> int | float:
    """The JSON number for a stored decimal: integral values as integers, others by shortest repr.

    A value stored before the range was enforced (or summed past it) still renders, as a float: reading
    a record must never fail on what it holds.
    """
    if value == value.to_integral_value() and -(2**53) < value < 2**53:
        return int(value)
    return float(value)


def code(value: object, length: int) -> str | None:
    """A letter code of the given length, upper-cased, or None when it has another shape."""
    if isinstance(value, str) and len(value) == length and value.isascii() and value.isalpha():
        return value.upper()
    return None


_LAST_MINTED = [0, 0]  # the milliseconds and the 12-bit sequence of the last ref this process minted
_MINTING = threading.Lock()


def new_ref() -> str:
    """A time-ordered UUID (version 7, RFC 9562) in its text form: 48 bits of Unix milliseconds, the
    version, a 12-bit sequence, the variant and 62 random bits.

    Refs that start with the time they were minted make every index keyed by a ref grow at its end, so a
    commit writes a few pages there instead of pages all over the index (spec README §3). Within one
    millisecond the sequence counts up from a random start (RFC 9562's method 1), so the refs one process
    mints sort in the order it minted them.
    """
    random = int.from_bytes(os.urandom(8), "big")
    with _MINTING:
        now = time_ns() // 1_000_000
        if now <= _LAST_MINTED[0]:
            now, sequence = _LAST_MINTED[0], _LAST_MINTED[1] + 1
            if sequence > 0xFFF:  # four thousand refs in one millisecond: borrow the next one
                now, sequence = now + 1, random >> 53
        else:
            sequence = random >> 53  # 11 random bits: room to count up within the millisecond
        _LAST_MINTED[:] = now, sequence
    value = now << 80 | 0x7 << 76 | sequence << 64 | 0b10 << 62 | random & 0x3FFF_FFFF_FFFF_FFFF
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def uuid5(namespace_ref: str, name: str) -> str:
    """`str(uuid.uuid5(uuid.UUID(namespace_ref), name))` for a ref in its text form, without the objects."""
    digest = bytearray(hashlib.sha1(bytes.fromhex(namespace_ref.replace("-", "")) + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    digits = digest.hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
