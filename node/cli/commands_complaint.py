"""`lapor-node complaint ...`: intake, disposition and views."""

from __future__ import annotations

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
    when,
)
from node.complaints import CHANNELS, CLASSIFICATIONS, ComplaintDraft
from node.services import complaints as service

__all__ = ["complaint"]


@click.group()
def complaint() -> None:
    """Complaints on this node."""


@complaint.command("submit")
@click.option("--title", required=True)
@click.option("--description", required=True)
@click.option(
    "--classification",
    type=click.Choice(list(CLASSIFICATIONS)),
    default="pengaduan",
    show_default=True,
)
@click.option("--category", required=True, help="e.g. infrastruktur, kesehatan, pendidikan")
@click.option("--region", "region_code", required=True, help="Kemendagri code, e.g. 64.02")
@click.option("--channel", type=click.Choice(list(CHANNELS)), default="walk_in", show_default=True)
@click.option("--reporter-name", default="")
@click.option("--reporter-contact", default="")
@click.option("--reporter-id-number", default="")
@click.option("--location", default="")
@click.option("--anonymous", is_flag=True, help="Hide the reporter from everyone but this node.")
@click.option("--confidential", is_flag=True, help="Hide the whole report from the public.")
@click.option("--needs-inspection", is_flag=True, help="Berkadar pengawasan (60-day deadline).")
@config_option
@credential_option
@json_option
@handle_errors
def submit(
    config_path: Path | None, credential: Path | None, as_json: bool, **fields: object
) -> None:
    """Register a complaint received at this node (e.g. a walk-in); prints its tracking id."""
    draft = ComplaintDraft(**fields)  # type: ignore[arg-type]
    with operator_node(config_path, credential) as ctx:
        tracking_id = service.submit(ctx, draft)
    if as_json:
        emit_json({"tracking_id": tracking_id})
    else:
        click.echo(tracking_id)


@complaint.command("refer")
@click.argument("tracking_id")
@click.option("--to", "child", required=True, help="The child node id to dispose it to.")
@config_option
@credential_option
@json_option
@handle_errors
def refer(
    tracking_id: str,
    child: str,
    config_path: Path | None,
    credential: Path | None,
    as_json: bool,
) -> None:
    """Dispose a complaint to a child; it is delivered as soon as the child is connected."""
    with operator_node(config_path, credential) as ctx:
        message_id = service.refer(ctx, tracking_id, child)
    if as_json:
        emit_json({"tracking_id": tracking_id, "to": child, "message_id": message_id})
    else:
        console.print(f"{tracking_id} referred to {child} (message {message_id})")


@complaint.command("list")
@click.option("--status", help="Only complaints in this status.")
@click.option("--holder", help="Only complaints held by this node id.")
@click.option("--limit", type=int, default=200, show_default=True)
@config_option
@json_option
@handle_errors
def list_(
    status: str | None, holder: str | None, limit: int, config_path: Path | None, as_json: bool
) -> None:
    """Complaints known to this node, oldest first."""
    with open_node(config_path) as ctx:
        views = service.list_complaints(ctx, status=status, holder=holder, limit=limit)
    if as_json:
        emit_json(views)
        return
    table = Table(
        "tracking id", "status", "holder", "from", "classification", "category", "region", "updated"
    )
    for v in views:
        table.add_row(
            v.tracking_id,
            v.status,
            v.holder,
            v.received_from or "-",
            v.classification,
            v.category,
            v.region_code,
            when(v.updated_at),
        )
    console.print(table)


@complaint.command("show")
@click.argument("tracking_id")
@click.option("--content", is_flag=True, help="Also print the title and description kept here.")
@config_option
@json_option
@handle_errors
def show(tracking_id: str, content: bool, config_path: Path | None, as_json: bool) -> None:
    """A complaint's status, holder and history on this node."""
    with open_node(config_path) as ctx:
        view = service.show(ctx, tracking_id, with_content=content)
    if as_json:
        emit_json(view)
        return
    console.print(f"[bold]{view.tracking_id}[/]  {view.status}  held by {view.holder}")
    console.print(
        f"{view.classification} / {view.category} / region {view.region_code} / "
        f"via {view.channel}"
        + ("  [anonymous]" if view.anonymous else "")
        + ("  [confidential]" if view.confidential else "")
    )
    if view.title is not None:
        console.print(f"title: {view.title}\nreporter: {view.reporter}\n{view.description}")
    elif view.content_kept is False:
        console.print("content: not kept on this node (erased, or never received)")
    table = Table("at (UTC)", "status", "by", "note", "ledger #")
    for e in view.history:
        table.add_row(
            when(e.at),
            e.status,
            e.actor,
            e.note,
            "-" if e.ledger_index is None else str(e.ledger_index),
        )
    console.print(table)


@complaint.command("erase")
@click.argument("tracking_id")
@click.option(
    "--reason",
    required=True,
    help="Why (e.g. a data-protection request number); recorded in the ledger, so no "
    "personal data.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@config_option
@credential_option
@json_option
@handle_errors
def erase(
    tracking_id: str,
    reason: str,
    yes: bool,
    config_path: Path | None,
    credential: Path | None,
    as_json: bool,
) -> None:
    """Delete a complaint's content and salt from this node; every proof stays valid."""
    if not yes:
        click.confirm(
            f"Erase the content of {tracking_id} on this node? It cannot be undone", abort=True
        )
    with operator_node(config_path, credential) as ctx:
        index = service.erase(ctx, tracking_id, reason)
    if as_json:
        emit_json({"tracking_id": tracking_id, "erased": True, "ledger_index": index})
        return
    console.print(f"erased the content of {tracking_id} (ledger entry {index})")
