"""The ledger table: insert-only at the database level, dense indexes, streamed reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from node.ledger.merkle import leaf_hash
from node.store import queries
from node.store.db import Database
from tests.support.databases import fresh_database

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def _append(db: Database, *entries: bytes) -> list[int]:
    with db.write() as session:
        return [queries.append_ledger_row(session, e, leaf_hash(e), NOW) for e in entries]


def _rows(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as session:
        return [
            tuple(r)
            for r in session.execute(
                text("SELECT idx, entry, leaf_hash, recorded_at FROM ledger_entries ORDER BY idx")
            ).all()
        ]


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


# Insert-only ----------------------------------------------------------------------------

REFUSED = {
    "update-entry": "UPDATE ledger_entries SET entry = :x WHERE idx = 0",
    "update-index": "UPDATE ledger_entries SET idx = 7 WHERE idx = 1",
    "update-no-change": "UPDATE ledger_entries SET leaf_hash = leaf_hash",
    "delete-one": "DELETE FROM ledger_entries WHERE idx = 1",
    "delete-all": "DELETE FROM ledger_entries",
    "upsert": "INSERT INTO ledger_entries (idx, entry, leaf_hash, recorded_at) "
    "VALUES (0, :x, :x, :at) ON CONFLICT (idx) DO UPDATE SET entry = excluded.entry",
}
REFUSED_ON_POSTGRESQL = {
    "truncate": "TRUNCATE ledger_entries",
    "truncate-with-head": "TRUNCATE ledger_entries, ledger_head",
    "truncate-cascade": "TRUNCATE ledger_entries CASCADE",
}


def test_database_refuses_changes_to_ledger_rows(db: Database) -> None:
    """The database refuses UPDATE, DELETE, upsert (PostgreSQL: TRUNCATE); rows stay unchanged."""
    _append(db, b"entry 0", b"entry 1")
    before = _rows(db)
    statements = dict(REFUSED)
    if db.dialect == "postgresql":
        statements.update(REFUSED_ON_POSTGRESQL)
    for name, sql in statements.items():
        with pytest.raises(DBAPIError, match="ledger_entries is insert-only"), db.write() as s:
            s.execute(text(sql), {"x": b"forged", "at": NOW.replace(tzinfo=None)})
        assert _rows(db) == before, name
    with db.read() as session:
        assert queries.ledger_size(session) == 2


def test_duplicate_index_is_refused(db: Database) -> None:
    """A second row with an existing index is refused by the primary key."""
    _append(db, b"entry 0")
    before = _rows(db)
    with pytest.raises(DBAPIError), db.write() as session:
        session.execute(
            text(
                "INSERT INTO ledger_entries (idx, entry, leaf_hash, recorded_at) "
                "VALUES (0, :x, :x, :at)"
            ),
            {"x": b"forged", "at": NOW.replace(tzinfo=None)},
        )
    assert _rows(db) == before


@pytest.mark.parametrize("verb", ["INSERT OR REPLACE", "REPLACE"])
def test_sqlite_refuses_replace(tmp_path: Path, verb: str) -> None:
    """INSERT OR REPLACE / REPLACE INTO an existing ledger index fails and changes nothing."""
    with fresh_database("sqlite", tmp_path) as url:
        db = Database(url)
        try:
            db.upgrade()
            _append(db, b"entry 0")
            before = _rows(db)
            try:
                with db.write() as session:
                    session.execute(
                        text(
                            f"{verb} INTO ledger_entries (idx, entry, leaf_hash, recorded_at) "
                            "VALUES (0, :x, :x, :at)"
                        ),
                        {"x": b"forged", "at": NOW.replace(tzinfo=None)},
                    )
            except DBAPIError:
                pass
            assert _rows(db) == before
        finally:
            db.dispose()


# Appending ------------------------------------------------------------------------------


def test_append_gives_dense_indexes_and_size(db: Database) -> None:
    """append_ledger_row returns 0..n-1 across transactions and ledger_size follows."""
    with db.read() as session:
        assert queries.ledger_size(session) == 0
    assert _append(db, b"a", b"b", b"c") == [0, 1, 2]
    assert _append(db, b"d") == [3]
    assert _append(db, *(b"e%d" % i for i in range(6))) == list(range(4, 10))
    with db.read() as session:
        assert queries.ledger_size(session) == 10
        rows = list(queries.iter_ledger(session))
    assert [r.idx for r in rows] == list(range(10))
    assert [r.entry for r in rows][:4] == [b"a", b"b", b"c", b"d"]
    assert all(r.leaf_hash == leaf_hash(r.entry) for r in rows)
    assert all(r.recorded_at == NOW for r in rows)


def test_rolled_back_append_leaves_no_gap(db: Database) -> None:
    """An append in a transaction that rolls back takes no index: the next append reuses it."""
    _append(db, b"a")
    with pytest.raises(RuntimeError), db.write() as session:
        assert queries.append_ledger_row(session, b"lost", leaf_hash(b"lost"), NOW) == 1
        raise RuntimeError("the change this entry records failed")
    assert _append(db, b"b") == [1]
    with db.read() as session:
        assert queries.ledger_size(session) == 2
        assert [r.entry for r in queries.iter_ledger(session)] == [b"a", b"b"]


def _count_selects(session: Session) -> list[str]:
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(session.connection(), "before_cursor_execute", before)
    return statements


# (name, start, stop, chunk, SELECTs run): a short chunk is followed by one empty read.
ITER_CASES = [
    ("all-in-chunks-of-3", 0, None, 3, 5),
    ("all-in-one-full-chunk", 0, None, 10, 2),
    ("one-short-chunk", 0, None, 1000, 2),
    ("range-in-chunks", 2, 9, 3, 3),
    ("from-start", 4, None, 4, 3),
    ("exact-range", 0, 4, 4, 1),
    ("stop-past-end", 8, 50, 5, 2),
    ("start-at-end", 10, None, 3, 1),
    ("empty-range", 5, 5, 3, 0),
]


def test_iter_ledger_streams_in_order_and_in_chunks(db: Database) -> None:
    """iter_ledger yields [start, stop) in index order, reading at most `chunk` rows a query."""
    _append(db, *(b"entry %d" % i for i in range(10)))
    for name, start, stop, chunk, queries_run in ITER_CASES:
        with db.read() as session:
            selects = _count_selects(session)
            rows = list(queries.iter_ledger(session, start, stop, chunk=chunk))
        expected = list(range(start, min(stop if stop is not None else 10, 10)))
        assert [r.idx for r in rows] == expected, name
        assert [r.entry for r in rows] == [b"entry %d" % i for i in expected], name
        assert len(selects) == queries_run, name


def test_iter_ledger_is_lazy(db: Database) -> None:
    """iter_ledger reads the next chunk only when the caller gets that far."""
    _append(db, *(b"entry %d" % i for i in range(10)))
    with db.read() as session:
        selects = _count_selects(session)
        stream = queries.iter_ledger(session, chunk=4)
        assert selects == []
        first = [next(stream) for _ in range(4)]
        assert len(selects) == 1
        next(stream)
        assert len(selects) == 2
    assert [r.idx for r in first] == [0, 1, 2, 3]
