"""The exceptions lapor-node raises, as one tree. A class defined elsewhere names its
module in brackets; a test keeps every exception class under node/ in this drawing.

    NodeError                         base of everything raised on purpose
    ├── ConfigError                   node.yaml or the data directory is unusable
    ├── ValidationError               malformed input (INVALID_ARGUMENT)
    │   └── TooLargeError             input over a configured size (RESOURCE_EXHAUSTED)
    ├── NotFoundError                 no such complaint, peer, entry (NOT_FOUND)
    ├── UnauthenticatedError          the caller is nobody this node knows (UNAUTHENTICATED)
    ├── PermissionDeniedError         the caller has no authority for this (PERMISSION_DENIED)
    ├── BusyError                     the caller has too much in progress (RESOURCE_EXHAUSTED)
    ├── StateError                    wrong state or sequence for this action (FAILED_PRECONDITION)
    │   ├── SequenceGapError          a per-link sequence number was skipped
    │   ├── WitnessConflict           [services.cosigning] a log's old size is not the one held
    │   └── ConflictError             the key is taken by something else (ALREADY_EXISTS)
    │       └── IdempotencyConflictError  [services.intake] an intake key reused
    ├── IntegrityError                evidence does not check out
    │   ├── SignatureError            bad signature or unknown key (UNAUTHENTICATED)
    │   ├── ProofError                an inclusion or consistency proof fails
    │   ├── InconsistentCheckpointError  two checkpoints that cannot both be true
    │   │   └── ForkDetected          [services.witness] a peer's log forked
    │   ├── TamperedEntryError        a ledger entry differs from what was committed
    │   ├── FenceError                the ledger does not extend the checkpoint this node signed
    │   ├── AuditFailure              [ledger.findings] a verification found problems
    │   └── TrustError                [crypto.chain] a key or certificate is not trusted
    │       └── ChainError            [crypto.chain] a chain of trust does not link up
    ├── PeerError                     a peer or the transport failed (UNAVAILABLE)
    │   ├── PeerUnavailableError      the peer cannot be reached now
    │   │   ├── NotLeaderError        [store.lease] this process does not hold the lease
    │   │   └── DatabaseUnavailableError  [store.db] the database connection was lost
    │   ├── DeadlineExceededError     the caller did not finish in time (DEADLINE_EXCEEDED)
    │   ├── RateLimitedError          one address failed too often (RESOURCE_EXHAUSTED)
    │   ├── IntakeCallError           [federation.intake_client] a gateway's call refused
    │   └── AuditCallError            [federation.audit_client] an auditor's call refused
    ├── RefusedError                  an envelope from a peer refused (its cause's code)
    └── WebError                      [web.params] a refusal worded for the dashboard's reader

Messages say what was expected and what was found. They never carry secrets or
personal data: callers pass ids and hashes, never complaint content.
"""

from __future__ import annotations

import traceback

__all__ = [
    "BusyError",
    "ConfigError",
    "ConflictError",
    "DeadlineExceededError",
    "FenceError",
    "InconsistentCheckpointError",
    "IntegrityError",
    "NodeError",
    "NotFoundError",
    "PeerError",
    "PeerUnavailableError",
    "PermissionDeniedError",
    "ProofError",
    "RateLimitedError",
    "RefusedError",
    "SequenceGapError",
    "SignatureError",
    "StateError",
    "TamperedEntryError",
    "TooLargeError",
    "UnauthenticatedError",
    "ValidationError",
    "frames_of",
]


class NodeError(Exception):
    """Base of every error lapor-node raises on purpose."""


class ConfigError(NodeError):
    """The configuration or the data directory cannot be used as it is."""


class ValidationError(NodeError):
    """Input is malformed: a field is missing, out of range, or not parseable."""


class TooLargeError(ValidationError):
    """Input is larger than the configured limit."""


class NotFoundError(NodeError):
    """The thing asked for does not exist here."""


class UnauthenticatedError(NodeError):
    """The caller presented no credential this node knows."""


class PermissionDeniedError(NodeError):
    """The caller is known but has no authority for this action."""


class BusyError(NodeError):
    """The caller already has as much in progress as it may; it retries later."""


class StateError(NodeError):
    """The action is not allowed in the current state."""


class SequenceGapError(StateError):
    """A per-link sequence number arrived out of order (a gap)."""


class ConflictError(StateError):
    """The name or key given is already taken by something else."""


class IntegrityError(NodeError):
    """Signed or hashed evidence does not check out."""


class SignatureError(IntegrityError):
    """A signature does not verify, or was made by a key we do not know."""


class ProofError(IntegrityError):
    """A Merkle inclusion or consistency proof does not verify."""


class InconsistentCheckpointError(IntegrityError):
    """Two signed checkpoints that cannot both describe one append-only log."""


class TamperedEntryError(IntegrityError):
    """A ledger entry differs from what its tree or its signatures committed to."""


class FenceError(IntegrityError):
    """This node's ledger is not a consistent extension of the largest checkpoint it has
    signed, kept outside the database (node.services.fence): signing now would fork it."""


class PeerError(NodeError):
    """A peer or the transport to it failed."""


class PeerUnavailableError(PeerError):
    """The peer cannot be reached now; the work waits and is retried."""


class DeadlineExceededError(PeerError):
    """The caller did not send what it must within the time allowed."""


class RateLimitedError(PeerError):
    """A source address failed too many credential attempts (node.federation.throttle);
    the message says when it may try again. `summarised`: this refusal is counted in the
    throttle's periodic summary line instead of a log line of its own (the error edge
    then logs nothing for it)."""

    def __init__(self, message: str, *, summarised: bool = False) -> None:
        super().__init__(message)
        self.summarised = summarised


class RefusedError(NodeError):
    """We refused an envelope from the peer: the session ends, nothing of it was stored.
    `error` is the refusal itself, whose status the peer is told; `sequence` the
    envelope's."""

    def __init__(self, error: NodeError, sequence: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.sequence = sequence


def frames_of(error: BaseException) -> list[str]:
    """``file:line function`` for each frame of `error`'s traceback, innermost last: where
    an unexpected error happened, for a log line, with neither its message nor any local
    value (either could quote complaint content)."""
    return [
        f"{frame.filename}:{frame.lineno} {frame.name}"
        for frame in traceback.extract_tb(error.__traceback__)
    ]
