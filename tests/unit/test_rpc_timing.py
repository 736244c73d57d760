"""node.rpc_timing: a real grpc.aio server with the interceptor times each call, by
Service.Method, whether the call succeeds or fails."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from node.metrics import REGISTRY
from node.rpc_timing import RpcTimer, method_label


def _count(method: str) -> float:
    value = REGISTRY.get_sample_value("lapor_node_rpc_duration_seconds_count", {"method": method})
    return value or 0.0


@pytest.mark.parametrize(
    ("full", "label"),
    [
        ("/lapor.v1.Audit/GetCheckpoint", "Audit.GetCheckpoint"),
        ("/grpc.health.v1.Health/Check", "Health.Check"),
        ("/Plain/Call", "Plain.Call"),
    ],
)
def test_method_label(full: str, label: str) -> None:
    """The label is the service's last name component and the method."""
    assert method_label(full) == label


async def _calls() -> None:
    server = grpc.aio.server(interceptors=[RpcTimer()])
    servicer = health.aio.HealthServicer()
    await servicer.set("lapor", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(service="lapor"))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await stub.Check(health_pb2.HealthCheckRequest(service="unknown"))
            assert failed.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(None)


def test_calls_are_timed_ok_or_not() -> None:
    """Two Check calls, one refused with NOT_FOUND: both observed, nothing else changed."""
    before = _count("Health.Check")
    asyncio.run(_calls())
    assert _count("Health.Check") - before == 2


async def _watch_once() -> None:
    server = grpc.aio.server(interceptors=[RpcTimer()])
    servicer = health.aio.HealthServicer()
    await servicer.set("lapor", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service="lapor")
            )
            first = await call.read()
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            call.cancel()
    finally:
        await server.stop(grace=5)  # ends the server's side of the stream


def test_a_server_stream_is_timed_when_it_ends() -> None:
    """A server-streaming call (Health.Watch) is observed once, when its stream ends."""
    before = _count("Health.Watch")
    asyncio.run(_watch_once())
    assert _count("Health.Watch") - before == 1
