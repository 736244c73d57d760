"""`lapor-node audit ...`: checkpoints, export, offline verification and inclusion proofs.

`audit verify` needs no node: an auditor runs it on an export file alone.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from node.cli._common import (
    config_option,
    console,
    emit_json,
    err_console,
    handle_errors,
    json_option,
    open_node,
)
from node.ledger.audit import AuditFailure, verify_export
from node.services import audit as service
from node.services import checkpoints

__all__ = ["audit"]


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Callable[[int, int | None], None]]:
    """A rich progress bar on a terminal's stderr; a no-op elsewhere."""
    if not enabled or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@click.group()
def audit() -> None:
    """Checkpoints, exports, and their verification (docs/auditor-guide.md)."""


@audit.command("checkpoint")
@config_option
@json_option
@handle_errors
def checkpoint(config_path: Path | None, as_json: bool) -> None:
    """Sign a checkpoint if the ledger grew, then print the latest one exactly as signed.

    The note is a C2SP signed note over a C2SP tlog-checkpoint; check it with the key
    that `lapor-node identity show` prints as vkey.
    """
    with open_node(config_path) as ctx:
        signed, made = checkpoints.sign(ctx)
        vkey = checkpoints.verifier_key(ctx)
    if as_json:
        emit_json(
            {
                "size": signed.size,
                "root": base64.b64encode(signed.root).decode(),
                "note": signed.note.decode("utf-8"),
                "signed_now": made,
                "signed_at": signed.signed_at,
                "vkey": vkey,
            }
        )
    else:
        click.echo(signed.note.decode("utf-8"), nl=False)


@audit.command("export")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write (JSON lines, format lapor-node/audit-export v1).",
)
@config_option
@json_option
@handle_errors
def export(out: Path, config_path: Path | None, as_json: bool) -> None:
    """Write the ledger's entries, checkpoints and public key for an auditor (no personal data)."""
    partial = out.with_name(out.name + ".partial")
    with open_node(config_path) as ctx, _progress("exporting", not as_json) as progress:
        with partial.open("w", encoding="utf-8") as f:
            summary = service.export(ctx, f, progress=progress)
            f.flush()
            os.fsync(f.fileno())
        partial.replace(out)
    if as_json:
        emit_json({"out": str(out), "entries": summary.entries, "checkpoints": summary.checkpoints})
    else:
        console.print(
            f"exported {summary.entries} entries and {summary.checkpoints} checkpoints to {out}"
        )


@audit.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--vkey",
    "trusted_vkey",
    help="The node's verifier key as you know it (from its "
    "parent or `identity show`); without it the export's own key is used.",
)
@json_option
def verify(file: Path, trusted_vkey: str | None, as_json: bool) -> None:
    """Verify an export offline: tree, checkpoints, signatures. Exit 0 if all holds, else 1."""
    with file.open("r", encoding="utf-8") as f:
        total = _header_size(f)
        f.seek(0)
        with _progress("verifying", not as_json) as progress:
            try:
                report = verify_export(
                    f, trusted_vkey=trusted_vkey, progress=lambda n: progress(n, total)
                )
            except AuditFailure as e:
                found = e.finding
                if as_json:
                    emit_json(
                        {
                            "ok": False,
                            "kind": found.kind,
                            "index": found.index,
                            "checkpoint_size": found.checkpoint_size,
                            "detail": found.detail,
                        }
                    )
                else:
                    err_console.print(f"[bold red]FAILED[/] {found}", markup=True, soft_wrap=True)
                sys.exit(1)
    data = {
        "ok": True,
        "node_id": report.node_id,
        "origin": report.origin,
        "vkey": report.vkey,
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "root": base64.b64encode(report.root).decode(),
        "last_checkpoint_size": report.last_checkpoint_size,
        "trusted_key": trusted_vkey is not None,
    }
    if as_json:
        emit_json(data)
        return
    console.print(
        f"OK {report.origin}: {report.entries} entries, {report.checkpoints} "
        f"checkpoints verified (latest at size {report.last_checkpoint_size})"
    )
    if trusted_vkey is None:
        console.print(
            "note: checked against the export's own key; pass --vkey to check whose ledger this is"
        )


def _header_size(f: TextIO) -> int | None:
    """The entry count the header announces, for the progress bar (verified later)."""
    try:
        first = json.loads(f.readline())
        size = first.get("size") if isinstance(first, dict) else None
        return size if isinstance(size, int) else None
    except ValueError:
        return None


@audit.command("proof")
@click.option("--index", type=int, required=True, help="The ledger entry index to prove.")
@config_option
@json_option
@handle_errors
def proof(index: int, config_path: Path | None, as_json: bool) -> None:
    """Print an inclusion proof of entry INDEX with the signed checkpoint it leads to.

    The output is JSON (format lapor-node/inclusion-proof v1, all hashes base64) that any
    RFC 6962 verifier can check; --json prints it compactly on one line.
    """
    with open_node(config_path) as ctx:
        doc = service.inclusion_proof(ctx, index)
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
    else:
        emit_json(doc)
