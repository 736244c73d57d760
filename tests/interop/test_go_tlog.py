"""Interoperability: Go's own transparency-log packages (golang.org/x/mod/sumdb/note and
sumdb/tlog, from Debian) verify a real `serve`'s ledger over its tlog-tiles endpoint:
the signed checkpoint, every tile, every entry's inclusion, and an older checkpoint's
consistency (tests/interop/tlogcheck/main.go). Also the endpoint over HTTPS with the
node's own certificate."""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import socket
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.ledger.note import format_vkey, open_checkpoint, parse_vkey
from node.services import checkpoints, complaints
from tests.conftest import NodeFactory
from tests.support.factories import DRAFT
from tests.support.nodes import TestNode, free_port
from tests.support.waits import COMMAND_BOUND, wait_until

GO_TLOG = Path("/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog")
PROGRAM = Path(__file__).resolve().parent / "tlogcheck" / "main.go"


def _go_or_skip() -> str:
    """Go with x/mod's sumdb packages, or skip (fail under CI=true) saying how to install."""
    go = shutil.which("go")
    if go is None or not GO_TLOG.is_dir():
        reason = (
            "Go and golang.org/x/mod are not installed (scripts/ensure_go.sh installs them "
            "with apt-get install golang-go golang-golang-x-mod-dev; `make test` runs it first)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires Go: {reason}")
        pytest.skip(reason)
    return go


@pytest.fixture
def tlogcheck(tmp_path: Path) -> Path:
    """The Go verifier, built offline in GOPATH mode against Debian's x/mod."""
    go = _go_or_skip()
    binary = tmp_path / "tlogcheck"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": "/usr/share/gocode",
        "GOCACHE": str(tmp_path / "gocache"),
        "GOFLAGS": "",
        "HOME": str(tmp_path),
    }
    built = subprocess.run(
        [go, "build", "-o", str(binary), str(PROGRAM)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=10 * COMMAND_BOUND,
    )
    assert built.returncode == 0, built.stderr
    return binary


def _serve_tiles(node: TestNode, *, tls: bool = False) -> int:
    """Turn `transparency.listen` on in node.yaml, start `serve`, wait for the port."""
    port = free_port()
    flag = "true" if tls else "false"
    with node.config.open("a", encoding="utf-8") as f:
        f.write(f'transparency:\n  listen: "127.0.0.1:{port}"\n  tls: {flag}\n')
    node.start()

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, what=f"the tiles endpoint on {port}")
    return port


def _append(node: TestNode, count: int, first: int) -> None:
    drafts = [dataclasses.replace(DRAFT, title=f"Jalan rusak {first + n}") for n in range(count)]
    complaints.submit_many(node.ctx(), drafts)


def test_go_verifies_the_served_ledger(nodes: NodeFactory, tlogcheck: Path) -> None:
    """Go's note.Open accepts the checkpoint under the node's vkey; TileHashReader
    authenticates every tile; each of the 300+ entries is its tile's leaf and CheckRecord
    proves it; CheckTree proves an older checkpoint consistent. A wrong key fails."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    ctx = node.ctx()
    vkey = checkpoints.verifier_key(ctx)
    _append(node, 200, 0)
    older, _ = checkpoints.sign(ctx)
    _append(node, 150, 200)
    checkpoints.sign(ctx)
    port = _serve_tiles(node)
    old_root = base64.b64encode(older.root).decode()
    run = [str(tlogcheck), f"http://127.0.0.1:{port}/", vkey, str(older.size), old_root]
    result = subprocess.run(run, capture_output=True, text=True, timeout=10 * COMMAND_BOUND)
    assert result.returncode == 0, result.stdout + result.stderr
    size = int(result.stdout.split(" size ")[1].split(":")[0])
    assert size >= 350
    assert f": {size} entries included" in result.stdout
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    other = format_vkey(parse_vkey(vkey).name, stranger)
    refused = subprocess.run(
        [str(tlogcheck), f"http://127.0.0.1:{port}/", other],
        capture_output=True,
        text=True,
        timeout=COMMAND_BOUND,
    )
    assert refused.returncode == 1
    assert "note.Open" in refused.stderr


def test_the_tiles_over_https_with_the_nodes_certificate(nodes: NodeFactory) -> None:
    """With `transparency.tls: true` the checkpoint is served over TLS with the node's own
    (pinned) certificate, and verifies under its vkey."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    ctx = node.ctx()
    _append(node, 3, 0)
    checkpoints.sign(ctx)
    port = _serve_tiles(node, tls=True)
    context = ssl.create_default_context(cafile=str(ctx.config.tls_cert))
    context.check_hostname = False  # pinned: the certificate itself is the trust root
    url = f"https://127.0.0.1:{port}/checkpoint"
    with urllib.request.urlopen(url, context=context, timeout=COMMAND_BOUND) as response:
        note = response.read()
    cp = open_checkpoint(note, parse_vkey(checkpoints.verifier_key(ctx)))
    assert cp.size >= 3
