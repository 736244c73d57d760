"""The `lapor-node` command line run the way a test needs it: in this process (click's
CliRunner, the default) or as a new interpreter (`in_process=False`).

In process, a command costs what it does, not a new interpreter importing SQLAlchemy,
Alembic, grpc and rich again (about a second of CPU each time, hundreds of times a run).
What a command shows the operator is the same: the same click group, arguments, stdout,
stderr and exit status (an exception the command did not turn into words is a traceback
on stderr and status 1, as the interpreter would end). The process boundary itself (the
entry point, `python -m node.cli.main`, signals, what is on descriptor 2 before Python
starts) is what the tests that pass `in_process=False` look at.

Not thread-safe: CliRunner swaps sys.stdout and sys.stderr for the whole process while a
command runs, so a test that runs commands from several threads runs them as processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from collections.abc import Mapping, Sequence

import structlog
from click.testing import CliRunner

from node.cli.main import cli
from node.faults import FAULT_ENV
from tests.support.waits import COMMAND_BOUND

ENTRY = [sys.executable, "-m", "node.cli.main"]
# rich wraps tables at the terminal's width; a wide one keeps test output on one line.
ENV = {"COLUMNS": "200"}


def run_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    in_process: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `lapor-node ARGS`; the result as subprocess.run returns it."""
    merged = {**ENV, **(env or {})}
    if not in_process:
        return subprocess.run(
            [*ENTRY, *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=COMMAND_BOUND,
            env={**os.environ, **merged},
        )
    # A fault point reads the environment once per process and ends the process it is
    # armed in: armed here, it would do nothing (or end the test run).
    assert FAULT_ENV not in os.environ, f"{FAULT_ENV} is set: run the command with in_process=False"
    logging_as_found = structlog.get_config()
    try:
        result = CliRunner().invoke(
            cli, list(args), env=merged, input=input, prog_name="lapor-node"
        )
    finally:
        # A command configures logging onto the stderr CliRunner lent it, closed now.
        structlog.configure(**logging_as_found)
    stderr = result.stderr
    code = result.exit_code
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
        code = 1
    return subprocess.CompletedProcess(["lapor-node", *args], code, result.stdout, stderr)
