"""LinkSession: one live stream with one peer, the same logic on both ends.

Protocol on the stream (see protos/lapor/v1/federation.proto):
  1. each side writes Hello(last sequence it committed from the other), then reads the
     other's Hello; what the peer has is acknowledged, and sending resumes after it;
  2. a sender keeps at most `window` envelopes unacknowledged and reads its outbox in
     batches; an idle sender wakes on a local signal (the runtime's outbox watcher sets it
     for rows another process queued) or every `poll_interval_ms`. What one read returns
     goes out in Deliveries frames within the limits the receiver's Hello states (a peer
     that states none gets one Delivery frame per envelope);
  3. a receiver commits deliveries in batches of about `batch` (one transaction; whole
     frames, so up to one frame more) and then acknowledges the highest sequence
     committed; a redelivery gets its original response. A batch of at most READY_BATCH
     (low traffic) sends the responses it queued straight from the commit's result,
     before its Ack, when they are exactly what the outbox would give back
     (exchange.Outgoing); otherwise the send loop reads them from the outbox;
  4. an envelope we refuse ends the session with RefusedError (the edge turns it into a
     gRPC status or a Rejection frame); a Rejection from the peer ends it with PeerError.
The frame queue between the reader and the committer is bounded, so a slow receiver
slows the sender through HTTP/2 flow control and memory stays bounded.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from node._proto.lapor.v1 import federation_pb2
from node.errors import NodeError, PeerError, ValidationError
from node.faults import fault_point
from node.federation.status import error_for_status
from node.ids import NodeId
from node.logs import get_logger
from node.services import exchange, routing
from node.services.context import NodeContext

__all__ = ["DbRunner", "FrameTransport", "LinkSession", "RefusedError"]

PROTOCOL_VERSION = 1
HELLO_TIMEOUT_SECONDS = 10.0
# A Deliveries frame this node sends or takes is at most this share of the gRPC message
# limit (server.max_message_bytes): the rest is headroom for framing.
FRAME_SHARE = 2
# A batch of at most this many envelopes (traffic is low) has its responses sent from the
# commit's own result, ahead of its Ack, instead of read back from the outbox: a referral's
# receipt leaves as soon as it is committed. Bigger batches (load) leave the responses to
# the send loop, which reads them in bulk anyway.
READY_BATCH = 8
T = TypeVar("T")


class FrameTransport(Protocol):
    async def read(self) -> federation_pb2.Frame | None:
        """The next frame, or None when the peer closed the stream."""
        ...

    async def write(self, frame: federation_pb2.Frame) -> None: ...

    async def finish(self) -> None:
        """Half-close our direction (the client side); the server side does nothing."""
        ...


class DbRunner(Protocol):
    async def write(self, fn: Callable[..., T], *args: Any) -> T: ...
    async def read(self, fn: Callable[..., T], *args: Any) -> T: ...


class RefusedError(Exception):
    """We refused an envelope from the peer: the session ends, nothing of it was stored."""

    def __init__(self, error: NodeError, sequence: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.sequence = sequence


class LinkSession:
    def __init__(
        self,
        ctx: NodeContext,
        peer: NodeId,
        transport: FrameTransport,
        db: DbRunner,
        wake: asyncio.Event,
        on_hello: Callable[[], Awaitable[None]] | None = None,
        *,
        in_band_rejections: bool = False,
    ) -> None:
        self.ctx = ctx
        self.peer = peer
        self.transport = transport
        self.db = db
        self.wake = wake
        self.on_hello = on_hello
        # The dialing side cannot answer with a gRPC status: it refuses with a Rejection frame.
        self.in_band_rejections = in_band_rejections
        cfg = ctx.config.federation
        self.window = cfg.window
        self.batch = cfg.batch
        self.poll = cfg.poll_interval_ms / 1000
        self.acked = 0
        self.sent = 0
        # What this side takes in one Deliveries frame (its Hello), and what the peer takes.
        self.frame_bytes = ctx.config.server.max_message_bytes // FRAME_SHARE
        self.peer_frame_deliveries = 0
        self.peer_frame_bytes = 0
        # The size of our checkpoint the peer holds (its Hello, then what we sent since).
        self.peer_holds = 0
        # Proofs are made against peer_holds, so making them and writing the frames they
        # go with happen under one lock, in send order (the send loop and replays).
        self._send_lock = asyncio.Lock()
        # Responses our commits queued, ready to send without reading them back from the
        # outbox (exchange.Outgoing), oldest first; at most `window` envelopes are kept.
        self._ready: collections.deque[exchange.Outgoing] = collections.deque()
        self._ready_count = 0
        self._acked_changed = asyncio.Event()
        self._queue: asyncio.Queue[federation_pb2.Frame | None] = asyncio.Queue(cfg.window)
        self.log = get_logger(node_id=ctx.node_id, peer=peer)

    async def run(self) -> None:
        """Run until the peer closes the stream; raise RefusedError or PeerError on faults."""
        state = await self.db.read(exchange.hello_state, self.ctx, self.peer)
        last_in = state.last_received
        try:
            async with asyncio.timeout(HELLO_TIMEOUT_SECONDS):
                await self.transport.write(
                    federation_pb2.Frame(
                        hello=federation_pb2.Hello(
                            protocol_version=PROTOCOL_VERSION,
                            last_received_sequence=last_in,
                            held_checkpoint_size=state.held_checkpoint_size,
                            held_checkpoint_root=state.held_checkpoint_root,
                            max_frame_deliveries=self.batch,
                            max_frame_bytes=self.frame_bytes,
                        )
                    )
                )
                first = await self.transport.read()
        except TimeoutError as e:
            raise PeerError(f"no Hello from {self.peer} within {HELLO_TIMEOUT_SECONDS}s") from e
        if first is None:
            return
        if first.WhichOneof("kind") != "hello":
            raise RefusedError(ValidationError("expected Hello as the first frame"), 0)
        if first.hello.protocol_version != PROTOCOL_VERSION:
            raise RefusedError(
                ValidationError(
                    f"protocol version {first.hello.protocol_version} is not supported "
                    f"(this node speaks {PROTOCOL_VERSION})"
                ),
                0,
            )
        try:  # its numbers within what a link holds (issue 21.10)
            exchange.check_hello(first.hello)
        except ValidationError as e:
            self.log.warning("link.refused", sequence=0, error="ValidationError", reason=str(e))
            raise RefusedError(e, 0) from e
        peer_has = first.hello.last_received_sequence
        if first.hello.held_checkpoint_size:
            await self.db.read(
                exchange.check_peer_holds,
                self.ctx,
                first.hello.held_checkpoint_size,
                first.hello.held_checkpoint_root or None,
            )
        if peer_has:
            try:
                await self.db.write(exchange.acknowledge, self.ctx, self.peer, peer_has)
            except NodeError as e:
                raise RefusedError(e, 0) from e
        self.acked = self.sent = peer_has
        self.peer_holds = first.hello.held_checkpoint_size
        self.peer_frame_deliveries = first.hello.max_frame_deliveries
        self.peer_frame_bytes = first.hello.max_frame_bytes
        self.log.info("link.up", resume_after=peer_has, last_received=last_in)
        if self.on_hello is not None:
            await self.on_hello()
        reader = asyncio.create_task(self._read_loop())
        tasks = [asyncio.create_task(self._send_loop()), reader]
        try:
            await self._commit_loop()
        except RefusedError as e:
            if self.in_band_rejections:
                await self._reject(e, reader)
            raise
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _reject(self, error: RefusedError, reader: asyncio.Task[None]) -> None:
        """Tell the peer what we refused, then let it end the call: cancelling a pending
        read would cancel the call before the Rejection is on the wire."""
        from node.federation.status import status_for

        with contextlib.suppress(Exception):
            await self.transport.write(
                federation_pb2.Frame(
                    rejection=federation_pb2.Rejection(
                        sequence=error.sequence,
                        code=status_for(error.error).value[0],
                        message=str(error.error),
                    )
                )
            )
            await self.transport.finish()
            while not self._queue.empty():  # keep the reader from blocking on a full queue
                self._queue.get_nowait()
            await asyncio.wait_for(asyncio.shield(reader), HELLO_TIMEOUT_SECONDS)

    async def _read_loop(self) -> None:
        try:
            while True:
                frame = await self.transport.read()
                await self._queue.put(frame)
                if frame is None:
                    return
        finally:
            # Whatever stopped the reader, the committer must not wait forever.
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)

    async def _send_loop(self) -> None:
        while True:
            room = self.window - (self.sent - self.acked)
            if room <= 0:
                self._acked_changed.clear()
                await self._acked_changed.wait()
                continue
            self.wake.clear()
            async with self._send_lock:
                ready = self._take_ready(min(self.batch, room))
                if ready is not None:
                    rows = ready
                else:
                    rows, self.peer_holds = await self.db.read(
                        exchange.pending,
                        self.ctx,
                        self.peer,
                        self.sent,
                        min(self.batch, room),
                        self.peer_holds,
                    )
                await self._write_rows(rows)
            if not rows:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.poll)

    async def _write_rows(self, rows: list[tuple[int, federation_pb2.Delivery]]) -> None:
        """Write (sequence, delivery) rows in frames (call under the send lock)."""
        for last, frame in self._frames(rows):
            # Before the write: the peer may commit and acknowledge the frame before
            # this coroutine runs again, and an Ack beyond `sent` is refused.
            self.sent = last
            await self.transport.write(frame)

    async def _send_ready(self) -> None:
        """Send what a commit just queued, if it can go as it is, ahead of that commit's
        Ack: the peer then takes our responses before it spends a write on the Ack. If the
        send loop is sending, wait for it: it may be sending them itself (on PostgreSQL the
        commit's own notification can wake it first), and then they are dropped here;
        whatever cannot go as it is, the send loop sends, woken by the commit."""
        room = self.window - (self.sent - self.acked)
        if room <= 0:
            return
        async with self._send_lock:
            rows = self._take_ready(min(self.batch, room))
            if rows:
                await self._write_rows(rows)

    def _keep_ready(self, outgoing: exchange.Outgoing) -> None:
        self._ready.append(outgoing)
        self._ready_count += len(outgoing.rows)
        if self._ready_count > self.window:  # the peer is not acknowledging: the outbox has them
            self._ready.clear()
            self._ready_count = 0

    def _take_ready(self, limit: int) -> list[tuple[int, federation_pb2.Delivery]] | None:
        """The next envelopes to send, from a commit of ours, if they are exactly what
        `pending` would read now: they follow what was sent, and their proofs were made for
        the checkpoint the peer holds now. None: read the outbox. (Call under the send
        lock.) What was sent another way meanwhile is dropped."""
        while self._ready and self._ready[0].rows[0][0] <= self.sent:
            self._ready_count -= len(self._ready.popleft().rows)
        if not self._ready:
            return None
        head = self._ready[0]
        if (
            head.rows[0][0] != self.sent + 1
            or head.basis != self.peer_holds
            or len(head.rows) > limit
        ):
            return None
        self._ready.popleft()
        self._ready_count -= len(head.rows)
        self.peer_holds = head.held
        return head.rows

    def _frames(
        self, rows: list[tuple[int, federation_pb2.Delivery]]
    ) -> list[tuple[int, federation_pb2.Frame]]:
        """(sequence, delivery) rows as (last sequence, frame): as few Deliveries frames as
        the peer's limits allow, and a Delivery frame for one that is alone (or for a peer
        that takes no Deliveries)."""
        groups: list[list[federation_pb2.Delivery]] = []
        lasts: list[int] = []
        size = 0
        for sequence, delivery in rows:
            cost = delivery.ByteSize() + 8  # the item's tag and length
            if (
                not groups
                or len(groups[-1]) >= self.peer_frame_deliveries
                or size + cost > self.peer_frame_bytes
            ):
                groups.append([])
                lasts.append(0)
                size = 0
            groups[-1].append(delivery)
            lasts[-1] = sequence
            size += cost
        return [
            (
                last,
                federation_pb2.Frame(delivery=group[0])
                if len(group) == 1
                else federation_pb2.Frame(deliveries=federation_pb2.Deliveries(items=group)),
            )
            for last, group in zip(lasts, groups, strict=True)
        ]

    def _items(self, frame: federation_pb2.Frame) -> list[federation_pb2.Delivery]:
        """The deliveries a Delivery or Deliveries frame carries (within this side's
        limits: a peer that sends more is refused)."""
        if frame.WhichOneof("kind") == "delivery":
            return [frame.delivery]
        items = list(frame.deliveries.items)
        if len(items) > self.batch or frame.ByteSize() > self.frame_bytes:
            raise RefusedError(
                ValidationError(
                    f"a Deliveries frame of {len(items)} envelopes and {frame.ByteSize()} bytes "
                    f"is over this node's limits ({self.batch}, {self.frame_bytes} bytes)"
                ),
                0,
            )
        return items

    async def _commit_loop(self) -> None:
        held: federation_pb2.Frame | None = None
        while True:
            frame = held if held is not None else await self._queue.get()
            held = None
            if frame is None:
                return
            kind = frame.WhichOneof("kind")
            if kind in ("delivery", "deliveries"):
                batch = self._items(frame)
                ended = False
                while len(batch) < self.batch and not self._queue.empty():
                    nxt = self._queue.get_nowait()
                    if nxt is None:
                        ended = True
                        break
                    if nxt.WhichOneof("kind") not in ("delivery", "deliveries"):
                        held = nxt
                        break
                    batch.extend(self._items(nxt))
                await self._commit(batch)
                if ended:
                    return
            elif kind == "ack":
                await self._on_ack(frame.ack.sequence)
            elif kind == "rejection":
                rej = frame.rejection
                raise error_for_status(rej.code, f"envelope {rej.sequence}: {rej.message}")
            else:
                raise RefusedError(ValidationError(f"unexpected {kind!r} frame"), 0)

    async def _commit(self, batch: list[federation_pb2.Delivery]) -> None:
        fault_point("before_commit")  # TEST ONLY (node.faults): read, not yet committed
        held = self.peer_holds if len(batch) <= READY_BATCH else None
        result = await self.db.write(exchange.receive_batch, self.ctx, self.peer, batch, held)
        fault_point("after_commit")  # TEST ONLY (node.faults): committed, not yet acked
        if result.outgoing is not None:
            self._keep_ready(result.outgoing)
            await self._send_ready()
        if result.replays:
            async with self._send_lock:
                self.peer_holds = await self.db.read(
                    exchange.prove, self.ctx, result.replays, self.peer_holds
                )
                for replay in result.replays:
                    await self.transport.write(federation_pb2.Frame(delivery=replay))
        if result.committed_through:
            await self.transport.write(
                federation_pb2.Frame(ack=federation_pb2.Ack(sequence=result.committed_through))
            )
        if result.applied:
            self.wake.set()  # responses (receipts) are waiting in the outbox
            self.log.debug("link.committed", count=result.applied, through=result.committed_through)
        if result.accepted and self.ctx.config.routing.auto:
            for tracking_id in result.accepted:  # dispose further by the routing rules
                await self.db.write(routing.auto_dispose, self.ctx, tracking_id)
        if result.error is not None:
            self.log.warning(
                "link.refused",
                sequence=result.failed_sequence,
                error=type(result.error).__name__,
                reason=str(result.error),
            )
            raise RefusedError(result.error, result.failed_sequence)

    async def _on_ack(self, sequence: int) -> None:
        if sequence <= self.acked:
            return
        if sequence > self.sent:
            raise RefusedError(
                ValidationError(f"ack for sequence {sequence}, but only {self.sent} were sent"), 0
            )
        await self.db.write(exchange.acknowledge, self.ctx, self.peer, sequence)
        self.acked = sequence
        self._acked_changed.set()


def describe(error: BaseException) -> str:
    """A one-line, secret-free description of why a session ended."""
    if isinstance(error, RefusedError):
        return f"refused envelope {error.sequence}: {error.error}"
    if isinstance(error, PeerError | NodeError):
        return str(error)
    return type(error).__name__
