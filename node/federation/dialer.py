"""The child's side of its link: dial the parent, run one LinkSession per connection, and
dial again by the reconnect rule (node.federation.reconnect).

A parent that cannot be reached may have rotated its keys while this node was away: its
rotations are fetched from its enrollment port and followed from the pinned key (at most
once a minute). A parent that ends the stream with a status has what it said recorded as
the link's last error, and quoted when it cannot be reached. A parent that ends it because
it revoked the link (pins.REVOKED_METADATA) is dialed no more: one warning says so and how
to rejoin, and the link's last error keeps it (REVOKED_BY_PARENT), across restarts too."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from node._proto.lapor.v1 import federation_pb2_grpc
from node.config import port_after
from node.crypto.tls import dns_name
from node.errors import NodeError
from node.federation.enrollment_port import fetch_key_rotations
from node.federation.live import LiveLinks
from node.federation.liveness import Liveness
from node.federation.pins import REVOKED_METADATA, Pins
from node.federation.reconnect import ReconnectPolicy
from node.federation.session import LinkSession, RefusedError, describe
from node.federation.status import status_for
from node.federation.transports import ClientTransport
from node.federation.workers import DbWorkers
from node.ids import NodeId
from node.metrics import observe_refusal
from node.services import links, rotation
from node.services.context import NodeContext

__all__ = ["KEY_FOLLOW_SECONDS", "REVOKED_BY_PARENT", "ParentDialer"]

KEY_FOLLOW_SECONDS = 60.0
# How the link's last error begins once the parent revoked the link: not dialed again.
REVOKED_BY_PARENT = "link revoked by parent"


class ParentDialer:
    def __init__(
        self, ctx: NodeContext, db: DbWorkers, pins: Pins, live: LiveLinks, log: Any
    ) -> None:
        self.ctx = ctx
        self.db = db
        self.pins = pins
        self.live = live
        self.log = log
        self.parent_said: str | None = None  # the status the parent last ended a stream with
        self.revoked_by: set[str] = set()  # parents that revoked this node's link
        self._keys_followed_at = 0.0

    def _channel_options(self, parent: str) -> list[tuple[str, Any]]:
        cfg = self.ctx.config
        liveness = Liveness(cfg.federation.keepalive_seconds)
        return [
            ("grpc.ssl_target_name_override", dns_name(parent)),
            ("grpc.max_send_message_length", cfg.server.max_message_bytes),
            ("grpc.max_receive_message_length", cfg.server.max_message_bytes),
            ("grpc.keepalive_time_ms", liveness.ping_ms),
            ("grpc.keepalive_timeout_ms", liveness.ping_timeout_ms),
            ("grpc.http2.ping_timeout_ms", liveness.ping_timeout_ms),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            # One channel serves one session and one dial of federation.connect_timeout_ms:
            # its own retries stay inside that window; waits between dials are the policy's.
            ("grpc.initial_reconnect_backoff_ms", cfg.federation.reconnect_min_ms),
            (
                "grpc.max_reconnect_backoff_ms",
                min(cfg.federation.reconnect_max_ms, cfg.federation.connect_timeout_ms),
            ),
        ]

    async def run(self) -> None:
        cfg = self.ctx.config.federation
        policy = ReconnectPolicy.from_ms(cfg.reconnect_min_ms, cfg.reconnect_max_ms)
        try:
            views = await self.db.read(links.list_links, self.ctx)
        except NodeError as e:  # bookkeeping: the parent is dialed, and says so again
            self.log.error("link.state_not_read", error=str(e))
            views = []
        for view in views:
            if view.role == "parent" and (view.last_error or "").startswith(REVOKED_BY_PARENT):
                self.revoked_by.add(view.peer_id)
                self.log.warning("link.revoked_by_parent", peer=view.peer_id, said=view.last_error)
        while True:
            parent = self.pins.parent()
            if parent is None or not parent.address or parent.peer_id in self.revoked_by:
                # Nothing to dial until the pins change (a province with no parent, say):
                # no timer meanwhile (issue 20.5; it looked every PIN_REFRESH_SECONDS).
                await self.pins.reloaded()
                continue
            # A task of its own, so the pin refresher can end it when the link is revoked.
            task = asyncio.create_task(self._one_session(parent))
            self.pins.parent_session = (parent, task)
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError:
                task.cancel()
                await asyncio.wait([task], timeout=self.ctx.config.server.grace_seconds)
                raise
            finally:
                self.pins.parent_session = None
            if task.cancelled():
                self.log.warning("link.parent_unpinned", peer=parent.peer_id)
                continue
            try:
                up_for = task.result()
            except Exception as e:  # a session's bug must not end the dialing for good
                self.log.error("link.session_crashed", error_kind=type(e).__name__)
                await self.live.note_error(NodeId(parent.peer_id), describe(e))
                up_for = None
            if parent.peer_id in self.revoked_by:
                continue  # dialed no more (said once, in _revoked)
            delay = policy.delay_after(up_for)
            self.log.info("link.redial", after_seconds=round(delay, 3), up_for=up_for)
            await asyncio.sleep(delay)

    async def _one_session(self, parent: links.Pin) -> float | None:
        """One stream to the parent; how long it was up after the Hellos (None: it never
        got that far), for the reconnect rule (node.federation.reconnect)."""
        peer = NodeId(parent.peer_id)
        creds = grpc.ssl_channel_credentials(
            root_certificates=b"".join(parent.certificates),
            private_key=self.pins.client_identity.key_pem,
            certificate_chain=self.pins.client_identity.cert_pem,
        )
        loop = asyncio.get_running_loop()
        up_since: float | None = None

        async def hello() -> None:
            nonlocal up_since
            up_since = loop.time()
            self.parent_said = None
            await self.live.note_error(peer, None)
            await self.live.mark(peer, True)

        async with grpc.aio.secure_channel(
            parent.address or "", creds, options=self._channel_options(peer)
        ) as channel:
            try:
                connect = self.ctx.config.federation.connect_timeout_ms / 1000
                await asyncio.wait_for(channel.channel_ready(), connect)
            except TimeoutError:
                said = "" if self.parent_said is None else f"; it last said: {self.parent_said}"
                await self.live.note_error(peer, f"cannot reach parent at {parent.address}{said}")
                self.log.warning("link.unreachable", address=parent.address)
                await self._follow_rotations(parent)
                return None
            stub = federation_pb2_grpc.FederationServiceStub(channel)  # type: ignore[no-untyped-call]
            call = stub.Exchange()
            session = LinkSession(
                self.ctx,
                peer,
                ClientTransport(call),
                self.db,
                self.live.wake(peer),
                on_hello=hello,
                in_band_rejections=True,
            )
            self.live.sessions[peer] = session
            try:
                await session.run()
                await self._ended_by_parent(peer, call)
            except RefusedError as e:
                observe_refusal(peer, status_for(e.error).name, e.error)
                await self.live.note_error(peer, describe(e))
                self.log.warning("link.refused_from_parent", error=describe(e))
            except NodeError as e:
                await self.live.note_error(peer, describe(e))
                self.log.warning("link.failed", error=describe(e))
            except grpc.aio.AioRpcError as e:
                if _revoked_in(e.trailing_metadata(), peer):
                    await self._revoked(peer, e.code(), e.details())
                    return None if up_since is None else loop.time() - up_since
                message = f"{e.code().name}: {e.details()}"
                await self.live.note_error(peer, message)
                self.log.warning("link.rpc_error", code=e.code().name, details=e.details())
            finally:
                call.cancel()
                if self.live.sessions.get(peer) is session:
                    del self.live.sessions[peer]
                if up_since is not None:
                    await asyncio.shield(self.live.mark(peer, False))
        return None if up_since is None else loop.time() - up_since

    async def _follow_rotations(self, parent: links.Pin) -> None:
        """The parent cannot be reached: if it rotated its keys while this node was away
        (its certificate is no longer one pinned here), fetch its rotations from its
        enrollment port and follow them from the pinned key. At most once a minute."""
        now = asyncio.get_running_loop().time()
        if now - self._keys_followed_at < KEY_FOLLOW_SECONDS:
            return
        self._keys_followed_at = now
        address = parent.enrollment_address or port_after(parent.address or "")
        peer = NodeId(parent.peer_id)
        try:
            chain = await asyncio.to_thread(fetch_key_rotations, address, peer)
            followed = await self.db.write(rotation.follow_fetched, self.ctx, peer, chain)
        except NodeError as e:
            self.log.warning("peer.key_rotations_not_followed", peer=peer, error=str(e))
            return
        if followed:
            self.log.warning("peer.key_rotated", peer=peer, entries=followed, fetched_from=address)
            await self.pins.refresh()

    async def _ended_by_parent(self, peer: NodeId, call: Any) -> None:
        """The stream ended without an error of ours: if the parent ended it with a status
        (e.g. it revoked the link), record what it said."""
        try:
            code = await asyncio.wait_for(call.code(), 1.0)
            details = await call.details()
        except (TimeoutError, grpc.aio.AioRpcError):
            return
        if code in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
            return
        try:
            metadata = await asyncio.wait_for(call.trailing_metadata(), 1.0)
        except (TimeoutError, grpc.aio.AioRpcError):
            metadata = None
        if _revoked_in(metadata, peer):
            await self._revoked(peer, code, details)
            return
        self.parent_said = f"{code.name}: {details}"
        await self.live.note_error(peer, self.parent_said)
        self.log.warning("link.closed_by_parent", code=code.name, details=details)

    async def _revoked(self, peer: NodeId, code: grpc.StatusCode, details: str) -> None:
        """The parent ended the stream because it revoked this node's link: stop dialing
        it, say so once, and keep it as the link's last error (read again at start)."""
        self.revoked_by.add(peer)
        advice = (
            f'to rejoin run `lapor-node link revoke {peer} --reason "revoked by {peer}"` here '
            f"to record the end, then `lapor-node link join TOKEN` for a new node id with a "
            f"token from {peer}'s operator (this version cannot link the same two nodes again)"
        )
        message = f"{REVOKED_BY_PARENT} {peer} ({code.name}: {details}); {advice}"
        # Down before the reason is written: nobody reads a revoked link as connected.
        await self.live.mark(peer, False)
        await self.live.note_error(peer, message)
        self.log.warning("link.revoked_by_parent", peer=peer, said=details, advice=advice)


def _revoked_in(metadata: Any, parent: str) -> bool:
    """Whether a stream's trailing metadata says `parent` revoked this node's link."""
    return any(key == REVOKED_METADATA and value == parent for key, value in (metadata or ()))
