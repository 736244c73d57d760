"""The `lapor-node audit` group and the options its subcommands share (--node, --card,
--identity: reading a running node over its Audit service). The subcommands live in
`commands_audit`, `commands_state` and `commands_tlog`, which each register theirs on this
group; `audit_all` imports them all (what `lapor-node audit` loads)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from node.crypto.card import NodeCard
from node.federation.audit_client import AuditClient, CallerIdentity

__all__ = ["audit", "remote_client", "remote_options"]

F = TypeVar("F", bound=Callable[..., Any])


def remote_options(fn: F) -> F:
    """--node, --card, --identity: read a running node over its Audit service."""
    for option in reversed(
        (
            click.option(
                "--node",
                "node_address",
                metavar="HOST:PORT",
                help="Read this running node over its Audit service instead "
                "(needs --card and --identity).",
            ),
            click.option(
                "--card",
                "card_path",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="The node's card (`lapor-node identity export`): its TLS certificate "
                "and signing key are all that is trusted.",
            ),
            click.option(
                "--identity",
                "identity_dir",
                type=click.Path(exists=True, file_okay=False, path_type=Path),
                help="Folder with your auditor.key and auditor.crt (`lapor-node audit "
                "identity`), which the node's operator has listed.",
            ),
        )
    ):
        fn = option(fn)
    return fn


def remote_client(node: str | None, card: Path | None, identity: Path | None) -> AuditClient | None:
    """The Audit client --node asks for, or None without --node."""
    if node is None:
        if card is not None or identity is not None:
            raise click.UsageError("--card and --identity go with --node HOST:PORT")
        return None
    if card is None or identity is None:
        raise click.UsageError("--node needs --card NODE_CARD.json and --identity DIR")
    return AuditClient(
        node, NodeCard.from_json(card.read_text(encoding="utf-8")), CallerIdentity.load(identity)
    )


@click.group()
def audit() -> None:
    """Checkpoints, exports, and their verification (docs/auditor-guide.md)."""
