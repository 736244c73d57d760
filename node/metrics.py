"""The node's Prometheus metrics: one registry per process, served by `serve` on the
port set in node.yaml (`metrics.listen`).

Names follow Prometheus conventions (`lapor_node_` prefix, `_total` for counters). Labels
are node ids and fixed kinds, never complaint content or reporter data.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from node.errors import IntegrityError

__all__ = [
    "AUDIT_CALLS",
    "BUILD_INFO",
    "CALLS_REFUSED",
    "CERTIFICATE_EXPIRY",
    "CHECKPOINT_AGE",
    "CHECKPOINT_FAILURES",
    "CHECKPOINT_SIGNED",
    "CHECKPOINT_SIZE",
    "COMPLAINTS",
    "COMPLAINTS_OVERDUE",
    "DELIVERY_LATENCY",
    "INTAKE_SUBMISSIONS",
    "KEY_GRACE_END",
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
    "RPC_DURATION",
    "SLA_BREACHES",
    "THROTTLED",
    "VERIFICATION_FAILURES",
    "WORKFLOW_GAUGES_SECONDS",
    "CertificateSample",
    "LinkSample",
    "init_peer_series",
    "observe_certificates",
    "observe_checkpoint",
    "observe_delivery",
    "observe_key_graces",
    "observe_links",
    "observe_refusal",
    "observe_rpc",
    "observe_workflow",
    "time_rpc",
]

REGISTRY = CollectorRegistry(auto_describe=True)

PEER_FORKS = Counter(
    "lapor_node_peer_forks_total",
    "Inconsistent signed checkpoints (fork or rollback evidence) presented by a peer; "
    "kind own-history or unsigned-claim: the peer holds a checkpoint of ours that our ledger "
    "does not have (node.services.peer_evidence).",
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

THROTTLED = Counter(
    "lapor_node_throttled_attempts_total",
    "Attempts refused because their source address failed too many join or gateway-token "
    "attempts (node.federation.throttle), by port (enrollment, intake).",
    ["port"],
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


# Process, platform and build; latency histograms; series for every configured peer -------
# (issue 20.3; deploy/prometheus and deploy/grafana use these names)

ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, process_open_fds, ...
PlatformCollector(registry=REGISTRY)  # python_info
GCCollector(registry=REGISTRY)  # python_gc_*

BUILD_INFO = Info(
    "lapor_node_build",
    "The running lapor-node's version (the installed distribution's), always 1.",
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


def _version() -> str:
    try:
        return importlib.metadata.version("lapor-node")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a tree
        return "unknown"


BUILD_INFO.info({"version": _version()})

# Seconds, from a few hundred milliseconds (both nodes up) to days (a child offline).
DELIVERY_BUCKETS = (0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0, 604800.0)
DELIVERY_LATENCY = Histogram(
    "lapor_node_delivery_latency_seconds",
    "From queuing a referral for a peer to committing the peer's signed receipt for it.",
    ["peer"],
    buckets=DELIVERY_BUCKETS,
    registry=REGISTRY,
)
RPC_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RPC_DURATION = Histogram(
    "lapor_node_rpc_duration_seconds",
    "Time this node took to handle one gRPC call or stream message batch, by method.",
    ["method"],
    buckets=RPC_BUCKETS,
    registry=REGISTRY,
)


def observe_delivery(peer: str, seconds: float) -> None:
    """A referral to `peer` was acknowledged by its receipt `seconds` after it was queued
    (a negative figure, from clocks moved back, counts as 0)."""
    DELIVERY_LATENCY.labels(peer=peer).observe(max(seconds, 0.0))


def observe_rpc(method: str, seconds: float) -> None:
    """This node handled one call of `method` (e.g. "Audit.GetCheckpoint") in `seconds`."""
    RPC_DURATION.labels(method=method).observe(max(seconds, 0.0))


@contextlib.contextmanager
def time_rpc(method: str) -> Iterator[None]:
    """Observe the time the block takes as one call of `method`, however it ends."""
    start = time.perf_counter()
    try:
        yield
    finally:
        observe_rpc(method, time.perf_counter() - start)


KEY_GRACE_END = Gauge(
    "lapor_node_key_grace_end_timestamp_seconds",
    "When a retired TLS certificate stops being accepted after a key rotation, in Unix "
    'seconds: this node\'s own (certificate="own", peer="") and the old ones of each peer '
    '(certificate="peer"); no series once every grace period has ended.',
    ["certificate", "peer"],
    registry=REGISTRY,
)
_graces: set[tuple[str, str]] = set()


def observe_key_graces(ends: Mapping[tuple[str, str], float]) -> None:
    """Set the grace-end gauge to `ends`, {(certificate, peer): Unix seconds} (the latest end
    of each), dropping series whose grace period is over (node.services.monitoring)."""
    for (certificate, peer), end in ends.items():
        KEY_GRACE_END.labels(certificate=certificate, peer=peer).set(end)
    for gone in _graces - set(ends):
        with contextlib.suppress(KeyError):
            KEY_GRACE_END.remove(*gone)
    _graces.clear()
    _graces.update(ends)


# The label values a peer's series can take before its first event: fork kinds
# (node.services.witness), integrity error kinds (node.errors.IntegrityError's tree) and
# the gRPC codes node.federation.status gives refusals.
FORK_KINDS = ("same-size", "inconsistent", "rollback", "own-history", "unsigned-claim")
REFUSAL_CODES = (
    "FAILED_PRECONDITION",
    "INTERNAL",
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "UNAUTHENTICATED",
    "UNAVAILABLE",
    "UNKNOWN",
)


def _integrity_kinds() -> tuple[str, ...]:
    kinds: list[str] = []
    todo: list[type[Exception]] = [IntegrityError]
    while todo:
        cls = todo.pop()
        kinds.append(cls.__name__)
        todo.extend(cls.__subclasses__())
    return tuple(sorted(kinds))


def init_peer_series(peers: Iterable[str]) -> None:
    """Create every per-peer series at zero for `peers` (the configured or linked peer ids),
    so that rates and alerts see 0, not nothing, before a peer's first event. Existing
    values are kept; call it at start and whenever the set of peers changes."""
    integrity_kinds = _integrity_kinds()
    for peer in peers:
        for kind in FORK_KINDS:
            PEER_FORKS.labels(peer=peer, kind=kind)
        for kind in integrity_kinds:
            VERIFICATION_FAILURES.labels(peer=peer, kind=kind)
        for code in REFUSAL_CODES:
            REFUSED.labels(peer=peer, code=code)
        DELIVERY_LATENCY.labels(peer=peer)
        if peer not in _linked:  # observe_links owns the gauges of linked peers
            PEER_SUSPENDED.labels(peer=peer)
            for gauge in _LINK_GAUGES:
                gauge.labels(peer=peer)
