"""Both nodes are killed while referrals, status updates and resolutions are in flight, and
restart from their databases alone (configuration and keys, nothing else of the old run):
every message takes effect once, both ledgers verify and reconcile."""

from __future__ import annotations

import shutil

import pytest

from node.services import lifecycle
from tests.fault.conftest import Link
from tests.fault.test_network import committed, start_connected
from tests.support.nodes import TestNode, wait_until

pytestmark = [pytest.mark.slow]

KEEP = {"node.yaml", "keys", "operator.credential"}


def wipe_all_but_database(node: TestNode) -> None:
    """Leave only what a restore from backup brings back besides the database itself."""
    for path in node.directory.iterdir():
        if path.name in KEEP:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def test_nodes_restarted_from_their_databases_alone(link: Link) -> None:
    """SIGKILL both nodes with updates and referrals queued; restart from the databases."""
    start_connected(link)
    ids = link.refer(6)
    wait_until(lambda: committed(link) == len(ids), what="the referrals")
    child = link.child.ctx()
    for tracking_id in ids[:4]:
        lifecycle.follow_up(child, tracking_id, "Tim sudah turun ke lokasi")
    for tracking_id in ids[:2]:
        lifecycle.resolve(child, tracking_id, "Jalan sudah ditambal")
    ids += link.refer(4, start=len(ids))  # more referrals racing the updates
    link.child.kill()
    link.parent.kill()
    for node in link.nodes:
        wipe_all_but_database(node)
    ids += link.refer(2, start=len(ids))  # and a backlog made while both are down
    link.start(link.parent)
    link.start(link.child)
    statuses = {t: "in_progress" for t in ids[2:4]} | {t: "resolved" for t in ids[:2]}
    link.settle(ids, statuses=statuses, updates=6)
