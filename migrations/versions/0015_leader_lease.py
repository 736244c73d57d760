"""The leader lease of a node's `serve` processes on PostgreSQL: `leader_lease`.

One row. The process that holds the lease (its epoch, until `expires_at` on the database's
clock) is the only one that links, writes and signs; every write transaction of a `serve`
checks the epoch (node.store.lease, docs/decisions/0024-fenced-single-writer.md). The
epoch only grows: a takeover sets epoch + 1, and its unique index makes that UPDATE wait
for every write transaction of the previous epoch in flight (they hold FOR KEY SHARE).
SQLite has the table too and never uses it (one `serve` per data directory).

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-07 14:20:00.000000
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def upgrade() -> None:
    table = op.create_table(
        "leader_lease",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("epoch", name="uq_leader_lease_epoch"),
    )
    never = NEVER if op.get_bind().dialect.name != "sqlite" else NEVER.replace(tzinfo=None)
    op.bulk_insert(table, [{"id": 1, "epoch": 0, "holder": "", "expires_at": never}])


def downgrade() -> None:
    op.drop_table("leader_lease")
