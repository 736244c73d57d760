"""The leader lease (node.store.lease) on a real PostgreSQL database: one epoch leads at a
time, a takeover needs an expired lease, and a fenced Database writes and signs only for the
epoch it leads, even when its transaction was open (paused) across the takeover."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import event, func, select, text

from node.services import audit, checkpoints, complaints, leadership
from node.services.context import NodeContext
from node.store.db import (
    IDLE_IN_TRANSACTION_SECONDS,
    WRITE_LOCK,
    Database,
    DatabaseUnavailableError,
)
from node.store.lease import NotLeaderError
from node.store.models import Complaint
from tests.conftest import NodeFactory
from tests.support.factories import DRAFT
from tests.support.waits import bound, wait_until

NOTE_CHECK = (
    "INSERT INTO state_checks (checked_at, scope, complaints, differences, summary) "
    "VALUES (now(), 'all', 0, 0, 'paused')"
)
TTL = 1.0  # seconds: short leases, so expiry is quick to wait for


@pytest.fixture
def ctx(nodes: NodeFactory, db_kind: str) -> Iterator[NodeContext]:
    if db_kind == "sqlite":
        pytest.skip(
            "the leader lease is PostgreSQL's; on SQLite one serve holds the data directory"
        )
    yield nodes("id-64", "Provinsi Kalimantan Timur").ctx()


@pytest.fixture
def other(ctx: NodeContext) -> Iterator[NodeContext]:
    """A second serve process's view of the same node: its own engines, same database."""
    second = NodeContext(ctx.config, Database(ctx.config.database_url), ctx.signing_key)
    yield second
    second.close()


def _expire(ctx: NodeContext) -> None:
    wait_until(lambda: not leadership.current(ctx).live, what="the lease to expire")  # type: ignore[union-attr]


def _complaints(ctx: NodeContext) -> int:
    with ctx.db.read() as session:
        return int(session.execute(select(func.count()).select_from(Complaint)).scalar_one())


def test_one_epoch_leads_and_a_takeover_needs_an_expired_lease(
    ctx: NodeContext, other: NodeContext
) -> None:
    """Epochs grow by one per takeover; a live lease cannot be taken; renewal is by epoch."""
    first = leadership.take_over(ctx, "a", TTL)
    assert first is not None
    assert leadership.take_over(other, "b", TTL) is None
    assert leadership.renew(ctx, first, TTL)
    _expire(ctx)
    second = leadership.take_over(other, "b", TTL)
    assert second == first + 1
    assert not leadership.renew(ctx, first, TTL)
    view = leadership.current(ctx)
    assert view is not None and (view.epoch, view.holder) == (second, "b")
    assert leadership.describe(view).startswith("leader: b (epoch")


def test_a_standby_and_a_superseded_leader_neither_write_nor_sign(
    ctx: NodeContext, other: NodeContext
) -> None:
    """Fenced writes: refused on a standby, allowed for the live epoch, refused (nothing
    committed, no checkpoint signed) once another process took over."""
    ctx.db.fence_writes()
    with pytest.raises(NotLeaderError, match="standby"):
        complaints.submit(ctx, DRAFT)
    epoch = leadership.take_over(ctx, "a", TTL)
    ctx.db.lead(epoch)
    complaints.submit(ctx, DRAFT)
    signed_before = audit.head(ctx).checkpoint
    _expire(ctx)
    assert leadership.take_over(other, "b", 30) is not None
    with pytest.raises(NotLeaderError, match="took over"):
        complaints.submit(ctx, DRAFT)
    with pytest.raises(NotLeaderError):
        checkpoints.sign(ctx)
    assert _complaints(ctx) == 1
    assert audit.head(ctx).checkpoint == signed_before
    complaints.submit(other, DRAFT)  # an unfenced writer (the CLI) still writes


def test_a_paused_leaders_open_transaction_neither_blocks_the_takeover_nor_commits(
    ctx: NodeContext, other: NodeContext
) -> None:
    """A leader paused inside a write transaction (holding the lease FOR KEY SHARE) past
    its lease: the takeover ends its session and completes; its commit then fails."""
    ctx.db.fence_writes()
    epoch = leadership.take_over(ctx, "a", TTL)
    ctx.db.lead(epoch)
    inside, resume = threading.Event(), threading.Event()
    outcome: list[BaseException | None] = []

    def paused_writer() -> None:
        try:
            with ctx.db.write() as session:
                session.execute(text(NOTE_CHECK))
                inside.set()
                resume.wait(60)
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    writer = threading.Thread(target=paused_writer)
    writer.start()
    assert inside.wait(bound(1))
    _expire(ctx)
    started = time.monotonic()
    taken = None
    while taken is None and time.monotonic() - started < bound(IDLE_IN_TRANSACTION_SECONDS):
        taken = leadership.take_over(other, "b", 30)
    took = time.monotonic() - started
    resume.set()
    writer.join(bound(1))
    assert taken == epoch + 1  # type: ignore[operator]
    assert took < IDLE_IN_TRANSACTION_SECONDS, f"the takeover waited {took:.1f}s"
    assert isinstance(outcome[0], DatabaseUnavailableError), outcome
    assert outcome[0].committed is None  # lost during COMMIT: never retried blindly
    with other.db.read() as session:
        assert session.execute(text("SELECT count(*) FROM state_checks")).scalar_one() == 0


def test_a_renewal_waits_for_no_reader_and_no_writer(ctx: NodeContext) -> None:
    """With every connection of the readers' pool held (1,200 links reading) and a write
    transaction open (a group commit): the lease is renewed at once, on its own connection."""
    epoch = leadership.take_over(ctx, "a", 30.0)
    assert epoch is not None
    ctx.db.lead(epoch)
    engine = ctx.db._reader
    held = [engine.connect() for _ in range(engine.pool.size() + engine.pool._max_overflow)]  # type: ignore[attr-defined]
    writing, done = threading.Event(), threading.Event()

    def write() -> None:
        with ctx.db.write() as session:
            session.execute(text("SELECT 1"))
            writing.set()
            done.wait(30)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert writing.wait(10)
        renewed: list[bool] = []
        renewal = threading.Thread(
            target=lambda: renewed.append(leadership.renew(ctx, epoch, 30.0))
        )
        renewal.start()
        renewal.join(5)
        assert renewed == [True]
    finally:
        done.set()
        writer.join(30)
        for conn in held:
            conn.close()


def test_a_leaders_write_checks_its_lease_and_takes_the_write_lock_in_one_statement(
    ctx: NodeContext, other: NodeContext
) -> None:
    """A leader's write transaction opens with one statement that checks the lease and
    takes the write lock (decision 0043: one round trip, not two); while it is open,
    another writer cannot take the write lock."""
    epoch = leadership.take_over(ctx, "a", 30.0)
    assert epoch is not None
    ctx.db.fence_writes()
    ctx.db.lead(epoch)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(ctx.db._writer, "before_cursor_execute", seen)
    try:
        with ctx.db.write() as session:
            session.execute(text("SELECT 1"))
            with other.db._writer.connect() as conn:
                taken = conn.execute(
                    text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": WRITE_LOCK}
                ).scalar_one()
                conn.rollback()
    finally:
        event.remove(ctx.db._writer, "before_cursor_execute", seen)
    assert len(statements) == 2, statements
    assert "leader_lease" in statements[0] and "pg_advisory_xact_lock" in statements[0]
    assert taken is False
