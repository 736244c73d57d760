"""Time comes from an injected clock, so expiry and deadline logic is testable without sleeping.

Every NodeContext carries a Clock: tests pass a FixedClock; `serve` and each CLI command
use SystemClock, which reads the machine's clock unless LAPOR_NODE_FAKE_NOW is set.

LAPOR_NODE_FAKE_NOW (tests only; docs/operator-guide.md, "The test clock") is FROZEN: every
reading in the process returns that same instant, so time passes only by starting the next
process with a later value. It moves everything that reads SystemClock:
  - deadlines in working days, overdue and SLA state, `complaint tick` and the scheduler
    (auto-close, escalation), reports' "today" and default year, backlog deadlines;
  - every time the node records: ledger entries' `recorded_at`, complaint events,
    envelopes' `sent_at`, checkpoints, links (created, last seen, revoked), invites (issued,
    expiry) and the join's clock comparison, operator credentials and handovers, key
    rotations (`rotated_at`, the grace period's end);
  - the validity written into the certificates that `init` and `keys rotate` make
    (notBefore = the fake time minus five minutes, notAfter = 825 days after it);
  - certificate expiry warnings (`keys show`, `link list`, the dashboard, `serve`'s log and
    expiry gauge) and which retired certificate `serve` still presents.
It does NOT move:
  - the TLS handshake: OpenSSL (gRPC, Python's ssl) checks certificate validity against
    the machine's real clock. A certificate made under a fake time in the future is "not
    yet valid", and one made more than 825 days in the past "has expired", for every peer;
  - log timestamps (structlog's TimeStamper in node.logs reads the real clock);
  - message ids (UUIDv7 hold the real Unix milliseconds, node.ids);
  - intervals, timeouts and backoff (asyncio and time.monotonic: checkpoint and scheduler
    intervals, heartbeats, reconnects, `link join --wait`), and the checkpoint age gauge,
    which is the real time minus the (fake) time the checkpoint was signed;
  - auditor identities made by `audit identity`, and the auditor's export client.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Protocol

__all__ = ["FAKE_NOW_ENV", "Clock", "FixedClock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware (UTC)."""
        ...


FAKE_NOW_ENV = "LAPOR_NODE_FAKE_NOW"
"""TEST ONLY: an ISO 8601 instant with a zone (e.g. 2026-12-01T09:00:00+07:00) that
SystemClock returns instead of the real time, frozen, so tests can drive a CLI process or a
`serve` process past a deadline without sleeping (what it moves and what it does not: the
module docstring). Never set it on a production node."""


class SystemClock:
    def now(self) -> dt.datetime:
        fake = os.environ.get(FAKE_NOW_ENV)
        if fake:
            return _parse_fake(fake)
        return dt.datetime.now(dt.UTC)


def _parse_fake(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as e:
        raise ValueError(f"{FAKE_NOW_ENV} must be an ISO 8601 instant, found {text!r}") from e
    if value.tzinfo is None:
        raise ValueError(f"{FAKE_NOW_ENV} needs a zone (e.g. +07:00 or Z), found {text!r}")
    return value.astimezone(dt.UTC)


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware start")
        self._now = start

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, delta: dt.timedelta) -> None:
        self._now += delta
