"""The exceptions lapor-node raises, as one tree.

    NodeError                         base of everything raised on purpose
    ├── ConfigError                   node.yaml or the data directory is unusable
    ├── ValidationError               malformed input (INVALID_ARGUMENT)
    │   └── TooLargeError             input over a configured size (RESOURCE_EXHAUSTED)
    ├── NotFoundError                 no such complaint, peer, entry (NOT_FOUND)
    ├── PermissionDeniedError         the caller has no authority for this (PERMISSION_DENIED)
    ├── StateError                    wrong state or sequence for this action (FAILED_PRECONDITION)
    │   └── SequenceGapError          a per-link sequence number was skipped
    ├── IntegrityError                evidence does not check out
    │   ├── SignatureError            bad signature or unknown key (UNAUTHENTICATED)
    │   ├── ProofError                an inclusion or consistency proof fails
    │   ├── InconsistentCheckpointError  two checkpoints that cannot both be true
    │   ├── TamperedEntryError        a ledger entry differs from what was committed
    │   └── FenceError                the ledger does not extend the checkpoint this node signed
    └── PeerError                     a peer or the transport failed
        ├── PeerUnavailableError      the peer cannot be reached now
        └── RateLimitedError          one address failed too often (RESOURCE_EXHAUSTED)

Messages say what was expected and what was found. They never carry secrets or
personal data: callers pass ids and hashes, never complaint content.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
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
    "SequenceGapError",
    "SignatureError",
    "StateError",
    "TamperedEntryError",
    "TooLargeError",
    "ValidationError",
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


class PermissionDeniedError(NodeError):
    """The caller is known but has no authority for this action."""


class StateError(NodeError):
    """The action is not allowed in the current state."""


class SequenceGapError(StateError):
    """A per-link sequence number arrived out of order (a gap)."""


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


class RateLimitedError(PeerError):
    """A source address failed too many credential attempts (node.federation.throttle);
    the message says when it may try again."""
