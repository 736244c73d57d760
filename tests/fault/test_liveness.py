"""A network black hole between a regency and its province (a proxy that stops forwarding
but keeps both sockets open): both sides stop calling the link connected within the bound
that federation.keepalive_seconds sets (node.federation.liveness), `last seen` stays at the
peer's last traffic, the connected gauge follows, and the link works again once the
network heals."""

from __future__ import annotations

import datetime as dt
import re
import urllib.request
from collections.abc import Iterator

import pytest

from node.federation.liveness import Liveness
from node.metrics import LINK_GAUGES_SECONDS
from node.services import links
from tests.conftest import NodeFactory
from tests.fault.conftest import Link
from tests.support.frozen import FreezableProxy
from tests.support.nodes import TestNode, configure, free_port, stop_together, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

KEEPALIVE_SECONDS = 6  # small, so the test is short: a silent peer is noticed in ~4 s
MARGIN = 15.0  # seconds on top of each configured bound, for a busy machine


@pytest.fixture
def frozen_link(nodes: NodeFactory) -> Iterator[tuple[Link, FreezableProxy, int]]:
    """A province and a regency dialing it through a FreezableProxy; the province serves
    metrics on the returned port."""
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    child = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    metrics_port = free_port()
    for node in (parent, child):
        configure(node, keepalive_seconds=KEEPALIVE_SECONDS)
    text = parent.config.read_text().replace(
        'metrics:\n  listen: ""', f'metrics:\n  listen: "127.0.0.1:{metrics_port}"'
    )
    assert f"127.0.0.1:{metrics_port}" in text
    parent.config.write_text(text)
    with FreezableProxy(parent.address) as proxy:
        links.add_link(parent.ctx(), child.card(), "child")
        enrollment = parent.ctx().config.server.enrollment_address
        links.add_link(child.ctx(), parent.card(), "parent", proxy.address, enrollment)
        yield Link(parent, child, proxy), proxy, metrics_port
        stop_together(child, parent)


def _view(node: TestNode) -> links.LinkView:
    (view,) = links.list_links(node.ctx())
    return view


def _gauge(port: int, peer: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = re.search(
        rf'^lapor_node_link_connected\{{[^}}]*peer="{peer}"[^}}]*\}} (\S+)$', text, re.M
    )
    return None if found is None else float(found.group(1))


def _beats_heard(node: TestNode, liveness: Liveness) -> bool:
    """A bookkeeping round two beats after the Hello found traffic since the round
    before: the peer's heartbeat (an idle link carries nothing else)."""
    view = _view(node)
    after = dt.timedelta(seconds=2 * liveness.beat_seconds)
    return (
        view.connected
        and view.connected_since is not None
        and view.last_seen_at is not None
        and view.last_seen_at >= view.connected_since + after
    )


def test_a_black_hole_is_noticed_on_both_sides_and_heals(
    frozen_link: tuple[Link, FreezableProxy, int],
) -> None:
    """Within the liveness bound both sides say not connected (the parent used to keep
    saying connected, last seen 0 s ago, for as long as the black hole lasted)."""
    link, proxy, metrics_port = frozen_link
    parent, child = link.parent, link.child
    federation = child.ctx().config.federation
    liveness = Liveness(federation.keepalive_seconds)
    # Noticing, plus the runtime's bookkeeping rounds (last seen, the gauges).
    notice = liveness.detection_bound_seconds + liveness.beat_seconds + LINK_GAUGES_SECONDS
    redial = federation.reconnect_max_ms / 1000 + federation.connect_timeout_ms / 1000

    link.start(parent)
    link.start(child)
    wait_until(
        lambda: _view(parent).connected and _view(child).connected,
        timeout=redial + MARGIN,
        what="both sides to see the link up",
    )
    wait_until(
        lambda: _gauge(metrics_port, child.node_id) == 1.0,
        timeout=LINK_GAUGES_SECONDS + MARGIN,
        what="the connected gauge to say 1",
    )

    # Each side has heard the other's heartbeat (a bookkeeping round wrote last seen past
    # the Hello): from here on silence is noticed by the heartbeat, not only by pings.
    for node in (parent, child):
        wait_until(
            lambda node=node: _beats_heard(node, liveness),
            timeout=4 * liveness.beat_seconds + MARGIN,
            what=f"{node.node_id} to hear its peer's heartbeat",
        )
    frozen_at = dt.datetime.now(dt.UTC)
    proxy.freeze()
    wait_until(
        lambda: not _view(parent).connected,
        timeout=notice + MARGIN,
        what="the province to see its child silent",
    )
    wait_until(
        lambda: not _view(child).connected,
        timeout=notice + MARGIN,
        what="the regency to see its parent silent",
    )
    wait_until(
        lambda: _gauge(metrics_port, child.node_id) == 0.0,
        timeout=LINK_GAUGES_SECONDS + MARGIN,
        what="the connected gauge to follow",
    )
    # Last seen is the child's last traffic, written at the bookkeeping round after it: it
    # stops before the session was cut off for silence (silence_seconds after the freeze)
    # plus that one round, where a refresh by a timer of our own would go on to the cut-off
    # and past it. (Not a tighter bound: a busy machine delays the round itself.)
    seen = _view(parent).last_seen_at
    assert seen is not None
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=dt.UTC)
    after_freeze = liveness.silence_seconds + liveness.beat_seconds
    assert seen <= frozen_at + dt.timedelta(seconds=after_freeze)
    assert _view(parent).state == "not connected"

    proxy.thaw()
    wait_until(
        lambda: _view(parent).connected and _view(child).connected,
        timeout=redial + notice + MARGIN,
        what="the link to come back after the black hole",
    )
    ids = link.refer(3)
    link.settle(ids)
