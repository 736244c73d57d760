"""node.store.queries.insert_many writes exactly the values it is given, whichever way it
takes: on PostgreSQL one INSERT from unnest arrays for a few rows and COPY from
_PG_COPY_ROWS rows, on SQLite multi-row INSERTs. Checked by reading the rows back, with
the values COPY's text format must escape (tabs, newlines, backslashes, NUL bytes in
binary columns), NULLs, booleans, aware datetimes and text beyond ASCII."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Boolean, DateTime, Integer, LargeBinary, String, Table, select

from node.store import queries
from node.store.db import Database
from node.store.models import Complaint, LedgerEntryRow

_TRICKY = "a\tb\nc\\d\\N 'é' \"∑\" \r end"
_WHEN = dt.datetime(2021, 3, 31, 16, 59, 59, 123456, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _value(column: Any, n: int) -> object:
    """A value of `column`'s type for row n; every other row NULL where it may be."""
    if column.nullable and n % 2 and not column.primary_key:
        return None
    kind = getattr(column.type, "impl", column.type)  # a TypeDecorator: what it stores
    if isinstance(kind, Boolean):
        return n % 3 == 0
    if isinstance(kind, DateTime):
        return _WHEN + dt.timedelta(days=n, microseconds=n)
    if isinstance(kind, Integer):
        return n * 1_000_003
    if isinstance(kind, LargeBinary):
        return bytes([0, 9, 10, 13, 92, 255]) + n.to_bytes(4, "big") + b"\\x00"
    if isinstance(kind, String):
        text = f"{n}:{column.name}:{_TRICKY}"
        return text[: kind.length] if kind.length else text
    raise AssertionError(f"no test value for {column.name} ({kind})")


def _rows(table: Table, count: int, offset: int) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    names = tuple(c.name for c in table.c)
    return names, [tuple(_value(c, offset + n) for c in table.c) for n in range(count)]


def _normal(value: object) -> object:
    return value.astimezone(dt.UTC) if isinstance(value, dt.datetime) else value


@pytest.mark.parametrize("count", [1, 5, queries._PG_COPY_ROWS, 300])
def test_rows_read_back_as_written(database_url: str, count: int) -> None:
    db = Database(database_url)
    db.upgrade()
    try:
        for model, key in ((Complaint, "tracking_id"), (LedgerEntryRow, "idx")):
            table = model.__table__
            assert isinstance(table, Table)
            names, rows = _rows(table, count, offset=7)
            with db.write() as session:
                queries.insert_many(session, model, names, rows)
            with db.read() as session:
                stored = session.execute(
                    select(*(table.c[name] for name in names)).order_by(table.c[key])
                ).all()
            expected = sorted(rows, key=lambda row: row[names.index(key)])
            assert [tuple(map(_normal, row)) for row in stored] == [
                tuple(map(_normal, row)) for row in expected
            ]
    finally:
        db.dispose()


def test_a_failed_insert_leaves_nothing(database_url: str) -> None:
    """A duplicate key in a COPY-sized batch: the whole transaction rolls back."""
    db = Database(database_url)
    db.upgrade()
    try:
        table = LedgerEntryRow.__table__
        assert isinstance(table, Table)
        names, rows = _rows(table, queries._PG_COPY_ROWS + 5, offset=0)
        with (
            pytest.raises(Exception, match=r"(?i)unique|duplicate|insert-only"),
            db.write() as session,
        ):
            queries.insert_many(session, LedgerEntryRow, names, [*rows, rows[3]])
        with db.read() as session:
            assert session.execute(select(table.c.idx)).all() == []
    finally:
        db.dispose()
