"""node.federation.leader on a real PostgreSQL database: the first process to try leads and
the gauges say so; another stands by, naming the leader to children; a leader that could
not renew (paused past its lease) finds the other leading, steps down, and is refused."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pytest
import structlog

from node.federation.leader import (
    LEASE_SECONDS,
    RENEW_SECONDS,
    STANDBY_MARGIN_SECONDS,
    STANDBY_MIN_SECONDS,
    Leadership,
    standby_pause,
)
from node.metrics import REGISTRY
from node.services import complaints, leadership
from node.services.context import NodeContext
from node.store.db import Database
from node.store.lease import NotLeaderError
from tests.conftest import NodeFactory
from tests.support.factories import DRAFT
from tests.support.waits import bound


@pytest.fixture
def contexts(nodes: NodeFactory, db_kind: str) -> Iterator[tuple[NodeContext, NodeContext]]:
    """Two serve processes' views of one province: the same database, their own engines."""
    if db_kind == "sqlite":
        pytest.skip("the leader lease is PostgreSQL's; on SQLite one serve holds the datadir")
    first = nodes("id-64", "Provinsi Kalimantan Timur").ctx()
    second = NodeContext(first.config, Database(first.config.database_url), first.signing_key)
    for ctx in (first, second):
        ctx.db.fence_writes()
    yield first, second
    second.close()


class Calls:
    def __init__(self) -> None:
        self.led: list[int] = []
        self.stepped_down = 0

    async def lead(self, epoch: int) -> None:
        self.led.append(epoch)

    async def step_down(self) -> None:
        self.stepped_down += 1


def test_one_leads_the_other_stands_by_and_a_superseded_leader_steps_down(
    contexts: tuple[NodeContext, NodeContext],
) -> None:
    """Rounds of two Leaderships: the first leads (gauges 1 and its epoch); the second
    names it to children; past the first's lease the second takes over, and the first's
    next round steps it down, after which its writes are refused."""
    first_ctx, second_ctx = contexts
    log = structlog.get_logger()
    a_calls, b_calls = Calls(), Calls()
    a = Leadership(first_ctx, log, a_calls.lead, a_calls.step_down)
    b = Leadership(second_ctx, log, b_calls.lead, b_calls.step_down)
    a.holder, b.holder = "host-a pid 1 (a)", "host-b pid 2 (b)"

    async def scenario() -> None:
        await a.round()
        assert a.leading and a_calls.led == [1]
        assert REGISTRY.get_sample_value("lapor_node_leader") == 1
        assert REGISTRY.get_sample_value("lapor_node_leader_epoch") == 1
        complaints.submit(first_ctx, DRAFT)  # the leader writes
        await b.round()
        assert not b.leading and b_calls.led == []
        assert "the leader is host-a pid 1 (a), epoch 1" in b.standby_message()
        with pytest.raises(NotLeaderError, match="standby"):
            complaints.submit(second_ctx, DRAFT)
        # The first is "paused": no renewal. The second takes over once the lease ends.
        deadline = asyncio.get_running_loop().time() + bound(LEASE_SECONDS)
        while not b.leading and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
            await b.round()
        assert b.leading and b_calls.led == [2]
        await a.round()  # it wakes: the renewal finds epoch 2
        assert not a.leading and a_calls.stepped_down == 1
        with pytest.raises(NotLeaderError, match="standby"):
            complaints.submit(first_ctx, DRAFT)
        complaints.submit(second_ctx, DRAFT)
        view = leadership.current(first_ctx)
        assert view is not None and (view.epoch, view.holder) == (2, b.holder)

    asyncio.run(scenario())


def _view(remaining: float) -> leadership.LeaseView:
    now = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
    return leadership.LeaseView(3, "host-a", now, now + dt.timedelta(seconds=remaining), now)


@pytest.mark.parametrize(
    ("seen", "pause"),
    [
        pytest.param(_view(1.0), 1.0 + STANDBY_MARGIN_SECONDS, id="just-after-the-lease-ends"),
        pytest.param(_view(0.0), STANDBY_MIN_SECONDS, id="expired-but-held-not-at-once"),
        pytest.param(_view(LEASE_SECONDS), RENEW_SECONDS, id="at-least-once-a-renewal-period"),
        pytest.param(None, RENEW_SECONDS, id="nothing-seen"),
    ],
)
def test_a_standby_tries_again_when_the_lease_it_saw_ends(
    seen: leadership.LeaseView | None, pause: float
) -> None:
    """A standby asks just after the lease it saw ends (on the database's clock), and at
    least every RENEW_SECONDS (a released lease is taken within that); soon but not at
    once after an attempt that found it expired and held."""
    assert standby_pause(seen) == pytest.approx(pause)


def test_a_dead_leader_is_replaced_within_the_10_seconds_promised() -> None:
    """A leader that dies just after renewing holds the lease LEASE_SECONDS more; the
    standby, which saw that lease, asks STANDBY_MARGIN_SECONDS after it ends; a takeover
    that meets a paused leader's transaction waits two lock timeouts of 0.5 s. Within 10 s
    with a second to spare for round trips; the leader renews three times a lease."""
    assert LEASE_SECONDS + STANDBY_MARGIN_SECONDS + 2 * 0.5 <= 10.0 - 1.0
    assert RENEW_SECONDS * 3 <= LEASE_SECONDS
