"""node.services.monitoring on both databases: a receipt's delivery latency (queued to
receipt) is observed on both receive paths, once; the grace-end gauge follows rotations."""

from __future__ import annotations

import datetime as dt

from node.metrics import REGISTRY
from node.services import complaints, monitoring, rotation
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.support.nodes import hand_over, link


def _deliveries(peer: str) -> tuple[float, float]:
    """(count, sum) of lapor_node_delivery_latency_seconds for `peer`, 0 before any."""
    labels = {"peer": peer}
    count = REGISTRY.get_sample_value("lapor_node_delivery_latency_seconds_count", labels)
    total = REGISTRY.get_sample_value("lapor_node_delivery_latency_seconds_sum", labels)
    return count or 0.0, total or 0.0


def test_receipts_observe_delivery_latency_on_both_paths(nodes: NodeFactory) -> None:
    """Receipts taken in bulk (a province's own referrals) and one at a time (a referral it
    passed on from national, whose status goes on up) each count once, at commit; a
    redelivered batch counts nothing more."""
    national = nodes("id", "Nasional")
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(national, province)
    link(province, regency)
    n, p, r = national.ctx(), province.ctx(), regency.ctx()
    before = _deliveries(r.node_id)

    own = complaints.submit_many(p, [draft(i) for i in range(3)])  # bulk path
    passed_on = complaints.submit_many(n, [draft(10)])  # per-envelope path at the province
    complaints.refer_many(n, passed_on, p.node_id)
    assert hand_over(national, province).error is None
    complaints.refer_many(p, [*own, *passed_on], r.node_id)
    assert hand_over(province, regency).error is None
    assert _deliveries(r.node_id) == before  # nothing until the receipts arrive

    result = hand_over(regency, province)
    assert (result.error, result.applied) == (None, 4)
    count, total = _deliveries(r.node_id)
    assert count - before[0] == 4
    assert total >= before[1]
    assert hand_over(regency, province).applied == 0  # already acknowledged: nothing new
    assert _deliveries(r.node_id)[0] - before[0] == 4


def test_grace_end_gauge_follows_a_rotation(nodes: NodeFactory) -> None:
    """After `keys rotate`, this node's retired certificate has a grace-end series at the
    rotation's end; once the grace has passed the series is gone."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    ctx = node.ctx()
    rotated = rotation.rotate(ctx, dt.timedelta(days=2))
    monitoring.refresh_key_graces(ctx)
    labels = {"certificate": "own", "peer": ""}
    value = REGISTRY.get_sample_value("lapor_node_key_grace_end_timestamp_seconds", labels)
    assert value == rotated.old_tls_valid_until.timestamp()
    with ctx.db.read() as session:
        later = rotated.old_tls_valid_until + dt.timedelta(seconds=1)
        assert monitoring.grace_ends(session, later) == {}


def test_init_peers_covers_linked_and_expected_children(nodes: NodeFactory) -> None:
    """init_peers creates the per-peer series for linked peers."""
    parent = nodes("id-65", "Provinsi Kalimantan Utara")
    child = nodes("id-65-01", "Kabupaten Malinau")
    link(parent, child)
    monitoring.init_peers(parent.ctx())
    labels = {"peer": "id-65-01", "kind": "rollback"}
    assert REGISTRY.get_sample_value("lapor_node_peer_forks_total", labels) == 0
