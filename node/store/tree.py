"""The SQL of the persisted ledger tree and of signed checkpoints.

Invariants:

- `ledger_nodes` holds exactly the complete subtrees of the tree over `ledger_entries`
  (node.ledger.merkle, "Persistence"); `insert_nodes` is called in the transaction that
  appends the leaf completing them, so the two tables commit together.
- A frontier, a root or a proof costs at most ONE query: the (level, idx) pairs a
  computation will read depend only on the sizes and the index, so they are found first by
  a dry run with a recording reader, then fetched together, then the computation runs on
  the fetched nodes. A complete node never changes, so within one transaction the nodes
  read or inserted are kept (`_stored`) and not read again: the next append's frontier
  and the checkpoint signed after an append read none of them.
- Reads never lock: proofs and exports run in read transactions beside the writer.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from sqlalchemy import Select, and_, bindparam, insert, or_, select
from sqlalchemy.orm import Session

from node.errors import NotFoundError
from node.ledger import merkle
from node.ledger.merkle import CompletedNode, Frontier, Hash
from node.store import queries
from node.store.models import CheckpointRow, LedgerEntryRow, LedgerHead, LedgerNodeRow

# Sizes and indexes are stored as signed 64-bit integers.
MAX_STORED_SIZE = (1 << 63) - 1

__all__ = [
    "StoredTree",
    "add_checkpoint",
    "advance_head",
    "checkpoint_at",
    "checkpoint_covering",
    "checkpoint_of_size",
    "checkpoints_between",
    "consistency_proof",
    "entries_with_leaves",
    "frontier",
    "inclusion_proof",
    "insert_nodes",
    "insert_nodes_bulk",
    "iter_checkpoints",
    "iter_entries_with_leaves",
    "latest_checkpoint",
    "lock_head",
    "node_run",
    "root",
    "snapshot",
]

T = TypeVar("T")
_PLACEHOLDER = Hash(bytes(merkle.HASH_SIZE))


class StoredTree:
    """A NodeReader over `ledger_nodes`, answering from nodes fetched in bulk when it can."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._cache: dict[tuple[int, int], bytes] = {}

    def remember(self, nodes: Iterable[CompletedNode]) -> None:
        """Nodes this transaction inserted (over any it held for the same positions)."""
        for level, idx, value in nodes:
            self._cache[(level, idx)] = value

    def load(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Fetch the nodes (level, idx) in `pairs` with one query."""
        wanted = sorted(set(pairs) - self._cache.keys())
        if not wanted:
            return
        params: dict[str, int] = {}
        for n, (level, idx) in enumerate(wanted):
            params[f"level_{n}"], params[f"idx_{n}"] = level, idx
        rows = self._session.execute(_nodes_query(len(wanted)), params).all()
        for level, idx, value in rows:
            self._cache[(level, idx)] = value

    def node(self, level: int, index: int) -> bytes:
        """Return complete node (level, index); NotFoundError if the store lacks it."""
        found = self._cache.get((level, index))
        if found is None:
            found = self._session.execute(
                select(LedgerNodeRow.hash).where(
                    LedgerNodeRow.level == level, LedgerNodeRow.idx == index
                )
            ).scalar_one_or_none()
            if found is None:
                raise NotFoundError(
                    f"expected stored tree node (level {level}, index {index}), found none; "
                    "the ledger tree is incomplete"
                )
            self._cache[(level, index)] = found
        return found


@functools.lru_cache(maxsize=256)
def _nodes_query(count: int) -> Select[int, int, bytes]:
    """SELECT the nodes (:level_n, :idx_n) for n < count: an OR of primary-key matches,
    which both SQLite and PostgreSQL answer from the index (SQLite scans the whole table
    for a row-value IN list). One statement object per count, so SQLAlchemy builds and
    compiles it once, not at each proof (that was most of a proof's time)."""
    return select(LedgerNodeRow.level, LedgerNodeRow.idx, LedgerNodeRow.hash).where(
        or_(
            *(
                and_(
                    LedgerNodeRow.level == bindparam(f"level_{n}"),
                    LedgerNodeRow.idx == bindparam(f"idx_{n}"),
                )
                for n in range(count)
            )
        )
    )


class _Recorder:
    """A NodeReader that answers anything and remembers what was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, int]] = []

    def node(self, level: int, index: int) -> bytes:
        self.asked.append((level, index))
        return _PLACEHOLDER


def _recall(session: Session, key: str, owner: object) -> object | None:
    """What this session keeps under `key` for `owner` (a transaction or savepoint), or
    None if it keeps nothing there or kept it for another."""
    kept = session.info.get(key)
    if owner is None or not isinstance(kept, tuple) or kept[0] is not owner:
        return None
    value: object = kept[1]
    return value


def _keep(session: Session, key: str, owner: object, value: object) -> None:
    session.info[key] = (owner, value)


_TREE_KEY = "lapor-node.ledger.nodes"


def _stored(session: Session) -> StoredTree:
    """The StoredTree of the session's transaction. A savepoint rolled back leaves the
    nodes it inserted here, but none is read before it is written again: a computation at
    size n reads only nodes complete within the first n leaves, and the appends that take
    the head back past a position insert every node they complete, over the old ones."""
    transaction = session.get_transaction()
    stored = _recall(session, _TREE_KEY, transaction)
    if isinstance(stored, StoredTree):
        return stored
    stored = StoredTree(session)
    if transaction is not None:  # not begun yet: nothing to keep it for
        _keep(session, _TREE_KEY, transaction, stored)
    return stored


def _with_nodes(session: Session, compute: Callable[[merkle.NodeReader], T]) -> T:
    recorder = _Recorder()
    compute(recorder)
    stored = _stored(session)
    stored.load(recorder.asked)
    return compute(stored)


def frontier(session: Session, size: int) -> Frontier:
    """The frontier of the first `size` leaves, read with one query."""
    return _with_nodes(session, lambda r: Frontier.from_reader(size, r))


def root(session: Session, size: int) -> Hash:
    """MTH of the first `size` leaves, read with one query."""
    return _with_nodes(session, lambda r: merkle.root(size, r))


def inclusion_proof(session: Session, index: int, size: int) -> list[Hash]:
    """PATH(index, D[size]) from the stored nodes, read with one query."""
    return _with_nodes(session, lambda r: merkle.inclusion_proof(index, size, r))


def consistency_proof(session: Session, size1: int, size2: int) -> list[Hash]:
    """PROOF(size1, D[size2]) from the stored nodes, read with one query."""
    return _with_nodes(session, lambda r: merkle.consistency_proof(size1, size2, r))


def node_run(session: Session, level: int, start: int, stop: int) -> list[bytes]:
    """The stored nodes at `level` with start <= idx < stop, in index order, in one query
    (a C2SP tile: node.transparency.tiles); fewer than stop - start if some are missing."""
    return list(
        session.execute(
            select(LedgerNodeRow.hash)
            .where(
                LedgerNodeRow.level == level, LedgerNodeRow.idx >= start, LedgerNodeRow.idx < stop
            )
            .order_by(LedgerNodeRow.idx)
        ).scalars()
    )


def insert_nodes(session: Session, completed: Iterable[CompletedNode]) -> None:
    """Insert the complete nodes an append produced (in the appending transaction)."""
    completed = list(completed)
    rows = [{"level": level, "idx": idx, "hash": value} for level, idx, value in completed]
    if rows:
        session.execute(insert(LedgerNodeRow), rows)
        _stored(session).remember(completed)


def insert_nodes_bulk(session: Session, completed: Sequence[CompletedNode]) -> None:
    """Insert the complete nodes of a batch append in bulk (node.store.queries.insert_many),
    in the appending transaction."""
    queries.insert_many(session, LedgerNodeRow, ("level", "idx", "hash"), completed)
    _stored(session).remember(completed)


def snapshot(session: Session) -> None:
    """Make this read transaction one snapshot (call first): PostgreSQL REPEATABLE READ;
    SQLite in WAL mode already reads one snapshot per transaction."""
    if session.get_bind().dialect.name != "sqlite":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


_HEAD_KEY = "lapor-node.ledger.head"


def _innermost(session: Session) -> object:
    return session.get_nested_transaction() or session.get_transaction()


def lock_head(session: Session) -> int:
    """Lock the ledger head until commit and return the ledger size.

    No query when this transaction, at the same savepoint, already locked or moved the head
    (`advance_head`): the lock keeps every other writer from moving it meanwhile. A
    savepoint's own size is never taken for its parent's, since a savepoint rolled back
    takes its appends with it."""
    innermost = _innermost(session)
    size = _recall(session, _HEAD_KEY, innermost)
    if isinstance(size, int):
        return size
    size = session.execute(
        select(LedgerHead.size).where(LedgerHead.id == 1).with_for_update()
    ).scalar_one()
    _keep(session, _HEAD_KEY, innermost, size)
    return size


def advance_head(session: Session, count: int) -> int:
    """Lock the ledger head until commit and move it `count` entries on, in one statement
    (two on a SQLite older than 3.35, which has no RETURNING); return the size before (the
    index of the first new entry). Every append moves the head through here, so
    `lock_head` never answers from a size this transaction moved."""
    size = queries.update_returning(
        session, LedgerHead.size, LedgerHead.id == 1, size=LedgerHead.size + count
    )
    if size is None:  # pragma: no cover - the migrations create the one head row
        raise NotFoundError("expected the ledger head row, found none; run the migrations")
    _keep(session, _HEAD_KEY, _innermost(session), size)
    return int(size) - count


def iter_entries_with_leaves(
    session: Session, stop: int | None = None, chunk: int = 2000
) -> Iterator[tuple[int, bytes, bytes | None]]:
    """(index, entry bytes, leaf hash stored in ledger_nodes) in index order, in chunks.

    The leaf hash is the level-0 node written when the entry was appended, or None if the
    store has none; the entry bytes are as stored now.
    """
    position = 0
    while stop is None or position < stop:
        limit = chunk if stop is None else min(chunk, stop - position)
        rows = session.execute(
            select(LedgerEntryRow.idx, LedgerEntryRow.entry, LedgerNodeRow.hash)
            .outerjoin(
                LedgerNodeRow,
                (LedgerNodeRow.level == 0) & (LedgerNodeRow.idx == LedgerEntryRow.idx),
            )
            .where(LedgerEntryRow.idx >= position)
            .order_by(LedgerEntryRow.idx)
            .limit(limit)
        ).all()
        if not rows:
            return
        yield from ((idx, entry, leaf) for idx, entry, leaf in rows)
        position = rows[-1][0] + 1


def add_checkpoint(session: Session, size: int, root: bytes, note: bytes, at: dt.datetime) -> None:
    """Insert a signed checkpoint (a statement of its own: it flushes nothing else)."""
    session.execute(insert(CheckpointRow).values(size=size, root=root, note=note, signed_at=at))


def latest_checkpoint(session: Session) -> CheckpointRow | None:
    return session.execute(
        select(CheckpointRow).order_by(CheckpointRow.size.desc()).limit(1)
    ).scalar_one_or_none()


def checkpoint_of_size(session: Session, size: int) -> CheckpointRow | None:
    """The checkpoint this node signed at exactly `size`, if any. A size no ledger can
    have (negative, or beyond the 64-bit integers the database holds; a peer's message
    may say anything) has none, on every database alike."""
    if not 0 <= size <= MAX_STORED_SIZE:
        return None
    return session.get(CheckpointRow, size)


def checkpoint_covering(session: Session, index: int) -> CheckpointRow | None:
    """The latest checkpoint if it covers leaf `index` (size > index), else None."""
    latest = latest_checkpoint(session)
    return latest if latest is not None and latest.size > index else None


def iter_checkpoints(
    session: Session, upto: int | None = None, chunk: int = 500
) -> Iterator[CheckpointRow]:
    """Every stored checkpoint of size <= `upto` (default: all), smallest first, in chunks."""
    after = -1
    while True:
        stmt = select(CheckpointRow).where(CheckpointRow.size > after)
        if upto is not None:
            stmt = stmt.where(CheckpointRow.size <= upto)
        rows = session.execute(stmt.order_by(CheckpointRow.size).limit(chunk)).scalars().all()
        if not rows:
            return
        yield from rows
        after = rows[-1].size


def entries_with_leaves(
    session: Session, start: int, stop: int
) -> list[tuple[int, bytes, bytes | None]]:
    """(index, entry bytes, stored leaf hash or None) for indexes [start, stop), in one query;
    the caller bounds stop - start (one page of iter_entries_with_leaves, from `start`)."""
    rows = session.execute(
        select(LedgerEntryRow.idx, LedgerEntryRow.entry, LedgerNodeRow.hash)
        .outerjoin(
            LedgerNodeRow,
            (LedgerNodeRow.level == 0) & (LedgerNodeRow.idx == LedgerEntryRow.idx),
        )
        .where(LedgerEntryRow.idx >= start, LedgerEntryRow.idx < stop)
        .order_by(LedgerEntryRow.idx)
    ).all()
    return [(idx, entry, leaf) for idx, entry, leaf in rows]


def checkpoint_at(session: Session, size: int) -> CheckpointRow | None:
    """The stored checkpoint of exactly `size`, if this node signed one."""
    return session.execute(
        select(CheckpointRow).where(CheckpointRow.size == size)
    ).scalar_one_or_none()


def checkpoints_between(session: Session, first: int, last: int, limit: int) -> list[CheckpointRow]:
    """Up to `limit` stored checkpoints with first <= size <= last, smallest first."""
    return list(
        session.execute(
            select(CheckpointRow)
            .where(CheckpointRow.size >= first, CheckpointRow.size <= last)
            .order_by(CheckpointRow.size)
            .limit(limit)
        )
        .scalars()
        .all()
    )
