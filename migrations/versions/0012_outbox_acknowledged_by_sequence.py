"""The outbox's acknowledgement is the link's acked_out_seq alone: drop outbox.acked_at.

An Ack used to set acked_at on every outbox row it covered (an UPDATE of up to a batch of
rows, each rewriting its index entries) besides moving the link's acked_out_seq; what is
acknowledged is now read from the link: a row is acknowledged when its sequence is at
most its link's acked_out_seq (decision 0020). The index `ix_outbox_pending` (peer_id,
acked_at, sequence) goes with the column; `uq_outbox_peer_sequence` serves the reads by
sequence.

SQLite drops a column in place only from 3.35; an older SQLite keeps the column, which
nothing reads or writes any more.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 16:00:00.000000
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _drops_columns() -> bool:
    return op.get_bind().dialect.name != "sqlite" or sqlite3.sqlite_version_info >= (3, 35)


def upgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="outbox")
    if _drops_columns():
        op.execute("ALTER TABLE outbox DROP COLUMN acked_at")


def downgrade() -> None:
    if _drops_columns():
        op.add_column("outbox", sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True))
        # What the link says was acknowledged, with the time of the link's last Ack.
        op.execute(
            "UPDATE outbox SET acked_at = (SELECT links.last_seen_at FROM links "
            "WHERE links.peer_id = outbox.peer_id AND outbox.sequence <= links.acked_out_seq)"
        )
    op.create_index("ix_outbox_pending", "outbox", ["peer_id", "acked_at", "sequence"])
