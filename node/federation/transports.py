"""The two ends of an Exchange call as the frame transports a LinkSession runs on
(node.federation.session.FrameTransport). Writes are serialized: the send loop, the
committer's Acks and replays share one stream."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from node._proto.lapor.v1 import federation_pb2
from node.errors import PeerError

__all__ = ["ClientTransport", "ServerTransport"]


class ServerTransport:
    """The parent's end of a child's Exchange call, as a FrameTransport."""

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


class ClientTransport:
    """The child's end of its Exchange call to the parent, as a FrameTransport."""

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
