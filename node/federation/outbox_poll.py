"""The idle poll of every link's send loop, as one read for the whole node.

A link's send loop wakes when a commit of this node queued something for its peer, or when
the outbox watch (node.federation.outbox_watch) saw another process queue it. As the
fallback for a wake-up missed, each send loop used to read its own outbox every
federation.poll_interval_ms, idle or not: at a province with 1,200 links, 120 reads a
second of outboxes holding nothing new, each with its connection check-out, and the
largest single cost of its database reader threads (decision 0033). Here one task per
node reads the next outgoing sequence of every link with one statement per interval and
wakes only the sessions that have not sent that far.

Invariants:
  1. a watched session whose peer has envelopes queued beyond what it has sent is woken
     within about one interval of their commit: the bound the idle poll gave;
  2. one read per interval, whatever the number of links;
  3. one poller per node context and event loop (`poller_for`), started by the first
     session that asks and again by any session that finds it ended; a round that fails is
     logged and the next one tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from node.errors import NodeError
from node.logs import get_logger
from node.services import exchange
from node.services.context import NodeContext

__all__ = ["OutboxPoll", "poller_for"]

T = TypeVar("T")


class _Reads(Protocol):
    """The node's database readers (node.federation.session.DbRunner's read side)."""

    async def read(self, fn: Callable[..., T], *args: Any) -> T: ...


class Watched(Protocol):
    """What the poller sees of a link session: its peer, the last sequence it has sent,
    and the event that wakes its send loop."""

    @property
    def peer(self) -> str: ...

    @property
    def sent(self) -> int: ...

    @property
    def wake(self) -> asyncio.Event: ...


class OutboxPoll:
    """One task that wakes the send loops with something to send (module invariants)."""

    def __init__(self, ctx: NodeContext, db: _Reads) -> None:
        self.ctx = ctx
        self.db = db
        self.interval = ctx.config.federation.poll_interval_ms / 1000
        self.loop = asyncio.get_running_loop()
        self.rounds = 0  # reads made: for tests
        self._sessions: set[Watched] = set()
        self._task: asyncio.Task[None] | None = None
        self.log = get_logger(node_id=ctx.node_id)

    def watch(self, session: Watched) -> None:
        """Look at `session` from the next round on (and start the task if it is not
        running)."""
        self._sessions.add(session)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="outbox poll")

    def unwatch(self, session: Watched) -> None:
        self._sessions.discard(session)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self._sessions:
                continue
            await self.poll_once()

    async def poll_once(self) -> None:
        """One round: read every link's next outgoing sequence, wake whoever is behind."""
        self.rounds += 1
        try:
            heads = await self.db.read(exchange.next_out_sequences, self.ctx)
        except NodeError as e:  # best effort, as the idle reads were: next round again
            self.log.warning("outbox.poll_failed", error=str(e))
            return
        for session in list(self._sessions):
            if heads.get(session.peer, 0) - 1 > session.sent:
                session.wake.set()


# One poller per node context and event loop, by (id(ctx), id(loop)); a poller holds both,
# so an entry is dropped once its loop is closed (ids may then be reused).
_pollers: dict[tuple[int, int], OutboxPoll] = {}


def poller_for(ctx: NodeContext, db: _Reads) -> OutboxPoll:
    """The outbox poller of `ctx` on the running loop (made on first use)."""
    loop = asyncio.get_running_loop()
    for k in [k for k, p in _pollers.items() if p.loop.is_closed()]:
        del _pollers[k]
    poller = _pollers.get((id(ctx), id(loop)))
    if poller is None or poller.ctx is not ctx or poller.loop is not loop:
        poller = _pollers[(id(ctx), id(loop))] = OutboxPoll(ctx, db)
    return poller
