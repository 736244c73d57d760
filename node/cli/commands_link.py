"""`lapor-node link`: links to this node's parent and children (add, invite, join, approve,
reject, revoke, list)."""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import asdict
from pathlib import Path

import click
from rich.table import Column, Table

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
from node.config import ServerConfig
from node.crypto.card import NodeCard
from node.crypto.linking import AddressPair, JoinToken
from node.errors import ValidationError
from node.services import (
    certificates,
    invites,
    leadership,
    links,
    witness,
)

__all__ = ["link"]


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
@click.option(
    "--enrollment-address",
    help="HOST:PORT of the parent's enrollment port, where this node fetches its key "
    "rotations after being away (default: the port after --address).",
)
@config_option
@credential_option
@json_option
@handle_errors
def link_add(
    card_file: Path,
    role: str,
    address: str | None,
    enrollment_address: str | None,
    config_path: Path | None,
    credential: Path | None,
    as_json: bool,
) -> None:
    """Pin a peer's card by hand (the offline fallback to `link join`)."""
    card = NodeCard.from_json(card_file.read_text())
    for option, value in (("--address", address), ("--enrollment-address", enrollment_address)):
        if value is not None and ":" not in value:
            raise ValidationError(f"{option} must be HOST:PORT, found {value!r}")
    with operator_node(config_path, credential) as ctx:
        links.add_link(ctx, card, role, address, enrollment_address)
    if as_json:
        emit_json(
            {
                "peer": card.node_id,
                "name": card.name,
                "role": role,
                "address": address,
                "tls_sha256": card.tls_fingerprint.hex(),
            }
        )
        return
    console.print(
        f"linked {card.node_id} ({card.name}) as {role}; "
        f"TLS sha256 {card.tls_fingerprint.hex()[:16]}..."
    )


@link.command("invite")
@click.option("--child", required=True, help="The child's node id, e.g. id-64-02.")
@click.option("--name", required=True, help='The child\'s name, e.g. "Kabupaten Paser".')
@click.option(
    "--ttl", default="48h", show_default=True, help="How long the token works: 30m, 48h, 7d."
)
@click.option(
    "--approve",
    "approval",
    type=click.Choice(invites.APPROVALS),
    default="auto",
    show_default=True,
    help="manual: a join waits for `link approve CHILD` on this node.",
)
@click.option(
    "--address",
    "addresses",
    multiple=True,
    help="HOST:PORT the child dials once linked (default: server.listen); repeatable.",
)
@click.option(
    "--enrollment-address",
    "enrollment_addresses",
    multiple=True,
    help="HOST:PORT of this node's enrollment port, one per --address (default: each "
    "--address's host with server.enrollment_listen's port).",
)
@config_option
@credential_option
@json_option
@handle_errors
def link_invite(
    child: str,
    name: str,
    ttl: str,
    approval: str,
    addresses: tuple[str, ...],
    enrollment_addresses: tuple[str, ...],
    config_path: Path | None,
    credential: Path | None,
    as_json: bool,
) -> None:
    """Print a single-use, expiring join token for one child (on stdout, alone).

    The child's operator runs `lapor-node link join TOKEN`. Send the token over a channel
    you trust: it carries a secret, and the TLS fingerprint that protects the join.
    """
    lifetime = invites.parse_ttl(ttl)
    with operator_node(config_path, credential) as ctx:
        pairs = _address_pairs(ctx.config.server, addresses, enrollment_addresses)
        token = invites.invite(ctx, child, name, lifetime, approval, pairs)
    text = token.encode()
    if as_json:
        emit_json(
            {
                "token": text,
                "invite_id": token.invite_id,
                "child": token.child_id,
                "name": token.child_name,
                "approval": approval,
                "expires_at": token.expires_at,
                "addresses": [[a.federation, a.enrollment] for a in token.addresses],
                "tls_sha256": token.parent_tls_sha256.hex(),
            }
        )
        return
    click.echo(text)
    err_console.print(
        f"invite for {token.child_id} ({token.child_name}): single use, approval {approval}, "
        f"expires {when(token.expires_at)} UTC.\n"
        f"Send it to the operator of {token.child_id} over a channel you trust; they run\n"
        f"  lapor-node link join TOKEN\n"
        f"It names {', '.join(a.federation for a in token.addresses)} and this node's TLS "
        f"sha256 {token.parent_tls_sha256.hex()}."
        + (
            f"\nWhen they have run it: lapor-node link approve {token.child_id}"
            if approval == "manual"
            else ""
        ),
        soft_wrap=True,
    )


def _address_pairs(
    server: ServerConfig, addresses: tuple[str, ...], enrollment_addresses: tuple[str, ...]
) -> list[AddressPair]:
    if not addresses:
        if enrollment_addresses:
            raise ValidationError("--enrollment-address goes with --address")
        return invites.default_addresses(server)
    if enrollment_addresses and len(enrollment_addresses) != len(addresses):
        raise ValidationError(
            f"give one --enrollment-address per --address ({len(addresses)}), "
            f"found {len(enrollment_addresses)}"
        )
    if not enrollment_addresses:
        port = server.enrollment_address.rpartition(":")[2]
        if not port:
            raise ValidationError(
                'joins are off on this node (server.enrollment_listen is ""); set it and '
                "restart serve, or pass --enrollment-address"
            )
        enrollment_addresses = tuple(f"{a.rpartition(':')[0]}:{port}" for a in addresses)
    return [AddressPair(a, e) for a, e in zip(addresses, enrollment_addresses, strict=True)]


@link.command("join")
@click.argument("token")
@click.option(
    "--wait",
    default="10m",
    show_default=True,
    help="How long to wait for the parent's approval (manual mode): 30s, 10m, 2h.",
)
@config_option
@credential_option
@json_option
@handle_errors
def link_join(
    token: str, wait: str, config_path: Path | None, credential: Path | None, as_json: bool
) -> None:
    """Link this node to its parent with the join token its operator sent (TOKEN, or - to
    read it from stdin). Safe to run again: it finishes an interrupted join."""
    from node.federation.enrollment_port import join  # lazy: the gRPC client loads for join only

    if token == "-":  # noqa: S105 - "-" means stdin, not a password
        token = sys.stdin.read()
    parsed = JoinToken.decode(token)
    waiting = invites.parse_duration(wait, "--wait")

    def pending(message: str) -> None:
        err_console.print(
            f"waiting: {message} (up to {wait}; Ctrl-C stops waiting, and running the same "
            "command again resumes)",
            soft_wrap=True,
        )

    with operator_node(config_path, credential) as ctx:
        certificates.require_own_valid(ctx)
        result = join(ctx, parsed, wait=waiting, on_pending=pending)
    if as_json:
        emit_json(result)
        return
    if result.already:
        console.print(
            f"already linked to {result.parent_id} ({result.parent_name}), with the "
            "certificate this token names; nothing to do"
        )
        return
    console.print(
        f"linked to {result.parent_id} ({result.parent_name}) as its child: the agreement "
        f"signed by both is ledger entry {result.ledger_index} here and "
        f"{result.parent_ledger_index} on {result.parent_id}. A running `lapor-node serve` "
        f"dials {result.address} within a second; no restart needed."
    )


@link.command("approve")
@click.argument("child")
@config_option
@credential_option
@json_option
@handle_errors
def link_approve(
    child: str, config_path: Path | None, credential: Path | None, as_json: bool
) -> None:
    """Approve the join waiting from CHILD (an invite made with --approve manual)."""
    with operator_node(config_path, credential) as ctx:
        approved = invites.approve(ctx, child)
    if as_json:
        emit_json(approved)
        return
    console.print(
        f"approved the join of {approved.child_id} (TLS sha256 "
        f"{(approved.tls_sha256 or b'').hex()}, signing key id "
        f"{(approved.signing_key_id or b'').hex()[:16]}); it completes when its "
        "`lapor-node link join` next asks (every 2 s while it waits, or when run again)"
    )


@link.command("reject")
@click.argument("child")
@click.option("--reason", default="", help="Told to the child's operator.")
@config_option
@credential_option
@json_option
@handle_errors
def link_reject(
    child: str, reason: str, config_path: Path | None, credential: Path | None, as_json: bool
) -> None:
    """Refuse the join from CHILD; its token stops working (waiting or not yet used)."""
    with operator_node(config_path, credential) as ctx:
        rejected = invites.reject(ctx, child, reason)
    if as_json:
        emit_json(rejected)
        return
    console.print(f"rejected {len(rejected)} invite(s) for {child}; their tokens no longer work")


@link.command("revoke")
@click.argument("peer")
@click.option("--reason", default="", help="Why; recorded in the ledger.")
@config_option
@credential_option
@json_option
@handle_errors
def link_revoke(
    peer: str, reason: str, config_path: Path | None, credential: Path | None, as_json: bool
) -> None:
    """End the link with PEER (a child, or this node's parent) now: recorded in the
    ledger; a running node closes its stream within a second and refuses it from then on."""
    with operator_node(config_path, credential) as ctx:
        revoked = links.revoke(ctx, peer, reason)
    if as_json:
        emit_json(revoked)
        return
    console.print(
        f"revoked the link with {revoked.peer_id} (its {revoked.role}): ledger entry "
        f"{revoked.ledger_index}"
    )
    if revoked.undelivered:
        err_console.print(
            f"{revoked.undelivered} envelope(s) queued for {revoked.peer_id} will not be "
            "delivered; dispose their complaints again (`lapor-node complaint list`)"
        )


_STATE_STYLE = {
    "connected": "green",
    "not connected": "red",
    "never connected": "red",
    "never linked": "red",
    "revoked": "dim",
}


@link.command("list")
@config_option
@json_option
@handle_errors
def link_list(config_path: Path | None, as_json: bool) -> None:
    """The parent and the children: expected (node.yaml), linked or not, connected now or
    not, last seen, the outbox waiting for them and its lag; then the tally."""
    with open_node(config_path) as ctx:
        report = links.link_report(ctx)
        pinned = {c.peer: c for c in certificates.peer_certificates(ctx)}
        now = ctx.clock.now()
        lease = leadership.current(ctx)  # None on SQLite: one serve, no lease
    if as_json:
        emit_json(
            [{**asdict(v), "tls_valid_until": _cert_end(pinned, v.peer_id)} for v in report.rows]
        )
        return
    table = Table(
        "peer",
        "role",
        "name",
        "state",
        "last seen",
        "sent",
        "acked",
        "received",
        "outbox",
        "lag",
        "witnessed",
        "last error",
        Column("certificate until", no_wrap=True),
    )
    for v in report.rows:
        style = _STATE_STYLE.get(v.state, "yellow")
        table.add_row(
            v.peer_id + ("" if v.expected or v.role == "parent" else " *"),
            v.role,
            v.name,
            f"[{style}]{v.state}[/]",
            when(v.last_seen_at),
            str(v.sent),
            str(v.acked),
            str(v.received),
            str(v.outbox_depth),
            _lag(v.lag_messages, v.lag_seconds),
            str(v.peer_checkpoint_size),
            (
                f"[bold red]SUSPENDED[/] (fork evidence: ledger #{v.suspended_by_entry}) "
                if v.suspended_by_entry is not None
                else ""
            )
            + (v.last_error or ""),
            _cert_cell(pinned.get(v.peer_id), now),
        )
    console.print(table)
    if any(not v.expected and v.role == "child" for v in report.rows):
        console.print("* not in expected_children (node.yaml)")
    if report.expected:
        console.print(report.summary(), soft_wrap=True)
    if lease is not None:
        console.print(leadership.describe(lease), soft_wrap=True)


_CERT_STYLE = {"expired": "bold red", "expiring": "yellow", "valid": "default"}


def _cert_end(
    pinned: dict[str | None, certificates.CertificateExpiry], peer: str
) -> dt.datetime | None:
    found = pinned.get(peer)
    return None if found is None else found.valid_until


def _cert_cell(cert: certificates.CertificateExpiry | None, now: dt.datetime) -> str:
    """The end of the certificate pinned for a peer: red once ended, yellow within 30 days."""
    if cert is None:
        return "-"
    state = cert.state(now)
    text = cert.valid_until.astimezone(dt.UTC).strftime("%Y-%m-%d")
    return f"[{_CERT_STYLE[state]}]{text}{'' if state == 'valid' else f' ({state})'}[/]"


def _lag(messages: int, seconds: float | None) -> str:
    """E.g. "3 msg, 12s": sequences the peer has not acknowledged, and the oldest's age."""
    if not messages:
        return "-"
    return f"{messages} msg" + ("" if seconds is None else f", {_age(seconds)}")


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


@link.command("resume")
@click.argument("peer")
@click.option("--reason", required=True, help="What the investigation found; recorded.")
@config_option
@credential_option
@json_option
@handle_errors
def link_resume(
    peer: str, reason: str, config_path: Path | None, credential: Path | None, as_json: bool
) -> None:
    """Accept envelopes again from a peer suspended for presenting inconsistent checkpoints.

    The fork evidence stays in the ledger; witnessing starts afresh from the peer's next
    checkpoint.
    """
    with operator_node(config_path, credential) as ctx:
        index = witness.lift_suspension(ctx, peer, reason)
    if as_json:
        emit_json({"peer": peer, "resumed": True, "ledger_index": index})
        return
    console.print(f"{peer} is accepted again (ledger entry {index})")
