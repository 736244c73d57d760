"""The persisted ledger tree (node.store.tree, record()) and signed checkpoints."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Engine

from node.complaints import ComplaintDraft
from node.errors import InconsistentCheckpointError
from node.ledger.checkpoint import Checkpoint
from node.ledger.merkle import MemoryTree, leaf_hash, verify_consistency, verify_inclusion
from node.ledger.note import open_checkpoint, parse_vkey
from node.services import checkpoints, complaints
from node.services._ledger import record
from node.services.context import NodeContext
from node.store import tree
from node.store.models import Base, LedgerEntryRow, LedgerNodeRow
from tests.conftest import NodeFactory
from tests.support.databases import alembic_config
from tests.support.factories import link_entry

DRAFT = ComplaintDraft(
    title="Lampu jalan mati",
    description="Sudah dua minggu",
    classification="pengaduan",
    category="infrastruktur",
    region_code="64.02",
    channel="walk_in",
)
OUR_TABLES = {"ledger_nodes", "checkpoints"}


def _append(ctx: NodeContext, count: int, per_transaction: int = 1) -> None:
    done = 0
    while done < count:
        with ctx.db.write() as session:
            for _ in range(min(per_transaction, count - done)):
                record(session, ctx, link_entry(done))
                done += 1


def _memory_tree(ctx: NodeContext) -> MemoryTree:
    with ctx.db.read() as session:
        rows = session.execute(select(LedgerEntryRow).order_by(LedgerEntryRow.idx)).scalars()
        return MemoryTree(leaf_hash(r.entry) for r in rows)


@pytest.fixture
def ctx(nodes: NodeFactory) -> Iterator[NodeContext]:
    yield nodes("id-64", "Provinsi Kalimantan Timur").ctx()


def test_stored_tree_equals_the_recomputed_tree(ctx: NodeContext) -> None:
    """Appends (single and batched) persist every complete node; roots and proofs match."""
    _append(ctx, 7)
    _append(ctx, 14, per_transaction=5)
    complaints.submit(ctx, DRAFT)
    reference = _memory_tree(ctx)
    assert reference.size == 22
    with ctx.db.read() as session:
        rows = session.execute(select(LedgerNodeRow)).scalars()
        stored = {(r.level, r.idx): r.hash for r in rows}
        assert len(stored) == 2 * 22 - (22).bit_count()
        for (level, idx), value in stored.items():
            assert reference.node(level, idx) == value
        for size in (3, 5, 16, 22):
            assert tree.root(session, size) == reference.root(size)
            assert tree.inclusion_proof(session, size - 1, size) == reference.inclusion_proof(
                size - 1, size
            )
            assert tree.consistency_proof(session, 3, size) == reference.consistency_proof(3, size)


def test_appends_from_two_processes_interleave_into_one_tree(ctx: NodeContext) -> None:
    """Two contexts on one database (server and CLI) append alternately; the tree stays right."""
    other = NodeContext.open(ctx.config.path)
    try:
        for _ in range(5):
            _append(ctx, 2, per_transaction=2)
            _append(other, 3, per_transaction=3)
    finally:
        other.close()
    reference = _memory_tree(ctx)
    with ctx.db.read() as session:
        assert tree.root(session, 25) == reference.root()


def test_a_rolled_back_savepoint_leaves_the_tree_consistent(ctx: NodeContext) -> None:
    """An append undone by a savepoint rollback is not reused by the next append."""
    with ctx.db.write() as session:
        record(session, ctx, link_entry(0))
        with pytest.raises(RuntimeError), session.begin_nested():
            record(session, ctx, link_entry(1))
            raise RuntimeError("undo")
        record(session, ctx, link_entry(2))
    reference = _memory_tree(ctx)
    assert reference.size == 2
    with ctx.db.read() as session:
        assert tree.root(session, 2) == reference.root()
        assert tree.frontier(session, 2).root() == reference.root()


def _count_queries(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda *args: seen.append(str(args[2])) if str(args[2]).startswith("SELECT") else None,
    )
    return seen


def test_a_proof_costs_one_query(ctx: NodeContext) -> None:
    """Inclusion and consistency proofs read the store with a single query each."""
    _append(ctx, 100, per_transaction=100)
    seen = _count_queries(ctx.db._reader)
    with ctx.db.read() as session:
        before = len(seen)
        proof = tree.inclusion_proof(session, 37, 100)
        assert len(seen) - before == 1
        before = len(seen)
        tree.consistency_proof(session, 37, 100)
        assert len(seen) - before == 1
        root = tree.root(session, 100)
        with ctx.db.read() as s2:
            leaf = s2.execute(
                select(LedgerEntryRow.leaf_hash).where(LedgerEntryRow.idx == 37)
            ).scalar_one()
    verify_inclusion(leaf, 37, 100, proof, root)


def test_sign_makes_a_consistent_checkpoint_only_when_the_tree_grew(ctx: NodeContext) -> None:
    """The first sign makes a checkpoint; signing again without growth returns the same one."""
    _append(ctx, 3)
    first, made = checkpoints.sign(ctx)
    assert made and first.size == 3
    again, made = checkpoints.sign(ctx)
    assert not made and again.note == first.note
    _append(ctx, 4)
    second, made = checkpoints.sign(ctx)
    assert made and second.size == 7
    vkey = parse_vkey(checkpoints.verifier_key(ctx))
    cp1, cp2 = open_checkpoint(first.note, vkey), open_checkpoint(second.note, vkey)
    assert cp2 == Checkpoint("lapor-node/id-64", 7, _memory_tree(ctx).root())
    with ctx.db.read() as session:
        verify_consistency(3, 7, cp1.root, cp2.root, tree.consistency_proof(session, 3, 7))
    assert checkpoints.latest(ctx) == second


def test_verifier_key_is_the_c2sp_vkey_of_the_signing_key(ctx: NodeContext) -> None:
    """identity show's vkey names the origin and carries the node's Ed25519 public key."""
    name, key_id_hex, _ = checkpoints.verifier_key(ctx).split("+", 2)
    parsed = parse_vkey(checkpoints.verifier_key(ctx))
    assert name == "lapor-node/id-64"
    assert len(key_id_hex) == 8
    assert parsed.public_key == ctx.signing_key.public.raw


def test_sign_refuses_when_the_stored_tree_no_longer_matches(ctx: NodeContext) -> None:
    """A tree node rewritten behind the node's back stops signing: no inconsistent checkpoint."""
    _append(ctx, 4)
    checkpoints.sign(ctx)
    _append(ctx, 1)
    with ctx.db.write() as session:
        if ctx.db.is_sqlite:
            session.execute(text("DROP TRIGGER ledger_nodes_no_update"))
        else:
            session.execute(text("ALTER TABLE ledger_nodes DISABLE TRIGGER ALL"))
        session.execute(
            text("UPDATE ledger_nodes SET hash = :h WHERE level = 2 AND idx = 0"), {"h": bytes(32)}
        )
    with pytest.raises(InconsistentCheckpointError, match="size 4"):
        checkpoints.sign(ctx)
    assert checkpoints.latest(ctx) is not None
    assert checkpoints.latest(ctx).size == 4  # type: ignore[union-attr]


def test_ledger_tables_refuse_update_and_delete(ctx: NodeContext) -> None:
    """ledger_nodes and checkpoints are insert-only in the database itself."""
    _append(ctx, 2)
    checkpoints.sign(ctx)
    for statement in ("UPDATE ledger_nodes SET hash = hash", "DELETE FROM checkpoints"):
        with pytest.raises(Exception, match="insert-only"), ctx.db.write() as session:
            session.execute(text(statement))


def test_upgrade_builds_the_tree_of_existing_entries(database_url: str) -> None:
    """Upgrading a 0001 database that has entries fills ledger_nodes from them."""
    command.upgrade(alembic_config(database_url), "0001")
    engine = create_engine(database_url)
    entries = [link_entry(i).SerializeToString() for i in range(11)]
    with engine.begin() as conn:
        for i, data in enumerate(entries):
            conn.execute(
                text(
                    "INSERT INTO ledger_entries (idx, entry, leaf_hash, recorded_at) "
                    "VALUES (:i, :e, :h, CURRENT_TIMESTAMP)"
                ),
                {"i": i, "e": data, "h": leaf_hash(data)},
            )
        conn.execute(text("UPDATE ledger_head SET size = 11"))
    command.upgrade(alembic_config(database_url), "head")
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        assert tree.root(session, 11) == MemoryTree(leaf_hash(e) for e in entries).root()
    engine.dispose()


def test_models_and_migrations_agree_on_the_ledger_tables(database_url: str) -> None:
    """After upgrade to head, Alembic finds no difference for ledger_nodes and checkpoints."""
    command.upgrade(alembic_config(database_url), "head")
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()

    def table_of(op: object) -> str | None:
        for item in op if isinstance(op, list) else [op]:
            for part in item if isinstance(item, tuple) else (item,):
                name = getattr(part, "name", None) or getattr(
                    getattr(part, "table", None), "name", None
                )
                if name in OUR_TABLES:
                    return str(name)
        return None

    assert [d for d in diff if table_of(d) is not None] == []
