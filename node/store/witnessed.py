"""The SQL of C2SP witnessing (decision 0026): the witness side's latest cosigned checkpoint
per log (`witnessed_logs`), the log side's collected cosignatures (`cosignatures`), and the
keys of the linked peers' logs.

Invariants:
- `held_for_update` locks the log's row (PostgreSQL) inside the caller's write transaction,
  which on both databases is also serialized by the writers' lock (node.store.db): the
  check of the old size and the store of the new checkpoint are one atomic step, as
  tlog-witness requires.
- A cosignature is stored only for a checkpoint this node signed (a foreign key).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from node.store.models import CosignatureRow, Link, PeerKey, WitnessedLogRow

__all__ = [
    "add_cosignature",
    "cosignature_lines",
    "held",
    "held_for_update",
    "iter_cosignature_lines",
    "peer_signing_keys",
    "store_held",
    "witness_size",
]


def held(session: Session, origin: str) -> WitnessedLogRow | None:
    """The latest checkpoint this node cosigned for `origin`, if any."""
    return session.get(WitnessedLogRow, origin)


def held_for_update(session: Session, origin: str) -> WitnessedLogRow | None:
    """`held`, with the row locked until the transaction ends."""
    stmt = select(WitnessedLogRow).where(WitnessedLogRow.origin == origin).with_for_update()
    return session.scalars(stmt).one_or_none()


def store_held(
    session: Session, origin: str, size: int, root: bytes, note: bytes, at: dt.datetime
) -> None:
    """Record the checkpoint just cosigned for `origin` (insert or move forward)."""
    row = session.get(WitnessedLogRow, origin)
    if row is None:
        session.add(WitnessedLogRow(origin=origin, size=size, root=root, note=note, cosigned_at=at))
    else:
        row.size, row.root, row.note, row.cosigned_at = size, root, note, at
    session.flush()


def peer_signing_keys(session: Session, peer_id: str) -> list[bytes]:
    """A linked (not revoked) peer's current signing key, then the keys it rotated from."""
    link = session.get(Link, peer_id)
    if link is None or link.revoked_at is not None:
        return []
    older = session.scalars(
        select(PeerKey.signing_key)
        .where(PeerKey.peer_id == peer_id)
        .order_by(PeerKey.ledger_index.desc())
    )
    return [link.signing_key, *older]


def add_cosignature(
    session: Session, size: int, witness: str, timestamp: int, line: str, at: dt.datetime
) -> None:
    """Keep a verified cosignature line for checkpoint `size` (a newer one replaces it)."""
    row = session.get(CosignatureRow, (size, witness))
    if row is None:
        session.add(
            CosignatureRow(
                checkpoint_size=size,
                witness=witness,
                timestamp=timestamp,
                line=line,
                received_at=at,
            )
        )
    elif timestamp >= row.timestamp:
        row.timestamp, row.line, row.received_at = timestamp, line, at
    session.flush()


def cosignature_lines(session: Session, size: int) -> list[str]:
    """The cosignature lines on this node's checkpoint of `size`, by witness name."""
    stmt = (
        select(CosignatureRow.line)
        .where(CosignatureRow.checkpoint_size == size)
        .order_by(CosignatureRow.witness)
    )
    return list(session.scalars(stmt))


def cosignature_lines_between(session: Session, first: int, last: int) -> dict[int, list[str]]:
    """The cosignature lines on this node's checkpoints of sizes first..last, by size (each
    list by witness name)."""
    stmt = (
        select(CosignatureRow.checkpoint_size, CosignatureRow.line)
        .where(CosignatureRow.checkpoint_size.between(first, last))
        .order_by(CosignatureRow.checkpoint_size, CosignatureRow.witness)
    )
    lines: dict[int, list[str]] = {}
    for size, line in session.execute(stmt):
        lines.setdefault(int(size), []).append(str(line))
    return lines


def iter_cosignature_lines(session: Session) -> Iterator[tuple[int, str]]:
    """(checkpoint size, line) of every stored cosignature, in size order, streamed."""
    stmt = select(CosignatureRow.checkpoint_size, CosignatureRow.line).order_by(
        CosignatureRow.checkpoint_size, CosignatureRow.witness
    )
    for size, line in session.execute(stmt.execution_options(yield_per=256)):
        yield int(size), str(line)


def witness_size(session: Session, witness: str) -> int:
    """The largest of this node's checkpoints that `witness` cosigned (0: none)."""
    stmt = select(func.max(CosignatureRow.checkpoint_size)).where(CosignatureRow.witness == witness)
    return session.scalar(stmt) or 0
