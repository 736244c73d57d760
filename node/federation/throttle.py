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
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from node.config import ThrottleConfig
from node.errors import NodeError, RateLimitedError
from node.logs import get_logger
from node.metrics import THROTTLED

__all__ = ["Throttle", "source_of"]

T = TypeVar("T")


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


class Throttle:
    """Per-source failure counts of one port (see the module docstring)."""

    def __init__(
        self,
        port: str,
        config: ThrottleConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.port = port
        self.config = config or ThrottleConfig()
        self.clock = clock
        self.sleep = sleep
        self.records: OrderedDict[str, _Record] = OrderedDict()

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
            retry = max(1, math.ceil(record.last + c.forget_seconds - now))
            await self.sleep(c.delay_seconds)
            raise RateLimitedError(
                f"{record.failures} failed attempts from {source} on the {self.port} port; "
                f"it refuses attempts from this address for {retry} s more. Retry after "
                "that with a valid credential (get a new one from the node's operator)"
            )
        wait = record.last + self.delay(record.failures) - now
        if wait > 0:
            await self.sleep(wait)

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
