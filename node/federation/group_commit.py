"""Group commit: the batches (and Acks) many link sessions have ready, committed in one
transaction.

Each LinkSession's commit task used to commit its own batch: one write transaction (and
one round of BEGIN, row lock, COMMIT and fsync) per link batch. At a province with a
thousand regencies each sending a few envelopes at a time, that per-transaction cost is
most of the work. Here one writer task per node takes every batch that is waiting when
the previous group's transaction ends and commits them together
(node.services.group_receive.receive_group), so the transaction count follows the
database's speed, not the number of links:

  1. a session calls `receive(peer, deliveries, held)`: its batch joins the queue with a
     future, and the session waits on that future (so it has one batch in the queue at a
     time, and acknowledges only after the commit); `acknowledge(peer, through)`, for the
     peer's Ack of what we sent, joins the same queue the same way;
  2. the writer takes the first waiting item, and then, without waiting, every item
     queued behind it, up to MAX_ENVELOPES envelopes (an Ack counts as one; a big group
     holds the writer longer, and every link of it waits for the last one);
  3. it commits them in one transaction through the node's database writer (DbRunner:
     the same single writer thread every other write of the node goes through), each
     link's batch under its own savepoint;
  4. each future gets its link's own BatchResult (its Ack sequence, responses, error), or
     the exception that rolled its batch back (an Ack's: None, or the exception that
     refused it); if the transaction fails as a whole, every future of the group gets that
     error, and no link acknowledges anything of it.
No timer: while one group commits, the next one gathers, so a lone batch on an idle node
waits for nothing. A group is capped in time as well (decision 0041): after one whose
transaction took longer than MAX_GROUP_SECONDS, the next takes proportionally fewer
envelopes (never fewer than MIN_ENVELOPES, and the first batch whole), and the cap grows
back as groups commit faster; so another writer of the node (an operator's command, the
scheduler's slices) waits behind one group for about that long at most, however loaded
the machine. The writer of a node lives on the event loop that first asks for it
(`writer_for`), and a loop that ended takes its writer with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from node._proto.lapor.v1 import federation_pb2
from node.envelopes import OpenedAhead
from node.ids import NodeId
from node.logs import get_logger
from node.services.context import NodeContext
from node.services.exchange import BatchResult
from node.services.group_receive import LinkAck, LinkBatch, LinkMark, commit_group

__all__ = ["MAX_ENVELOPES", "MAX_GROUP_SECONDS", "GroupWriter", "next_cap", "writer_for"]

# At most this many envelopes in one group transaction (many links' batches; the first
# batch is always taken whole, whatever its size).
MAX_ENVELOPES = 512
MIN_ENVELOPES = 32
MAX_GROUP_SECONDS = 1.0
T = TypeVar("T")
_Item = LinkBatch | LinkAck | LinkMark
_Pending = tuple[_Item, "asyncio.Future[Any]"]


class _Writes(Protocol):
    """The node's database writer (node.federation.session.DbRunner's write side)."""

    async def write(self, fn: Callable[..., T], *args: Any) -> T: ...


class GroupWriter:
    """One task that commits the queued batches of many links together (module steps)."""

    def __init__(self, ctx: NodeContext, db: _Writes, max_envelopes: int = MAX_ENVELOPES) -> None:
        self.ctx = ctx
        self.db = db
        self.max_envelopes = max_envelopes
        self.cap = max_envelopes  # what the next group takes (module docstring: time cap)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.loop = asyncio.get_running_loop()
        self.groups = 0  # transactions committed (or tried): for tests and the bench
        self.batches = 0
        self.log = get_logger(node_id=ctx.node_id)

    async def receive(
        self,
        peer: NodeId,
        deliveries: Sequence[federation_pb2.Delivery],
        held: int | None = None,
        ahead: OpenedAhead | None = None,
    ) -> BatchResult:
        """Commit `peer`'s batch with whatever other links have ready (exchange.receive_batch
        semantics; `ahead`: its envelopes opened before); raise what rolled this link's
        batch back."""
        result: BatchResult = await self._queued(LinkBatch(peer, list(deliveries), held, ahead))
        return result

    async def acknowledge(self, peer: NodeId, through: int) -> None:
        """Record `peer`'s Ack of our envelopes up to `through` with whatever other links
        have ready (exchange.acknowledge semantics); raise what refused it."""
        await self._queued(LinkAck(peer, through))

    async def mark(self, peer: str, connected: bool) -> None:
        """Record that a live stream with `peer` came up (connected) or went down, with
        whatever other links have ready (links.mark_connected semantics; marks of one
        peer hold in the order they were made: the latest wins)."""
        await self._queued(LinkMark(peer, self.ctx.clock.now() if connected else None))

    async def _queued(self, item: _Item) -> Any:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="group commit")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    def _take(self, first: _Pending) -> list[_Pending]:
        """The first item, and every item queued behind it, within the cap (a connection
        mark always fits, so marks are never put back and hold in the order made)."""
        group = [first]
        size = _size(first[0])
        while not self._queue.empty():
            nxt = self._queue.get_nowait()
            more = _size(nxt[0])
            if more and size + more > self.cap:
                self._queue.put_nowait(nxt)  # goes to the back: next group, in a moment
                break
            group.append(nxt)
            size += more
        # A session that gave up (cancelled) has nothing to commit any more; a connection
        # mark still holds (the stream came up or went down whoever waits for the record).
        return [item for item in group if not item[1].cancelled() or isinstance(item[0], LinkMark)]

    async def _run(self) -> None:
        while True:
            group = self._take(await self._queue.get())
            if not group:
                continue
            batches = [(b, f) for b, f in group if isinstance(b, LinkBatch)]
            acks = [(a, f) for a, f in group if isinstance(a, LinkAck)]
            marks = [(m, f) for m, f in group if isinstance(m, LinkMark)]
            began = time.monotonic()
            try:
                results, acked = await self.db.write(
                    commit_group,
                    self.ctx,
                    [b for b, _ in batches],
                    [a for a, _ in acks],
                    [m for m, _ in marks],
                )
            except Exception as e:  # the transaction failed as a whole: nothing committed
                self.log.warning(
                    "link.group_commit_failed", links=len(group), error=type(e).__name__
                )
                for _, future in group:
                    if not future.done():
                        future.set_exception(e)
                continue
            finally:
                self.groups += 1
                self.batches += len(batches)
                size = sum(_size(item) for item, _ in group)
                self.cap = next_cap(self.cap, size, time.monotonic() - began, self.max_envelopes)
            for (_, future), outcome in [
                *zip(batches, results, strict=True),
                *zip(acks, acked, strict=True),
                *((mark, None) for mark in marks),
            ]:
                if future.done():
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)


def next_cap(cap: int, size: int, seconds: float, most: int) -> int:
    """The envelopes the next group may take, after a group of `size` that took `seconds`
    under `cap` (module docstring): fewer, in proportion, after one that took longer than
    MAX_GROUP_SECONDS; twice as many (up to `most`) after one that did not."""
    if seconds > MAX_GROUP_SECONDS:
        return max(MIN_ENVELOPES, min(cap, int(size * MAX_GROUP_SECONDS / seconds)))
    return min(most, cap * 2)


def _size(item: _Item) -> int:
    """What an item counts towards MAX_ENVELOPES: a batch its envelopes, an Ack one, a
    connection mark none (one row of one executemany)."""
    if isinstance(item, LinkBatch):
        return len(item.deliveries)
    return 1 if isinstance(item, LinkAck) else 0


# One writer per node context and event loop, by (id(ctx), id(loop)); a writer holds
# both, so an entry is dropped once its loop is closed (ids may then be reused).
_writers: dict[tuple[int, int], GroupWriter] = {}


def writer_for(ctx: NodeContext, db: _Writes) -> GroupWriter:
    """The group writer of `ctx` on the running loop (made on first use)."""
    loop = asyncio.get_running_loop()
    for k in [k for k, w in _writers.items() if w.loop.is_closed()]:
        del _writers[k]
    writer = _writers.get((id(ctx), id(loop)))
    if writer is None or writer.ctx is not ctx or writer.loop is not loop:
        writer = _writers[(id(ctx), id(loop))] = GroupWriter(ctx, db)
    return writer
