"""`lapor-node audit state`: the working tables against the replay of this node's ledger.

Registers itself on the `audit` group (node.cli.audit_group; node.cli.audit_all imports it),
so the group keeps one line for it. Thin: node.services.state_check does the work.
"""

from __future__ import annotations

import sys
from pathlib import Path

from node.cli._common import (
    config_option,
    console,
    emit_json,
    err_console,
    handle_errors,
    json_option,
    open_node,
    plain,
    progress_bar,
)
from node.cli.audit_group import audit
from node.errors import NodeError
from node.services.state_check import check_state, record_result

__all__ = ["state"]


@audit.command("state")
@config_option
@json_option
@handle_errors
def state(config_path: Path | None, as_json: bool) -> None:
    """Replay this node's whole ledger and compare every complaint's status, holder,
    referral target and deadline clocks with its working tables; print every difference
    (tracking id, column, the table's value, the ledger's). Exit 1 on any difference. The
    result is recorded: the reports warn while the latest check found differences."""
    with open_node(config_path) as ctx:
        with progress_bar("replaying", not as_json) as update:
            report = check_state(ctx, lambda done: update(done, None), record=False)
        try:
            record_result(ctx, report)
        except NodeError as e:  # the check stands; only the reports' warning is not updated
            err_console.print(f"the result was not recorded for the reports: {plain(e)}")
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "complaints": report.complaints,
                "entries": report.entries,
                "passes": report.passes,
                "differences": [
                    {
                        "tracking_id": d.tracking_id,
                        "column": d.column,
                        "table": d.table,
                        "ledger": d.ledger,
                        "index": d.index,
                    }
                    for d in report.differences
                ],
            }
        )
    else:
        for d in report.differences:
            console.print(plain(d.describe()), soft_wrap=True)
        line = (
            f"{report.complaints} complaint(s) compared with the replay of "
            f"{report.entries} ledger entries: {len(report.differences)} difference(s)"
        )
        if report.ok:
            console.print(line)
        else:
            err_console.print(
                f"{line}. The working tables were changed without the ledger (or the ledger "
                "without them): keep the database as evidence, and restore it from a backup "
                "made before the change (`lapor-node backup restore`)",
                soft_wrap=True,
            )
    if not report.ok:
        sys.exit(1)
