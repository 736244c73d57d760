"""`lapor-node demo`: a local federation on loopback, for a first look."""

from __future__ import annotations

from pathlib import Path

import click

from node.cli._common import handle_errors
from node.demo import run_demo

__all__ = ["demo"]


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=Path("demo-data"),
    show_default=True,
    help="Where the demo's nodes keep their data (recreated).",
)
@click.option(
    "--base-port",
    type=int,
    default=0,
    help="First of four consecutive ports (default: free ports).",
)
@handle_errors
def demo(directory: Path, base_port: int) -> None:
    """A local federation: national, province and two regencies on loopback, with
    complaints referred down two levels; prints where each one is on every node."""
    run_demo(directory, base_port or None)
