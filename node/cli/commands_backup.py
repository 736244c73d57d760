"""`lapor-node backup create|verify|restore`: copies of a node that can never fork it
(node.services.backup; docs/operator-guide.md, 'The signing fence')."""

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
    operator_node,
    plain,
)
from node.config import default_config_path, load_config
from node.services import backup as service
from node.services import recovery

__all__ = ["backup"]


@click.group()
def backup() -> None:
    """Online backups of the database with the keys, checked, and restores that refuse
    to take the node back behind what it has signed."""


def _show(manifest: service.Manifest, what: str, as_json: bool) -> None:
    if as_json:
        emit_json(manifest.to_json())
        return
    fenced = "none" if manifest.fence_size is None else f"size {manifest.fence_size}"
    console.print(
        f"{what}: {plain(manifest.node_id)}, {manifest.database_kind}, ledger size "
        f"{manifest.ledger_size} (root {manifest.ledger_root.hex()}), fence {fenced}, "
        f"{len(manifest.files)} files checksummed"
    )


@backup.command("create")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="A new folder.")
@config_option
@credential_option
@json_option
@handle_errors
def create(out: Path, config_path: Path | None, credential: Path | None, as_json: bool) -> None:
    """Back up this node while it runs: the database (SQLite's backup API, or pg_dump of
    one snapshot), node.yaml and the keys folder, with a manifest of checksums, the
    ledger's size and root, and the signing fence. The folder holds the private keys:
    keep it as safe as the node itself.

    Example: lapor-node backup create --out /backup/prov-2026-12-07 --config prov/node.yaml
    """
    with operator_node(config_path, credential) as ctx:
        manifest = service.create(ctx.config, ctx.db, out, ctx.clock.now())
    _show(manifest, f"backup written to {out}", as_json)


@backup.command("verify")
@click.argument("folder", type=click.Path(path_type=Path, exists=True, file_okay=False))
@json_option
@handle_errors
def verify(folder: Path, as_json: bool) -> None:
    """Check a backup folder: every checksum, and for SQLite the copy's ledger size and
    root recomputed from its tree.

    Example: lapor-node backup verify /backup/prov-2026-12-07
    """
    _show(service.verify(folder), "backup verified", as_json)


@backup.command("restore")
@click.argument("folder", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--recover",
    is_flag=True,
    help="The backup is older than what this node signed: end the lost history with a "
    "signed discontinuity and continue under a new key generation.",
)
@click.option("--reason", default="", help="With --recover: why (one line, no personal data).")
@config_option
@json_option
@handle_errors
def restore(
    folder: Path, recover: bool, reason: str, config_path: Path | None, as_json: bool
) -> None:
    """Make the backup in FOLDER this node's database. Refused while `serve` runs, for
    another node's backup or keys, and for a backup older than what this node has signed
    (its signing fence), unless --recover: then the node records a signed discontinuity
    (its last signed checkpoint, where it restarts, the reason) and continues under a new
    key that its peers follow (docs/operator-guide.md, "Recovering from a lost database").
    A PostgreSQL node restores into an empty database.

    Example: lapor-node backup restore /backup/prov-2026-12-06 --recover --reason "disk lost"
    """
    config = load_config(config_path or default_config_path())
    if not recover:
        if reason:
            raise click.UsageError("--reason goes with --recover")
        _show(service.restore(config, folder), "restored", as_json)
        return
    done = recovery.recover(config, folder, reason)
    if as_json:
        emit_json(
            {
                **done.manifest.to_json(),
                "discontinuity": {
                    "entry": done.entry_index,
                    "old_checkpoint": {"size": done.fenced_size, "root": done.fenced_root.hex()},
                    "restart": {"size": done.restart_size, "root": done.restart_root.hex()},
                    "new_signing_key": done.new_key.hex(),
                    "peers": list(done.peers),
                },
            }
        )
        return
    _show(done.manifest, "restored", False)
    console.print(
        f"the lost history (signed up to size {done.fenced_size}) is ended by the signed "
        f"discontinuity at ledger entry {done.entry_index}; the node continues from size "
        f"{done.restart_size} under a new signing key, announced to "
        f"{', '.join(done.peers) or 'no peers'}. Start it with `lapor-node serve`."
    )
