"""The node's Prometheus metrics: one registry per process, served by `serve` on the
port set in node.yaml (`metrics.listen`).

Names follow Prometheus conventions (`lapor_node_` prefix, `_total` for counters). Labels
are node ids and fixed kinds, never complaint content or reporter data.
"""

from __future__ import annotations

import math
import time

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = [
    "AUDIT_CALLS",
    "CALLS_REFUSED",
    "CHECKPOINT_AGE",
    "CHECKPOINT_FAILURES",
    "CHECKPOINT_SIGNED",
    "CHECKPOINT_SIZE",
    "LEDGER_SIZE",
    "PEER_FORKS",
    "PEER_SUSPENDED",
    "REFUSED",
    "REGISTRY",
    "observe_checkpoint",
]

REGISTRY = CollectorRegistry(auto_describe=True)

PEER_FORKS = Counter(
    "lapor_node_peer_forks_total",
    "Inconsistent signed checkpoints (fork or rollback evidence) presented by a peer.",
    ["peer", "kind"],
    registry=REGISTRY,
)
PEER_SUSPENDED = Gauge(
    "lapor_node_peer_suspended",
    "1 while this node refuses a peer's envelopes because of fork evidence, else 0.",
    ["peer"],
    registry=REGISTRY,
)
REFUSED = Counter(
    "lapor_node_refused_total",
    "Envelopes or calls this node refused, by gRPC status code.",
    ["peer", "code"],
    registry=REGISTRY,
)
LEDGER_SIZE = Gauge(
    "lapor_node_ledger_entries",
    "Entries in this node's ledger (updated by `serve` each checkpoint interval).",
    registry=REGISTRY,
)
CHECKPOINT_SIZE = Gauge(
    "lapor_node_checkpoint_size",
    "Tree size of the latest checkpoint this node signed (0 before the first).",
    registry=REGISTRY,
)
CHECKPOINT_SIGNED = Gauge(
    "lapor_node_checkpoint_signed_timestamp_seconds",
    "When the latest checkpoint was signed, in Unix seconds (0 before the first).",
    registry=REGISTRY,
)
CHECKPOINT_AGE = Gauge(
    "lapor_node_checkpoint_age_seconds",
    "Seconds since the latest checkpoint was signed (NaN before the first).",
    registry=REGISTRY,
)
CHECKPOINT_FAILURES = Counter(
    "lapor_node_checkpoint_failures_total",
    "Checkpoints `serve` refused to sign, by error kind; any integrity failure stops signing.",
    ["kind"],
    registry=REGISTRY,
)
AUDIT_CALLS = Counter(
    "lapor_node_audit_calls_total",
    "Audit service calls admitted, by caller kind (peer or auditor) and method.",
    ["caller_kind", "method"],
    registry=REGISTRY,
)
CALLS_REFUSED = Counter(
    "lapor_node_calls_refused_total",
    "gRPC calls refused, by method and status code: callers not pinned, auditors calling "
    "Exchange, Audit service arguments out of range.",
    ["method", "code"],
    registry=REGISTRY,
)


_latest_signed: list[float] = []


def observe_checkpoint(size: int, signed_at: float) -> None:
    """Record the latest signed checkpoint: its size and when (Unix seconds) it was signed."""
    CHECKPOINT_SIZE.set(size)
    CHECKPOINT_SIGNED.set(signed_at)
    _latest_signed[:] = [signed_at]


def _checkpoint_age() -> float:
    return time.time() - _latest_signed[0] if _latest_signed else math.nan


CHECKPOINT_AGE.set_function(_checkpoint_age)
