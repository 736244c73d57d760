"""node.federation.error_edge: a real grpc.aio server whose handlers raise, behind the edge
and the timer, answers every kind of method with the status of the one table, or INTERNAL
with the fixed text, logging an unexpected error once without its text."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from structlog.testing import capture_logs

from node.errors import (
    BusyError,
    ConflictError,
    DeadlineExceededError,
    NodeError,
    NotFoundError,
    PeerError,
    PermissionDeniedError,
    RateLimitedError,
    RefusedError,
    SignatureError,
    StateError,
    TooLargeError,
    UnauthenticatedError,
    ValidationError,
)
from node.federation.error_edge import INTERNAL_MESSAGE, edge_interceptors, note_call
from node.metrics import CALLS_REFUSED

SECRET = "Pak Budi, Jl. Melati 7, HP 0812-3456"  # complaint content that must not leak
SERVICE = "lapor.v1.IntakeService"  # a real service name: the log scope is "intake"


def _identity(data: bytes) -> bytes:
    return data


def _service(raise_it: Callable[[], Exception]) -> grpc.GenericRpcHandler:
    """One method of each kind, each raising `raise_it()` after its first step."""

    async def unary(request: bytes, context: Any) -> bytes:
        note_call(gateway="gw-test")
        raise raise_it()

    async def server_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        yield b"first"
        raise raise_it()

    async def client_stream(requests: AsyncIterator[bytes], context: Any) -> bytes:
        async for _ in requests:
            pass
        raise raise_it()

    async def bidi(requests: AsyncIterator[bytes], context: Any) -> None:
        async for request in requests:
            await context.write(request)
            raise raise_it()

    common = {"request_deserializer": _identity, "response_serializer": _identity}
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary, **common),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, **common),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, **common),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi, **common),
        },
    )


async def _requests() -> AsyncIterator[bytes]:
    for item in (b"a", b"b"):
        yield item


CallFn = Callable[[grpc.aio.Channel], Awaitable[None]]


async def _unary(channel: grpc.aio.Channel) -> None:
    await channel.unary_unary(f"/{SERVICE}/Unary")(b"x")


async def _server_stream(channel: grpc.aio.Channel) -> None:
    async for _ in channel.unary_stream(f"/{SERVICE}/ServerStream")(b"x"):
        pass


async def _client_stream(channel: grpc.aio.Channel) -> None:
    await channel.stream_unary(f"/{SERVICE}/ClientStream")(_requests())


async def _bidi(channel: grpc.aio.Channel) -> None:
    async for _ in channel.stream_stream(f"/{SERVICE}/Bidi")(_requests()):
        pass


KINDS = [
    pytest.param(_unary, id="unary"),
    pytest.param(_server_stream, id="server-stream"),
    pytest.param(_client_stream, id="client-stream"),
    pytest.param(_bidi, id="bidi"),
]


async def _call(raise_it: Callable[[], Exception], call: CallFn) -> grpc.aio.AioRpcError:
    server = grpc.aio.server(interceptors=edge_interceptors("id-test"))
    server.add_generic_rpc_handlers((_service(raise_it),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await call(channel)
            return failed.value
    finally:
        await server.stop(None)


@pytest.mark.parametrize("call", KINDS)
def test_an_unexpected_error_is_internal_with_the_fixed_text_and_one_log_line(
    call: CallFn,
) -> None:
    """A ValueError quoting content: INTERNAL, the fixed text, one error line naming its type
    and frames, and the content nowhere in the answer or the log."""
    with capture_logs() as logs:
        error = asyncio.run(_call(lambda: ValueError(SECRET), call))
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == INTERNAL_MESSAGE
    failed = [e for e in logs if e["log_level"] == "error"]
    assert len(failed) == 1, logs
    assert failed[0]["event"] == "intake.failed"
    assert failed[0]["error_type"] == "ValueError"
    assert any("test_error_edge.py" in frame for frame in failed[0]["frames"])
    assert SECRET not in repr(logs)


CODES = [
    pytest.param(ValidationError("bad field"), grpc.StatusCode.INVALID_ARGUMENT, id="validation"),
    pytest.param(TooLargeError("too big"), grpc.StatusCode.RESOURCE_EXHAUSTED, id="too-large"),
    pytest.param(NotFoundError("no such"), grpc.StatusCode.NOT_FOUND, id="not-found"),
    pytest.param(UnauthenticatedError("who"), grpc.StatusCode.UNAUTHENTICATED, id="unauth"),
    pytest.param(SignatureError("bad sig"), grpc.StatusCode.UNAUTHENTICATED, id="signature"),
    pytest.param(PermissionDeniedError("no"), grpc.StatusCode.PERMISSION_DENIED, id="denied"),
    pytest.param(BusyError("busy"), grpc.StatusCode.RESOURCE_EXHAUSTED, id="busy"),
    pytest.param(StateError("wrong state"), grpc.StatusCode.FAILED_PRECONDITION, id="state"),
    pytest.param(ConflictError("taken"), grpc.StatusCode.ALREADY_EXISTS, id="conflict"),
    pytest.param(PeerError("peer down"), grpc.StatusCode.UNAVAILABLE, id="peer"),
    pytest.param(DeadlineExceededError("slow"), grpc.StatusCode.DEADLINE_EXCEEDED, id="slow"),
    pytest.param(
        RefusedError(NotFoundError("no such"), 3), grpc.StatusCode.NOT_FOUND, id="refused"
    ),
]


@pytest.mark.parametrize("call", KINDS)
@pytest.mark.parametrize(("raised", "code"), CODES)
def test_a_node_error_gets_its_code_and_message(
    raised: NodeError, code: grpc.StatusCode, call: CallFn
) -> None:
    """Each NodeError reaches the caller with its table code and its own message, logged once
    as a warning, never as an error."""
    with capture_logs() as logs:
        error = asyncio.run(_call(lambda: raised, call))
    assert error.code() == code
    assert error.details() == str(raised)
    refused = [e for e in logs if e["event"] == "intake.refused"]
    assert len(refused) == 1, logs
    assert refused[0]["code"] == code.name
    assert not [e for e in logs if e["log_level"] == "error"]


def test_the_handler_names_ids_for_the_log_line() -> None:
    """What a handler passed to note_call is on the edge's line for that call."""
    with capture_logs() as logs:
        asyncio.run(_call(lambda: StateError("wrong state"), _unary))
    assert [e.get("gateway") for e in logs if e["event"] == "intake.refused"] == ["gw-test"]


def test_a_summarised_throttle_refusal_is_counted_and_answered_but_not_logged() -> None:
    """A RateLimitedError the throttle counts in its summary (summarised) reaches the caller
    as RESOURCE_EXHAUSTED with its message and is counted, with no log line of its own; an
    unsummarised one (a source's first refusal) gets its line."""
    label = {"method": "Intake.Unary", "code": "RESOURCE_EXHAUSTED"}
    before = CALLS_REFUSED.labels(**label)._value.get()
    with capture_logs() as logs:
        quiet = asyncio.run(_call(lambda: RateLimitedError("slow down", summarised=True), _unary))
        loud = asyncio.run(_call(lambda: RateLimitedError("slow down"), _unary))
    for error in (quiet, loud):
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.details() == "slow down"
    assert CALLS_REFUSED.labels(**label)._value.get() == before + 2
    assert len([e for e in logs if e["event"] == "intake.refused"]) == 1
