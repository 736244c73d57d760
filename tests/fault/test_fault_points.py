"""The TEST ONLY fault points (node/faults.py): unarmed they do nothing; armed they end the
process at once with status 137, at the Nth visit; a malformed setting is refused."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from node.faults import EXIT_STATUS, FAULT_ENV
from tests.support.waits import COMMAND_BOUND

VISIT_THREE_TIMES = (
    "from node.faults import fault_point\n"
    "for i in range(3):\n"
    "    fault_point('after_commit')\n"
    "    print('passed', i + 1, flush=True)\n"
)


def visit(setting: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if setting is not None:
        env[FAULT_ENV] = setting
    argv = [sys.executable, "-c", VISIT_THREE_TIMES]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=COMMAND_BOUND)


@pytest.mark.parametrize(
    ("setting", "status", "passed"),
    [
        pytest.param(None, 0, 3, id="unarmed"),
        pytest.param("before_commit", 0, 3, id="another-point"),
        pytest.param("after_commit", EXIT_STATUS, 0, id="first-visit"),
        pytest.param("after_commit:3", EXIT_STATUS, 2, id="third-visit"),
    ],
)
def test_fault_point_ends_the_process_only_where_armed(
    setting: str | None, status: int, passed: int
) -> None:
    """The process runs on past unarmed points and dies, with no cleanup, at the armed one."""
    result = visit(setting)
    assert result.returncode == status, result.stderr
    assert result.stdout.count("passed") == passed


@pytest.mark.parametrize("setting", ["after_comit", "after_commit:0", "after_commit:x"])
def test_malformed_setting_is_refused(setting: str) -> None:
    """A typo in the setting fails loudly instead of silently never firing."""
    result = visit(setting)
    assert result.returncode == 1
    assert FAULT_ENV in result.stderr
