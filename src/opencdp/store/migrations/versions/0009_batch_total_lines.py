"""batch total lines

The number of lines in a batch's file, counted when the file is verified, so that a client can follow a
batch as lines done of the total (`GET /opencdp/v1/batches/{ref}/progress`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 22:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("total_lines", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("total_lines")
