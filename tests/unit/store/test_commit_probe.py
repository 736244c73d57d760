"""The outbox watcher's CommitProbe (node.store.db): its version stays put while the outbox
is left alone (reads, and on PostgreSQL other writes), moves when a row is queued by this
process or by another (an operator's CLI), and a read of the outbox made after it covers
it, on both databases."""

from __future__ import annotations

import subprocess
import sys

from node.services import checkpoints, complaints, exchange
from node.services.complaints import _refer
from node.store import queries
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.support.nodes import link


def test_the_version_moves_for_rows_queued_by_any_process(nodes: NodeFactory) -> None:
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    link(province, nodes("id-64-02", "Kabupaten Kutai Kartanegara"))
    ctx = province.ctx()
    tracking_ids = complaints.submit_many(ctx, [draft(n) for n in range(2)])
    probe = ctx.db.commit_probe()

    def looked() -> int:
        """The version now, checked to be covered by a read of the outbox made after it."""
        version = probe.version()
        top, _ = exchange.outbox_written_since(ctx, -1)
        assert probe.covered(version, top)
        return version

    try:
        first = looked()
        complaints.list_complaints(ctx)
        assert probe.version() == first
        complaints.refer(ctx, tracking_ids[0], "id-64-02")
        second = looked()
        assert second != first
        assert probe.version() == second
        cli = [sys.executable, "-m", "node.cli.main", "complaint", "refer", tracking_ids[1]]
        cli += ["--to", "id-64-02", "--config", str(province.config)]
        subprocess.run(cli, check=True, capture_output=True)
        assert looked() not in (first, second)
    finally:
        probe.close()


def test_a_read_before_the_row_commits_does_not_cover_it(nodes: NodeFactory) -> None:
    """A row queued in a transaction still open: the version may have moved (PostgreSQL's
    sequence moves at the insert), but a read made now does not count as covering it once
    the version moved; after the commit a read does."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    link(province, nodes("id-64-02", "Kabupaten Kutai Kartanegara"))
    ctx = province.ctx()
    (tracking_id,) = complaints.submit_many(ctx, [draft(0)])
    probe = ctx.db.commit_probe()
    try:
        before = probe.version()
        with ctx.db.write() as session:
            link_row = queries.get_link(session, "id-64-02", lock=True)
            assert link_row is not None
            checkpoint = checkpoints.sign_in(session, ctx)[0].note
            _refer(session, ctx, link_row, tracking_id, checkpoint)
            session.flush()
            during = probe.version()
            top, _ = exchange.outbox_written_since(ctx, -1)
            assert during == before or not probe.covered(during, top)
        after = probe.version()
        top, _ = exchange.outbox_written_since(ctx, -1)
        assert after != before and probe.covered(after, top)
    finally:
        probe.close()


_CLOSE_UNDER_READS = """
import sys, threading
from node.store.db import Database

db = Database(sys.argv[1])
failed = 0
for _ in range(int(sys.argv[2])):
    probe = db.commit_probe()
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
        timeout=60,
    )
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-2000:]}"
    assert int(run.stdout) == 2 * rounds
