"""Nodes die abruptly (SIGKILL, or at a fault point inside the receive path) in the middle of
a transfer; after a restart every referral is accepted exactly once and the ledgers agree."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from node.faults import EXIT_STATUS
from node.store.models import InboxRow
from node.store.models import Link as LinkRow
from tests.fault.conftest import Link
from tests.fault.invariants import received_ids
from tests.support.nodes import TestNode, configure
from tests.support.proxy import UP
from tests.support.waits import recovery_bound, wait_until

pytestmark = [pytest.mark.slow]


def inbox_count(node: TestNode, sender: str) -> int:
    with node.ctx().db.read() as session:
        return int(
            session.execute(
                select(func.count()).select_from(InboxRow).where(InboxRow.sender == sender)
            ).scalar_one()
        )


def counters(node: TestNode, peer: str) -> tuple[int, int, int]:
    """(last sequence queued, last acknowledged by the peer, last received from it)."""
    with node.ctx().db.read() as session:
        row = session.get(LinkRow, peer)
        assert row is not None
        return row.next_out_seq - 1, row.acked_out_seq, row.last_in_seq


def test_child_killed_mid_stream_resumes_without_loss(link: Link) -> None:
    """SIGKILL of the child while referrals stream in: after a restart each is accepted once."""
    # The stream is held in the middle, however fast the child is: its Acks are held on the
    # way up, so the parent sends one window of the 60 referrals and waits for them.
    configure(link.parent, window=8, batch=4)
    configure(link.child, batch=4)
    link.start(link.parent)
    link.start(link.child)
    wait_until(link.connected, what="the child to connect")
    link.proxy.stall(UP)
    ids = link.refer(60)
    wait_until(
        lambda: inbox_count(link.child, link.parent.node_id) == 8,
        what="the child to commit the first window of referrals",
    )
    link.child.kill()
    assert inbox_count(link.child, link.parent.node_id) == 8  # killed mid-stream
    link.proxy.release()  # the dead connection's Acks may reach the parent, or not
    link.start(link.child)
    link.settle(ids)


@pytest.mark.parametrize(
    "point",
    [
        pytest.param("before_commit", id="between-receiving-and-committing"),
        pytest.param("after_commit", id="between-committing-and-acknowledging"),
    ],
)
def test_parent_killed_in_the_receive_path(link: Link, point: str) -> None:
    """The parent dies abruptly while taking receipts in (before its commit, or after it and
    before its Ack): after a restart each receipt takes effect once, none is lost."""
    ids = link.refer(5)
    link.start(link.parent, fault=point)
    link.start(link.child)
    process = link.parent.process
    assert process is not None
    assert process.wait(recovery_bound()) == EXIT_STATUS  # it died at the armed point
    child = link.child.node_id
    wait_until(lambda: counters(link.child, link.parent.node_id)[0] == len(ids), what="receipts")
    assert counters(link.child, link.parent.node_id)[1] == 0  # none acknowledged by the parent
    receipts = sum(received_ids(link.parent.ctx(), child).values())
    # before_commit: nothing of the batch is stored; after_commit: it is, but unacknowledged.
    if point == "before_commit":
        assert receipts == 0
    else:
        assert 0 < receipts <= len(ids)
    link.start(link.parent)
    link.settle(ids)


def test_child_killed_between_committing_and_acknowledging(link: Link) -> None:
    """The child dies after committing referrals, before acknowledging them: the parent's
    Hello-based resume sends nothing twice, and the referrals are there once."""
    ids = link.refer(5)
    link.start(link.parent)
    link.start(link.child, fault="after_commit")
    process = link.child.process
    assert process is not None
    assert process.wait(recovery_bound()) == EXIT_STATUS
    _, acked, _ = counters(link.parent, link.child.node_id)
    assert acked == 0
    assert 0 < inbox_count(link.child, link.parent.node_id) <= len(ids)  # its first batch
    link.start(link.child)
    link.settle(ids)
