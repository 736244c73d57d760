"""`lapor-node complaint ...`: intake, disposition, the lifecycle and views
(docs/complaint-lifecycle.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

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
    when,
)
from node.cli.commands_routing import dispose, route
from node.complaints import CHANNELS, CLASSIFICATIONS, ComplaintDraft
from node.services import complaints as service
from node.services import confidential, intake, lifecycle, scheduler
from node.services.context import NodeContext
from node.workflow.lifecycle import ArchiveReason, Status

__all__ = ["complaint"]


@click.group()
def complaint() -> None:
    """Complaints on this node."""


complaint.add_command(route)  # the routing rules' dry run and disposal (docs/routing.md)
complaint.add_command(dispose)


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
@click.option(
    "--attach",
    "attach",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file the reporter brought (repeatable); kept by SHA-256 (docs/intake.md).",
)
@config_option
@credential_option
@json_option
@handle_errors
def submit(
    config_path: Path | None,
    credential: Path | None,
    as_json: bool,
    attach: tuple[Path, ...],
    **fields: object,
) -> None:
    """Register a complaint received at this node (e.g. a walk-in); prints its tracking id."""
    with operator_node(config_path, credential) as ctx:
        files = [intake.read_file_attachment(path, ctx.config.intake) for path in attach]
        draft = ComplaintDraft(**fields, attachments=tuple(f.ref for f in files))  # type: ignore[arg-type]
        tracking_id = intake.accept(ctx, draft, files).tracking_id
    if as_json:
        emit_json({"tracking_id": tracking_id})
    else:
        click.echo(tracking_id)


def _ids_from_option(fn: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--ids-from",
        type=click.File("r"),
        help="Also the tracking ids in this file, one per line ('-': standard input).",
    )(fn)


def _tracking_ids(given: tuple[str, ...], ids_from: TextIO | None) -> list[str]:
    """The ids given as arguments, then those in --ids-from (blank lines skipped)."""
    wanted = list(given)
    if ids_from is not None:
        wanted += [line.strip() for line in ids_from if line.strip()]
    if not wanted:
        raise click.UsageError("give at least one TRACKING_ID (or --ids-from FILE)")
    return wanted


@complaint.command("refer")
@click.argument("tracking_ids", metavar="TRACKING_ID...", nargs=-1)
@click.option("--to", "child", required=True, help="The child node id to dispose them to.")
@_ids_from_option
@config_option
@credential_option
@json_option
@handle_errors
def refer(
    tracking_ids: tuple[str, ...],
    child: str,
    ids_from: TextIO | None,
    config_path: Path | None,
    credential: Path | None,
    as_json: bool,
) -> None:
    """Dispose complaints to a child, all or none; each is delivered as soon as the child
    is connected. A backlog of thousands goes in one command (--ids-from)."""
    wanted = _tracking_ids(tracking_ids, ids_from)
    with operator_node(config_path, credential) as ctx:
        message_ids = service.refer_many(ctx, wanted, child)
    referred = [
        {"tracking_id": t, "message_id": m} for t, m in zip(wanted, message_ids, strict=True)
    ]
    if as_json:
        # One complaint: its fields at the top, as before several could be referred at once.
        emit_json(
            {"to": child, **(referred[0] if len(referred) == 1 else {}), "referred": referred}
        )
    elif len(referred) == 1:
        console.print(
            f"{plain(wanted[0])} referred to {plain(child)} (message {plain(message_ids[0])})"
        )
    else:
        console.print(f"{len(referred)} complaints referred to {plain(child)}")


@complaint.command("list")
@click.option("--status", type=click.Choice([x.value for x in Status]), help="Only this status.")
@click.option("--holder", help="Only complaints held by this node id.")
@click.option(
    "--classification", type=click.Choice(list(CLASSIFICATIONS)), help="Only this classification."
)
@click.option("--child", help="Only complaints this node referred to this child.")
@click.option("--year", type=int, help="Only complaints submitted in this year.")
@click.option("--overdue", is_flag=True, help="Only complaints that missed a deadline.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="At most this many (0: all); the output says when there are more.",
)
@config_option
@json_option
@handle_errors
def list_(
    status: str | None,
    holder: str | None,
    classification: str | None,
    child: str | None,
    year: int | None,
    overdue: bool,
    limit: int,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Complaints known to this node, oldest first. `--json` prints a list (`jq -r
    '.[].tracking_id'`); when --limit cuts it short, standard error says how many match."""
    with open_node(config_path) as ctx:
        listing = service.list_complaints_counted(
            ctx,
            status=status,
            holder=holder,
            classification=classification,
            child=child,
            year=year,
            overdue_only=overdue,
            limit=limit,
        )
    views = listing.views
    shown = (
        f"showing {len(views)} of {listing.total} complaints; --limit 0 lists all"
        if len(views) < listing.total
        else f"{listing.total} complaint{'' if listing.total == 1 else 's'}"
    )
    if as_json:
        emit_json(views)
        if len(views) < listing.total:  # stdout stays the list scripts read
            click.echo(shown, err=True)
        return
    table = Table(
        "tracking id",
        "status",
        "holder",
        "from",
        "classification",
        "category",
        "region",
        "updated",
        "overdue",
    )
    for v in views:
        table.add_row(
            *(
                plain(cell)
                for cell in (
                    v.tracking_id,
                    v.status,
                    v.holder,
                    v.received_from or "-",
                    v.classification,
                    v.category,
                    v.region_code,
                    when(v.updated_at),
                    ", ".join(v.overdue) or "-",
                )
            )
        )
    console.print(table)
    console.print(shown)


@complaint.command("show")
@click.argument("tracking_id")
@click.option("--content", is_flag=True, help="Also print the title and description kept here.")
@click.option(
    "--identity",
    is_flag=True,
    help="Also print the reporter of an anonymous or confidential complaint, where this node "
    "may see it (the operator's credential is required).",
)
@config_option
@credential_option
@json_option
@handle_errors
def show(
    tracking_id: str,
    content: bool,
    identity: bool,
    config_path: Path | None,
    credential: Path | None,
    as_json: bool,
) -> None:
    """A complaint's status, holder and history on this node."""
    reporter = None
    if identity:
        with operator_node(config_path, credential) as ctx:
            found = confidential.identity_of(ctx, tracking_id)
            reporter = {"name": found.name, "contact": found.contact, "id_number": found.id_number}
    with open_node(config_path) as ctx:
        view = service.show(ctx, tracking_id, with_content=content)
    if as_json:
        emit_json(view if reporter is None else {**dataclasses.asdict(view), "identity": reporter})
        return
    if reporter is not None:
        console.print(
            f"reporter (kept apart from the content): {plain(reporter['name'])}, "
            f"{plain(reporter['contact'])}, {plain(reporter['id_number'])}"
        )
    console.print(
        f"[bold]{plain(view.tracking_id)}[/]  {plain(view.status)}  held by {plain(view.holder)}"
    )
    console.print(
        f"entered at {plain(view.origin_node)}"
        + (f"; came from {plain(view.received_from)}" if view.received_from else "")
        + (f"; last referred to {plain(view.referred_to)}" if view.referred_to else "")
    )
    if view.overdue:
        console.print(f"[bold red]overdue:[/] {plain(', '.join(view.overdue))}")
    console.print(
        plain(
            f"{view.classification} / {view.category} / region {view.region_code} / "
            f"via {view.channel}"
            + ("  [anonymous]" if view.anonymous else "")
            + ("  [confidential]" if view.confidential else "")
        )
    )
    if view.title is not None:
        console.print(
            f"title: {plain(view.title)}\nreporter: {plain(view.reporter)}\n"
            f"{plain(view.description)}"
        )
    elif view.content_kept is False:
        console.print("content: not kept on this node (erased, or never received)")
    for n in view.notes:
        console.print(plain(f"{when(n.at)}  {n.kind} by {n.author}: {n.text}"))
    table = Table("at (UTC)", "status", "by", "note", "ledger #")
    for e in view.history:
        table.add_row(
            when(e.at),
            plain(e.status),
            plain(e.actor),
            plain(e.note),
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
            f"Erase the content of {plain(tracking_id)} on this node? It cannot be undone",
            abort=True,
        )
    with operator_node(config_path, credential) as ctx:
        index = service.erase(ctx, tracking_id, reason)
    if as_json:
        emit_json({"tracking_id": tracking_id, "erased": True, "ledger_index": index})
        return
    console.print(f"erased the content of {plain(tracking_id)} (ledger entry {index})")


def _done(as_json: bool, tracking_id: str, what: str, index: int) -> None:
    with_status = {"tracking_id": tracking_id, "action": what, "ledger_index": index}
    if as_json:
        emit_json(with_status)
    else:
        console.print(f"{plain(tracking_id)}: {plain(what)} (ledger entry {index})")


@complaint.command("archive")
@click.argument("tracking_id")
@click.option("--reason", required=True, type=click.Choice([r.value for r in ArchiveReason]))
@click.option("--note", help="Details (kept beside the ledger, not in it).")
@config_option
@credential_option
@json_option
@handle_errors
def archive(
    tracking_id: str,
    reason: str,
    note: str | None,
    config_path: Path | None,
    credential: Path | None,
    as_json: bool,
) -> None:
    """Reject (archive) a complaint with a reason code."""
    with operator_node(config_path, credential) as ctx:
        index = lifecycle.archive(ctx, tracking_id, reason, note)
    _done(as_json, tracking_id, f"archived ({reason})", index)


def _verb(
    name: str,
    option: str,
    option_help: str,
    act: Callable[[NodeContext, str, str | None], int],
    done: str,
    summary: str,
    *,
    required: bool,
) -> None:
    """Add `complaint NAME TRACKING_ID --OPTION TEXT`: one operator action, with the
    operator's credential, printing the ledger entry it made."""

    @complaint.command(name, help=summary)
    @click.argument("tracking_id")
    @click.option(f"--{option}", "text", required=required, help=option_help)
    @config_option
    @credential_option
    @json_option
    @handle_errors
    def command(
        tracking_id: str,
        text: str | None,
        config_path: Path | None,
        credential: Path | None,
        as_json: bool,
    ) -> None:
        with operator_node(config_path, credential) as ctx:
            index = act(ctx, tracking_id, text)
        _done(as_json, tracking_id, done, index)


def _required(fn: Callable[[NodeContext, str, str], int]) -> Callable[..., int]:
    """An action whose text click has made required (never None)."""
    return lambda ctx, tracking_id, text: fn(ctx, tracking_id, text or "")


_verb(
    "verify",
    "note",
    "What was checked (kept beside the ledger, not in it).",
    lifecycle.verify,
    "verified",
    "Mark a submitted (or held) complaint complete and in scope.",
    required=False,
)
_verb(
    "hold",
    "note",
    "What the reporter must complete.",
    lifecycle.hold,
    "held",
    "Hold (tunda) an incomplete complaint until the reporter completes it.",
    required=False,
)


def _bulk_verb(
    name: str,
    option_help: str,
    act: Callable[[NodeContext, Sequence[str], str], list[int]],
    done: str,
    summary: str,
) -> None:
    """Add `complaint NAME TRACKING_ID... [--ids-from FILE] --note TEXT`: the same operator
    action on several complaints, all or none, in one transaction (as `refer`)."""

    @complaint.command(name, help=summary)
    @click.argument("tracking_ids", metavar="TRACKING_ID...", nargs=-1)
    @click.option("--note", "text", required=True, help=option_help)
    @_ids_from_option
    @config_option
    @credential_option
    @json_option
    @handle_errors
    def command(
        tracking_ids: tuple[str, ...],
        text: str,
        ids_from: TextIO | None,
        config_path: Path | None,
        credential: Path | None,
        as_json: bool,
    ) -> None:
        wanted = _tracking_ids(tracking_ids, ids_from)
        with operator_node(config_path, credential) as ctx:
            indices = act(ctx, wanted, text)
        if len(wanted) == 1:  # as before several could be given at once
            _done(as_json, wanted[0], done, indices[0])
            return
        entries = [
            {"tracking_id": t, "ledger_index": i} for t, i in zip(wanted, indices, strict=True)
        ]
        if as_json:
            emit_json({"action": done, "count": len(entries), "done": entries})
        else:
            console.print(
                f"{len(entries)} complaints {done} (ledger entries {indices[0]} to {indices[-1]})"
            )


_bulk_verb(
    "update",
    "The follow-up (tindak lanjut) posted, the same on each.",
    lifecycle.follow_up_many,
    "followed up",
    "Post a follow-up on complaints this node holds (the first one starts handling each); "
    "several at once (or --ids-from FILE) are all followed up or none.",
)
_bulk_verb(
    "resolve",
    "The resolution (selesai) posted, the same on each.",
    lifecycle.resolve_many,
    "resolved",
    "Resolve complaints in progress; each closes by itself if the reporter does not reply. "
    "Several at once (or --ids-from FILE) are all resolved or none.",
)
_verb(
    "return",
    "reason",
    "Why this unit has no authority over it.",
    _required(lifecycle.return_),
    "returned",
    "Bukan wewenang: send a complaint back to the parent that referred it.",
    required=True,
)
_verb(
    "escalate",
    "reason",
    "Why it is escalated.",
    _required(scheduler.escalate),
    "escalated",
    "Escalate an overdue complaint this node holds to the parent it came from.",
    required=True,
)
_verb(
    "reply",
    "text",
    "The reporter's reply, as received.",
    _required(lifecycle.reply),
    "reply recorded",
    "Record a reporter's reply where the complaint entered; it reaches the holder, and "
    "reopens a resolved complaint.",
    required=True,
)


@complaint.command("tick")
@config_option
@credential_option
@json_option
@handle_errors
def tick(config_path: Path | None, credential: Path | None, as_json: bool) -> None:
    """Run the scheduler once (auto-close, and escalation if workflow.auto_escalate): what
    `serve` does periodically, for cron and tests."""
    with operator_node(config_path, credential) as ctx:
        done = scheduler.run_due(ctx)
    if as_json:
        emit_json(done)
        return
    console.print(
        f"closed {len(done.closed)}, escalated {len(done.escalated)}, overdue {len(done.overdue)}"
    )
    for tracking_id, why in done.failed:
        console.print(f"[red]{plain(tracking_id)}[/]: {plain(why)}")
