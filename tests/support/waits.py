"""Waiting in tests: on a condition, polled until a bound derived from the configuration
of what is awaited (the reconnect backoff's maximum, the keepalive, a refresh interval),
with a margin.

The rules every test follows (issue 22):
- never a fixed sleep as synchronization: wait for the condition that the sleep hoped for;
- never an assertion that something was fast: a slow or busy machine may make any step
  several times slower, so a bound only says when to give up and report, it is not the
  figure under test (figures belong in bench/);
- a bound is `bound(expected seconds...)`: the configured durations the wait can take in
  the worst case the node's rules allow, times MARGIN, plus FLOOR for process start-up,
  database and TLS work that no setting bounds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from node.config import FederationConfig
from node.federation.pins import PIN_REFRESH_MAX_SECONDS
from node.federation.session import HELLO_TIMEOUT_SECONDS
from node.metrics import LINK_GAUGES_SECONDS

T = TypeVar("T")

MARGIN = 3.0  # a contended machine ran the suite 2.4 times slower (issue 22)
FLOOR = 10.0  # seconds for work no setting bounds: starting processes, TLS, SQL
POLL = 0.05  # seconds between two looks at a condition

# What tests/support/nodes.make_node writes into every test node's node.yaml: quick
# reconnects, and the default idle poll.
TEST_FEDERATION = FederationConfig(reconnect_min_ms=100, reconnect_max_ms=1000)
TEST_GRACE_SECONDS = 1  # server.grace_seconds: how long a stopping node lets calls finish

KEEPALIVE_TIMEOUT_SECONDS = 10.0  # grpc.keepalive_timeout_ms in the dialer's channel options
GRPC_BACKOFF_JITTER = 1.2  # grpc's own connect backoff: up to its maximum, +20 %
DIALER_JITTER = 1.5  # the dialer's sleep between sessions: its delay times 0.5..1.5


def bound(*seconds: float) -> float:
    """A generous bound for a wait whose worst case, by the rules configured, is the sum of
    `seconds`: MARGIN times that, plus FLOOR."""
    return MARGIN * sum(seconds) + FLOOR


def connect_seconds(federation: FederationConfig = TEST_FEDERATION) -> float:
    """How long one dial waits for its connection to the parent (federation.connect_timeout_ms)."""
    return federation.connect_timeout_ms / 1000


def redial_seconds(federation: FederationConfig = TEST_FEDERATION) -> float:
    """The longest a child's dialer may wait before its next connection attempt: a sleep
    at the backoff maximum with jitter, then grpc's own connect backoff (same maximum)."""
    maximum = federation.reconnect_max_ms / 1000
    return DIALER_JITTER * maximum + GRPC_BACKOFF_JITTER * maximum


def reconnect_bound(
    federation: FederationConfig = TEST_FEDERATION, *, dead_connection: bool = False
) -> float:
    """Time from a healed network to a working link again: a connect attempt begun while the
    network was down gives up at its timeout, then the redial wait. With `dead_connection`
    (the old connection vanished without a reset, so only keepalive can find it dead) first
    the keepalive, and a Hello that may be lost on the way."""
    seconds = connect_seconds(federation) + redial_seconds(federation)
    if dead_connection:
        seconds += federation.keepalive_seconds + KEEPALIVE_TIMEOUT_SECONDS + HELLO_TIMEOUT_SECONDS
    return bound(seconds)


def delivery_bound(federation: FederationConfig = TEST_FEDERATION) -> float:
    """A queued envelope crosses a link that is up: at once when its commit wakes the
    sender, at the latest at the next idle poll (a missed wakeup)."""
    return bound(federation.poll_interval_ms / 1000)


def recovery_bound(federation: FederationConfig = TEST_FEDERATION) -> float:
    """From a healed network until what was queued meanwhile has crossed: a reconnect, then
    a delivery."""
    return bound(
        connect_seconds(federation) + redial_seconds(federation), federation.poll_interval_ms / 1000
    )


def max_attempts(seconds: float, federation: FederationConfig = TEST_FEDERATION) -> int:
    """The most connection attempts a backing-off dialer may make in `seconds`: no two come
    closer than half the backoff minimum (its jitter's lower end); more is a storm."""
    return 1 + int(seconds / (federation.reconnect_min_ms / 1000 / 2))


def pin_change_bound() -> float:
    """A serving node acts on a link added or revoked in its database at its next pin
    refresh: the refresh interval, then closing or dialing the stream."""
    return bound(PIN_REFRESH_MAX_SECONDS, connect_seconds())


def gauges_bound(federation: FederationConfig = TEST_FEDERATION) -> float:
    """The link gauges show a delivery at their next refresh after it."""
    return bound(LINK_GAUGES_SECONDS, federation.poll_interval_ms / 1000)


DELIVERY_BOUND = delivery_bound()
# A node told to stop ends its calls within its grace period (its sessions, then its server).
STOP_BOUND = bound(2 * TEST_GRACE_SECONDS)
# A command run to its end (`lapor-node ...`, a browser): a hang guard. What a command waits
# on by configuration is at most a connect and a Hello (`link join`); the rest is Python's
# start-up, imports and SQL, which no setting bounds: twice the bound of the former.
COMMAND_BOUND = 2 * bound(connect_seconds(), HELLO_TIMEOUT_SECONDS)
RECOVERY_BOUND = recovery_bound()


def wait_until(
    predicate: Callable[[], T],
    timeout: float = DELIVERY_BOUND,
    interval: float = POLL,
    what: str = "condition",
) -> T:
    """Poll `predicate` until it returns a truthy value, and return that value; fail the test
    naming `what` after `timeout` seconds (a bound from this module, never a guess of how
    fast it should be)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = DELIVERY_BOUND,
    interval: float = POLL,
    what: str = "condition",
) -> T:
    """wait_until inside an event loop: polls without blocking the loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        await asyncio.sleep(interval)


def holds_throughout(
    predicate: Callable[[], object], seconds: float, interval: float = POLL, what: str = "it"
) -> None:
    """Check every `interval` that `predicate` stays true for `seconds`; fail at once when it
    does not. Only for a thing that must NOT happen, where no event can tell that the
    chance for it has passed: `seconds` is then the configured time within which the node
    would have done it (a few idle polls, say), so a slow machine cannot make the test fail,
    only (at worst) pass without seeing the wrong thing."""
    deadline = time.monotonic() + seconds
    while True:
        if not predicate():
            raise AssertionError(f"{what} stopped holding")
        if time.monotonic() > deadline:
            return
        time.sleep(interval)
