"""The one error edge of every gRPC server the node runs (main, enrollment, intake): a
grpc.aio server interceptor around each handler, unary and streaming alike. Handlers just
raise; this decides what the caller sees and what the log keeps.

Invariants:

1. A NodeError becomes the status node.federation.status.status_for gives it (the one
   table), with its message, which by node.errors' contract carries no secret and no
   personal data. It is counted in lapor_node_calls_refused_total and logged once as a
   warning, ``<scope>.refused`` (scope: audit, link, enrollment, intake, by service);
   except a throttled attempt's refusal that the throttle counts in its periodic summary
   (RateLimitedError.summarised, node.federation.throttle): counted, not logged, so a
   flood of refused attempts makes a bounded number of lines.
2. Anything else becomes INTERNAL with the fixed text INTERNAL_MESSAGE, counted, and is
   logged once at error level as ``<scope>.failed`` with ``error_type`` and the traceback's
   frames (file, line, function): never its str() nor any local value, since either could
   quote complaint content.
3. A call the handler ended itself (context.abort) and cancellation pass untouched.
4. ``note_call(**fields)`` lets a handler name ids (a gateway, a channel) that the edge's
   log line for this call then carries; fields belong to the call's own task.
5. The edge chains with node.rpc_timing.RpcTimer (``edge_interceptors``), the timer
   outside, so a refused call is still timed.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from node.errors import NodeError, RateLimitedError, frames_of
from node.federation.status import status_for
from node.logs import get_logger
from node.metrics import CALLS_REFUSED
from node.rpc_timing import RpcTimer

__all__ = [
    "INTERNAL_MESSAGE",
    "ErrorEdge",
    "edge_interceptors",
    "note_call",
]

INTERNAL_MESSAGE = (
    "the node failed to answer this call; retry later, and tell the node's operator if it "
    "persists (its log has the detail)"
)

# Who the log line is about, by service: the event names each service logged before.
_SCOPES = {
    "lapor.v1.AuditService": "audit",
    "lapor.v1.FederationService": "link",
    "lapor.v1.EnrollmentService": "enrollment",
    "lapor.v1.IntakeService": "intake",
}
# The method label of lapor_node_calls_refused_total, by service: as before the edge.
_PREFIXES = {"lapor.v1.IntakeService": "Intake."}

_call_fields: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "lapor_call_fields", default=None
)


def note_call(**fields: object) -> None:
    """Ids about the current call (never content) for the edge's log line (invariant 4)."""
    known = _call_fields.get()
    _call_fields.set({**(known or {}), **fields})


class _Call:
    """What the edge knows of one method: its labels, and how it answers a failure."""

    def __init__(self, full_method: str, node_id: str | None) -> None:
        service, _, method = full_method.lstrip("/").partition("/")
        self.scope = _SCOPES.get(service, "rpc")
        self.label = _PREFIXES.get(service, "") + method
        self.log = get_logger() if node_id is None else get_logger(node_id=node_id)

    async def fail(self, context: grpc.aio.ServicerContext[Any, Any], error: Exception) -> None:
        """End the call for `error` (invariants 1 and 2); context.abort raises."""
        fields = _call_fields.get() or {}
        try:
            peer_address = context.peer()
        except Exception:  # a call torn down already has no peer to name
            peer_address = None
        if isinstance(error, NodeError):
            code = status_for(error)
            CALLS_REFUSED.labels(method=self.label, code=code.name).inc()
            if isinstance(error, RateLimitedError) and error.summarised:
                await context.abort(code, str(error))
                return
            self.log.warning(
                f"{self.scope}.refused",
                method=self.label,
                code=code.name,
                error_type=type(error).__name__,
                reason=str(error),
                peer_address=peer_address,
                **fields,
            )
            await context.abort(code, str(error))
            return
        CALLS_REFUSED.labels(method=self.label, code=grpc.StatusCode.INTERNAL.name).inc()
        self.log.error(
            f"{self.scope}.failed",
            method=self.label,
            error_type=type(error).__name__,
            frames=frames_of(error),
            peer_address=peer_address,
            **fields,
        )
        await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)


def _passes(error: Exception) -> bool:
    """An error the handler's own abort raised, or the transport's: not ours to map."""
    return isinstance(error, grpc.aio.AbortError | grpc.aio.UsageError)


def _unary(call: _Call, behaviour: Callable[..., Any]) -> Callable[..., Any]:
    async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        _call_fields.set(None)
        try:
            return await behaviour(request, context)
        except Exception as e:
            if _passes(e):
                raise
            await call.fail(context, e)
            raise  # pragma: no cover - abort raises

    return guarded


def _streaming(call: _Call, behaviour: Callable[..., Any]) -> Callable[..., Any]:
    if not inspect.isasyncgenfunction(behaviour):
        return _unary(call, behaviour)  # a coroutine that writes with context.write

    async def guarded(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        _call_fields.set(None)
        try:
            async for response in behaviour(request, context):
                yield response
        except Exception as e:
            if _passes(e):
                raise
            await call.fail(context, e)
            raise  # pragma: no cover - abort raises

    return guarded


class ErrorEdge(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc ships no types
    """Map what every handler raises to its status (the module's invariants)."""

    def __init__(self, node_id: str | None = None) -> None:
        self.node_id = node_id

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        call = _Call(handler_call_details.method, self.node_id)
        common = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(_unary(call, handler.unary_unary), **common)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _unary(call, handler.stream_unary), **common
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _streaming(call, handler.unary_stream), **common
            )
        return grpc.stream_stream_rpc_method_handler(
            _streaming(call, handler.stream_stream), **common
        )


def edge_interceptors(node_id: str | None = None) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors of every server of the node: the timer, then the error edge."""
    return [RpcTimer(), ErrorEdge(node_id)]
