"""Per-source throttling of failed credential attempts (node.federation.throttle), on a
fake clock: the delay grows, the source is refused, then forgotten; others are untouched."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from node.config import ThrottleConfig
from node.errors import RateLimitedError, ValidationError
from node.federation.status import status_for
from node.federation.throttle import Throttle, source_of
from node.metrics import THROTTLED

CONFIG = ThrottleConfig(
    free_failures=2,
    delay_seconds=1.0,
    max_delay_seconds=4.0,
    refuse_after=6,
    forget_seconds=100.0,
    max_sources=3,
)


class FakeTime:
    """A clock that moves only when the throttle sleeps or the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def time_() -> FakeTime:
    return FakeTime()


@pytest.fixture
def throttle(time_: FakeTime) -> Throttle:
    return Throttle("enrollment", CONFIG, clock=time_.clock, sleep=time_.sleep)


def _refused() -> float:
    return THROTTLED.labels(port="enrollment")._value.get()


@pytest.mark.parametrize(
    ("peer", "source"),
    [
        ("ipv4:10.0.0.7:51234", "10.0.0.7"),
        ("ipv6:[::1]:5000", "::1"),
        ("ipv6:[2001:db8::1]:443", "2001:db8::1"),
        ("unix:/run/lapor.sock", "unix:/run/lapor.sock"),
        ("", ""),
    ],
)
def test_source_is_the_address_without_its_port(peer: str, source: str) -> None:
    """Two calls from one host on different ports count as one source."""
    assert source_of(peer) == source


def test_a_source_that_never_failed_is_never_held(throttle: Throttle, time_: FakeTime) -> None:
    """Attempts from a clean source pass at once, however many."""
    for _ in range(50):
        asyncio.run(throttle.before("10.0.0.1"))
    assert time_.slept == []


def test_the_delay_doubles_per_failure_up_to_the_cap(throttle: Throttle, time_: FakeTime) -> None:
    """After free_failures, each attempt waits delay * 2^(n - free) after the last failure,
    at most max_delay."""
    waits = []
    for _ in range(5):
        throttle.failed("10.0.0.1")
        time_.slept.clear()
        asyncio.run(throttle.before("10.0.0.1"))
        waits.append(sum(time_.slept))
    assert waits == [0.0, 1.0, 2.0, 4.0, 4.0]


def test_time_already_passed_counts_toward_the_delay(throttle: Throttle, time_: FakeTime) -> None:
    """A source that waited on its own since its last failure is not held again."""
    for _ in range(4):
        throttle.failed("10.0.0.1")
    time_.now += 3.0
    asyncio.run(throttle.before("10.0.0.1"))
    assert time_.slept == [pytest.approx(1.0)]


def test_past_the_limit_the_source_is_refused_with_when_to_retry(
    throttle: Throttle, time_: FakeTime
) -> None:
    """At refuse_after failures: RateLimitedError (RESOURCE_EXHAUSTED) naming the source and
    the seconds left, counted in the metric, answered delay_seconds late (a client that
    retries at once is held that long per try)."""
    with capture_logs() as logs:
        for _ in range(CONFIG.refuse_after + 2):
            throttle.failed("10.0.0.9")
    (warned,) = [e for e in logs if e["event"] == "throttle.refusing"]
    assert warned["source"] == "10.0.0.9" and warned["port_name"] == "enrollment"
    assert warned["log_level"] == "warning"
    time_.now += 40.0
    before = _refused()
    with pytest.raises(RateLimitedError, match=r"8 failed .* 10\.0\.0\.9.*for 60 s more") as caught:
        asyncio.run(throttle.before("10.0.0.9"))
    assert status_for(caught.value).name == "RESOURCE_EXHAUSTED"
    assert _refused() == before + 1
    assert time_.slept == [CONFIG.delay_seconds]
    asyncio.run(throttle.before("10.0.0.1"))  # another source is untouched
    assert time_.slept == [CONFIG.delay_seconds]


def test_a_quiet_period_forgets_the_source(throttle: Throttle, time_: FakeTime) -> None:
    """forget_seconds after its last failure, a refused source starts again from zero;
    refusals themselves do not extend the period."""
    for _ in range(CONFIG.refuse_after):
        throttle.failed("10.0.0.9")
    for _ in range(3):
        time_.now += 30.0
        with pytest.raises(RateLimitedError):
            asyncio.run(throttle.before("10.0.0.9"))
    time_.now += 10.0  # 90 s waited, 3 s held: past forget_seconds since the last failure
    time_.slept.clear()
    asyncio.run(throttle.before("10.0.0.9"))
    assert time_.slept == []
    throttle.failed("10.0.0.9")
    assert throttle.records["10.0.0.9"].failures == 1


def test_memory_is_bounded_by_max_sources(throttle: Throttle) -> None:
    """A flood from many addresses keeps at most max_sources; the least recent goes first."""
    for n in range(10):
        throttle.failed(f"10.0.1.{n}")
    throttle.failed("10.0.1.8")
    assert list(throttle.records) == ["10.0.1.7", "10.0.1.9", "10.0.1.8"]


def test_guard_counts_a_node_error_and_closes_a_refused_attempt(
    throttle: Throttle, time_: FakeTime
) -> None:
    """guard: a refused credential (NodeError) is a failure, a success is not; a refused
    source's attempt never runs (and is closed, not left unawaited)."""
    ran: list[str] = []

    async def attempt(ok: bool) -> str:
        ran.append("ran")
        if not ok:
            raise ValidationError("no such invite")
        return "answer"

    assert asyncio.run(throttle.guard("10.0.0.5", attempt(True))) == "answer"
    assert "10.0.0.5" not in throttle.records
    for _ in range(CONFIG.refuse_after):
        with pytest.raises(ValidationError):
            asyncio.run(throttle.guard("10.0.0.5", attempt(False)))
    assert throttle.records["10.0.0.5"].failures == CONFIG.refuse_after
    ran.clear()
    pending = attempt(True)
    with pytest.raises(RateLimitedError):
        asyncio.run(throttle.guard("10.0.0.5", pending))
    assert ran == [] and pending.cr_frame is None


class FakeLater:
    """Records what the throttle asks to run later; the test runs it."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, seconds: float, fn: Callable[[], None]) -> None:
        self.calls.append((seconds, fn))


def test_a_flood_of_refusals_is_logged_once_per_source_then_summarised(
    time_: FakeTime,
) -> None:
    """A refused source's first refusal is logged by the error edge (not summarised); its
    later ones are summarised: one `throttle.refused` line per summary period counting
    them all, written summary_seconds after the first. The metric counts every refusal."""
    later = FakeLater()
    throttle = Throttle(
        "enrollment",
        dataclasses.replace(CONFIG, forget_seconds=1e6),  # 1,000 refusals take 1,000 s
        clock=time_.clock,
        sleep=time_.sleep,
        later=later,
        summary_seconds=30.0,
    )
    for source in ("10.0.0.9", "10.0.0.8"):
        for _ in range(CONFIG.refuse_after):
            throttle.failed(source)
    before = _refused()
    flood = {"10.0.0.9": 1000, "10.0.0.8": 10}
    summarised: dict[str, list[bool]] = {source: [] for source in flood}
    with capture_logs() as logs:
        for source, attempts in flood.items():
            for _ in range(attempts):
                with pytest.raises(RateLimitedError) as caught:
                    asyncio.run(throttle.before(source))
                summarised[source].append(caught.value.summarised)
    assert _refused() == before + 1010
    for source, attempts in flood.items():
        assert summarised[source] == [False] + [True] * (attempts - 1)
    assert logs == []  # nothing yet: the summary is due later, once
    assert [seconds for seconds, _ in later.calls] == [30.0]
    with capture_logs() as logs:
        later.calls[0][1]()
    (summary,) = logs
    assert summary["event"] == "throttle.refused" and summary["log_level"] == "warning"
    assert summary["port_name"] == "enrollment"
    assert summary["refused"] == 999 + 9 and summary["sources"] == 2
    assert summary["busiest"] == ["10.0.0.9 (999)", "10.0.0.8 (9)"]
    # The next refusal starts the next period; a summary with nothing to say is not written.
    with pytest.raises(RateLimitedError) as caught:
        asyncio.run(throttle.before("10.0.0.9"))
    assert caught.value.summarised and len(later.calls) == 2
    with capture_logs() as logs:
        later.calls[1][1]()
        throttle.summarise()
    assert [(e["event"], e["refused"]) for e in logs] == [("throttle.refused", 1)]


def test_a_forgotten_source_is_logged_again_when_refused_again(time_: FakeTime) -> None:
    """Once forget_seconds have passed, a source that fails up to the limit again has its
    next first refusal logged on its own again."""
    throttle = Throttle("intake", CONFIG, clock=time_.clock, sleep=time_.sleep, later=FakeLater())
    firsts = []
    for _ in range(2):
        for _ in range(CONFIG.refuse_after):
            throttle.failed("10.0.0.7")
        for _ in range(3):
            with pytest.raises(RateLimitedError) as caught:
                asyncio.run(throttle.before("10.0.0.7"))
            firsts.append(not caught.value.summarised)
        time_.now += CONFIG.forget_seconds
    assert firsts == [True, False, False, True, False, False]
