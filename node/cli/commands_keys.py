"""`lapor-node keys ...`: this node's signing key and TLS certificate over time."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from node.cli._common import (
    config_option,
    console,
    credential_option,
    emit_json,
    err_console,
    handle_errors,
    json_option,
    open_node,
    operator_node,
    when,
)
from node.ledger.audit import vkey_for
from node.services import certificates
from node.services import rotation as service
from node.services.invites import parse_duration

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """This node's keys: rotate them, see their history (docs/operator-guide.md)."""


@keys.command("rotate")
@click.option(
    "--grace",
    default="72h",
    show_default=True,
    help="How long peers still accept the old TLS certificate (s, m, h, d; at most 90d).",
)
@config_option
@credential_option
@json_option
@handle_errors
def rotate(grace: str, config_path: Path | None, credential: Path | None, as_json: bool) -> None:
    """Replace the signing key and TLS certificate. The rotation, signed by the old and
    the new key, goes into the ledger and to every linked peer, which re-pins; a running
    `serve` switches to the new key at once (no restart)."""
    period = service.parse_grace(parse_duration(grace, "--grace"))
    with operator_node(config_path, credential) as ctx:
        result = service.rotate(ctx, period)
        node_id = ctx.node_id
    if as_json:
        emit_json(result)
        return
    console.print(f"keys rotated; ledger entry {result.ledger_index} (KeyRotated)")
    console.print(f"  new verifier key: {vkey_for(node_id, result.new_key)}")
    console.print(
        f"  new TLS certificate SHA-256: {result.new_tls_fingerprint.hex()}, valid until "
        f"{when(result.new_tls_valid_until)}"
    )
    peers = ", ".join(result.peers) or "none linked"
    console.print(f"  rotation queued to: {peers}")
    console.print(
        f"  peers accept the old TLS certificate until {when(result.old_tls_valid_until)}"
    )
    if result.open_invites:
        console.print(
            f"[yellow]{result.open_invites} open invite(s) name the old certificate: "
            "issue them again (`lapor-node link invite`)[/yellow]"
        )


@keys.command("show")
@config_option
@json_option
@handle_errors
def show(config_path: Path | None, as_json: bool) -> None:
    """Every generation of this node's keys, the current one last, with the end of each
    TLS certificate's validity (`keys rotate` renews it; warned 30 days ahead)."""
    with open_node(config_path) as ctx:
        rows = service.generations(ctx)
        node_id = ctx.node_id
        now = ctx.clock.now()
        warning = certificates.own_certificate(ctx).warning(now)
    if as_json:
        emit_json(
            [
                {
                    "vkey": vkey_for(node_id, g.signing_key),
                    "tls_sha256": g.tls_fingerprint.hex(),
                    "activated_at": g.activated_at,
                    "rotation_entry": g.rotation_entry,
                    "retired_at": g.retired_at,
                    "tls_valid_until": g.tls_valid_until,
                    "tls_accepted_until": g.tls_accepted_until,
                }
                for g in rows
            ]
        )
        return
    table = Table(
        "since", "verifier key", "TLS SHA-256", "TLS valid until", "KeyRotated entry", "state"
    )
    for g in rows:
        if g.retired_at is None:
            state = "current"
        else:
            state = (
                f"retired {when(g.retired_at)}; old TLS accepted until {when(g.tls_accepted_until)}"
            )
        ended = now >= g.tls_valid_until
        table.add_row(
            when(g.activated_at) + ("" if g.rotation_entry is not None else " (init)"),
            vkey_for(node_id, g.signing_key),
            g.tls_fingerprint.hex()[:16],
            when(g.tls_valid_until) + (" (expired)" if ended else ""),
            "" if g.rotation_entry is None else str(g.rotation_entry),
            state,
        )
    console.print(table)
    if warning is not None:
        err_console.print(f"[yellow]{warning}[/yellow]", soft_wrap=True)
