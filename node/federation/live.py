"""What the running node knows of its live links, shared by the server, the dialer, the
pins and the periodic jobs: which peers are connected (a stream that exchanged Hellos),
each peer's running session, the wake-up event of each peer's send loop, and the
bookkeeping of connection marks and last errors in the database (node.services.links).

Invariants: a peer is in `connected` exactly while a session with it is past its Hello
and has not ended (its mark in the database follows, best effort); `sessions` holds the
running session of each peer (for last seen, node.federation.liveness)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from node.errors import NodeError
from node.federation import group_commit
from node.federation.session import LinkSession
from node.federation.workers import DbWorkers
from node.ids import NodeId
from node.services import exchange, links
from node.services.context import NodeContext

__all__ = ["LiveLinks"]


class LiveLinks:
    def __init__(self, ctx: NodeContext, db: DbWorkers, log: Any) -> None:
        self.ctx = ctx
        self.db = db
        self.log = log
        self.connected: set[str] = set()
        self.sessions: dict[str, LinkSession] = {}  # the running session with each peer
        # The server side: each child's Exchange task, and why the node ended it (a peer
        # whose pin was dropped gets this status instead of a plain cancellation).
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.dropped: dict[str, tuple[grpc.StatusCode, str, tuple[tuple[str, str], ...]]] = {}
        self._wake: dict[str, asyncio.Event] = {}

    def wake(self, peer: str) -> asyncio.Event:
        """The event that wakes `peer`'s send loop (rows were queued for it)."""
        return self._wake.setdefault(peer, asyncio.Event())

    def wake_all(self) -> None:
        for event in list(self._wake.values()):
            event.set()

    def heard_since(self, since: float) -> list[str]:
        """The connected peers whose session heard from them after loop time `since`."""
        return sorted(
            peer
            for peer, session in self.sessions.items()
            if peer in self.connected and session.silence.heard_at > since
        )

    async def mark(self, peer: str, connected: bool) -> None:
        if connected:
            self.connected.add(peer)
        else:
            self.connected.discard(peer)
        try:
            if self.ctx.config.federation.group_commit:  # in the next group (decision 0043)
                await group_commit.writer_for(self.ctx, self.db).mark(peer, connected)
            else:
                await self.db.write(links.mark_connected, self.ctx, peer, connected)
        except NodeError as e:  # pragma: no cover - best effort bookkeeping
            self.log.error("link.state_not_recorded", peer=peer, error=str(e))

    async def note_error(self, peer: str, message: str | None) -> None:
        try:
            await self.db.write(exchange.record_link_error, self.ctx, NodeId(peer), message)
        except NodeError as e:  # pragma: no cover - best effort bookkeeping
            self.log.error("link.error_not_recorded", peer=peer, error=str(e))
