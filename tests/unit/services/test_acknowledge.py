"""exchange.acknowledge: a peer's Ack moves the link in one short transaction, never
backwards, and an Ack that cannot be true changes nothing; the outbox rows it covers are
acknowledged by that alone (decision 0020)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from node.errors import PermissionDeniedError, StateError
from node.services import complaints, exchange, links
from node.store import link_state, queries
from node.store.models import Link, OutboxRow
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.support.nodes import TestNode, link


@pytest.fixture(params=[True, False], ids=["returning", "no-returning"])
def returning(request: pytest.FixtureRequest) -> bool:
    """With UPDATE ... RETURNING, and without it, as on a SQLite older than 3.35."""
    return bool(request.param)


def _sent(nodes: NodeFactory, count: int, returning: bool) -> tuple[TestNode, TestNode]:
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    child = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    parent.ctx().db._writer.dialect.update_returning = returning
    link(parent, child)
    p = parent.ctx()
    complaints.refer_many(
        p, complaints.submit_many(p, [draft(i) for i in range(count)]), "id-64-02"
    )
    return parent, child


def _state(node: TestNode) -> tuple[int, object, list[int]]:
    with node.ctx().db.read() as session:
        row = session.get(Link, "id-64-02")
        assert row is not None
        acked = session.scalars(
            select(OutboxRow.sequence)
            .where(OutboxRow.peer_id == "id-64-02", ~queries.unacknowledged("id-64-02"))
            .order_by(OutboxRow.sequence)
        ).all()
        queued = session.scalars(
            select(OutboxRow.sequence).where(OutboxRow.peer_id == "id-64-02")
        ).all()
        assert queries.outbox_depth(session, "id-64-02") == len(queued) - len(acked)
        return row.acked_out_seq, row.last_seen_at, list(acked)


def test_an_ack_marks_what_it_covers_and_never_goes_back(
    nodes: NodeFactory, returning: bool
) -> None:
    parent, _ = _sent(nodes, 5, returning)
    exchange.acknowledge(parent.ctx(), "id-64-02", 3)
    acked, seen, rows = _state(parent)
    assert (acked, rows) == (3, [1, 2, 3]) and seen is not None
    exchange.acknowledge(parent.ctx(), "id-64-02", 2)  # an older Ack, arriving late
    assert _state(parent)[0::2] == (3, [1, 2, 3])
    exchange.acknowledge(parent.ctx(), "id-64-02", 5)
    assert _state(parent)[0::2] == (5, [1, 2, 3, 4, 5])


def test_an_ack_beyond_what_was_sent_changes_nothing(nodes: NodeFactory, returning: bool) -> None:
    parent, _ = _sent(nodes, 3, returning)
    exchange.acknowledge(parent.ctx(), "id-64-02", 1)
    before = _state(parent)
    with pytest.raises(StateError, match="acknowledged sequence 4, but the last one sent is 3"):
        exchange.acknowledge(parent.ctx(), "id-64-02", 4)
    assert _state(parent) == before


def test_an_ack_on_a_revoked_or_unknown_link_is_refused(
    nodes: NodeFactory, returning: bool
) -> None:
    parent, _ = _sent(nodes, 2, returning)
    with pytest.raises(PermissionDeniedError, match="id-99 is not linked"):
        exchange.acknowledge(parent.ctx(), "id-99", 1)
    links.revoke(parent.ctx(), "id-64-02", "test")
    before = _state(parent)
    with pytest.raises(PermissionDeniedError, match="id-64-02 is not linked"):
        exchange.acknowledge(parent.ctx(), "id-64-02", 1)
    assert _state(parent) == before


def test_the_oldest_unacknowledged_is_the_first_past_the_ack(
    nodes: NodeFactory, returning: bool
) -> None:
    parent, _ = _sent(nodes, 5, returning)
    queued = dt.datetime(2021, 2, 1, 9, 0, tzinfo=dt.UTC)
    with parent.ctx().db.write() as session:  # each row queued a minute after the one before
        for sequence in range(1, 6):
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.peer_id == "id-64-02", OutboxRow.sequence == sequence)
                .values(created_at=queued + dt.timedelta(minutes=sequence))
            )

    def oldest() -> dt.datetime | None:
        with parent.ctx().db.read() as session:
            return link_state.oldest_unacked(session, "id-64-02")

    assert oldest() == queued + dt.timedelta(minutes=1)
    exchange.acknowledge(parent.ctx(), "id-64-02", 3)
    assert oldest() == queued + dt.timedelta(minutes=4)
    exchange.acknowledge(parent.ctx(), "id-64-02", 5)
    assert oldest() is None
