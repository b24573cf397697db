"""refs as uuid on PostgreSQL

PostgreSQL keeps every ref in its native 16-byte `uuid` type instead of 36 characters of text: smaller
rows and indexes, and a comparison of two 16-byte values instead of two strings under a collation. The
values do not change (a ref's text form reads back exactly as it was stored); SQLite keeps its text.
Foreign keys are dropped while the columns on both of their sides change type, then made again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 07:00:00
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Every ref column at this revision, by table.
COLUMNS = {
    "batch_failures": ("batch_ref",),
    "segment_members": ("guest_ref",),
    "batch_registry": ("record_ref",),
    "batches": ("ref",),
    "extensions": ("ref", "owner_ref"),
    "guest_merges": ("survivor_ref", "retired_ref"),
    "guests": ("ref", "merged_into"),
    "orders": ("ref",),
    "segments": ("ref",),
    "stream_journal": ("event_ref", "browser_ref"),
    "audience_exports": ("ref", "segment_ref", "baseline_ref"),
    "browsers": ("ref", "guest_ref"),
    "guest_keys": ("guest_ref",),
    "order_items": ("ref", "order_ref"),
    "order_people": ("ref", "order_ref", "guest_ref"),
    "segment_builds": ("ref", "segment_ref", "previous_build_ref"),
    "consumer_items": ("consumer_ref", "item_ref"),
    "export_executions": ("ref", "definition_ref", "segment_ref", "segment_build_ref"),
    "sessions": ("ref", "guest_ref", "browser_ref"),
    "events": ("ref", "guest_ref", "browser_ref", "session_ref", "order_ref"),
    "export_members": ("execution_ref", "guest_ref"),
}

# Every foreign key between ref columns: (table, column, referred table, on delete).
FOREIGN_KEYS = (
    ("audience_exports", "segment_ref", "segments", None),
    ("browsers", "guest_ref", "guests", "CASCADE"),
    ("guest_keys", "guest_ref", "guests", "CASCADE"),
    ("order_items", "order_ref", "orders", "CASCADE"),
    ("order_people", "guest_ref", "guests", "SET NULL"),
    ("order_people", "order_ref", "orders", "CASCADE"),
    ("segment_builds", "segment_ref", "segments", "CASCADE"),
    ("consumer_items", "item_ref", "order_items", "CASCADE"),
    ("consumer_items", "consumer_ref", "order_people", "CASCADE"),
    ("export_executions", "definition_ref", "audience_exports", "CASCADE"),
    ("sessions", "guest_ref", "guests", "CASCADE"),
    ("sessions", "browser_ref", "browsers", "CASCADE"),
    ("events", "guest_ref", "guests", "CASCADE"),
    ("events", "browser_ref", "browsers", "CASCADE"),
    ("events", "session_ref", "sessions", "CASCADE"),
    ("export_members", "execution_ref", "export_executions", "CASCADE"),
)


def upgrade() -> None:
    _change("uuid")


def downgrade() -> None:
    _change("varchar(36)")


def _change(column_type: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, referred, _ in FOREIGN_KEYS:
        op.drop_constraint(f"fk_{table}_{column}_{referred}", table, type_="foreignkey")
    for table, columns in COLUMNS.items():
        changes = ", ".join(f"ALTER COLUMN {c} TYPE {column_type} USING {c}::{column_type}" for c in columns)
        op.execute(f"ALTER TABLE {table} {changes}")
    for table, column, referred, ondelete in FOREIGN_KEYS:
        op.create_foreign_key(f"fk_{table}_{column}_{referred}", table, referred, [column], ["ref"], ondelete=ondelete)
