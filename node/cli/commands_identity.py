"""`lapor-node identity`: this node's public identity (its card)."""

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
from node.services import checkpoints, links

__all__ = ["identity"]


@click.group()
def identity() -> None:
    """This node's public identity (its card)."""


@identity.command("export")
@click.option(
    "--out", type=click.Path(path_type=Path), help="Write the card here (default: stdout)."
)
@config_option
@handle_errors
def identity_export(out: Path | None, config_path: Path | None) -> None:
    """Write this node's card: id, name, signing public key and TLS certificate."""
    with open_node(config_path) as ctx:
        text = links.own_card(ctx).to_json()
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        console.print(f"card written to {out}")


@identity.command("show")
@config_option
@json_option
@handle_errors
def identity_show(config_path: Path | None, as_json: bool) -> None:
    """Print this node's id, C2SP verifier key, signing key id and TLS fingerprint."""
    with open_node(config_path) as ctx:
        card = links.own_card(ctx)
        vkey = checkpoints.verifier_key(ctx)
    data = {
        "node_id": card.node_id,
        "name": card.name,
        "vkey": vkey,
        "signing_key_id": card.signing_key.key_id.hex(),
        "tls_sha256": card.tls_fingerprint.hex(),
    }
    if as_json:
        emit_json(data)
    else:
        for key, value in data.items():
            console.print(f"{key}: {value}")
