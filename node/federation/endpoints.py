"""The running node's other listeners, started and stopped beside the main port: the
Prometheus metrics endpoint, the dashboard, the enrollment port for joins and the intake
port for gateways.

Joins: `server.enrollment_listen` (default: the port after `listen`) serves
lapor.v1.EnrollmentService over TLS with this node's certificate and no client certificate
(node.federation.enrollment_port). An explicitly configured port that cannot be bound stops the
node; the default one is only logged, and joins are then off."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from prometheus_client import start_http_server

from node.errors import ConfigError
from node.federation import limits
from node.federation.enrollment_port import EnrollmentServicer, enrollment_server
from node.federation.intake_port import IntakeServer, start_intake
from node.federation.pins import Pins
from node.federation.workers import DbWorkers
from node.metrics import REGISTRY
from node.services.context import NodeContext
from node.transparency.http import TransparencyServer, start_transparency
from node.web import DashboardServer, start_dashboard

__all__ = ["Endpoints"]


class Endpoints:
    def __init__(self, ctx: NodeContext, db: DbWorkers, pins: Pins, log: Any) -> None:
        self.ctx = ctx
        self.db = db
        self.pins = pins
        self.log = log
        self.metrics_port = 0
        self.enrollment_port = 0
        self._metrics: Any = None
        self._dashboard: DashboardServer | None = None
        self._enrollment: grpc.aio.Server | None = None
        self._intake: IntakeServer | None = None
        self.transparency: TransparencyServer | None = None

    def start_metrics_and_dashboard(self) -> None:
        self._start_metrics()
        self._dashboard = start_dashboard(self.ctx)
        self.transparency = start_transparency(self.ctx)  # the ledger as tlog-tiles

    async def start_joins_and_intake(self) -> None:
        await self._start_enrollment()
        pins = self.pins
        self._intake = await start_intake(
            self.ctx, self.db, pins.tls_key, pins.tls_cert, pins.fetch_intake_identity
        )

    @property
    def intake_port(self) -> int:
        """The intake port bound (0: intake off or not started)."""
        return 0 if self._intake is None else self._intake.port

    async def stop_joins_and_intake(self) -> None:
        grace = self.ctx.config.server.grace_seconds
        if self._intake is not None:
            await self._intake.stop(grace)
        if self._enrollment is not None:
            await self._enrollment.stop(grace)

    async def stop_metrics_and_dashboard(self) -> None:
        if self._metrics is not None:
            await asyncio.to_thread(self._metrics.shutdown)
            self._metrics.server_close()
            self._metrics = None
        if self._dashboard is not None:
            await asyncio.to_thread(self._dashboard.stop)
            self._dashboard = None
        if self.transparency is not None:
            await asyncio.to_thread(self.transparency.stop)
            self.transparency = None

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
        limits.limit_http_server(self._metrics)
        self.metrics_port = int(self._metrics.server_address[1])
        self.log.info("metrics.started", listen=metrics.listen, port=self.metrics_port)

    async def _start_enrollment(self) -> None:
        """Serve joins on the enrollment port (see the module docstring)."""
        cfg = self.ctx.config.server
        address = cfg.enrollment_address
        if not address:
            return
        servicer = EnrollmentServicer(self.ctx, self.db)
        pins = self.pins
        server, port = enrollment_server(
            servicer, pins.tls_key, pins.tls_cert, address, pins.fetch_enrollment_identity
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
