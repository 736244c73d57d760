"""Intake end to end, as operators and gateways use it: `intake gateway add`, `serve` as a
real process, `intake submit` (retried), a walk-in with `complaint submit --attach`,
`intake attachment`, and `complaint erase` taking the files with the content."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from pathlib import Path

import pytest

from node.crypto.tls import fingerprint
from tests.conftest import NodeFactory
from tests.support.cli import run_cli
from tests.support.nodes import free_port, wait_until

pytestmark = pytest.mark.slow


def _gateway_cli(*args: str) -> str:
    """`lapor-node ARGS` run by a gateway: no node.yaml of its own."""
    result = run_cli(args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_gateway_and_walk_in_intake_through_the_cli(nodes: NodeFactory, tmp_path: Path) -> None:
    """A gateway issued by the CLI submits over TLS to a served node; a retry with its key
    gets the same tracking id; a walk-in's file is kept by hash and read back; erasing the
    content removes the files."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    token_file = tmp_path / "sms.token"
    issued = node.cli(
        "intake", "gateway", "add", "sms-kaltim", "--channel", "sms_1708",
        "--token-file", str(token_file),
    ).stdout  # fmt: skip
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert token not in issued
    assert hashlib.sha256(token.encode()).hexdigest() in issued
    lines = issued[issued.index("    - name:") :]
    port = free_port()
    config = node.config.read_text()
    node.config.write_text(f'{config}\nintake:\n  listen: "127.0.0.1:{port}"\n  gateways:\n{lines}')
    listed = json.loads(node.cli("intake", "gateway", "list", "--json").stdout)
    assert [g["name"] for g in listed["gateways"]] == ["sms-kaltim"]

    node.start()

    def intake_up() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(intake_up, what="the intake port")
    photo = tmp_path / "jalan.jpg"
    photo.write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 50)
    pinned = fingerprint((node.directory / "keys" / "tls.crt").read_bytes()).hex()
    submit = (
        "intake", "submit", "--node", f"127.0.0.1:{port}", "--token-file", str(token_file),
        "--fingerprint", pinned, "--key", "sms-77", "--channel", "sms_1708",
        "--title", "Jalan rusak", "--description", "Lubang di Jl. Poros",
        "--category", "infrastruktur", "--region", "64.02", "--attach", str(photo), "--json",
    )  # fmt: skip
    first = json.loads(_gateway_cli(*submit))
    again = json.loads(_gateway_cli(*submit))
    assert first["duplicate"] is False and again["duplicate"] is True
    assert again["tracking_id"] == first["tracking_id"]
    node.stop()

    letter = tmp_path / "surat.pdf"
    letter.write_bytes(b"%PDF-1.4 surat pengaduan")
    walk_in = json.loads(
        node.cli(
            "complaint", "submit", "--title", "Pungutan liar", "--description", "Di kantor desa",
            "--category", "pelayanan", "--region", "64.02", "--attach", str(letter), "--json",
        ).stdout
    )  # fmt: skip
    assert re.fullmatch(r"id-64\.\d{4}\.\d{6,9}", walk_in["tracking_id"])
    digests = {
        first["tracking_id"]: hashlib.sha256(photo.read_bytes()).hexdigest(),
        walk_in["tracking_id"]: hashlib.sha256(letter.read_bytes()).hexdigest(),
    }
    originals = {first["tracking_id"]: photo, walk_in["tracking_id"]: letter}
    listed = json.loads(node.cli("intake", "attachments", walk_in["tracking_id"], "--json").stdout)
    assert listed == [
        {
            "name": "surat.pdf",
            "media_type": "application/pdf",
            "size": letter.stat().st_size,
            "sha256": digests[walk_in["tracking_id"]],
            "kept": True,
        }
    ]
    for tracking_id, digest in digests.items():
        out = tmp_path / f"{digest}.out"
        node.cli("intake", "attachment", tracking_id, digest, "--out", str(out))
        assert out.read_bytes() == originals[tracking_id].read_bytes()

    node.cli("complaint", "erase", walk_in["tracking_id"], "--reason", "DPR-2026-3", "--yes")
    gone = node.cli(
        "intake", "attachment", walk_in["tracking_id"], digests[walk_in["tracking_id"]],
        "--out", str(tmp_path / "gone.out"), check=False,
    )  # fmt: skip
    assert gone.returncode == 1 and "erased" in gone.stderr
    assert not (tmp_path / "gone.out").exists()
