"""`lapor-node audit verify-proof` and `audit consistency`: offline tlog-proofs and
consistency proofs (docs/auditor-guide.md, "Tiles and offline proofs").

Registers itself on the `audit` group (node.cli.audit_group; node.cli.audit_all imports it).
Thin: node.ledger.proofs verifies and computes, node.services.audit reads the node.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from node.cli._common import (
    config_option,
    console,
    emit_json,
    handle_errors,
    json_option,
    open_node,
)
from node.cli.audit_group import audit, remote_client, remote_options
from node.errors import IntegrityError, ValidationError
from node.ledger import witness_policy
from node.ledger.merkle import leaf_hash, verify_consistency
from node.ledger.note import open_checkpoint, parse_vkey
from node.ledger.proofs import TlogProof, check_tlog_proof, consistency_from_leaves
from node.services import audit as service

__all__ = ["consistency", "verify_proof"]


@audit.command("verify-proof")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--vkey", required=True, help="The node's verifier key as you know it (`identity show`)."
)
@click.option(
    "--entry",
    "entry_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The entry's bytes, when the proof carries none (a proof from another log).",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A witness policy file (docs/auditor-guide.md): the proof's checkpoint must "
    "carry the cosignatures its quorum asks for.",
)
@json_option
@handle_errors
def verify_proof(
    file: Path, vkey: str, entry_path: Path | None, policy_file: Path | None, as_json: bool
) -> None:
    """Check a C2SP tlog-proof FILE offline: the checkpoint is signed by --vkey and the
    inclusion path leads from the entry to its root; with --policy, its cosignatures meet
    the witness quorum. Exit 0 if it holds, else 1."""
    proof = TlogProof.parse(file.read_bytes())
    entry = entry_path.read_bytes() if entry_path is not None else None
    cp = check_tlog_proof(proof, vkey, entry)
    cosigned_by: list[str] = []
    if policy_file is not None:
        policy = witness_policy.parse(policy_file.read_text(encoding="utf-8"))
        cosigned = witness_policy.check(proof.checkpoint, policy, [parse_vkey(vkey)])
        cosigned_by = list(cosigned.witnesses)
    record = entry if entry is not None else proof.extra or b""  # one was there: checked
    if as_json:
        emit_json(
            {
                "ok": True,
                "origin": cp.origin,
                "index": proof.index,
                "tree_size": cp.size,
                "root": base64.b64encode(cp.root).decode(),
                "leaf_hash": base64.b64encode(leaf_hash(record)).decode(),
                "cosigned_by": cosigned_by,
            }
        )
    else:
        console.print(f"OK entry {proof.index} is in {cp.origin} at size {cp.size}")
        if policy_file is not None:
            console.print(f"cosigned by {', '.join(cosigned_by) or 'nobody (none required)'}")


@audit.command("consistency")
@click.option("--from", "first", type=click.IntRange(min=0), required=True, help="Older size.")
@click.option(
    "--to", "second", type=click.IntRange(min=0), default=0, help="Newer size (0: the latest)."
)
@click.option(
    "--export",
    "export_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Compute it offline from an export file (`audit export`) instead of a node.",
)
@click.option("--vkey", help="Verifier key the checkpoints of those sizes must verify under.")
@config_option
@remote_options
@json_option
@handle_errors
def consistency(
    first: int,
    second: int,
    export_path: Path | None,
    vkey: str | None,
    config_path: Path | None,
    node_address: str | None,
    card_path: Path | None,
    identity_dir: Path | None,
    as_json: bool,
) -> None:
    """Print the consistency proof from tree size --from to --to (RFC 9162 2.1.4), checked
    before it is printed, with the signed checkpoints of those sizes where there are any.
    From this node, a running one (--node), or an export file (--export)."""
    client = remote_client(node_address, card_path, identity_dir)
    if export_path is not None and client is not None:
        raise click.UsageError("give either --export FILE or --node, not both")
    if client is not None:
        with client:
            r = client.get_consistency_proof(first, second)
            vkey = vkey or client.vkey
        found = _Found(r.first_size, r.second_size, list(r.proof), r.first_root, r.second_root)
        found.notes = (r.first_checkpoint_note or None, r.second_checkpoint_note or None)
    elif export_path is not None:
        found = _from_export(export_path, first, second)
        vkey = vkey or found.vkey
    else:
        with open_node(config_path) as ctx:
            p = service.consistency(ctx, first, second)
            vkey = vkey or service.head(ctx).vkey
        found = _Found(p.first, p.second, list(p.proof), p.first_root, p.second_root)
        found.notes = (p.first_note, p.second_note)
    found.check(vkey)
    data = found.as_dict()
    if as_json:
        emit_json(data)
        return
    console.print(f"consistency proof from size {found.first} to {found.second}:")
    click.echo(json.dumps(data, indent=2))


class _Found:
    """A consistency proof with its roots and the notes of its sizes (None: none signed)."""

    def __init__(
        self, first: int, second: int, proof: list[bytes], root1: bytes, root2: bytes
    ) -> None:
        self.first, self.second, self.proof = first, second, proof
        self.roots = (root1, root2)
        self.notes: tuple[bytes | None, bytes | None] = (None, None)
        self.vkey: str | None = None

    def check(self, vkey: str | None) -> None:
        """The proof leads from the first root to the second, and each note there is signed
        by `vkey` and names its size and root; IntegrityError or ProofError otherwise."""
        verify_consistency(self.first, self.second, self.roots[0], self.roots[1], self.proof)
        for size, root, note in zip((self.first, self.second), self.roots, self.notes, strict=True):
            if note is None or vkey is None:
                continue
            cp = open_checkpoint(note, parse_vkey(vkey))
            if cp.size != size or cp.root != root:
                raise IntegrityError(
                    f"expected the checkpoint of size {size} to name the tree's root, "
                    f"found size {cp.size} and another root"
                )

    def as_dict(self) -> dict[str, Any]:
        def b64(b: bytes) -> str:
            return base64.b64encode(b).decode()

        return {
            "first_size": self.first,
            "second_size": self.second,
            "proof": [b64(h) for h in self.proof],
            "first_root": b64(self.roots[0]),
            "second_root": b64(self.roots[1]),
            "first_checkpoint": None if self.notes[0] is None else self.notes[0].decode(),
            "second_checkpoint": None if self.notes[1] is None else self.notes[1].decode(),
        }


def _from_export(path: Path, first: int, second: int) -> _Found:
    """The proof computed from an export's entries (their leaf hashes recomputed), with the
    export's checkpoints of those sizes; `--to 0` is the export's latest checkpoint."""
    notes: dict[int, bytes] = {}
    vkey: str | None = None
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = json.loads(raw)
                kind = line.get("type") if isinstance(line, dict) else None
                if kind == "header":
                    vkey = line.get("current_vkey") or line.get("vkey")
                elif kind == "checkpoint":
                    notes[int(line["size"])] = str(line["note"]).encode("utf-8")
            except (ValueError, KeyError, TypeError) as e:
                raise ValidationError(
                    f"expected an audit export (JSON lines), found line {n} unreadable: {e}; "
                    "check the file with `lapor-node audit verify`"
                ) from e
    if second == 0:
        if not notes:
            raise ValidationError("--to 0 means the latest checkpoint, and the export has none")
        second = max(notes)

    def leaves() -> Iterator[bytes]:
        with path.open("rb") as f:
            for raw in f:
                if raw.startswith(b'{"type":"entry"'):
                    yield leaf_hash(base64.b64decode(json.loads(raw)["entry"]))

    proof, root1, root2 = consistency_from_leaves(leaves(), first, second)
    found = _Found(first, second, list(proof), root1, root2)
    found.notes = (notes.get(first), notes.get(second))
    found.vkey = vkey
    return found
