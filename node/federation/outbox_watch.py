"""Wake the session of a peer as soon as another process (an operator's `complaint refer`)
queued something for it, instead of each idle session polling its outbox (which it still
does, every federation.poll_interval_ms): on PostgreSQL when the commit is notified, on
SQLite within OUTBOX_WATCH_SECONDS. The signals are the store's, reached through
node.services.outbox_signals."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from node.errors import NodeError
from node.federation.live import LiveLinks
from node.federation.workers import DbWorkers
from node.services import outbox_signals
from node.services.context import NodeContext

__all__ = ["OUTBOX_LISTEN_RETRY_SECONDS", "OUTBOX_WATCH_SECONDS", "OutboxWatch"]

OUTBOX_WATCH_SECONDS = 0.01  # SQLite's poll of data_version
OUTBOX_LISTEN_RETRY_SECONDS = 1.0  # PostgreSQL: listening again after a failure


class OutboxWatch:
    def __init__(self, ctx: NodeContext, db: DbWorkers, live: LiveLinks, log: Any) -> None:
        self.ctx = ctx
        self.db = db
        self.live = live
        self.log = log

    async def run(self) -> None:
        if outbox_signals.polls(self.ctx):
            await self._poll()
        else:
            await self._listen()

    async def _listen(self) -> None:
        """PostgreSQL: the notifications name the peers (outbox_signals.QueuedPeers). Each
        time it starts listening, every session is woken once: rows may have been queued
        while nothing listened."""
        failed = False
        while True:
            try:
                async with outbox_signals.queued_peers(self.ctx) as queued:
                    failed = False
                    self.live.wake_all()
                    async for peer in queued:
                        self.live.wake(peer).set()
            except Exception as e:  # best effort: the sessions still poll
                if not failed:  # logged once, not at every failed try while it is down
                    self.log.warning(
                        "outbox.listen_failed", error_kind=type(e).__name__, error=str(e)
                    )
                failed = True
            await asyncio.sleep(OUTBOX_LISTEN_RETRY_SECONDS)

    async def _poll(self) -> None:
        """SQLite: every OUTBOX_WATCH_SECONDS its data_version (outbox_signals.
        VersionProbe); only when that moved, one read of the outbox for the peers of the
        rows queued since the last. Without a probe (it failed: a new one is made at the
        next look), the outbox is read every time."""
        seen = -1
        probe: outbox_signals.VersionProbe | None = None
        read_at: int | None = None  # the version the last read of the outbox followed
        try:
            while True:
                await asyncio.sleep(OUTBOX_WATCH_SECONDS)
                version: int | None = None
                try:
                    if probe is None:
                        probe = await self.db.read(outbox_signals.version_probe, self.ctx)
                    version = await self.db.read(probe.version)
                    if version == read_at:
                        continue
                except Exception as e:  # pragma: no cover - best effort: read the outbox
                    if probe is not None:  # logged once, not at every failed first look
                        self.log.warning("outbox.probe_failed", error_kind=type(e).__name__)
                        with contextlib.suppress(Exception):
                            await self.db.read(probe.close)
                    probe, version = None, None
                try:
                    top, peers = await self.db.read(outbox_signals.written_since, self.ctx, seen)
                except NodeError as e:  # pragma: no cover - best effort; sessions still poll
                    self.log.error("outbox.watch_failed", error=str(e))
                    continue
                read_at = version
                if seen >= 0:
                    for peer in peers:
                        self.live.wake(peer).set()
                seen = top
        finally:
            if probe is not None:
                probe.close()
