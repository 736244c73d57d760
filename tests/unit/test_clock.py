"""The test clock (LAPOR_NODE_FAKE_NOW, issue 21.4): SystemClock returns that instant,
frozen, and the real time without it; node.clock's docstring lists what it moves."""

from __future__ import annotations

import datetime as dt

import pytest

from node.clock import FAKE_NOW_ENV, FixedClock, SystemClock


def test_fake_now_is_frozen_and_moves_only_with_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every reading returns the same instant (in UTC) until the variable changes."""
    monkeypatch.setenv(FAKE_NOW_ENV, "2026-12-15T09:00:00+07:00")
    clock = SystemClock()
    first = clock.now()
    assert first == dt.datetime(2026, 12, 15, 2, 0, tzinfo=dt.UTC)
    assert first.utcoffset() == dt.timedelta(0)
    assert clock.now() == first
    monkeypatch.setenv(FAKE_NOW_ENV, "2026-12-16T09:00:00Z")
    assert clock.now() - first == dt.timedelta(days=1, hours=7)
    monkeypatch.delenv(FAKE_NOW_ENV)
    real = dt.datetime.now(dt.UTC)
    assert abs(clock.now() - real) < dt.timedelta(minutes=1)


def test_fixed_clock_moves_only_when_told() -> None:
    """FixedClock (the in-process test clock) advances only by `advance`."""
    start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    clock = FixedClock(start)
    assert clock.now() == clock.now() == start
    clock.advance(dt.timedelta(days=30))
    assert clock.now() == start + dt.timedelta(days=30)
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(dt.datetime(2026, 12, 1))
