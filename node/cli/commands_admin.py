"""`lapor-node admin ...`: who administers this node and who operates it."""

from __future__ import annotations

from pathlib import Path

import click

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
from node.services import admin as service

__all__ = ["admin"]


@click.group()
def admin() -> None:
    """Administration of this node: the operator and the unit (docs/operator-guide.md)."""


@admin.command("handover")
@click.option("--unit", required=True, help='e.g. "Diskominfo Kabupaten Kutai Kartanegara".')
@click.option("--operator", required=True, help="The new operator (name, role).")
@click.option(
    "--credential-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the new operator's credential (default: replace "
    "operator.credential beside node.yaml).",
)
@config_option
@credential_option
@json_option
@handle_errors
def handover(
    unit: str,
    operator: str,
    credential_out: Path | None,
    config_path: Path | None,
    credential: Path | None,
    as_json: bool,
) -> None:
    """Hand administration over: record it in the ledger, issue the new operator's
    credential, and revoke the current one at once."""
    with operator_node(config_path, credential) as ctx:
        where = service.credential_path(ctx, credential)
        result = service.handover(ctx, unit, operator, credential_out, presented=where)
    if as_json:
        emit_json(result)
        return
    before = (
        f"{result.previous_operator} ({result.previous_unit})" if result.previous_unit else "nobody"
    )
    console.print(
        f"administration handed over from {plain(before)} to {plain(result.operator)} "
        f"({plain(result.unit)}); ledger entry {result.ledger_index}"
    )
    console.print(
        f"the new operator's credential is in {plain(result.credential_file)} (mode 0600); "
        "the previous credential no longer works"
    )


@admin.command("show")
@config_option
@json_option
@handle_errors
def show(config_path: Path | None, as_json: bool) -> None:
    """The unit administering this node and its operator now."""
    with open_node(config_path) as ctx:
        view = service.current(ctx)
    if as_json:
        emit_json(view)
        return
    if view is None:
        console.print("no operator credential issued yet (run `lapor-node init`)")
        return
    console.print(plain(f"{view.operator} ({view.unit}), since {view.issued_at}"))
