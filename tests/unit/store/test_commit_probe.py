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
