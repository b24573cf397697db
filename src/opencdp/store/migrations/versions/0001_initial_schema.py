"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 11:59:18.003452
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import opencdp.store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("client_key", sa.String(length=100), nullable=False),
        sa.Column(
            "identity_rules",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "points_of_sale",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("session_timeout_minutes", sa.Integer(), nullable=False),
        sa.Column("default_currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("client_key", name=op.f("uq_tenants_client_key")),
        sa.UniqueConstraint("name", name=op.f("uq_tenants_name")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_api_tokens_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "extension_key_types",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("owner_type", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value_type", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_extension_key_types_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "owner_type", "key", name=op.f("pk_extension_key_types")),
    )
    op.create_table(
        "extensions",
        sa.Column("ref", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("owner_type", sa.String(length=16), nullable=False),
        sa.Column("owner_ref", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=8), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.Column("modified_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_extensions_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_extensions")),
        sa.UniqueConstraint("owner_ref", "name", name=op.f("uq_extensions_owner_ref_name")),
    )
    op.create_table(
        "guests",
        sa.Column("ref", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("guest_type", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("post_code", sa.Text(), nullable=True),
        sa.Column("nationality", sa.Text(), nullable=True),
        sa.Column("passport_number", sa.Text(), nullable=True),
        sa.Column("gender", sa.String(length=16), nullable=True),
        sa.Column("date_of_birth", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.Column(
            "emails",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "phone_numbers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "street",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("passport_expiry", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.Column(
            "identifiers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("language", sa.String(length=2), nullable=True),
        sa.Column("merged_into", sa.String(length=36), nullable=True),
        sa.Column("first_seen", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.Column("last_seen", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.Column("modified_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_guests_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_guests")),
    )
    with op.batch_alter_table("guests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guests_tenant_id_created_at"), ["tenant_id", "created_at"], unique=False)

    op.create_table(
        "orders",
        sa.Column("ref", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("reference_id", sa.Text(), nullable=False),
        sa.Column("ordered_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("price", opencdp.store.types.Money(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("point_of_sale", sa.Text(), nullable=True),
        sa.Column("payment_type", sa.Text(), nullable=True),
        sa.Column("card_type", sa.Text(), nullable=True),
        sa.Column("created_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.Column("modified_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_orders_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_orders")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_tenant_id_created_at"), ["tenant_id", "created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_orders_tenant_id_reference_id"), ["tenant_id", "reference_id"], unique=False
        )

    op.create_table(
        "guest_keys",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("guest_ref", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["guest_ref"], ["guests.ref"], name=op.f("fk_guest_keys_guest_ref_guests"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_guest_keys_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("guest_ref", "key", name=op.f("pk_guest_keys")),
    )
    with op.batch_alter_table("guest_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guest_keys_tenant_id_key"), ["tenant_id", "key"], unique=False)

    op.create_table(
        "order_items",
        sa.Column("ref", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("order_ref", sa.String(length=36), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("price", opencdp.store.types.Money(), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("reference_id", sa.Text(), nullable=True),
        sa.Column("product_id", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("vendor", sa.Text(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("original_price", opencdp.store.types.Money(), nullable=True),
        sa.Column("original_currency_code", sa.String(length=3), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("ordered_at", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.Column("modified_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_ref"], ["orders.ref"], name=op.f("fk_order_items_order_ref_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_order_items_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_order_items")),
    )
    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_items_order_ref_created_at"), ["order_ref", "created_at"], unique=False
        )

    op.create_table(
        "order_people",
        sa.Column("ref", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("order_ref", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("guest_ref", sa.String(length=36), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("post_code", sa.Text(), nullable=True),
        sa.Column("nationality", sa.Text(), nullable=True),
        sa.Column("passport_number", sa.Text(), nullable=True),
        sa.Column("gender", sa.String(length=16), nullable=True),
        sa.Column("date_of_birth", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.Column(
            "emails",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "phone_numbers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "street",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("passport_expiry", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.Column(
            "identifiers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.Column("modified_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["guest_ref"], ["guests.ref"], name=op.f("fk_order_people_guest_ref_guests"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["order_ref"], ["orders.ref"], name=op.f("fk_order_people_order_ref_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_order_people_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_order_people")),
    )
    with op.batch_alter_table("order_people", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_people_order_ref_role"), ["order_ref", "role"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_order_people_tenant_id_guest_ref"), ["tenant_id", "guest_ref"], unique=False
        )

    op.create_table(
        "consumer_items",
        sa.Column("consumer_ref", sa.String(length=36), nullable=False),
        sa.Column("item_ref", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_ref"],
            ["order_people.ref"],
            name=op.f("fk_consumer_items_consumer_ref_order_people"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_ref"],
            ["order_items.ref"],
            name=op.f("fk_consumer_items_item_ref_order_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("consumer_ref", "item_ref", name=op.f("pk_consumer_items")),
    )
    with op.batch_alter_table("consumer_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consumer_items_item_ref"), ["item_ref"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("consumer_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consumer_items_item_ref"))

    op.drop_table("consumer_items")
    with op.batch_alter_table("order_people", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_people_tenant_id_guest_ref"))
        batch_op.drop_index(batch_op.f("ix_order_people_order_ref_role"))

    op.drop_table("order_people")
    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_items_order_ref_created_at"))

    op.drop_table("order_items")
    with op.batch_alter_table("guest_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guest_keys_tenant_id_key"))

    op.drop_table("guest_keys")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_tenant_id_reference_id"))
        batch_op.drop_index(batch_op.f("ix_orders_tenant_id_created_at"))

    op.drop_table("orders")
    with op.batch_alter_table("guests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guests_tenant_id_created_at"))

    op.drop_table("guests")
    op.drop_table("extensions")
    op.drop_table("extension_key_types")
    op.drop_table("api_tokens")
    op.drop_table("tenants")
