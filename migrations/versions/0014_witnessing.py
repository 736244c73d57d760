"""C2SP witnessing (decision 0026): `witnessed_logs`, the latest checkpoint this node
cosigned for each log it witnesses (tlog-witness: checking the old size and storing the
new checkpoint happen in one write transaction), and `cosignatures`, the witnesses'
cosignatures on this node's own checkpoints, served with the checkpoint.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 14:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "witnessed_logs",
        sa.Column("origin", sa.String(255), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=False),
        sa.Column("cosigned_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "cosignatures",
        sa.Column(
            "checkpoint_size",
            sa.BigInteger(),
            sa.ForeignKey("checkpoints.size"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("witness", sa.String(255), primary_key=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cosignatures")
    op.drop_table("witnessed_logs")
