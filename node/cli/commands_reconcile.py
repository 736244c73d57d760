"""`lapor-node audit reconcile PARENT_EXPORT CHILD_EXPORT`: check that a parent's and a
child's ledgers agree on every envelope between them (node.ledger.reconcile).

Like `audit verify`, it needs no node: an auditor runs it on two export files alone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.padding import Padding
from rich.table import Table

from node.cli._common import console, emit_json, handle_errors, json_option, progress_bar
from node.errors import ValidationError
from node.ledger.reconcile import ExportSummary, Finding, Reconciliation, reconcile_exports

__all__ = ["reconcile"]

_WIDE = 140
"""Console columns from which findings are shown as a table."""


@click.command("reconcile")
# Not click.Path(exists=True): a file that cannot be read is one NodeError line, exit 1.
@click.argument("parent_export", type=click.Path(path_type=Path))
@click.argument("child_export", type=click.Path(path_type=Path))
@click.option(
    "--trust",
    "trusted_vkey",
    metavar="VKEY",
    help="The parent's verifier key as you know it (from its own parent, or `identity show` "
    "read in person). The child's key is then trusted through the parent's link entry.",
)
@json_option
@handle_errors
def reconcile(
    parent_export: Path, child_export: Path, trusted_vkey: str | None, as_json: bool
) -> None:
    """Check that a parent's and its child's ledgers record each envelope between them alike.

    Both exports are verified first. Then every referral, receipt and carried checkpoint is
    matched across them, and every discrepancy is listed. Envelopes sent after the other
    export was taken are listed as in flight and are not discrepancies. Exit 0 if there is
    no discrepancy, else 1.
    """
    with progress_bar("reconciling", not as_json) as progress:
        result = reconcile_exports(
            _lines(parent_export),
            _lines(child_export),
            trusted_vkey=trusted_vkey,
            progress=progress,
        )
    if as_json:
        emit_json(_document(result, trusted_vkey is not None))
    else:
        _print(result, trusted_vkey is not None)
    if not result.ok:
        sys.exit(1)


def _lines(path: Path) -> Callable[[], Iterator[str]]:
    """The export's lines, read afresh from the file at each call."""

    def read() -> Iterator[str]:
        try:
            with path.open("r", encoding="utf-8") as f:
                yield from f
        except UnicodeDecodeError as e:
            raise ValidationError(
                f"{path}: expected an export (UTF-8 JSON lines), found bytes that are not UTF-8"
            ) from e
        except OSError as e:
            raise ValidationError(f"cannot read {path}: {e.strerror or e}") from e

    return read


def _document(result: Reconciliation, trusted: bool) -> dict[str, Any]:
    def finding(f: Finding) -> dict[str, Any]:
        return {
            "kind": f.kind,
            "parent_index": f.parent_index,
            "child_index": f.child_index,
            "tracking_id": f.tracking_id,
            "message_id": f.message_id,
            "payload": f.payload,
            "detail": f.detail,
        }

    return {
        "ok": result.ok,
        "parent": result.parent,
        "child": result.child,
        "trusted_key": trusted,
        "discrepancies": [finding(f) for f in result.discrepancies],
        "in_flight": [finding(f) for f in result.pending],
        "matched": {
            "envelopes": result.envelopes,
            "receipts": result.receipts,
            "checkpoints": result.checkpoints,
        },
    }


def _print(result: Reconciliation, trusted: bool) -> None:
    p, c = result.parent, result.child
    if p is None or c is None:  # an export did not verify: that is the only finding
        console.print(f"[bold red]FAILED[/] {result.discrepancies[0]}", soft_wrap=True)
        return
    console.print(f"parent {_side(p)}\nchild  {_side(c)}")
    if result.discrepancies:
        _findings("Discrepancies", result.discrepancies, "red")
    if result.pending:
        _findings(
            "In flight, beyond an export or lost in a discontinuity (not discrepancies)",
            result.pending,
            "yellow",
        )
    counts = (
        f"{result.envelopes} envelopes matched, {result.receipts} receipts and "
        f"{result.checkpoints} carried checkpoints checked"
    )
    pending = f", {len(result.pending)} in flight" if result.pending else ""
    if result.ok:
        console.print(f"[bold green]OK[/] no discrepancy{pending}; {counts}")
    else:
        n = len(result.discrepancies)
        console.print(
            f"[bold red]FAILED[/] {n} discrepanc{'y' if n == 1 else 'ies'}{pending}; {counts}"
        )
    if not trusted:
        console.print(
            "note: the parent export was checked against its own key; pass --trust VKEY "
            "to check whose ledger it is"
        )


def _side(s: ExportSummary) -> str:
    return (
        f"{s.node_id}: {s.entries} entries, {s.checkpoints} checkpoints, exported {s.exported_at}"
    )


def _findings(title: str, findings: tuple[Finding, ...], style: str) -> None:
    """A table on a wide console; on a narrow one, a block per finding."""
    if console.width >= _WIDE:
        console.print(_table(title, findings, style))
        return
    console.print(f"[{style}]{title}[/]")
    for f in findings:
        ids = [str(f).split(": ", 1)[0], f.tracking_id or "", f.message_id or ""]
        console.print(f"[{style}]{f.kind}[/]  {'  '.join(i for i in ids if i)}", soft_wrap=True)
        console.print(Padding(f.detail, (0, 0, 0, 4)))


def _table(title: str, findings: tuple[Finding, ...], style: str) -> Table:
    table = Table(title=title, title_style=style, title_justify="left", show_lines=False)
    for name, kwargs in (
        ("kind", {"no_wrap": True, "style": style}),
        ("parent", {"justify": "right"}),
        ("child", {"justify": "right"}),
        ("tracking id", {"no_wrap": True}),
        ("message id", {"no_wrap": True}),
        ("detail", {"overflow": "fold", "ratio": 1}),
    ):
        table.add_column(name, **kwargs)
    for f in findings:
        table.add_row(
            f.kind,
            _dash(f.parent_index),
            _dash(f.child_index),
            f.tracking_id or "-",
            f.message_id or "-",
            f.detail,
        )
    return table


def _dash(value: int | None) -> str:
    return "-" if value is None else str(value)
