"""The link between a regency and its province breaks (cut mid-message, slow, late frames
from a dead connection, down for a long time): once it heals, every referral is accepted
exactly once, both ledgers verify and reconcile."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from node.services import links
from node.store.models import InboxRow
from tests.fault.conftest import Link
from tests.fault.invariants import quiet
from tests.support.nodes import configure
from tests.support.proxy import DOWN, UP
from tests.support.waits import (
    holds_throughout,
    max_attempts,
    reconnect_bound,
    recovery_bound,
    wait_until,
)

pytestmark = [pytest.mark.slow]

CUT_BATCHES = 10  # batches of 6 referrals at most until a cut fires
POLL_MS = 200  # the sender's idle poll where a test watches it not send


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite")])
def db_kind(request: pytest.FixtureRequest) -> str:
    """Transport faults reach the database only through the receive path the crash and
    restart tests (tests/fault/test_crashes.py, test_restart.py) run on both kinds; here
    SQLite alone keeps the suite's wall time small."""
    return str(request.param)


def committed(link: Link) -> int:
    with link.child.ctx().db.read() as session:
        return int(session.execute(select(func.count()).select_from(InboxRow)).scalar_one())


def crossed(link: Link, n: int) -> bool:
    """The child has committed all `n` referrals and neither side waits for an Ack."""
    return committed(link) == n and quiet([link.parent.ctx(), link.child.ctx()])


def start_connected(link: Link) -> None:
    link.start(link.parent)
    link.start(link.child)
    wait_until(link.connected, what="the regency to connect through the proxy")


def test_connection_cut_in_the_middle_of_messages(link: Link) -> None:
    """Connections reset partway through a referral (down) or a receipt (up) frame: the
    child reconnects and resumes from the last acknowledged sequence, nothing twice."""
    start_connected(link)
    federation = link.child.ctx().config.federation
    ids: list[str] = []
    cuts = [(DOWN, 700), (UP, 300), (DOWN, 5000), (UP, 2500)]
    for n, (direction, after) in enumerate(cuts):
        # Each cut is armed on a working, idle link, so that it lands in referral or receipt
        # frames rather than in the handshake of the reconnect before it.
        count = len(ids)
        wait_until(
            lambda count=count: crossed(link, count),
            timeout=recovery_bound(federation),
            what=f"the link to work again before cut {n}",
        )
        accepted, fired = link.proxy.accepted, link.proxy.cuts
        link.proxy.cut_after(after, direction)
        # Referrals until the cut fires: how many bytes a batch of them makes depends on how
        # the two sides batch their frames, which depends on the machine's speed.
        for _ in range(CUT_BATCHES):
            ids += link.refer(6, start=len(ids))
            count = len(ids)
            wait_until(
                lambda fired=fired, count=count: link.proxy.cuts > fired or crossed(link, count),
                timeout=recovery_bound(federation),
                what=f"cut {n} ({direction}, {after} bytes) or the referrals to cross",
            )
            if link.proxy.cuts > fired:
                break
        assert link.proxy.cuts == fired + 1, f"cut {n} never fired: {len(ids)} referrals crossed"
        wait_until(
            lambda accepted=accepted: link.proxy.accepted > accepted,
            timeout=reconnect_bound(federation),
            what=f"reconnection after cut {n} ({direction}, {after} bytes)",
        )
    link.settle(ids, timeout=recovery_bound(federation))
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
    wait_until(lambda: link.proxy.in_flight == 0, what="the held frames to reach the parent")
    link.settle(ids)


def test_long_outage_then_backlog(link: Link) -> None:
    """The link is down while a backlog builds up; the child keeps redialing with backoff
    (a bounded number of attempts), and after healing the whole backlog crosses once."""
    start_connected(link)
    ids = link.refer(3)
    wait_until(lambda: committed(link) == len(ids), what="the first referrals")
    link.proxy.cut()
    federation = link.child.ctx().config.federation
    wait_until(lambda: not link.connected(), what="the child to see the link down")
    refused, down_since = link.proxy.refused, time.monotonic()
    ids += link.refer(30, start=len(ids))
    queued = time.time()  # the backlog's oldest envelope was queued before this
    for _ in range(3):
        ids += link.refer(30, start=len(ids))
    # The dialer keeps trying: two more attempts come within two redial cycles.
    wait_until(
        lambda: link.proxy.refused - refused >= 2,
        timeout=2 * reconnect_bound(federation),
        what="the child to redial twice",
    )
    attempts, elapsed = link.proxy.refused - refused, time.monotonic() - down_since
    assert attempts <= max_attempts(elapsed, federation), f"{attempts} in {elapsed:.1f}s"
    waited = time.time() - queued
    parent_view = next(v for v in links.list_links(link.parent.ctx()))
    # The backlog waits (and perhaps an Ack for the first three that the cut swallowed).
    assert len(ids) - 3 <= parent_view.outbox_depth == parent_view.lag_messages <= len(ids)
    # The lag is the oldest waiting envelope's age: at least as long as the backlog waited.
    assert parent_view.lag_seconds is not None and parent_view.lag_seconds >= waited
    child_view = next(v for v in links.list_links(link.child.ctx()))
    assert child_view.last_error  # why the link is down, for the operator
    link.proxy.heal()
    link.settle(ids, timeout=recovery_bound(federation))


def test_sender_waits_for_acknowledgements_beyond_its_window(link: Link) -> None:
    """A receiver whose Acks do not come back gets at most `window` envelopes: the sender
    slows to the receiver's pace; once the Acks flow, the rest follows, each once."""
    configure(link.parent, window=8, batch=4, poll_interval_ms=POLL_MS)
    start_connected(link)
    link.proxy.stall(UP)  # the child's Acks (and receipts) are held on the way up
    ids = link.refer(30)
    wait_until(lambda: committed(link) == 8, what="one window of referrals")
    # Nothing marks the moment the sender decided not to send more: watch for five of its
    # idle polls, in which it would have sent past its window if it ignored it.
    holds_throughout(
        lambda: committed(link) == 8, 5 * POLL_MS / 1000, what="the window of 8 referrals"
    )
    link.proxy.release()
    link.settle(ids)
