"""node.federation.outbox_watch: SQLite's looks at data_version back off while nothing
moves and come back to the shortest pause at the first change (next_pause); an idle
watcher then waits for the database's next write with nothing on the event loop's clock,
and a referral queued meanwhile wakes its peer's send loop."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from node.federation import outbox_watch
from node.federation.live import LiveLinks
from node.federation.outbox_watch import (
    OUTBOX_WATCH_MAX_SECONDS,
    OUTBOX_WATCH_SECONDS,
    OutboxWatch,
    next_pause,
)
from node.federation.workers import DbWorkers
from node.logs import get_logger
from node.services import complaints, links
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.support.nodes import link
from tests.support.waits import COMMAND_BOUND, DELIVERY_BOUND, wait_until_async

T = TypeVar("T")


def test_the_pause_doubles_up_to_the_longest_while_nothing_moves() -> None:
    """From the shortest, each look that finds no change doubles the pause, then it stays."""
    pauses = [OUTBOX_WATCH_SECONDS]
    for _ in range(12):
        pauses.append(next_pause(pauses[-1], moved=False))
    assert pauses[1] == 2 * OUTBOX_WATCH_SECONDS
    assert all(b == min(2 * a, OUTBOX_WATCH_MAX_SECONDS) for a, b in itertools.pairwise(pauses))
    assert pauses[-1] == OUTBOX_WATCH_MAX_SECONDS
    # An idle node looks about twice a second at most, not a hundred times.
    assert 1 / OUTBOX_WATCH_MAX_SECONDS <= 2


def test_a_change_brings_the_shortest_pause_back() -> None:
    """A row queued on an idle node is seen within the longest pause, and the looks that
    follow it are at the shortest again."""
    assert next_pause(OUTBOX_WATCH_MAX_SECONDS, moved=True) == OUTBOX_WATCH_SECONDS
    assert OUTBOX_WATCH_MAX_SECONDS < 1.0


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_an_idle_watcher_sets_no_timer_and_a_referral_wakes_the_peer(
    nodes: NodeFactory,
) -> None:
    """Once nothing has moved for a while, the SQLite watcher waits for the database's next
    write (inotify on the -wal file) with nothing on the event loop's clock, instead of
    looking every OUTBOX_WATCH_MAX_SECONDS; an operator's `complaint refer` (another
    process) then wakes the peer's send loop, without any session polling its outbox."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    link(province, nodes("id-64-02", "Kabupaten Kutai Kartanegara"))
    ctx = province.ctx()
    (tracking_id,) = complaints.submit_many(ctx, [draft(0)])
    cli = [sys.executable, "-m", "node.cli.main", "complaint", "refer", tracking_id]
    cli += ["--to", "id-64-02", "--config", str(province.config)]

    async def run() -> list[float]:
        loop = asyncio.get_running_loop()
        db = DbWorkers()
        live = LiveLinks(ctx, db, get_logger())
        watch = OutboxWatch(ctx, db, live, get_logger())
        woken = live.wake("id-64-02")
        task = asyncio.create_task(watch.run())
        timers: list[float] = []
        try:
            await wait_until_async(
                lambda: watch.waiting_for_write, what="the watcher to wait for a write"
            )
            woken.clear()
            call_at = loop.call_at

            def counted(when: float, *args: object, **kwargs: object) -> asyncio.TimerHandle:
                timers.append(when)
                return call_at(when, *args, **kwargs)  # type: ignore[arg-type]

            loop.call_at = counted  # type: ignore[method-assign]
            try:
                for _ in range(20):
                    await asyncio.sleep(0)
            finally:
                loop.call_at = call_at  # type: ignore[method-assign]
            assert watch.waiting_for_write and not woken.is_set()
            await asyncio.to_thread(subprocess.run, cli, check=True, timeout=COMMAND_BOUND)
            async with asyncio.timeout(DELIVERY_BOUND):
                await woken.wait()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            db.shutdown()
        return timers

    assert asyncio.run(run()) == []


class _CountedLooks(DbWorkers):
    """The node's database workers, counting the watcher's looks at data_version."""

    def __init__(self) -> None:
        super().__init__()
        self.looks = 0

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        if fn is outbox_watch._look:
            self.looks += 1
        return await super().read(fn, *args)


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_after_a_write_of_its_own_the_watcher_waits_again_at_once(nodes: NodeFactory) -> None:
    """A write of the node's own (the heartbeat's last seen, every K/2 on an idle node) is
    visible once its transaction ended: the watcher waits for the next write after a look
    or two, instead of looking for OUTBOX_SETTLE_SECONDS (about fifteen looks)."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    link(province, nodes("id-64-02", "Kabupaten Kutai Kartanegara"))
    ctx = province.ctx()

    async def run() -> int:
        db = _CountedLooks()
        live = LiveLinks(ctx, db, get_logger())
        watch = OutboxWatch(ctx, db, live, get_logger())
        task = asyncio.create_task(watch.run())
        try:
            await wait_until_async(
                lambda: watch.waiting_for_write, what="the watcher to wait for a write"
            )
            before = db.looks
            await asyncio.to_thread(links.heartbeat, ctx, ["id-64-02"])
            await wait_until_async(
                lambda: db.looks > before and watch.waiting_for_write,
                what="the watcher to look, then wait again",
            )
            return db.looks - before
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            db.shutdown()

    assert asyncio.run(run()) <= 3
