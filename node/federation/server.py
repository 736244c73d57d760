"""The main port's federation side: who is calling (caller authentication from the client
certificate), and the Exchange servicer that runs a child's LinkSession.

Trust: a client certificate that chains to a pinned one is not enough: the caller's own
certificate must be byte-for-byte a pinned one (its SHA-256 fingerprint), and a peer's
node id is read from that certificate's `lapor-node://` SAN, never from a message.

Who may call what: FederationService.Exchange, children only (an auditor gets
PERMISSION_DENIED); AuditService (read-only), linked peers and listed auditors
(`identify`). A certificate pinned by nobody fails the TLS handshake, or if it chains to a
pinned one, gets UNAUTHENTICATED."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from typing import Any

import grpc

from node._proto.lapor.v1 import federation_pb2
from node.crypto.tls import fingerprint, node_id_from_certificate
from node.errors import (
    ConfigError,
    NodeError,
    PermissionDeniedError,
    RefusedError,
    UnauthenticatedError,
    ValidationError,
)
from node.federation import limits
from node.federation.audit_service import Caller
from node.federation.error_edge import note_call
from node.federation.live import LiveLinks
from node.federation.liveness import Liveness
from node.federation.pins import Pins
from node.federation.session import LinkSession, describe
from node.federation.status import status_for
from node.federation.transports import ServerTransport
from node.federation.workers import DbWorkers
from node.ids import NodeId
from node.metrics import observe_refusal
from node.services.context import NodeContext

__all__ = ["ExchangeServer", "exchange_service"]


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


class ExchangeServer:
    def __init__(
        self, ctx: NodeContext, db: DbWorkers, pins: Pins, live: LiveLinks, log: Any
    ) -> None:
        self.ctx = ctx
        self.db = db
        self.pins = pins
        self.live = live
        self.log = log

    def handler(self) -> grpc.GenericRpcHandler:
        return exchange_service(self.Exchange)

    # Who is calling -------------------------------------------------------------------

    @staticmethod
    def _client_certificate(context: grpc.aio.ServicerContext) -> bytes | None:
        certs = context.auth_context().get("x509_pem_cert") or []
        return bytes(certs[0]) if certs else None

    def _peer_with(self, pem: bytes) -> NodeId | None:
        """The linked peer whose pinned certificate is exactly `pem`, if any."""
        fp = fingerprint(pem)
        for pin in self.pins.pins:
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

    def identify(self, context: grpc.aio.ServicerContext) -> Caller | None:
        """The caller of an Audit service call: a linked peer, a listed auditor, or None."""
        pem = self._client_certificate(context)
        if pem is None:
            return None
        peer = self._peer_with(pem)
        if peer is not None:
            return Caller("peer", peer)
        auditor = self._auditor_with(pem)
        return None if auditor is None else Caller("auditor", auditor)

    # Exchange -------------------------------------------------------------------------

    def _refusal(self, context: grpc.aio.ServicerContext) -> NodeError:
        """Why a caller that is no linked peer is refused: an auditor, or nobody pinned."""
        pem = self._client_certificate(context)
        auditor = None if pem is None else self._auditor_with(pem)
        if auditor is not None:
            return PermissionDeniedError(
                f"auditor {auditor!r} may call lapor.v1.AuditService only; "
                "Exchange is for linked children"
            )
        return UnauthenticatedError("client certificate is not pinned by this node")

    async def Exchange(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        """A child's link. What it raises is answered by node.federation.error_edge: a
        refused envelope with its cause's status, which the peer's metrics count too."""
        peer = self._authenticate(context)
        if peer is None:
            raise self._refusal(context)
        note_call(peer=peer)
        if self.pins.role_of(peer) != "child":
            raise PermissionDeniedError(
                f"{peer} is not a child of this node; only children dial in"
            )
        live = self.live
        previous = live.tasks.get(peer)
        if previous is not None and previous is not asyncio.current_task():
            previous.cancel()
        current = asyncio.current_task()
        assert current is not None
        live.tasks[peer] = current
        live.dropped.pop(peer, None)

        async def hello() -> None:
            await live.mark(peer, True)

        session = LinkSession(
            self.ctx, peer, ServerTransport(context), self.db, live.wake(peer), on_hello=hello
        )
        live.sessions[peer] = session
        error: str | None = None
        try:
            await session.run()
        except asyncio.CancelledError:
            dropped = live.dropped.get(peer)
            if dropped is None:
                raise
            error = "unpinned"
            await context.abort(*dropped)
        except NodeError as e:
            if isinstance(e, RefusedError):
                observe_refusal(peer, status_for(e).name, e.error)
            error = describe(e)
            await live.note_error(peer, error)
            raise
        finally:
            if live.sessions.get(peer) is session:
                del live.sessions[peer]
            if live.tasks.get(peer) is current:
                del live.tasks[peer]
                live.dropped.pop(peer, None)
                await live.mark(peer, False)
            self.log.info("link.down", peer=peer, error=error)


def server_options(ctx: NodeContext) -> list[tuple[str, Any]]:
    """The main port's gRPC options: message limits, and keepalive pings of its own so that
    a child behind a black hole is noticed here as well (node.federation.liveness)."""
    cfg = ctx.config.server
    liveness = Liveness(ctx.config.federation.keepalive_seconds)
    return [
        ("grpc.max_send_message_length", cfg.max_message_bytes),
        ("grpc.max_receive_message_length", cfg.max_message_bytes),
        # One process per port: without this a second node (or a second serve of this one)
        # binds the same port and the kernel splits peers' connections between the two.
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.keepalive_time_ms", liveness.ping_ms),
        ("grpc.keepalive_timeout_ms", liveness.ping_timeout_ms),
        # grpc 1.85 closes a connection whose ping goes unanswered only after
        # http2.ping_timeout_ms (default 60 s), whatever keepalive_timeout_ms says.
        ("grpc.http2.ping_timeout_ms", liveness.ping_timeout_ms),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", min(5_000, liveness.ping_ms)),
        ("grpc.http2.max_ping_strikes", 0),
        *limits.server_options(cfg),
    ]


def bind(server: grpc.aio.Server, address: str, creds: Any, key: str) -> int:
    """Bind `server` to `address` (node.yaml's `key`) and return the port, or raise
    ConfigError in one line saying what to do (a port held by another program included:
    ports are bound without SO_REUSEPORT)."""
    try:
        port = int(server.add_secure_port(address, creds))
    except RuntimeError:
        port = 0
    if port == 0:
        _, _, number = address.rpartition(":")
        raise ConfigError(
            f"cannot listen on {address} ({key} in node.yaml): another program (or another "
            f"lapor-node) holds the port, or the host is not an address of this machine; stop "
            f"that program (`ss -ltnp 'sport = :{number}'` names it) or choose another port"
        )
    return port
