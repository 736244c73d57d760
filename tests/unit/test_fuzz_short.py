"""A short run of every fuzz harness (fuzz/, `python -m fuzz.run`): no input makes the
node's parsers raise anything outside the project's error tree (issue 21.10)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import strategies as st

from fuzz._harness import Harness, run_harness
from fuzz.run import HARNESSES, run_all

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# About 20 seconds in all on a quiet machine (the pytest timeout is 120 s).
INPUTS = 600


def test_every_harness_runs_without_a_crash() -> None:
    """Each harness runs its share of inputs; none crashes."""
    outcomes = run_all(INPUTS)
    assert [o.name for o in outcomes] == [h.name for h in HARNESSES]
    for outcome in outcomes:
        assert outcome.inputs >= INPUTS // len(HARNESSES) // 2, outcome
        assert not outcome.crashes, (outcome.name, dict(outcome.crashes), outcome.examples)


def test_the_runner_counts_what_escapes_the_error_tree() -> None:
    """An exception outside NodeError is counted as a crash by kind, with an example; a
    NodeError as a refusal (so the test above can fail)."""

    def target(_: None, n: int) -> None:
        if n % 3 == 0:
            raise KeyError(n)
        if n % 3 == 1:
            from node.errors import ValidationError

            raise ValidationError("refused")

    outcome = run_harness(Harness("synthetic", st.integers(0, 1000), target), 60)
    assert outcome.inputs == 60
    assert outcome.crashed > 0 and outcome.refused > 0
    assert all(kind.startswith("KeyError") for kind in outcome.crashes)
    assert all(outcome.examples[kind] for kind in outcome.crashes)


def test_the_command_reports_counts_and_fails_on_unknown_names() -> None:
    """`python -m fuzz.run` prints a line per harness; an unknown harness is refused."""
    ran = subprocess.run(
        [sys.executable, "-m", "fuzz.run", "--inputs", "12", "--only", "cards", "checkpoints"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert "cards" in ran.stdout and "checkpoints" in ran.stdout and "total" in ran.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "fuzz.run", "--only", "nothing"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode == 2 and "no harness nothing" in wrong.stderr


def test_jobs_share_the_inputs_and_a_budget_stops_between_chunks() -> None:
    """With --jobs 2 every harness gets its inputs, split between the jobs and summed; a
    spent budget starts no chunk (exact counts: none)."""
    outcomes = run_all(41, ["cards", "checkpoints"], jobs=2, chunk=7)
    assert [(o.name, o.inputs) for o in outcomes] == [("cards", 21), ("checkpoints", 20)]
    assert all(not o.crashes for o in outcomes)
    spent = run_all(40, ["cards"], budget=0.0)
    assert [(o.name, o.inputs) for o in spent] == [("cards", 0)]
