"""Options given on a command group reach its subcommands or are refused, never silently
dropped (issue 21.1); parsed in process with click's runner, no node needed: each case is
refused before any node.yaml is read."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from node.cli.main import cli

MISSING = "/nonexistent/node.yaml"
BACKLOG = ["backlog", "--deadline", "2020-12-31"]


def _walk(command: click.Command, path: str) -> list[tuple[str, click.Group]]:
    if not isinstance(command, click.Group):
        return []
    found = [(path, command)]
    ctx = click.Context(command)
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        assert sub is not None, f"{path} {name} does not load"
        found += _walk(sub, f"{path} {name}")
    return found


def test_only_report_has_group_options() -> None:
    """A group with options of its own must hand them to its subcommands (as `report`
    does, tested below); every other group takes none, so an option before the
    subcommand is refused by click ("No such option")."""
    with_options = {
        path
        for path, group in _walk(cli, "lapor-node")
        if any(p.name not in {"help", "version"} for p in group.params)
    }
    assert with_options == {"lapor-node report"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["report", "--by", "child", *BACKLOG, "--year", "2020"],
            "--by belongs to `lapor-node report` itself and does not apply to "
            "`lapor-node report backlog`",
            id="group-only-option",
        ),
        pytest.param(
            ["report", "--year", "2020", *BACKLOG, "--year", "2021"],
            "--year is given twice with different values (2020 before 'backlog', 2021 after",
            id="conflicting-year",
        ),
        pytest.param(
            ["report", "--config", "a.yaml", *BACKLOG, "--year", "2020", "--config", "b.yaml"],
            "--config is given twice with different values",
            id="conflicting-config",
        ),
        pytest.param(
            ["report", "--json", *BACKLOG, "--year", "2020", "--format", "csv"],
            "--json and --format csv disagree",
            id="json-against-csv-across-levels",
        ),
        pytest.param(
            ["report", *BACKLOG, "--year", "2020", "--json", "--format", "csv"],
            "--json and --format csv disagree",
            id="json-against-csv",
        ),
        pytest.param(
            ["report", "--config", MISSING, "dashboard-token"],
            "--config belongs to `lapor-node report` itself and does not apply to "
            "`lapor-node report dashboard-token`",
            id="dashboard-token-reads-no-node",
        ),
        pytest.param(
            ["report", *BACKLOG],
            "Missing option '--year' (before or after `backlog`)",
            id="no-year",
        ),
        pytest.param(["complaint", "--config", MISSING, "list"], "No such option", id="complaint"),
        pytest.param(["link", "--json", "list"], "No such option", id="link"),
    ],
)
def test_group_options_are_refused_where_they_cannot_apply(args: list[str], message: str) -> None:
    """A usage error (exit 2) naming the option, before anything is read."""
    argv = args if "--config" in args else [*args, "--config", MISSING]
    result = CliRunner().invoke(cli, argv, prog_name="lapor-node")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_group_options_reach_backlog() -> None:
    """--config, --year and --format given before `backlog` are the ones it uses: the
    missing node.yaml named is the one given on the group, not the default."""
    result = CliRunner().invoke(
        cli,
        ["report", "--config", MISSING, "--year", "2020", "--json", *BACKLOG],
        env={"LAPOR_NODE_CONFIG": "/elsewhere/node.yaml"},
        prog_name="lapor-node",
    )
    assert result.exit_code == 1, result.output
    assert MISSING in result.output and "/elsewhere" not in result.output
