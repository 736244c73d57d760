"""node.services.peer_evidence on two real databases: what a peer's Hello says of its own
ledger (fork or rollback evidence, or nothing) and of ours (own history lost, or a claim we
never signed), without processes (tests/fault/test_peer_rollback.py runs them)."""

from __future__ import annotations

import os

import pytest

from node._proto.lapor.v1 import federation_pb2, ledger_pb2
from node.crypto.signing import SigningKey
from node.errors import InconsistentCheckpointError, StateError
from node.ledger.checkpoint import Checkpoint, origin_for
from node.ledger.note import sign_checkpoint
from node.metrics import REGISTRY
from node.services import complaints, exchange, peer_evidence
from node.store import queries
from tests.conftest import NodeFactory
from tests.support.factories import DRAFT
from tests.support.nodes import TestNode, carry, link
from tests.support.peers import signing_key


@pytest.fixture
def pair(nodes: NodeFactory) -> tuple[TestNode, TestNode]:
    """A province and a regency that each hold a checkpoint of the other (one referral and
    its receipt carried)."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    tracking_id = complaints.submit(province.ctx(), DRAFT)
    complaints.refer(province.ctx(), tracking_id, regency.node_id)
    carry(province, regency)
    carry(regency, province)
    return province, regency


def _note(signer: SigningKey, node_id: str, size: int, root: bytes) -> bytes:
    origin = origin_for(node_id)
    return sign_checkpoint(Checkpoint(origin, size, root), origin, signer.ed25519)


def _forks(node: TestNode) -> list[ledger_pb2.PeerForkDetected]:
    with node.ctx().db.read() as session:
        entries = (ledger_pb2.LedgerEntry.FromString(r.entry) for r in queries.iter_ledger(session))
        return [e.peer_fork_detected for e in entries if e.HasField("peer_fork_detected")]


def _held(holder: TestNode, of: TestNode) -> int:
    return exchange.hello_state(holder.ctx(), of.ctx().node_id).held_checkpoint_size  # type: ignore[arg-type]


def _count(peer: str, kind: str) -> float:
    value = REGISTRY.get_sample_value("lapor_node_peer_forks_total", {"peer": peer, "kind": kind})
    return value or 0.0


@pytest.mark.parametrize(
    ("case", "kind"),
    [
        ("same size, other root", ledger_pb2.FORK_KIND_SAME_SIZE),
        ("an older head", ledger_pb2.FORK_KIND_ROLLBACK),
    ],
)
def test_a_contradicting_head_is_recorded_once(
    pair: tuple[TestNode, TestNode], case: str, kind: ledger_pb2.ForkKind
) -> None:
    """The regency's Hello shows a head it signed that contradicts the one held: evidence,
    suspension; at the next Hello the suspension refuses it, and nothing is recorded again."""
    province, regency = pair
    held = _held(province, regency)
    size = held if kind == ledger_pb2.FORK_KIND_SAME_SIZE else held - 1
    note = _note(signing_key(regency), regency.node_id, size, os.urandom(32))
    hello = federation_pb2.Hello(checkpoint=note)
    with pytest.raises(StateError, match="recorded the evidence in its ledger entry"):
        peer_evidence.check_hello(province.ctx(), regency.node_id, hello)  # type: ignore[arg-type]
    (evidence,) = _forks(province)
    assert evidence.kind == kind and evidence.presented_checkpoint == note
    assert not evidence.HasField("envelope")
    with pytest.raises(StateError, match="refused since ledger entry"):
        peer_evidence.check_hello(province.ctx(), regency.node_id, hello)  # type: ignore[arg-type]
    assert len(_forks(province)) == 1


@pytest.mark.parametrize("case", ["larger", "unknown key", "the held one", "none"])
def test_a_head_that_proves_nothing_yet_passes(pair: tuple[TestNode, TestNode], case: str) -> None:
    """A larger head (the envelopes prove it), one signed by a key not known here (a
    rotation not followed yet), the held one, or none: no evidence, no refusal."""
    province, regency = pair
    held = _held(province, regency)
    note = {
        "larger": _note(signing_key(regency), regency.node_id, held + 5, os.urandom(32)),
        "unknown key": _note(SigningKey.generate(), regency.node_id, held, os.urandom(32)),
        "the held one": peer_evidence.hello_notes(province.ctx(), regency.node_id).held,  # type: ignore[arg-type]
        "none": b"",
    }[case]
    peer_evidence.check_hello(
        province.ctx(),
        regency.node_id,  # type: ignore[arg-type]
        federation_pb2.Hello(checkpoint=note),
    )
    assert _forks(province) == []


@pytest.mark.parametrize(
    ("case", "kind"),
    [("signed by us", "own-history"), ("signed by nobody we know", "unsigned-claim")],
)
def test_a_held_checkpoint_our_ledger_lacks_is_named_once(
    pair: tuple[TestNode, TestNode], case: str, kind: str
) -> None:
    """The regency says it holds a province checkpoint the province's ledger does not have:
    signed by the province's key, its own history was lost; else a claim never signed.
    Refused with that kind; nothing appended; counted once across redials."""
    province, regency = pair
    signer = signing_key(province) if kind == "own-history" else SigningKey.generate()
    size, root = 10_000, os.urandom(32)
    hello = federation_pb2.Hello(
        held_checkpoint_size=size,
        held_checkpoint_root=root,
        held_checkpoint=_note(signer, province.node_id, size, root),
    )
    before = _count(regency.node_id, kind)
    for _ in range(2):
        with pytest.raises(InconsistentCheckpointError, match=f"^{kind}: id-64-02 holds"):
            peer_evidence.check_hello(province.ctx(), regency.node_id, hello)  # type: ignore[arg-type]
    assert _count(regency.node_id, kind) == before + 1
    assert _forks(province) == []
    with province.ctx().db.read() as session:
        row = queries.get_link(session, regency.node_id)
        assert row is not None and str(row.last_error).startswith(f"{kind}: ")
