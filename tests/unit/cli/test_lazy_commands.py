"""`lapor-node --version` and `--help` import no command module (issue 16.8: they cost
~1.8 s of CPU when main.py imported every command module, SQLAlchemy, Alembic and grpc);
each command is imported when it runs, and --help's summaries are the commands' own."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from node.cli.main import COMMANDS, cli

HEAVY = ("sqlalchemy", "alembic", "grpc", "rich", "yaml", "node.services", "node.cli.commands_")

PROBE = """
import json, sys
from node.cli.main import main
sys.argv = ["lapor-node", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.startswith(tuple(json.loads({heavy!r}))))
print(json.dumps(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_import_no_command(flag: str) -> None:
    """In a fresh interpreter, nothing heavy is imported to answer the flag."""
    code = PROBE.format(heavy=json.dumps(HEAVY))
    result = subprocess.run(
        [sys.executable, "-c", code, flag], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "lapor-node" in result.stdout
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_summaries_are_the_commands_own(name: str) -> None:
    """The summary main.py keeps for --help is the command's own (first paragraph)."""
    command = cli.get_command(click.Context(cli), name)
    assert command is not None and command.name == name
    assert command.get_short_help_str(limit=10_000) == COMMANDS[name][2]


def test_complaint_has_route_and_dispose() -> None:
    """The routing commands are part of `complaint`, loaded with it."""
    complaint = cli.get_command(click.Context(cli), "complaint")
    assert isinstance(complaint, click.Group)
    assert {"route", "dispose", "update", "resolve"} <= set(complaint.commands)


def test_unknown_command_is_a_usage_error() -> None:
    """A typo is click's usual message, not an import error."""
    result = CliRunner().invoke(cli, ["complain"], prog_name="lapor-node")
    assert result.exit_code == 2 and "No such command 'complain'" in result.output
