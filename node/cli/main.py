"""Entry point: `lapor-node <group> <verb> ...`.

Each command's module is imported when that command runs, not before (click's lazy group
pattern): the command modules import SQLAlchemy, Alembic, grpc and rich, which cost over a
second of CPU, so `lapor-node --version` and `--help` import none of them. The summaries
`--help` lists are kept here for the same reason; a test keeps them equal to each
command's own docstring."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from node import __version__
from node.cli import examples

# name -> (module, attribute, the summary `lapor-node --help` shows)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "admin": (
        "node.cli.commands_admin",
        "admin",
        "Administration of this node: the operator and the unit (docs/operator-guide.md).",
    ),
    "audit": (
        "node.cli.audit_all",
        "audit",
        "Checkpoints, exports, and their verification (docs/auditor-guide.md).",
    ),
    "backup": (
        "node.cli.commands_backup",
        "backup",
        "Online backups of the database with the keys, checked, and restores that refuse to "
        "take the node back behind what it has signed.",
    ),
    "complaint": ("node.cli.commands_complaint", "complaint", "Complaints on this node."),
    "demo": (
        "node.cli.commands_demo",
        "demo",
        "A local federation: national, province and two regencies on loopback, with "
        "complaints referred down two levels; prints where each one is on every node.",
    ),
    "identity": (
        "node.cli.commands_identity",
        "identity",
        "This node's public identity (its card).",
    ),
    "init": (
        "node.cli.commands_node",
        "init",
        "Create a node: keys, TLS certificate, node.yaml and its database at the latest schema.",
    ),
    "intake": (
        "node.cli.commands_intake",
        "intake",
        "Complaints from channel gateways (web, SMS 1708, Twitter, mobile apps, api).",
    ),
    "keys": (
        "node.cli.commands_keys",
        "keys",
        "This node's keys: rotate them, see their history (docs/operator-guide.md).",
    ),
    "link": ("node.cli.commands_link", "link", "Links to this node's parent and children."),
    "report": (
        "node.cli.commands_report",
        "report",
        "A year's figures: received, verified, referred, followed up, in progress, resolved, "
        "overdue, the follow-up and resolved shares, median working days; per child with "
        "--by child.",
    ),
    "serve": (
        "node.cli.commands_node",
        "serve",
        "Run the node: mutual-TLS gRPC for linked peers, and the stream to the parent.",
    ),
    "witness": (
        "node.cli.commands_witness",
        "witness",
        "C2SP witnessing: this node's cosigner key and its cosigned checkpoint.",
    ),
}


class LazyGroup(click.Group):
    """A group whose commands (COMMANDS) are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or cmd_name in self.commands:
            return super().get_command(ctx, cmd_name)
        module, attribute, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module}.{attribute} is not a click command")
        examples.attach(command, cmd_name)
        self.add_command(command, cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; what a command module did not turn into words itself (a
        NodeError, a database it could not use) still ends in one line, not a traceback."""
        try:
            return super().invoke(ctx)
        except Exception as error:
            common = sys.modules.get("node.cli._common")  # loaded by every command module
            if common is not None:
                common.exit_for(error)
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The list of commands for --help, from the kept summaries: nothing imported."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in COMMANDS:
                rows.append((name, _shorten(COMMANDS[name][2], limit)))
            else:
                command = super().get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _shorten(summary: str, limit: int) -> str:
    """As click shortens a command's help for the list (first sentence, within `limit`)."""
    return click.Command(None, help=summary).get_short_help_str(limit)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=examples.epilog(""),
)
@click.version_option(__version__, prog_name="lapor-node")
def cli() -> None:
    """lapor-node: a federated SP4N-LAPOR! node.

    Every command acts on one node, found through --config (default ./node.yaml, or
    $LAPOR_NODE_CONFIG). Start with `lapor-node init --id ID --name NAME --dir DIR`.
    """


def main() -> None:
    sys.exit(cli.main(prog_name="lapor-node", standalone_mode=True))


if __name__ == "__main__":
    main()
