"""Sealed reporter identities: only the recipient node opens them, for one complaint."""

from __future__ import annotations

import datetime as dt

import pytest

from node._proto.lapor.v1 import privacy_pb2
from node.crypto.sealing import (
    SealingKey,
    open_identity,
    open_sealing_key,
    seal_identity,
    sign_sealing_key,
)
from node.crypto.signing import SigningKey
from node.errors import SignatureError, ValidationError

WHO = privacy_pb2.ReporterIdentity(
    name="Siti Rahmawati", contact="+62 812 5555 0101", id_number="6402010101900001"
)
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def _sealed(key: SealingKey, tracking_id: str = "id-2026-000001") -> privacy_pb2.SealedIdentity:
    return seal_identity(
        WHO, tracking_id=tracking_id, recipient_node="id-64-02", recipient_key=key.public
    )


def test_the_recipient_opens_it() -> None:
    key = SealingKey.generate()
    sealed = _sealed(key)
    assert WHO.name.encode() not in sealed.SerializeToString()
    opened = open_identity(sealed, key, node_id="id-64-02", tracking_id="id-2026-000001")
    assert opened == WHO


def test_a_key_survives_its_pem_file() -> None:
    key = SealingKey.generate()
    again = SealingKey.from_pem(key.to_pem())
    assert again.public == key.public
    opened = open_identity(_sealed(key), again, node_id="id-64-02", tracking_id="id-2026-000001")
    assert opened == WHO


def test_nobody_else_opens_it() -> None:
    key, other = SealingKey.generate(), SealingKey.generate()
    sealed = _sealed(key)
    sealed.recipient_key = other.public  # a relay pretending it was sealed to it
    with pytest.raises(SignatureError, match="does not open"):
        open_identity(sealed, other, node_id="id-64-02", tracking_id="id-2026-000001")


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "ephemeral_key"])
def test_an_altered_box_does_not_open(field: str) -> None:
    key = SealingKey.generate()
    sealed = _sealed(key)
    value = bytearray(getattr(sealed, field))
    value[0] ^= 1
    setattr(sealed, field, bytes(value))
    with pytest.raises(SignatureError):
        open_identity(sealed, key, node_id="id-64-02", tracking_id="id-2026-000001")


def test_a_box_moved_to_another_complaint_or_node_does_not_open() -> None:
    key = SealingKey.generate()
    sealed = _sealed(key)
    with pytest.raises(ValidationError, match="not for"):
        open_identity(sealed, key, node_id="id-64-02", tracking_id="id-2026-000002")
    moved = privacy_pb2.SealedIdentity()
    moved.CopyFrom(sealed)
    moved.tracking_id = "id-2026-000002"
    with pytest.raises(SignatureError):
        open_identity(moved, key, node_id="id-64-02", tracking_id="id-2026-000002")
    moved.CopyFrom(sealed)
    moved.recipient_node = "id-64-03"
    with pytest.raises(SignatureError):
        open_identity(moved, key, node_id="id-64-03", tracking_id="id-2026-000001")


def test_the_sealing_key_statement_is_checked_against_the_signing_key() -> None:
    signing, sealing = SigningKey.generate(), SealingKey.generate()
    signed = sign_sealing_key(signing, sealing, "id-64-02", NOW)
    assert open_sealing_key(signed, "id-64-02", signing.public.raw) == sealing.public
    with pytest.raises(ValidationError, match="offered as the one of id-64-03"):
        open_sealing_key(signed, "id-64-03", signing.public.raw)
    with pytest.raises(SignatureError, match="not id-64-02's"):
        open_sealing_key(signed, "id-64-02", SigningKey.generate().public.raw)
    forged = privacy_pb2.SignedSealingKey()
    forged.CopyFrom(signed)
    statement = privacy_pb2.SealingKeyStatement.FromString(signed.statement)
    statement.sealing_key = SealingKey.generate().public
    forged.statement = statement.SerializeToString()
    with pytest.raises(SignatureError):
        open_sealing_key(forged, "id-64-02", signing.public.raw)
