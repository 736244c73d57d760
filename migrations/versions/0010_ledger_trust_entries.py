"""The indexes of the ledger's trust entries (docs/decisions/0015-trust-entries-indexed.md).

`ledger_trust_entries` names each entry of a kind that makes the node's chain of trust
(LedgerEntry fields 18, 20 and 21: link_agreed, key_rotated, peer_key_rotated), so the
chain is read from those entries alone rather than from a pass over the whole ledger.
Upgrading a database that already has entries fills it from them, reading in chunks.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import ledger_pb2

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_BACKFILL_CHUNK = 5000
# The varint tags of LedgerEntry fields 18, 20 and 21, wire type 2: an entry whose bytes
# hold none of them is not of a trust kind (and is not parsed).
_TAGS = (b"\x92\x01", b"\xa2\x01", b"\xaa\x01")
_KINDS = frozenset({"link_agreed", "key_rotated", "peer_key_rotated"})


def upgrade() -> None:
    op.create_table(
        "ledger_trust_entries",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    bind = op.get_bind()
    entries = sa.table(
        "ledger_entries", sa.column("idx", sa.BigInteger), sa.column("entry", sa.LargeBinary)
    )
    marks = sa.table("ledger_trust_entries", sa.column("idx", sa.BigInteger))
    position = 0
    while True:
        rows = bind.execute(
            sa.select(entries.c.idx, entries.c.entry)
            .where(entries.c.idx >= position)
            .order_by(entries.c.idx)
            .limit(_BACKFILL_CHUNK)
        ).all()
        if not rows:
            return
        found = [{"idx": idx} for idx, data in rows if _is_trust_entry(data)]
        if found:
            bind.execute(sa.insert(marks), found)
        position = rows[-1][0] + 1


def _is_trust_entry(data: bytes) -> bool:
    if not any(tag in data for tag in _TAGS):
        return False
    try:
        return ledger_pb2.LedgerEntry.FromString(data).WhichOneof("kind") in _KINDS
    except DecodeError:  # not a LedgerEntry: not one of the chain's
        return False


def downgrade() -> None:
    op.drop_table("ledger_trust_entries")
