"""Bad input on a link is refused with the right gRPC status and leaves no trace in the
database; a redelivered envelope changes nothing and gets its original receipt back."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable

import grpc
import pytest

from node._proto.lapor.v1 import complaint_pb2, envelope_pb2, federation_pb2
from node.crypto.signing import ENVELOPE_PURPOSE, SigningKey
from node.envelopes import seal
from node.ids import new_message_id
from node.services import complaints
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, link, snapshot
from tests.support.peers import (
    FakeParent,
    delivery,
    envelope,
    exchange_as,
    hello,
    sealed,
    signing_key,
)

pytestmark = pytest.mark.slow


def _receipt(
    province: TestNode, regency: TestNode, sequence: int = 1, **overrides: str
) -> envelope_pb2.Envelope:
    env = envelope(
        regency.node_id,
        province.node_id,
        sequence,
        receipt=envelope_pb2.Receipt(
            referral_message_id=new_message_id(),
            referral_body_sha256=b"\0" * 32,
            tracking_id="id-64.2026.000001",
        ),
    )
    for key, value in overrides.items():
        setattr(env, key, value)
    return env


def _summary() -> complaint_pb2.ComplaintSummary:
    summary = complaint_pb2.ComplaintSummary(
        tracking_id="id-64.2026.000009",
        origin_node="id-64",
        classification=complaint_pb2.CLASSIFICATION_PENGADUAN,
        category="infrastruktur",
        region_code="64.02",
        channel=complaint_pb2.CHANNEL_WEB,
        content_commitment=hashlib.sha256(b"x").digest(),
    )
    summary.submitted_at.GetCurrentTime()
    return summary


def _malformed_body(p: TestNode, r: TestNode) -> federation_pb2.Frame:
    key = signing_key(r)
    body = b"\xff\xfe not a protobuf \x00"
    return delivery(
        envelope_pb2.SignedEnvelope(
            body=body,
            signer=r.node_id,
            key_id=key.key_id,
            signature=key.sign(ENVELOPE_PURPOSE, body),
        )
    )


def _flipped_signature(p: TestNode, r: TestNode) -> federation_pb2.Frame:
    signed = sealed(r, _receipt(p, r))
    signed.signature = bytes([signed.signature[0] ^ 1]) + signed.signature[1:]
    return delivery(signed)


def _unknown_key(p: TestNode, r: TestNode) -> federation_pb2.Frame:
    return delivery(seal(_receipt(p, r), SigningKey.generate()))


def _referral_from_child(p: TestNode, r: TestNode) -> federation_pb2.Frame:
    env = envelope(r.node_id, p.node_id, 1, referral=envelope_pb2.Referral(complaint=_summary()))
    return delivery(sealed(r, env))


def _signer_not_tls_peer(p: TestNode, r: TestNode) -> federation_pb2.Frame:
    return delivery(sealed(r, _receipt(p, r, sender="id-64-08")))


def _sender_not_signer(p: TestNode, r: TestNode) -> federation_pb2.Frame:
    signed = sealed(r, _receipt(p, r, sender="id-64-08"))
    signed.signer = r.node_id
    return delivery(signed)


def _sequence_gap(p: TestNode, r: TestNode) -> federation_pb2.Frame:
    return delivery(sealed(r, _receipt(p, r, sequence=2)))


def _other_recipient(p: TestNode, r: TestNode) -> federation_pb2.Frame:
    return delivery(sealed(r, _receipt(p, r, recipient="id-63")))


def _oversized(p: TestNode, r: TestNode) -> federation_pb2.Frame:
    frame = delivery(sealed(r, _receipt(p, r)))
    frame.delivery.content = os.urandom(5 * 1024 * 1024)
    return frame


CASES: list[
    tuple[str, Callable[[TestNode, TestNode], federation_pb2.Frame], grpc.StatusCode, str]
] = [
    ("malformed-body", _malformed_body, grpc.StatusCode.INVALID_ARGUMENT, "malformed"),
    ("signature-mismatch", _flipped_signature, grpc.StatusCode.UNAUTHENTICATED, "signature"),
    ("unknown-key", _unknown_key, grpc.StatusCode.UNAUTHENTICATED, "unknown key"),
    ("referral-from-child", _referral_from_child, grpc.StatusCode.PERMISSION_DENIED, "parent"),
    (
        "signer-is-not-tls-peer",
        _signer_not_tls_peer,
        grpc.StatusCode.PERMISSION_DENIED,
        "authenticated peer",
    ),
    ("sender-is-not-signer", _sender_not_signer, grpc.StatusCode.PERMISSION_DENIED, "signer"),
    ("sequence-gap", _sequence_gap, grpc.StatusCode.FAILED_PRECONDITION, "gap"),
    ("other-recipient", _other_recipient, grpc.StatusCode.FAILED_PRECONDITION, "not for this"),
    ("oversized", _oversized, grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
]


@pytest.fixture
def province_and_child(nodes: NodeFactory) -> tuple[TestNode, TestNode]:
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    province.start()
    return province, regency


@pytest.mark.parametrize(
    ("make", "code", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_parent_refuses_bad_input_and_stores_nothing(
    province_and_child: tuple[TestNode, TestNode],
    make: Callable[[TestNode, TestNode], federation_pb2.Frame],
    code: grpc.StatusCode,
    words: str,
) -> None:
    """Each bad envelope from a linked child ends the stream with its status; no row changes."""
    province, regency = province_and_child
    before = snapshot(province)
    outcome = exchange_as(regency, province, [hello(0), make(province, regency)], expect=50)
    assert outcome.code == code, outcome
    assert words.lower() in outcome.details.lower(), outcome.details
    assert snapshot(province) == before


def test_unpinned_client_does_not_get_past_tls(
    province_and_child: tuple[TestNode, TestNode], nodes: NodeFactory
) -> None:
    """A node whose certificate the province has not pinned cannot open a stream at all."""
    province, _ = province_and_child
    stranger = nodes("id-64-11", "Kabupaten Mahakam Ulu")
    before = snapshot(province)
    outcome = exchange_as(stranger, province, [hello(0)], expect=1)
    assert outcome.code == grpc.StatusCode.UNAVAILABLE, outcome
    assert outcome.frames == []
    assert snapshot(province) == before


def _referral_frame(parent: TestNode, child: TestNode, sequence: int) -> federation_pb2.Frame:
    from node.complaints import ComplaintDraft, seal_content

    draft = ComplaintDraft(
        title="Puskesmas tutup",
        description="Tidak ada dokter",
        classification="pengaduan",
        category="kesehatan",
        region_code="64.02",
        channel="web",
        reporter_name="Rahmat Hidayat",
    )
    sealed_content = seal_content(draft.content())
    summary = _summary()
    summary.content_commitment = sealed_content.commitment
    env = envelope(
        parent.node_id, child.node_id, sequence, referral=envelope_pb2.Referral(complaint=summary)
    )
    return delivery(sealed(parent, env), sealed_content.content, sealed_content.salt)


def test_redelivered_referral_gets_the_original_receipt_and_changes_nothing(
    nodes: NodeFactory,
) -> None:
    """The same referral twice: one complaint, one ledger entry, the same receipt bytes twice."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    referral = _referral_frame(province, regency, 1)
    regency.start()
    received = asyncio.run(
        FakeParent(province, [hello(0), referral, referral], expect=4).run(regency)
    )
    kinds = [f.WhichOneof("kind") for f in received]
    assert kinds.count("ack") >= 1 and all(
        f.ack.sequence == 1 for f in received if f.WhichOneof("kind") == "ack"
    )
    receipts = [f.delivery.envelope for f in received if f.WhichOneof("kind") == "delivery"]
    assert len(receipts) == 2 and receipts[0] == receipts[1]
    state = snapshot(regency)
    assert (state["complaints"], state["inbox"], state["ledger_entries"]) == (1, 1, 2)
    view = complaints.show(regency.ctx(), "id-64.2026.000009", with_content=True)
    assert (view.status, view.holder, view.title) == ("accepted", "id-64-02", "Puskesmas tutup")


def test_child_refuses_a_forged_referral_and_stores_nothing(nodes: NodeFactory) -> None:
    """A referral whose signature does not verify is answered with a Rejection, not stored."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    forged = _referral_frame(province, regency, 1)
    sig = forged.delivery.envelope.signature
    forged.delivery.envelope.signature = sig[:-1] + bytes([sig[-1] ^ 0x80])
    regency.start()
    before = snapshot(regency)
    received = asyncio.run(FakeParent(province, [hello(0), forged], expect=2).run(regency))
    rejections = [f.rejection for f in received if f.WhichOneof("kind") == "rejection"]
    assert len(rejections) == 1
    assert rejections[0].code == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert rejections[0].sequence == 1
    assert snapshot(regency) == before
