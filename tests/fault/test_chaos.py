"""A small chaos campaign (bench/chaos.py) as part of the suite: nodes killed and links cut
at random while complaints travel down and their updates up; afterwards nothing is lost or
duplicated and every ledger verifies and reconciles."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.waits import COMMAND_BOUND, RECOVERY_BOUND

pytestmark = [pytest.mark.slow]

SETTLE = 2 * RECOVERY_BOUND
CHAOS = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"


def test_small_chaos_campaign_loses_and_duplicates_nothing() -> None:
    """2 regencies, 12 complaints, 4 faults (fixed seed): the four closing lines are clean."""
    argv = [sys.executable, str(CHAOS), "--regencies", "2", "--referrals", "12"]
    # Once every fault has healed, each of the two hops comes up again and delivers.
    argv += ["--faults", "4", "--seed", "7", "--settle-timeout", str(SETTLE)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_BOUND + SETTLE)
    lines = result.stdout.strip().splitlines()
    assert lines[-4:] == ["lost: 0", "duplicated: 0", "ledgers verified: yes", "reconciled: yes"], (
        result.stdout + result.stderr
    )
    assert result.returncode == 0
    assert "fault 4:" in result.stdout  # the faults did strike
