"""stream api

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:42:03.612879
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import opencdp.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "browsers",
        sa.Column("ref", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("guest_ref", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("point_of_sale", sa.Text(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("created_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["guest_ref"], ["guests.ref"], name=op.f("fk_browsers_guest_ref_guests"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_browsers_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_browsers")),
    )
    with op.batch_alter_table("browsers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_browsers_guest_ref"), ["guest_ref"], unique=False)

    op.create_table(
        "sessions",
        sa.Column("ref", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("guest_ref", sa.String(length=36), nullable=False),
        sa.Column("browser_ref", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("point_of_sale", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("started_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.Column("last_event_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.Column("closed_at", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.Column("close_reason", sa.String(length=16), nullable=True),
        sa.Column("cart_type", sa.String(length=16), nullable=True),
        sa.Column("abandoned_revenue", opencdp.store.types.Money(), nullable=True),
        sa.Column("abandoned_currency", sa.String(length=3), nullable=True),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column(
            "cart", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["browser_ref"], ["browsers.ref"], name=op.f("fk_sessions_browser_ref_browsers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["guest_ref"], ["guests.ref"], name=op.f("fk_sessions_guest_ref_guests"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_sessions_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sessions_browser_ref_channel_status"), ["browser_ref", "channel", "status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sessions_status_last_event_at"), ["status", "last_event_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sessions_tenant_id_guest_ref_started_at"),
            ["tenant_id", "guest_ref", "started_at"],
            unique=False,
        )

    op.create_table(
        "events",
        sa.Column("ref", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("guest_ref", sa.String(length=36), nullable=False),
        sa.Column("browser_ref", sa.String(length=36), nullable=False),
        sa.Column("session_ref", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("point_of_sale", sa.Text(), nullable=False),
        sa.Column("pos_unknown", sa.Boolean(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=True),
        sa.Column("page", sa.Text(), nullable=False),
        sa.Column("created_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.Column("requested_at", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.Column("ext", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True),
        sa.Column(
            "data", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("result", sa.String(length=32), nullable=True),
        sa.Column("order_ref", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["browser_ref"], ["browsers.ref"], name=op.f("fk_events_browser_ref_browsers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["guest_ref"], ["guests.ref"], name=op.f("fk_events_guest_ref_guests"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["session_ref"], ["sessions.ref"], name=op.f("fk_events_session_ref_sessions"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_events_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_events_session_ref_created_at"), ["session_ref", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_events_tenant_id_guest_ref"), ["tenant_id", "guest_ref"], unique=False)

    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "flight_segments",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "context_ids",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                server_default="[]",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "sites",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                server_default="{}",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("sites")
        batch_op.drop_column("context_ids")

    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.drop_column("flight_segments")

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_tenant_id_guest_ref"))
        batch_op.drop_index(batch_op.f("ix_events_session_ref_created_at"))

    op.drop_table("events")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_tenant_id_guest_ref_started_at"))
        batch_op.drop_index(batch_op.f("ix_sessions_status_last_event_at"))
        batch_op.drop_index(batch_op.f("ix_sessions_browser_ref_channel_status"))

    op.drop_table("sessions")
    with op.batch_alter_table("browsers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_browsers_guest_ref"))

    op.drop_table("browsers")
