"""Checks that decide a write are made in the transaction that writes (issue 16, item 3;
decision 0037): a state change committed between a caller's earlier look and the act is
seen by the act, on both databases. Each test commits that change in between, as the
other writer (a second operator, a revocation, a second check) would, and shows that the
act honours it. Also: the use cases split into `_in(session, ...)` here (intake, admin)
share the caller's transaction, so what they wrote rolls back with it."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa

from node.complaints import ComplaintDraft
from node.errors import NotFoundError, PermissionDeniedError
from node.services import admin, complaints, intake, links, state_check
from node.store import queries
from tests.conftest import NodeFactory
from tests.support.nodes import link, snapshot

DRAFT = ComplaintDraft(
    title="Lampu jalan padam",
    description="Sudah dua minggu.",
    classification="pengaduan",
    category="infrastruktur",
    region_code="64.02",
    channel="walk_in",
    reporter_name="Budi",
)


def test_a_handover_by_a_credential_revoked_meanwhile_is_refused(nodes: NodeFactory) -> None:
    """Two holders of one credential hand over at once: both authenticated before either
    wrote; the second handover finds, in its own transaction, that the credential it
    presented was revoked by the first, and records nothing."""
    node = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    ctx = node.ctx()
    presented = node.directory / "shared-copy.credential"
    presented.write_text((node.directory / admin.CREDENTIAL_FILE).read_text())
    # Both callers looked first (the CLI's operator_node) ...
    assert admin.authenticate(ctx, presented).operator == admin.INIT_OPERATOR
    assert admin.authenticate(ctx, presented).operator == admin.INIT_OPERATOR
    # ... the first acts ...
    first = admin.handover(
        ctx, "Diskominfo", "Andi", node.directory / "andi.credential", presented=presented
    )
    before = snapshot(node)
    # ... and the second acts on what it saw before the first committed.
    with pytest.raises(PermissionDeniedError, match=r"was revoked on .* to Andi"):
        admin.handover(
            ctx, "Inspektorat", "Rahmat", node.directory / "rahmat.credential", presented=presented
        )
    assert snapshot(node) == before
    assert not (node.directory / "rahmat.credential").exists()
    current = admin.current(ctx)
    assert current is not None and current.operator == "Andi"
    assert current.ledger_index == first.ledger_index


def test_a_stream_marked_connected_after_a_revocation_leaves_the_link_unconnected(
    nodes: NodeFactory,
) -> None:
    """A link session checked its peer's pin, then the operator revoked the link, then the
    session marks the stream connected: the revoked row keeps no connection mark."""
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    child = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(parent, child)
    ctx = parent.ctx()
    assert [p.peer_id for p in links.pins(ctx)] == ["id-64-02"]  # the session's check
    links.revoke(ctx, "id-64-02", "wrong regency")
    links.mark_connected(ctx, "id-64-02", True)
    links.heartbeat(ctx, ["id-64-02"])
    with ctx.db.read() as session:
        row = queries.get_link(session, "id-64-02")
        assert row is not None and row.revoked_at is not None
        assert row.connected_since is None and row.last_seen_at is None
    # An active link is still marked as before.
    other = nodes("id-64-08", "Kabupaten Kutai Timur")
    link(parent, other)
    links.mark_connected(ctx, "id-64-08", True)
    with ctx.db.read() as session:
        row = queries.get_link(session, "id-64-08")
        assert row is not None and row.connected_since is not None


def test_an_older_state_check_recorded_last_does_not_hide_a_newer_one(
    nodes: NodeFactory,
) -> None:
    """A full check that read the tables before a repair (and found a difference) and is
    recorded after a newer check (that found none) is not the latest: the reports go by
    the state each check read, not by when it was written down."""
    node = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    ctx = node.ctx()
    tracking_id = complaints.submit(ctx, DRAFT)
    engine = sa.create_engine(node.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE complaints SET status = 'verified' WHERE tracking_id = :t"),
                {"t": tracking_id},
            )
        older = state_check.check_state(ctx, record=False)
        assert not older.ok
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE complaints SET status = 'submitted' WHERE tracking_id = :t"),
                {"t": tracking_id},
            )
    finally:
        engine.dispose()
    newer = state_check.check_state(ctx, record=False)
    assert newer.ok and newer.read_at >= older.read_at
    # Both read the clock in the same second on a fast machine: make the order explicit.
    older = dataclasses.replace(older, read_at=newer.read_at - dt.timedelta(seconds=1))
    state_check.record_result(ctx, newer)
    state_check.record_result(ctx, older)
    last = state_check.last_check(ctx)
    assert last is not None and last.ok and last.checked_at == newer.read_at
    assert last.warning() is None


def test_intake_and_handover_write_in_the_callers_transaction(nodes: NodeFactory) -> None:
    """`intake.accept_in` and `admin.handover_in` add nothing of their own: a caller's
    transaction that fails after them leaves neither complaint, blob, key nor handover."""
    node = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    ctx = node.ctx()
    before = snapshot(node)

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), ctx.db.write() as session:
        result = intake.accept_in(session, ctx, DRAFT)
        assert queries.get_complaint(session, result.tracking_id) is not None
        admin.handover_in(session, ctx, "Diskominfo", "Andi", admin.new_credential())
        raise Abandoned
    assert snapshot(node) == before
    with pytest.raises(NotFoundError):
        complaints.show(ctx, result.tracking_id)
    current = admin.current(ctx)
    assert current is not None and current.operator == admin.INIT_OPERATOR
