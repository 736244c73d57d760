"""The harness runner: feed inputs drawn by hypothesis to a target, count refusals
(NodeError) and crashes (anything else), and keep a few examples of each crash kind."""

from __future__ import annotations

import contextlib
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from node.errors import NodeError

__all__ = ["Harness", "Outcome", "run_harness"]

# Examples of each crash kind kept for the report.
EXAMPLES = 3


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


@contextlib.contextmanager
def _nothing(_: Path) -> Iterator[None]:
    yield None


def _where(error: BaseException) -> str:
    """The crash kind: exception type and the innermost frame in node/ that raised it."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "/node/" in f.filename]
    place = f"{Path(frames[-1].filename).name}:{frames[-1].name}" if frames else "?"
    return f"{type(error).__name__} in {place}"


def run_harness(harness: Harness, inputs: int, run_seed: int = 0) -> Outcome:
    """Feed `inputs` values to the harness; never raise for what the target raises."""
    outcome = Outcome(harness.name)
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix=f"fuzz-{harness.name}-") as folder,
        (harness.setup or _nothing)(Path(folder)) as state,
    ):

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
    outcome.seconds = time.monotonic() - started
    return outcome
