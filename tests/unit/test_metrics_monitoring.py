"""node.metrics' monitoring block and node.services.monitoring (issue 20.3)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from node import metrics
from node.services import monitoring


def _value(name: str, labels: dict[str, str] | None = None) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels or {})


def test_process_platform_and_build_info_are_exported() -> None:
    """The registry carries process and Python collectors and lapor_node_build_info."""
    assert _value("process_cpu_seconds_total") is not None
    assert _value("process_open_fds") is not None
    families = {f.name: f for f in metrics.REGISTRY.collect()}
    assert "python_info" in families
    build = [s for s in families["lapor_node_build"].samples if s.name == "lapor_node_build_info"]
    assert len(build) == 1 and build[0].value == 1
    assert build[0].labels["version"]


def test_every_peer_series_starts_at_zero() -> None:
    """init_peer_series makes every labelled per-peer series exist, at 0, before any event."""
    peer = "id-99-01"
    assert _value("lapor_node_peer_forks_total", {"peer": peer, "kind": "rollback"}) is None
    metrics.init_peer_series([peer])
    for kind in metrics.FORK_KINDS:
        assert _value("lapor_node_peer_forks_total", {"peer": peer, "kind": kind}) == 0
    for code in metrics.REFUSAL_CODES:
        assert _value("lapor_node_refused_total", {"peer": peer, "code": code}) == 0
    failures = {"peer": peer, "kind": "SignatureError"}
    assert _value("lapor_node_verification_failures_total", failures) == 0
    assert _value("lapor_node_delivery_latency_seconds_count", {"peer": peer}) == 0
    assert _value("lapor_node_link_connected", {"peer": peer}) == 0
    assert _value("lapor_node_peer_suspended", {"peer": peer}) == 0


def test_init_keeps_existing_values() -> None:
    """Calling init again (a peer linked later) resets nothing already counted."""
    peer = "id-99-02"
    metrics.init_peer_series([peer])
    metrics.PEER_FORKS.labels(peer=peer, kind="rollback").inc()
    metrics.init_peer_series([peer, "id-99-03"])
    assert _value("lapor_node_peer_forks_total", {"peer": peer, "kind": "rollback"}) == 1


def test_histograms_observe() -> None:
    """Delivery latency and RPC handling time land in their buckets; negatives count as 0."""
    metrics.observe_delivery("id-99-04", 42.0)
    metrics.observe_delivery("id-99-04", -3.0)
    labels = {"peer": "id-99-04"}
    assert _value("lapor_node_delivery_latency_seconds_count", labels) == 2
    assert _value("lapor_node_delivery_latency_seconds_sum", labels) == 42.0
    bucket = {**labels, "le": "60.0"}
    assert _value("lapor_node_delivery_latency_seconds_bucket", bucket) == 2
    with metrics.time_rpc("Test.Method"):
        pass
    with pytest.raises(RuntimeError), metrics.time_rpc("Test.Method"):
        raise RuntimeError("counted anyway")
    assert _value("lapor_node_rpc_duration_seconds_count", {"method": "Test.Method"}) == 2


def test_key_graces_set_and_dropped() -> None:
    """The grace-end gauge follows the latest reading; an ended grace loses its series."""
    metrics.observe_key_graces({("own", ""): 1000.0, ("peer", "id-99-05"): 2000.0})
    assert (
        _value("lapor_node_key_grace_end_timestamp_seconds", {"certificate": "own", "peer": ""})
        == 1000.0
    )
    metrics.observe_key_graces({("peer", "id-99-05"): 2000.0})
    assert (
        _value("lapor_node_key_grace_end_timestamp_seconds", {"certificate": "own", "peer": ""})
        is None
    )


QUEUED = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("commit", [True, False], ids=["committed", "rolled-back"])
def test_delivery_observed_only_when_its_transaction_commits(commit: bool) -> None:
    """A receipt's latency counts once its transaction commits, never after a rollback."""
    peer = f"id-99-1{int(commit)}"
    engine = create_engine("sqlite://")
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        monitoring.delivered_at_commit(session, peer, QUEUED, QUEUED + dt.timedelta(seconds=90))
        assert _value("lapor_node_delivery_latency_seconds_count", {"peer": peer}) is None
        if commit:
            session.commit()
        else:
            session.rollback()
        session.execute(text("SELECT 1"))
        session.commit()  # a later transaction does not observe a dropped delivery
    expected = 1 if commit else None
    assert _value("lapor_node_delivery_latency_seconds_count", {"peer": peer}) == expected
    if commit:
        assert _value("lapor_node_delivery_latency_seconds_sum", {"peer": peer}) == 90.0
