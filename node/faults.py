"""TEST ONLY: named points where a test can make this process die abruptly.

The fault suite (tests/fault/) must show that nothing is lost and nothing takes effect
twice when a node dies at the worst moments of receiving a batch: after the frames are
read but before their transaction commits, and after the commit but before the Ack is on
the wire. A SIGKILL sent from outside cannot hit those windows reliably, so the node dies
itself there when the test arms a point through FAULT_ENV.

Invariants:
  1. Unarmed (FAULT_ENV unset or empty, as on every production node), `fault_point` only
     reads the environment once and returns: it never changes what the node does.
  2. Armed, the process ends with `os._exit(137)`: no finally block, atexit handler or
     database rollback runs, as after SIGKILL (exit status 128 + 9).
"""

from __future__ import annotations

import os
import sys

__all__ = ["FAULT_ENV", "POINTS", "fault_point"]

FAULT_ENV = "LAPOR_NODE_FAULT"
"""TEST ONLY: `NAME` or `NAME:N` (die at the Nth time the process reaches point NAME; N
defaults to 1). Names are in POINTS. Never set it on a production node."""

POINTS = frozenset({"before_commit", "after_commit", "before_dispose", "scheduler_slice"})
"""before_commit: a received batch is read, its transaction not yet committed.
after_commit: a received batch is committed, its Ack not yet sent.
before_dispose: a complaint is verified or accepted, its auto-disposition not yet made,
nothing of either committed (node.services.routing.auto_dispose_in).
scheduler_slice: a slice of a scheduler pass is written, its transaction not yet committed
(node.services.scheduler.DuePass.act)."""

EXIT_STATUS = 137

_hits: dict[str, int] = {}
_armed: list[tuple[str, int] | None] = []


def _parse(text: str) -> tuple[str, int] | None:
    if not text:
        return None
    name, _, count = text.partition(":")
    if name not in POINTS:
        raise ValueError(f"{FAULT_ENV} names no fault point: {name!r} (known: {sorted(POINTS)})")
    try:
        times = int(count) if count else 1
    except ValueError as e:
        raise ValueError(f"{FAULT_ENV} must be NAME or NAME:N, found {text!r}") from e
    if times < 1:
        raise ValueError(f"{FAULT_ENV} count must be at least 1, found {times}")
    return name, times


def _armed_point() -> tuple[str, int] | None:
    if not _armed:
        _armed.append(_parse(os.environ.get(FAULT_ENV, "")))
    return _armed[0]


def fault_point(name: str) -> None:
    """Die here, abruptly, if FAULT_ENV arms `name` and this is its Nth visit."""
    armed = _armed_point()
    if armed is None or armed[0] != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= armed[1]:
        sys.stderr.write(f"lapor-node: TEST ONLY fault point {name!r} reached; exiting\n")
        sys.stderr.flush()
        os._exit(EXIT_STATUS)
