"""The schema. Every table carries `tenant_id`, and every statement in the store filters on it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from opencdp.store.types import Json, Money, UTCDateTime, ref_type

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

REF = ref_type()


def _tenant() -> Column[int]:
    return Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)


def _stamps() -> list[Column[object]]:
    return [
        Column("created_at", UTCDateTime, nullable=False),
        Column("modified_at", UTCDateTime, nullable=False),
    ]


def _person_columns() -> list[Column[Any]]:
    strings = [
        "title",
        "first_name",
        "last_name",
        "city",
        "state",
        "post_code",
        "nationality",
        "passport_number",
    ]
    return [
        *(Column(name, Text) for name in strings),
        Column("gender", String(16)),
        Column("date_of_birth", UTCDateTime),
        Column("emails", Json),
        Column("phone_numbers", Json),
        Column("street", Json),
        Column("country", String(2)),
        Column("passport_expiry", UTCDateTime),
        Column("identifiers", Json),
    ]


tenants = Table(
    "tenants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("client_key", String(100), nullable=False, unique=True),
    Column("identity_rules", Json, nullable=False),
    Column("points_of_sale", Json, nullable=False),
    Column("session_timeout_minutes", Integer, nullable=False),
    Column("default_currency", String(3), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("context_ids", Json, nullable=False, server_default="[]"),
    Column("sites", Json, nullable=False, server_default="{}"),
    Column("segment_build_schedule", String(100), nullable=False, server_default="0 0 * * *"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _tenant(),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

guests = Table(
    "guests",
    metadata,
    Column("ref", REF, primary_key=True),
    _tenant(),
    Column("guest_type", String(16), nullable=False),
    *_person_columns(),
    Column("language", String(2)),
    Column("merged_into", REF),
    Column("first_seen", UTCDateTime),
    Column("last_seen", UTCDateTime),
    *_stamps(),
    Index(None, "tenant_id", "created_at"),
    Index(None, "merged_into"),
)

# Every identity merge: which guest was retired into which, on which identifier, and what caused it.
guest_merges = Table(
    "guest_merges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _tenant(),
    Column("survivor_ref", REF, nullable=False),
    Column("retired_ref", REF, nullable=False),
    Column("provider", Text, nullable=False),
    Column("identifier", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("merged_at", UTCDateTime, nullable=False),
    Index(None, "tenant_id", "survivor_ref"),
    Index(None, "tenant_id", "retired_ref"),
)

# The lookup side of identity: one row per identifier, and per address in `emails` as provider `email`.
# `key` is a digest of (provider, normalised id), so identifiers of any length index in fixed space.
guest_keys = Table(
    "guest_keys",
    metadata,
    _tenant(),
    Column("guest_ref", REF, ForeignKey("guests.ref", ondelete="CASCADE"), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("expires_at", UTCDateTime),
    Index(None, "tenant_id", "key"),
)

orders = Table(
    "orders",
    metadata,
    Column("ref", REF, primary_key=True),
    _tenant(),
    Column("reference_id", Text, nullable=False),
    Column("ordered_at", UTCDateTime, nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("price", Money, nullable=False),
    Column("status", String(32)),
    Column("channel", String(32)),
    Column("point_of_sale", Text),
    Column("payment_type", Text),
    Column("card_type", Text),
    *_stamps(),
    Index(None, "tenant_id", "reference_id"),
)

order_items = Table(
    "order_items",
    metadata,
    Column("ref", REF, primary_key=True),
    _tenant(),
    Column("order_ref", REF, ForeignKey("orders.ref", ondelete="CASCADE"), nullable=False),
    Column("type", Text, nullable=False),
    Column("name", String(128), nullable=False),
    Column("price", Money, nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("status", Text),
    Column("reference_id", Text),
    Column("product_id", Text),
    Column("description", Text),
    Column("vendor", Text),
    Column("quantity", Integer),
    Column("original_price", Money),
    Column("original_currency_code", String(3)),
    Column("language", String(2)),
    Column("channel", String(32)),
    Column("ordered_at", UTCDateTime),
    Column("flight_segments", Json),
    *_stamps(),
    Index(None, "order_ref", "created_at"),
)

# Contacts and consumers share every person field; `role` tells them apart.
order_people = Table(
    "order_people",
    metadata,
    Column("ref", REF, primary_key=True),
    _tenant(),
    Column("order_ref", REF, ForeignKey("orders.ref", ondelete="CASCADE"), nullable=False),
    Column("role", String(8), nullable=False),
    Column("guest_ref", REF, ForeignKey("guests.ref", ondelete="SET NULL")),
    *_person_columns(),
    *_stamps(),
    # tenant_id first: SQLite without statistics otherwise picked (tenant_id, guest_ref) for an order's people
    # and read every person of the tenant (an upsert of a stored order took milliseconds per thousand people)
    Index(None, "tenant_id", "order_ref", "role"),
    Index(None, "tenant_id", "guest_ref"),
)

consumer_items = Table(
    "consumer_items",
    metadata,
    Column("consumer_ref", REF, ForeignKey("order_people.ref", ondelete="CASCADE"), primary_key=True),
    Column("item_ref", REF, ForeignKey("order_items.ref", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, nullable=False),
    Index(None, "item_ref"),
)

extensions = Table(
    "extensions",
    metadata,
    Column("ref", REF, primary_key=True),
    _tenant(),
    Column("owner_type", String(16), nullable=False),
    Column("owner_ref", REF, nullable=False),
    Column("name", String(8), nullable=False),
    Column("data", Json, nullable=False),
    *_stamps(),
    UniqueConstraint("owner_ref", "name"),
)

extension_key_types = Table(
    "extension_key_types",
    metadata,
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("owner_type", String(32), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("value_type", String(8), nullable=False),
)


# The Stream API: browsers (one guest each), sessions keyed by (browser, channel) with their cart, events.
browsers = Table(
    "browsers",
    metadata,
    Column("ref", REF, primary_key=True),
    _tenant(),
    Column("guest_ref", REF, ForeignKey("guests.ref", ondelete="CASCADE"), nullable=False),
    Column("channel", String(32)),
    Column("point_of_sale", Text),
    Column("currency", String(3)),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "guest_ref"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("ref", REF, primary_key=True),
    _tenant(),
    Column("guest_ref", REF, ForeignKey("guests.ref", ondelete="CASCADE"), nullable=False),
    Column("browser_ref", REF, ForeignKey("browsers.ref", ondelete="CASCADE"), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("point_of_sale", Text, nullable=False),
    Column("status", String(8), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_event_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    Column("close_reason", String(16)),
    Column("cart_type", String(16)),
    Column("abandoned_revenue", Money),
    Column("abandoned_currency", String(3)),
    Column("event_count", Integer, nullable=False),
    Column("cart", Json, nullable=False),
    Index(None, "browser_ref", "channel", "status"),
    Index(None, "tenant_id", "guest_ref", "started_at"),
    Index(None, "status", "last_event_at"),
)

events = Table(
    "events",
    metadata,
    Column("ref", REF, primary_key=True),
    _tenant(),
    Column("guest_ref", REF, ForeignKey("guests.ref", ondelete="CASCADE"), nullable=False),
    Column("browser_ref", REF, ForeignKey("browsers.ref", ondelete="CASCADE"), nullable=False),
    Column("session_ref", REF, ForeignKey("sessions.ref", ondelete="CASCADE"), nullable=False),
    Column("type", String(100), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("point_of_sale", Text, nullable=False),
    Column("pos_unknown", Boolean, nullable=False),
    Column("currency", String(3)),
    Column("language", String(2)),
    Column("page", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("requested_at", UTCDateTime),
    Column("ext", Json),
    Column("data", Json, nullable=False),
    Column("result", String(32)),
    Column("order_ref", REF),
    Index(None, "session_ref", "created_at"),
    Index(None, "tenant_id", "guest_ref"),
)


# Stream events accepted but not applied yet, in the order they were accepted (stream-api.md; spec §4).
# An applied entry is removed in the transaction that applied it; one that failed keeps its reason.
stream_journal = Table(
    "stream_journal",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    _tenant(),
    Column("event_ref", REF, nullable=False),
    Column("browser_ref", REF, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("site_id", Text),
    Column("body", Json, nullable=False),
    Column("failure", Text),
    Index(None, "tenant_id", "id"),
)


# Installation-wide values every process must share, such as the key that signs batch links.
settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# The Batch API: one row per allocated batch, its progress checkpoint and statistics.
batches = Table(
    "batches",
    metadata,
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("ref", REF, primary_key=True),
    Column("checksum", String(32), nullable=False),
    Column("size", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("message", Text),
    Column("location_expires", UTCDateTime, nullable=False),
    Column("uploaded_at", UTCDateTime),
    Column("verified", Boolean, nullable=False, server_default="0"),
    Column("total_lines", Integer),  # counted when the file is verified: progress is position of total_lines
    Column("position", Integer, nullable=False, server_default="0"),
    Column("total_records", Integer, nullable=False, server_default="0"),
    Column("successful_records", Integer, nullable=False, server_default="0"),
    Column("failed_records", Integer, nullable=False, server_default="0"),
    Column("skipped_records", Integer, nullable=False, server_default="0"),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("claimed_by", String(64)),
    Column("claim_expires", UTCDateTime),
    *_stamps(),
    Index(None, "status", "uploaded_at"),
    Index(None, "tenant_id", "created_at"),
)

# Failed records of a batch, in file order: the source of its log.
batch_failures = Table(
    "batch_failures",
    metadata,
    Column("tenant_id", Integer, nullable=False),
    Column("batch_ref", REF, primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("record_ref", Text, nullable=False),
    Column("code", String(3), nullable=False),
    Column("message", Text, nullable=False),
)

# Every applied record, per tenant: (record ref, digest of its line). A registered pair is never applied again.
batch_registry = Table(
    "batch_registry",
    metadata,
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("record_ref", REF, primary_key=True),
    Column("line_hash", String(64), primary_key=True),
    Column("applied_at", UTCDateTime, nullable=False),
)


# Segments (segments-exports.md §2): definitions, their builds with statistics, and the member sets kept.
segments = Table(
    "segments",
    metadata,
    Column("ref", REF, primary_key=True),
    _tenant(),
    Column("name", Text, nullable=False),
    Column("description", Text),
    Column("status", String(8), nullable=False),
    Column("version", Integer, nullable=False),
    Column("definition", Json, nullable=False),
    Column("next_build_at", UTCDateTime),
    *_stamps(),
    Index(None, "tenant_id", "created_at"),
    Index(None, "status", "next_build_at"),
)

segment_builds = Table(
    "segment_builds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ref", REF, nullable=False, unique=True),
    _tenant(),
    Column("segment_ref", REF, ForeignKey("segments.ref", ondelete="CASCADE"), nullable=False),
    Column("status", String(8), nullable=False),
    Column("trigger", String(8), nullable=False),
    Column("definition_version", Integer, nullable=False),
    Column("definition", Json, nullable=False),
    Column("as_of", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("duration_ms", Integer),
    Column("size", Integer),
    Column("total_guests", Integer),
    Column("percent_of_guests", Float),
    Column("added", Integer),
    Column("removed", Integer),
    Column("change_percent", Float),
    Column("previous_build_ref", REF),
    Column("sample", Json),
    Column("error", Text),
    Column("members_kept", Boolean, nullable=False, server_default="0"),
    Column("claimed_by", String(64)),
    Column("claim_expires", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "segment_ref", "created_at"),
    Index(None, "status", "created_at"),
)

# No foreign key on build_id: a build inserts its whole member set at once, and a per-row key check would
# cost more than the insert. The store deletes members with their builds (store/segments.py).
segment_members = Table(
    "segment_members",
    metadata,
    Column("build_id", Integer, primary_key=True, autoincrement=False),
    Column("guest_ref", REF, primary_key=True),
)

# Audience exports (§4): definitions, their executions (runs) with counters and files, the delta baseline.
audience_exports = Table(
    "audience_exports",
    metadata,
    Column("ref", REF, primary_key=True),
    _tenant(),
    Column("friendly_id", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column("segment_ref", REF, ForeignKey("segments.ref"), nullable=False),
    Column("type", String(8), nullable=False),
    Column("format", String(8), nullable=False),
    Column("csv", Json, nullable=False),
    Column("output", Json, nullable=False),
    Column("schedule", Json, nullable=False),
    Column("max_records_per_file", Integer, nullable=False),
    Column("webhook", Json),
    Column("status", String(10), nullable=False),
    Column("next_run_at", UTCDateTime),
    Column("baseline_ref", REF),
    *_stamps(),
    UniqueConstraint("tenant_id", "friendly_id"),
    Index(None, "status", "next_run_at"),
)

export_executions = Table(
    "export_executions",
    metadata,
    Column("ref", REF, primary_key=True),
    _tenant(),
    Column("definition_ref", REF, ForeignKey("audience_exports.ref", ondelete="CASCADE"), nullable=False),
    Column("execution_type", String(12), nullable=False),
    Column("definition_type", String(10), nullable=False),
    Column("status", String(8), nullable=False),
    Column("build_segment", Boolean, nullable=False),
    Column("segment_ref", REF, nullable=False),
    Column("segment_build_ref", REF),
    Column("dataset_date", String(10)),
    Column("written", Integer, nullable=False, server_default="0"),
    Column("total", Integer, nullable=False, server_default="0"),
    Column("successes", Integer, nullable=False, server_default="0"),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("success_add", Integer, nullable=False, server_default="0"),
    Column("success_remove", Integer, nullable=False, server_default="0"),
    Column("errors", Json, nullable=False),
    Column("error_logs", Json, nullable=False),
    Column("files", Json, nullable=False),
    Column("webhook", Json),
    Column("webhook_due", UTCDateTime),
    Column("claimed_by", String(64)),
    Column("claim_expires", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("start_time", UTCDateTime),
    Column("end_time", UTCDateTime),
    Index(None, "definition_ref", "created_at"),
    Index(None, "status", "created_at"),
    Index(None, "webhook_due"),
)

# The members a delta run compares with: those of the definition's last successful run.
export_members = Table(
    "export_members",
    metadata,
    Column("execution_ref", REF, ForeignKey("export_executions.ref", ondelete="CASCADE"), primary_key=True),
    Column("guest_ref", REF, primary_key=True),
)

# The web console (segments-exports.md §5): server-side sessions, and failed sign-ins per address.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    _tenant(),
    Column("token_hash", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Index(None, "last_seen_at"),
)

console_login_failures = Table(
    "console_login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("address", String(64), nullable=False),
    Column("failed_at", UTCDateTime, nullable=False),
    Index(None, "address", "failed_at"),
)
