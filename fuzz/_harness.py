"""The harness runner: feed inputs drawn by hypothesis to a target, count refusals
(NodeError) and crashes (anything else), and keep a few examples of each crash kind."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from node.errors import NodeError

__all__ = ["CHUNK", "Feeder", "Harness", "Loop", "Outcome", "opened", "run_harness"]

T = TypeVar("T")

# Examples of each crash kind kept for the report.
EXAMPLES = 3
# Inputs per hypothesis run (see Feeder).
CHUNK = 1000


@dataclass(frozen=True)
class Harness:
    """`setup(folder)` (once, in a fresh temporary folder) returns the state handed to
    `target(state, value)` with each value `strategy` draws."""

    name: str
    strategy: st.SearchStrategy[Any]
    target: Callable[[Any, Any], None]
    setup: Callable[[Path], contextlib.AbstractContextManager[Any]] | None = None


@dataclass
class Outcome:
    name: str
    inputs: int = 0
    refused: int = 0
    seconds: float = 0.0
    crashes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def crashed(self) -> int:
        return sum(self.crashes.values())

    def add(self, other: Outcome) -> None:
        """Count `other` (the same harness, run by another job) in this one; seconds add up
        (harness time over all jobs, not wall time)."""
        self.inputs += other.inputs
        self.refused += other.refused
        self.seconds += other.seconds
        self.crashes.update(other.crashes)
        for kind, shown in other.examples.items():
            kept = self.examples.setdefault(kind, [])
            kept.extend(shown[: EXAMPLES - len(kept)])


class Loop:
    """One event loop for a whole harness run: `run(coro)` as asyncio.run does (the
    coroutine, then every task it left behind cancelled and awaited), without making and
    closing a new loop for every input (which cost as much as the call under test)."""

    def __init__(self, runner: asyncio.Runner) -> None:
        self._runner = runner

    @staticmethod
    async def _alone(coro: Coroutine[Any, Any, T]) -> T:
        try:
            return await coro
        finally:
            me = asyncio.current_task()
            left = [t for t in asyncio.all_tasks() if t is not me]
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(self._alone(coro))

    @classmethod
    @contextlib.contextmanager
    def open(cls) -> Iterator[Loop]:
        with asyncio.Runner() as runner:
            yield cls(runner)


@contextlib.contextmanager
def _nothing(_: Path) -> Iterator[None]:
    yield None


def _where(error: BaseException) -> str:
    """The crash kind: exception type and the innermost frame in node/ that raised it."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "/node/" in f.filename]
    place = f"{Path(frames[-1].filename).name}:{frames[-1].name}" if frames else "?"
    return f"{type(error).__name__} in {place}"


class Feeder:
    """A harness with its state set up: `feed(n, seed)` runs one hypothesis run of `n`
    inputs (a chunk) and adds what happened to `outcome`. A long run is many chunks, each
    with its own seed: hypothesis's memory of the inputs it tried stays one chunk's, and a
    run can stop between chunks (a time budget) with exact counts."""

    def __init__(self, harness: Harness, state: Any, outcome: Outcome) -> None:
        self.harness = harness
        self.state = state
        self.outcome = outcome

    def feed(self, inputs: int, run_seed: int | str) -> int:
        """Feed `inputs` values drawn with `run_seed`; return how many were fed (fewer only
        when hypothesis runs out of distinct inputs). Never raise for what the target
        raises."""
        harness, state, outcome = self.harness, self.state, self.outcome
        started, before = time.monotonic(), outcome.inputs

        @seed(run_seed)
        @settings(
            max_examples=max(1, inputs),
            database=None,
            deadline=None,
            derandomize=False,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(harness.strategy)
        def feed(value: Any) -> None:
            outcome.inputs += 1
            try:
                harness.target(state, value)
            except NodeError:
                outcome.refused += 1
            except Exception as e:  # the point: count whatever escapes the error tree
                kind = _where(e)
                outcome.crashes[kind] += 1
                kept = outcome.examples.setdefault(kind, [])
                if len(kept) < EXAMPLES:
                    shown = " ".join(f"{e!s}"[:200].split())
                    kept.append(shown + " <- " + " ".join(repr(value).split())[:300])

        feed()
        outcome.seconds += time.monotonic() - started
        return outcome.inputs - before


@contextlib.contextmanager
def opened(harness: Harness) -> Iterator[Feeder]:
    """The harness set up in a fresh temporary folder (its time counts in the outcome)."""
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix=f"fuzz-{harness.name}-") as folder,
        (harness.setup or _nothing)(Path(folder)) as state,
    ):
        yield Feeder(harness, state, Outcome(harness.name, seconds=time.monotonic() - started))


def run_harness(harness: Harness, inputs: int, run_seed: int = 0, chunk: int = CHUNK) -> Outcome:
    """Feed `inputs` values to the harness, `chunk` at a time; never raise for what the
    target raises."""
    with opened(harness) as feeder:
        done = n = 0
        while done < inputs:
            fed = feeder.feed(min(chunk, inputs - done), f"{run_seed}/{n}")
            if fed == 0:
                break
            done, n = done + fed, n + 1
    return feeder.outcome
