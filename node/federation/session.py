"""LinkSession: one live stream with one peer, the same logic on both ends.

Protocol on the stream (see protos/lapor/v1/federation.proto):
  1. each side writes Hello(last sequence it committed from the other), then reads the
     other's Hello; what the peer has is acknowledged, and sending resumes after it;
  2. a sender keeps at most `window` envelopes unacknowledged and reads its outbox in
     batches; an idle sender wakes on a local signal: a commit of this session that queued
     responses, the runtime's outbox watcher for rows another process queued, or the
     node's one outbox poll (node.federation.outbox_poll), which every `poll_interval_ms`
     wakes the senders whose peer has rows beyond what they sent (a wake-up missed); it
     still reads its outbox on its own every FALLBACK_POLLS intervals. What one read returns
     goes out in Deliveries frames within the limits the receiver's Hello states (a peer
     that states none gets one Delivery frame per envelope);
  3. a receiver commits deliveries in batches of about `batch` (one transaction; whole
     frames, so up to one frame more) and then acknowledges the highest sequence
     committed; a redelivery gets its original response. A batch of at most READY_BATCH
     (low traffic) sends the responses it queued straight from the commit's result,
     before its Ack, when they are exactly what the outbox would give back
     (exchange.Outgoing); otherwise the send loop reads them from the outbox;
  4. an envelope we refuse ends the session with RefusedError (the edge turns it into a
     gRPC status or a Rejection frame); a Rejection from the peer ends it with PeerError;
  5. each side writes a heartbeat (an Ack of what it committed) every keepalive_seconds/3
     and ends the session when a heartbeating peer falls silent (node.federation.liveness).
The frame queue between the reader and the committer is bounded, so a slow receiver
slows the sender through HTTP/2 flow control and memory stays bounded. Packing frames and
the window are pure (node.federation.frames).

Supervision: the reader, committer, sender, heartbeat and silence watch run as tasks of
one session, which lasts as long as all of them. The committer returning (the peer closed
the stream) ends it; any task that raises or stops ends it with that error (a bug's text
is not quoted: its type is logged and recorded), so the link is never left half-alive, and
the dialer reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import grpc

from node._proto.lapor.v1 import federation_pb2
from node.crypto.signing import VerifyKey
from node.envelopes import OpenedAhead
from node.errors import NodeError, PeerError, RefusedError, ValidationError
from node.faults import fault_point
from node.federation import cosign_link, frames, group_commit, outbox_poll
from node.federation.liveness import LATE_SECONDS, Liveness, SilenceWatch
from node.federation.status import error_for_status, status_for
from node.ids import NodeId
from node.logs import get_logger
from node.services import exchange, peer_evidence
from node.services.context import NodeContext

__all__ = ["DbRunner", "FrameTransport", "LinkSession", "RefusedError"]

PROTOCOL_VERSION = 1
HELLO_TIMEOUT_SECONDS = 10.0
# Once the stream has ended (the reader queued its end), the committer has this long to
# commit what was read before; a write to the broken stream must not hold the link.
DRAIN_SECONDS = 10.0
# A Deliveries frame this node sends or takes is at most this share of the gRPC message
# limit (server.max_message_bytes): the rest is headroom for framing.
FRAME_SHARE = 2
# A batch of at most this many envelopes (traffic is low) has its responses sent from the
# commit's own result, ahead of its Ack, instead of read back from the outbox: a referral's
# receipt leaves as soon as it is committed. Bigger batches (load) leave the responses to
# the send loop, which reads them in bulk anyway.
READY_BATCH = 8
# An idle sender reads its outbox on its own once in this many poll intervals: the node's
# outbox poll wakes it within one when its peer has rows it did not send, so this is only
# the last resort should that poll stop.
FALLBACK_POLLS = 6
T = TypeVar("T")
# What a transport's read raises when the stream breaks (grpc.aio's errors derive from
# RpcError): the end of the session, not a fault of ours.
_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (grpc.RpcError, OSError)


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
    async def work(self, fn: Callable[..., T], *args: Any) -> T: ...


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
        self._ready = frames.ReadyQueue(cfg.window)
        self._acked_changed = asyncio.Event()
        self._queue: asyncio.Queue[federation_pb2.Frame | None] = asyncio.Queue(cfg.window)
        # Liveness (node.federation.liveness): our heartbeat Acks, the peer's silence.
        self.liveness = Liveness(cfg.keepalive_seconds)
        self.committed = 0  # the last sequence committed from the peer (what our Acks say)
        self.silence = SilenceWatch(0.0)  # started again when the session runs
        self.log = get_logger(node_id=ctx.node_id, peer=peer)
        # The peer's pinned signing key, as the last commit left it: a batch's envelopes
        # are opened under it before the writer takes the batch (_open_ahead).
        self.peer_key = b""
        self.peer_note: bytes | None = None  # its checkpoint held here, as that commit left it
        self._acked_at = float("-inf")  # loop time of the last commit's Ack we wrote

    async def run(self) -> None:
        """Run until the peer closes the stream; raise RefusedError or PeerError on faults."""
        state = await self.db.read(exchange.hello_state, self.ctx, self.peer)
        notes = await self.db.read(peer_evidence.hello_notes, self.ctx, self.peer)
        last_in = self.committed = state.last_received
        self.peer_key = state.signing_key
        self.silence = SilenceWatch(asyncio.get_running_loop().time())
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
                            checkpoint=notes.own,
                            held_checkpoint=notes.held,
                        )
                    )
                )
                first = await self.transport.read()
        except TimeoutError as e:
            raise PeerError(f"no Hello from {self.peer} within {HELLO_TIMEOUT_SECONDS}s") from e
        if first is None:
            return
        self.silence.heard(asyncio.get_running_loop().time())
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
        try:  # both ledgers as the peer's Hello states them (node.services.peer_evidence)
            await self.db.write(peer_evidence.check_hello, self.ctx, self.peer, first.hello)
        except NodeError as e:
            await self._reject_hello(e)
            raise RefusedError(e, 0) from e
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
        poller = outbox_poll.poller_for(self.ctx, self.db)
        poller.watch(self)
        reader = asyncio.create_task(self._read_loop(), name="read")
        self.cosign = cosign_link.LinkCosigning(
            self.ctx, self.peer, self.db, self.transport.write, self.log
        )
        tasks = [
            asyncio.create_task(self.cosign.run(), name="cosign"),
            asyncio.create_task(self._commit_loop(), name="commit"),
            reader,
            asyncio.create_task(self._send_loop(), name="send"),
            asyncio.create_task(self._beat_loop(), name="heartbeat"),
            asyncio.create_task(self._watch_loop(), name="silence watch"),
        ]
        try:
            await self._supervise(tasks)
        except RefusedError as e:
            if self.in_band_rejections:
                for task in tasks:  # nothing else may write after the Rejection
                    if task is not reader:
                        task.cancel()
                await self._reject(e, reader)
            raise
        finally:
            poller.unwatch(self)
            for task in tasks:
                task.cancel()
            # Bounded: a write stuck on a broken stream ends when the caller cancels the
            # call, after this returns.
            await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
            for task in tasks:  # what a task raised after the session ended is not news
                if not task.cancelled():
                    task.exception()

    async def _supervise(self, tasks: list[asyncio.Task[None]]) -> None:
        """Wait on the session's tasks; the session lasts as long as all of them.

        The commit loop returning means the peer closed the stream (the reader queued its
        end): the session is over. The reader may end first (it queued the end; the
        committer drains the queue, within DRAIN_SECONDS). Any task that raises ends the
        session with its error, and any other task that stops is a fault: a send loop that
        died must never leave a link that receives and acknowledges but no longer sends."""
        pending = set(tasks)
        drain_until: float | None = None
        loop = asyncio.get_running_loop()
        while pending:
            timeout = None if drain_until is None else max(0.0, drain_until - loop.time())
            done, pending = await asyncio.wait(
                pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                # The stream ended, and the committer did not drain what was read before
                # it: it waits on a write to the broken stream, which may never return.
                raise PeerError(
                    f"the stream ended and the link's commit task did not finish within "
                    f"{DRAIN_SECONDS:.0f}s; the link reconnects"
                )
            for task in done:
                name = task.get_name()
                if task.cancelled():
                    raise PeerError(f"the link's {name} task was cancelled; the link reconnects")
                error = task.exception()
                if error is not None:
                    raise self._task_error(name, error)
                if name == "commit":
                    return
                if name != "read":
                    raise PeerError(f"the link's {name} task stopped; the link reconnects")
                drain_until = loop.time() + DRAIN_SECONDS

    def _task_error(self, name: str, error: BaseException) -> BaseException:
        """What a failed task ends the session with: our own errors (and the transport's)
        as they are; anything else, a bug, logged by type and named without its text
        (it may quote content), as a PeerError the caller records on the link."""
        if isinstance(error, RefusedError | NodeError | grpc.aio.AioRpcError):
            if name != "commit":
                self.log.warning("link.task_failed", task=name, error_kind=type(error).__name__)
            return error
        self.log.error("link.task_failed", task=name, error_kind=type(error).__name__)
        failure = PeerError(
            f"the link's {name} task failed ({type(error).__name__}); the link reconnects"
        )
        failure.__cause__ = error
        return failure

    async def _reject(self, error: RefusedError, reader: asyncio.Task[None]) -> None:
        """Tell the peer what we refused, then let it end the call: cancelling a pending
        read would cancel the call before the Rejection is on the wire."""
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

    async def _reject_hello(self, error: NodeError) -> None:
        """Refused at the Hellos (no task runs yet): the dialing side tells the peer why in
        a Rejection frame and lets it end the call, so the peer reads our Hello first and
        learns what it says; the serving side's edge answers with a status instead."""
        if not self.in_band_rejections:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(HELLO_TIMEOUT_SECONDS):
                await self.transport.write(
                    federation_pb2.Frame(
                        rejection=federation_pb2.Rejection(
                            sequence=0, code=status_for(error).value[0], message=str(error)
                        )
                    )
                )
                await self.transport.finish()
                while await self.transport.read() is not None:
                    pass

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self.silence.waiting(loop.time())
                frame = await self.transport.read()
                if frame is not None:
                    beat = frame.WhichOneof("kind") == "ack" and frame.ack.sequence <= self.acked
                    self.silence.heard(loop.time(), heartbeat=beat)
                if self._queue.full():
                    self.silence.busy()  # we are slow, not the peer silent
                await self._queue.put(frame)
                if frame is None:
                    return
        except _TRANSPORT_ERRORS as e:
            # The stream broke: the committer still takes what was read before (a
            # Rejection among it), then the session ends as if the peer had closed it; the
            # dialer reads the call's status.
            self.log.info("link.stream_broken", error_kind=type(e).__name__)
            await self._queue.put(None)

    async def _beat_loop(self) -> None:
        """Every beat: an Ack of what we committed, so the peer hears us however idle the
        link (a repeated Ack changes nothing on its side). After the first (which tells the
        peer we heartbeat: node.federation.liveness), not when a commit's Ack went out
        within the beat: the peer heard us (at 1,200 busy links the beats were a tenth of
        the event loop's time, decision 0041)."""
        loop = asyncio.get_running_loop()
        beaten = False
        while True:
            await asyncio.sleep(self.liveness.beat_seconds)
            if beaten and loop.time() - self._acked_at < self.liveness.beat_seconds:
                continue
            await self.transport.write(
                federation_pb2.Frame(ack=federation_pb2.Ack(sequence=self.committed))
            )
            beaten = True

    async def _watch_loop(self) -> None:
        """End the session when a heartbeating peer goes silent (node.federation.liveness):
        it sleeps until the silence could first pass the limit, then looks."""
        limit = self.liveness.silence_seconds
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.silence.due_in(loop.time(), limit) + LATE_SECONDS)
            if self.silence.too_quiet(loop.time(), limit):
                raise PeerError(
                    f"heard nothing from {self.peer} for {limit:.0f} s (its heartbeat stopped: "
                    "the network may be dropping packets); reconnecting"
                )

    async def _send_loop(self) -> None:
        while True:
            room = frames.room(self.window, self.sent, self.acked)
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
                    await asyncio.wait_for(self.wake.wait(), self.poll * FALLBACK_POLLS)

    async def _write_rows(self, rows: list[tuple[int, federation_pb2.Delivery]]) -> None:
        """Write (sequence, delivery) rows in frames (call under the send lock)."""
        for last, frame in frames.pack(rows, self.peer_frame_deliveries, self.peer_frame_bytes):
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
        room = frames.room(self.window, self.sent, self.acked)
        if room <= 0:
            return
        async with self._send_lock:
            rows = self._take_ready(min(self.batch, room))
            if rows:
                await self._write_rows(rows)

    def _take_ready(self, limit: int) -> list[frames.Row] | None:
        """The next envelopes to send from a commit of ours, if they are exactly what
        `pending` would read now (frames.ReadyQueue); None: read the outbox. (Call under
        the send lock.)"""
        taken = self._ready.take(self.sent, self.peer_holds, limit)
        if taken is None:
            return None
        rows, self.peer_holds = taken
        return rows

    def _items(self, frame: federation_pb2.Frame) -> list[federation_pb2.Delivery]:
        """The deliveries a frame carries (within this side's limits: more is refused)."""
        try:
            return frames.unpack(frame, self.batch, self.frame_bytes)
        except ValidationError as e:
            raise RefusedError(e, 0) from e

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
            elif kind in cosign_link.FRAME_KINDS:  # tlog-witness in the link (decision 0032)
                await self.cosign.on_frame(frame)
            elif kind is None:  # a kind newer than this node: ignored, so additions stay safe
                self.log.info("link.unknown_frame")
            else:
                raise RefusedError(ValidationError(f"unexpected {kind!r} frame"), 0)

    async def _commit(self, batch: list[federation_pb2.Delivery]) -> None:
        fault_point("before_commit")  # TEST ONLY (node.faults): read, not yet committed
        held = self.peer_holds if len(batch) <= READY_BATCH else None
        ahead = await self._open_ahead(batch)
        if self.ctx.config.federation.group_commit:
            # Group commit (node.federation.group_commit, ADR 0031): this batch commits in
            # one transaction with whatever other links have ready; same result, same Ack.
            writer = group_commit.writer_for(self.ctx, self.db)
            result = await writer.receive(self.peer, batch, held, ahead)
        else:
            result = await self.db.write(
                exchange.receive_batch, self.ctx, self.peer, batch, held, ahead
            )
        fault_point("after_commit")  # TEST ONLY (node.faults): committed, not yet acked
        if result.peer_key:
            self.peer_key, self.peer_note = result.peer_key, result.peer_checkpoint
        if result.outgoing is not None:
            self._ready.keep(result.outgoing)
            await self._send_ready()
        if result.replays:
            async with self._send_lock:
                self.peer_holds = await self.db.read(
                    exchange.prove, self.ctx, result.replays, self.peer_holds
                )
                for replay in result.replays:
                    await self.transport.write(federation_pb2.Frame(delivery=replay))
        if result.committed_through:
            self.committed = result.committed_through
            await self.transport.write(
                federation_pb2.Frame(ack=federation_pb2.Ack(sequence=result.committed_through))
            )
            self._acked_at = asyncio.get_running_loop().time()
        if result.queued_through > self.sent:
            self.wake.set()  # responses (receipts) are waiting in the outbox
        if result.applied:
            self.log.debug("link.committed", count=result.applied, through=result.committed_through)
        if result.error is not None:
            self.log.warning(
                "link.refused",
                sequence=result.failed_sequence,
                error=type(result.error).__name__,
                reason=str(result.error),
            )
            raise RefusedError(result.error, result.failed_sequence)

    async def _open_ahead(self, batch: list[federation_pb2.Delivery]) -> OpenedAhead | None:
        """The batch's envelopes opened under the peer's key as the last commit left it, on
        a thread beside the writer (decision 0041); the writer takes each outcome only if
        the key is still the pinned one, and opens the envelope itself otherwise."""
        if not self.peer_key:
            return None
        return await self.db.work(
            functools.partial(
                OpenedAhead.opening,
                [d.envelope for d in batch],
                peer=self.peer,
                peer_key=VerifyKey(self.peer_key),
                me=self.ctx.node_id,
                held_note=self.peer_note,
            )
        )

    async def _on_ack(self, sequence: int) -> None:
        if sequence <= self.acked:
            return
        if sequence > self.sent:
            raise RefusedError(
                ValidationError(f"ack for sequence {sequence}, but only {self.sent} were sent"), 0
            )
        if self.ctx.config.federation.group_commit:  # with other links' work (ADR 0033)
            await group_commit.writer_for(self.ctx, self.db).acknowledge(self.peer, sequence)
        else:
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
