"""Wake the session of a peer as soon as another process (an operator's `complaint refer`)
queued something for it, instead of each idle session polling its outbox (which it still
does, every federation.poll_interval_ms): on PostgreSQL when the commit is notified, on
SQLite at its next look at data_version. The signals are the store's, reached through
node.services.outbox_signals.

SQLite's looks back off while nothing moves (issue 20.5: an idle node polled 100 times a
second): OUTBOX_WATCH_SECONDS after a change, the pause doubling at each look that finds
none, up to OUTBOX_WATCH_MAX_SECONDS, and back to the shortest at the first change (any
commit of another connection, this node's own sessions included). So a link with traffic
is looked at every 10 ms. Once nothing has moved for OUTBOX_SETTLE_SECONDS, on Linux the
watcher stops looking and waits for the database's next write by any process (the probe's
changes descriptor, inotify on the -wal file: no timer at all while the node is idle),
then starts again from the shortest pause, since the commit shows in data_version a
little after its write; it waits again at once after a look that found every write so far
visible because the last was this node's own (the heartbeat's, say) and has ended (the
probe's `all_seen`, decision 0040). Each look takes the write events first (`_look`), so a write the
looks have already seen does not wake the wait again (a commit is several writes to the
-wal: the event of its last one started five more seconds of looks, decision 0040). So a
row queued on an idle node leaves within about OUTBOX_WATCH_SECONDS, and costs nothing
while none is. Without that descriptor the
longest pause stays the bound (OUTBOX_WATCH_MAX_SECONDS). Either way each session still
reads its outbox every federation.poll_interval_ms."""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

from node.aio import readable
from node.errors import NodeError
from node.federation.live import LiveLinks
from node.federation.workers import DbWorkers
from node.services import outbox_signals
from node.services.context import NodeContext

__all__ = [
    "OUTBOX_LISTEN_RETRY_SECONDS",
    "OUTBOX_WATCH_MAX_SECONDS",
    "OUTBOX_WATCH_SECONDS",
    "OutboxWatch",
    "next_pause",
]

OUTBOX_WATCH_SECONDS = 0.01  # SQLite's pause between looks at data_version after a change
OUTBOX_WATCH_MAX_SECONDS = 0.5  # ... and its longest, after a while with no change
# How long after the last write the looks go on before waiting for the next write: the
# write's commit shows in data_version only after its fsync, which a busy disk can hold
# for seconds; a commit slower than this shows at the session's own outbox poll.
OUTBOX_SETTLE_SECONDS = 5.0
OUTBOX_LISTEN_RETRY_SECONDS = 1.0  # PostgreSQL: listening again after a failure


def next_pause(pause: float, moved: bool) -> float:
    """The pause before SQLite's next look at data_version, after one of `pause` that found
    the version `moved` or not (the module's backoff)."""
    if moved:
        return OUTBOX_WATCH_SECONDS
    return min(pause * 2, OUTBOX_WATCH_MAX_SECONDS)


def _look(probe: outbox_signals.VersionProbe) -> tuple[bool, bool, int]:
    """One look (on a reader thread): whether the database was written since the last,
    taking the change events first; whether every write so far is visible (the last was
    this process's, and has ended); then its data_version, which then shows them all.
    Events are taken at every look, not only when the watcher waits for them: an event
    left over from a write the looks already saw (a commit is several writes to the -wal)
    would start the looks again for nothing."""
    written = probe.take_changes()
    all_seen = probe.all_seen()
    return written, all_seen, probe.version()


class OutboxWatch:
    def __init__(self, ctx: NodeContext, db: DbWorkers, live: LiveLinks, log: Any) -> None:
        self.ctx = ctx
        self.db = db
        self.live = live
        self.log = log
        self.waiting_for_write = False  # SQLite: idle, until the database's next write

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
        """SQLite: its data_version (outbox_signals.VersionProbe), at pauses that back off
        while it stays (next_pause), and at the longest, after the next write instead
        where the probe can tell it (`node.aio.readable`); only when it moved, one read of the
        outbox for the peers of the rows queued since the last. Without a probe (it
        failed: a new one is made at the next look), the outbox is read every time."""
        seen = -1
        probe: outbox_signals.VersionProbe | None = None
        read_at: int | None = None  # the version the last read of the outbox followed
        pause = OUTBOX_WATCH_SECONDS
        loop = asyncio.get_running_loop()
        written_at = loop.time()  # the last write seen (or the start)
        try:
            while True:
                fd = None if probe is None else probe.changes_fileno()
                settled = loop.time() - written_at >= OUTBOX_SETTLE_SECONDS
                if fd is not None and probe is not None and settled:
                    self.waiting_for_write = True
                    try:
                        await readable(fd)
                    finally:
                        self.waiting_for_write = False
                    written_at = loop.time()  # its events are taken at the next look
                    pause = OUTBOX_WATCH_SECONDS
                await asyncio.sleep(pause)
                version: int | None = None
                try:
                    if probe is None:
                        probe = await self.db.read(outbox_signals.version_probe, self.ctx)
                    written, all_seen, version = await self.db.read(_look, probe)
                    if written:  # its commit may show at a later look: go on from it
                        written_at = loop.time()
                    pause = next_pause(pause, version != read_at or written)
                    if version == read_at:
                        if all_seen:  # nothing can show later: wait for the next write
                            written_at = -math.inf
                        continue
                    written_at = -math.inf if all_seen else loop.time()
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
