"""Sealing and opening SignedEnvelopes: round trips, tampering, domain separation, and the
documented order of open_envelope's checks (each with its own error class)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from node._proto.lapor.v1 import complaint_pb2, envelope_pb2
from node.crypto.signing import ENVELOPE_PURPOSE, SigningKey, VerifyKey
from node.envelopes import body_sha256, open_envelope, seal
from node.errors import (
    NodeError,
    PermissionDeniedError,
    SignatureError,
    StateError,
    ValidationError,
)
from node.ids import NodeId, new_message_id, parse_node_id
from node.ledger.note import Verifier

PARENT = parse_node_id("id-64")
CHILD = parse_node_id("id-64-02")
PARENT_KEY = SigningKey.generate()
SENT_AT = dt.datetime(2026, 3, 2, 8, 30, tzinfo=dt.UTC)


def _summary(tracking_id: str = "id-64.2026.000001") -> complaint_pb2.ComplaintSummary:
    summary = complaint_pb2.ComplaintSummary(
        tracking_id=tracking_id,
        origin_node=PARENT,
        classification=complaint_pb2.CLASSIFICATION_PENGADUAN,
        category="jalan rusak",
        region_code="64.02",
        channel=complaint_pb2.CHANNEL_WEB,
        content_commitment=b"\x07" * 32,
    )
    summary.submitted_at.FromDatetime(SENT_AT)
    return summary


def _envelope(**fields: object) -> envelope_pb2.Envelope:
    values: dict[str, object] = {
        "message_id": new_message_id(1_772_440_200_000),
        "sender": PARENT,
        "recipient": CHILD,
        "sequence": 1,
        "referral": envelope_pb2.Referral(complaint=_summary()),
    }
    values.update(fields)
    env = envelope_pb2.Envelope(**values)  # type: ignore[arg-type]
    env.sent_at.FromDatetime(SENT_AT)
    return env


def _open(
    signed: envelope_pb2.SignedEnvelope,
    *,
    peer: NodeId = PARENT,
    key: VerifyKey = PARENT_KEY.public,
    me: NodeId = CHILD,
) -> envelope_pb2.Envelope:
    return open_envelope(signed, peer=peer, peer_key=key, me=me).envelope


def _signed_body(body: bytes, signer: str = PARENT) -> envelope_pb2.SignedEnvelope:
    """A SignedEnvelope over arbitrary `body` bytes, validly signed by the parent."""
    return envelope_pb2.SignedEnvelope(
        body=body,
        signer=signer,
        key_id=PARENT_KEY.key_id,
        signature=PARENT_KEY.sign(ENVELOPE_PURPOSE, body),
    )


# Round trips ---------------------------------------------------------------------------


def test_seal_then_open_round_trip() -> None:
    """open_envelope returns the sealed envelope, its signed bytes verbatim and its kind."""
    env = _envelope()
    signed = seal(env, PARENT_KEY)
    opened = open_envelope(signed, peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD)
    assert opened.envelope == env
    assert opened.signed.body == env.SerializeToString()
    assert opened.signed is signed
    assert opened.payload_kind == "referral"
    assert signed.signer == PARENT
    assert signed.key_id == PARENT_KEY.key_id
    assert body_sha256(signed) == hashlib.sha256(signed.body).digest()


def test_seal_signs_purpose_prefixed_body() -> None:
    """The signature is plain Ed25519 over b'lapor-node/envelope/v1\\n' + body."""
    signed = seal(_envelope(), PARENT_KEY)
    Ed25519PublicKey.from_public_bytes(PARENT_KEY.public.raw).verify(
        signed.signature, b"lapor-node/envelope/v1\n" + signed.body
    )


def test_open_verifies_the_bytes_received_not_a_reserialization() -> None:
    """A body with an unknown field (not re-serialized identically) still opens, verbatim."""
    env = _envelope()
    body = env.SerializeToString() + b"\xa8\x06\x01"  # field 101, varint 1: unknown to us
    signed = _signed_body(body)
    opened = open_envelope(signed, peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD)
    assert opened.signed.body == body
    assert opened.envelope.message_id == env.message_id


node_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True)
summaries = st.builds(
    lambda tid, cat, commitment, anon, conf: complaint_pb2.ComplaintSummary(
        tracking_id=tid,
        origin_node=PARENT,
        category=cat,
        region_code="64",
        classification=complaint_pb2.CLASSIFICATION_ASPIRASI,
        channel=complaint_pb2.CHANNEL_API,
        content_commitment=commitment,
        anonymous=anon,
        confidential=conf,
    ),
    st.from_regex(r"id-64\.20[0-9]{2}\.[0-9]{6}", fullmatch=True),
    st.from_regex(r"[a-z0-9][a-z0-9_ -]{0,20}", fullmatch=True),
    st.binary(min_size=32, max_size=32),
    st.booleans(),
    st.booleans(),
)
payloads = st.one_of(
    summaries.map(lambda s: {"referral": envelope_pb2.Referral(complaint=s)}),
    st.builds(
        lambda mid, digest, index: {
            "receipt": envelope_pb2.Receipt(
                referral_message_id=mid,
                referral_body_sha256=digest,
                tracking_id="id-64.2026.000001",
                entry_index=index,
            )
        },
        st.integers(min_value=0, max_value=(1 << 48) - 1).map(new_message_id),
        st.binary(min_size=32, max_size=32),
        st.integers(min_value=0, max_value=(1 << 64) - 1),
    ),
)


@given(
    sender=node_ids,
    recipient=node_ids,
    sequence=st.integers(min_value=1, max_value=(1 << 64) - 1),
    ms=st.integers(min_value=0, max_value=(1 << 48) - 1),
    sent_at=st.datetimes(
        min_value=dt.datetime(1970, 1, 1),
        max_value=dt.datetime(9999, 12, 31),
        timezones=st.just(dt.UTC),
    ),
    payload=payloads,
)
def test_random_envelopes_round_trip(
    sender: str,
    recipient: str,
    sequence: int,
    ms: int,
    sent_at: dt.datetime,
    payload: dict[str, object],
) -> None:
    """Any well-formed envelope sealed by the sender's key opens unchanged at the recipient."""
    env = envelope_pb2.Envelope(
        message_id=new_message_id(ms),
        sender=sender,
        recipient=recipient,
        sequence=sequence,
        **payload,  # type: ignore[arg-type]
    )
    env.sent_at.FromDatetime(sent_at)
    signed = seal(env, PARENT_KEY)
    opened = open_envelope(
        signed, peer=NodeId(sender), peer_key=PARENT_KEY.public, me=NodeId(recipient)
    )
    assert opened.envelope == env
    assert opened.signed.body == env.SerializeToString()
    assert opened.payload_kind == next(iter(payload))


# Tampering ------------------------------------------------------------------------------

SEALED = seal(_envelope(), PARENT_KEY)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@given(st.data())
def test_flipping_any_body_bit_fails(data: st.DataObject) -> None:
    """Flipping any single bit of the body makes open_envelope raise SignatureError."""
    bit = data.draw(st.integers(min_value=0, max_value=len(SEALED.body) * 8 - 1))
    tampered = envelope_pb2.SignedEnvelope()
    tampered.CopyFrom(SEALED)
    tampered.body = _flip(SEALED.body, bit)
    with pytest.raises(SignatureError):
        _open(tampered)


@given(st.integers(min_value=0, max_value=64 * 8 - 1))
def test_flipping_any_signature_bit_fails(bit: int) -> None:
    """Flipping any single bit of the signature makes open_envelope raise SignatureError."""
    tampered = envelope_pb2.SignedEnvelope()
    tampered.CopyFrom(SEALED)
    tampered.signature = _flip(SEALED.signature, bit)
    with pytest.raises(SignatureError):
        _open(tampered)


# Domain separation ---------------------------------------------------------------------


def test_raw_signature_over_body_without_prefix_is_refused() -> None:
    """A valid Ed25519 signature over the body alone (no purpose prefix) does not open."""
    signed = envelope_pb2.SignedEnvelope()
    signed.CopyFrom(SEALED)
    signed.signature = PARENT_KEY.ed25519.sign(SEALED.body)
    with pytest.raises(SignatureError):
        _open(signed)


def test_envelope_signature_is_not_valid_for_another_purpose() -> None:
    """An envelope signature verifies neither as a signed note (raw) nor under another prefix."""
    note_verifier = Verifier.from_public_key("lapor-node/id-64", PARENT_KEY.public.raw)
    with pytest.raises(SignatureError):
        note_verifier.verify(SEALED.body, SEALED.signature)
    with pytest.raises(ValueError, match="unknown signature purpose"):
        PARENT_KEY.public.verify(b"lapor-node/checkpoint/v1\n", SEALED.body, SEALED.signature)


# The order of open_envelope's checks ---------------------------------------------------

OTHER_KEY = SigningKey.generate()

Case = Callable[[], tuple[envelope_pb2.SignedEnvelope, dict[str, object]]]


def _with(**changes: object) -> envelope_pb2.SignedEnvelope:
    signed = envelope_pb2.SignedEnvelope()
    signed.CopyFrom(SEALED)
    for key, value in changes.items():
        setattr(signed, key, value)
    return signed


def _body(**fields: object) -> envelope_pb2.SignedEnvelope:
    return seal(_envelope(**fields), PARENT_KEY)


def _no_payload() -> envelope_pb2.SignedEnvelope:
    env = _envelope()
    env.ClearField("referral")
    return seal(env, PARENT_KEY)


def _no_sent_at() -> envelope_pb2.SignedEnvelope:
    env = _envelope()
    env.ClearField("sent_at")
    return seal(env, PARENT_KEY)


ORDER = [
    pytest.param(lambda: _with(signer=""), {}, ValidationError, id="1-shape-no-signer"),
    pytest.param(lambda: _with(key_id=b"\x00" * 31), {}, ValidationError, id="1-shape-key-id"),
    pytest.param(
        lambda: _with(signature=b"\x00" * 63), {}, ValidationError, id="1-shape-signature"
    ),
    pytest.param(
        lambda: SEALED,
        {"peer": parse_node_id("id-64-08")},
        PermissionDeniedError,
        id="2-signer-is-not-peer",
    ),
    pytest.param(lambda: SEALED, {"key": OTHER_KEY.public}, SignatureError, id="3-unknown-key-id"),
    pytest.param(
        lambda: _with(signature=OTHER_KEY.sign(ENVELOPE_PURPOSE, SEALED.body)),
        {},
        SignatureError,
        id="4-bad-signature",
    ),
    pytest.param(lambda: _signed_body(b"\x0a\x05ab"), {}, ValidationError, id="5-malformed-body"),
    pytest.param(
        lambda: _body(message_id=str(uuid.uuid4())),
        {},
        ValidationError,
        id="5-message-id-not-uuidv7",
    ),
    pytest.param(lambda: _body(message_id=""), {}, ValidationError, id="5-message-id-empty"),
    pytest.param(lambda: _body(sequence=0), {}, ValidationError, id="5-sequence-zero"),
    pytest.param(_no_sent_at, {}, ValidationError, id="5-no-sent-at"),
    pytest.param(_no_payload, {}, ValidationError, id="5-no-payload"),
    pytest.param(
        lambda: _signed_body(_envelope(sender="id-64-08").SerializeToString()),
        {},
        PermissionDeniedError,
        id="5-sender-is-not-signer",
    ),
    pytest.param(lambda: _body(recipient="id-64-08"), {}, StateError, id="6-wrong-recipient"),
]


@pytest.mark.parametrize(("make", "opts", "error"), ORDER)
def test_each_step_of_open_envelope_has_its_own_error(
    make: Callable[[], envelope_pb2.SignedEnvelope],
    opts: dict[str, object],
    error: type[NodeError],
) -> None:
    """Each documented check of open_envelope, failing alone, raises its own error class."""
    with pytest.raises(NodeError) as caught:
        _open(make(), **opts)  # type: ignore[arg-type]
    assert type(caught.value) is error


def test_signer_is_checked_before_the_signature() -> None:
    """A forged signer is refused as PermissionDenied (step 2) before its signature is read."""
    forged = _with(signer="id-64-08", signature=b"\x00" * 64)
    with pytest.raises(PermissionDeniedError):
        _open(forged)


def test_key_is_checked_before_the_body() -> None:
    """Garbage signed by an unknown key fails as SignatureError, never reaching the parser."""
    garbage = envelope_pb2.SignedEnvelope(
        body=b"\xff\xff",
        signer=PARENT,
        key_id=OTHER_KEY.key_id,
        signature=OTHER_KEY.sign(ENVELOPE_PURPOSE, b"\xff\xff"),
    )
    with pytest.raises(SignatureError):
        _open(garbage)


def test_recipient_is_checked_last() -> None:
    """An envelope both for another node and with sequence 0 fails on the body (step 5)."""
    with pytest.raises(ValidationError):
        _open(_body(recipient="id-64-08", sequence=0))
