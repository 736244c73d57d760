"""`lapor-node complaint route|dispose`: disposing complaints by node.yaml's routing rules
(docs/routing.md). node.cli.commands_complaint adds them to the `complaint` group."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from rich.table import Table

from node.cli._common import (
    config_option,
    console,
    credential_option,
    emit_json,
    handle_errors,
    json_option,
    open_node,
    operator_node,
    plain,
)
from node.logs import configure_logging
from node.services import complaints
from node.services import routing as service
from node.workflow.routing import Decision, describe

__all__ = ["dispose", "route"]


def _print(tracking_id: str, decision: Decision) -> None:
    if decision.target is not None:
        console.print(
            f"[bold]{plain(tracking_id)}[/] would go to [bold]{plain(decision.target)}[/]"
        )
    else:
        console.print(f"[bold]{plain(tracking_id)}[/] would stay on this node")
    console.print(f"why: {plain(decision.reason)}")
    if decision.facts is not None:
        f = decision.facts
        console.print(
            plain(
                f"complaint: region {f.region_code}, category {f.category!r}, "
                f"classification {f.classification}"
            )
        )
    if not decision.considered:
        return
    table = Table("rule", "matches", "outcome", title="rules considered (routing.rules)")
    for c in decision.considered:
        table.add_row(plain(describe(c.rule)), "yes" if c.matched else "no", plain(c.outcome))
    console.print(table)


@click.command("route")
@click.argument("tracking_id")
@config_option
@json_option
@handle_errors
def route(tracking_id: str, config_path: Path | None, as_json: bool) -> None:
    """Dry run: where the routing rules would dispose a complaint, and why. Changes nothing."""
    with open_node(config_path) as ctx:
        decision = service.route(ctx, tracking_id)
        auto = ctx.config.routing.auto
    if as_json:
        emit_json({"tracking_id": tracking_id, "auto": auto, **dataclasses.asdict(decision)})
    else:
        _print(tracking_id, decision)


@click.command("dispose")
@click.argument("tracking_id")
@click.option(
    "--to",
    "child",
    help="Dispose to this linked child instead of where the rules say (manual override).",
)
@config_option
@credential_option
@json_option
@handle_errors
def dispose(
    tracking_id: str,
    child: str | None,
    config_path: Path | None,
    credential: Path | None,
    as_json: bool,
) -> None:
    """Dispose a complaint to the child the routing rules choose (or --to CHILD)."""
    with operator_node(config_path, credential) as ctx:
        # The disposition is logged (stderr, as `serve` logs), never mixed into stdout.
        configure_logging(ctx.config.log_level, ctx.config.log_format)
        reason = "manual override (--to)" if child else service.route(ctx, tracking_id).reason
        message_id = service.dispose(ctx, tracking_id, override=child)
        to = complaints.show(ctx, tracking_id).referred_to
    if as_json:
        emit_json(
            {"tracking_id": tracking_id, "to": to, "message_id": message_id, "reason": reason}
        )
        return
    console.print(f"{plain(tracking_id)} referred to {plain(to)} (message {plain(message_id)})")
    console.print(f"why: {plain(reason)}")
