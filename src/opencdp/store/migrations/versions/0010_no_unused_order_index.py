"""no unused order index

Orders are only ever looked up by ref, by referenceId (matching, listing) and through the people who
hold them; no query reads a tenant's orders in creation order, so the (tenant_id, created_at) index cost
every order insert (a batch import's above all) and served nothing. docs/architecture.md lists each
index beside the query that needs it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 05:00:00
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_tenant_id_created_at"))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_tenant_id_created_at"), ["tenant_id", "created_at"], unique=False)
