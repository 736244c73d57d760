"""At low load a child's receipt leaves as soon as the referral is committed, from the
commit's own result, ahead of the Ack for the referral: the parent can take the receipt
without first spending a write on the Ack (node.federation.session, READY_BATCH)."""

from __future__ import annotations

import asyncio
import hashlib

from sqlalchemy import select

from node._proto.lapor.v1 import envelope_pb2
from node.store.models import OutboxRow
from tests.conftest import NodeFactory
from tests.integration.test_bad_input import _referral_frame
from tests.support.nodes import link
from tests.support.peers import FakeParent, hello


def test_the_receipt_goes_out_before_the_ack(nodes: NodeFactory) -> None:
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    referral = _referral_frame(province, regency, 1)
    regency.start()
    parent = FakeParent(province, [hello(0), referral], expect=3, after_hello=True)
    received = asyncio.run(parent.run(regency))
    assert [f.WhichOneof("kind") for f in received] == ["hello", "delivery", "ack"]
    assert received[2].ack.sequence == 1
    sent = received[1].delivery
    receipt = envelope_pb2.Envelope.FromString(sent.envelope.body).receipt
    assert receipt.referral_body_sha256 == hashlib.sha256(referral.delivery.envelope.body).digest()
    with regency.ctx().db.read() as session:
        stored = session.scalars(select(OutboxRow)).one()
    # What went out is what the outbox holds, byte for byte.
    assert (stored.sequence, stored.kind) == (1, "receipt")
    assert (sent.envelope.body, sent.envelope.signature) == (stored.body, stored.signature)
