"""Node-level commands: init, serve, identity, link, demo."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

import click
from rich.table import Table

from node.cli._common import (
    config_option,
    console,
    emit_json,
    handle_errors,
    json_option,
    open_node,
    when,
)
from node.crypto.card import NodeCard
from node.errors import ValidationError
from node.logs import configure_logging
from node.services import checkpoints, links
from node.services.context import NodeContext
from node.services.setup import init_node

__all__ = ["demo", "identity", "init", "link", "serve"]


@click.command()
@click.option("--id", "node_id", help="Node id, e.g. id-64-02 (Kemendagri region code slug).")
@click.option("--name", help='Unit name, e.g. "Kabupaten Kutai Kartanegara".')
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    help="Data directory to create; node.yaml is written inside it.",
)
@click.option(
    "--listen",
    default="127.0.0.1:7400",
    show_default=True,
    help="Address the node's gRPC server listens on.",
)
@click.option(
    "--database-url",
    default="sqlite:///node.db",
    show_default=True,
    help="SQLAlchemy URL; relative SQLite paths are inside DIR.",
)
@click.option(
    "--timezone",
    default="Asia/Jakarta",
    show_default=True,
    help="Time zone for working days (Asia/Jakarta, Asia/Makassar, Asia/Jayapura).",
)
@config_option
@handle_errors
def init(
    node_id: str | None,
    name: str | None,
    directory: Path | None,
    listen: str,
    database_url: str,
    timezone: str,
    config_path: Path | None,
) -> None:
    """Create a node: keys, TLS certificate, node.yaml and its database at the latest schema.

    Either --dir DIR --id ID --name NAME (a new node), or --config PATH to complete the
    node an existing node.yaml describes (missing keys are created, nothing is overwritten).
    """
    if directory is None and config_path is None:
        config_path = Path("node.yaml")
    path = init_node(
        directory,
        node_id,
        name,
        config_path=config_path,
        listen=listen,
        database_url=database_url,
        timezone=timezone,
    )
    console.print(f"node ready: {path}")
    console.print(f"next: lapor-node identity export --config {path} --out card.json")


@click.command()
@config_option
@handle_errors
def serve(config_path: Path | None) -> None:
    """Run the node: mutual-TLS gRPC for linked peers, and the stream to the parent.

    Stops cleanly on SIGTERM or SIGINT.
    """
    with open_node(config_path, upgrade=True) as ctx:
        configure_logging(ctx.config.log_level, ctx.config.log_format)
        asyncio.run(_serve(ctx))


async def _serve(ctx: NodeContext) -> None:
    from node.federation.runtime import NodeRuntime

    runtime = NodeRuntime(ctx)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    port = await runtime.start()
    click.echo(f"lapor-node {ctx.node_id} serving on port {port}", err=True)
    try:
        await stop.wait()
        _exit_if_shutdown_hangs(ctx.config.server.grace_seconds * 3 + 10)
    finally:
        try:
            await asyncio.wait_for(runtime.stop(), ctx.config.server.grace_seconds * 3 + 5)
        except TimeoutError:
            click.echo("shutdown took too long; exiting anyway", err=True)


def _exit_if_shutdown_hangs(seconds: float) -> None:
    """Last resort: every transaction is committed or rolled back by the database itself, so
    a shutdown stuck in a network library must not keep the process (and its port) alive."""

    def give_up() -> None:
        click.echo(f"shutdown did not finish within {seconds:.0f}s; exiting", err=True)
        os._exit(3)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()


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


@click.group()
def link() -> None:
    """Links to this node's parent and children."""


@link.command("add")
@click.argument("card_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--as",
    "role",
    type=click.Choice(["parent", "child"]),
    required=True,
    help="The role the card's node plays for this node.",
)
@click.option("--address", help="HOST:PORT of the parent (required with --as parent).")
@config_option
@handle_errors
def link_add(card_file: Path, role: str, address: str | None, config_path: Path | None) -> None:
    """Pin a peer's card by hand (the offline fallback to `link join`)."""
    card = NodeCard.from_json(card_file.read_text())
    if address is not None and ":" not in address:
        raise ValidationError(f"--address must be HOST:PORT, found {address!r}")
    with open_node(config_path) as ctx:
        links.add_link(ctx, card, role, address)
    console.print(
        f"linked {card.node_id} ({card.name}) as {role}; "
        f"TLS sha256 {card.tls_fingerprint.hex()[:16]}..."
    )


@link.command("list")
@config_option
@json_option
@handle_errors
def link_list(config_path: Path | None, as_json: bool) -> None:
    """Linked peers with their traffic: sent, acknowledged, received, waiting."""
    with open_node(config_path) as ctx:
        views = links.list_links(ctx)
    if as_json:
        emit_json(views)
        return
    table = Table(
        "peer", "role", "name", "last seen", "sent", "acked", "received", "outbox", "last error"
    )
    for v in views:
        table.add_row(
            v.peer_id,
            v.role,
            v.name,
            when(v.last_seen_at),
            str(v.sent),
            str(v.acked),
            str(v.received),
            str(v.outbox_depth),
            v.last_error or "",
        )
    console.print(table)


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
    from node.demo import run_demo

    run_demo(directory, base_port or None)
