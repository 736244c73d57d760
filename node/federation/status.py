"""The one translator between lapor-node errors and gRPC status codes."""

from __future__ import annotations

import grpc

from node.errors import (
    BusyError,
    ConfigError,
    ConflictError,
    DeadlineExceededError,
    IntegrityError,
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

__all__ = ["error_for_status", "status_for"]

# Most specific first.
_TABLE: tuple[tuple[type[NodeError], grpc.StatusCode], ...] = (
    (TooLargeError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (RateLimitedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ValidationError, grpc.StatusCode.INVALID_ARGUMENT),
    (SignatureError, grpc.StatusCode.UNAUTHENTICATED),
    (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (BusyError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ConflictError, grpc.StatusCode.ALREADY_EXISTS),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (StateError, grpc.StatusCode.FAILED_PRECONDITION),
    (IntegrityError, grpc.StatusCode.FAILED_PRECONDITION),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (DeadlineExceededError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (PeerError, grpc.StatusCode.UNAVAILABLE),
    (ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
)


def status_for(error: NodeError) -> grpc.StatusCode:
    """The status a caller is told for `error`; a refused envelope takes its cause's."""
    while isinstance(error, RefusedError):
        error = error.error
    for cls, code in _TABLE:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL


_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


def error_for_status(code: int, message: str) -> PeerError:
    """A peer refused something of ours: a PeerError that names the status."""
    status = _BY_VALUE.get(code, grpc.StatusCode.UNKNOWN)
    return PeerError(f"peer refused with {status.name}: {message}")
