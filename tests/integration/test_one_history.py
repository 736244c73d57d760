"""Operating mistakes that would fork a node, tried as an operator makes them: a second
`serve` of the same node, and a deleted database under keys that already signed."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.crypto.signing import SigningKey
from node.envelopes import seal
from node.services import checkpoints, complaints
from node.services._ledger import record
from tests.conftest import NodeFactory
from tests.support import zygote
from tests.support.cli import ENTRY
from tests.support.databases import fresh_database
from tests.support.factories import DRAFT
from tests.support.nodes import TestNode
from tests.support.peers import envelope


def _serve(node: TestNode) -> subprocess.CompletedProcess[str]:
    """`serve` expected to stop by itself (refused), as a process of its own: its exit code
    and output (stdout and stderr together, as the zygote forks it: decision 0042)."""
    args = ["serve", "--config", str(node.config)]
    if not zygote.enabled():
        return subprocess.run([*ENTRY, *args], capture_output=True, text=True, timeout=120)
    log = node.directory.parent / f"{node.node_id}-refused-serve.log"
    log.unlink(missing_ok=True)
    code = zygote.spawn_serve(args, log).wait(120)
    return subprocess.CompletedProcess(["lapor-node", *args], code, "", log.read_text())


def test_a_second_serve_of_a_running_node_stops_with_one_line(nodes: NodeFactory) -> None:
    """The data directory is held by the running serve: the second one says so and exits."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    node.start()
    try:
        second = _serve(node)
        assert second.returncode != 0
        assert "already running for the node in" in second.stderr
        assert f"(pid {node.process.pid})" in second.stderr  # type: ignore[union-attr]
        assert "Traceback" not in second.stderr
        assert node.process is not None and node.process.poll() is None
    finally:
        node.stop()
    node.start()  # the lock went with the first process
    node.stop()


def test_a_database_deleted_under_signed_keys_is_refused_not_started_again(
    nodes: NodeFactory, db_kind: str, tmp_path: Path
) -> None:
    """After a checkpoint was signed, an empty database in its place: every command says
    what happened in one line, and `serve` refuses to sign a second history."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    complaints.submit(node.ctx(), DRAFT)
    signed, _ = checkpoints.sign(node.ctx())
    assert signed.size > 0
    node.close()
    with fresh_database(db_kind, tmp_path) as empty:
        config = node.config.read_text()
        assert node.database_url in config
        node.config.write_text(config.replace(node.database_url, empty))
        if db_kind == "sqlite":
            path = Path(empty.removeprefix("sqlite:///"))
            path.unlink(missing_ok=True)
            gone = _serve(node)
            assert gone.returncode != 0
            assert "does not exist" in gone.stderr and "restore" in gone.stderr
            assert "Traceback" not in gone.stderr
            assert not path.exists(), "serve must not create a node's database afresh"
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # an empty file instead
        listed = node.cli("link", "list", check=False)
        assert listed.returncode != 0
        assert "Traceback" not in listed.stderr
        assert "holds no lapor-node tables" in listed.stderr
        refused = _serve(node)
        assert refused.returncode != 0, refused.stderr
        assert "Traceback" not in refused.stderr
        assert "deleted, rolled back or restored from an older copy" in refused.stderr


def test_init_makes_the_node_private_and_serve_refuses_an_open_one(nodes: NodeFactory) -> None:
    """The folder is 0700 and its files 0600 from init; opened up, serve names the fix."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    assert stat.S_IMODE(node.directory.stat().st_mode) == 0o700
    for path in node.directory.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    node.directory.chmod(0o755)
    refused = _serve(node)
    assert refused.returncode != 0
    assert f"chmod 700 {node.directory}" in refused.stderr
    assert "Traceback" not in refused.stderr
    node.directory.chmod(0o700)
    node.start()
    node.stop()


def test_a_forged_entry_in_the_ledger_table_is_never_signed_over(nodes: NodeFactory) -> None:
    """An entry appended to the ledger table by someone with database access, signed by a
    fresh key, tree and head made consistent: serve refuses to start and signs nothing."""
    node = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    complaints.submit(node.ctx(), DRAFT)
    signed, _ = checkpoints.sign(node.ctx())
    forged = envelope(
        "id-64",
        "id-64-02",
        1,
        receipt=envelope_pb2.Receipt(tracking_id="id-64.2026.000001"),
    )
    with node.ctx().db.write() as session:
        record(
            session,
            node.ctx(),
            ledger_pb2.LedgerEntry(
                referral_received=ledger_pb2.ReferralReceived(
                    envelope=seal(forged, SigningKey.generate())
                )
            ),
        )
    node.close()
    refused = _serve(node)
    assert refused.returncode != 0
    assert "expected this node's own ledger to verify" in refused.stderr
    assert "Traceback" not in refused.stderr
    latest = checkpoints.latest(node.ctx())
    assert latest is not None and latest.size == signed.size


def test_a_port_already_held_is_refused_in_one_line(nodes: NodeFactory) -> None:
    """Another node configured with a running node's port, or any program holding it: serve
    stops naming the address and what to do (no SO_REUSEPORT sharing, no traceback)."""
    first = nodes("id-64", "Provinsi Kalimantan Timur")
    second = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    config = second.config.read_text()
    assert second.address in config
    second.config.write_text(config.replace(second.address, first.address))
    first.start()
    try:
        refused = _serve(second)
        assert refused.returncode != 0
        assert f"cannot listen on {first.address} (server.listen in node.yaml)" in refused.stderr
        assert "Traceback" not in refused.stderr
    finally:
        first.stop()
    with socket.socket() as held:
        held.bind(("127.0.0.1", first.port))
        held.listen()
        refused = _serve(first)
    assert refused.returncode != 0
    assert f"cannot listen on {first.address}" in refused.stderr
    assert "Traceback" not in refused.stderr
