"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Numeric, String, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine


class Money(TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC on PostgreSQL, decimal text on SQLite, which has no exact number type."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String())
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ref_type() -> TypeEngine[str]:
    """A ref: 36 characters of text on SQLite (bound as it is: no converter on its hot paths), PostgreSQL's
    16-byte `uuid` there (`PostgresRef`); a lowercase UUID string either way."""
    return String(36).with_variant(PostgresRef(), "postgresql")


class PostgresRef(TypeDecorator[str]):
    """A ref in PostgreSQL's `uuid`, bound and read as its text.

    A ref is compared with whatever a client sent (a path, a browser id, a batch ref). SQLite compares
    text, so a string that is not a stored ref's exact lowercase form matches nothing; PostgreSQL would
    instead reject a malformed string with an error, or match an upper-case one. Such a string is bound
    as the nil UUID, which the server never mints: it matches nothing on both databases.
    """

    impl = Uuid(as_uuid=False)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is None or _CANONICAL_UUID(value):
            return value
        return NIL_REF


NIL_REF = "00000000-0000-0000-0000-000000000000"
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch

Json = JSON().with_variant(JSONB(), "postgresql")
