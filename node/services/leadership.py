"""The leader lease's use cases (node.store.lease): which `serve` process of a node leads,
taking the lease over, renewing and releasing it. PostgreSQL only: on SQLite one `serve`
runs per data directory (node.services.datadir) and leads by being the only one.

Each runs on a connection of its own in autocommit, outside `Database.write()`: the lease
is what fences writes, so moving it must neither need it nor wait for the write lock."""

from __future__ import annotations

import datetime as dt

from node.services.context import NodeContext
from node.store import lease
from node.store.db import retry_uncommitted  # for federation/workers.py (no store/ there)
from node.store.lease import LeaseView, NotLeaderError

__all__ = [
    "LeaseView",
    "NotLeaderError",
    "current",
    "describe",
    "release",
    "renew",
    "retry_uncommitted",
    "take_over",
]


def take_over(ctx: NodeContext, holder: str, seconds: float) -> int | None:
    """Lead with a new epoch if the lease has expired; the epoch, or None."""
    with ctx.db.lease_connection() as conn:
        return lease.take_over(conn, holder, seconds)


def renew(ctx: NodeContext, epoch: int, seconds: float) -> bool:
    """Extend this epoch's lease; False once another process took over."""
    with ctx.db.lease_connection() as conn:
        return lease.renew(conn, epoch, seconds)


def release(ctx: NodeContext, epoch: int) -> None:
    with ctx.db.lease_connection() as conn:
        lease.release(conn, epoch)


def current(ctx: NodeContext) -> LeaseView | None:
    """The lease as the database sees it now; None on SQLite (no lease there)."""
    if ctx.db.is_sqlite:
        return None
    with ctx.db.lease_connection() as conn:
        return lease.view(conn)


def describe(view: LeaseView) -> str:
    """One line for operators: who leads, since when, for how long more."""
    if view.epoch == 0:
        return "leader: none yet (no serve has led this node)"
    if not view.live:
        return f"leader: none now (the lease of epoch {view.epoch}, {view.holder}, expired)"
    acquired = None if view.acquired_at is None else view.acquired_at.astimezone(dt.UTC)
    since = "" if acquired is None else f" since {acquired:%Y-%m-%d %H:%M:%S}Z"
    return (
        f"leader: {view.holder} (epoch {view.epoch}{since}, lease renewed, "
        f"{view.remaining_seconds:.1f}s left)"
    )
