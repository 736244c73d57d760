"""The trust entries' index (ledger_trust_entries, docs/decisions/0015): every entry of a
trust kind is named as it is appended and no other, the ledger's keys and chain read from
it are those a pass over the whole ledger finds, and upgrading an older database names the
entries it already has, on both databases."""

from __future__ import annotations

import datetime as dt
import io

from alembic import command
from sqlalchemy import create_engine, select, text

from node._proto.lapor.v1 import ledger_pb2
from node.ledger.audit import verify_export, vkey_for
from node.ledger.merkle import leaf_hash
from node.services import audit, complaints, rotation
from node.services.context import NodeContext
from node.services.trust import TRUST_KINDS
from node.store import queries
from node.store.models import LedgerTrustEntryRow
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.support.databases import alembic_config
from tests.support.nodes import link


def _named(ctx: NodeContext) -> list[int]:
    with ctx.db.read() as session:
        return list(session.scalars(select(LedgerTrustEntryRow.idx).order_by("idx")))


def _of_trust_kind(ctx: NodeContext) -> list[int]:
    """What a pass over the whole ledger finds (what the index stands for)."""
    with ctx.db.read() as session:
        return [
            row.idx
            for row in queries.iter_ledger(session)
            if ledger_pb2.LedgerEntry.FromString(row.entry).WhichOneof("kind") in TRUST_KINDS
        ]


def test_each_trust_entry_is_named_as_it_is_appended(nodes: NodeFactory) -> None:
    """A province that joins nothing, links a child, rotates its key twice between batches
    of complaints: the index names exactly its trust entries; the head names the key that
    started the ledger; its export (keys and chain from the index) verifies."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    ctx = province.ctx()
    first_key = ctx.signing_key.public.raw
    complaints.submit_many(ctx, [draft(n) for n in range(30)])
    rotation.rotate(ctx, dt.timedelta(0))
    link(province, nodes("id-64-02", "Kabupaten Kutai Kartanegara"))
    complaints.submit_many(ctx, [draft(n) for n in range(30, 40)])
    ctx = NodeContext.open(province.config)  # the rotated key is the one in force now
    rotation.rotate(ctx, dt.timedelta(0))
    ctx = NodeContext.open(province.config)
    complaints.submit(ctx, draft(40))
    named = _named(ctx)
    assert named == _of_trust_kind(ctx)
    assert len(named) >= 2  # both rotations
    head = audit.head(ctx)
    assert head.first_vkey == vkey_for(ctx.node_id, first_key)
    assert head.first_vkey != head.vkey
    out = io.StringIO()
    audit.export(ctx, out)
    report = verify_export(out.getvalue().splitlines(keepends=True))
    assert report.entries == head.ledger_size


def test_upgrade_names_the_trust_entries_already_stored(database_url: str) -> None:
    """A 0009 database with 12,000 entries (more than one backfill chunk): two of a trust
    kind, one that only holds a trust kind's tag bytes and one that is no LedgerEntry at
    all; after upgrading, the index names the two."""
    command.upgrade(alembic_config(database_url), "0009")
    plain = ledger_pb2.LedgerEntry(node_id="id-64").SerializeToString()
    rotated = ledger_pb2.LedgerEntry(
        node_id="id-64", key_rotated=ledger_pb2.KeyRotated()
    ).SerializeToString()
    agreed = ledger_pb2.LedgerEntry(
        node_id="id-64", link_agreed=ledger_pb2.LinkAgreed()
    ).SerializeToString()
    lookalike = ledger_pb2.LedgerEntry(node_id="x\xa2\x01").SerializeToString()
    entries = [plain] * 12_000
    entries[7], entries[9_001], entries[50], entries[5_000] = (
        rotated,
        agreed,
        lookalike,
        b"\x92\x01\xff",
    )
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ledger_entries (idx, entry, leaf_hash, recorded_at) "
                "VALUES (:i, :e, :h, CURRENT_TIMESTAMP)"
            ),
            [{"i": i, "e": data, "h": leaf_hash(data)} for i, data in enumerate(entries)],
        )
        conn.execute(text("UPDATE ledger_head SET size = 12000"))
    command.upgrade(alembic_config(database_url), "head")
    with engine.connect() as conn:
        named = list(conn.scalars(text("SELECT idx FROM ledger_trust_entries ORDER BY idx")))
    engine.dispose()
    assert named == [7, 9_001]
