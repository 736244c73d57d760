"""The link lifecycle: join invites, and per link the entries that made and ended it and
whether the running node is connected to the peer now.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.add_column(sa.Column("agreement_entry", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("revoked_entry", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("connected_since", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "invites",
        sa.Column("invite_id", sa.String(length=32), nullable=False),
        sa.Column("child_id", sa.String(length=63), nullable=False),
        sa.Column("child_name", sa.String(length=200), nullable=False),
        sa.Column("secret_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("approval", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("child_signing_key", sa.LargeBinary(length=32), nullable=True),
        sa.Column("child_tls_cert_pem", sa.Text(), nullable=True),
        sa.Column("child_tls_fingerprint", sa.LargeBinary(length=32), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("agreement", sa.LargeBinary(), nullable=True),
        sa.Column("parent_signature", sa.LargeBinary(length=64), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("invite_id"),
    )
    with op.batch_alter_table("invites") as batch:
        batch.create_index(batch.f("ix_invites_child_id"), ["child_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("invites") as batch:
        batch.drop_index(batch.f("ix_invites_child_id"))
    op.drop_table("invites")
    with op.batch_alter_table("links") as batch:
        batch.drop_column("connected_since")
        batch.drop_column("revoked_entry")
        batch.drop_column("agreement_entry")
