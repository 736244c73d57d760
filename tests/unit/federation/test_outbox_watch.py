"""node.federation.outbox_watch.next_pause: SQLite's looks at data_version back off while
nothing moves and come back to the shortest pause at the first change."""

from __future__ import annotations

import itertools

from node.federation.outbox_watch import (
    OUTBOX_WATCH_MAX_SECONDS,
    OUTBOX_WATCH_SECONDS,
    next_pause,
)


def test_the_pause_doubles_up_to_the_longest_while_nothing_moves() -> None:
    """From the shortest, each look that finds no change doubles the pause, then it stays."""
    pauses = [OUTBOX_WATCH_SECONDS]
    for _ in range(12):
        pauses.append(next_pause(pauses[-1], moved=False))
    assert pauses[1] == 2 * OUTBOX_WATCH_SECONDS
    assert all(b == min(2 * a, OUTBOX_WATCH_MAX_SECONDS) for a, b in itertools.pairwise(pauses))
    assert pauses[-1] == OUTBOX_WATCH_MAX_SECONDS
    # An idle node looks about twice a second at most, not a hundred times.
    assert 1 / OUTBOX_WATCH_MAX_SECONDS <= 2


def test_a_change_brings_the_shortest_pause_back() -> None:
    """A row queued on an idle node is seen within the longest pause, and the looks that
    follow it are at the shortest again."""
    assert next_pause(OUTBOX_WATCH_MAX_SECONDS, moved=True) == OUTBOX_WATCH_SECONDS
    assert OUTBOX_WATCH_MAX_SECONDS < 1.0
