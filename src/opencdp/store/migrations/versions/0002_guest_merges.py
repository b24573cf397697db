"""guest merges

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:33:02.877202
"""

import sqlalchemy as sa
from alembic import op

import opencdp.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guest_merges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("survivor_ref", sa.String(length=36), nullable=False),
        sa.Column("retired_ref", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("merged_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_guest_merges_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guest_merges")),
    )
    with op.batch_alter_table("guest_merges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_guest_merges_tenant_id_retired_ref"), ["tenant_id", "retired_ref"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_guest_merges_tenant_id_survivor_ref"), ["tenant_id", "survivor_ref"], unique=False
        )

    with op.batch_alter_table("guests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guests_merged_into"), ["merged_into"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("guests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guests_merged_into"))

    with op.batch_alter_table("guest_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guest_merges_tenant_id_survivor_ref"))
        batch_op.drop_index(batch_op.f("ix_guest_merges_tenant_id_retired_ref"))

    op.drop_table("guest_merges")
