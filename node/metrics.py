"""The node's Prometheus metrics: one registry per process, served by `serve` on the
port set in node.yaml (`metrics.listen`).

Names follow Prometheus conventions (`lapor_node_` prefix, `_total` for counters). Labels
are node ids and fixed kinds, never complaint content or reporter data.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge

from node.errors import IntegrityError

__all__ = [
    "AUDIT_CALLS",
    "CALLS_REFUSED",
    "CERTIFICATE_EXPIRY",
    "CHECKPOINT_AGE",
    "CHECKPOINT_FAILURES",
    "CHECKPOINT_SIGNED",
    "CHECKPOINT_SIZE",
    "COMPLAINTS",
    "COMPLAINTS_OVERDUE",
    "INTAKE_SUBMISSIONS",
    "LEDGER_SIZE",
    "LINK_CONNECTED",
    "LINK_GAUGES_SECONDS",
    "LINK_LAG_MESSAGES",
    "LINK_LAG_SECONDS",
    "LINK_LAST_SEEN",
    "LINK_OUTBOX_DEPTH",
    "PEER_FORKS",
    "PEER_SUSPENDED",
    "REFUSED",
    "REGISTRY",
    "SLA_BREACHES",
    "VERIFICATION_FAILURES",
    "WORKFLOW_GAUGES_SECONDS",
    "CertificateSample",
    "LinkSample",
    "observe_certificates",
    "observe_checkpoint",
    "observe_links",
    "observe_refusal",
    "observe_workflow",
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

INTAKE_SUBMISSIONS = Counter(
    "lapor_node_intake_submissions_total",
    "Submissions from channel gateways, by channel and outcome (created, duplicate, or the "
    "gRPC status code of a refusal); channel is 'unknown' before the submission is read.",
    ["channel", "outcome"],
    registry=REGISTRY,
)

# Sync health, per linked peer (refreshed by `serve` every LINK_GAUGES_SECONDS) ----------

LINK_CONNECTED = Gauge(
    "lapor_node_link_connected",
    "1 while a stream with the peer is up (Hellos exchanged), else 0.",
    ["peer"],
    registry=REGISTRY,
)
LINK_OUTBOX_DEPTH = Gauge(
    "lapor_node_link_outbox_depth",
    "Envelopes queued for the peer and not yet acknowledged by it.",
    ["peer"],
    registry=REGISTRY,
)
LINK_LAG_MESSAGES = Gauge(
    "lapor_node_link_lag_messages",
    "Sequences sent or queued past the last one the peer acknowledged.",
    ["peer"],
    registry=REGISTRY,
)
LINK_LAG_SECONDS = Gauge(
    "lapor_node_link_lag_seconds",
    "Age of the oldest envelope the peer has not acknowledged (0 when none waits).",
    ["peer"],
    registry=REGISTRY,
)
LINK_LAST_SEEN = Gauge(
    "lapor_node_link_last_seen_timestamp_seconds",
    "When the peer was last heard from, in Unix seconds (0 if never).",
    ["peer"],
    registry=REGISTRY,
)
LINK_GAUGES_SECONDS = 2.0
"""How often `serve` refreshes the per-peer gauges below."""
_LINK_GAUGES = (
    LINK_CONNECTED,
    LINK_OUTBOX_DEPTH,
    LINK_LAG_MESSAGES,
    LINK_LAG_SECONDS,
    LINK_LAST_SEEN,
)


class LinkSample(NamedTuple):
    """One peer's sync health, as `link list` shows it."""

    peer: str
    connected: bool
    outbox_depth: int
    lag_messages: int
    lag_seconds: float | None
    last_seen: float | None  # Unix seconds


_linked: set[str] = set()


def observe_links(samples: Iterable[LinkSample]) -> None:
    """Set the per-peer gauges to `samples`; a peer no longer linked loses its series."""
    seen: set[str] = set()
    for s in samples:
        seen.add(s.peer)
        LINK_CONNECTED.labels(peer=s.peer).set(1 if s.connected else 0)
        LINK_OUTBOX_DEPTH.labels(peer=s.peer).set(s.outbox_depth)
        LINK_LAG_MESSAGES.labels(peer=s.peer).set(s.lag_messages)
        LINK_LAG_SECONDS.labels(peer=s.peer).set(s.lag_seconds or 0.0)
        LINK_LAST_SEEN.labels(peer=s.peer).set(s.last_seen or 0.0)
    for gone in _linked - seen:
        for gauge in _LINK_GAUGES:
            with contextlib.suppress(KeyError):
                gauge.remove(gone)
    _linked.clear()
    _linked.update(seen)


# The complaint workflow (refreshed by `serve` every WORKFLOW_GAUGES_SECONDS; docs/reports.md)

COMPLAINTS = Gauge(
    "lapor_node_complaints",
    "Complaints known to this node, by status (mirrored from children for those referred).",
    ["status"],
    registry=REGISTRY,
)
COMPLAINTS_OVERDUE = Gauge(
    "lapor_node_complaints_overdue",
    "Open complaints known to this node that have missed at least one deadline now.",
    registry=REGISTRY,
)
SLA_BREACHES = Gauge(
    "lapor_node_sla_breaches",
    "Open complaints past a service-level deadline now, by deadline (verify, "
    "first_follow_up, resolve).",
    ["deadline"],
    registry=REGISTRY,
)
VERIFICATION_FAILURES = Counter(
    "lapor_node_verification_failures_total",
    "Envelopes from a peer whose evidence did not check out (bad signature or unknown key, "
    "broken proof, inconsistent checkpoint, tampered entry), by peer and error kind.",
    ["peer", "kind"],
    registry=REGISTRY,
)
WORKFLOW_GAUGES_SECONDS = 30.0
"""How often `serve` refreshes the workflow gauges above."""


def observe_workflow(
    by_status: Mapping[str, int], overdue: int, breaches: Mapping[str, int]
) -> None:
    """Set the workflow gauges from one reading (node.services.reports.workflow_sample)."""
    for status, count in by_status.items():
        COMPLAINTS.labels(status=status).set(count)
    COMPLAINTS_OVERDUE.set(overdue)
    for deadline, count in breaches.items():
        SLA_BREACHES.labels(deadline=deadline).set(count)


def observe_refusal(peer: str, code: str, error: Exception) -> None:
    """An envelope from `peer` was refused with gRPC `code`: count it, and count it as a
    verification failure when the error is an integrity one (node.errors.IntegrityError)."""
    REFUSED.labels(peer=peer, code=code).inc()
    if isinstance(error, IntegrityError):
        VERIFICATION_FAILURES.labels(peer=peer, kind=type(error).__name__).inc()


# TLS certificates (set by `serve` at start and every minute; node.services.certificates) --

CERTIFICATE_EXPIRY = Gauge(
    "lapor_node_certificate_expiry_timestamp_seconds",
    "When a TLS certificate stops being valid (its notAfter), in Unix seconds: this node's "
    'own (certificate="own") and the one pinned for each linked peer (certificate="peer").',
    ["certificate", "peer"],
    registry=REGISTRY,
)


class CertificateSample(NamedTuple):
    """One certificate's end: `certificate` is own or peer; `peer` is empty for own."""

    certificate: str
    peer: str
    valid_until: float  # Unix seconds


_certificates: set[tuple[str, str]] = set()


def observe_certificates(samples: Iterable[CertificateSample]) -> None:
    """Set the expiry gauge to `samples`; a certificate no longer current (a peer unlinked)
    loses its series."""
    seen: set[tuple[str, str]] = set()
    for s in samples:
        seen.add((s.certificate, s.peer))
        CERTIFICATE_EXPIRY.labels(certificate=s.certificate, peer=s.peer).set(s.valid_until)
    for gone in _certificates - seen:
        with contextlib.suppress(KeyError):
            CERTIFICATE_EXPIRY.remove(*gone)
    _certificates.clear()
    _certificates.update(seen)
