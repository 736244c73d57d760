"""Entry point: `lapor-node <group> <verb> ...`."""

from __future__ import annotations

import sys

import click

from node import __version__
from node.cli import commands_routing  # noqa: F401 - adds `complaint route|dispose`
from node.cli.commands_admin import admin
from node.cli.commands_audit import audit
from node.cli.commands_backup import backup
from node.cli.commands_complaint import complaint
from node.cli.commands_intake import intake
from node.cli.commands_keys import keys
from node.cli.commands_node import demo, identity, init, link, serve
from node.cli.commands_report import report


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="lapor-node")
def cli() -> None:
    """lapor-node: a federated SP4N-LAPOR! node.

    Every command acts on one node, found through --config (default ./node.yaml, or
    $LAPOR_NODE_CONFIG). Start with `lapor-node init --id ID --name NAME --dir DIR`.
    """


for command in (init, serve, identity, keys, link, complaint, audit, admin, demo):
    cli.add_command(command)
cli.add_command(intake)
cli.add_command(report)
cli.add_command(backup)


def main() -> None:
    sys.exit(cli.main(standalone_mode=True))


if __name__ == "__main__":
    main()
