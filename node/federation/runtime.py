"""The running node: wires the parts of node/federation/ together, and starts and stops
them.

  server.py        the mutual-TLS main port's Exchange servicer and caller authentication
                   (children and auditors dial in; AuditService and health beside it);
  pins.py          the pinned certificates: trust roots, presented identities, revocation;
  dialer.py        the link to the parent, dialed again by reconnect.py's rule;
  session.py       one live stream with a peer (frames.py: its pure frame and window logic;
                   liveness.py: how a silent peer is noticed);
  outbox_watch.py  waking a peer's session when another process queued rows for it;
  periodic.py      last seen, gauges, the complaint scheduler, the checkpoint signer;
  endpoints.py     the metrics, dashboard, enrollment and intake listeners;
  live.py          what all of them share: the live links, connection marks, last errors;
  leader.py        on PostgreSQL, which of the node's serve processes leads (the lease).

One leader per node (DESIGN.md, operating invariants; decision 0024). On SQLite the one
`serve` of the data directory leads from its start. On PostgreSQL any number of `serve`
processes may run; each serves the Audit service, health, metrics and the dashboard (all
read-only), and only the lease's holder also runs the leader's side: it accepts children's
Exchange streams (a standby refuses them with UNAVAILABLE, naming the leader, and the child
dials again), dials the parent, watches the outbox, runs the periodic jobs (the checkpoint
signer among them), and listens for joins and intake. Its writes are fenced by its epoch
(node.store.db), and `links.reset_connections` runs only once the epoch is held, so a
starting standby never wipes the leader's connection marks.

Links come and go without a restart (pins.py); the running node marks each link connected
while a stream is up (node.services.links: connected_since, and last_seen_at refreshed by
the peer's traffic).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from node._proto.lapor.v1 import audit_pb2_grpc
from node.errors import NodeError
from node.federation import limits
from node.federation.audit_service import AuditServicer
from node.federation.dialer import ParentDialer
from node.federation.endpoints import Endpoints
from node.federation.error_edge import edge_interceptors
from node.federation.leader import Leadership, sole_leader
from node.federation.live import LiveLinks
from node.federation.outbox_watch import OutboxWatch
from node.federation.periodic import PeriodicJobs
from node.federation.pins import Pins
from node.federation.server import ExchangeServer, bind, exchange_service, server_options
from node.federation.workers import DbWorkers
from node.logs import get_logger
from node.services import links
from node.services.context import NodeContext

__all__ = ["NodeRuntime", "exchange_service"]  # exchange_service: tests/support/peers.py


class NodeRuntime:
    """Serve children and dial the parent until stopped."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.db = DbWorkers()
        self.log = get_logger(node_id=ctx.node_id)
        self.live = LiveLinks(ctx, self.db, self.log)
        self.pins = Pins(ctx, self.db, self.live, self.log)
        self.exchange = ExchangeServer(ctx, self.db, self.pins, self.live, self.log)
        self.dialer = ParentDialer(ctx, self.db, self.pins, self.live, self.log)
        self.outbox_watch = OutboxWatch(ctx, self.db, self.live, self.log)
        self.periodic = PeriodicJobs(ctx, self.db, self.live, self.log)
        self.endpoints = Endpoints(ctx, self.db, self.pins, self.log)
        self._health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._leader_tasks: list[asyncio.Task[Any]] = []
        self._joins_open = False
        self.leadership: Leadership | None = None
        if not ctx.db.is_sqlite:
            ctx.db.fence_writes()
            self.leadership = Leadership(ctx, self.log, self._lead, self._step_down)
        self.port = 0

    @property
    def leading(self) -> bool:
        return self.leadership is None or self.leadership.leading

    @property
    def metrics_port(self) -> int:
        return self.endpoints.metrics_port

    @property
    def enrollment_port(self) -> int:
        return self.endpoints.enrollment_port

    @property
    def signing_stopped(self) -> bool:
        return self.periodic.signing_stopped

    @property
    def checkpoint_rounds(self) -> int:
        return self.periodic.checkpoint_rounds

    def wake(self, peer: str) -> asyncio.Event:
        """The event that wakes `peer`'s send loop."""
        return self.live.wake(peer)

    async def start(self) -> int:
        limits.raise_open_files()
        await self.pins.refresh()
        cfg = self.ctx.config.server
        server = grpc.aio.server(
            options=server_options(self.ctx), interceptors=edge_interceptors(self.ctx.node_id)
        )
        server.add_generic_rpc_handlers((exchange_service(self._exchange),))
        auditing = AuditServicer(self.ctx, self.db, self.exchange.identify)
        audit_pb2_grpc.add_AuditServiceServicer_to_server(auditing, server)  # type: ignore[no-untyped-call]
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        self.pins.changed = False
        creds = grpc.dynamic_ssl_server_credentials(
            self.pins.server_configuration(),
            self.pins.fetch_server_configuration,
            require_client_authentication=True,
        )
        self.port = bind(server, cfg.listen, creds, "server.listen")
        self.endpoints.start_metrics_and_dashboard()
        for service in ("", "lapor.v1.AuditService"):
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        await self._health.set(
            "lapor.v1.FederationService", health_pb2.HealthCheckResponse.NOT_SERVING
        )
        jobs = [self.pins.run(), limits.watch(cfg, main=self.port)]
        # Lead (or learn who does) before the port opens: a lone serve is ready when it is.
        if self.leadership is None:
            sole_leader()
            await self._lead(None)
        else:
            await self.leadership.round(first=True)
            jobs.append(self.leadership.run())
        await server.start()
        self._server = server
        self._tasks = [asyncio.create_task(job) for job in jobs]
        self.log.info("node.started", listen=cfg.listen, port=self.port)
        return self.port

    async def _lead(self, epoch: int | None) -> None:
        """This process leads (epoch None: SQLite's one serve): the leader's side starts."""
        await self.db.write(links.reset_connections, self.ctx)
        await self.endpoints.start_joins_and_intake()
        self._joins_open = True
        ports = {"enrollment": self.enrollment_port, "intake": self.endpoints.intake_port}
        jobs = [
            self.dialer.run(),
            self.outbox_watch.run(),
            limits.watch(self.ctx.config.server, **ports),
            *self.periodic.jobs(),
        ]
        self._leader_tasks = [asyncio.create_task(job) for job in jobs]
        await self._health.set("lapor.v1.FederationService", health_pb2.HealthCheckResponse.SERVING)
        self.log.info("node.leading", epoch=epoch)

    async def _step_down(self) -> None:
        """Another process leads now (or may): end the leader's side, children's streams
        included (they are told UNAVAILABLE and dial again)."""
        await self._health.set(
            "lapor.v1.FederationService", health_pb2.HealthCheckResponse.NOT_SERVING
        )
        message = self.leadership.standby_message() if self.leadership else "standing down"
        for peer, task in list(self.live.tasks.items()):
            self.live.dropped[peer] = (grpc.StatusCode.UNAVAILABLE, message, ())
            task.cancel()
        await self._end_leader_side()

    async def _end_leader_side(self) -> None:
        tasks, self._leader_tasks = self._leader_tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self.ctx.config.server.grace_seconds)
        if self._joins_open:
            self._joins_open = False
            await self.endpoints.stop_joins_and_intake()

    async def _exchange(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        """Exchange on the leader; on a standby, UNAVAILABLE naming the leader."""
        if not self.leading:
            assert self.leadership is not None
            await context.abort(grpc.StatusCode.UNAVAILABLE, self.leadership.standby_message())
            return
        await self.exchange.Exchange(request_iterator, context)

    async def stop(self) -> None:
        grace = self.ctx.config.server.grace_seconds
        await self._health.enter_graceful_shutdown()
        for task in self._tasks:
            task.cancel()
        # A channel torn down mid-connect can take its time to close; never wait forever.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace)
        leading = self.leading and (self._leader_tasks or self._joins_open)
        await self._end_leader_side()
        if self._server is not None:
            await self._server.stop(grace)
        await self.endpoints.stop_metrics_and_dashboard()
        if leading:
            try:
                await self.db.write(links.reset_connections, self.ctx)
            except NodeError as e:  # pragma: no cover - best effort bookkeeping
                self.log.error("link.state_not_recorded", error=str(e))
        if self.leadership is not None:
            await self.leadership.release()
        self.db.shutdown()
        self.log.info("node.stopped")
