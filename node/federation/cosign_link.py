"""Linked peers cosign each other's checkpoints inside the link stream (decision 0032).

The C2SP tlog-witness add-checkpoint exchange, carried by two frame kinds of the link's
stream instead of HTTP, so a parent cosigns its child's log (and the child its parent's)
with no extra port or configuration even where only the child can dial:

    WitnessRequest{add_checkpoint_body}          exactly an add-checkpoint request body
    WitnessResponse{status, content_type, body}  exactly the HTTP endpoint's answer

Rules, on both ends of every link:
  1. after the Hello, and then every witness.submit_interval_seconds, if this node has
     signed a checkpoint larger than the peer last cosigned, ask the peer to cosign it
     (node.services.cosigning.peer_offer: from that size, with the consistency proof); at most
     one request is outstanding, and its answer is awaited at most witness.timeout_seconds;
  2. the answer is read as an HTTP answer is (cosigning.take_answer): a cosignature is
     stored only if it verifies under the peer's link cosigner key, derived from the signing
     key pinned for the peer, never from anything the frame says; a 409 naming a size we can
     prove from is retried once, at once;
  3. a request from the peer is answered by the HTTP endpoint's own handler
     (witness_http.handle_add_checkpoint, on the database writer thread) for the peer's own
     log only, cosigned with this node's signing key under its link cosigner name;
  4. a peer that predates these frames refuses them and ends the session; a peer that never
     sent a witness frame in this process and left the session with our request
     unanswered is not asked first again for QUIET_PEER_SECONDS (its own request, once it
     is upgraded, lifts that at once), so an old peer costs one reconnect, not a loop.
Nothing here ends a session on a refusal or a bad answer: those are logged, and the next
round asks again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from node._proto.lapor.v1 import federation_pb2
from node.errors import NodeError
from node.ids import NodeId
from node.services import cosigning
from node.services.context import NodeContext
from node.transparency import witness_http

__all__ = ["FRAME_KINDS", "QUIET_PEER_SECONDS", "LinkCosigning"]

FRAME_KINDS = frozenset({"witness_request", "witness_response"})
QUIET_PEER_SECONDS = 900.0
MAX_ANSWER_BYTES = 1 << 16  # what the HTTP side reads of an answer, too

# Peers, by (this node, peer), that left a session with our request unanswered and never
# sent a witness frame in this process: when we may ask them first again (rule 4).
_quiet_until: dict[tuple[str, str], float] = {}
# Peers, by (this node, peer), that sent a witness frame in this process.
_speaks: set[tuple[str, str]] = set()

Write = Callable[[federation_pb2.Frame], Awaitable[None]]


class LinkCosigning:
    """The witness exchange of one link session: `run` as a session task, `on_frame` for
    each witness frame the session reads."""

    def __init__(self, ctx: NodeContext, peer: NodeId, db: Any, write: Write, log: Any) -> None:
        self.ctx = ctx
        self.peer = peer
        self.db = db  # the session's DbRunner
        self.write = write
        self.log = log
        self._pair = (str(ctx.node_id), str(peer))
        self._answer: asyncio.Future[tuple[int, str, bytes]] | None = None
        self._unanswered = False  # a request of ours went out and no answer came yet

    async def run(self) -> None:
        """Rule 1: ask, then wait the interval, for as long as the session lasts."""
        interval = self.ctx.config.witness.submit_interval_seconds
        loop = asyncio.get_running_loop()
        try:
            while True:
                if self._may_ask(loop.time()):
                    await self._round()
                await asyncio.sleep(interval)
        finally:
            if self._unanswered and self._pair not in _speaks:
                _quiet_until[self._pair] = loop.time() + QUIET_PEER_SECONDS
                self.log.info("link.cosign_quiet_peer", seconds=QUIET_PEER_SECONDS)

    def _may_ask(self, now: float) -> bool:
        return self._pair in _speaks or _quiet_until.get(self._pair, 0.0) <= now

    async def _round(self) -> None:
        """One offer to the peer, and the one retry a 409 allows."""
        asked = await self.db.read(cosigning.peer_offer, self.ctx, self.peer)
        for _attempt in range(2):
            if not isinstance(asked, cosigning.Offer):  # not linked, or nothing to ask
                return
            key = asked.key
            answer = await self._ask(asked.body)
            if answer is None:
                return
            try:
                answered = await self.db.write(cosigning.take_answer, self.ctx, asked, *answer)
            except NodeError as e:
                self.log.warning(
                    "checkpoint.cosign_failed", witness=key.name, size=asked.size, error=str(e)
                )
                return
            if isinstance(answered, cosigning.SubmitResult):
                event = "checkpoint.cosigned" if answered.cosigned else "checkpoint.cosign_failed"
                self.log.info(
                    event,
                    witness=key.name,
                    size=answered.size,
                    status=answered.status,
                    detail=answered.detail,
                )
                return
            asked = answered

    async def _ask(self, body: bytes) -> tuple[int, str, bytes] | None:
        """Send one request; its answer, or None if none came within the timeout."""
        self._answer = asyncio.get_running_loop().create_future()
        self._unanswered = True
        await self.write(
            federation_pb2.Frame(
                witness_request=federation_pb2.WitnessRequest(add_checkpoint_body=body)
            )
        )
        timeout = self.ctx.config.witness.timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                answer = await self._answer
        except TimeoutError:
            self.log.warning("checkpoint.cosign_failed", error=f"no answer within {timeout}s")
            self._answer, self._unanswered = None, False  # a late answer is logged, unused
            return None
        self._answer = None
        return answer

    async def on_frame(self, frame: federation_pb2.Frame) -> None:
        """Rules 2 and 3: an answer to our request, or a request to answer."""
        _speaks.add(self._pair)
        _quiet_until.pop(self._pair, None)
        if frame.WhichOneof("kind") == "witness_request":
            body = frame.witness_request.add_checkpoint_body
            status, content_type, answer = await self.db.write(
                witness_http.handle_add_checkpoint, self.ctx, body, self.peer
            )
            await self.write(
                federation_pb2.Frame(
                    witness_response=federation_pb2.WitnessResponse(
                        status=status, content_type=content_type, body=answer
                    )
                )
            )
            return
        response = frame.witness_response
        if self._answer is None or self._answer.done():
            self.log.info("link.cosign_unasked_answer", status=response.status)
            return
        self._unanswered = False
        self._answer.set_result(
            (response.status, response.content_type, response.body[:MAX_ANSWER_BYTES])
        )
