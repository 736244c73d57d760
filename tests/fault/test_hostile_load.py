"""A province under hostile load keeps working (issue 17.6): while 300 idle TCP connections
are held on each of its five ports (main, enrollment, intake, metrics, dashboard) and
1,000 bad join attempts come from four concurrent clients, its regency's referrals all
cross and come back accepted, its health service answers every probe, and the bad joins
are throttled (RESOURCE_EXHAUSTED, counted by port in the metrics). The figures (round
trips quiet and loaded, the probes' latency) are bench/hostile_load.py's."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter

import grpc
import pytest

from node._proto.lapor.v1 import intake_pb2, intake_pb2_grpc
from node.crypto.tls import dns_name
from tests.conftest import NodeFactory
from tests.support.hostile import (
    BAD_JOINS,
    HealthProber,
    IdleFlood,
    bad_joins,
    connected,
    round_trip,
    serve_every_port,
)
from tests.support.nodes import TestNode, link
from tests.support.waits import DELIVERY_BOUND, RECOVERY_BOUND, bound, wait_until

pytestmark = pytest.mark.slow

# Quick to reach in a test: 3 free failures, then waits of 10, 20, 40 ... 200 ms, and
# refusals from the 10th failure on, each answered delay_seconds late: the load lasts
# about BAD_JOINS * delay_seconds / JOIN_CLIENTS (2.5 s; 12.5 s at 0.05, which made the
# same load, only slower).
THROTTLE = {"free_failures": 3, "delay_seconds": 0.01, "max_delay_seconds": 0.2, "refuse_after": 10}
# Referrals made while the load lasts, at least.
REFERRALS = 5


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        return answer.read().decode()


def _throttled(port: int, name: str) -> float:
    line = f'lapor_node_throttled_attempts_total{{port="{name}"}} '
    for row in _scrape(port).splitlines():
        if row.startswith(line):
            return float(row[len(line) :])
    return 0.0


def _warnings(node: TestNode, event: str) -> list[dict[str, object]]:
    lines = [line for line in node.log_path.read_text().splitlines() if line.startswith("{")]
    events = [json.loads(line) for line in lines]
    return [e for e in events if e.get("event") == event and e.get("level") == "warning"]


def _healthz(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as answer:
        return answer.read()


def _bad_tokens(node: TestNode, port: int, attempts: int) -> Counter[str]:
    """GetStatus calls on the intake port with a token no gateway has."""
    creds = grpc.ssl_channel_credentials(root_certificates=node.ctx().config.tls_cert.read_bytes())
    options = [("grpc.ssl_target_name_override", dns_name(node.node_id))]
    codes: Counter[str] = Counter()
    with grpc.secure_channel(f"127.0.0.1:{port}", creds, options=options) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)  # type: ignore[no-untyped-call]
        for _ in range(attempts):
            try:
                stub.GetStatus(
                    intake_pb2.GetStatusRequest(tracking_id="x"),
                    metadata=[("authorization", "Bearer not-a-token")],
                    timeout=30,
                )
                codes["OK"] += 1
            except grpc.RpcError as e:
                codes[e.code().name] += 1  # type: ignore[attr-defined]
    return codes


def test_referrals_and_health_hold_under_idle_connections_and_bad_joins(
    nodes: NodeFactory,
) -> None:
    """Every referral made during the load is accepted, every health probe answers, the
    metrics and dashboard ports answer through their own idle connections, and the bad
    joins end in RESOURCE_EXHAUSTED, counted in lapor_node_throttled_attempts_total."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    ports = serve_every_port(province, THROTTLE)
    province.start()
    regency.start()
    wait_until(
        lambda: connected(province, regency),
        timeout=RECOVERY_BOUND,
        what="the regency to connect",
    )
    round_trip(province, regency, 0, DELIVERY_BOUND)  # the link works before the load

    codes: Counter[str] = Counter()
    joins = threading.Thread(
        target=lambda: codes.update(bad_joins(province, f"127.0.0.1:{ports['enrollment']}"))
    )
    crossed = []
    with IdleFlood(ports.values()) as flood, HealthProber(province, regency) as prober:
        assert len(flood.held) == 5 * 300
        joins.start()
        n = 1
        while joins.is_alive() or n <= REFERRALS:
            crossed.append(round_trip(province, regency, n, DELIVERY_BOUND))
            n += 1
        joins.join()
        assert _healthz(ports["dashboard"]) == b"ok\n"
        refused_joins = _throttled(ports["metrics"], "enrollment")
        tokens = _bad_tokens(province, ports["intake"], 2 * THROTTLE["refuse_after"])

    assert len(crossed) >= REFERRALS
    assert prober.failures == [] and prober.latencies
    assert sum(codes.values()) == BAD_JOINS
    # Each was refused as the caller's error, never answered, failed or timed out.
    assert not set(codes) & {"OK", "INTERNAL", "UNKNOWN", "UNAVAILABLE", "DEADLINE_EXCEEDED"}, codes
    # Of 1,000 bad attempts, all but the first few were refused without being looked at.
    assert codes["RESOURCE_EXHAUSTED"] >= BAD_JOINS - 5 * THROTTLE["refuse_after"], codes
    assert refused_joins == codes["RESOURCE_EXHAUSTED"]
    # Logged in a bounded way (decision 0039): a line per attempt looked at, one for the
    # source's first refusal, none for the other refusals (a summary a minute counts them).
    looked_at = BAD_JOINS - codes["RESOURCE_EXHAUSTED"]
    wait_until(
        lambda: len(_warnings(province, "enrollment.refused")) == looked_at + 1,
        timeout=bound(),
        what=f"{looked_at + 1} enrollment.refused lines for {BAD_JOINS} bad joins",
    )
    assert tokens["UNAUTHENTICATED"] == THROTTLE["refuse_after"], tokens
    assert tokens["RESOURCE_EXHAUSTED"] == THROTTLE["refuse_after"], tokens
    wait_until(
        lambda: _throttled(ports["metrics"], "intake") == THROTTLE["refuse_after"],
        timeout=bound(),
        what="the intake refusals in the metrics",
    )
    assert province.process is not None and province.process.poll() is None
