"""batch api

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:06:14.567452
"""

import sqlalchemy as sa
from alembic import op

import opencdp.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_failures",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("batch_ref", sa.String(length=36), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("record_ref", sa.Text(), nullable=False),
        sa.Column("code", sa.String(length=3), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("batch_ref", "line", name=op.f("pk_batch_failures")),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "batch_registry",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("record_ref", sa.String(length=36), nullable=False),
        sa.Column("line_hash", sa.String(length=64), nullable=False),
        sa.Column("applied_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_batch_registry_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "record_ref", "line_hash", name=op.f("pk_batch_registry")),
    )
    op.create_table(
        "batches",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=36), nullable=False),
        sa.Column("checksum", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("location_expires", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.Column("uploaded_at", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.Column("verified", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("total_records", sa.Integer(), server_default="0", nullable=False),
        sa.Column("successful_records", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed_records", sa.Integer(), server_default="0", nullable=False),
        sa.Column("skipped_records", sa.Integer(), server_default="0", nullable=False),
        sa.Column("started_at", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claim_expires", opencdp.store.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.Column("modified_at", opencdp.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_batches_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "ref", name=op.f("pk_batches")),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batches_status_uploaded_at"), ["status", "uploaded_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_batches_tenant_id_created_at"), ["tenant_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batches_tenant_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_batches_status_uploaded_at"))

    op.drop_table("batches")
    op.drop_table("batch_registry")
    op.drop_table("settings")
    op.drop_table("batch_failures")
