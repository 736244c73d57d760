"""The link's liveness rules (node.federation.liveness), pure: the timings keepalive_seconds
gives, and the silence watch that only the peer's traffic resets and that does not count
time we spent not reading."""

from __future__ import annotations

import pytest

from node.federation.liveness import Liveness, SilenceWatch


@pytest.mark.parametrize(
    ("keepalive", "beat", "silence", "ping_ms", "ping_timeout_ms"),
    [
        pytest.param(30, 10.0, 20.0, 15_000, 10_000, id="default"),
        pytest.param(6, 2.0, 4.0, 3_000, 2_000, id="fault-tests"),
    ],
)
def test_timings_follow_keepalive_seconds(
    keepalive: int, beat: float, silence: float, ping_ms: int, ping_timeout_ms: int
) -> None:
    live = Liveness(keepalive)
    assert (live.beat_seconds, live.silence_seconds) == (beat, silence)
    assert (live.ping_ms, live.ping_timeout_ms) == (ping_ms, ping_timeout_ms)


def test_the_default_notices_a_silent_peer_within_30_seconds() -> None:
    assert Liveness(30).detection_bound_seconds <= 30


def test_silence_counts_only_while_waiting_for_the_peer() -> None:
    watch = SilenceWatch(now=100.0)
    watch.waiting(100.0)
    assert watch.silent_for(105.0) == 5.0
    watch.busy()  # our queue is full: we are not reading
    assert watch.silent_for(150.0) == 0.0
    watch.waiting(150.0)  # reading again: silence counts from here
    assert watch.silent_for(152.0) == 2.0


def test_only_the_peers_frames_reset_the_silence() -> None:
    watch = SilenceWatch(now=0.0)
    watch.waiting(0.0)
    watch.heard(3.0)
    assert watch.silent_for(10.0) == 7.0
    watch.waiting(10.0)  # our own read call is not the peer's traffic
    assert watch.silent_for(12.0) == 2.0
    watch.heard(12.0)
    assert watch.silent_for(12.5) == 0.5


def test_only_a_peer_seen_heartbeating_is_held_to_the_silence_limit() -> None:
    """A peer of an older version sends no heartbeat: HTTP/2 pings watch it instead."""
    watch = SilenceWatch(now=0.0)
    watch.waiting(0.0)
    watch.heard(1.0)
    assert not watch.too_quiet(100.0, limit=20.0)
    watch.heard(2.0, heartbeat=True)
    assert not watch.too_quiet(21.0, limit=20.0)
    assert watch.too_quiet(22.5, limit=20.0)
    watch.heard(23.0)  # any frame after that keeps it alive; heartbeating stays known
    assert not watch.too_quiet(24.0, limit=20.0) and watch.heartbeating


def test_the_watch_sleeps_until_the_silence_could_first_pass_the_limit() -> None:
    """due_in: looking earlier can never find the peer too quiet, looking at the moment it
    gives plus a little always does if nothing came; a peer not yet heartbeating, or time
    spent busy, pushes it a whole limit away."""
    watch = SilenceWatch(now=0.0)
    watch.waiting(0.0)
    assert watch.due_in(0.0, limit=20.0) == 20.0  # not heartbeating yet
    watch.heard(3.0, heartbeat=True)
    due = watch.due_in(5.0, limit=20.0)
    assert due == 18.0
    assert not watch.too_quiet(5.0 + due, limit=20.0)
    assert watch.too_quiet(5.0 + due + 0.01, limit=20.0)
    watch.waiting(10.0)  # reading again after the frame: silence counts from the read
    assert watch.due_in(10.0, limit=20.0) == 20.0
    assert watch.due_in(40.0, limit=20.0) == 0.0  # already past: look at once
    watch.busy()
    assert watch.due_in(50.0, limit=20.0) == 20.0
