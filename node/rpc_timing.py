"""RPC handling time for lapor_node_rpc_duration_seconds (node.metrics): a grpc.aio
server interceptor, so each server (federation, enrollment, intake) times its calls by
adding ``interceptors=[RpcTimer()]`` where it is built.

Invariants:

1. A unary response call (unary-unary, stream-unary) is timed from the handler's start to
   its return or exception; a unary-stream call until its last message is yielded. The
   method label is ``Service.Method`` (``/lapor.v1.Audit/GetCheckpoint`` gives
   ``Audit.GetCheckpoint``): a fixed set, never anything from the caller.
2. Bidirectional streams (Exchange) are not timed: a link's stream lasts hours, and its
   handling time is that of each batch it carries, which the stream's own code times
   with node.metrics.time_rpc.
3. The wrapped handler behaves as the original (same serializers, same errors).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from node.metrics import observe_rpc

__all__ = ["RpcTimer", "method_label"]


def method_label(full_method: str) -> str:
    """``/pkg.Service/Method`` as ``Service.Method``."""
    service, _, method = full_method.lstrip("/").partition("/")
    return f"{service.rsplit('.', 1)[-1]}.{method}"


def _timed_unary(label: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
    async def timed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        start = time.perf_counter()
        try:
            return await behaviour(request, context)
        finally:
            observe_rpc(label, time.perf_counter() - start)

    return timed


def _timed_stream(label: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
    async def timed(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        start = time.perf_counter()
        try:
            result = behaviour(request, context)
            if hasattr(result, "__aiter__"):  # an async generator: pass its messages on
                async for response in result:
                    yield response
            else:  # a coroutine that writes with context.write
                await result
        finally:
            observe_rpc(label, time.perf_counter() - start)

    return timed


class RpcTimer(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc ships no types
    """Observe each unary-response and server-streaming call's handling time."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        label = method_label(handler_call_details.method)
        common = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _timed_unary(label, handler.unary_unary), **common
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _timed_unary(label, handler.stream_unary), **common
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _timed_stream(label, handler.unary_stream), **common
            )
        return handler  # bidirectional: invariant 2
