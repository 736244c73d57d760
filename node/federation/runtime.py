"""The running node: the mutual-TLS gRPC server for children, the dialer to the parent,
and the pinned-certificate set both use.

Trust: the server's trust roots are exactly the pinned certificates of active links
(re-read at each handshake through dynamic server credentials, so `link add` needs no
restart). A client certificate that chains to a pinned one is not enough: the peer's own
certificate must be byte-for-byte a pinned one (its SHA-256 fingerprint), and the node id
is read from that certificate's `lapor-node://` SAN, never from a message.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from node._proto.lapor.v1 import federation_pb2, federation_pb2_grpc
from node.crypto.keyfiles import read_file
from node.crypto.tls import dns_name, fingerprint, node_id_from_certificate
from node.errors import NodeError, ValidationError
from node.federation.session import LinkSession, RefusedError, describe
from node.federation.status import status_for
from node.ids import NodeId
from node.logs import get_logger
from node.services import exchange, links
from node.services.context import NodeContext

__all__ = ["NodeRuntime", "exchange_service"]

T = TypeVar("T")
PIN_REFRESH_SECONDS = 1.0
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
            await self._call.write(federation_pb2.ExchangeRequest(frame=frame))

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
        self._pins: list[links.Pin] = []
        self._pins_changed = True
        self._wake: dict[str, asyncio.Event] = {}
        self._sessions: dict[str, asyncio.Task[Any]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self.port = 0

    # Pins and credentials -------------------------------------------------------------

    async def _refresh_pins(self) -> None:
        pins = await self.db.read(links.pins, self.ctx)
        if [(p.peer_id, p.fingerprint, p.address) for p in pins] != [
            (p.peer_id, p.fingerprint, p.address) for p in self._pins
        ]:
            self._pins = pins
            self._pins_changed = True
            self.log.info("pins.loaded", peers=[p.peer_id for p in pins])

    async def _pin_refresher(self) -> None:
        while True:
            await asyncio.sleep(PIN_REFRESH_SECONDS)
            try:
                await self._refresh_pins()
            except NodeError as e:
                self.log.error("pins.refresh_failed", error=str(e))

    def _credentials_config(self) -> Any:
        # With nothing pinned yet, trust only ourselves: nobody else gets in.
        roots = b"".join(p.cert_pem for p in self._pins) or self._tls_cert
        return grpc.ssl_server_certificate_configuration(
            [(self._tls_key, self._tls_cert)], root_certificates=roots
        )

    def _fetch_credentials(self) -> Any:
        """Called by gRPC at each handshake; None keeps the current configuration."""
        if not self._pins_changed:
            return None
        self._pins_changed = False
        return self._credentials_config()

    def wake(self, peer: str) -> asyncio.Event:
        return self._wake.setdefault(peer, asyncio.Event())

    # Server side: children dial us ------------------------------------------------------

    def _authenticate(self, context: grpc.aio.ServicerContext) -> NodeId | None:
        auth = context.auth_context()
        certs = auth.get("x509_pem_cert") or []
        if not certs:
            return None
        pem = certs[0]
        fp = fingerprint(pem)
        for pin in self._pins:
            if pin.fingerprint == fp:
                try:
                    named = node_id_from_certificate(pem)
                except ValidationError:
                    return None
                return NodeId(pin.peer_id) if named == pin.peer_id else None
        return None

    async def Exchange(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        peer = self._authenticate(context)
        if peer is None:
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
        session = LinkSession(self.ctx, peer, _ServerTransport(context), self.db, self.wake(peer))
        error: str | None = None
        try:
            await session.run()
        except RefusedError as e:
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
            connected = await self._one_parent_session(parent)
            if connected:
                delay = cfg.reconnect_min_ms / 1000
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter
            delay = min(delay * 2, cfg.reconnect_max_ms / 1000)

    async def _one_parent_session(self, parent: links.Pin) -> bool:
        """One stream to the parent; True if it got as far as exchanging Hellos."""
        peer = NodeId(parent.peer_id)
        creds = grpc.ssl_channel_credentials(
            root_certificates=parent.cert_pem,
            private_key=self._tls_key,
            certificate_chain=self._tls_cert,
        )
        connected = False

        async def hello() -> None:
            nonlocal connected
            connected = True
            await self._note_error(peer, None)

        async with grpc.aio.secure_channel(
            parent.address or "", creds, options=self._channel_options(peer)
        ) as channel:
            try:
                await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT_SECONDS)
            except TimeoutError:
                await self._note_error(peer, f"cannot reach parent at {parent.address}")
                self.log.warning("link.unreachable", address=parent.address)
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
            except RefusedError as e:
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
        return connected

    # Lifecycle --------------------------------------------------------------------------

    async def start(self) -> int:
        await self._refresh_pins()
        cfg = self.ctx.config.server
        server = grpc.aio.server(
            options=[
                ("grpc.max_send_message_length", cfg.max_message_bytes),
                ("grpc.max_receive_message_length", cfg.max_message_bytes),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
                ("grpc.http2.max_ping_strikes", 0),
            ]
        )
        handler = exchange_service(self.Exchange)
        server.add_generic_rpc_handlers((handler,))
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        self._pins_changed = False
        creds = grpc.dynamic_ssl_server_credentials(
            self._credentials_config(), self._fetch_credentials, require_client_authentication=True
        )
        self.port = server.add_secure_port(cfg.listen, creds)
        if self.port == 0:
            raise ValidationError(f"cannot listen on {cfg.listen}")
        await server.start()
        self._server = server
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self._health.set("lapor.v1.FederationService", health_pb2.HealthCheckResponse.SERVING)
        self._tasks = [
            asyncio.create_task(self._pin_refresher()),
            asyncio.create_task(self._dial_parent()),
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
        if self._server is not None:
            await self._server.stop(self.ctx.config.server.grace_seconds)
        self.db.shutdown()
        self.log.info("node.stopped")
