"""The link between a regency and its province breaks (cut mid-message, slow, late frames
from a dead connection, down for a long time): once it heals, every referral is accepted
exactly once, both ledgers verify and reconcile."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from node.services import links
from node.store.models import InboxRow
from tests.fault.conftest import Link, configure
from tests.support.nodes import wait_until
from tests.support.proxy import DOWN, UP

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite")])
def db_kind(request: pytest.FixtureRequest) -> str:
    """Transport faults reach the database only through the receive path the crash and
    restart tests (tests/fault/test_crashes.py, test_restart.py) run on both kinds; here
    SQLite alone keeps the suite's wall time small."""
    return str(request.param)


def committed(link: Link) -> int:
    with link.child.ctx().db.read() as session:
        return int(session.execute(select(func.count()).select_from(InboxRow)).scalar_one())


def start_connected(link: Link) -> None:
    link.start(link.parent)
    link.start(link.child)
    wait_until(link.connected, what="the regency to connect through the proxy")


def test_connection_cut_in_the_middle_of_messages(link: Link) -> None:
    """Connections reset partway through a referral (down) or a receipt (up) frame: the
    child reconnects and resumes from the last acknowledged sequence, nothing twice."""
    start_connected(link)
    ids: list[str] = []
    cuts = [(DOWN, 700), (UP, 300), (DOWN, 5000), (UP, 2500)]
    for n, (direction, after) in enumerate(cuts):
        accepted = link.proxy.accepted
        link.proxy.cut_after(after, direction)
        ids += link.refer(6, start=len(ids))
        wait_until(
            lambda accepted=accepted: link.proxy.accepted > accepted,
            what=f"reconnection after cut {n} ({direction}, {after} bytes)",
        )
    link.settle(ids)
    assert link.proxy.accepted >= 1 + len(cuts)


def test_delay_and_late_frames_from_a_dead_connection(link: Link) -> None:
    """With latency and jitter every referral crosses once; frames held on a connection the
    child has given up on reach the parent after it resumed on a new one, and change nothing."""
    link.proxy.delay(0.15, 0.1)
    start_connected(link)
    began = time.monotonic()
    ids = link.refer(8)
    wait_until(lambda: committed(link) == len(ids), what="the slow link to deliver")
    assert time.monotonic() - began >= 0.15  # the latency was there
    link.proxy.heal()  # no more latency; the live connection stays

    # The child commits 4 more referrals; its Ack and receipts for them are held on the way up.
    link.proxy.stall(UP)
    more = link.refer(4, start=len(ids))
    wait_until(lambda: committed(link) == len(ids) + len(more), what="the next referrals")
    accepted = link.proxy.accepted
    link.proxy.strand()  # the child loses the connection; the parent's side stays open
    wait_until(lambda: link.proxy.accepted > accepted, what="the child to reconnect")
    ids += more
    wait_until(
        lambda: all(v.outbox_depth == 0 for v in links.list_links(link.child.ctx())),
        what="the receipts to go up again on the new connection",
    )
    link.proxy.release()  # the stale Ack and receipts now reach the parent
    time.sleep(0.5)
    link.settle(ids)


def test_long_outage_then_backlog(link: Link) -> None:
    """The link is down while a backlog builds up; the child keeps redialing with backoff
    (a bounded number of attempts), and after healing the whole backlog crosses once."""
    start_connected(link)
    ids = link.refer(3)
    wait_until(lambda: committed(link) == len(ids), what="the first referrals")
    link.proxy.cut()
    wait_until(lambda: not link.connected(), what="the child to see the link down")
    refused = link.proxy.refused
    for _ in range(4):
        ids += link.refer(30, start=len(ids))
    time.sleep(3.0)  # reconnect_max_ms is 1000 in tests: a handful of attempts, not a storm
    attempts = link.proxy.refused - refused
    assert 2 <= attempts <= 30
    parent_view = next(v for v in links.list_links(link.parent.ctx()))
    # The backlog waits (and perhaps an Ack for the first three that the cut swallowed).
    assert len(ids) - 3 <= parent_view.outbox_depth == parent_view.lag_messages <= len(ids)
    assert parent_view.lag_seconds is not None and parent_view.lag_seconds >= 2.5
    child_view = next(v for v in links.list_links(link.child.ctx()))
    assert child_view.last_error  # why the link is down, for the operator
    link.proxy.heal()
    link.settle(ids, timeout=45)


def test_sender_waits_for_acknowledgements_beyond_its_window(link: Link) -> None:
    """A receiver whose Acks do not come back gets at most `window` envelopes: the sender
    slows to the receiver's pace; once the Acks flow, the rest follows, each once."""
    configure(link.parent, window=8, batch=4)
    start_connected(link)
    link.proxy.stall(UP)  # the child's Acks (and receipts) are held on the way up
    ids = link.refer(30)
    wait_until(lambda: committed(link) == 8, what="one window of referrals")
    time.sleep(1.0)  # several poll intervals: the sender does not go past its window
    assert committed(link) == 8
    link.proxy.release()
    link.settle(ids)
