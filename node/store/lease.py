"""The leader lease of a node's `serve` processes on PostgreSQL (migration 0015): one row,
read and moved only here. Every time is the database's (`now()`), never a process's clock:
two hosts' clocks need not agree, the database's is the one all of them see.

Invariants:
  1. The epoch only grows. A process leads for one epoch: `take_over` moves the row to
     epoch + 1 in one conditional UPDATE, only once the lease has expired; `renew` moves
     `expires_at` only while the row still holds the renewer's epoch (compare and set).
  2. Every write transaction of a leader begins with `check` (node.store.db.Database.write):
     the row must hold its epoch, unexpired, and it is locked FOR KEY SHARE until the
     transaction ends. `epoch` has a unique index, so the takeover's UPDATE (which changes
     it) waits for every such transaction in flight, and a transaction that checks after the
     takeover finds another epoch. No transaction of an old epoch commits after a new epoch
     began. A renewal changes no key column and waits for none of them.
  3. A transaction of an expired leader that does not end (its process paused with SIGSTOP
     inside it) would hold the takeover back: `take_over` ends such sessions
     (pg_terminate_backend) once the lease has expired, and `idle_in_transaction_session_
     timeout` on the writers' connections ends them anyway. Their commit then fails.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import BigInteger, Integer, String, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, Session, mapped_column

from node.errors import PeerUnavailableError
from node.store.models import Base, UTCDateTime

__all__ = [
    "LeaderLease",
    "LeaseView",
    "NotLeaderError",
    "check",
    "release",
    "renew",
    "take_over",
    "view",
]


class NotLeaderError(PeerUnavailableError):
    """This `serve` process does not hold the leader lease: it neither writes nor signs.
    At the gRPC edge, UNAVAILABLE: a child dials again and reaches the leader."""


class LeaderLease(Base):
    __tablename__ = "leader_lease"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(BigInteger, unique=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class LeaseView:
    """The lease as the database sees it now."""

    epoch: int
    holder: str
    acquired_at: dt.datetime | None
    expires_at: dt.datetime
    now: dt.datetime

    @property
    def live(self) -> bool:
        return self.epoch > 0 and self.expires_at > self.now

    @property
    def remaining_seconds(self) -> float:
        return max(0.0, (self.expires_at - self.now).total_seconds())


_CHECK = (
    "SELECT (SELECT holder FROM leader_lease WHERE id = 1 AND epoch = :epoch "
    "AND expires_at > clock_timestamp() FOR KEY SHARE)"
)
_CHECK_AND_LOCK = _CHECK + ", pg_advisory_xact_lock(:lock)"


def check(session: Session, epoch: int, write_lock: int | None = None) -> None:
    """The first statement of a leader's write transaction: hold `epoch`'s lease (locked
    FOR KEY SHARE until the transaction ends) or raise NotLeaderError. With `write_lock`,
    the same statement then takes that transaction-level advisory lock (node.store.db's
    WRITE_LOCK): one round trip to the database for both, not one each (decision 0043)."""
    sql = _CHECK if write_lock is None else _CHECK_AND_LOCK
    params = {"epoch": epoch} if write_lock is None else {"epoch": epoch, "lock": write_lock}
    held = session.execute(text(sql), params).first()
    if held is None or held[0] is None:
        current = view(session.connection())
        raise NotLeaderError(_not_leader(epoch, current))


def _not_leader(epoch: int, current: LeaseView) -> str:
    if current.epoch != epoch:
        return (
            f"this serve process led for epoch {epoch}, but {current.holder or 'another'} "
            f"took over (epoch {current.epoch}); it neither writes nor signs any more"
        )
    return (
        f"this serve process's lease (epoch {epoch}) expired without renewal; it writes "
        f"again only once it renews"
    )


def view(conn: Connection | Session) -> LeaseView:
    row = conn.execute(
        text(
            "SELECT epoch, holder, acquired_at, expires_at, clock_timestamp() "
            "FROM leader_lease WHERE id = 1"
        )
    ).one()
    return LeaseView(int(row[0]), str(row[1]), row[2], row[3], row[4])


def take_over(conn: Connection, holder: str, seconds: float) -> int | None:
    """Lead from now for `seconds` with a new epoch, if the lease has expired; the new epoch,
    or None while another holds it. Run in autocommit (each statement its own transaction).
    Sessions of the expired leader still inside a transaction (invariant 3) are ended."""
    conn.execute(text("SET lock_timeout = '500ms'"))
    try:
        return _update_epoch(conn, holder, seconds)
    except DBAPIError as e:
        if getattr(e.orig, "sqlstate", None) != "55P03":  # lock_not_available
            raise
    # A transaction of the expired epoch holds the row: end it (same role, so allowed),
    # then try once more.
    conn.execute(
        text(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
            "WHERE l.relation = 'leader_lease'::regclass AND l.granted "
            # Databases cloned from one template share relation ids: this database only.
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.mode = 'RowShareLock' AND l.pid <> pg_backend_pid() "
            "AND EXISTS (SELECT 1 FROM leader_lease WHERE id = 1 "
            "            AND expires_at <= clock_timestamp())"
        )
    )
    try:
        return _update_epoch(conn, holder, seconds)
    except DBAPIError as e:
        if getattr(e.orig, "sqlstate", None) != "55P03":
            raise
        return None


def _update_epoch(conn: Connection, holder: str, seconds: float) -> int | None:
    epoch = conn.execute(
        text(
            "UPDATE leader_lease SET epoch = epoch + 1, holder = :holder, "
            "acquired_at = clock_timestamp(), "
            "expires_at = clock_timestamp() + make_interval(secs => :seconds) "
            "WHERE id = 1 AND expires_at <= clock_timestamp() RETURNING epoch"
        ),
        {"holder": holder[:200], "seconds": seconds},
    ).scalar_one_or_none()
    return None if epoch is None else int(epoch)


def renew(conn: Connection, epoch: int, seconds: float) -> bool:
    """Extend `epoch`'s lease by `seconds` from now; False if another epoch holds the row."""
    renewed = conn.execute(
        text(
            "UPDATE leader_lease SET expires_at = clock_timestamp() + "
            "make_interval(secs => :seconds) WHERE id = 1 AND epoch = :epoch RETURNING epoch"
        ),
        {"epoch": epoch, "seconds": seconds},
    ).scalar_one_or_none()
    return renewed is not None


def release(conn: Connection, epoch: int) -> None:
    """Let a standby take over at once (a clean stop)."""
    conn.execute(
        text(
            "UPDATE leader_lease SET expires_at = clock_timestamp() WHERE id = 1 AND epoch = :epoch"
        ),
        {"epoch": epoch},
    )
