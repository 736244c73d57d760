"""A node keeps answering while 1,000 TCP connections that never start TLS are held open
against its federation port, under systemd's default open-file limit (issue 21.9): its
health service (gRPC) and its dashboard's /healthz answer, the log says what the node's
descriptor limit is, and it says when it refuses connections."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.crypto.tls import dns_name
from node.federation.limits import DEFAULT_HANDSHAKE_SECONDS
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, free_port, wait_until

pytestmark = pytest.mark.slow

IDLE_CONNECTIONS = 1000
OPEN_FILES = 1024  # systemd's default for services
# Connections over a port's cap are closed as they come; those within it once the
# handshake timeout passes. The probes must get through well within a few of those.
WAIT = 3 * DEFAULT_HANDSHAKE_SECONDS + 15


def _serve_limited(node: TestNode) -> subprocess.Popen[bytes]:
    log = node.log_path.open("ab")
    process = subprocess.Popen(
        [
            "prlimit",
            f"--nofile={OPEN_FILES}",
            sys.executable,
            "-m",
            "node.cli.main",
            "serve",
            "--config",
            str(node.config),
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    log.close()
    return process


def _listening(process: subprocess.Popen[bytes], node: TestNode, port: int) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"serve exited:\n{node.log_path.read_text()}")
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def flooded(nodes: NodeFactory) -> Iterator[tuple[TestNode, int]]:
    """A node serving under `prlimit --nofile=1024` with its dashboard on, and 1,000 idle
    TCP connections to its federation port; the node and the dashboard's port."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    dashboard = free_port()
    node.config.write_text(
        node.config.read_text() + f'\ndashboard:\n  listen: "127.0.0.1:{dashboard}"\n'
    )
    process = _serve_limited(node)
    idle: list[socket.socket] = []
    try:
        wait_until(lambda: _listening(process, node, node.port), what="serve to listen")
        wait_until(lambda: _listening(process, node, dashboard), what="the dashboard")
        for _ in range(IDLE_CONNECTIONS):
            s = socket.socket()
            s.settimeout(10)
            s.connect(("127.0.0.1", node.port))
            idle.append(s)
        yield node, dashboard
        assert process.poll() is None, node.log_path.read_text()
    finally:
        for s in idle:
            s.close()
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _dashboard_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status == 200 and r.read() == b"ok\n"
    except OSError:
        return False


def _health_answers(node: TestNode) -> bool:
    """The gRPC health service, called with the node's own TLS identity (the one a node
    with no links trusts)."""
    cfg = node.ctx().config
    creds = grpc.ssl_channel_credentials(
        root_certificates=cfg.tls_cert.read_bytes(),
        private_key=cfg.tls_key.read_bytes(),
        certificate_chain=cfg.tls_cert.read_bytes(),
    )
    options = [("grpc.ssl_target_name_override", dns_name(node.node_id))]
    with grpc.secure_channel(node.address, creds, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        except grpc.RpcError:
            return False
    return answer.status == health_pb2.HealthCheckResponse.SERVING  # type: ignore[no-any-return]


def _events(node: TestNode, name: str) -> list[dict[str, object]]:
    found = []
    for line in node.log_path.read_text().splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == name:
                found.append(event)
    return found


def test_health_and_dashboard_answer_through_a_flood_of_idle_connections(
    flooded: tuple[TestNode, int],
) -> None:
    """Both probes answer while the connections are held (before: both timed out for a
    minute and more), and the log names the limit and the port that refused."""
    node, dashboard = flooded
    wait_until(lambda: _dashboard_answers(dashboard), timeout=WAIT, what="the dashboard")
    wait_until(lambda: _health_answers(node), timeout=WAIT, what="the health service")
    (limit,) = wait_until(lambda: _events(node, "limits.open_files"), what="the limit line")
    assert limit["soft"] == OPEN_FILES
    refused = wait_until(
        lambda: _events(node, "limits.connections_refused"), timeout=WAIT, what="a refusal"
    )
    assert refused[0]["level"] == "warning"
    assert refused[0]["port_name"] == "main" and refused[0]["port"] == node.port
