"""Time comes from an injected clock, so expiry and deadline logic is testable without sleeping."""

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
SystemClock returns instead of the real time, so tests can drive a CLI process or a
`serve` process past a deadline without sleeping. Never set it on a production node."""


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
