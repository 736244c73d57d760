"""What the outbox watcher waits on (node.store.db): on SQLite a version (DataVersionProbe)
that stays put while the outbox is left alone and moves when a row is queued by this
process or another (an operator's CLI); on PostgreSQL a notification naming the peer,
sent when the transaction that queued the row commits (migration 0011), whichever process
made it, once per peer per transaction, and never for a transaction rolled back."""

from __future__ import annotations

import asyncio
import select
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import create_engine, text

from node.services import checkpoints, complaints, exchange, links
from node.services.context import NodeContext
from node.services.referral import _refer
from node.store import queries
from node.store.db import OUTBOX_CHANNEL
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.support.nodes import TestNode, link
from tests.support.waits import COMMAND_BOUND, DELIVERY_BOUND

SQLITE = pytest.mark.parametrize("db_kind", ["sqlite"])
POSTGRESQL = pytest.mark.parametrize(
    "db_kind", [pytest.param("postgresql", marks=pytest.mark.postgres)]
)


def _province_with_children(nodes: NodeFactory) -> TestNode:
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    link(province, nodes("id-64-02", "Kabupaten Kutai Kartanegara"))
    link(province, nodes("id-64-03", "Kabupaten Berau"))
    return province


class _HeldReferral(threading.Thread):
    """A referral queued in a write transaction that stays open until `finish` is set,
    then commits, or rolls back if `commit` is False."""

    def __init__(self, ctx: NodeContext, tracking_id: str, peer: str, *, commit: bool) -> None:
        super().__init__()
        self.ctx, self.tracking_id, self.peer, self.commit = ctx, tracking_id, peer, commit
        self.queued, self.finish = threading.Event(), threading.Event()
        self.rolled_back = False

    def run(self) -> None:
        try:
            with self.ctx.db.write() as session:
                link_row = queries.get_link(session, self.peer, lock=True)
                assert link_row is not None
                checkpoint = checkpoints.sign_in(session, self.ctx)[0].note
                _refer(session, self.ctx, link_row, self.tracking_id, checkpoint)
                session.flush()
                self.queued.set()
                self.finish.wait(DELIVERY_BOUND)
                if not self.commit:
                    raise _RollBack
        except _RollBack:
            self.rolled_back = True


class _RollBack(Exception):
    pass


@SQLITE
def test_the_version_moves_for_rows_queued_by_any_process(nodes: NodeFactory) -> None:
    province = _province_with_children(nodes)
    ctx = province.ctx()
    tracking_ids = complaints.submit_many(ctx, [draft(n) for n in range(2)])
    probe = ctx.db.data_version_probe()
    try:
        first = probe.version()
        complaints.list_complaints(ctx)
        exchange.outbox_written_since(ctx, -1)
        assert probe.version() == first  # reads leave it
        complaints.refer(ctx, tracking_ids[0], "id-64-02")
        second = probe.version()
        assert second != first
        assert probe.version() == second
        cli = [sys.executable, "-m", "node.cli.main", "complaint", "refer", tracking_ids[1]]
        cli += ["--to", "id-64-02", "--config", str(province.config)]
        subprocess.run(cli, check=True, capture_output=True)
        assert probe.version() not in (first, second)
    finally:
        probe.close()


FENCE = "-fence-"  # no node id starts with "-": only _fence sends it


def _fence(ctx: NodeContext) -> None:
    """Notify FENCE on the outbox channel in a transaction of its own: PostgreSQL delivers
    notifications in the order their transactions committed, so whatever a transaction
    committed before this one sent has been received once FENCE is."""
    # Not ctx.db.write(): that takes the node's write lock, which a _HeldReferral holds.
    engine = create_engine(ctx.db.url)
    try:
        with engine.begin() as connection:
            notify = text("SELECT pg_notify(:channel, :fence)")
            connection.execute(notify, {"channel": OUTBOX_CHANNEL, "fence": FENCE})
    finally:
        engine.dispose()


async def _until_fence(queued: AsyncIterator[str]) -> list[str]:
    """The peers notified before the next FENCE."""
    seen: list[str] = []
    async with asyncio.timeout(DELIVERY_BOUND):
        while (peer := await anext(queued)) != FENCE:
            seen.append(peer)
    return seen


def _listen(ctx: NodeContext, act: Callable[[], object]) -> list[str]:
    """The peers notified for what `act`, run on another thread, committed (up to a fence
    committed after it returned)."""

    async def run() -> list[str]:
        async with ctx.db.outbox_notifications() as queued:
            await asyncio.to_thread(act)
            await asyncio.to_thread(_fence, ctx)
            return await _until_fence(queued)

    return asyncio.run(run())


@POSTGRESQL
def test_a_commit_notifies_each_peer_it_queued_for_once(nodes: NodeFactory) -> None:
    province = _province_with_children(nodes)
    ctx = province.ctx()
    tids = complaints.submit_many(ctx, [draft(n) for n in range(6 + 2 * queries._PG_COPY_ROWS)])
    assert _listen(ctx, lambda: complaints.list_complaints(ctx)) == []
    assert _listen(ctx, lambda: complaints.refer(ctx, tids[0], "id-64-02")) == ["id-64-02"]
    # Three rows for one peer in one transaction: one notification.
    assert _listen(ctx, lambda: complaints.refer_many(ctx, tids[1:4], "id-64-03")) == ["id-64-03"]
    # Rows enough for insert_many to COPY them (a trigger fires for COPY as for INSERT).
    assert _listen(ctx, lambda: complaints.refer_many(ctx, tids[6:], "id-64-02")) == ["id-64-02"]
    cli = [sys.executable, "-m", "node.cli.main", "complaint", "refer", tids[4]]
    cli += ["--to", "id-64-02", "--config", str(province.config)]
    assert _listen(ctx, lambda: subprocess.run(cli, check=True, capture_output=True)) == [
        "id-64-02"
    ]


@POSTGRESQL
def test_nothing_is_notified_before_the_commit_nor_for_a_rollback(nodes: NodeFactory) -> None:
    province = _province_with_children(nodes)
    ctx = province.ctx()
    tids = complaints.submit_many(ctx, [draft(n) for n in range(2)])

    async def run() -> None:
        async with ctx.db.outbox_notifications() as queued:
            for tracking_id, peer, commit in (
                (tids[0], "id-64-02", True),
                (tids[1], "id-64-03", False),
            ):
                held = _HeldReferral(ctx, tracking_id, peer, commit=commit)
                held.start()
                assert await asyncio.to_thread(held.queued.wait, DELIVERY_BOUND)
                await asyncio.to_thread(_fence, ctx)
                assert await _until_fence(queued) == []  # queued, not committed
                held.finish.set()
                await asyncio.to_thread(held.join, DELIVERY_BOUND)
                assert not held.is_alive()
                await asyncio.to_thread(_fence, ctx)
                if commit:
                    assert await _until_fence(queued) == [peer]
                else:
                    assert held.rolled_back
                    assert await _until_fence(queued) == []

    asyncio.run(run())


_CLOSE_UNDER_READS = """
import sys, threading
from node.store.db import Database

db = Database(sys.argv[1])
failed = 0
for _ in range(int(sys.argv[2])):
    probe = db.data_version_probe()
    looking = [threading.Event(), threading.Event()]
    def look(n: int) -> None:
        global failed
        while True:
            try:
                probe.version()
                looking[n].set()
            except Exception:  # closed under it: a clean error, then stop
                failed += 1
                return
    threads = [threading.Thread(target=look, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for event in looking:
        event.wait()
    probe.close()
    for thread in threads:
        thread.join()
print(failed)
"""


@SQLITE
def test_closing_waits_for_a_version_read_on_another_thread(nodes: NodeFactory) -> None:
    """The watcher is cancelled while its probe reads on a reader thread, and closes the
    probe from the event loop: the close must wait, not free the connection under the
    query (with sqlite3 that killed the process with SIGSEGV). Run in a process of its own
    so that a crash is this test's failure; every look after the close fails cleanly."""
    ctx = nodes("id-64", "Provinsi Kalimantan Timur").ctx()
    rounds = 200
    run = subprocess.run(
        [sys.executable, "-c", _CLOSE_UNDER_READS, ctx.db.url, str(rounds)],
        capture_output=True,
        text=True,
        timeout=COMMAND_BOUND,
    )
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-2000:]}"
    assert int(run.stdout) == 2 * rounds


@POSTGRESQL
def test_waiting_for_a_notification_sets_no_timer(nodes: NodeFactory) -> None:
    """An idle watcher waits on its connection's socket alone (issue 20.5): while it waits,
    nothing is put on the event loop's clock (psycopg's notifies() set a 0.1 s timer at
    every wait, ten wake-ups a second), and a notification sent then still arrives."""
    ctx = nodes("id-64", "Provinsi Kalimantan Timur").ctx()

    async def run() -> tuple[list[float], str]:
        loop = asyncio.get_running_loop()
        timers: list[float] = []
        call_at = loop.call_at

        def counted(when: float, *args: object, **kwargs: object) -> asyncio.TimerHandle:
            timers.append(when)
            return call_at(when, *args, **kwargs)  # type: ignore[arg-type]

        async with ctx.db.outbox_notifications() as queued:
            waiting = asyncio.ensure_future(anext(queued))
            loop.call_at = counted  # type: ignore[method-assign]
            try:
                for _ in range(20):  # let the wait begin and settle
                    await asyncio.sleep(0)
            finally:
                loop.call_at = call_at  # type: ignore[method-assign]
            assert not waiting.done()
            await asyncio.to_thread(_fence, ctx)
            async with asyncio.timeout(DELIVERY_BOUND):
                return timers, await waiting

    timers, peer = asyncio.run(run())
    assert timers == []
    assert peer == FENCE


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


@SQLITE
def test_the_changes_descriptor_is_readable_after_a_write_by_any_process(
    nodes: NodeFactory,
) -> None:
    """The probe's changes descriptor (inotify on the -wal file) stays quiet while the
    database is only read, and is readable after a commit of this process or of another
    (an operator's CLI), until its events are taken."""
    province = _province_with_children(nodes)
    ctx = province.ctx()
    tracking_ids = complaints.submit_many(ctx, [draft(n) for n in range(2)])
    probe = ctx.db.data_version_probe()
    try:
        fd = probe.changes_fileno()
        assert fd is not None, "Linux gives the probe an inotify descriptor"
        probe.take_changes()
        complaints.list_complaints(ctx)
        exchange.outbox_written_since(ctx, -1)
        probe.version()
        assert not _readable(fd)  # reads write nothing
        complaints.refer(ctx, tracking_ids[0], "id-64-02")
        assert _readable(fd)
        assert probe.take_changes()  # it says there were events
        assert not _readable(fd)
        assert not probe.take_changes()  # ... and that there are none left
        cli = [sys.executable, "-m", "node.cli.main", "complaint", "refer", tracking_ids[1]]
        cli += ["--to", "id-64-02", "--config", str(province.config)]
        subprocess.run(cli, check=True, capture_output=True)
        assert _readable(fd)
        assert probe.take_changes()
        assert probe.changes_fileno() == fd  # the watch still covers every write
    finally:
        probe.close()


@SQLITE
def test_the_probe_tells_when_every_write_so_far_was_its_own_process_and_ended(
    nodes: NodeFactory,
) -> None:
    """all_seen: True after a write transaction of this process ended (its commit shows),
    False after another process's write (an operator's CLI: its commit may show later),
    and True again after the next write of this process's own."""
    province = _province_with_children(nodes)
    ctx = province.ctx()
    tracking_ids = complaints.submit_many(ctx, [draft(n) for n in range(2)])
    probe = ctx.db.data_version_probe()
    try:
        complaints.refer(ctx, tracking_ids[0], "id-64-02")
        assert probe.all_seen()
        complaints.list_complaints(ctx)  # reads change nothing
        assert probe.all_seen()
        cli = [sys.executable, "-m", "node.cli.main", "complaint", "refer", tracking_ids[1]]
        cli += ["--to", "id-64-02", "--config", str(province.config)]
        subprocess.run(cli, check=True, capture_output=True)
        assert not probe.all_seen()
        links.heartbeat(ctx, ["id-64-02"])
        assert probe.all_seen()
    finally:
        probe.close()
