"""Recovery that is not a fork (issue 17.3, ADR 0023): a regency loses its database and
comes back from a day-old backup by a signed discontinuity under a new key. A province and
a regency, joined with a token, serve on real mutual-TLS gRPC; the regency's operator runs
the commands of docs/operator-guide.md, 'Recovering from a lost database'."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import subprocess
from pathlib import Path

import pytest

from node._proto.lapor.v1 import envelope_pb2, federation_pb2, ledger_pb2, trust_pb2
from node.config import load_config
from node.crypto.rotation import sign_rotation
from node.crypto.signing import SigningKey
from node.envelopes import seal
from node.ids import NodeId
from node.ledger.checkpoint import Checkpoint, origin_for
from node.ledger.note import sign_checkpoint
from node.services import checkpoints, complaints, exchange, links, peer_evidence, witness
from node.store import queries
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.integration.test_backup import lose_database
from tests.support.cli import run_cli
from tests.support.databases import fresh_database
from tests.support.nodes import TestNode, hand_over, link, snapshot, status_of
from tests.support.peers import signing_key
from tests.support.waits import wait_until

pytestmark = [pytest.mark.slow]


def _serve(node: TestNode) -> None:
    """Start `node`'s serve and wait for its enrollment port too."""
    node.start()
    host, _, port = load_config(node.config).server.enrollment_address.rpartition(":")

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex((host, int(port))) == 0

    wait_until(listening, what=f"{node.node_id}'s enrollment port")


def _connected(node: TestNode, peer: str) -> bool:
    return any(row.peer_id == peer and row.connected for row in links.link_report(node.ctx()).rows)


def _refer(province: TestNode, regency: TestNode, n: int, start: int) -> list[str]:
    """Refer `n` complaints down while both serve; wait for every receipt."""
    ctx = province.ctx()
    ids = list(complaints.submit_many(ctx, [draft(start + i) for i in range(n)]))
    complaints.refer_many(ctx, ids, regency.node_id)
    for tracking_id in ids:
        wait_until(
            lambda t=tracking_id: status_of(province, t) == ("accepted", regency.node_id),
            what=f"the receipt of {tracking_id}",
        )
    return ids


def _lapor(*args: str) -> subprocess.CompletedProcess[str]:
    """A command that acts on no node, as an auditor runs it (in this process:
    tests/support/cli.py)."""
    return run_cli(args)


def _export(node: TestNode, out: Path) -> Path:
    node.cli("audit", "export", "--out", str(out))
    return out


def test_a_lost_database_is_recovered_by_a_signed_discontinuity(
    nodes: NodeFactory, db_kind: str, tmp_path: Path
) -> None:
    """Delete the regency's database, restore a day-old backup with --recover: the link
    comes back under the new key, new referrals flow, both ledgers verify from the root's
    key alone with the gap reported, and reconcile names what was lost in it."""
    stack = contextlib.ExitStack()
    with stack:
        _recover_and_check(nodes, db_kind, tmp_path, stack)


def _recover_and_check(
    nodes: NodeFactory, db_kind: str, tmp_path: Path, stack: contextlib.ExitStack
) -> None:
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    root_vkey = checkpoints.verifier_key(province.ctx())
    _serve(province)
    token = province.cli("link", "invite", "--child", regency.node_id, "--name", regency.name)
    regency.cli("link", "join", token.stdout.strip())
    regency.start()
    wait_until(lambda: _connected(province, regency.node_id), what="the link to come up")
    before = _refer(province, regency, 2, 0)
    regency.cli("backup", "create", "--out", str(tmp_path / "backup"))
    lost = _refer(province, regency, 2, 2)

    lose_database(regency, db_kind, stack.enter_context(fresh_database(db_kind, tmp_path)))
    refused = regency.cli("serve", check=False)
    assert refused.returncode != 0
    # SQLite: the file is gone; PostgreSQL: the empty database is below the fence.
    assert "backup" in refused.stderr and "restore" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    plain = regency.cli("backup", "restore", str(tmp_path / "backup"), check=False)
    assert plain.returncode != 0 and "--recover --reason" in plain.stderr
    regency.cli(
        "backup",
        "restore",
        str(tmp_path / "backup"),
        "--recover",
        "--reason",
        "disk of the regency's server failed; restored the backup of the previous day",
    )

    regency.start()
    wait_until(lambda: _connected(regency, province.node_id), what="the link to come back")
    # The referrals the regency lost come down again from the province's outbox.
    for tracking_id in before + lost:
        wait_until(
            lambda t=tracking_id: status_of(regency, t) == ("accepted", regency.node_id),
            what=f"{tracking_id} at the regency again",
        )
    after = _refer(province, regency, 2, 4)
    assert all(status_of(regency, t) == ("accepted", regency.node_id) for t in after)

    exports = {
        node.node_id: _export(node, tmp_path / f"{node.node_id}.jsonl")
        for node in (province, regency)
    }
    reports = {}
    for node_id, path in exports.items():
        done = _lapor("audit", "verify", str(path), "--trust", root_vkey, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        reports[node_id] = json.loads(done.stdout)
    gaps = reports[regency.node_id]["discontinuities"]
    assert [gap["reason"] for gap in gaps] == [
        "disk of the regency's server failed; restored the backup of the previous day"
    ]
    assert reports[province.node_id]["discontinuities"] == []
    shown = _lapor("audit", "verify", str(exports[regency.node_id]), "--trust", root_vkey)
    assert "discontinuity at entry" in shown.stdout

    reconciled = _lapor(
        "audit",
        "reconcile",
        str(exports[province.node_id]),
        str(exports[regency.node_id]),
        "--json",
    )
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    result = json.loads(reconciled.stdout)
    assert result["discrepancies"] == []
    entry = gaps[0]["entry"]
    explained = [f for f in result["in_flight"] if f["kind"] == "lost-in-discontinuity"]
    # The receipts the regency sent for the referrals it then lost: explained, by name.
    assert sorted(f["tracking_id"] for f in explained) == sorted(lost)
    assert all(f"lost in discontinuity child entry {entry}" in f["detail"] for f in explained)
    # The province recorded the statement: its PeerKeyRotated entry carries it.
    with province.ctx().db.read() as session:
        assert witness.discontinuity_for(
            session, regency.node_id, gaps[0]["old_checkpoint"]["size"]
        )
    regency.close()  # before its database is dropped


def _entries_of(node: TestNode, kind: str) -> list[int]:
    with node.ctx().db.read() as session:
        return [
            row.idx
            for row in queries.iter_ledger(session)
            if ledger_pb2.LedgerEntry.FromString(row.entry).WhichOneof("kind") == kind
        ]


def test_only_a_statement_from_the_pinned_key_explains_the_new_history(
    nodes: NodeFactory, db_kind: str, tmp_path: Path
) -> None:
    """In process, over the link's service calls: a discontinuity whose rotation starts from
    a key the parent never pinned is refused and changes nothing there; the recovered
    node's own statement is recorded, and the parent then holds its new history."""
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    child = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(parent, child)

    def refer(n: int) -> None:
        ctx = parent.ctx()
        complaints.refer(ctx, complaints.submit(ctx, draft(n)), child.node_id)
        assert hand_over(parent, child).error is None
        assert hand_over(child, parent).error is None

    refer(0)
    child.cli("backup", "create", "--out", str(tmp_path / "backup"))
    refer(1)
    refer(2)
    old_key = signing_key(child)
    held = exchange.hello_state(parent.ctx(), NodeId(child.node_id))
    lost_head = peer_evidence.hello_notes(parent.ctx(), NodeId(child.node_id)).held
    empty = contextlib.ExitStack()
    lose_database(child, db_kind, empty.enter_context(fresh_database(db_kind, tmp_path)))
    child.cli("backup", "restore", str(tmp_path / "backup"), "--recover", "--reason", "disk lost")
    # What a session does at the Hello: the parent is ahead of the restored sequences.
    exchange.check_peer_holds(child.ctx(), held.held_checkpoint_size, held.held_checkpoint_root)
    exchange.acknowledge(child.ctx(), NodeId(parent.node_id), held.last_received)
    rows, _ = exchange.pending(
        child.ctx(), NodeId(parent.node_id), held.last_received, 10, held.held_checkpoint_size
    )
    [(sequence, real)] = rows
    assert sequence == held.last_received + 1

    # A statement from a key the parent never pinned, in an envelope the pinned key signed.
    stranger = SigningKey.generate()
    env = envelope_pb2.Envelope.FromString(real.envelope.body)
    stated = trust_pb2.KeyRotation.FromString(env.key_rotation.rotation).discontinuity
    forged_note = sign_checkpoint(
        Checkpoint(origin_for(child.node_id), stated.fenced_size, stated.fenced_root),
        origin_for(child.node_id),
        stranger.ed25519,
    )
    stated.fenced_checkpoint = forged_note
    env.key_rotation.CopyFrom(
        sign_rotation(
            stranger,
            child.ctx().signing_key,
            node_id=child.node_id,
            new_tls_cert_pem=child.ctx().config.tls_cert.read_bytes(),
            rotated_at=dt.datetime.now(dt.UTC),
            old_tls_valid_until=dt.datetime.now(dt.UTC),
            discontinuity=stated,
        )
    )
    forged = federation_pb2.Delivery(envelope=seal(env, old_key))
    before = snapshot(parent)
    result = exchange.receive_batch(parent.ctx(), NodeId(child.node_id), [forged])
    assert result.error is not None and "did not sign" in str(result.error)
    assert snapshot(parent) == before

    result = exchange.receive_batch(parent.ctx(), NodeId(child.node_id), [real])
    assert result.error is None and result.committed_through == sequence
    assert len(_entries_of(parent, "peer_key_rotated")) == 1
    with parent.ctx().db.read() as session:
        gap = witness.discontinuity_for(session, child.node_id, held.held_checkpoint_size)
    assert gap is not None and gap.reason == "disk lost"
    # From now on the child's new history flows as any other.
    refer(3)
    # Where a Hello's contradiction asks for a statement (node.services.peer_evidence): a
    # head of the lost history is explained by it; the new history's (held once it flowed) is not.
    with parent.ctx().db.read() as session:
        row = queries.get_link(session, child.node_id)
        assert row is not None and row.peer_checkpoint is not None

        def explained(held_note: bytes) -> bool:
            kind = ledger_pb2.FORK_KIND_ROLLBACK
            fork = witness.ForkDetected("a Hello's head", kind=kind, held=held_note)
            return peer_evidence._explained(session, parent.ctx(), row, fork)

        assert explained(lost_head)
        assert not explained(row.peer_checkpoint)
    child.close()
    empty.close()
