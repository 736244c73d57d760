"""Witnessing between peers: each link keeps the peer's latest checkpoint, the size of our
own checkpoint the peer holds, and whether the peer is suspended for fork evidence.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 21:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.add_column(sa.Column("peer_checkpoint", sa.LargeBinary(), nullable=True))
        batch.add_column(
            sa.Column("peer_checkpoint_size", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("suspended_by_entry", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.drop_column("suspended_by_entry")
        batch.drop_column("suspended_at")
        batch.drop_column("peer_checkpoint_size")
        batch.drop_column("peer_checkpoint")
