"""The link's witness exchange on its own (node.federation.cosign_link), on real nodes'
databases: a request is answered for the asking peer's log only; a peer that left a
session with our request unanswered, never having sent a witness frame (a node that
predates them), is not asked first again until it asks itself."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from node._proto.lapor.v1 import federation_pb2
from node.federation import cosign_link
from node.federation.workers import DbWorkers
from node.ids import NodeId
from node.logs import get_logger
from node.services import checkpoints, complaints, cosigning
from tests.conftest import NodeFactory
from tests.integration.test_cosigning import _draft
from tests.support.nodes import TestNode, link
from tests.support.waits import bound, holds_throughout, wait_until_async

INTERVAL = 0.05  # witness.submit_interval_seconds here


class Recorded:
    """What a LinkCosigning wrote to its (here absent) peer, in order."""

    def __init__(self) -> None:
        self.frames: list[federation_pb2.Frame] = []

    async def write(self, frame: federation_pb2.Frame) -> None:
        self.frames.append(frame)

    def kinds(self) -> list[str | None]:
        return [f.WhichOneof("kind") for f in self.frames]


def _request(node: TestNode) -> federation_pb2.Frame:
    """A request to cosign `node`'s latest checkpoint from old size 0."""
    complaints.submit(node.ctx(), _draft(0))
    signed, _ = checkpoints.sign(node.ctx())
    body = cosigning.submit_body(0, [], signed.note)
    return federation_pb2.Frame(
        witness_request=federation_pb2.WitnessRequest(add_checkpoint_body=body)
    )


@pytest.fixture
def tree(nodes: NodeFactory, monkeypatch: pytest.MonkeyPatch) -> list[TestNode]:
    """national -> province -> regency, linked, the province asking every INTERVAL; the
    back-off state starts empty."""
    monkeypatch.setattr(cosign_link, "_quiet_until", {})
    monkeypatch.setattr(cosign_link, "_speaks", set())
    made = [nodes("id", "Nasional"), nodes("id-64", "Provinsi"), nodes("id-64-02", "Kabupaten")]
    with made[1].config.open("a") as f:  # before its context is opened
        f.write(f"\nwitness:\n  submit_interval_seconds: {INTERVAL}\n")
    link(made[0], made[1])
    link(made[1], made[2])
    checkpoints.sign(made[1].ctx())
    return made


def test_a_request_is_answered_for_the_asking_peers_log_only(tree: list[TestNode]) -> None:
    """On the regency's link the province cosigns the regency's checkpoint (200) but not
    its parent's, which it witnesses on the other link (404)."""
    national, province, regency = tree

    async def scenario() -> list[federation_pb2.WitnessResponse]:
        db, out = DbWorkers(), Recorded()
        try:
            side = cosign_link.LinkCosigning(
                province.ctx(), NodeId("id-64-02"), db, out.write, get_logger()
            )
            await side.on_frame(_request(regency))
            await side.on_frame(_request(national))
        finally:
            db.shutdown()
        return [f.witness_response for f in out.frames]

    ours, theirs = asyncio.run(scenario())
    assert ours.status == 200
    assert ours.body.startswith("— lapor-node/id-64/link-witness ".encode())
    assert theirs.status == 404


def test_a_silent_old_peer_is_not_asked_again_until_it_asks(tree: list[TestNode]) -> None:
    """A session ends with our request unanswered and no witness frame ever from the peer:
    the next session does not ask first; once the peer asks, it answers, and asks again."""
    _national, province, regency = tree

    async def scenario() -> None:
        db = DbWorkers()
        try:
            first = Recorded()
            side = cosign_link.LinkCosigning(
                province.ctx(), NodeId("id-64-02"), db, first.write, get_logger()
            )
            task = asyncio.create_task(side.run())
            await wait_until_async(lambda: first.frames, bound(INTERVAL), what="a request")
            task.cancel()  # the old peer refused the frame: the session ends
            await asyncio.gather(task, return_exceptions=True)
            assert first.kinds() == ["witness_request"]

            second = Recorded()
            side = cosign_link.LinkCosigning(
                province.ctx(), NodeId("id-64-02"), db, second.write, get_logger()
            )
            task = asyncio.create_task(side.run())
            await asyncio.to_thread(
                holds_throughout, lambda: not second.frames, 20 * INTERVAL, what="no request"
            )
            await side.on_frame(_request(regency))  # the peer, upgraded, asks
            await wait_until_async(
                lambda: sorted(map(str, second.kinds())) == ["witness_request", "witness_response"],
                bound(INTERVAL),
                what="its answer and our request",
            )
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            db.shutdown()

    asyncio.run(scenario())


class CountedReads(DbWorkers):
    """DbWorkers that counts the trips to its reader threads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read(self, fn: Any, *args: Any) -> Any:
        self.reads += 1
        return await super().read(fn, *args)


@pytest.mark.parametrize(
    ("name", "peer", "asks"), [("linked", "id", True), ("not linked", "id-99", False)]
)
def test_a_round_reads_its_offer_in_one_trip(
    tree: list[TestNode], name: str, peer: str, asks: bool
) -> None:
    """A round's offer (the peer's cosigner key, our latest checkpoint, what the peer last
    cosigned) is one trip to a reader thread (decision 0043); a linked peer is then asked,
    one that is not linked is not."""
    _, province, _ = tree

    async def scenario() -> tuple[int, list[str | None]]:
        db, out = CountedReads(), Recorded()
        try:
            side = cosign_link.LinkCosigning(
                province.ctx(), NodeId(peer), db, out.write, get_logger()
            )
            task = asyncio.create_task(side._round())
            await wait_until_async(lambda: bool(out.frames) or task.done(), what="the round")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return db.reads, out.kinds()
        finally:
            db.shutdown()

    reads, kinds = asyncio.run(scenario())
    assert reads == 1, name
    assert kinds == (["witness_request"] if asks else []), name
