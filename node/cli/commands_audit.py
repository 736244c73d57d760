"""`lapor-node audit ...`: checkpoints, export, offline verification and inclusion proofs.

`audit verify` needs no node: an auditor runs it on an export file alone. With `--node ADDR
--card CARD --identity DIR`, `verify`, `proof` and `checkpoint` read a running node over its
Audit service instead (node.federation.audit_client), trusting only the node's card, and
run the same verification as for a file.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import click

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
from node.cli.audit_group import audit, remote_client, remote_options
from node.cli.commands_reconcile import reconcile
from node.errors import (
    ConfigError,
    IntegrityError,
    NodeError,
    PeerError,
    SignatureError,
    StateError,
    ValidationError,
)
from node.federation.audit_client import AuditClient, CallerIdentity
from node.ledger import witness_policy
from node.ledger.findings import AuditFailure, Finding
from node.ledger.proofs import TLOG_PROOF_HEADER, tlog_proof_from_document
from node.ledger.trust import anchor_from_vkey
from node.ledger.verify import verify_export
from node.services import audit as service
from node.services import checkpoints, state_check
from node.services.contents import verify_contents

__all__ = ["audit"]  # with its subcommands registered here (node.cli.audit_all)


@audit.command("identity")
@click.option("--name", required=True, help='The auditing body, e.g. "Ombudsman RI".')
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write auditor.key (mode 0600) and auditor.crt into.",
)
@json_option
@handle_errors
def identity(name: str, directory: Path, as_json: bool) -> None:
    """Make an auditor's TLS key and self-signed certificate, to read nodes' ledgers with
    `--node`. Give the certificate (never the key) to each node's operator, who lists it
    under `auditors:` in node.yaml. An existing key is never overwritten."""
    key_path, cert_path = CallerIdentity.create(name, directory, dt.datetime.now(dt.UTC))
    sha256 = CallerIdentity.load(directory).fingerprint.hex()
    if as_json:
        emit_json(
            {"name": name, "key": str(key_path), "certificate": str(cert_path), "sha256": sha256}
        )
        return
    console.print(f"auditor key (keep it; mode 0600): {key_path}")
    console.print(f"certificate sha256: {sha256}")
    console.print("give this certificate to each node's operator, to list under auditors:")
    click.echo(str(cert_path))


@audit.command("checkpoint")
@config_option
@remote_options
@json_option
@handle_errors
def checkpoint(
    config_path: Path | None,
    node_address: str | None,
    card_path: Path | None,
    identity_dir: Path | None,
    as_json: bool,
) -> None:
    """Sign a checkpoint if the ledger grew, then print the latest one exactly as signed.

    The note is a C2SP signed note over a C2SP tlog-checkpoint; check it with the key
    that `lapor-node identity show` prints as vkey. With --node, print the running node's
    latest checkpoint (nothing is signed), verified with the card's key.
    """
    client = remote_client(node_address, card_path, identity_dir)
    if client is not None:
        _remote_checkpoint(client, as_json)
        return
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


def _remote_checkpoint(client: AuditClient, as_json: bool) -> None:
    with client:
        head = client.head()
    if head.checkpoint is None or head.note is None:
        raise StateError(
            f"the node at {client.address} has signed no checkpoint yet; ask again after its "
            "next one (ledger.checkpoint_interval_seconds, 60 s by default)"
        )
    if as_json:
        emit_json(
            {
                "size": head.checkpoint.size,
                "root": base64.b64encode(head.checkpoint.root).decode(),
                "note": head.note.decode("utf-8"),
                "signed_at": head.signed_at,
                "vkey": client.vkey,
                "ledger_size": head.ledger_size,
            }
        )
    else:
        click.echo(head.note.decode("utf-8"), nl=False)


@audit.command("export")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (JSON lines, format lapor-node/audit-export v1).",
)
@click.option(
    "--tiles",
    "tiles_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Instead, write the tree at the latest checkpoint as C2SP tlog-tiles static files "
    "into this folder (full tiles already there are kept).",
)
@config_option
@json_option
@handle_errors
def export(
    out: Path | None, tiles_dir: Path | None, config_path: Path | None, as_json: bool
) -> None:
    """Write the ledger's entries, checkpoints and public key for an auditor (no personal data)."""
    if (out is None) == (tiles_dir is None):
        raise click.UsageError("give either --out FILE or --tiles DIR")
    if tiles_dir is not None:
        export_tiles(tiles_dir, config_path, as_json)
        return
    assert out is not None
    partial = out.with_name(out.name + ".partial")
    with open_node(config_path) as ctx, progress_bar("exporting", not as_json) as progress:
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
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--vkey",
    "trusted_vkey",
    help="The node's verifier key as you know it (from its "
    "parent or `identity show`); without it the export's own key is used "
    "(with --node: the card's).",
)
@click.option(
    "--trust",
    "national_vkey",
    metavar="VKEY",
    help="The national node's verifier key (its `lapor-node identity show`): every "
    "signature in the ledger must then be made by a key that the export's chain of "
    "signed link agreements and key rotations reaches from it.",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A witness policy file (docs/auditor-guide.md): the export's latest checkpoint "
    "must carry valid cosignatures that meet its quorum.",
)
@remote_options
@json_option
@handle_errors
def verify(
    file: Path | None,
    trusted_vkey: str | None,
    national_vkey: str | None,
    policy_file: Path | None,
    node_address: str | None,
    card_path: Path | None,
    identity_dir: Path | None,
    as_json: bool,
) -> None:
    """Verify an export FILE offline, or a running node's ledger with --node: tree,
    checkpoints, signatures; with --trust, that the national node's key reaches every key
    that signed. Exit 0 if all holds, else 1."""
    if file is not None and node_address is not None:
        raise click.UsageError("give either an export FILE or --node, not both")
    if national_vkey is not None:
        try:
            anchor_from_vkey(national_vkey)
        except NodeError as e:
            raise click.BadParameter(
                f"expected the national node's verifier key (lapor-node/<id>+<key id>+<key>, "
                f"as its `lapor-node identity show` prints it): {e}",
                param_hint="--trust",
            ) from e
    client = remote_client(node_address, card_path, identity_dir)
    if client is None:
        if file is None:
            raise click.UsageError(
                "give an export FILE, or --node HOST:PORT --card CARD --identity DIR"
            )
        cosigned = None if policy_file is None else _check_policy(file, policy_file, as_json)
        with file.open("rb") as f:  # bytes: a line that is not UTF-8 is a finding
            total = _header_size(f)
            f.seek(0)
            _verify_lines(f, total, trusted_vkey, as_json, trust=national_vkey, extra=cosigned)
        return
    if policy_file is not None:
        raise click.UsageError("--policy checks an export FILE; export it first, then verify")
    with client:
        try:
            if trusted_vkey is not None and trusted_vkey != client.vkey:
                raise ConfigError(
                    "the card's signing key is not the --vkey you trust; get the node's card "
                    "again from its operator, or check the vkey with its parent"
                )
            total, lines = client.export_lines(dt.datetime.now(dt.UTC))
            _verify_lines(
                lines, total, client.vkey, as_json, node=client.address, trust=national_vkey
            )
        except AuditFailure as e:
            _failed(e.finding, as_json)
        except NodeError as e:
            _failed(_remote_finding(e, client), as_json)


def _remote_finding(error: NodeError, client: AuditClient) -> Finding:
    """A failure to verify a running node, as the finding `audit verify FILE` prints for the
    same fault (the card not the trusted key: `key`; the latest checkpoint not signed by the
    card's key: `checkpoint-signature`), or `unreadable` when the node could not be read
    (docs/auditor-guide.md): so --json prints one shape whatever failed."""
    if isinstance(error, ConfigError):  # the card is not the key the auditor trusts
        return Finding("key", str(error))
    if isinstance(error, SignatureError):  # the latest checkpoint, before any entry
        return Finding("checkpoint-signature", str(error), checkpoint_size=_stated_size(client))
    if isinstance(error, PeerError):
        return Finding("unreadable", f"{error}; nothing was verified past this point")
    if isinstance(error, ValidationError):
        return Finding("format", f"the node sent what is not a ledger: {error}")
    if isinstance(error, IntegrityError):
        return Finding("checkpoint-order", str(error), checkpoint_size=_stated_size(client))
    return Finding("unreadable", str(error))


def _stated_size(client: AuditClient) -> int | None:
    """The size the node states for its latest checkpoint (None if it cannot be read)."""
    try:
        return client.get_checkpoint().size
    except NodeError:
        return None


def _failed(found: Finding, as_json: bool) -> NoReturn:
    """Print a finding as `audit verify` does (JSON or one line) and exit 1."""
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


def _verify_lines(
    lines: Iterable[str] | Iterable[bytes],
    total: int | None,
    trusted_vkey: str | None,
    as_json: bool,
    *,
    node: str | None = None,
    trust: str | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Run the export verifier on `lines` and print its report; exit 1 on a finding."""
    with progress_bar("verifying", not as_json) as progress:
        try:
            report = verify_export(
                lines,
                trusted_vkey=trusted_vkey,
                trust=trust,
                progress=lambda n: progress(n, total),
            )
        except AuditFailure as e:
            _failed(e.finding, as_json)
    data: dict[str, Any] = {
        "ok": True,
        "node_id": report.node_id,
        "origin": report.origin,
        "vkey": report.vkey,
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "root": base64.b64encode(report.root).decode(),
        "last_checkpoint_size": report.last_checkpoint_size,
        "trusted_key": trusted_vkey is not None,
        "current_vkey": report.current_vkey,
        "trusted_by": report.trusted_by,
        "trust_path": list(report.trust_path),
        "discontinuities": [gap.to_json(index) for index, gap in report.discontinuities],
    }
    if node is not None:
        data["node"] = node
    data.update(extra or {})
    if as_json:
        emit_json(data)
        return
    console.print(
        f"OK {report.origin}: {report.entries} entries, {report.checkpoints} "
        f"checkpoints verified (latest at size {report.last_checkpoint_size})"
    )
    if extra:
        console.print(
            f"witness quorum met at size {extra['cosigned_size']}: cosigned by "
            + ", ".join(extra["cosigned_by"] or ["nobody (the policy requires none)"])
        )
    for index, gap in report.discontinuities:  # explained gaps (ADR 0023): information
        console.print(f"discontinuity at entry {index}, explained: {plain(gap.describe())}")
    if report.trusted_by is not None:
        console.print(
            f"every signing key reached from {report.trusted_by}'s trusted key: "
            + " -> ".join(report.trust_path)
        )
    elif trusted_vkey is None:
        console.print(
            "note: checked against the export's own key; pass --vkey to check whose ledger "
            "this is, or --trust NATIONAL_VKEY to check its keys' chain of trust"
        )


def _check_policy(file: Path, policy_file: Path, as_json: bool) -> dict[str, Any]:
    """The export's latest checkpoint against a witness policy; exit 1 (finding
    `witness-quorum`) when its cosignatures do not meet the quorum."""
    try:
        policy = witness_policy.parse(policy_file.read_text(encoding="utf-8"))
    except (ValidationError, UnicodeDecodeError) as e:
        raise click.BadParameter(f"{policy_file}: {e}", param_hint="--policy") from e
    try:
        with file.open("rb") as f:
            result = witness_policy.check_export(f, policy)
    except (SignatureError, ValidationError) as e:
        _failed(Finding("witness-quorum", str(e)), as_json)
    return {"cosigned_size": result.checkpoint.size, "cosigned_by": list(result.witnesses)}


def _header_size(f: BinaryIO) -> int | None:
    """The entry count the header announces, for the progress bar (verified later)."""
    try:
        first = json.loads(f.readline())
        size = first.get("size") if isinstance(first, dict) else None
        return size if isinstance(size, int) else None
    except (ValueError, RecursionError):  # the verifier then names the bad line
        return None


@audit.command("proof")
@click.option("--index", type=int, required=True, help="The ledger entry index to prove.")
@click.option(
    "--format",
    "proof_format",
    type=click.Choice(["json", "tlog-proof"]),
    default="json",
    help="json (lapor-node/inclusion-proof v1) or tlog-proof (c2sp.org/tlog-proof@v1, the "
    "entry as its extra data; check it with `audit verify-proof`).",
)
@config_option
@remote_options
@json_option
@handle_errors
def proof(
    index: int,
    proof_format: str,
    config_path: Path | None,
    node_address: str | None,
    card_path: Path | None,
    identity_dir: Path | None,
    as_json: bool,
) -> None:
    """Print an inclusion proof of entry INDEX with the signed checkpoint it leads to.

    The output is JSON (format lapor-node/inclusion-proof v1, all hashes base64) that any
    RFC 6962 verifier can check; --json prints it compactly on one line. With --node, the
    proof comes from the running node, into its latest checkpoint, and is checked against
    the card's key before it is printed.
    """
    client = remote_client(node_address, card_path, identity_dir)
    if client is not None:
        if index < 0:
            raise click.BadParameter(f"expected an entry index >= 0, found {index}")
        with client:
            doc = client.inclusion_proof_document(index)
    else:
        with open_node(config_path) as ctx:
            doc = service.inclusion_proof(ctx, index)
    if proof_format == "tlog-proof":
        text = tlog_proof_from_document(doc).to_text().decode("utf-8")
        if as_json:
            emit_json({"format": TLOG_PROOF_HEADER, "index": index, "tlog_proof": text})
        else:
            click.echo(text, nl=False)
        return
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
    else:
        emit_json(doc)


audit.add_command(reconcile)


def export_tiles(directory: Path, config_path: Path | None, as_json: bool) -> None:
    """`audit export --tiles DIR`: each file written whole (a temporary name, fsynced, then
    renamed into place); the checkpoint last."""

    def write(name: str, data: bytes) -> None:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        with partial.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        partial.replace(target)

    with open_node(config_path) as ctx:
        summary = service.write_tiles(ctx, write, lambda name: (directory / name).is_file())
    if as_json:
        emit_json(
            {
                "dir": str(directory),
                "size": summary.size,
                "written": summary.written,
                "kept": summary.kept,
            }
        )
    else:
        console.print(
            f"wrote the tree of size {summary.size} as tiles to {directory}: "
            f"{summary.written} files written, {summary.kept} full tiles already there"
        )


@audit.command("contents")
@config_option
@json_option
@handle_errors
def contents(config_path: Path | None, as_json: bool) -> None:
    """Check the complaint contents kept on this node against the commitments in its
    ledger (an export carries no content, so this runs on the node), and its working
    tables against the ledger's replay (`audit state`). Exit 1 on a finding or difference."""
    with open_node(config_path) as ctx:
        with progress_bar("checking", not as_json) as update:
            report = verify_contents(ctx, lambda done: update(done, None))
        with progress_bar("replaying", not as_json) as update:
            state = state_check.check_state(ctx, lambda done: update(done, None))
    if as_json:
        emit_json(
            {
                "ok": report.ok and state.ok,
                "checked": report.checked,
                "not_kept": report.not_kept,
                "findings": report.findings,
                "state": {
                    "ok": state.ok,
                    "complaints": state.complaints,
                    "differences": [d.describe() for d in state.differences],
                },
            }
        )
    else:
        for f in report.findings:
            err_console.print(f"entry {f.index}: {f.tracking_id}: {f.kind}: {f.detail}")
        console.print(
            f"{report.checked} contents match their ledger commitments; "
            f"{report.not_kept} not kept here (erased or never received); "
            f"{len(report.findings)} finding(s)"
        )
        for d in state.differences:
            err_console.print(plain(d.describe()), soft_wrap=True)
        console.print(
            f"{state.complaints} complaint(s) compared with the ledger's replay: "
            f"{len(state.differences)} difference(s)"
            + ("" if state.ok else "; run `lapor-node audit state` for the details")
        )
    if not (report.ok and state.ok):
        sys.exit(1)
