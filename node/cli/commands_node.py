"""Node-level commands: init, serve (the link group: node.cli.commands_link)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
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
from node.config import load_config
from node.errors import NodeError
from node.logs import configure_logging, core_lines_to_structlog
from node.services import (
    certificates,
    datadir,
)
from node.services.context import NodeContext
from node.services.setup import init_node
from node.services.startup_checks import check_before_serving

__all__ = ["init", "serve"]


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
@click.option(
    "--unit",
    help='The unit that runs the node, e.g. "Inspektorat Kabupaten Kutai Kartanegara": '
    "recorded in the ledger and shown by `admin show` (default: the node's name, not in "
    "the ledger until the first handover).",
)
@config_option
@json_option
@handle_errors
def init(
    node_id: str | None,
    name: str | None,
    directory: Path | None,
    listen: str,
    database_url: str,
    timezone: str,
    unit: str | None,
    config_path: Path | None,
    as_json: bool,
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
        unit=unit,
    )
    if as_json:
        config = load_config(path)
        emit_json(
            {
                "config": path,
                "node_id": config.node_id,
                "name": config.name,
                "listen": config.server.listen,
                "tls_cert": config.tls_cert,
            }
        )
        return
    console.print(f"node ready: {path}")
    console.print(f"next: lapor-node identity export --config {path} --out card.json")


@click.command()
@config_option
@handle_errors
def serve(config_path: Path | None) -> None:
    """Run the node: mutual-TLS gRPC for linked peers, and the stream to the parent.

    Stops cleanly on SIGTERM or SIGINT.
    """
    with datadir.private_files(), open_node(config_path, upgrade=True) as ctx:
        configure_logging(ctx.config.log_level, ctx.config.log_format)
        lock = datadir.hold(ctx.config)
        try:
            check_before_serving(ctx)
            with core_lines_to_structlog(
                ctx.config.log_level, ctx.config.log_format, node_id=ctx.node_id
            ):
                asyncio.run(_serve(ctx))
        finally:
            lock.release()


async def _serve(ctx: NodeContext) -> None:
    from node.federation.runtime import (
        NodeRuntime,
    )  # lazy: grpc and the servers load for serve only

    runtime = NodeRuntime(ctx)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watch = certificates.CertificateWatch(ctx)
    await _check_certificates(watch)
    port = await runtime.start()
    click.echo(f"lapor-node {ctx.node_id} serving on port {port}", err=True)
    watching = asyncio.create_task(_watch_certificates(watch))
    try:
        await stop.wait()
        _exit_if_shutdown_hangs(ctx.config.server.grace_seconds * 3 + 10)
    finally:
        watching.cancel()
        try:
            await asyncio.wait_for(runtime.stop(), ctx.config.server.grace_seconds * 3 + 5)
        except TimeoutError:
            click.echo("shutdown took too long; exiting anyway", err=True)


async def _watch_certificates(watch: certificates.CertificateWatch) -> None:
    """Every WATCH_SECONDS: the certificate expiry gauge, and warnings in the log."""
    while True:
        await asyncio.sleep(certificates.WATCH_SECONDS)
        await _check_certificates(watch)


async def _check_certificates(watch: certificates.CertificateWatch) -> None:
    try:
        await asyncio.to_thread(watch.check)
    except NodeError as e:  # best effort: never stop serving for it
        watch.log.error("certificate.check_failed", error=str(e))


def _exit_if_shutdown_hangs(seconds: float) -> None:
    """Last resort: every transaction is committed or rolled back by the database itself, so
    a shutdown stuck in a network library must not keep the process (and its port) alive."""

    def give_up() -> None:
        click.echo(f"shutdown did not finish within {seconds:.0f}s; exiting", err=True)
        os._exit(3)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()
