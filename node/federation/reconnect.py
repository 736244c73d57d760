"""When a child dials its parent again after a session ended: the reconnect rule, pure.

The rule (docs/protocol.md, "Reconnecting"):
  1. After a session that exchanged Hellos and then stayed up at least STABLE_SECONDS, the
     next dial waits about `reconnect_min`: the link was working, the break is news.
  2. After any other ending (no connection, no Hello, or a session that broke within
     STABLE_SECONDS of its Hello: a flapping link), the wait doubles from the last one,
     starting at `reconnect_min` and never above `reconnect_max`.
  3. Jitter spreads each wait over [JITTER_FLOOR x wait, wait], so children cut off
     together do not dial back together and the wait never exceeds `reconnect_max`.

So the time from a healed network to a working link is at most
    detection + reconnect_max + connect_timeout (+ the Hello round trip),
where detection is how long the dialer takes to see the old connection is dead (the link's
silence limit, node.federation.liveness) and is zero when the session had already ended.

Before this rule the dialer reset its wait only when a session reached Hello and doubled it
otherwise, with jitter up to 1.5 times the wait: a long outage left it sleeping up to
1.5 x reconnect_max after the network healed, on top of a dead connection noticed only by
HTTP/2 keepalive (keepalive_seconds plus a 10 s ping timeout).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["JITTER_FLOOR", "STABLE_SECONDS", "ReconnectPolicy"]

STABLE_SECONDS = 10.0
"""A session up this long after its Hello counts as a working link (rule 1)."""

JITTER_FLOOR = 0.5
"""Each wait is drawn from [JITTER_FLOOR x wait, wait] (rule 3)."""


@dataclass
class ReconnectPolicy:
    """The dialer's waits between sessions. Not thread-safe; one per dialer."""

    min_seconds: float
    max_seconds: float
    stable_seconds: float = STABLE_SECONDS
    rng: random.Random = field(default_factory=random.Random)  # jitter, not secrets
    _base: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError(
                f"reconnect wait must be 0 < min <= max, found {self.min_seconds}, "
                f"{self.max_seconds}"
            )

    @classmethod
    def from_ms(cls, min_ms: int, max_ms: int, rng: random.Random | None = None) -> ReconnectPolicy:
        """From node.yaml's federation.reconnect_min_ms and reconnect_max_ms."""
        return cls(min_ms / 1000, max_ms / 1000, rng=rng or random.Random())  # noqa: S311 - jitter

    def base_after(self, up_for: float | None) -> float:
        """The wait before jitter after a session up for `up_for` seconds since its Hello
        (None: it never got that far); remembered for the next ending."""
        stable = up_for is not None and up_for >= self.stable_seconds
        if stable or self._base == 0.0:
            self._base = self.min_seconds
        else:
            self._base = min(self._base * 2, self.max_seconds)
        return self._base

    def delay_after(self, up_for: float | None) -> float:
        """Seconds to wait before the next dial (rules 1-3)."""
        base = self.base_after(up_for)
        return base * self.rng.uniform(JITTER_FLOOR, 1.0)

    @property
    def bound_seconds(self) -> float:
        """The longest wait this policy ever gives."""
        return self.max_seconds
