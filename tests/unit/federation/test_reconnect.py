"""The reconnect rule (node.federation.reconnect): after a session that was up for a while
the wait starts again from reconnect_min; after failures it doubles up to reconnect_max;
jitter never takes it above reconnect_max."""

from __future__ import annotations

import random

import pytest

from node.federation.reconnect import JITTER_FLOOR, STABLE_SECONDS, ReconnectPolicy


def _policy(seed: int = 1) -> ReconnectPolicy:
    return ReconnectPolicy.from_ms(200, 30_000, rng=random.Random(seed))


def test_failures_double_the_wait_up_to_the_maximum() -> None:
    policy = _policy()
    bases = [policy.base_after(None) for _ in range(10)]
    assert bases == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]


def test_a_stable_session_starts_the_wait_again_from_the_minimum() -> None:
    policy = _policy()
    for _ in range(12):  # a long outage: the wait is at its maximum
        policy.base_after(None)
    assert policy.base_after(STABLE_SECONDS) == 0.2
    assert policy.base_after(None) == 0.4


def test_a_session_that_broke_soon_after_its_hello_counts_as_a_failure() -> None:
    """A flapping link (Hello, then broken within STABLE_SECONDS) keeps backing off."""
    policy = _policy()
    assert [policy.base_after(STABLE_SECONDS / 10) for _ in range(4)] == [0.2, 0.4, 0.8, 1.6]
    assert policy.base_after(STABLE_SECONDS * 3) == 0.2


@pytest.mark.parametrize("seed", range(20))
def test_jitter_spreads_each_wait_below_its_base_never_above_the_maximum(seed: int) -> None:
    policy = _policy(seed)
    for up_for in [None] * 15 + [60.0] + [None] * 3:
        twin = ReconnectPolicy.from_ms(200, 30_000)
        twin._base = policy._base
        base = twin.base_after(up_for)
        delay = policy.delay_after(up_for)
        assert JITTER_FLOOR * base <= delay <= base <= policy.bound_seconds


def test_jitter_differs_between_dialers() -> None:
    """Children cut off together do not all dial back at the same instant."""
    delays = {ReconnectPolicy.from_ms(200, 30_000).delay_after(None) for _ in range(10)}
    assert len(delays) > 1


@pytest.mark.parametrize(("low", "high"), [(0, 1000), (-5, 1000), (2000, 1000)])
def test_a_policy_without_a_positive_range_is_refused(low: int, high: int) -> None:
    with pytest.raises(ValueError, match="0 < min <= max"):
        ReconnectPolicy.from_ms(low, high)
