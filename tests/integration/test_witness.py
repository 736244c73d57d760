"""Witnessing between peers: each side keeps the other's latest signed checkpoint, accepts a
newer one only with a consistency proof, and catches a peer that forks or rewinds its
ledger: the evidence goes into its own ledger and the peer is refused until an operator
lifts it."""

from __future__ import annotations

import io
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from node._proto.lapor.v1 import envelope_pb2, federation_pb2, ledger_pb2
from node.complaints import ComplaintDraft
from node.envelopes import seal
from node.errors import FenceError, InconsistentCheckpointError, StateError
from node.ledger.audit import verify_export
from node.ledger.checkpoint import Checkpoint, origin_for
from node.ledger.merkle import verify_consistency
from node.ledger.note import Verifier, open_checkpoint, sign_checkpoint
from node.metrics import PEER_FORKS, PEER_SUSPENDED
from node.services import audit, checkpoints, complaints, exchange, fence, witness
from node.services.context import NodeContext
from node.store import queries, tree
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, hand_over, link
from tests.support.peers import envelope, sealed, signing_key


def _draft(n: int) -> ComplaintDraft:
    return ComplaintDraft(
        title=f"Jalan rusak {n}",
        description="Jalan poros berlubang sejak Januari.",
        classification="pengaduan",
        category="infrastruktur",
        region_code="64.02",
        channel="web",
        reporter_name="Siti Rahmawati",
        reporter_contact="+62 812 5555 0101",
    )


@dataclass
class Pair:
    national: TestNode
    province: TestNode

    def refer_and_receipt(self, n: int) -> str:
        """A complaint at national, referred to the province, received, receipted."""
        ctx = self.national.ctx()
        tracking_id = complaints.submit(ctx, _draft(n))
        complaints.refer(ctx, tracking_id, "id-64")
        assert hand_over(self.national, self.province).error is None
        assert hand_over(self.province, self.national).error is None
        return tracking_id


@pytest.fixture
def pair(nodes: NodeFactory) -> Pair:
    national = nodes("id", "Nasional")
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    link(national, province)
    result = Pair(national, province)
    result.refer_and_receipt(1)
    return result


def _link(ctx: NodeContext, peer: str) -> tuple[bytes | None, int, int | None]:
    with ctx.db.read() as session:
        row = queries.get_link(session, peer)
        assert row is not None
        return row.peer_checkpoint, row.peer_checkpoint_size, row.suspended_by_entry


def _entries(ctx: NodeContext, kind: str) -> Iterator[tuple[int, ledger_pb2.LedgerEntry]]:
    with ctx.db.read() as session:
        for index, data in session.execute(text("SELECT idx, entry FROM ledger_entries")):
            entry = ledger_pb2.LedgerEntry.FromString(bytes(data))
            if entry.WhichOneof("kind") == kind:
                yield index, entry


def _verifier(node: TestNode) -> Verifier:
    return Verifier.from_public_key(origin_for(node.node_id), signing_key(node).public.raw)


def _export_verifies(ctx: NodeContext) -> None:
    out = io.StringIO()
    audit.export(ctx, out)
    verify_export(out.getvalue().splitlines(keepends=True), trusted_vkey=None)


def _forged(node: TestNode, size: int, sequence: int, root: bytes | None = None) -> bytes:
    """An envelope body from `node` carrying a checkpoint it signed over another history."""
    note = sign_checkpoint(
        Checkpoint(origin_for(node.node_id), size, root or os.urandom(32)),
        origin_for(node.node_id),
        signing_key(node).ed25519,
    )
    env = envelope(
        node.node_id,
        "id",
        sequence,
        receipt=envelope_pb2.Receipt(
            referral_message_id="0190d5d6-7f00-7000-8000-000000000001",
            referral_body_sha256=b"\0" * 32,
            tracking_id="id.2026.000001",
        ),
    )
    env.checkpoint = note
    return sealed(node, env).SerializeToString()


def _delivery(
    body: bytes, held: int = 0, proof: list[bytes] | None = None
) -> federation_pb2.Delivery:
    return federation_pb2.Delivery(
        envelope=envelope_pb2.SignedEnvelope.FromString(body),
        proof_held_size=held,
        consistency_proof=proof or [],
    )


def test_each_side_holds_the_others_checkpoint_and_receipts_carry_one(pair: Pair) -> None:
    national, province = pair.national.ctx(), pair.province.ctx()
    note, size, suspended = _link(national, "id-64")
    assert note is not None and suspended is None
    held = open_checkpoint(note, _verifier(pair.province))
    assert held.size == size > 0
    # The receipt in national's ledger carries the province's checkpoint covering the entry.
    [(_, entry)] = list(_entries(national, "receipt_received"))
    env = envelope_pb2.Envelope.FromString(entry.receipt_received.envelope.body)
    carried = open_checkpoint(env.checkpoint, _verifier(pair.province))
    assert carried.size > env.receipt.entry_index
    # ... and the province kept national's checkpoint from the referral.
    note, size, _ = _link(province, "id")
    assert note is not None and open_checkpoint(note, _verifier(pair.national)).size == size


def test_a_newer_checkpoint_is_accepted_with_its_consistency_proof(pair: Pair) -> None:
    national = pair.national.ctx()
    first_note, first_size, _ = _link(national, "id-64")
    pair.refer_and_receipt(2)
    second_note, second_size, _ = _link(national, "id-64")
    assert second_size > first_size
    v = _verifier(pair.province)
    a, b = open_checkpoint(first_note or b"", v), open_checkpoint(second_note or b"", v)
    with pair.province.ctx().db.read() as session:
        proof = tree.consistency_proof(session, a.size, b.size)
    verify_consistency(a.size, b.size, a.root, b.root, proof)
    assert not list(_entries(national, "peer_fork_detected"))


@pytest.mark.parametrize(
    ("kind", "grow"),
    [pytest.param("same-size", 0, id="same-size"), pytest.param("inconsistent", 3, id="larger")],
)
def test_a_forked_checkpoint_is_evidence_and_suspends_the_peer(
    pair: Pair, kind: str, grow: int
) -> None:
    national = pair.national.ctx()
    held_note, held_size, _ = _link(national, "id-64")
    next_seq = exchange.hello_state(national, "id-64").last_received + 1  # type: ignore[arg-type]
    before = PEER_FORKS.labels(peer="id-64", kind=kind)._value.get()
    body = _forged(pair.province, held_size + grow, next_seq)
    proof = [os.urandom(32), os.urandom(32)] if grow else []
    result = exchange.receive_batch(
        national,
        "id-64",
        [_delivery(body, held_size, proof)],  # type: ignore[arg-type]
    )
    assert isinstance(result.error, StateError)
    assert "recorded the evidence in its ledger entry" in str(result.error)
    # The evidence: both signed notes, exactly as presented, in national's own ledger.
    [(index, entry)] = list(_entries(national, "peer_fork_detected"))
    fork = entry.peer_fork_detected
    assert fork.peer_id == "id-64" and fork.held_checkpoint == held_note
    assert (
        fork.presented_checkpoint
        == envelope_pb2.Envelope.FromString(
            envelope_pb2.SignedEnvelope.FromString(body).body
        ).checkpoint
    )
    assert fork.kind == (
        ledger_pb2.FORK_KIND_SAME_SIZE if not grow else ledger_pb2.FORK_KIND_INCONSISTENT
    )
    assert PEER_FORKS.labels(peer="id-64", kind=kind)._value.get() == before + 1
    assert PEER_SUSPENDED.labels(peer="id-64")._value.get() == 1
    assert _link(national, "id-64")[2] == index
    # Nothing of the forged envelope was applied; the peer's held checkpoint is unchanged.
    assert _link(national, "id-64")[:2] == (held_note, held_size)
    _export_verifies(national)
    # From now on everything from the province is refused, even honest envelopes ...
    complaints.refer(national, complaints.submit(national, _draft(9)), "id-64")
    assert hand_over(pair.national, pair.province).error is None
    with pytest.raises(StateError, match=f"refused since ledger entry {index}"):
        hand_over(pair.province, pair.national)
    # ... until an operator lifts the suspension, which is in the ledger too.
    lifted = witness.lift_suspension(national, "id-64", "province restored from backup; checked")
    [(at, entry)] = list(_entries(national, "peer_suspension_lifted"))
    assert at == lifted and entry.peer_suspension_lifted.fork_entry_index == index
    assert hand_over(pair.province, pair.national).error is None
    assert PEER_SUSPENDED.labels(peer="id-64")._value.get() == 0
    _export_verifies(national)


def test_a_proof_against_a_stale_size_is_refused_without_evidence(pair: Pair) -> None:
    national = pair.national.ctx()
    _, held_size, _ = _link(national, "id-64")
    next_seq = exchange.hello_state(national, "id-64").last_received + 1  # type: ignore[arg-type]
    body = _forged(pair.province, held_size + 1, next_seq)
    result = exchange.receive_batch(
        national,
        "id-64",
        [_delivery(body, held_size - 1, [os.urandom(32)])],  # type: ignore[arg-type]
    )
    assert isinstance(result.error, StateError) and "resumes from" in str(result.error)
    assert not list(_entries(national, "peer_fork_detected"))
    assert _link(national, "id-64")[2] is None


def test_an_envelope_without_a_checkpoint_is_refused(pair: Pair) -> None:
    national = pair.national.ctx()
    next_seq = exchange.hello_state(national, "id-64").last_received + 1  # type: ignore[arg-type]
    env = envelope_pb2.Envelope.FromString(
        envelope_pb2.SignedEnvelope.FromString(_forged(pair.province, 1, next_seq)).body
    )
    env.ClearField("checkpoint")
    delivery = federation_pb2.Delivery(envelope=seal(env, signing_key(pair.province)))
    result = exchange.receive_batch(national, "id-64", [delivery])  # type: ignore[arg-type]
    assert result.error is not None and "carries no checkpoint" in str(result.error)


def _copy_sqlite(url: str, to: str) -> None:
    src = sqlite3.connect(url.removeprefix("sqlite:///"))
    dst = sqlite3.connect(to)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def test_a_node_restored_from_an_old_backup_is_caught(pair: Pair, db_kind: str) -> None:
    """The province's database goes back to an old copy. It refuses to talk over a link
    whose peer holds a newer checkpoint of it; and if it grows a new history past what
    national holds, national records the fork."""
    if db_kind != "sqlite":
        pytest.skip("restoring a database file from a copy is the SQLite case")
    province = pair.province
    backup = str(province.directory / "old-backup.db")
    _copy_sqlite(province.database_url, backup)
    fence_file = fence.fence_path(province.ctx().config)
    old_fence = fence_file.read_bytes()
    pair.refer_and_receipt(2)
    _, held_size, _ = _link(pair.national.ctx(), "id-64")
    province.ctx().db.dispose()
    _copy_sqlite(f"sqlite:///{backup}", province.database_url.removeprefix("sqlite:///"))
    province._ctx = None
    with pytest.raises(InconsistentCheckpointError, match="went back in time"):
        exchange.check_peer_holds(province.ctx(), held_size)
    # Its own signing fence refuses to sign over the older database (node.services.fence)
    # ...
    complaints.submit(province.ctx(), _draft(99))
    with pytest.raises(FenceError, match="this node signed"):
        checkpoints.sign(province.ctx())
    # ... unless its keys folder, fence and all, was restored from the same old backup. The
    # restored province then grows another history, longer than what national holds: it
    # still refuses (it never signed the checkpoint national holds) ...
    fence_file.write_bytes(old_fence)
    for n in range(held_size + 1):
        complaints.submit(province.ctx(), _draft(100 + n))
    grown, _ = checkpoints.sign(province.ctx())
    assert grown.size > held_size
    held_root = exchange.hello_state(pair.national.ctx(), "id-64").held_checkpoint_root  # type: ignore[arg-type]
    with pytest.raises(InconsistentCheckpointError, match="went back in time"):
        exchange.check_peer_holds(province.ctx(), held_size, held_root)
    # ... and had it gone on anyway, its proof from the held checkpoint would not verify:
    # national records the fork.
    with province.ctx().db.read() as session:
        proof = tree.consistency_proof(session, held_size, grown.size)
    next_seq = exchange.hello_state(pair.national.ctx(), "id-64").last_received + 1  # type: ignore[arg-type]
    env = envelope(province.node_id, "id", next_seq, receipt=envelope_pb2.Receipt())
    env.checkpoint = grown.note
    delivery = federation_pb2.Delivery(
        envelope=sealed(province, env), proof_held_size=held_size, consistency_proof=proof
    )
    result = exchange.receive_batch(pair.national.ctx(), "id-64", [delivery])  # type: ignore[arg-type]
    assert result.error is not None and "not consistent" in str(result.error)
    forks = list(_entries(pair.national.ctx(), "peer_fork_detected"))
    assert [e.peer_fork_detected.kind for _, e in forks] == [ledger_pb2.FORK_KIND_INCONSISTENT]


def test_a_sender_will_not_prove_against_a_checkpoint_it_never_signed(pair: Pair) -> None:
    """Asked for envelopes by a peer that holds a checkpoint this node does not have (its
    database went back in time), the sender refuses instead of proving anything."""
    province = pair.province.ctx()
    rows, _ = exchange.pending(province, "id", 0, 10, 0)  # type: ignore[arg-type]
    assert rows, "the fixture leaves the province's receipt in its outbox"
    with pytest.raises(InconsistentCheckpointError, match="went back in time"):
        exchange.pending(province, "id", 0, 10, 10_000)  # type: ignore[arg-type]
