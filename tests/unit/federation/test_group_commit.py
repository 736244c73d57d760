"""Group commit (node.federation.group_commit, node.services.group_receive): the batches of
several links committed in one transaction give each link exactly what its own
receive_batch would, a failing batch fails alone, and concurrent sessions are grouped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, select

from node.errors import PermissionDeniedError, SignatureError, StateError
from node.federation import group_commit
from node.federation.group_commit import GroupWriter
from node.federation.workers import DbWorkers
from node.ids import NodeId
from node.services import bulk, complaints, exchange, lifecycle, links
from node.services.group_receive import LinkAck, LinkBatch, LinkMark, commit_group, receive_group
from node.store import queries
from node.store.models import Link
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.support.nodes import TestNode, link, snapshot


def _province(nodes: NodeFactory, children: int) -> tuple[TestNode, list[TestNode]]:
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    kids = [nodes(f"id-64-0{n + 1}", f"Kabupaten {n + 1}") for n in range(children)]
    for kid in kids:
        link(parent, kid)
    return parent, kids


def _receipts(parent: TestNode, kid: TestNode, count: int) -> tuple[list[str], list]:  # type: ignore[type-arg]
    """Refer `count` complaints to `kid`, let it take them; the receipts it owes `parent`."""
    p, c = parent.ctx(), kid.ctx()
    ids = complaints.submit_many(p, [draft(i) for i in range(count)])
    complaints.refer_many(p, ids, c.node_id)
    rows, _ = exchange.pending(p, c.node_id, 0, 1000, 0)
    taken = exchange.receive_batch(c, p.node_id, [d for _, d in rows])
    assert (taken.error, taken.applied) == (None, count)
    exchange.acknowledge(p, c.node_id, count)
    state = exchange.hello_state(p, c.node_id)
    ups, _ = exchange.pending(c, p.node_id, 0, 1000, state.held_checkpoint_size)
    return list(ids), [d for _, d in ups]


def _handled(parent: TestNode, kid: TestNode, count: int) -> tuple[list[str], list]:  # type: ignore[type-arg]
    """`_receipts`, and the child then follows each complaint up: what it owes `parent` is
    its receipts and then its status updates, with their notes beside them."""
    ids, _ = _receipts(parent, kid, count)
    p, c = parent.ctx(), kid.ctx()
    for tracking_id in ids:
        lifecycle.follow_up(c, tracking_id, f"tim turun ke lokasi {tracking_id}")
    state = exchange.hello_state(p, c.node_id)
    ups, _ = exchange.pending(c, p.node_id, 0, 1000, state.held_checkpoint_size)
    return ids, [d for _, d in ups]


def test_children_runs_share_one_bulk_pass(
    nodes: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three children's receipts and follow-ups in one group: one bulk pass over the three
    links takes every envelope, each link gets its own result, and every complaint is in
    progress, held by its child, with the child's note kept."""
    parent, kids = _province(nodes, 3)
    p = parent.ctx()
    work = [(kid, *_handled(parent, kid, 2)) for kid in kids]
    passes: list[list[int]] = []
    receive_runs = bulk.receive_runs

    def counted(*args: Any) -> list[bulk.RunResult]:
        runs = receive_runs(*args)
        passes.append([run.taken for run in runs])
        return runs

    monkeypatch.setattr(bulk, "receive_runs", counted)
    results = receive_group(
        p, [LinkBatch(NodeId(kid.ctx().node_id), batch) for kid, _, batch in work]
    )
    assert passes == [[4, 4, 4]]
    for (kid, ids, _), result in zip(work, results, strict=True):
        assert not isinstance(result, Exception)
        assert (result.error, result.applied, result.committed_through) == (None, 4, 4)
        for tracking_id in ids:
            view = complaints.show(p, tracking_id)
            assert (view.status, view.holder) == ("in_progress", kid.ctx().node_id)
            with p.db.read() as session:
                notes = lifecycle.notes_of(session, tracking_id)
                assert [n.text for n in notes] == [f"tim turun ke lokasi {tracking_id}"]


def test_each_link_gets_its_own_result_from_one_transaction(nodes: NodeFactory) -> None:
    """Three children's receipts in one group: each result is that link's own (applied,
    Ack sequence), and every complaint is accepted by the child that received it."""
    parent, kids = _province(nodes, 3)
    p = parent.ctx()
    work = [(kid, *_receipts(parent, kid, n + 2)) for n, kid in enumerate(kids)]
    results = receive_group(
        p, [LinkBatch(NodeId(kid.ctx().node_id), batch) for kid, _, batch in work]
    )
    for (kid, ids, _), result in zip(work, results, strict=True):
        assert not isinstance(result, Exception)
        assert (result.error, result.applied, result.committed_through) == (
            None,
            len(ids),
            len(ids),
        )
        for tracking_id in ids:
            view = complaints.show(p, tracking_id)
            assert (view.status, view.holder) == ("accepted", kid.ctx().node_id)


def test_a_failing_batch_fails_alone(nodes: NodeFactory) -> None:
    """Between two good batches, one from a peer that is not linked (raises: rolled back to
    its savepoint) and one with a bad envelope (refused at its third envelope): the good
    ones commit whole, the refused one keeps what came before the bad envelope."""
    parent, kids = _province(nodes, 3)
    p = parent.ctx()
    (ids_a, batch_a), (ids_b, batch_b), (ids_c, batch_c) = (
        _receipts(parent, kid, 4) for kid in kids
    )
    batch_b[2].envelope.signature = bytes(64)
    peers = [NodeId(kid.ctx().node_id) for kid in kids]
    results = receive_group(
        p,
        [
            LinkBatch(peers[0], batch_a),
            LinkBatch(NodeId("id-99"), batch_a),
            LinkBatch(peers[1], batch_b),
            LinkBatch(peers[2], batch_c),
        ],
    )
    a, stranger, b, c = results
    assert isinstance(stranger, PermissionDeniedError)
    assert not isinstance(a, Exception) and not isinstance(c, Exception)
    assert not isinstance(b, Exception)
    assert (a.applied, c.applied) == (4, 4)
    assert b.error is not None and (b.committed_through, b.failed_sequence) == (2, 3)
    assert [complaints.show(p, t).status for t in ids_b] == ["accepted"] * 2 + ["referred"] * 2
    assert {complaints.show(p, t).status for t in ids_a + ids_c} == {"accepted"}


def test_a_refused_group_member_changes_nothing_of_its_link(nodes: NodeFactory) -> None:
    """A batch refused at its first envelope, in a group: its link's state is as before."""
    parent, kids = _province(nodes, 2)
    p = parent.ctx()
    (_, batch_a), (_, batch_b) = (_receipts(parent, kid, 3) for kid in kids)
    before = snapshot(parent)
    batch_b[0].envelope.body = batch_b[0].envelope.body + b"\x00"
    only_b = receive_group(p, [LinkBatch(NodeId(kids[1].ctx().node_id), batch_b)])[0]
    assert not isinstance(only_b, Exception)
    assert isinstance(only_b.error, SignatureError)
    assert only_b.committed_through == 0
    assert snapshot(parent) == before
    other = receive_group(p, [LinkBatch(NodeId(kids[0].ctx().node_id), batch_a)])[0]
    assert isinstance(other, exchange.BatchResult) and other.committed_through == 3


def test_concurrent_sessions_are_grouped(nodes: NodeFactory) -> None:
    """Four links handing their batches to the writer at once: fewer transactions than
    batches, and each caller gets its own link's result."""
    parent, kids = _province(nodes, 4)
    p = parent.ctx()
    work = [(NodeId(kid.ctx().node_id), *_receipts(parent, kid, 3)) for kid in kids]

    async def run() -> tuple[list[exchange.BatchResult], GroupWriter]:
        db = DbWorkers()
        try:
            writer = GroupWriter(p, db)
            results = await asyncio.gather(
                *(writer.receive(peer, batch) for peer, _, batch in work)
            )
            return list(results), writer
        finally:
            db.shutdown()

    results, writer = asyncio.run(run())
    assert [r.committed_through for r in results] == [3, 3, 3, 3]
    assert writer.batches == 4 and writer.groups < 4
    for _, ids, _ in work:
        assert {complaints.show(p, t).status for t in ids} == {"accepted"}


def test_a_link_batch_error_reaches_only_its_caller(nodes: NodeFactory) -> None:
    """Through the writer: the caller whose peer is not linked gets PermissionDeniedError;
    the other caller's batch commits."""
    parent, kids = _province(nodes, 1)
    p = parent.ctx()
    peer = NodeId(kids[0].ctx().node_id)
    ids, batch = _receipts(parent, kids[0], 2)

    async def run() -> list[object]:
        db = DbWorkers()
        try:
            writer = GroupWriter(p, db)
            return await asyncio.gather(
                writer.receive(NodeId("id-99"), batch),
                writer.receive(peer, batch),
                return_exceptions=True,
            )
        finally:
            db.shutdown()

    stranger, ours = asyncio.run(run())
    assert isinstance(stranger, PermissionDeniedError)
    assert isinstance(ours, exchange.BatchResult) and ours.committed_through == 2
    assert {complaints.show(p, t).status for t in ids} == {"accepted"}


def test_acks_join_the_group_and_a_refused_one_fails_alone(nodes: NodeFactory) -> None:
    """Through the writer, beside a child's batch: one child's Ack of what the province
    sent moves its link's acknowledged sequence; another's Ack beyond what was sent is
    refused (StateError) for that caller alone, leaving its link as it was; the batch
    commits."""
    parent, kids = _province(nodes, 3)
    p = parent.ctx()
    peers = [NodeId(kid.ctx().node_id) for kid in kids]
    for kid in kids[:2]:  # three referrals sent to each, none acknowledged yet
        complaints.refer_many(
            p, complaints.submit_many(p, [draft(i) for i in range(3)]), kid.ctx().node_id
        )
    ids, batch = _receipts(parent, kids[2], 2)

    async def run() -> list[object]:
        db = DbWorkers()
        try:
            writer = GroupWriter(p, db)
            return await asyncio.gather(
                writer.acknowledge(peers[0], 2),
                writer.acknowledge(peers[1], 7),
                writer.receive(peers[2], batch),
                return_exceptions=True,
            )
        finally:
            db.shutdown()

    first, beyond, received = asyncio.run(run())
    assert first is None
    assert isinstance(beyond, StateError)
    assert isinstance(received, exchange.BatchResult) and received.committed_through == 2
    with p.db.read() as session:
        acked = {link.peer_id: link.acked_out_seq for link in session.scalars(select(Link))}
    assert (acked[peers[0]], acked[peers[1]]) == (2, 0)
    assert {complaints.show(p, t).status for t in ids} == {"accepted"}


def test_connection_marks_join_the_group_and_the_latest_holds(nodes: NodeFactory) -> None:
    """Through the writer, in one group beside a child's batch: two links come up, one
    comes up and goes down, one goes down and comes up again, and a revoked one comes up.
    One transaction records them all with one executemany; `link list` shows each link as
    its latest mark left it (last seen when it came up), and the revoked link unmarked."""
    parent, kids = _province(nodes, 5)
    p = parent.ctx()
    peers = [NodeId(kid.ctx().node_id) for kid in kids]
    links.revoke(p, peers[3], "bench")
    ids, batch = _receipts(parent, kids[4], 2)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.lstrip())

    async def run() -> tuple[list[object], GroupWriter]:
        db = DbWorkers()
        try:
            writer = GroupWriter(p, db)
            done = await asyncio.gather(
                writer.mark(peers[0], True),
                writer.mark(peers[1], False),
                writer.mark(peers[2], True),
                writer.mark(peers[1], True),
                writer.mark(peers[2], False),
                writer.mark(peers[3], True),
                writer.receive(peers[4], batch),
            )
            return list(done), writer
        finally:
            db.shutdown()

    event.listen(p.db._writer, "before_cursor_execute", seen)
    try:
        done, writer = asyncio.run(run())
    finally:
        event.remove(p.db._writer, "before_cursor_execute", seen)
    assert done[:6] == [None] * 6
    assert isinstance(done[6], exchange.BatchResult) and done[6].committed_through == 2
    assert writer.groups == 1
    marks = [t for t in statements if t.startswith("UPDATE links") and "connected_since" in t]
    assert len(marks) == 1, statements
    states = {view.peer_id: view.state for view in links.list_links(p)}
    assert [states[peer] for peer in (peers[0], peers[1], peers[2])] == [
        "connected",
        "connected",
        "not connected",
    ]
    with p.db.read() as session:
        rows = {link.peer_id: link for link in session.scalars(select(Link))}
    assert (rows[peers[2]].connected_since, rows[peers[2]].last_seen_at is not None) == (None, True)
    assert (rows[peers[3]].connected_since, rows[peers[3]].revoked_at is not None) == (None, True)
    assert {complaints.show(p, t).status for t in ids} == {"accepted"}


def test_a_mark_whose_caller_gave_up_still_holds(nodes: NodeFactory) -> None:
    """A link goes down and the task recording it is cancelled while it waits for the
    group: the mark is recorded all the same (the stream did go down)."""
    parent, kids = _province(nodes, 1)
    p = parent.ctx()
    peer = NodeId(kids[0].ctx().node_id)

    async def run() -> None:
        db = DbWorkers()
        try:
            writer = GroupWriter(p, db)
            await writer.mark(peer, True)
            down = asyncio.create_task(writer.mark(peer, False))
            await asyncio.sleep(0)  # queued
            down.cancel()
            await writer.mark(peer, True)  # a later group: the cancelled mark came first
            await writer.mark(peer, False)
            gone = asyncio.create_task(writer.mark(peer, False))
            await asyncio.sleep(0)
            gone.cancel()
            await writer.acknowledge(peer, 0)  # the group after it
        finally:
            db.shutdown()

    asyncio.run(run())
    with p.db.read() as session:
        row = session.scalars(select(Link).where(Link.peer_id == peer)).one()
    assert row.connected_since is None
    assert row.last_seen_at is not None


def test_an_ack_of_envelopes_sent_takes_one_statement_and_a_refused_one_changes_nothing(
    nodes: NodeFactory,
) -> None:
    """In one group: an Ack of envelopes sent and a repeated Ack each take one statement
    and no savepoint; an Ack beyond what was sent and one from a peer not linked are
    refused alone (StateError, PermissionDeniedError), the refused link left as it was."""
    parent, kids = _province(nodes, 3)
    p = parent.ctx()
    peers = [NodeId(kid.ctx().node_id) for kid in kids]
    for kid in kids:  # three referrals sent to each, none acknowledged yet
        complaints.refer_many(
            p, complaints.submit_many(p, [draft(i) for i in range(3)]), kid.ctx().node_id
        )
    exchange.acknowledge(p, peers[1], 2)
    with p.db.read() as session:
        before = session.scalars(select(Link).where(Link.peer_id == peers[2])).one()
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.lstrip())

    event.listen(p.db._writer, "before_cursor_execute", seen)
    try:
        _, acked = commit_group(
            p,
            [],
            [
                LinkAck(peers[0], 3),
                LinkAck(peers[1], 1),
                LinkAck(peers[2], 4),
                LinkAck(NodeId("id-99"), 1),
            ],
        )
    finally:
        event.remove(p.db._writer, "before_cursor_execute", seen)
    assert acked[:2] == [None, None]
    assert isinstance(acked[2], StateError) and isinstance(acked[3], PermissionDeniedError)
    savepoints = [t for t in statements if t.upper().startswith("SAVEPOINT")]
    assert len(savepoints) == 2, statements  # the two refused, each on the single path
    updates = [t for t in statements if t.upper().startswith("UPDATE LINKS")]
    assert len(updates) == 6, statements  # one each, and the refused two again in theirs
    with p.db.read() as session:
        rows = {link.peer_id: link for link in session.scalars(select(Link))}
    assert [rows[peer].acked_out_seq for peer in peers] == [3, 2, 0]
    assert (rows[peers[2]].last_seen_at, rows[peers[2]].acked_out_seq) == (
        before.last_seen_at,
        before.acked_out_seq,
    )


def _group_statements(p: Any, work: list[tuple[Any, Any]]) -> tuple[list[Any], list[str]]:
    """receive_group over (child node, batch) pairs, and every statement the writer ran."""
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.lstrip())

    event.listen(p.db._writer, "before_cursor_execute", seen)
    try:
        results = receive_group(
            p, [LinkBatch(NodeId(kid.ctx().node_id), batch) for kid, batch in work]
        )
    finally:
        event.remove(p.db._writer, "before_cursor_execute", seen)
    return results, statements


def test_the_links_are_read_once_per_group(nodes: NodeFactory) -> None:
    """Three children's batches in one group: their link rows are read (and locked) by one
    statement, not again by each batch."""
    parent, kids = _province(nodes, 3)
    p = parent.ctx()
    work = [(kid, *_handled(parent, kid, 2)) for kid in kids]
    results, statements = _group_statements(p, [(kid, batch) for kid, _, batch in work])
    assert all(isinstance(r, exchange.BatchResult) and r.applied == 4 for r in results)
    reads = [t for t in statements if t.upper().startswith("SELECT") and "FROM links" in t]
    assert len(reads) == 1, reads


def test_batches_taken_whole_by_the_bulk_pass_need_no_savepoint_each(nodes: NodeFactory) -> None:
    """Three children's receipts and follow-ups, all taken by the bulk pass: the group sets
    no savepoint (not the pass's, decision 0043; not one per link, decision 0041), writes
    the three link rows with one statement (the pass's sequences and checkpoints and last
    seen, at commit), not one more per link, and each link still ends at its last
    sequence, marked seen."""
    parent, kids = _province(nodes, 3)
    p = parent.ctx()
    work = [(kid, *_handled(parent, kid, 2)) for kid in kids]
    results, statements = _group_statements(p, [(kid, batch) for kid, _, batch in work])
    assert all(isinstance(r, exchange.BatchResult) and r.applied == 4 for r in results)
    savepoints = [t for t in statements if t.upper().startswith("SAVEPOINT")]
    link_updates = [t for t in statements if t.upper().startswith("UPDATE LINKS")]
    assert len(savepoints) == 0, savepoints
    assert len(link_updates) == 1, link_updates
    with p.db.read() as session:
        rows = {link.peer_id: link for link in session.scalars(select(Link))}
    for kid, _, _ in work:
        row = rows[kid.ctx().node_id]
        assert row.last_in_seq == 4
        assert row.last_seen_at is not None


# Statements one group sends the database, opening and committing aside: the write lock,
# the links locked, four lookups, the ledger head and frontier, two ledger inserts, the
# complaints' states, notes, events and inbox, the links' rows. Decision 0043 took it from
# 18 (19 with the leader lease checked first) by dropping the bulk pass's savepoint and
# release, writing the links' rows once, and checking the lease with the write lock.
GROUP_STATEMENTS = 15


def test_a_groups_statements_do_not_grow_with_its_links(
    nodes: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Children's receipts and follow-ups taken by the bulk pass: a group of three links and
    then a group of six other links each send the database GROUP_STATEMENTS statements."""
    # Bigger inserts go by COPY on PostgreSQL, on the driver's own cursor, which the capture
    # does not see: here every insert is one statement, whatever its rows.
    monkeypatch.setattr(queries, "_PG_COPY_ROWS", 1 << 20)
    parent, kids = _province(nodes, 9)
    p = parent.ctx()
    work = [(kid, *_handled(parent, kid, 2)) for kid in kids]
    counts = []
    for group in (work[:3], work[3:]):
        results, statements = _group_statements(p, [(kid, batch) for kid, _, batch in group])
        assert all(isinstance(r, exchange.BatchResult) and r.applied == 4 for r in results)
        counts.append(len(statements))
    assert counts == [GROUP_STATEMENTS, GROUP_STATEMENTS], statements


def test_a_failing_bulk_pass_rolls_back_and_the_group_goes_again_without_it(
    nodes: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bulk pass raises (after writing) in a group with two links' batches, an Ack and a
    connection mark: the transaction is rolled back and the group applied again link by
    link; every batch and the Ack are applied once, and the mark holds."""
    parent, kids = _province(nodes, 3)
    p = parent.ctx()
    peers = [NodeId(kid.ctx().node_id) for kid in kids]
    work = [(kid, *_handled(parent, kid, 2)) for kid in kids[:2]]
    complaints.refer_many(
        p, complaints.submit_many(p, [draft(i) for i in range(3)]), kids[2].ctx().node_id
    )
    receive_runs = bulk.receive_runs

    def failing(*args: Any) -> list[bulk.RunResult]:
        runs = receive_runs(*args)  # its writes are made, then the group's pass fails
        if len(args[2]) > 1:  # (a link's own run, receive_batch_in's, does not)
            raise RuntimeError("a fault in the bulk pass")
        return runs

    monkeypatch.setattr(bulk, "receive_runs", failing)
    before = snapshot(parent)["ledger"]
    results, acked = commit_group(
        p,
        [LinkBatch(NodeId(kid.ctx().node_id), batch) for kid, _, batch in work],
        [LinkAck(peers[2], 2)],
        [LinkMark(peers[2], p.clock.now())],
    )
    assert acked == [None]
    for (kid, ids, _), result in zip(work, results, strict=True):
        assert isinstance(result, exchange.BatchResult)
        assert (result.error, result.applied, result.committed_through) == (None, 4, 4)
        for tracking_id in ids:
            view = complaints.show(p, tracking_id)
            assert (view.status, view.holder) == ("in_progress", kid.ctx().node_id)
    ledger = snapshot(parent)["ledger"]
    assert isinstance(ledger, list) and isinstance(before, list)
    assert len(ledger) == len(before) + 8  # each envelope recorded once
    with p.db.read() as session:
        row = session.scalars(select(Link).where(Link.peer_id == peers[2])).one()
    assert (row.acked_out_seq, row.connected_since is not None) == (2, True)


@pytest.mark.parametrize(
    ("name", "cap", "size", "seconds", "expected"),
    [
        ("a fast group lets the next take twice as many", 64, 64, 0.1, 128),
        ("never beyond the most", 512, 512, 0.1, 512),
        ("a slow group: the next in proportion", 512, 512, 2.0, 256),
        ("never below the least", 64, 64, 30.0, group_commit.MIN_ENVELOPES),
        ("a slow small group never raises the cap", 100, 400, 2.0, 100),
    ],
)
def test_the_group_cap_follows_how_long_groups_take(
    name: str, cap: int, size: int, seconds: float, expected: int
) -> None:
    """A group whose transaction took longer than MAX_GROUP_SECONDS shrinks the next one
    in proportion (within the least and the cap it had); a fast one doubles it."""
    assert group_commit.next_cap(cap, size, seconds, 512) == expected, name
