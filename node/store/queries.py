"""Every query lapor-node runs. Services call these with a Session from Database.write()
or Database.read(); nothing outside store/ builds SQL."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    Insert,
    LargeBinary,
    Table,
    any_,
    bindparam,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from node.errors import ValidationError
from node.store.models import (
    Base,
    Complaint,
    ComplaintContentRow,
    ComplaintEvent,
    Counter,
    InboxRow,
    LedgerEntryRow,
    LedgerHead,
    LedgerTrustEntryRow,
    Link,
    OutboxRow,
)

__all__ = [
    "OutboxItem",
    "acknowledge_outbox",
    "add",
    "append_ledger_row",
    "append_ledger_rows",
    "complaint_content",
    "complaint_events",
    "complaints_for_update",
    "get_complaint",
    "get_inbox",
    "get_link",
    "get_outbox",
    "held_link",
    "insert_many",
    "iter_ledger",
    "ledger_size",
    "links_for_update",
    "list_complaints",
    "list_links",
    "next_counter",
    "next_out_sequences",
    "outbox_after",
    "outbox_by_message",
    "outbox_depth",
    "trust_entries",
    "update_returning",
]


def add(session: Session, *rows: object, flush: bool = False) -> None:
    """Stage rows for insert; `flush=True` when the caller needs generated ids now."""
    session.add_all(rows)
    if flush:
        session.flush()


# Links ---------------------------------------------------------------------------------


def get_link(session: Session, peer_id: str, *, lock: bool = False) -> Link | None:
    stmt = select(Link).where(Link.peer_id == peer_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def held_link(session: Session, peer_id: str) -> Link | None:
    """The link with `peer_id` if this session holds it already (read, and locked, earlier
    in its transaction: links_for_update), without reading it again; else None."""
    held = session.identity_map.get(identity_key(Link, peer_id))
    return held if isinstance(held, Link) else None


def links_for_update(session: Session, peer_ids: Iterable[str]) -> dict[str, Link]:
    """The links with these peers that exist, by peer id, locked until commit (as get_link
    with lock=True), in one statement: the links of a group commit (services.group_receive)."""
    wanted = list(dict.fromkeys(peer_ids))
    if not wanted:
        return {}
    stmt = select(Link).where(one_of(session, Link.peer_id, wanted)).with_for_update()
    return {link.peer_id: link for link in session.execute(stmt).scalars()}


def list_links(
    session: Session, *, active_only: bool = False, lock: bool = False
) -> Sequence[Link]:
    """The links, by role and peer; with `lock`, locked until the transaction ends."""
    stmt = select(Link).order_by(Link.role, Link.peer_id)
    if active_only:
        stmt = stmt.where(Link.revoked_at.is_(None))
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalars().all()


# Counters and the ledger ---------------------------------------------------------------


def next_counter(session: Session, name: str, count: int = 1) -> int:
    """Advance counter `name` by `count` and return the first of those `count` values (the
    first ever is 1), locking the counter until commit."""
    row = session.execute(
        select(Counter).where(Counter.name == name).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        add(session, Counter(name=name, value=count))
        return 1
    first = row.value + 1
    row.value += count
    session.flush()
    return first


def append_ledger_row(session: Session, entry: bytes, leaf_hash: bytes, at: dt.datetime) -> int:
    """Insert the next ledger row and return its index; the head row is locked until commit."""
    head = session.execute(
        select(LedgerHead).where(LedgerHead.id == 1).with_for_update()
    ).scalar_one()
    index = head.size
    session.add(LedgerEntryRow(idx=index, entry=entry, leaf_hash=leaf_hash, recorded_at=at))
    head.size = index + 1
    session.flush()
    return index


def append_ledger_rows(
    session: Session,
    start: int,
    rows: Sequence[tuple[bytes, bytes]],
    at: dt.datetime,
    trust: Sequence[int] = (),
) -> None:
    """Insert ledger rows `start`, `start` + 1, ... from (entry, leaf hash) pairs in bulk
    (`insert_many`); the indexes in `trust` (entries of a trust kind, node.services.trust)
    are also written to ledger_trust_entries.

    The caller moved the head past them in this transaction (node.store.tree.advance_head),
    which returned `start` and holds the head's lock until commit.
    """
    if not rows:
        return
    insert_many(
        session,
        LedgerEntryRow,
        ("idx", "entry", "leaf_hash", "recorded_at"),
        [(start + n, entry, leaf, at) for n, (entry, leaf) in enumerate(rows)],
    )
    insert_many(session, LedgerTrustEntryRow, ("idx",), [(idx,) for idx in trust])


def insert_many(
    session: Session, model: type[Base], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT `rows` (values in the order of `columns`) into `model`'s table, in bulk.

    SQLAlchemy's own executemany (`session.execute(insert(model), dicts)`) handles each
    row's parameters in Python, which costs more than the insert itself (measured when
    record_many was written: the batched ledger append ran at less than half the rate
    with it), so:

    - PostgreSQL: from _PG_COPY_ROWS rows, COPY ... FROM STDIN on the session's own
      connection (psycopg writes each row in C; the unnest arrays below were dumped value
      by value in Python, 12% of a regency draining a backlog); fewer rows, one INSERT ...
      SELECT FROM unnest(one array per column), bound by SQLAlchemy, in one round trip
      (psycopg's executemany would send one statement per row). Either way each value
      goes through its column type's bind processor first, as SQLAlchemy would;
    - SQLite: Core's insert() compiled for the dialect with as many rows per statement as
      _SQLITE_PARAMETERS allows (SQLite still runs its insert-only triggers per row, but
      prepares and steps far less), the rest with a one-row executemany; each value
      goes through its column type's bind processor as SQLAlchemy would (a value that
      repeats in its column, like a batch's one timestamp, is processed once);
    - any other dialect: SQLAlchemy's executemany.
    """
    if not rows:
        return
    table = cast(Table, model.__table__)
    names = tuple(columns)
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        if len(rows) < _PG_COPY_ROWS:
            arrays = zip(names, zip(*rows, strict=True), strict=True)
            session.execute(_unnest_insert(table, names), {name: list(v) for name, v in arrays})
            return
        copy_sql, processors = _pg_copy(table, names, dialect)
        params = _bound(rows, processors)
        driver = connection.connection.driver_connection  # psycopg's, in our transaction
        with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:  # type: ignore[union-attr]
            for row in params:
                copy.write_row(row)
        return
    if dialect.name != "sqlite":
        session.execute(insert(table), [dict(zip(names, row, strict=True)) for row in rows])
        return
    one_row, many_rows, per_statement, processors = _sqlite_insert(table, names, dialect)
    params = _bound(rows, processors)
    whole = len(params) - len(params) % per_statement
    for first in range(0, whole, per_statement):
        flat = tuple(itertools.chain.from_iterable(params[first : first + per_statement]))
        connection.exec_driver_sql(many_rows, flat)
    if whole < len(params):
        connection.exec_driver_sql(one_row, [tuple(row) for row in params[whole:]])


_PG_COPY_ROWS = 32
"""From this many rows insert_many uses COPY on PostgreSQL (it takes a round trip more
than one INSERT, so a handful of rows goes faster without it)."""


def _bound(
    rows: Sequence[Sequence[Any]], processors: Sequence[tuple[int, Callable[[Any], Any]]]
) -> Sequence[Sequence[Any]]:
    """`rows` with each value passed through its column's bind processor (by position)."""
    if not processors:
        return rows
    values = list(zip(*rows, strict=True))
    for position, process in processors:
        values[position] = tuple(_processed(process, values[position]))
    return list(zip(*values, strict=True))


def _bind_processors(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """The columns' bind processors by position. Binary columns get none: both drivers take
    bytes as they are, and SQLAlchemy's processor only wraps them first (for sqlite3 in a
    memoryview), which costs and changes nothing."""
    processors = []
    for position, name in enumerate(columns):
        column_type = table.c[name].type
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None and not isinstance(column_type, LargeBinary):
            processors.append((position, process))
    return tuple(processors)


@functools.lru_cache(maxsize=16)
def _pg_copy(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[str, tuple[tuple[int, Callable[[Any], Any]], ...]]:
    """(COPY table (columns) FROM STDIN, the columns' bind processors by position)."""
    quote = dialect.identifier_preparer
    names = ", ".join(quote.quote(name) for name in columns)
    copy_sql = f"COPY {quote.format_table(table)} ({names}) FROM STDIN"
    return copy_sql, _bind_processors(table, columns, dialect)


_SQLITE_PARAMETERS = 999
"""Parameters per multi-row INSERT on SQLite: the lowest SQLITE_MAX_VARIABLE_NUMBER any
SQLite build has (it is 32766 since SQLite 3.32)."""


def _processed(process: Callable[[Any], Any], values: Iterable[Any]) -> Iterator[Any]:
    """`process` applied to each value, once per run of the same value object."""
    last: object = _NOTHING
    result: Any = None
    for value in values:
        if value is not last:
            last, result = value, process(value)
        yield result


_NOTHING = object()


@functools.lru_cache(maxsize=16)
def _unnest_insert(table: Table, columns: tuple[str, ...]) -> Insert:
    """INSERT INTO table (columns) SELECT * FROM unnest(:column1::type[], ...)."""
    arrays = [bindparam(name, type_=postgresql.ARRAY(table.c[name].type)) for name in columns]
    rows = func.unnest(*arrays).table_valued(*columns).render_derived()
    return insert(table).from_select(list(columns), select(*(rows.c[name] for name in columns)))


@functools.lru_cache(maxsize=16)
def _sqlite_insert(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[str, str, int, tuple[tuple[int, Callable[[Any], Any]], ...]]:
    """(one-row SQL, multi-row SQL, its rows, the columns' bind processors by position).

    Parameters are positional, row after row, each row in `columns` order.
    """
    per_statement = _SQLITE_PARAMETERS // len(columns)
    compiled = []
    for count in (1, per_statement):
        rows: list[dict[str, Any]] = [
            {name: bindparam(f"{name}_{n}") for name in columns} for n in range(count)
        ]
        statement = insert(table).values(rows).compile(dialect=dialect)
        expected = [f"{name}_{n}" for n in range(count) for name in columns]
        if not statement.positional or list(statement.positiontup or ()) != expected:
            raise ValueError(f"expected positional parameters {expected[:4]}..., found others")
        compiled.append(str(statement))
    return compiled[0], compiled[1], per_statement, _bind_processors(table, columns, dialect)


def update_returning(
    session: Session, column: Any, where: ColumnElement[bool], **values: Any
) -> Any | None:
    """UPDATE the row of `column`'s table matching `where` (one at most) with `values`, and
    return `column` as the update left it, or None if no row matched. One statement with
    RETURNING; an UPDATE and a SELECT on a SQLite older than 3.35, which has none.
    A value the column cannot hold (an integer beyond 64 bits: OverflowError on SQLite,
    out of range on PostgreSQL) is the caller's input: ValidationError, nothing changed
    (callers check their input first; this keeps a miss from becoming an internal error)."""
    try:
        return _update_returning(session, column, where, values)
    except (OverflowError, DataError) as e:
        raise ValidationError(
            f"a value for {column.table.name} is out of the range the database holds "
            f"({type(e).__name__}); nothing was changed"
        ) from e


def _update_returning(
    session: Session, column: Any, where: ColumnElement[bool], values: dict[str, Any]
) -> Any | None:
    move = (
        update(column.table)
        .where(where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if session.get_bind().dialect.update_returning:
        return session.execute(move.returning(column)).scalar_one_or_none()
    session.execute(move)
    return session.execute(select(column).where(where)).scalar_one_or_none()


def ledger_size(session: Session) -> int:
    return session.execute(select(LedgerHead.size).where(LedgerHead.id == 1)).scalar_one()


def trust_entries(session: Session, start: int, stop: int | None) -> list[tuple[int, bytes]]:
    """(index, entry) of the entries in [start, stop) that ledger_trust_entries names, in
    index order (a handful in any ledger: read in one query)."""
    stmt = (
        select(LedgerEntryRow.idx, LedgerEntryRow.entry)
        .join(LedgerTrustEntryRow, LedgerTrustEntryRow.idx == LedgerEntryRow.idx)
        .where(LedgerEntryRow.idx >= start)
        .order_by(LedgerEntryRow.idx)
    )
    if stop is not None:
        stmt = stmt.where(LedgerEntryRow.idx < stop)
    return [(idx, entry) for idx, entry in session.execute(stmt)]


def iter_ledger(
    session: Session, start: int = 0, stop: int | None = None, chunk: int = 1000
) -> Iterator[LedgerEntryRow]:
    """Entries [start, stop) in index order, read in chunks so memory stays bounded."""
    position = start
    while stop is None or position < stop:
        limit = chunk if stop is None else min(chunk, stop - position)
        rows = (
            session.execute(
                select(LedgerEntryRow)
                .where(LedgerEntryRow.idx >= position)
                .order_by(LedgerEntryRow.idx)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        yield from rows
        position = rows[-1].idx + 1


# Complaints ----------------------------------------------------------------------------


def get_complaint(session: Session, tracking_id: str, *, lock: bool = False) -> Complaint | None:
    stmt = select(Complaint).where(Complaint.tracking_id == tracking_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


_IN_CHUNK = 500  # values per IN (...) list: well inside every database's parameter limit


def one_of(session: Session, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column` IN `values`, written for `session`'s database.

    On PostgreSQL it is `column = ANY(:values)`, with one array parameter. psycopg prepares
    a statement it runs often, and PostgreSQL then keeps one generic plan for it. For an IN
    list of separate parameters that plan filtered every row of the table through the whole
    list (a list of parameters is not hashed, a constant one would be): looking up a batch
    of 256 in an inbox of 10,000 rows took 22 ms, and it grew with the table. With one array
    parameter the plan probes the index once per value. Elsewhere it is IN (...)."""
    if session.get_bind().dialect.name == "postgresql":
        array = bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return cast(ColumnElement[bool], column == any_(array))
    return cast(ColumnElement[bool], column.in_(list(values)))


def complaints_for_update(session: Session, tracking_ids: Iterable[str]) -> dict[str, Complaint]:
    """The complaints with these tracking ids that exist, by tracking id, locked until
    commit (as get_complaint with lock=True), read a few hundred at a time."""
    wanted = list(dict.fromkeys(tracking_ids))
    found: dict[str, Complaint] = {}
    for first in range(0, len(wanted), _IN_CHUNK):
        stmt = (
            select(Complaint)
            .where(one_of(session, Complaint.tracking_id, wanted[first : first + _IN_CHUNK]))
            .with_for_update()
        )
        found.update((row.tracking_id, row) for row in session.execute(stmt).scalars())
    return found


def complaint_content(session: Session, tracking_id: str) -> ComplaintContentRow | None:
    return session.get(ComplaintContentRow, tracking_id)


def complaint_events(session: Session, tracking_id: str) -> Sequence[ComplaintEvent]:
    return (
        session.execute(
            select(ComplaintEvent)
            .where(ComplaintEvent.tracking_id == tracking_id)
            .order_by(ComplaintEvent.id)
        )
        .scalars()
        .all()
    )


def list_complaints(
    session: Session, *, status: str | None = None, holder: str | None = None, limit: int = 200
) -> Sequence[Complaint]:
    stmt = select(Complaint).order_by(Complaint.received_at, Complaint.tracking_id).limit(limit)
    if status is not None:
        stmt = stmt.where(Complaint.status == status)
    if holder is not None:
        stmt = stmt.where(Complaint.holder == holder)
    return session.execute(stmt).scalars().all()


# Outbox and inbox ----------------------------------------------------------------------


def outbox_written_since(session: Session, after_id: int) -> tuple[int, list[str]]:
    """(highest outbox row id, peers with rows above `after_id` up to it): what another
    process (an operator's CLI) queued since the caller last looked. Two index reads."""
    top = session.execute(select(func.max(OutboxRow.id))).scalar_one_or_none() or 0
    if top <= after_id:
        return top, []
    # Bounded on both sides: with `id > after_id` alone SQLite's planner scans a whole
    # index of the outbox (DISTINCT over ix_outbox_pending, 20 ms at 300,000 rows) instead
    # of reading the rowid range (0.2 ms).
    peers = session.execute(
        select(OutboxRow.peer_id).where(OutboxRow.id > after_id, OutboxRow.id <= top).distinct()
    ).scalars()
    return top, list(peers)


def next_out_sequences(session: Session) -> dict[str, int]:
    """Each active link's next outgoing sequence, by peer (one statement for every link:
    node.federation.outbox_poll)."""
    stmt = select(Link.peer_id, Link.next_out_seq).where(Link.revoked_at.is_(None))
    return {peer: sequence for peer, sequence in session.execute(stmt)}


class OutboxItem(NamedTuple):
    """What a link sends of one outbox row: the envelope as signed, and the complaint's
    content beside it when the row carries it (else empty)."""

    sequence: int
    kind: str
    body: bytes
    key_id: bytes
    signature: bytes
    content: bytes
    content_salt: bytes


def outbox_after(session: Session, peer_id: str, after: int, limit: int) -> list[OutboxItem]:
    """Outbox rows for `peer_id` with sequence > `after`, oldest first, with their content
    (plain rows: no ORM objects are built for what is only sent)."""
    stmt = (
        select(
            OutboxRow.sequence,
            OutboxRow.kind,
            OutboxRow.body,
            OutboxRow.key_id,
            OutboxRow.signature,
            ComplaintContentRow.content,
            ComplaintContentRow.salt,
        )
        .outerjoin(
            ComplaintContentRow,
            (ComplaintContentRow.tracking_id == OutboxRow.tracking_id) & OutboxRow.carries_content,
        )
        .where(OutboxRow.peer_id == peer_id, OutboxRow.sequence > after)
        .order_by(OutboxRow.sequence)
        .limit(limit)
    )
    return [
        OutboxItem(sequence, kind, body, key_id, signature, content or b"", salt or b"")
        for sequence, kind, body, key_id, signature, content, salt in session.execute(stmt)
    ]


def get_outbox(session: Session, outbox_id: int) -> OutboxRow | None:
    return session.get(OutboxRow, outbox_id)


def outbox_by_message(session: Session, message_id: str) -> OutboxRow | None:
    return session.execute(
        select(OutboxRow).where(OutboxRow.message_id == message_id)
    ).scalar_one_or_none()


def acknowledge_outbox(session: Session, peer_id: str, upto: int, at: dt.datetime) -> int | None:
    """`peer_id` acknowledged our envelopes up to sequence `upto` at `at`: move its active
    link's acked_out_seq up to `upto` (never down, and never to a sequence not sent yet) and
    its last_seen_at to `at`, locking the link. That is the whole acknowledgement: an outbox
    row is acknowledged when its sequence is at most acked_out_seq (decision 0020). Return
    the link's next_out_seq (the caller refuses an `upto` at or beyond it), or None,
    changing nothing, if there is no active link with `peer_id`."""
    moves = (Link.acked_out_seq < upto) & (Link.next_out_seq > upto)
    return update_returning(
        session,
        Link.next_out_seq,
        (Link.peer_id == peer_id) & Link.revoked_at.is_(None),
        acked_out_seq=case((moves, upto), else_=Link.acked_out_seq),
        last_seen_at=at,
    )


def unacknowledged(peer_id: str) -> ColumnElement[bool]:
    """The condition on OutboxRow of the rows for `peer_id` that it has not acknowledged."""
    acked = select(Link.acked_out_seq).where(Link.peer_id == peer_id).scalar_subquery()
    return cast(ColumnElement[bool], (OutboxRow.peer_id == peer_id) & (OutboxRow.sequence > acked))


def outbox_depth(session: Session, peer_id: str) -> int:
    return session.execute(
        select(func.count()).select_from(OutboxRow).where(unacknowledged(peer_id))
    ).scalar_one()


def get_inbox(session: Session, sender: str, message_id: str) -> InboxRow | None:
    return session.get(InboxRow, (sender, message_id))
