"""Hostile load against a serving province, for tests/fault/test_hostile_load.py and
bench/hostile_load.py: idle TCP connections held on each of its ports, bad join attempts
on its enrollment port from a few concurrent clients, a health prober, and referrals to
its regency timed from `refer` to the regency's receipt back at the province."""

from __future__ import annotations

import os
import re
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node._proto.lapor.v1 import enrollment_pb2, enrollment_pb2_grpc
from node.crypto.tls import dns_name
from node.services import complaints, lifecycle, links
from tests.fault.conftest import draft
from tests.support.nodes import TestNode, free_ports, status_of

IDLE_PER_PORT = 300
BAD_JOINS = 1000
JOIN_CLIENTS = 4
REOPEN_SECONDS = 1.0  # between two looks for idle connections the node closed
PROBE_SECONDS = 0.2  # between two health probes
POLL = 0.005  # between two looks at a referral's status: the round trips' resolution


def serve_every_port(node: TestNode, throttle: dict[str, float] | None = None) -> dict[str, int]:
    """Turn on `node`'s metrics, dashboard and intake ports (before it starts), and set
    its `throttle:` keys; the five ports by name."""
    metrics, dashboard, intake = free_ports(3)
    text = node.config.read_text()
    text, n = re.subn(
        r'(?m)^metrics:\n  listen: ""', f'metrics:\n  listen: "127.0.0.1:{metrics}"', text
    )
    assert n == 1, f"metrics.listen not found in {node.config}"
    text += f'\ndashboard:\n  listen: "127.0.0.1:{dashboard}"\n'
    text += f'\nintake:\n  listen: "127.0.0.1:{intake}"\n'
    for key, value in (throttle or {}).items():
        text, n = re.subn(rf"(?m)^  {key}: \S+", f"  {key}: {value:g}", text)
        assert n == 1, f"throttle.{key} not found in {node.config}"
    node.config.write_text(text)
    enrollment = node.ctx().config.server.enrollment_address
    return {
        "main": node.port,
        "enrollment": int(enrollment.rpartition(":")[2]),
        "intake": intake,
        "metrics": metrics,
        "dashboard": dashboard,
    }


class IdleFlood:
    """Hold `per_port` TCP connections to each of `ports` that send nothing; every
    REOPEN_SECONDS, reopen those the node closed (a handshake or idle limit), as an
    attacker would, so the count stays up for as long as the flood lasts."""

    def __init__(self, ports: Iterable[int], per_port: int = IDLE_PER_PORT) -> None:
        self.ports = list(ports)
        self.per_port = per_port
        self.held: dict[socket.socket, int] = {}
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, daemon=True)

    def _open(self, port: int) -> None:
        s = socket.socket()
        s.settimeout(10)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            return
        s.setblocking(False)
        self.held[s] = port

    def _keep(self) -> None:
        while not self._stop.wait(REOPEN_SECONDS):
            poller = select.poll()  # not select.select: descriptors past 1,024
            by_fd = {s.fileno(): s for s in self.held}
            for fd in by_fd:
                poller.register(fd, select.POLLIN)
            for fd, _ in poller.poll(0):
                s = by_fd[fd]
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    port = self.held.pop(s)
                    s.close()
                    self._open(port)
                    self.reopened += 1

    def __enter__(self) -> IdleFlood:
        for port in self.ports:
            for _ in range(self.per_port):
                self._open(port)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        for s in self.held:
            s.close()
        self.held.clear()


def _bad_join() -> enrollment_pb2.JoinRequest:
    return enrollment_pb2.JoinRequest(
        transcript=os.urandom(64),
        signing_signature=os.urandom(64),
        tls_signature=os.urandom(64),
        secret=os.urandom(32),
    )


class Flag(Protocol):
    def is_set(self) -> bool: ...


def bad_joins(
    node: TestNode,
    address: str,
    attempts: int = BAD_JOINS,
    clients: int = JOIN_CLIENTS,
    until: Flag | None = None,
) -> Counter[str]:
    """`attempts` join requests that are not joins (random transcript and secret) against
    `node`'s enrollment port at `address`, from `clients` threads, each on its own
    channel (with `until`: at least `attempts`, and on until it is set); the status codes
    they got, by name."""
    cert = node.ctx().config.tls_cert.read_bytes()
    return bad_joins_at(address, cert, node.node_id, attempts, clients, until)


def bad_joins_at(
    address: str,
    cert: bytes,
    node_id: str,
    attempts: int = BAD_JOINS,
    clients: int = JOIN_CLIENTS,
    until: Flag | None = None,
) -> Counter[str]:
    """bad_joins against the node `node_id` whose certificate is `cert` (picklable
    arguments: for a load run in a process of its own)."""
    options = [("grpc.ssl_target_name_override", dns_name(node_id))]
    codes: Counter[str] = Counter()
    lock = threading.Lock()
    left = [attempts]

    def client() -> None:
        creds = grpc.ssl_channel_credentials(root_certificates=cert)
        with grpc.secure_channel(address, creds, options=options) as channel:
            stub = enrollment_pb2_grpc.EnrollmentServiceStub(channel)  # type: ignore[no-untyped-call]
            while True:
                with lock:
                    if left[0] <= 0 and (until is None or until.is_set()):
                        return
                    left[0] -= 1
                try:
                    stub.Join(_bad_join(), timeout=60)
                    code = "OK"
                except grpc.RpcError as e:
                    code = e.code().name  # type: ignore[attr-defined]
                with lock:
                    codes[code] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


@dataclass
class HealthProber:
    """Calls the gRPC health service of `node` every PROBE_SECONDS on a channel of its
    own with `identity`'s TLS key (a peer the node pins), until stopped; each probe's
    latency, and the probes that failed."""

    node: TestNode
    identity: TestNode
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        cfg = self.identity.ctx().config
        creds = grpc.ssl_channel_credentials(
            root_certificates=self.node.ctx().config.tls_cert.read_bytes(),
            private_key=cfg.tls_key.read_bytes(),
            certificate_chain=cfg.tls_cert.read_bytes(),
        )
        options = [("grpc.ssl_target_name_override", dns_name(self.node.node_id))]
        with grpc.secure_channel(self.node.address, creds, options=options) as channel:
            stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
                    if answer.status != health_pb2.HealthCheckResponse.SERVING:
                        self.failures.append(f"status {answer.status}")
                except grpc.RpcError as e:
                    self.failures.append(e.code().name)  # type: ignore[attr-defined]
                self.latencies.append(time.monotonic() - started)
                self._stop.wait(PROBE_SECONDS)

    def __enter__(self) -> HealthProber:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)


def connected(parent: TestNode, child: TestNode) -> bool:
    """Whether `child` shows its link to `parent` connected; fails at once, with the log,
    when either node's `serve` has exited (a wait on this ends with the cause, not after
    its bound)."""
    parent.check_alive()
    child.check_alive()
    return any(v.connected for v in links.list_links(child.ctx()) if v.peer_id == parent.node_id)


def round_trip(parent: TestNode, child: TestNode, n: int, timeout: float) -> float:
    """Register complaint `n` at the province, verify it, refer it to the regency, and
    wait until the regency's receipt has made it `accepted` at the province; seconds from
    the refer's commit to then (AssertionError after `timeout`)."""
    ctx = parent.ctx()
    tracking = complaints.submit(ctx, draft(n))
    lifecycle.verify(ctx, tracking)
    started = time.monotonic()
    complaints.refer(ctx, tracking, child.node_id)
    committed = time.monotonic()
    while time.monotonic() - started < timeout:
        status = status_of(parent, tracking)
        if status is not None and status[0] == "accepted":
            return time.monotonic() - committed
        time.sleep(POLL)
    raise AssertionError(f"referral {n} was not accepted within {timeout:.0f}s")


def quantile(samples: list[float], q: float) -> float:
    """The q-quantile of `samples` (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]
