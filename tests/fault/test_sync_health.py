"""Operators see each link's sync health: `link list` and the Prometheus gauges of a real
`serve` process show connected or not, last seen, outbox depth, lag in messages and in
seconds, and the last error."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from node.services import links
from tests.fault.conftest import Link
from tests.support.nodes import TestNode, free_port
from tests.support.waits import bound, gauges_bound, reconnect_bound, wait_until

pytestmark = [pytest.mark.slow]


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite")])
def db_kind(request: pytest.FixtureRequest) -> str:
    """The figures come from the same queries on both kinds of database; SQLite alone keeps
    the suite's wall time small."""
    return str(request.param)


def enable_metrics(node: TestNode) -> int:
    port = free_port()
    text = node.config.read_text()
    assert 'listen: ""' in text
    node.config.write_text(text.replace('listen: ""', f'listen: "127.0.0.1:{port}"', 1))
    return port


def gauges(port: int, peer: str) -> dict[str, float]:
    """The lapor_node_link_* samples for `peer`, by name without the prefix."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=bound()) as response:
        body = response.read().decode()
    pattern = rf'^lapor_node_link_(\w+)\{{peer="{re.escape(peer)}"\}} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, body, re.MULTILINE)}


def test_link_health_in_link_list_and_metrics(link: Link) -> None:
    """A child that is down shows as lag (messages and seconds); once it connects, as caught up."""
    port = enable_metrics(link.parent)
    child = link.child.node_id
    link.start(link.parent)
    link.refer(3)
    lagging = wait_until(
        lambda: (g := gauges(port, child)).get("outbox_depth") == 3 and g["lag_seconds"] > 0 and g,
        timeout=gauges_bound(),
        what="the gauges to show the queued referrals",
    )
    assert lagging["connected"] == 0
    assert lagging["lag_messages"] == 3
    assert lagging["last_seen_timestamp_seconds"] == 0

    rows = json.loads(link.parent.cli("link", "list", "--json").stdout)
    row = next(r for r in rows if r["peer_id"] == child)
    assert (row["state"], row["connected"], row["outbox_depth"], row["lag_messages"]) == (
        "never connected",
        False,
        3,
        3,
    )
    assert row["lag_seconds"] > 0
    assert "3 msg" in link.parent.cli("link", "list").stdout

    link.start(link.child)
    caught_up = wait_until(
        lambda: (g := gauges(port, child)).get("connected") == 1 and g["outbox_depth"] == 0 and g,
        timeout=gauges_bound() + reconnect_bound(),
        what="the gauges to show the child connected and caught up",
    )
    assert caught_up["lag_messages"] == 0
    assert caught_up["lag_seconds"] == 0
    assert caught_up["last_seen_timestamp_seconds"] > 0

    link.proxy.cut()  # the child now cannot reach its parent: it says why
    wait_until(
        lambda: links.list_links(link.child.ctx())[0].last_error,
        timeout=reconnect_bound(),
        what="the child to record why its link is down",
    )
    wait_until(
        lambda: gauges(port, child).get("connected") == 0,
        timeout=gauges_bound(),
        what="the parent to see it go",
    )
