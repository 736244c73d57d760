"""The node's Prometheus metrics: one registry per process, served by `serve` on the
port set in node.yaml (`metrics.listen`).

Names follow Prometheus conventions (`lapor_node_` prefix, `_total` for counters). Labels
are node ids and fixed kinds, never complaint content or reporter data.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = [
    "PEER_FORKS",
    "PEER_SUSPENDED",
    "REFUSED",
    "REGISTRY",
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
