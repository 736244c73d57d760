"""node.store.queries.one_of: `column IN values` that PostgreSQL answers from the index even
under the generic plan it keeps for a statement psycopg has prepared (the bulk receive path
looks up a whole batch of message ids and tracking ids this way, several times a second)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg import sql
from sqlalchemy import select
from sqlalchemy.orm import Session

from node.store import batches
from node.store.db import Database
from node.store.models import InboxRow
from node.store.queries import one_of

AT = dt.datetime(2021, 2, 1, 9, 0, tzinfo=dt.UTC)
SENDER = "id-64"
ROWS = 3000


def _message_id(n: int) -> str:
    return f"01a227c1-b5b4-7000-8000-{n:012d}"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    with database.write() as session:
        session.add_all(
            _inbox_row(n, sender) for n in range(ROWS) for sender in (SENDER, "id-64-02")
        )
    yield database
    database.dispose()


def test_it_finds_exactly_the_values_present(db: Database) -> None:
    wanted = [_message_id(n) for n in (0, 7, ROWS - 1)] + ["absent", _message_id(ROWS + 5)]
    with db.read() as session:
        found = set(
            session.scalars(
                select(InboxRow.message_id).where(
                    InboxRow.sender == SENDER, one_of(session, InboxRow.message_id, wanted)
                )
            )
        )
        assert found == {_message_id(n) for n in (0, 7, ROWS - 1)}
        assert batches.seen_messages(session, SENDER, wanted) == found
        assert batches.seen_messages(session, SENDER, ["absent"]) == set()


BATCH = 256


def _inbox_row(n: int, sender: str = SENDER) -> InboxRow:
    return InboxRow(
        sender=sender,
        message_id=_message_id(n),
        sequence=n + 1,
        kind="referral",
        body=bytes(900),  # about a referral envelope
        key_id=bytes(32),
        signature=bytes(64),
        received_at=AT,
    )


def _kept_plan(session: Session, table: str, message_ids: list[str]) -> str:
    """EXPLAIN ANALYZE of the statement psycopg prepared on this connection that reads
    `table`, run with `message_ids`: the plan PostgreSQL keeps using for it."""
    raw: Any = session.connection().connection.driver_connection
    found = raw.execute(
        "SELECT name, statement FROM pg_prepared_statements WHERE statement LIKE %s",
        [f"%FROM {table}%"],
    ).fetchall()
    assert len(found) == 1, found
    name, statement = found[0]
    values: list[Any] = [SENDER]
    values += [message_ids] if "ANY" in statement else message_ids
    explain = sql.SQL("EXPLAIN ANALYZE EXECUTE {}({})").format(
        sql.Identifier(name), sql.SQL(", ").join(sql.Literal(v) for v in values)
    )
    return "\n".join(row[0] for row in raw.execute(explain).fetchall())


@pytest.mark.postgres
@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_postgresql_keeps_a_plan_that_probes_the_index_for_each_value(database_url: str) -> None:
    """As a node receives a backlog: each batch's message ids looked up, then the batch
    inserted, one transaction per batch, faster than autovacuum analyzes the table (it
    has no statistics here). psycopg prepares the lookup after a few runs and PostgreSQL
    settles on a plan while the table is small; that plan must still probe the index for
    each id when the table has grown. An IN list of separate parameters settled, in this
    same state, on reading every row of the sender and filtering it through the whole list
    (31 ms for this batch, growing with the table); one array parameter settles on the
    index. (With statistics both plan well: this is the state they are missing.)"""
    database = Database(database_url)
    database.upgrade()
    try:
        for batch in range(24):
            numbers = range(batch * BATCH, (batch + 1) * BATCH)
            with database.write() as session:
                wanted = [_message_id(n) for n in numbers]
                assert batches.seen_messages(session, SENDER, wanted) == set()
                session.add_all(_inbox_row(n) for n in numbers)
        with database.write() as session:
            wanted = [_message_id(n) for n in range(0, 24 * BATCH, 24)]
            assert batches.seen_messages(session, SENDER, wanted) == set(wanted)
            plan = _kept_plan(session, "inbox", wanted)
    finally:
        database.dispose()
    index_conditions = " ".join(re.findall(r"Index Cond: (.*)", plan))
    assert "message_id" in index_conditions, plan
    assert "Filter" not in plan, plan


def test_seen_pairs_are_exactly_those_in_the_inbox(db: Database) -> None:
    """seen_messages_of gives the (sender, message id) pairs asked for that the inbox holds,
    and no pair made of one's sender and another's message id."""
    asked = [
        (SENDER, _message_id(0)),
        ("id-64-02", _message_id(7)),
        (SENDER, "absent"),
        ("id-64-09", _message_id(1)),  # a message id the inbox holds, from other senders
        ("id-64-02", _message_id(ROWS + 1)),
    ]
    with db.read() as session:
        assert batches.seen_messages_of(session, asked) == set(asked[:2])
        assert batches.seen_messages_of(session, []) == set()


@pytest.mark.postgres
@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_the_kept_plan_of_the_pairs_lookup_probes_the_key_once_per_pair(db: Database) -> None:
    """The pairs lookup, once psycopg has prepared it, under the generic plan PostgreSQL
    may keep: a nested loop that probes the inbox's key once per pair asked (decision
    0043), not once per sender and message id combined."""
    senders = [f"id-64-{n:04d}" for n in range(64)]
    asked = [(s, _message_id(n)) for n, s in enumerate(senders * 4)]
    with db.read() as session:
        for _ in range(6):  # psycopg prepares a statement from its fifth run
            batches.seen_messages_of(session, asked)
        raw: Any = session.connection().connection.driver_connection
        found = raw.execute(
            "SELECT name FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%LATERAL%FROM inbox%"],
        ).fetchall()
        assert len(found) == 1, found
        raw.execute("SET plan_cache_mode = force_generic_plan")
        explain = sql.SQL("EXPLAIN ANALYZE EXECUTE {}({}, {}, 1, 1)").format(
            sql.Identifier(found[0][0]),
            sql.Literal([s for s, _ in asked]),
            sql.Literal([m for _, m in asked]),
        )
        plan = "\n".join(row[0] for row in raw.execute(explain).fetchall())
        raw.execute("RESET plan_cache_mode")
    assert "Nested Loop" in plan and "Hash" not in plan, plan
    assert re.search(rf"Index (Only )?Scan using inbox_pkey .*loops={len(asked)}\)", plan), plan
