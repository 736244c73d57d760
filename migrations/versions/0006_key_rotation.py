"""Key rotation: this node's keys over time, and each peer's earlier keys
(docs/decisions/0008-key-rotation.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 23:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "own_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("signing_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("tls_cert_pem", sa.Text(), nullable=False),
        sa.Column("tls_fingerprint", sa.LargeBinary(length=32), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotation_entry", sa.BigInteger(), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tls_valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("signing_key"),
    )
    op.create_table(
        "peer_keys",
        sa.Column("peer_id", sa.String(length=63), nullable=False),
        sa.Column("signing_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("tls_cert_pem", sa.Text(), nullable=False),
        sa.Column("tls_fingerprint", sa.LargeBinary(length=32), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tls_valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("in_band_pending", sa.Boolean(), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["peer_id"], ["links.peer_id"]),
        sa.PrimaryKeyConstraint("peer_id", "signing_key"),
    )
    # Where a parent serves joins and its key rotations (a child that was offline while
    # the parent rotated fetches them there); NULL: the port after `address`.
    op.add_column("links", sa.Column("enrollment_address", sa.String(length=255), nullable=True))


def downgrade() -> None:
    op.drop_column("links", "enrollment_address")
    op.drop_table("peer_keys")
    op.drop_table("own_keys")
