"""record_many: a batch append that writes what record() writes one by one, in one go."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator, Sequence

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from node._proto.lapor.v1 import complaint_pb2, ledger_pb2
from node.clock import FixedClock
from node.ledger.merkle import MemoryTree, leaf_hash
from node.services._ledger import record, record_many
from node.services.context import NodeContext
from node.store import queries, tree
from node.store.models import LedgerEntryRow, LedgerNodeRow
from tests.conftest import NodeFactory

AT = dt.datetime(2026, 3, 2, 1, 2, 3, 456789, tzinfo=dt.UTC)

Stored = tuple[int, list[tuple[int, bytes, bytes, dt.datetime]], list[tuple[int, int, bytes]]]


class _Undo(Exception):
    """Raised to roll a write transaction back after looking at what it wrote."""


def _entry(n: int) -> ledger_pb2.LedgerEntry:
    """Entries of several kinds and sizes, so the batch is not uniform."""
    if n % 3 == 0:
        return ledger_pb2.LedgerEntry(
            link_established=ledger_pb2.LinkEstablished(
                peer_id=f"id-{n:02d}", role=ledger_pb2.PEER_ROLE_CHILD, peer_signing_key=bytes(32)
            )
        )
    summary = complaint_pb2.ComplaintSummary(
        tracking_id=f"id-64.2026.{n:06d}",
        origin_node="id-64",
        category="infrastruktur" * (n % 4 + 1),
        content_commitment=bytes([n % 256]) * 32,
    )
    return ledger_pb2.LedgerEntry(
        complaint_registered=ledger_pb2.ComplaintRegistered(complaint=summary)
    )


def _stored(session: Session) -> Stored:
    """The head, every ledger row and every tree node, as this session sees them."""
    entries = session.execute(
        select(
            LedgerEntryRow.idx,
            LedgerEntryRow.entry,
            LedgerEntryRow.leaf_hash,
            LedgerEntryRow.recorded_at,
        ).order_by(LedgerEntryRow.idx)
    ).all()
    nodes = session.execute(
        select(LedgerNodeRow.level, LedgerNodeRow.idx, LedgerNodeRow.hash).order_by(
            LedgerNodeRow.level, LedgerNodeRow.idx
        )
    ).all()
    return (
        queries.ledger_size(session),
        [(i, bytes(e), bytes(h), at) for i, e, h, at in entries],
        [(level, i, bytes(h)) for level, i, h in nodes],
    )


def _written_then_undone(ctx: NodeContext, append: Callable[[Session], object]) -> Stored:
    """What `append` writes, read inside its transaction, which is then rolled back."""
    seen: list[Stored] = []
    with pytest.raises(_Undo), ctx.db.write() as session:
        append(session)
        session.flush()
        seen.append(_stored(session))
        raise _Undo
    return seen[0]


def _reference(ctx: NodeContext) -> MemoryTree:
    with ctx.db.read() as session:
        rows = session.execute(select(LedgerEntryRow.entry).order_by(LedgerEntryRow.idx))
        return MemoryTree(leaf_hash(bytes(e)) for (e,) in rows)


def _node_reads(ctx: NodeContext) -> list[str]:
    """SELECTs on ledger_nodes issued from now on by the writer engine."""
    seen: list[str] = []

    def before(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("SELECT") and "ledger_nodes" in statement:
            seen.append(statement)

    event.listen(ctx.db._writer, "before_cursor_execute", before)
    return seen


@pytest.fixture
def ctx(nodes: NodeFactory) -> Iterator[NodeContext]:
    base = nodes("id-64", "Provinsi Kalimantan Timur").ctx()
    yield dataclasses.replace(base, clock=FixedClock(AT))


@pytest.mark.parametrize(
    "batches",
    [
        pytest.param([1], id="one"),
        pytest.param([8], id="power-of-two"),
        pytest.param([3, 5, 1, 13, 2], id="uneven"),
        pytest.param([31, 2], id="across-32"),
        pytest.param([600, 77], id="several-statements-per-table"),
    ],
)
def test_record_many_writes_what_record_writes_one_by_one(
    ctx: NodeContext, batches: Sequence[int]
) -> None:
    """Same entry bytes, leaves, recorded_at, tree nodes and head as record() in a loop."""
    total = sum(batches)

    def one_by_one(session: Session) -> None:
        assert [record(session, ctx, _entry(n)) for n in range(total)] == list(range(total))

    def batched(session: Session) -> None:
        done = 0
        for size in batches:
            indexes = record_many(session, ctx, [_entry(done + n) for n in range(size)])
            assert indexes == list(range(done, done + size))
            done += size

    expected = _written_then_undone(ctx, one_by_one)
    assert expected[0] == total and len(expected[2]) == 2 * total - total.bit_count()
    assert _written_then_undone(ctx, batched) == expected
    with ctx.db.write() as session:
        batched(session)
    with ctx.db.read() as session:
        assert _stored(session) == expected
        assert tree.root(session, total) == _reference(ctx).root()


def test_record_and_record_many_mix_in_one_transaction(ctx: NodeContext) -> None:
    """Interleaved, and across a rolled-back savepoint, they build one right tree, and an
    append after a batch reuses the batch's frontier instead of reading it again."""
    reads = _node_reads(ctx)
    with ctx.db.write() as session:
        assert record(session, ctx, _entry(0)) == 0
        assert record_many(session, ctx, [_entry(n) for n in (1, 2, 3)]) == [1, 2, 3]
        before = len(reads)
        assert record(session, ctx, _entry(4)) == 4
        assert record_many(session, ctx, [_entry(5), _entry(6)]) == [5, 6]
        assert len(reads) == before  # the frontier after each batch was already at hand
        with pytest.raises(_Undo), session.begin_nested():
            assert record_many(session, ctx, [_entry(90), _entry(91), _entry(92)]) == [7, 8, 9]
            raise _Undo
        assert record(session, ctx, _entry(7)) == 7
        assert record_many(session, ctx, [_entry(n) for n in range(8, 12)]) == [8, 9, 10, 11]
    reference = _reference(ctx)
    assert reference.size == 12
    with ctx.db.read() as session:
        stored = _stored(session)
        assert stored[0] == 12
        assert stored[2] == sorted(
            (level, i, reference.node(level, i)) for level in range(4) for i in range(12 >> level)
        )
        for size in (1, 4, 7, 12):
            assert tree.root(session, size) == reference.root(size)


def test_the_transaction_keeps_the_nodes_it_read_or_wrote(ctx: NodeContext) -> None:
    """Roots and proofs in the appending transaction read no node it already read or
    wrote (node.store.tree._stored); the nodes a rolled-back savepoint wrote are replaced
    by those of the appends that fill the same positions again, so the roots and proofs
    over them are those of what replaced it."""
    reads = _node_reads(ctx)
    with ctx.db.write() as session:
        record_many(session, ctx, [_entry(n) for n in range(7)])
        before = len(reads)
        seven = tree.root(session, 7)
        assert len(reads) == before  # the frontier read and the nodes written: all at hand
        with pytest.raises(_Undo), session.begin_nested():
            record_many(session, ctx, [_entry(n) for n in range(90, 95)])
            assert tree.root(session, 12) != seven
            raise _Undo
        record_many(session, ctx, [_entry(n) for n in range(7, 12)])
        roots = {size: tree.root(session, size) for size in (1, 7, 8, 10, 12)}
        proofs = {size: tree.consistency_proof(session, size, 12) for size in (3, 7, 9)}
    reference = _reference(ctx)
    assert reference.size == 12
    assert roots == {size: reference.root(size) for size in roots}
    with ctx.db.read() as session:
        assert proofs == {size: tree.consistency_proof(session, size, 12) for size in proofs}


def test_a_later_transaction_continues_after_a_batch(ctx: NodeContext) -> None:
    """Batches committed one after another extend the same tree."""
    with ctx.db.write() as session:
        record_many(session, ctx, [_entry(n) for n in range(5)])
    with ctx.db.write() as session:
        assert record_many(session, ctx, [_entry(n) for n in range(5, 9)]) == [5, 6, 7, 8]
    with ctx.db.read() as session:
        assert tree.root(session, 9) == _reference(ctx).root()


def test_a_rolled_back_batch_leaves_nothing(ctx: NodeContext) -> None:
    """An exception after record_many undoes the rows, the nodes and the head."""
    record_many_then_fail = _written_then_undone(
        ctx, lambda session: record_many(session, ctx, [_entry(n) for n in range(6)])
    )
    assert record_many_then_fail[0] == 6
    with ctx.db.read() as session:
        assert _stored(session) == (0, [], [])
    with ctx.db.write() as session:
        assert record_many(session, ctx, [_entry(0)]) == [0]


def test_an_empty_batch_is_a_no_op(ctx: NodeContext) -> None:
    """record_many([]) returns [] and issues no SQL at all."""
    statements: list[str] = []
    event.listen(
        ctx.db._writer, "before_cursor_execute", lambda *args: statements.append(str(args[2]))
    )
    with ctx.db.write() as session:
        before = len(statements)
        assert record_many(session, ctx, []) == []
        assert len(statements) == before
    with ctx.db.read() as session:
        assert _stored(session) == (0, [], [])


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "no-returning"])
def test_the_head_size_is_known_without_a_query_only_where_it_is_true(
    ctx: NodeContext, returning: bool
) -> None:
    """After record_many, lock_head in the same transaction reads nothing (the append moved
    the head in one statement that returned it; two where there is no RETURNING, as on a
    SQLite older than 3.35). In a savepoint, or back in the parent after one, it reads the
    head again: a savepoint rolled back takes its appends with it, and one released leaves
    the parent's earlier size stale."""
    ctx.db._writer.dialect.update_returning = returning
    moved = 1 if returning else 2
    heads: list[str] = []

    def before(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "ledger_head" in statement:
            heads.append(statement)

    event.listen(ctx.db._writer, "before_cursor_execute", before)
    with ctx.db.write() as session:
        assert record_many(session, ctx, [_entry(n) for n in range(3)]) == [0, 1, 2]
        assert len(heads) == moved  # the UPDATE ... RETURNING that moved it
        assert tree.lock_head(session) == 3
        assert len(heads) == moved
        with pytest.raises(_Undo), session.begin_nested():
            assert tree.lock_head(session) == 3
            assert record_many(session, ctx, [_entry(n) for n in range(3, 5)]) == [3, 4]
            assert tree.lock_head(session) == 5
            raise _Undo
        assert tree.lock_head(session) == 3
        with session.begin_nested():
            assert record_many(session, ctx, [_entry(n) for n in range(3, 7)]) == [3, 4, 5, 6]
        assert tree.lock_head(session) == 7
        reads = len(heads)
        assert tree.lock_head(session) == 7
        assert len(heads) == reads
    with ctx.db.write() as session:
        assert tree.lock_head(session) == 7
        assert record_many(session, ctx, [_entry(7)]) == [7]
    with ctx.db.read() as session:
        assert queries.ledger_size(session) == 8
        assert tree.root(session, 8) == _reference(ctx).root()
