"""Which of a node's `serve` processes leads, on PostgreSQL (node.store.lease; decision
0024). Every RENEW_SECONDS (a third of the lease: two renewals may fail before it ends)
the leader renews its lease for LEASE_SECONDS (issue 20.5: a renewal every 1.5 s was a
share of an idle node's CPU). A standby tries to take it over every RENEW_SECONDS, or
sooner, just after the lease it last saw ends (`standby_pause`), and succeeds once it has
expired, on the database's clock.

Invariants:
  - The process writes (Database.lead) only for an epoch it took over, and stops at once
    when a renewal finds another epoch, or when it could not renew for LEASE_SECONDS by its
    own monotonic clock (it cannot know whether another took over meanwhile). Either way
    the database would refuse its writes anyway; stepping down ends its links and jobs.
  - The leader's side jobs (links, periodic jobs, joins, intake) start only after the
    epoch is held (`on_lead`), and are ended before a standby could lead (`on_step_down`).
  - A leader that dies is replaced within LEASE_SECONDS of its last renewal, so of its
    death (+ STANDBY_MARGIN_SECONDS, a round trip, and the takeover's lock wait of a paused
    leader's transaction, which the takeover ends): under the 10 s promised (decision
    0035). A standby that could not read the lease tries again after RENEW_SECONDS.
The lease's statements run on threads of their own (a few per process, `_LEASE_THREADS`) over
a connection of their own (Database.lease_connection): a renewal waits neither for the
writer, nor for the readers' threads or connections, nor for asyncio's shared threads,
however many links are busy (decision 0041).
The gauges `lapor_node_leader` (1 leading, 0 standby) and `lapor_node_leader_epoch` say
which process leads, beside `link list`'s leader line."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from prometheus_client import Gauge

from node.errors import ConfigError
from node.metrics import REGISTRY
from node.services import leadership
from node.services.context import NodeContext

__all__ = [
    "LEASE_SECONDS",
    "RENEW_SECONDS",
    "STANDBY_MARGIN_SECONDS",
    "STANDBY_MIN_SECONDS",
    "Leadership",
    "sole_leader",
    "standby_pause",
]

T = TypeVar("T")
# A few threads, not one: a call left running past its wait (a database that does not
# answer while it fails over) must not hold back the next renewal or takeover.
_LEASE_THREADS = ThreadPoolExecutor(4, thread_name_prefix="lease")


async def _on_lease_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(
        _LEASE_THREADS, functools.partial(fn, *args)
    )


LEASE_SECONDS = 6.0
RENEW_SECONDS = LEASE_SECONDS / 3
STANDBY_MARGIN_SECONDS = 0.1  # a standby asks this long after the lease it saw ends
STANDBY_MIN_SECONDS = 0.5  # ... and never sooner than this after its last attempt

LEADER = Gauge(
    "lapor_node_leader",
    "1 while this serve process leads its node (holds the leader lease), 0 as a standby",
    registry=REGISTRY,
)
LEADER_EPOCH = Gauge(
    "lapor_node_leader_epoch",
    "The epoch of the leader lease this process last saw (its own while it leads)",
    registry=REGISTRY,
)


def sole_leader() -> None:
    """SQLite: the one `serve` of the data directory leads, with no lease (epoch 0)."""
    LEADER.set(1)
    LEADER_EPOCH.set(0)


def standby_pause(seen: leadership.LeaseView | None) -> float:
    """How long a standby waits before its next takeover attempt, having seen `seen` (None:
    it could not read the lease): until that lease ends on the database's clock, plus
    STANDBY_MARGIN_SECONDS, so that a dead leader is replaced as soon as its lease allows;
    but never longer than RENEW_SECONDS (a lease released by a leader that stopped cleanly
    is taken within that), and never shorter than STANDBY_MIN_SECONDS (an expired lease it
    could not take: a paused leader's transaction held it)."""
    if seen is None:
        return RENEW_SECONDS
    wait = seen.remaining_seconds + STANDBY_MARGIN_SECONDS
    return min(max(wait, STANDBY_MIN_SECONDS), RENEW_SECONDS)


class Leadership:
    """Take over, renew, step down; `on_lead(epoch)` and `on_step_down()` start and end the
    leader's side jobs."""

    def __init__(
        self,
        ctx: NodeContext,
        log: Any,
        on_lead: Callable[[int], Awaitable[None]],
        on_step_down: Callable[[], Awaitable[None]],
    ) -> None:
        self.ctx = ctx
        self.log = log
        self.on_lead = on_lead
        self.on_step_down = on_step_down
        listen = ctx.config.server.listen
        self.holder = f"{socket.gethostname()} pid {os.getpid()} ({listen})"
        self.epoch: int | None = None
        self.seen: leadership.LeaseView | None = None
        self._standby_pause = RENEW_SECONDS  # as a standby, until the next takeover attempt
        self._valid_until = 0.0
        LEADER.set(0)

    @property
    def leading(self) -> bool:
        return self.epoch is not None

    def standby_message(self) -> str:
        """What a child dialing this standby is told."""
        seen = self.seen
        leader = (
            "no leader yet" if seen is None or not seen.live else f"the leader is {seen.holder}"
        )
        epoch = "" if seen is None else f", epoch {seen.epoch}"
        return (
            f"this serve process of {self.ctx.node_id} is a standby ({leader}{epoch}); "
            f"dial again to reach the leader"
        )

    async def run(self) -> None:
        """Rounds after the first (`round`, which `serve` awaits at start so that a lone
        serve leads before its port opens): every RENEW_SECONDS while leading; as a
        standby, when the lease it last saw ends (standby_pause)."""
        while True:
            await asyncio.sleep(RENEW_SECONDS if self.leading else self._standby_pause)
            await self.round()

    async def round(self, *, first: bool = False) -> None:
        """Renew the lease if leading, else try to take it over. `first` (serve's start): a
        configuration that cannot lead (a port taken, say) is raised, to stop serve, after
        the lease is released; later it is logged and tried again next round."""
        now = asyncio.get_running_loop().time()
        if self.epoch is None:
            await self._try_to_lead(now, first=first)
        else:
            await self._renew(now)

    async def _try_to_lead(self, started: float, *, first: bool = False) -> None:
        try:
            epoch = await _on_lease_thread(
                leadership.take_over, self.ctx, self.holder, LEASE_SECONDS
            )
            if epoch is None:
                self.seen = await _on_lease_thread(leadership.current, self.ctx)
                self._standby_pause = standby_pause(self.seen)
                if self.seen is not None:
                    LEADER_EPOCH.set(self.seen.epoch)
                self.ctx.db.lead(None, self.standby_message())
                return
        except Exception as e:  # the database is away (a failover): try again next round
            self.log.warning("leader.lease_unreachable", error_kind=type(e).__name__, error=str(e))
            self._standby_pause = RENEW_SECONDS
            return
        self._valid_until = started + LEASE_SECONDS
        self.epoch = epoch
        self.ctx.db.lead(epoch)
        LEADER.set(1)
        LEADER_EPOCH.set(epoch)
        self.log.warning("leader.took_over", epoch=epoch, holder=self.holder)
        try:
            await self.on_lead(epoch)
        except Exception as e:
            self.log.error("leader.start_failed", error_kind=type(e).__name__, error=str(e))
            if first and isinstance(e, ConfigError):
                await self.release()
                raise
            await self.step_down(f"could not start leading: {e}")

    async def _renew(self, started: float) -> None:
        assert self.epoch is not None
        # Never wait past the lease's end for an answer: a database that does not answer
        # cannot be told this process still leads.
        left = max(0.1, self._valid_until - asyncio.get_running_loop().time())
        try:
            renewed = await asyncio.wait_for(
                _on_lease_thread(leadership.renew, self.ctx, self.epoch, LEASE_SECONDS), left
            )
        except Exception as e:
            self.log.warning("leader.renew_failed", error_kind=type(e).__name__, error=str(e))
            if asyncio.get_running_loop().time() >= self._valid_until:
                await self.step_down("the lease could not be renewed in time")
            return
        if renewed and started < self._valid_until:
            self._valid_until = started + LEASE_SECONDS
        elif renewed:
            # Renewed after it had expired by this process's clock (it was paused, or the
            # database was away): nobody took over, the epoch is still ours.
            self._valid_until = started + LEASE_SECONDS
            self.log.warning("leader.renewed_late", epoch=self.epoch)
        else:
            await self.step_down("another serve process took the lease over")

    async def step_down(self, why: str) -> None:
        epoch, self.epoch = self.epoch, None
        self._standby_pause = RENEW_SECONDS
        self.ctx.db.lead(None, self.standby_message())
        LEADER.set(0)
        self.log.warning("leader.stepped_down", epoch=epoch, why=why)
        await self.on_step_down()

    async def release(self) -> None:
        """A clean stop: let a standby take over at once."""
        epoch = self.epoch
        if epoch is None:
            return
        await self.step_down("stopping")
        try:
            await _on_lease_thread(leadership.release, self.ctx, epoch)
        except Exception as e:  # the lease then expires by itself
            self.log.warning("leader.release_failed", error_kind=type(e).__name__, error=str(e))
