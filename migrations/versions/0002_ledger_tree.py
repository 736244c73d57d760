"""Persisted ledger tree and signed checkpoints.

`ledger_nodes` holds every complete subtree of the RFC 6962 tree over `ledger_entries`
(level 0: the leaf hashes), so appends are O(log n) and proofs need O(log n) reads.
`checkpoints` holds the C2SP signed notes this node signed. Both are insert-only, refused
by triggers as `ledger_entries` is. Upgrading a database that already has entries fills
`ledger_nodes` from them, streaming in index order.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:12:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from node.ledger.merkle import Frontier, leaf_hash

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TABLES = ("ledger_nodes", "checkpoints")
_KEYS = {"ledger_nodes": "level = NEW.level AND idx = NEW.idx", "checkpoints": "size = NEW.size"}
_BACKFILL_CHUNK = 5000


def upgrade() -> None:
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    _backfill_nodes()
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for table in _TABLES:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is insert-only'); END"
                )
            # INSERT OR REPLACE deletes through conflict resolution, which fires no delete
            # trigger: refuse an insert whose key already exists.
            op.execute(
                f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "  # noqa: S608
                f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {_KEYS[table]}) "
                f"BEGIN SELECT RAISE(ABORT, '{table} is insert-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION lapor_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is insert-only', TG_TABLE_NAME; END $$"
        )
        for table in _TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_insert_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION lapor_insert_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION lapor_insert_only()"
            )


def _backfill_nodes() -> None:
    """Build the tree of the entries already stored, reading them in chunks."""
    bind = op.get_bind()
    entries = sa.table(
        "ledger_entries", sa.column("idx", sa.BigInteger), sa.column("entry", sa.LargeBinary)
    )
    nodes = sa.table(
        "ledger_nodes",
        sa.column("level", sa.Integer),
        sa.column("idx", sa.BigInteger),
        sa.column("hash", sa.LargeBinary),
    )
    frontier = Frontier()
    while True:
        rows = bind.execute(
            sa.select(entries.c.idx, entries.c.entry)
            .where(entries.c.idx >= frontier.size)
            .order_by(entries.c.idx)
            .limit(_BACKFILL_CHUNK)
        ).all()
        if not rows:
            return
        batch: list[dict[str, object]] = []
        for idx, entry in rows:
            if idx != frontier.size:
                raise RuntimeError(f"ledger_entries has no entry {frontier.size} (next is {idx})")
            batch.extend(
                {"level": lv, "idx": i, "hash": h} for lv, i, h in frontier.append(leaf_hash(entry))
            )
        bind.execute(sa.insert(nodes), batch)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS lapor_insert_only() CASCADE")
    op.drop_table("checkpoints")
    op.drop_table("ledger_nodes")
