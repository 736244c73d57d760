"""How the running node learns that another process (an operator's `complaint refer`)
queued outbox rows, without reading the outbox in a loop: the store-side signals of
node.store.db behind an interface the federation layer uses, so that it reaches storage
only through services.

  - SQLite (`polls(ctx)` is True): a VersionProbe whose `version()` moves whenever any
    connection commits; a read of the outbox made after it moved sees the commit. On
    Linux its `changes_fileno()` becomes readable when any process writes to the
    database, a little before the commit shows in `version()`; `all_seen()` says when
    every write so far shows (the last was this process's own, and it has ended).
  - PostgreSQL: QueuedPeers, the peer of each row queued, notified at the commit of the
    transaction that queued it (migration 0011's trigger); nothing is kept while no one
    listens.
In both cases `written_since` says which peers have rows queued past a point.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, Self

from node.services import exchange
from node.services.context import NodeContext

__all__ = [
    "QueuedPeers",
    "VersionProbe",
    "polls",
    "queued_peers",
    "version_probe",
    "written_since",
]


class VersionProbe(Protocol):
    """SQLite's data_version on a connection of its own (node.store.db.DataVersionProbe),
    and where it has one, a descriptor readable after any write to the database."""

    def version(self) -> int: ...

    def changes_fileno(self) -> int | None: ...

    def take_changes(self) -> bool: ...

    def all_seen(self) -> bool: ...

    def close(self) -> None: ...


class QueuedPeers(Protocol):
    """PostgreSQL's notifications (node.store.db.OutboxNotifications):

    async with queued_peers(ctx) as queued:
        async for peer in queued: ...
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def __aiter__(self) -> AsyncIterator[str]: ...


def polls(ctx: NodeContext) -> bool:
    """True: the database has no notifications; watch it with a VersionProbe."""
    return ctx.db.is_sqlite


def version_probe(ctx: NodeContext) -> VersionProbe:
    """A new probe (SQLite); the caller closes it."""
    return ctx.db.data_version_probe()


def queued_peers(ctx: NodeContext) -> QueuedPeers:
    """The notifications of queued rows (PostgreSQL), to use in `async with`."""
    return ctx.db.outbox_notifications()


def written_since(ctx: NodeContext, seen: int) -> tuple[int, list[str]]:
    """The outbox's highest row id, and the peers of the rows queued after `seen`."""
    return exchange.outbox_written_since(ctx, seen)
