"""`lapor-node report`: a year's figures for this node and its children, the backlog
against a deadline, and the dashboard's token (docs/reports.md). Read-only."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import secrets
from typing import Any

import click
from click.core import ParameterSource
from rich.table import Table

from node.cli._common import (
    config_option,
    console,
    emit_json,
    group_options,
    handle_errors,
    open_node,
    plain,
    when,
)
from node.errors import ValidationError
from node.services import reports as service
from node.workflow.reports import Figures

__all__ = ["report"]

FORMATS = ("table", "json", "csv")


def _format_option(fn: Any) -> Any:
    fn = click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="How to print: a table, JSON (the dashboard's figures), or CSV for a spreadsheet.",
    )(fn)
    return click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(fn)


def _year_option(fn: Any) -> Any:
    # Required, but it may be given before the subcommand (`report --year 2022 backlog`):
    # checked once the group's options are merged in (_settle).
    return click.option(
        "--year", type=int, help="Complaints submitted in this year (UTC). Required."
    )(fn)


def _settle(click_ctx: click.Context, accepted: frozenset[str] | None) -> dict[str, Any]:
    """The command's options, with those given on `report` before the subcommand merged in
    (or refused: node.cli._common.group_options), and the format resolved into `fmt`
    (--json is --format json; beside another --format it is refused). `accepted`: the
    group's options the subcommand takes; None for `report` itself."""
    inherited = {} if accepted is None else group_options(click_ctx, accepted)
    params = {**click_ctx.params, **inherited}
    if "fmt" in params and params["as_json"]:
        explicit = "fmt" in inherited or (
            click_ctx.get_parameter_source("fmt") is not ParameterSource.DEFAULT
        )
        if explicit and params["fmt"] != "json":
            raise click.UsageError(
                f"--json and --format {params['fmt']} disagree; give one", ctx=click_ctx
            )
        params["fmt"] = "json"
    return params


def _print_json(document: dict[str, Any]) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


NO_UPDATE = "no update yet"
"""The "as of" of a child that has sent no status update yet."""


def _median(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


# --- report ------------------------------------------------------------------------------

_CSV_COLUMNS = (
    "scope",
    "name",
    "connected",
    "as_of",
    "received",
    "verified",
    "referred",
    "followed_up",
    "in_progress",
    "resolved",
    "not_followed_up",
    "overdue",
    "follow_up_percent",
    "resolved_percent",
    "median_days_to_follow_up",
    "median_days_to_resolution",
)


def _csv_row(scope: str, name: str, connected: str, as_of: str, f: Figures) -> list[object]:
    return [
        plain(scope, markup=False),
        plain(name, markup=False),
        connected,
        as_of,
        f.received,
        f.verified,
        f.referred,
        f.followed_up,
        f.in_progress,
        f.resolved,
        f.not_followed_up,
        f.overdue,
        f.follow_up_share.percent,
        f.resolved_share.percent,
        "" if f.median_days_to_follow_up is None else f.median_days_to_follow_up,
        "" if f.median_days_to_resolution is None else f.median_days_to_resolution,
    ]


def _report_csv(r: service.Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    writer.writerow(_csv_row(r.node_id, r.name, "", "", r.figures))
    for c in r.children:
        as_of = "" if c.as_of is None else c.as_of.isoformat()
        writer.writerow(_csv_row(c.node_id, c.name, str(c.connected).lower(), as_of, c.figures))
    return out.getvalue()


def _figures_row(f: Figures) -> list[str]:
    return [
        str(f.received),
        str(f.verified),
        str(f.referred),
        str(f.followed_up),
        str(f.in_progress),
        str(f.follow_up_share),
        str(f.resolved),
        str(f.resolved_share),
        str(f.not_followed_up),
        str(f.overdue),
        _median(f.median_days_to_follow_up),
        _median(f.median_days_to_resolution),
    ]


def _report_table(r: service.Report) -> None:
    console.print(
        f"{plain(r.node_id)} {plain(r.name)}: complaints submitted in {r.year} "
        f"(as of {when(r.generated_at)} UTC)"
    )
    if r.note:
        console.print(plain(r.note))
    table = Table()
    table.add_column("scope", overflow="fold")
    table.add_column("link", overflow="fold")
    table.add_column("as of", no_wrap=True)
    for head in ("recv", "verif", "ref", "f/u", "in prog"):
        table.add_column(head, justify="right")
    table.add_column("follow-up share", no_wrap=True)
    table.add_column("res", justify="right")
    table.add_column("resolved share", no_wrap=True)
    for head in ("not f/u", "overdue", "med wd f/u", "med wd res"):
        table.add_column(head, justify="right")
    table.add_row(plain(r.node_id), "", "", *_figures_row(r.figures))
    for c in r.children:
        as_of = NO_UPDATE if c.as_of is None else c.as_of.strftime("%Y-%m-%d %H:%M")
        name = plain(f"{c.node_id} {c.name}".strip())
        table.add_row(name, plain(c.state), as_of, *_figures_row(c.figures))
    console.print(table)
    console.print(
        "recv received, verif verified, ref referred to a child, f/u followed up (in_progress, "
        "resolved or closed), in prog in_progress, res resolved or closed; shares are percents "
        "rounded half up to one decimal; med wd: median working days from submission; as of: "
        "the latest status update from that child (UTC)"
    )
    if r.expected_children:
        console.print(
            f"{r.connected_children} of {r.expected_children} expected children connected"
        )
    for m in r.missing_children:
        console.print(f"  not connected: {plain(m.node_id)} {plain(m.name)} ({plain(m.state)})")


@click.group(invoke_without_command=True)
@click.option("--year", type=int, help="Complaints submitted in this year (UTC). Required.")
@click.option(
    "--by",
    "by",
    type=click.Choice(["child"]),
    default=None,
    help="Also each child subtree, from the status updates that flowed up.",
)
@click.option("--child", help="Only this child subtree (implies --by child).")
@_format_option
@config_option
@click.pass_context
@handle_errors
def report(click_ctx: click.Context, /, **_: Any) -> None:
    """A year's figures: received, verified, referred, followed up, in progress, resolved,
    overdue, the follow-up and resolved shares, median working days; per child with --by
    child.

    `report backlog` lists what is still open against a deadline. Options given before a
    subcommand (`report --config FILE backlog ...`) apply to it, or are refused if it does
    not take them."""
    if click_ctx.invoked_subcommand is not None:
        return  # the subcommand takes the options given here (_settle)
    p = _settle(click_ctx, None)
    if p["year"] is None:
        raise ValidationError("say which year: lapor-node report --year 2026 [--by child]")
    with open_node(p["config_path"]) as ctx:
        r = service.report(ctx, p["year"], by_child=p["by"] == "child", child=p["child"])
    if p["fmt"] == "json":
        _print_json(service.to_document(r))
    elif p["fmt"] == "csv":
        click.echo(_report_csv(r), nl=False)
    else:
        _report_table(r)


# --- backlog -----------------------------------------------------------------------------


def _parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as e:
        raise ValidationError(f"--deadline must be a date YYYY-MM-DD, found {value!r}") from e


def _backlog_csv(b: service.Backlog) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["tracking_id", "child", "status", "holder", "confidential", "submitted_on",
         "overdue", "days_left", "working_days_left"]
    )  # fmt: skip
    for i in b.items:
        writer.writerow(
            [plain(i.tracking_id, markup=False), plain(i.child, markup=False), i.status,
             plain(i.holder, markup=False), str(i.confidential).lower(),
             i.submitted_on.isoformat(), "; ".join(i.overdue), b.days_left,
             "" if b.working_days_left is None else b.working_days_left]
        )  # fmt: skip
    return out.getvalue()


def _backlog_table(b: service.Backlog) -> None:
    left = f"{b.days_left} days"
    if b.working_days_left is not None:
        left += f", {b.working_days_left} working days"
    console.print(
        f"{plain(b.node_id)}: {len(b.items)} complaints of {b.year} still open; deadline "
        f"{b.deadline.isoformat()} ({left} left from {b.today.isoformat()})"
    )
    if b.open_by_child:
        console.print(
            "open per child: " + ", ".join(f"{plain(k)} {v}" for k, v in b.open_by_child.items())
        )
    table = Table("tracking id", "child", "status", "holder", "submitted", "overdue")
    for i in b.items:
        table.add_row(
            plain(i.tracking_id) + (" (confidential)" if i.confidential else ""),
            plain(i.child),
            plain(i.status),
            plain(i.holder),
            i.submitted_on.isoformat(),
            plain(", ".join(i.overdue) or "-"),
        )
    console.print(table)


@report.command("backlog")
@_year_option
@click.option(
    "--deadline", required=True, help="The date every complaint must be finished by (YYYY-MM-DD)."
)
@_format_option
@config_option
@click.pass_context
@handle_errors
def backlog(click_ctx: click.Context, /, **_: Any) -> None:
    """Every complaint of a year still open (not resolved, closed or archived), per child,
    with the days left until the deadline."""
    p = _settle(click_ctx, frozenset({"year", "fmt", "as_json", "config_path"}))
    if p["year"] is None:
        raise click.UsageError(
            "Missing option '--year' (before or after `backlog`).", ctx=click_ctx
        )
    day = _parse_date(p["deadline"])
    with open_node(p["config_path"]) as ctx:
        b = service.backlog(ctx, p["year"], day)
    if p["fmt"] == "json":
        _print_json(service.to_document(b))
    elif p["fmt"] == "csv":
        click.echo(_backlog_csv(b), nl=False)
    else:
        _backlog_table(b)


# --- the dashboard's token ---------------------------------------------------------------


@report.command("dashboard-token")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the token and its SHA-256.")
@click.pass_context
@handle_errors
def dashboard_token(click_ctx: click.Context, as_json: bool) -> None:
    """Make a token for a dashboard on a non-loopback address: prints the token (give it to
    the people who may look) and the line for node.yaml (only its SHA-256 is kept)."""
    # It reads no node: of the options of `report`, only --json applies.
    as_json = as_json or bool(group_options(click_ctx, frozenset({"as_json"})).get("as_json"))
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    if as_json:
        emit_json({"token": token, "token_sha256": digest})
        return
    click.echo(f"token: {token}")
    click.echo(f'node.yaml, under dashboard:  token_sha256: "{digest}"')
