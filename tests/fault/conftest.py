"""The fault suite's fixture: a province and a regency as real `lapor-node serve` processes,
the regency dialing its parent through a Proxy the test controls; and the checks that must
hold once every fault has healed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from node.complaints import ComplaintDraft
from node.faults import FAULT_ENV
from node.services import complaints, links
from tests.conftest import NodeFactory
from tests.fault.invariants import check_tree, quiet
from tests.support.nodes import TestNode, status_of, stop_together
from tests.support.proxy import Proxy
from tests.support.waits import recovery_bound, wait_until

# A fault has healed (or a node restarted): its link comes up again and delivers the rest.
SETTLE_SECONDS = recovery_bound()


def draft(n: int) -> ComplaintDraft:
    return ComplaintDraft(
        title=f"Jalan poros rusak {n}",
        description="Lubang besar di jalan poros Tenggarong, " * 8,
        classification="pengaduan",
        category="infrastruktur",
        region_code="64.02",
        channel="web",
        reporter_name="Siti Aminah",
        reporter_contact="081355501234",
    )


@dataclass
class Link:
    """province -> proxy -> regency: the parent, the child, and the proxy between them."""

    parent: TestNode
    child: TestNode
    proxy: Proxy

    @property
    def nodes(self) -> tuple[TestNode, TestNode]:
        return self.parent, self.child

    def start(self, node: TestNode, fault: str | None = None) -> None:
        """Start `node`'s `serve`; with `fault`, armed at that fault point (node.faults)."""
        if fault is None:
            node.start()
            return
        os.environ[FAULT_ENV] = fault
        try:
            node.start()
        finally:
            del os.environ[FAULT_ENV]

    def refer(self, n: int, start: int = 0) -> list[str]:
        """Register `n` complaints at the province and refer them to the regency (through
        the province's database, as `complaint refer` does, while it serves)."""
        ctx = self.parent.ctx()
        ids = complaints.submit_many(ctx, [draft(start + i) for i in range(n)])
        complaints.refer_many(ctx, ids, self.child.node_id)
        return list(ids)

    def connected(self) -> bool:
        return any(v.connected for v in links.list_links(self.child.ctx()))

    def settle(
        self,
        tracking_ids: list[str],
        timeout: float = SETTLE_SECONDS,
        *,
        statuses: dict[str, str] | None = None,
        updates: int = 0,
    ) -> None:
        """Wait for every outbox to drain, then check: each referral is on both sides once,
        in its status (`statuses`, default accepted) and held by the regency; nothing was
        lost or duplicated on the link; both ledgers verify and reconcile. `updates`: how
        many status updates the regency sent up."""
        ctxs = [self.parent.ctx(), self.child.ctx()]
        wait_until(lambda: quiet(ctxs), timeout=timeout, what="both outboxes to drain")
        child = self.child.node_id
        for tracking_id in tracking_ids:
            status = (statuses or {}).get(tracking_id, "accepted")
            assert status_of(self.parent, tracking_id) == (status, child), tracking_id
            assert status_of(self.child, tracking_id) == (status, child), tracking_id
        tally = check_tree(ctxs, [(self.parent.node_id, child)])
        assert tally.problems == []
        assert tally.ok
        # Each referral went down once and its receipt up once, each update up once.
        assert tally.envelopes == 2 * len(tracking_ids) + updates


@pytest.fixture
def link(nodes: NodeFactory) -> Iterator[Link]:
    """A linked province and regency, not yet started; the regency dials through a proxy."""
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    child = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    with Proxy(parent.address) as proxy:
        links.add_link(parent.ctx(), child.card(), "child")
        enrollment = parent.ctx().config.server.enrollment_address
        links.add_link(child.ctx(), parent.card(), "parent", proxy.address, enrollment)
        yield Link(parent, child, proxy)
        stop_together(child, parent)
