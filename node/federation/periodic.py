"""The running node's periodic jobs: last seen of the peers heard (node.federation.
liveness), the link and workflow gauges, the complaint scheduler, and the checkpoint
signer.

Checkpoints: every `ledger.checkpoint_interval_seconds` the ledger's size is read and, if
it changed since the latest checkpoint, one is signed (node.services.checkpoints.sign, on
the writer thread). An integrity failure there (the new tree does not extend the signed
one, or a stored note does not verify) is logged at critical level and stops signing for
the life of the process: the node must not sign past evidence it cannot vouch for. The
server keeps serving, so the ledger can still be audited."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import asdict
from typing import Any

from node.errors import IntegrityError, NodeError
from node.federation.live import LiveLinks
from node.federation.workers import DbWorkers
from node.metrics import (
    CHECKPOINT_FAILURES,
    LEDGER_SIZE,
    LINK_GAUGES_SECONDS,
    WORKFLOW_GAUGES_SECONDS,
    LinkSample,
    observe_checkpoint,
    observe_links,
    observe_workflow,
)
from node.services import audit, checkpoints, cosigning, links, monitoring, scheduler
from node.services.context import NodeContext
from node.services.reports import workflow_sample

__all__ = ["PeriodicJobs"]


class PeriodicJobs:
    def __init__(self, ctx: NodeContext, db: DbWorkers, live: LiveLinks, log: Any) -> None:
        self.ctx = ctx
        self.db = db
        self.live = live
        self.log = log
        self.signing_stopped = False
        self.checkpoint_rounds = 0

    def jobs(self) -> list[Coroutine[Any, Any, None]]:
        """Each job, to run as a task until cancelled."""
        return [
            self.checkpoint_signer(),
            self.heartbeat(),
            self.link_gauges(),
            self.scheduler(),
            self.workflow_gauges(),
            self.cosigning(),
        ]

    async def cosigning(self) -> None:
        """Every witness.submit_interval_seconds: offer the latest checkpoint to the witnesses
        in witness.submit_to and keep their cosignatures (node.services.cosigning; on a
        thread of its own, as it waits on the network)."""
        while self.ctx.config.witness.submit_to:
            try:
                for result in await asyncio.to_thread(cosigning.submit, self.ctx):
                    event = "checkpoint.cosigned" if result.cosigned else "checkpoint.cosign_failed"
                    self.log.info(event, **asdict(result))
            except Exception as e:  # pragma: no cover - best effort: never stop offering
                self.log.error(
                    "checkpoint.cosign_failed", error_kind=type(e).__name__, error=str(e)
                )
            await asyncio.sleep(self.ctx.config.witness.submit_interval_seconds)

    async def heartbeat(self) -> None:
        """Refresh last_seen_at (see links.STALE_AFTER) of the peers whose live session
        heard from them since the last round: only the peer's own traffic (its frames,
        its heartbeat Acks) counts, never that a stream is merely open."""
        # Every K/2 at most (K: keepalive_seconds): last seen then trails the peer's last
        # traffic by less than the silence that ends its session (2K/3), and an idle node
        # writes a third less often than at every K/3 beat (issue 20.5).
        interval = min(links.HEARTBEAT_SECONDS, self.ctx.config.federation.keepalive_seconds / 2)
        loop = asyncio.get_running_loop()
        since = loop.time()
        while True:
            await asyncio.sleep(interval)
            heard = self.live.heard_since(since)
            since = loop.time()
            try:
                await self.db.write(links.heartbeat, self.ctx, heard)
            except NodeError as e:  # pragma: no cover - best effort bookkeeping
                self.log.error("link.heartbeat_failed", error=str(e))

    async def workflow_gauges(self) -> None:
        """With metrics on, every WORKFLOW_GAUGES_SECONDS: complaints by status, overdue
        and SLA breaches (node.services.reports.workflow_sample) as gauges."""
        while self.ctx.config.metrics.enabled:
            try:
                sample = await self.db.read(workflow_sample, self.ctx)
                observe_workflow(sample.by_status, sample.overdue, sample.breaches)
            except NodeError as e:  # pragma: no cover - best effort bookkeeping
                self.log.error("complaints.gauges_failed", error=str(e))
            await asyncio.sleep(WORKFLOW_GAUGES_SECONDS)

    async def link_gauges(self) -> None:
        """With metrics on, every LINK_GAUGES_SECONDS: each linked peer's sync health as
        `link list` shows it (connected from this process's live streams), as gauges."""
        while self.ctx.config.metrics.enabled:
            try:
                views = await self.db.read(links.list_links, self.ctx)
                observe_links(
                    LinkSample(
                        v.peer_id,
                        v.peer_id in self.live.connected,
                        v.outbox_depth,
                        v.lag_messages,
                        v.lag_seconds,
                        None if v.last_seen_at is None else v.last_seen_at.timestamp(),
                    )
                    for v in views
                )
                # Every peer's series exist from the start (a link made since appears here
                # within a round), and the key rotation grace periods' ends.
                await self.db.read(monitoring.init_peers, self.ctx)
                await self.db.read(monitoring.refresh_key_graces, self.ctx)
            except Exception as e:  # pragma: no cover - best effort: never stop refreshing
                self.log.error("link.gauges_failed", error_kind=type(e).__name__, error=str(e))
            await asyncio.sleep(LINK_GAUGES_SECONDS)

    async def scheduler(self) -> None:
        """Every workflow.scheduler_interval_seconds: auto-close and (if configured)
        escalate what is due (node.services.scheduler.DuePass). Each slice of the pass is
        read on a reader thread and acted on by the writer, one transaction per slice."""
        while True:
            try:
                run = scheduler.DuePass(self.ctx, self.ctx.clock.now(), keep_ids=False)
                while not run.finished:  # in slices: link batches reach the writer between
                    due = await self.db.read(run.next_slice)
                    if due:
                        await self.db.write(run.act, due)
                done = run.summary()
                if run.counts["closed"] or run.counts["escalated"] or done.failed:
                    self.log.info(
                        "complaints.scheduled",
                        closed=run.counts["closed"],
                        escalated=run.counts["escalated"],
                        failed=[t for t, _ in done.failed],
                        slices=run.slices,
                    )
            except NodeError as e:
                self.log.error("complaints.scheduler_failed", error=str(e))
            await asyncio.sleep(self.ctx.config.workflow.scheduler_interval_seconds)

    async def checkpoint_signer(self) -> None:
        """Every checkpoint interval: refresh the ledger gauges, and sign if the ledger
        changed, unless signing has stopped."""
        interval = self.ctx.config.ledger.checkpoint_interval_seconds
        await self.checkpoint_round(sign=False)
        while True:
            await asyncio.sleep(interval)
            await self.checkpoint_round(sign=not self.signing_stopped)

    async def checkpoint_round(self, *, sign: bool) -> None:
        try:
            head = await self.db.read(audit.head, self.ctx)
            LEDGER_SIZE.set(head.ledger_size)
            latest = head.checkpoint
            changed = head.ledger_size != (0 if latest is None else latest.size)
            if sign and changed:
                signed, made = await self.db.write(checkpoints.sign, self.ctx)
                latest = audit.StoredCheckpoint(signed.size, signed.note, signed.signed_at)
                if made:
                    self.log.info("checkpoint.signed", size=signed.size)
            if latest is not None:
                observe_checkpoint(latest.size, latest.signed_at.timestamp())
        except IntegrityError as e:
            CHECKPOINT_FAILURES.labels(kind=type(e).__name__).inc()
            self.signing_stopped = True
            self.log.critical(
                "checkpoint.signing_stopped",
                error_kind=type(e).__name__,
                error=str(e),
                action="this node's ledger no longer extends what it signed: it signs no "
                "further checkpoint until restarted; audit it now (lapor-node audit export, "
                "then audit verify)",
            )
        except Exception as e:
            CHECKPOINT_FAILURES.labels(kind=type(e).__name__).inc()
            self.log.error("checkpoint.failed", error_kind=type(e).__name__, error=str(e))
        finally:
            self.checkpoint_rounds += 1
