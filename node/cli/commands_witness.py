"""`lapor-node witness ...`: this node as a C2SP witness, and the cosignatures on its own
checkpoints (decision 0026, docs/auditor-guide.md)."""

from __future__ import annotations

from pathlib import Path

import click

from node.cli._common import (
    config_option,
    console,
    emit_json,
    handle_errors,
    json_option,
    open_node,
)
from node.services import cosigning

__all__ = ["witness"]


@click.group()
def witness() -> None:
    """C2SP witnessing: this node's cosigner key and its cosigned checkpoint."""


@witness.command("key")
@config_option
@json_option
@handle_errors
def key(config_path: Path | None, as_json: bool) -> None:
    """Print this node's cosigner verifier key, for logs' and auditors' policies."""
    with open_node(config_path) as ctx:
        cosigner = cosigning.cosigner_key(ctx)
    if as_json:
        emit_json({"name": cosigner.name, "vkey": cosigner.vkey})
    else:
        console.print(cosigner.vkey, markup=False, highlight=False, soft_wrap=True)


@witness.command("checkpoint")
@config_option
@handle_errors
def checkpoint(config_path: Path | None) -> None:
    """Print this node's latest checkpoint with the witnesses' cosignatures on it."""
    with open_node(config_path) as ctx, ctx.db.read() as session:
        note = cosigning.cosigned_checkpoint(session)
    if note is None:
        raise click.ClickException("this node has signed no checkpoint yet")
    click.echo(note.decode("utf-8"), nl=False)
