"""Two `serve` processes of one province on one PostgreSQL database, a regency dialing them
through a round-robin balancer: exactly one leads (the lease); when it dies (SIGKILL) the
other leads within 10 s and the regency relinks through it; when it is paused (SIGSTOP)
past its lease, the other takes over, and the paused one, resumed, steps down without a
write: nothing lost or duplicated, both ledgers verify and reconcile (no fork)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from node.federation.leader import LEASE_SECONDS, RENEW_SECONDS
from node.services import links
from tests.conftest import NodeFactory
from tests.fault.conftest import Link
from tests.support.ha import Balancer, leader_pid, standby_of
from tests.support.nodes import TestNode, status_of
from tests.support.waits import bound, holds_throughout, wait_until

pytestmark = [pytest.mark.slow]

TAKEOVER_SECONDS = 10.0  # the brief's promise: a standby leads within 10 s of the death


@dataclass
class Pair:
    first: TestNode
    second: TestNode
    link: Link  # its parent: whichever of the two the test reads the database through

    def leads(self, node: TestNode) -> bool:
        return node.process is not None and leader_pid(self.first) == node.process.pid


@pytest.fixture
def pair(nodes: NodeFactory, db_kind: str, tmp_path: Path) -> Iterator[Pair]:
    if db_kind == "sqlite":
        pytest.skip("the leader lease is PostgreSQL's; on SQLite one serve holds the datadir")
    first = nodes("id-64", "Provinsi Kalimantan Timur")
    child = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    second = standby_of(first, tmp_path / "id-64-b")
    with Balancer([first.address, second.address]) as balancer:
        links.add_link(first.ctx(), child.card(), "child")
        enrollment = first.ctx().config.server.enrollment_address
        links.add_link(child.ctx(), first.card(), "parent", balancer.address, enrollment)
        yield Pair(first, second, Link(first, child, balancer))
        for node in (child, first, second):
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGCONT)
            node.stop()
        second.close()


def _start_both(pair: Pair) -> list[str]:
    """The first leads, the second stands by, the regency links and takes 3 referrals."""
    pair.first.start()
    wait_until(lambda: pair.leads(pair.first), what="the first serve to lead")
    pair.second.start()
    pair.link.child.start()
    wait_until(pair.link.connected, timeout=bound(LEASE_SECONDS), what="the regency's link")
    listed = pair.second.cli("link", "list").stdout
    assert f"pid {pair.first.process.pid}" in listed and "epoch 1" in listed  # type: ignore[union-attr]
    ids = pair.link.refer(3)
    child = pair.link.child
    wait_until(lambda: all(status_of(child, t) for t in ids), what="the first referrals")
    return ids


def _took_over(pair: Pair, node: TestNode, since: float) -> float:
    wait_until(
        lambda: pair.leads(node),
        timeout=bound(LEASE_SECONDS, RENEW_SECONDS),
        what=f"{node.directory.name} to lead",
    )
    took = time.monotonic() - since
    assert took <= TAKEOVER_SECONDS, f"the standby led {took:.1f}s after the leader stopped"
    return took


def _events(node: TestNode) -> list[str]:
    found = []
    for line in node.log_path.read_text().splitlines():
        try:
            found.append(json.loads(line).get("event", ""))
        except json.JSONDecodeError:
            continue
    return found


def test_a_killed_leader_is_replaced_within_10s_and_the_child_relinks(pair: Pair) -> None:
    """SIGKILL the leading serve: the standby leads within 10 s; the regency relinks through
    the balancer and every referral (before and after) arrives once."""
    ids = _start_both(pair)
    pair.first.kill()
    _took_over(pair, pair.second, time.monotonic())
    ids += pair.link.refer(3, start=len(ids))
    pair.link.settle(ids)


def test_a_paused_leader_resumed_after_the_takeover_steps_down_without_a_fork(
    pair: Pair,
) -> None:
    """SIGSTOP the leader with referrals in flight; the standby takes over; SIGCONT: the old
    leader steps down and the lease stays with the new one; nothing is lost, duplicated or
    forked (both ledgers verify and reconcile)."""
    ids = _start_both(pair)
    ids += pair.link.refer(5, start=len(ids))
    assert pair.first.process is not None
    pair.first.process.send_signal(signal.SIGSTOP)
    _took_over(pair, pair.second, time.monotonic())
    ids += pair.link.refer(3, start=len(ids))
    child = pair.link.child
    wait_until(
        lambda: all(status_of(child, t) for t in ids),
        timeout=bound(LEASE_SECONDS, 20),
        what="referrals through the new leader",
    )
    pair.first.process.send_signal(signal.SIGCONT)
    wait_until(
        lambda: "leader.stepped_down" in _events(pair.first),
        timeout=bound(RENEW_SECONDS),
        what="the resumed leader to step down",
    )
    holds_throughout(
        lambda: pair.leads(pair.second), 2 * RENEW_SECONDS, what="the new leader's lease"
    )
    ids += pair.link.refer(2, start=len(ids))
    pair.link.settle(ids)
