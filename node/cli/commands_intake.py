"""`lapor-node intake ...`: channel gateways (issue tokens, list them), a complaint's
attachments, and a gateway's own submit for scripts and tests (docs/intake.md)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import click
from rich.table import Table

from node.cli._common import (
    config_option,
    console,
    emit_json,
    handle_errors,
    json_option,
    open_node,
    plain,
)
from node.complaints import CLASSIFICATIONS, ComplaintDraft
from node.config import GATEWAY_CHANNELS, default_config_path, load_config
from node.errors import ValidationError
from node.federation.intake_client import IntakeClient, Upload, submission_for
from node.services import intake as service

__all__ = ["intake"]


@click.group()
def intake() -> None:
    """Complaints from channel gateways (web, SMS 1708, Twitter, mobile apps, api)."""


@intake.group()
def gateway() -> None:
    """The gateways allowed to submit to this node (node.yaml, intake.gateways)."""


@gateway.command("add")
@click.argument("name")
@click.option(
    "--channel",
    "channels",
    multiple=True,
    required=True,
    type=click.Choice(GATEWAY_CHANNELS),
    help="A channel the gateway submits for (repeatable).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the token to this new file (mode 0600) instead of printing it.",
)
@config_option
@json_option
@handle_errors
def gateway_add(
    name: str,
    channels: tuple[str, ...],
    token_file: Path | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Issue a token for gateway NAME and print the lines to add to node.yaml.

    The token is shown (or written) once; node.yaml keeps only its SHA-256. Give the token
    to the gateway over a channel you trust, add the lines under `intake: gateways:`, and
    restart `lapor-node serve`.
    """
    path = config_path or default_config_path()
    if path.is_file() and any(g.name == name for g in load_config(path).intake.gateways):
        raise ValidationError(
            f"{path} already lists a gateway {name!r}; choose another name, or remove its "
            "lines first to replace its token"
        )
    token = service.new_token()
    digest = service.token_sha256(token).hex()
    lines = (
        f"    - name: {json.dumps(name)}\n"
        f"      channels: [{', '.join(dict.fromkeys(channels))}]\n"
        f'      token_sha256: "{digest}"\n'
    )
    if token_file is not None:
        try:
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as e:
            raise ValidationError(f"{token_file} exists; choose a new file") from e
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
    if as_json:
        emit_json(
            {
                "name": name,
                "channels": list(dict.fromkeys(channels)),
                "token": None if token_file else token,
                "token_file": token_file,
                "token_sha256": digest,
            }
        )
        return
    if token_file is None:
        click.echo(f"token (shown once; give it to the gateway, keep it secret):\n  {token}\n")
    else:
        click.echo(f"token written to {token_file} (give it to the gateway, keep it secret)\n")
    click.echo("add to node.yaml, under intake: gateways: (then restart serve):")
    click.echo(lines, nl=False)


@gateway.command("list")
@config_option
@json_option
@handle_errors
def gateway_list(config_path: Path | None, as_json: bool) -> None:
    """The gateways node.yaml lists, and where intake listens."""
    config = load_config(config_path or default_config_path()).intake
    rows = [
        {"name": g.name, "channels": list(g.channels), "token_sha256": g.token_sha256.hex()}
        for g in config.gateways
    ]
    if as_json:
        emit_json({"listen": config.listen, "gateways": rows})
        return
    console.print(f"intake: {plain(config.listen or 'off (intake.listen is empty)')}")
    table = Table("name", "channels", "token SHA-256")
    for row in rows:
        table.add_row(
            plain(row["name"]), plain(", ".join(row["channels"])), str(row["token_sha256"])[:16]
        )
    console.print(table)


@intake.command("attachments")
@click.argument("tracking_id")
@config_option
@json_option
@handle_errors
def attachments(tracking_id: str, config_path: Path | None, as_json: bool) -> None:
    """The files of a complaint received here: name, media type, size, SHA-256."""
    with open_node(config_path) as ctx:
        listed = service.attachments(ctx, tracking_id)
    rows = [
        {
            "name": ref.name,
            "media_type": ref.media_type,
            "size": ref.size,
            "sha256": ref.sha256.hex(),
            "kept": kept,
        }
        for ref, kept in listed
    ]
    if as_json:
        emit_json(rows)
        return
    table = Table("name", "media type", "bytes", "SHA-256", "kept")
    for row in rows:
        table.add_row(*(plain(row[k]) for k in ("name", "media_type", "size", "sha256", "kept")))
    console.print(table)


@intake.command("attachment")
@click.argument("tracking_id")
@click.argument("sha256")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Write the file here (must not exist).",
)
@config_option
@json_option
@handle_errors
def attachment(
    tracking_id: str, sha256: str, out: Path, config_path: Path | None, as_json: bool
) -> None:
    """Save an attachment of a complaint received here (SHA256 in hex, as `intake
    attachments TRACKING_ID` lists it)."""
    try:
        digest = bytes.fromhex(sha256)
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise ValidationError("SHA256 must be 64 hex digits")
    with open_node(config_path) as ctx:
        ref, data = service.attachment(ctx, tracking_id, digest)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise ValidationError(f"{out} exists; choose a new file") from e
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if as_json:
        emit_json(
            {
                "tracking_id": tracking_id,
                "name": ref.name,
                "media_type": ref.media_type,
                "size": ref.size,
                "sha256": ref.sha256,
                "out": out,
            }
        )
        return
    console.print(
        f"wrote {plain(ref.name)} ({plain(ref.media_type)}, {ref.size} bytes) to {plain(out)}"
    )


@intake.command("submit")
@click.option("--node", "address", required=True, help="The node's intake address, HOST:PORT.")
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The gateway's token (from `intake gateway add`).",
)
@click.option("--fingerprint", required=True, help="SHA-256 (hex) of the node's TLS certificate.")
@click.option(
    "--key",
    "key",
    default=None,
    help="Idempotency key; reuse it to retry (default: a new UUID, printed).",
)
@click.option("--channel", type=click.Choice(GATEWAY_CHANNELS), required=True)
@click.option("--title", required=True)
@click.option("--description", required=True)
@click.option(
    "--classification",
    type=click.Choice(list(CLASSIFICATIONS)),
    default="pengaduan",
    show_default=True,
)
@click.option("--category", required=True)
@click.option("--region", "region_code", required=True, help="Kemendagri code, e.g. 64.02")
@click.option("--reporter-name", default="")
@click.option("--reporter-contact", default="")
@click.option("--location", default="")
@click.option("--anonymous", is_flag=True)
@click.option("--confidential", is_flag=True)
@click.option(
    "--attach",
    "attach",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file to send with it (repeatable).",
)
@json_option
@handle_errors
def submit(
    address: str,
    token_file: Path,
    fingerprint: str,
    key: str | None,
    attach: tuple[Path, ...],
    as_json: bool,
    **fields: object,
) -> None:
    """Submit a complaint to a node as a gateway would (for scripts and checks)."""
    try:
        pinned = bytes.fromhex(fingerprint.replace(":", ""))
    except ValueError:
        pinned = b""
    if len(pinned) != 32:
        raise ValidationError("--fingerprint must be the 64 hex digits of a SHA-256")
    token = token_file.read_text().strip()
    key = key or str(uuid.uuid4())
    uploads = [Upload.from_path(path) for path in attach]
    draft = ComplaintDraft(**fields)  # type: ignore[arg-type]
    with IntakeClient(address, token, pinned) as client:
        response = client.submit(submission_for(draft, key, uploads), uploads)
    if as_json:
        emit_json(
            {
                "tracking_id": response.tracking_id,
                "duplicate": response.duplicate,
                "idempotency_key": key,
            }
        )
        return
    click.echo(plain(response.tracking_id, markup=False))  # the node's answer: outside text too
    note = " (a retry: already registered)" if response.duplicate else ""
    click.echo(f"idempotency key {plain(key, markup=False)}{note}", err=True)
