"""The running node: the mutual-TLS gRPC server for children and auditors, the dialer to
the parent, the pinned-certificate set both use, interval checkpoints and metrics.

Trust: the server's trust roots are exactly the pinned certificates of active links and
the certificates of the auditors node.yaml lists (re-read at each handshake through
dynamic server credentials, so `link add` needs no restart; auditors are read at start).
A client certificate that chains to a pinned one is not enough: the caller's own
certificate must be byte-for-byte a pinned one (its SHA-256 fingerprint), and a peer's node
id is read from that certificate's `lapor-node://` SAN, never from a message.

Who may call what: FederationService.Exchange, children only (an auditor gets
PERMISSION_DENIED); AuditService (read-only), linked peers and listed auditors. A
certificate pinned by nobody fails the TLS handshake, or if it chains to a pinned one,
gets UNAUTHENTICATED.

Links come and go without a restart: the pin refresher re-reads the active links every
PIN_REFRESH_SECONDS; a new child is trusted from its next handshake, a new parent is dialed,
and a peer whose link was revoked (or whose pinned certificate changed) loses its live
stream at once (its session task is cancelled; a child is told why) and is no longer in
the trust roots. The running node marks each link connected while a stream is up
(node.services.links: connected_since, and a heartbeat of last_seen_at).

Joins: `server.enrollment_listen` (default: the port after `listen`) serves
lapor.v1.EnrollmentService over TLS with this node's certificate and no client certificate
(node.federation.enrollment). An explicitly configured port that cannot be bound stops the
node; the default one is only logged, and joins are then off.

Checkpoints: every `ledger.checkpoint_interval_seconds` the ledger's size is read and, if
it changed since the latest checkpoint, one is signed (node.services.checkpoints.sign, on
the writer thread). An integrity failure there (the new tree does not extend the signed
one, or a stored note does not verify) is logged at critical level and stops signing for
the life of the process: the node must not sign past evidence it cannot vouch for. The
server keeps serving, so the ledger can still be audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import start_http_server

from node._proto.lapor.v1 import audit_pb2_grpc, federation_pb2, federation_pb2_grpc
from node.config import port_after
from node.crypto.keyfiles import read_file
from node.crypto.tls import dns_name, fingerprint, node_id_from_certificate
from node.errors import ConfigError, IntegrityError, NodeError, PeerError, ValidationError
from node.federation import limits
from node.federation.audit_service import AuditServicer, Caller
from node.federation.enrollment import (
    EnrollmentServicer,
    enrollment_server,
    fetch_key_rotations,
)
from node.federation.intake import IntakeServer, start_intake
from node.federation.session import LinkSession, RefusedError, describe
from node.federation.status import status_for
from node.ids import NodeId
from node.logs import get_logger
from node.metrics import (
    CALLS_REFUSED,
    CHECKPOINT_FAILURES,
    LEDGER_SIZE,
    LINK_GAUGES_SECONDS,
    REGISTRY,
    WORKFLOW_GAUGES_SECONDS,
    LinkSample,
    observe_checkpoint,
    observe_links,
    observe_refusal,
    observe_workflow,
)
from node.services import audit, checkpoints, exchange, links, rotation
from node.services.context import NodeContext
from node.services.reports import workflow_sample
from node.store.db import DataVersionProbe
from node.web import DashboardServer, start_dashboard

__all__ = ["NodeRuntime", "exchange_service"]

T = TypeVar("T")
PIN_REFRESH_SECONDS = 1.0
KEY_FOLLOW_SECONDS = 60.0
OUTBOX_WATCH_SECONDS = 0.01  # SQLite's poll of data_version
OUTBOX_LISTEN_RETRY_SECONDS = 1.0  # PostgreSQL: listening again after a failure
CONNECT_TIMEOUT_SECONDS = 5.0


def exchange_service(handler: Callable[..., Any]) -> grpc.GenericRpcHandler:
    """`lapor.v1.FederationService` with `handler` as its bidirectional Exchange method."""
    return grpc.method_handlers_generic_handler(
        "lapor.v1.FederationService",
        {
            "Exchange": grpc.stream_stream_rpc_method_handler(
                handler,
                request_deserializer=federation_pb2.ExchangeRequest.FromString,
                response_serializer=federation_pb2.ExchangeResponse.SerializeToString,
            )
        },
    )


class _Db:
    """Database work off the event loop: one writer thread (SQLite has one writer anyway),
    a few reader threads."""

    def __init__(self) -> None:
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="db-write")
        self._readers = ThreadPoolExecutor(4, thread_name_prefix="db-read")

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, fn, *args)

    def shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)


class _ServerTransport:
    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context
        self._lock = asyncio.Lock()

    async def read(self) -> federation_pb2.Frame | None:
        request = await self._context.read()
        if request is grpc.aio.EOF:
            return None
        return request.frame  # type: ignore[no-any-return]

    async def write(self, frame: federation_pb2.Frame) -> None:
        async with self._lock:
            await self._context.write(federation_pb2.ExchangeResponse(frame=frame))

    async def finish(self) -> None:
        return None


class _ClientTransport:
    def __init__(self, call: Any) -> None:
        self._call = call
        self._lock = asyncio.Lock()

    async def read(self) -> federation_pb2.Frame | None:
        response = await self._call.read()
        if response is grpc.aio.EOF:
            return None
        return response.frame  # type: ignore[no-any-return]

    async def write(self, frame: federation_pb2.Frame) -> None:
        async with self._lock:
            try:
                await self._call.write(federation_pb2.ExchangeRequest(frame=frame))
            except asyncio.InvalidStateError as e:
                # The call ended (the connection broke, the parent died) before this write:
                # grpc.aio says so with InvalidStateError, not AioRpcError. End the session
                # as a failed read would, so the dialer reconnects.
                raise PeerError("the stream to the parent ended (connection lost)") from e

    async def finish(self) -> None:
        async with self._lock:
            await self._call.done_writing()


class NodeRuntime:
    """Serve children and dial the parent until stopped."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.db = _Db()
        self.log = get_logger(node_id=ctx.node_id)
        self._tls_key = read_file(ctx.config.tls_key, "TLS key")
        self._tls_cert = read_file(ctx.config.tls_cert, "TLS certificate")
        # What this node presents: after `keys rotate`, the old certificate for a while
        # (node.services.rotation.presented_identities); else the configured files.
        current = rotation.Identity(self._tls_key, self._tls_cert)
        self._server_identity = current
        self._client_identity = current
        self._enrollment_identity = current
        self._enrollment_changed = self._intake_changed = False
        self._keys_followed_at = 0.0
        self._pins: list[links.Pin] = []
        self._pins_changed = True
        self._wake: dict[str, asyncio.Event] = {}
        self._sessions: dict[str, asyncio.Task[Any]] = {}
        self._parent_session: tuple[links.Pin, asyncio.Task[bool]] | None = None
        self._dropped: dict[str, tuple[grpc.StatusCode, str]] = {}
        self._connected: set[str] = set()
        self._parent_said: str | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._server: grpc.aio.Server | None = None
        self._enrollment: grpc.aio.Server | None = None
        self._intake: IntakeServer | None = None
        self.enrollment_port = 0
        self._metrics: Any = None
        self._health = health.aio.HealthServicer()
        self.port = 0
        self.metrics_port = 0
        self._dashboard: DashboardServer | None = None
        self.signing_stopped = False
        self.checkpoint_rounds = 0

    # Pins and credentials -------------------------------------------------------------

    async def _refresh_pins(self) -> None:
        pins = await self.db.read(links.pins, self.ctx)
        if [(p.peer_id, p.fingerprints, p.address) for p in pins] != [
            (p.peer_id, p.fingerprints, p.address) for p in self._pins
        ]:
            # Gone: a pin with a certificate no longer accepted (revoked, re-pinned, or an
            # earlier certificate past its grace period). A new certificate added beside
            # the old one (the peer rotated its keys) ends no stream.
            kept = {(p.peer_id, fp) for p in pins for fp in p.fingerprints}
            gone = [
                p for p in self._pins if any((p.peer_id, fp) not in kept for fp in p.fingerprints)
            ]
            self._pins = pins
            self._pins_changed = True
            self.log.info("pins.loaded", peers=[p.peer_id for p in pins])
            for pin in gone:
                self._drop(pin)
        parent = self._parent_session
        if parent is not None and not parent[1].done():
            now = next((p for p in self._pins if p.peer_id == parent[0].peer_id), None)
            if (
                now is None
                or not set(parent[0].fingerprints) <= set(now.fingerprints)
                or now.address != (parent[0].address)
            ):
                parent[1].cancel()
        await self._refresh_identities()

    async def _refresh_identities(self) -> None:
        """Which certificate to present, as a server and to the parent (key rotation)."""
        parent = next((p.peer_id for p in self._pins if p.role == "parent"), None)
        server, client = await self.db.read(rotation.presented_identities, self.ctx, parent)
        if server != self._server_identity:
            self._server_identity = server
            self._pins_changed = True
            self.log.info("tls.identity_changed", role="server")
        if client != self._client_identity:
            self._client_identity = client
            self.log.info("tls.identity_changed", role="client")
        current = await asyncio.to_thread(rotation.current_identity, self.ctx.config)
        if current != self._enrollment_identity:
            self._tls_key, self._tls_cert = current.key_pem, current.cert_pem
            self._enrollment_identity = current
            self._enrollment_changed = self._intake_changed = True

    def _drop(self, pin: links.Pin) -> None:
        """`pin` is no longer trusted (revoked, or re-pinned to another certificate): close
        its live stream now."""
        task = self._sessions.get(pin.peer_id)
        repinned = any(p.peer_id == pin.peer_id for p in self._pins)
        if task is not None and not task.done():
            self._dropped[pin.peer_id] = (
                (
                    grpc.StatusCode.UNAVAILABLE,
                    f"{self.ctx.node_id} now pins another certificate for {pin.peer_id}; "
                    "reconnect with it",
                )
                if repinned
                else (
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{self.ctx.node_id} ended its link with {pin.peer_id}; this node refuses "
                    "its connections from now on. Its operator can tell you why "
                    "(`lapor-node link list` there shows the revocation)",
                )
            )
            task.cancel()
        self.log.warning(
            "link.unpinned", peer=pin.peer_id, repinned=repinned, closed_stream=task is not None
        )

    async def _pin_refresher(self) -> None:
        while True:
            await asyncio.sleep(PIN_REFRESH_SECONDS)
            try:
                await self._refresh_pins()
            except NodeError as e:
                self.log.error("pins.refresh_failed", error=str(e))

    async def _mark(self, peer: str, connected: bool) -> None:
        if connected:
            self._connected.add(peer)
        else:
            self._connected.discard(peer)
        try:
            await self.db.write(links.mark_connected, self.ctx, peer, connected)
        except NodeError as e:  # pragma: no cover - best effort bookkeeping
            self.log.error("link.state_not_recorded", peer=peer, error=str(e))

    async def _outbox_watcher(self) -> None:
        """Wake the session of a peer as soon as another process (an operator's `refer`)
        queued something for it, instead of each idle session polling its outbox (which it
        still does, slowly): on PostgreSQL when the commit is notified, on SQLite within
        OUTBOX_WATCH_SECONDS."""
        if self.ctx.db.is_sqlite:
            await self._outbox_poller()
        else:
            await self._outbox_listener()

    async def _outbox_listener(self) -> None:
        """PostgreSQL: the notifications of migration 0011's trigger name the peers
        (node.store.db.OutboxNotifications). Each time it starts listening, every session
        is woken once: rows may have been queued while nothing listened."""
        failed = False
        while True:
            try:
                async with self.ctx.db.outbox_notifications() as queued:
                    failed = False
                    for event in list(self._wake.values()):
                        event.set()
                    async for peer in queued:
                        self.wake(peer).set()
            except Exception as e:  # best effort: the sessions still poll
                if not failed:  # logged once, not at every failed try while it is down
                    self.log.warning(
                        "outbox.listen_failed", error_kind=type(e).__name__, error=str(e)
                    )
                failed = True
            await asyncio.sleep(OUTBOX_LISTEN_RETRY_SECONDS)

    async def _outbox_poller(self) -> None:
        """SQLite: every OUTBOX_WATCH_SECONDS its data_version (node.store.db.
        DataVersionProbe); only when that moved, one read of the outbox for the peers of
        the rows queued since the last. Without a probe (it failed: a new one is made at
        the next look), the outbox is read every time."""
        seen = -1
        probe: DataVersionProbe | None = None
        read_at: int | None = None  # the version the last read of the outbox followed
        try:
            while True:
                await asyncio.sleep(OUTBOX_WATCH_SECONDS)
                version: int | None = None
                try:
                    if probe is None:
                        probe = await self.db.read(self.ctx.db.data_version_probe)
                    version = await self.db.read(probe.version)
                    if version == read_at:
                        continue
                except Exception as e:  # pragma: no cover - best effort: read the outbox
                    if probe is not None:  # logged once, not at every failed first look
                        self.log.warning("outbox.probe_failed", error_kind=type(e).__name__)
                        with contextlib.suppress(Exception):
                            await self.db.read(probe.close)
                    probe, version = None, None
                try:
                    top, peers = await self.db.read(exchange.outbox_written_since, self.ctx, seen)
                except NodeError as e:  # pragma: no cover - best effort; sessions still poll
                    self.log.error("outbox.watch_failed", error=str(e))
                    continue
                read_at = version
                if seen >= 0:
                    for peer in peers:
                        self.wake(peer).set()
                seen = top
        finally:
            if probe is not None:
                probe.close()

    async def _heartbeat(self) -> None:
        """While streams are up, refresh their peers' last_seen_at (see links.STALE_AFTER)."""
        while True:
            await asyncio.sleep(links.HEARTBEAT_SECONDS)
            try:
                await self.db.write(links.heartbeat, self.ctx, sorted(self._connected))
            except NodeError as e:  # pragma: no cover - best effort bookkeeping
                self.log.error("link.heartbeat_failed", error=str(e))

    async def _workflow_gauges(self) -> None:
        """With metrics on, every WORKFLOW_GAUGES_SECONDS: complaints by status, overdue
        and SLA breaches (node.services.reports.workflow_sample) as gauges."""
        while self.ctx.config.metrics.enabled:
            try:
                sample = await self.db.read(workflow_sample, self.ctx)
                observe_workflow(sample.by_status, sample.overdue, sample.breaches)
            except NodeError as e:  # pragma: no cover - best effort bookkeeping
                self.log.error("complaints.gauges_failed", error=str(e))
            await asyncio.sleep(WORKFLOW_GAUGES_SECONDS)

    async def _link_gauges(self) -> None:
        """With metrics on, every LINK_GAUGES_SECONDS: each linked peer's sync health as
        `link list` shows it (connected from this process's live streams), as gauges."""
        while self.ctx.config.metrics.enabled:
            try:
                views = await self.db.read(links.list_links, self.ctx)
                observe_links(
                    LinkSample(
                        v.peer_id,
                        v.peer_id in self._connected,
                        v.outbox_depth,
                        v.lag_messages,
                        v.lag_seconds,
                        None if v.last_seen_at is None else v.last_seen_at.timestamp(),
                    )
                    for v in views
                )
            except Exception as e:  # pragma: no cover - best effort: never stop refreshing
                self.log.error("link.gauges_failed", error_kind=type(e).__name__, error=str(e))
            await asyncio.sleep(LINK_GAUGES_SECONDS)

    def _credentials_config(self) -> Any:
        # With nothing pinned yet, trust only ourselves: nobody else gets in.
        pinned = [cert for p in self._pins for cert in p.certificates]
        pinned += [a.cert_pem for a in self.ctx.config.auditors]
        own = self._server_identity
        roots = b"".join(pinned) or own.cert_pem
        return grpc.ssl_server_certificate_configuration(
            [(own.key_pem, own.cert_pem)], root_certificates=roots
        )

    def _fetch_credentials(self) -> Any:
        """Called by gRPC at each handshake; None keeps the current configuration."""
        if not self._pins_changed:
            return None
        self._pins_changed = False
        return self._credentials_config()

    def _fetch_enrollment_identity(self) -> Any:
        """The enrollment port presents the current certificate (the one new join tokens
        name), from the next handshake after a key rotation; None keeps it."""
        if not self._enrollment_changed:
            return None
        self._enrollment_changed = False
        own = self._enrollment_identity
        return grpc.ssl_server_certificate_configuration([(own.key_pem, own.cert_pem)])

    def _fetch_intake_identity(self) -> Any:
        """The intake port, like the enrollment port, presents the current certificate."""
        if not self._intake_changed:
            return None
        self._intake_changed = False
        own = self._enrollment_identity
        return grpc.ssl_server_certificate_configuration([(own.key_pem, own.cert_pem)])

    def wake(self, peer: str) -> asyncio.Event:
        return self._wake.setdefault(peer, asyncio.Event())

    # Server side: children dial us ------------------------------------------------------

    @staticmethod
    def _client_certificate(context: grpc.aio.ServicerContext) -> bytes | None:
        certs = context.auth_context().get("x509_pem_cert") or []
        return bytes(certs[0]) if certs else None

    def _peer_with(self, pem: bytes) -> NodeId | None:
        """The linked peer whose pinned certificate is exactly `pem`, if any."""
        fp = fingerprint(pem)
        for pin in self._pins:
            if fp in pin.fingerprints:
                try:
                    named = node_id_from_certificate(pem)
                except ValidationError:
                    return None
                return NodeId(pin.peer_id) if named == pin.peer_id else None
        return None

    def _auditor_with(self, pem: bytes) -> str | None:
        """The name of the listed auditor whose certificate is exactly `pem`, if any."""
        fp = fingerprint(pem)
        for auditor in self.ctx.config.auditors:
            if hmac.compare_digest(auditor.fingerprint, fp):
                return auditor.name
        return None

    def _authenticate(self, context: grpc.aio.ServicerContext) -> NodeId | None:
        pem = self._client_certificate(context)
        return None if pem is None else self._peer_with(pem)

    def _identify(self, context: grpc.aio.ServicerContext) -> Caller | None:
        """The caller of an Audit service call: a linked peer, a listed auditor, or None."""
        pem = self._client_certificate(context)
        if pem is None:
            return None
        peer = self._peer_with(pem)
        if peer is not None:
            return Caller("peer", peer)
        auditor = self._auditor_with(pem)
        return None if auditor is None else Caller("auditor", auditor)

    async def Exchange(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        peer = self._authenticate(context)
        if peer is None:
            pem = self._client_certificate(context)
            auditor = None if pem is None else self._auditor_with(pem)
            if auditor is not None:
                CALLS_REFUSED.labels(
                    method="Exchange", code=grpc.StatusCode.PERMISSION_DENIED.name
                ).inc()
                self.log.warning("link.auditor_refused", auditor=auditor)
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"auditor {auditor!r} may call lapor.v1.AuditService only; "
                    "Exchange is for linked children",
                )
                return
            CALLS_REFUSED.labels(method="Exchange", code=grpc.StatusCode.UNAUTHENTICATED.name).inc()
            self.log.warning("link.unauthenticated", peer_address=context.peer())
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "client certificate is not pinned by this node"
            )
            return
        role = next((p.role for p in self._pins if p.peer_id == peer), None)
        if role != "child":
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{peer} is not a child of this node; only children dial in",
            )
            return
        previous = self._sessions.get(peer)
        if previous is not None and previous is not asyncio.current_task():
            previous.cancel()
        current = asyncio.current_task()
        assert current is not None
        self._sessions[peer] = current
        self._dropped.pop(peer, None)

        async def hello() -> None:
            await self._mark(peer, True)

        session = LinkSession(
            self.ctx, peer, _ServerTransport(context), self.db, self.wake(peer), on_hello=hello
        )
        error: str | None = None
        try:
            await session.run()
        except asyncio.CancelledError:
            dropped = self._dropped.get(peer)
            if dropped is None:
                raise
            error = "unpinned"
            await context.abort(*dropped)
        except RefusedError as e:
            observe_refusal(peer, status_for(e.error).name, e.error)
            error = describe(e)
            await self._note_error(peer, error)
            await context.abort(status_for(e.error), str(e.error))
        except NodeError as e:
            error = describe(e)
            await self._note_error(peer, error)
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
        finally:
            if self._sessions.get(peer) is current:
                del self._sessions[peer]
                self._dropped.pop(peer, None)
                await self._mark(peer, False)
            self.log.info("link.down", peer=peer, error=error)

    async def _note_error(self, peer: str, message: str | None) -> None:
        try:
            await self.db.write(exchange.record_link_error, self.ctx, NodeId(peer), message)
        except NodeError as e:  # pragma: no cover - best effort bookkeeping
            self.log.error("link.error_not_recorded", peer=peer, error=str(e))

    # Client side: we dial our parent ----------------------------------------------------

    def _channel_options(self, parent: str) -> list[tuple[str, Any]]:
        cfg = self.ctx.config
        return [
            ("grpc.ssl_target_name_override", dns_name(parent)),
            ("grpc.max_send_message_length", cfg.server.max_message_bytes),
            ("grpc.max_receive_message_length", cfg.server.max_message_bytes),
            ("grpc.keepalive_time_ms", cfg.federation.keepalive_seconds * 1000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.initial_reconnect_backoff_ms", cfg.federation.reconnect_min_ms),
            ("grpc.max_reconnect_backoff_ms", cfg.federation.reconnect_max_ms),
        ]

    async def _dial_parent(self) -> None:
        cfg = self.ctx.config.federation
        delay = cfg.reconnect_min_ms / 1000
        while True:
            parent = next((p for p in self._pins if p.role == "parent"), None)
            if parent is None or not parent.address:
                await asyncio.sleep(PIN_REFRESH_SECONDS)
                continue
            # A task of its own, so the pin refresher can end it when the link is revoked.
            task = asyncio.create_task(self._one_parent_session(parent))
            self._parent_session = (parent, task)
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError:
                task.cancel()
                await asyncio.wait([task], timeout=self.ctx.config.server.grace_seconds)
                raise
            finally:
                self._parent_session = None
            if task.cancelled():
                self.log.warning("link.parent_unpinned", peer=parent.peer_id)
                continue
            try:
                got_hello = task.result()
            except Exception as e:  # a session's bug must not end the dialing for good
                self.log.error("link.session_crashed", error_kind=type(e).__name__, error=str(e))
                await self._note_error(NodeId(parent.peer_id), describe(e))
                got_hello = False
            if got_hello:
                delay = cfg.reconnect_min_ms / 1000
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter
            delay = min(delay * 2, cfg.reconnect_max_ms / 1000)

    async def _one_parent_session(self, parent: links.Pin) -> bool:
        """One stream to the parent; True if it got as far as exchanging Hellos."""
        peer = NodeId(parent.peer_id)
        creds = grpc.ssl_channel_credentials(
            root_certificates=b"".join(parent.certificates),
            private_key=self._client_identity.key_pem,
            certificate_chain=self._client_identity.cert_pem,
        )
        connected = False

        async def hello() -> None:
            nonlocal connected
            connected = True
            self._parent_said = None
            await self._note_error(peer, None)
            await self._mark(peer, True)

        async with grpc.aio.secure_channel(
            parent.address or "", creds, options=self._channel_options(peer)
        ) as channel:
            try:
                await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT_SECONDS)
            except TimeoutError:
                said = "" if self._parent_said is None else f"; it last said: {self._parent_said}"
                await self._note_error(peer, f"cannot reach parent at {parent.address}{said}")
                self.log.warning("link.unreachable", address=parent.address)
                await self._follow_parent_rotations(parent)
                return False
            stub = federation_pb2_grpc.FederationServiceStub(channel)  # type: ignore[no-untyped-call]
            call = stub.Exchange()
            session = LinkSession(
                self.ctx,
                peer,
                _ClientTransport(call),
                self.db,
                self.wake(peer),
                on_hello=hello,
                in_band_rejections=True,
            )
            try:
                await session.run()
                await self._ended_by_parent(peer, call)
            except RefusedError as e:
                observe_refusal(peer, status_for(e.error).name, e.error)
                await self._note_error(peer, describe(e))
                self.log.warning("link.refused_from_parent", error=describe(e))
            except NodeError as e:
                await self._note_error(peer, describe(e))
                self.log.warning("link.failed", error=describe(e))
            except grpc.aio.AioRpcError as e:
                message = f"{e.code().name}: {e.details()}"
                await self._note_error(peer, message)
                self.log.warning("link.rpc_error", code=e.code().name, details=e.details())
            finally:
                call.cancel()
                if connected:
                    await asyncio.shield(self._mark(peer, False))
        return connected

    async def _follow_parent_rotations(self, parent: links.Pin) -> None:
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
            await self._refresh_pins()

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
        self._parent_said = f"{code.name}: {details}"
        await self._note_error(peer, self._parent_said)
        self.log.warning("link.closed_by_parent", code=code.name, details=details)

    # Checkpoints and metrics -----------------------------------------------------------

    async def _complaint_scheduler(self) -> None:
        """Every workflow.scheduler_interval_seconds: auto-close and (if configured)
        escalate what is due (node.services.scheduler.run_due). What is due is listed on a
        reader thread (a pass over the open complaints), and only acted on by the writer."""
        from node.services import scheduler

        while True:
            try:
                now = self.ctx.clock.now()
                listed = await self.db.read(scheduler.due_now, self.ctx, now)
                done = await self.db.write(scheduler.run_due, self.ctx, listed, now)
                if done.closed or done.escalated or done.failed:
                    self.log.info(
                        "complaints.scheduled",
                        closed=len(done.closed),
                        escalated=len(done.escalated),
                        failed=[t for t, _ in done.failed],
                    )
            except NodeError as e:
                self.log.error("complaints.scheduler_failed", error=str(e))
            await asyncio.sleep(self.ctx.config.workflow.scheduler_interval_seconds)

    async def _checkpoint_signer(self) -> None:
        """Every checkpoint interval: refresh the ledger gauges, and sign if the ledger
        changed, unless signing has stopped."""
        interval = self.ctx.config.ledger.checkpoint_interval_seconds
        await self._checkpoint_round(sign=False)
        while True:
            await asyncio.sleep(interval)
            await self._checkpoint_round(sign=not self.signing_stopped)

    async def _checkpoint_round(self, *, sign: bool) -> None:
        try:
            head = await self.db.read(audit.head, self.ctx)
            LEDGER_SIZE.set(head.ledger_size)
            latest = head.checkpoint
            changed = head.ledger_size != (0 if latest is None else latest.size)
            if sign and changed:
                signed, made = await self.db.write(checkpoints.sign, self.ctx)
                latest = audit.StoredCheckpoint(signed.size, signed.note, signed.signed_at)
                if made:
                    self.log.info("checkpoint.signed", size=signed.size)
            if latest is not None:
                observe_checkpoint(latest.size, latest.signed_at.timestamp())
        except IntegrityError as e:
            CHECKPOINT_FAILURES.labels(kind=type(e).__name__).inc()
            self.signing_stopped = True
            self.log.critical(
                "checkpoint.signing_stopped",
                error_kind=type(e).__name__,
                error=str(e),
                action="this node's ledger no longer extends what it signed: it signs no "
                "further checkpoint until restarted; audit it now (lapor-node audit export, "
                "then audit verify)",
            )
        except Exception as e:
            CHECKPOINT_FAILURES.labels(kind=type(e).__name__).inc()
            self.log.error("checkpoint.failed", error_kind=type(e).__name__, error=str(e))
        finally:
            self.checkpoint_rounds += 1

    def _start_metrics(self) -> None:
        metrics = self.ctx.config.metrics
        if not metrics.enabled:
            return
        host, port = metrics.address
        try:
            self._metrics, _ = start_http_server(port, addr=host, registry=REGISTRY)
        except OSError as e:
            raise ConfigError(
                f"cannot serve metrics on {metrics.listen} ({e.strerror}); "
                "change or empty metrics.listen in node.yaml"
            ) from e
        self.metrics_port = int(self._metrics.server_address[1])
        self.log.info("metrics.started", listen=metrics.listen, port=self.metrics_port)

    async def _stop_metrics(self) -> None:
        if self._metrics is not None:
            await asyncio.to_thread(self._metrics.shutdown)
            self._metrics.server_close()
            self._metrics = None

    # Lifecycle --------------------------------------------------------------------------

    async def _start_enrollment(self) -> None:
        """Serve joins on the enrollment port (see the module docstring)."""
        cfg = self.ctx.config.server
        address = cfg.enrollment_address
        if not address:
            return
        servicer = EnrollmentServicer(self.ctx, self.db)
        server, port = enrollment_server(
            servicer, self._tls_key, self._tls_cert, address, self._fetch_enrollment_identity
        )
        if port == 0:
            if cfg.enrollment_listen is not None:
                raise ConfigError(
                    f"cannot listen for joins on {address} (server.enrollment_listen); "
                    'use a free port, or "" to turn joins off'
                )
            self.log.error(
                "enrollment.unavailable",
                listen=address,
                action="the port after server.listen is taken: set server.enrollment_listen "
                'in node.yaml to a free HOST:PORT (or "" to turn joins off)',
            )
            return
        await server.start()
        self._enrollment = server
        self.enrollment_port = port
        self.log.info("enrollment.started", listen=address, port=port)

    async def start(self) -> int:
        limits.raise_open_files()
        await self.db.write(links.reset_connections, self.ctx)
        await self._refresh_pins()
        cfg = self.ctx.config.server
        server = grpc.aio.server(
            options=[
                ("grpc.max_send_message_length", cfg.max_message_bytes),
                ("grpc.max_receive_message_length", cfg.max_message_bytes),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
                ("grpc.http2.max_ping_strikes", 0),
                *limits.server_options(cfg),
            ]
        )
        handler = exchange_service(self.Exchange)
        server.add_generic_rpc_handlers((handler,))
        auditing = AuditServicer(self.ctx, self.db, self._identify)
        audit_pb2_grpc.add_AuditServiceServicer_to_server(auditing, server)  # type: ignore[no-untyped-call]
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        self._pins_changed = False
        creds = grpc.dynamic_ssl_server_credentials(
            self._credentials_config(), self._fetch_credentials, require_client_authentication=True
        )
        self.port = server.add_secure_port(cfg.listen, creds)
        if self.port == 0:
            raise ValidationError(f"cannot listen on {cfg.listen}")
        self._start_metrics()
        self._dashboard = start_dashboard(self.ctx)
        await server.start()
        self._server = server
        await self._start_enrollment()
        self._intake = await start_intake(
            self.ctx, self.db, self._tls_key, self._tls_cert, self._fetch_intake_identity
        )
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self._health.set("lapor.v1.FederationService", health_pb2.HealthCheckResponse.SERVING)
        await self._health.set("lapor.v1.AuditService", health_pb2.HealthCheckResponse.SERVING)
        self._tasks = [
            asyncio.create_task(self._pin_refresher()),
            asyncio.create_task(self._dial_parent()),
            asyncio.create_task(self._checkpoint_signer()),
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(self._outbox_watcher()),
            asyncio.create_task(self._link_gauges()),
            asyncio.create_task(self._complaint_scheduler()),
            asyncio.create_task(self._workflow_gauges()),
            asyncio.create_task(
                limits.watch(
                    cfg,
                    main=self.port,
                    enrollment=self.enrollment_port,
                    intake=self._intake.port if self._intake else 0,
                )
            ),
        ]
        self.log.info("node.started", listen=cfg.listen, port=self.port)
        return self.port

    async def stop(self) -> None:
        await self._health.enter_graceful_shutdown()
        for task in self._tasks:
            task.cancel()
        # A channel torn down mid-connect can take its time to close; never wait forever.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.ctx.config.server.grace_seconds)
        if self._intake is not None:
            await self._intake.stop(self.ctx.config.server.grace_seconds)
        if self._enrollment is not None:
            await self._enrollment.stop(self.ctx.config.server.grace_seconds)
        if self._server is not None:
            await self._server.stop(self.ctx.config.server.grace_seconds)
        await self._stop_metrics()
        if self._dashboard is not None:
            await asyncio.to_thread(self._dashboard.stop)
            self._dashboard = None
        try:
            await self.db.write(links.reset_connections, self.ctx)
        except NodeError as e:  # pragma: no cover - best effort bookkeeping
            self.log.error("link.state_not_recorded", error=str(e))
        self.db.shutdown()
        self.log.info("node.stopped")
