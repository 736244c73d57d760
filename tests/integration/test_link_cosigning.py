"""Linked peers cosign each other's checkpoints inside the link stream (decision 0032):
real nodes over real mutual TLS, no witness URL configured anywhere. The province's served
checkpoint ends up cosigned by its parent and its child, the regency's by its parent, and
witness policies over the link cosigner keys (derived from the signing keys) hold; a peer
that asks for a rollback gets tlog-witness's 409 and nothing moves."""

from __future__ import annotations

import json

import pytest

from node._proto.lapor.v1 import federation_pb2
from node.errors import SignatureError
from node.ledger import witness_policy
from node.ledger.cosignature import find_cosignature
from node.services import checkpoints, complaints, cosigning
from node.store import witnessed
from tests.conftest import NodeFactory
from tests.integration.test_cosigning import _draft
from tests.integration.test_referral import SUBMIT
from tests.support.nodes import TestNode, link, status_of
from tests.support.peers import exchange_as, hello
from tests.support.waits import DELIVERY_BOUND, bound, wait_until

pytestmark = pytest.mark.slow

COSIGN_INTERVAL = 0.5  # witness.submit_interval_seconds of every node here


def _cosign_often(node: TestNode) -> None:
    with node.config.open("a") as f:
        f.write(f"\nwitness:\n  submit_interval_seconds: {COSIGN_INTERVAL}\n")


def _link_key(node: TestNode) -> str:
    """The node's link cosigner vkey, as an auditor derives it from its signing key."""
    raw = node.ctx().signing_key.public.raw
    return cosigning.link_cosigner_key(node.node_id, raw).vkey


def _policy(log: TestNode, *witnesses: TestNode) -> witness_policy.Policy:
    lines = [f"log {checkpoints.verifier_key(log.ctx())}"]
    lines += [f"witness {w.node_id} {_link_key(w)}" for w in witnesses]
    names = " ".join(w.node_id for w in witnesses)
    lines += [f"group all-linked all {names}", "quorum all-linked"]
    return witness_policy.parse("\n".join(lines) + "\n")


def _passes(node: TestNode, policy: witness_policy.Policy) -> tuple[str, ...] | None:
    """The witnesses whose cosignatures on `node`'s served checkpoint satisfy `policy`, or
    None while they do not (yet)."""
    served = cosigning.cosigned_checkpoint(node.ctx())
    if served is None:
        return None
    try:
        return witness_policy.check(served, policy).witnesses
    except SignatureError:  # the quorum is not (yet) there
        return None


def test_each_linked_pair_cosigns_the_others_checkpoints(nodes: NodeFactory) -> None:
    """After referrals flow down national -> province -> regency, the province's served
    checkpoint carries verified cosignatures by its parent and its child (a policy requiring
    both passes), and the regency's by its parent."""
    national = nodes("id", "Nasional")
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(national, province)
    link(province, regency)
    for n in (national, province, regency):
        _cosign_often(n)
        n.start()

    tracking = json.loads(national.cli(*SUBMIT).stdout)["tracking_id"]
    national.cli("complaint", "refer", tracking, "--to", "id-64")
    wait_until(lambda: status_of(national, tracking) == ("accepted", "id-64"), what="receipt")
    province.cli("complaint", "refer", tracking, "--to", "id-64-02")
    wait_until(lambda: status_of(province, tracking) == ("accepted", "id-64-02"), what="receipt")

    # A round every interval; the answer within the peer's witness.timeout_seconds.
    within = bound(DELIVERY_BOUND, 2 * COSIGN_INTERVAL)
    both = _policy(province, national, regency)
    got = wait_until(
        lambda: _passes(province, both), within, what="the province cosigned by id and id-64-02"
    )
    assert set(got) == {"id", "id-64-02"}
    parent = _policy(regency, province)
    assert wait_until(
        lambda: _passes(regency, parent), within, what="the regency cosigned by id-64"
    ) == ("id-64",)
    # Each cosigner holds the checkpoint it cosigned, as a tlog-witness does.
    with national.ctx().db.read() as session:
        held = witnessed.held(session, checkpoints.origin(province.ctx()))
    assert held is not None and held.size > 0


def test_a_rollback_asked_inside_the_link_gets_409_and_nothing_moves(nodes: NodeFactory) -> None:
    """A (scripted) regency asks the serving province to cosign its larger checkpoint, then an
    older one from old size 0: the first is cosigned (200, a line that verifies under the
    province's link cosigner key), the rollback answered 409 with the size held, and the
    province still holds the larger one. A frame of a kind the node does not know (a newer
    peer's) is ignored, not a reason to end the link."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    _cosign_often(province)
    province.start()
    ctx = regency.ctx()
    complaints.submit(ctx, _draft(0))
    older, _ = checkpoints.sign(ctx)
    for n in range(1, 3):
        complaints.submit(ctx, _draft(n))
    newer, _ = checkpoints.sign(ctx)
    assert older.size < newer.size

    def request(old: int, note: bytes) -> federation_pb2.Frame:
        body = cosigning.submit_body(old, [], note)
        return federation_pb2.Frame(
            witness_request=federation_pb2.WitnessRequest(add_checkpoint_body=body)
        )

    def answers(frames: list[federation_pb2.Frame]) -> list[federation_pb2.WitnessResponse]:
        return [f.witness_response for f in frames if f.WhichOneof("kind") == "witness_response"]

    script = [hello(0), federation_pb2.Frame(), request(0, newer.note), request(0, older.note)]
    outcome = exchange_as(regency, province, script, until=lambda got: len(answers(got)) == 2)
    cosigned, rollback = answers(outcome.frames)

    assert cosigned.status == 200
    key = cosigning.link_cosigner_key("id-64", province.ctx().signing_key.public.raw)
    line = find_cosignature(newer.note + cosigned.body, key)
    assert line.name == "lapor-node/id-64/link-witness"
    assert (rollback.status, rollback.content_type) == (409, cosigning.SIZE_CONTENT_TYPE)
    assert rollback.body == f"{newer.size}\n".encode()
    with province.ctx().db.read() as session:
        held = witnessed.held(session, checkpoints.origin(ctx))
    assert held is not None and (held.size, held.note) == (newer.size, newer.note)
