"""Failed credential attempts, per source address: a growing delay, then a refusal.

The enrollment port (join secrets) and the intake port (gateway tokens) answer anyone who
can reach them; `Throttle` keeps a stranger from trying secrets as fast as the node can
answer. Per source address (the peer's IP, without its port):
  1. `failed(source)` counts a failed attempt (a refused join or confirm, an unknown
     gateway token) and the time of the latest one;
  2. `before(source)`, called before the credential is looked at, lets a source with
     fewer than `free_failures` failures in at once (a source that never failed is never
     slowed: no lookup but one dict access); after that each attempt is held until
     `delay_seconds * 2 ** (failures - free_failures)` (at most `max_delay_seconds`)
     after the latest failure; from `refuse_after` failures on, attempts are refused at
     with RateLimitedError (RESOURCE_EXHAUSTED), whose message says in how many seconds
     the source may try again; the refusal is answered `delay_seconds` late, so a client
     that retries at once cannot make the node answer refusals as fast as it asks (the
     held call costs a timer, not the database);
     the moment a source reaches that limit is logged once (`throttle.refusing`, a
     warning naming the port and the address);
  2a. a refusal is counted in lapor_node_throttled_total and answered each time, but
     logged in a bounded way: a source's first refusal gets the error edge's usual
     `<scope>.refused` line; its later ones (RateLimitedError.summarised) get none, and
     are counted in one `throttle.refused` warning per port at most every
     `summary_seconds` (the refusals since the last one, how many sources, the busiest),
     written `summary_seconds` after the first refusal it counts. A flood of 1,000 bad
     joins from one address is then its failures' lines, one refusal line and a summary
     a minute, not 1,000 warnings;
  3. a source's count is forgotten `forget_seconds` after its latest failure (refusals
     do not count as failures, so a refused source that waits gets a clean slate);
  4. at most `max_sources` sources are remembered (least recently failed forgotten
     first), so a flood from many addresses takes bounded memory.
A success clears nothing: a source that fails from behind the same address as an honest
gateway slows that gateway too (block it at the firewall; the refusal log names it).
Time comes from an injected clock and sleep, so the rule is tested without waiting.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from node.config import ThrottleConfig
from node.errors import NodeError, RateLimitedError
from node.logs import get_logger
from node.metrics import THROTTLED

__all__ = ["Throttle", "source_of"]

T = TypeVar("T")

# At most one `throttle.refused` summary per port this often (step 2a).
SUMMARY_SECONDS = 60.0
# Sources named in a summary, the most refused first.
SUMMARY_SOURCES = 5


def source_of(peer: str) -> str:
    """The source address of a gRPC peer string ("ipv4:10.0.0.7:51234" -> "10.0.0.7",
    "ipv6:[::1]:5000" -> "::1"); anything else (a Unix socket) as it is."""
    scheme, sep, rest = peer.partition(":")
    if not sep or scheme not in ("ipv4", "ipv6"):
        return peer
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return rest.strip("[]")
    return host.strip("[]")


@dataclass
class _Record:
    failures: int
    last: float
    refused: int = 0  # attempts refused since the record began


class Throttle:
    """Per-source failure counts of one port (see the module docstring)."""

    def __init__(
        self,
        port: str,
        config: ThrottleConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        later: Callable[[float, Callable[[], None]], object] | None = None,
        summary_seconds: float = SUMMARY_SECONDS,
    ) -> None:
        self.port = port
        self.config = config or ThrottleConfig()
        self.clock = clock
        self.sleep = sleep
        # Runs the summary later (None: the running loop's call_later).
        self.later = later
        self.summary_seconds = summary_seconds
        self.records: OrderedDict[str, _Record] = OrderedDict()
        # Refusals not logged one by one since the last summary (step 2a), by source (at
        # most max_sources named; the rest only counted).
        self.unlogged: Counter[str] = Counter()
        self.unlogged_total = 0
        self._summary_due = False

    def _record(self, source: str, now: float) -> _Record | None:
        record = self.records.get(source)
        if record is not None and now - record.last >= self.config.forget_seconds:
            del self.records[source]
            return None
        return record

    def delay(self, failures: int) -> float:
        """How long after the latest failure the next attempt is held, after `failures`."""
        c = self.config
        if failures < c.free_failures:
            return 0.0
        doublings = min(failures - c.free_failures, 64)
        return min(c.max_delay_seconds, c.delay_seconds * 2.0**doublings)

    def failed(self, source: str) -> None:
        """Count a failed attempt from `source`."""
        now = self.clock()
        record = self._record(source, now)
        if record is None:
            record = self.records[source] = _Record(0, now)
        record.failures += 1
        record.last = now
        if record.failures == self.config.refuse_after:
            get_logger().warning(
                "throttle.refusing",
                port_name=self.port,
                source=source,
                failures=record.failures,
                seconds=self.config.forget_seconds,
                action="attempts from this address are refused for this long; if it is not "
                "one of your children or gateways, block it at the firewall",
            )
        self.records.move_to_end(source)
        while len(self.records) > self.config.max_sources:
            self.records.popitem(last=False)

    async def before(self, source: str) -> None:
        """Hold an attempt from `source` as long as its failures earned, or refuse it
        (RateLimitedError, after delay_seconds) when it has failed `refuse_after` times."""
        if source not in self.records:
            return
        now = self.clock()
        record = self._record(source, now)
        if record is None:
            return
        c = self.config
        if record.failures >= c.refuse_after:
            THROTTLED.labels(port=self.port).inc()
            record.refused += 1
            summarised = record.refused > 1
            if summarised:
                self._unlogged(source)
            retry = max(1, math.ceil(record.last + c.forget_seconds - now))
            await self.sleep(c.delay_seconds)
            raise RateLimitedError(
                f"{record.failures} failed attempts from {source} on the {self.port} port; "
                f"it refuses attempts from this address for {retry} s more. Retry after "
                "that with a valid credential (get a new one from the node's operator)",
                summarised=summarised,
            )
        wait = record.last + self.delay(record.failures) - now
        if wait > 0:
            await self.sleep(wait)

    def _unlogged(self, source: str) -> None:
        """Count a refusal for the next summary, and have the summary written
        `summary_seconds` after the first refusal it counts."""
        self.unlogged_total += 1
        if source in self.unlogged or len(self.unlogged) < self.config.max_sources:
            self.unlogged[source] += 1
        if not self._summary_due:
            self._summary_due = True
            later = self.later or asyncio.get_running_loop().call_later
            later(self.summary_seconds, self.summarise)

    def summarise(self) -> None:
        """Log the refusals counted since the last summary as one warning (step 2a)."""
        self._summary_due = False
        if not self.unlogged_total:
            return
        busiest = self.unlogged.most_common(SUMMARY_SOURCES)
        get_logger().warning(
            "throttle.refused",
            port_name=self.port,
            refused=self.unlogged_total,
            sources=len(self.unlogged),
            busiest=[f"{source} ({count})" for source, count in busiest],
            seconds=self.summary_seconds,
            action="attempts from these addresses were refused again (each source's first "
            "refusal is logged on its own); if they are not your children or gateways, "
            "block them at the firewall",
        )
        self.unlogged.clear()
        self.unlogged_total = 0

    async def guard(self, source: str, attempt: Coroutine[Any, Any, T]) -> T:
        """Run `attempt` after `before(source)`; a NodeError from it counts as a failure.
        A refused attempt is closed without running."""
        try:
            await self.before(source)
        except BaseException:
            attempt.close()
            raise
        try:
            return await attempt
        except NodeError:
            self.failed(source)
            raise
