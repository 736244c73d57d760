"""node.federation.outbox_poll: one read of every link's next outgoing sequence wakes
exactly the send loops whose peer has envelopes beyond what they sent."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from node.federation.outbox_poll import OutboxPoll
from node.federation.workers import DbWorkers
from node.services import complaints
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.support.nodes import link


@dataclass(eq=False)
class _Session:
    """What the poller sees of a link session."""

    peer: str
    sent: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)


def test_one_read_wakes_only_the_senders_behind(nodes: NodeFactory) -> None:
    """Three referrals queued for one child: its sender, having sent one, is woken; the
    other child's sender (nothing queued) and a sender that sent all three are not; the
    round was one read, and a session no longer watched is not looked at."""
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    busy, idle = nodes("id-64-02", "Kabupaten 2"), nodes("id-64-08", "Kabupaten 8")
    for kid in (busy, idle):
        link(parent, kid)
    p = parent.ctx()
    complaints.refer_many(p, complaints.submit_many(p, [draft(i) for i in range(3)]), "id-64-02")

    async def run() -> tuple[list[bool], int, bool]:
        db = DbWorkers()
        try:
            poll = OutboxPoll(p, db)
            behind, caught_up = _Session("id-64-02", 1), _Session("id-64-02", 3)
            quiet, gone = _Session("id-64-08", 0), _Session("id-64-02", 0)
            for session in (behind, caught_up, quiet, gone):
                poll.watch(session)
            poll.unwatch(gone)
            await poll.poll_once()
            woken = [s.wake.is_set() for s in (behind, caught_up, quiet)]
            return woken, poll.rounds, gone.wake.is_set()
        finally:
            db.shutdown()

    woken, rounds, gone_woken = asyncio.run(run())
    assert woken == [True, False, False]
    assert rounds == 1
    assert not gone_woken
