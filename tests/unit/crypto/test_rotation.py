"""Key rotation records: signed by the old and the new key, followed only from a pin."""

from __future__ import annotations

import datetime as dt

import pytest

from node._proto.lapor.v1 import trust_pb2
from node.crypto.rotation import follow_rotations, open_rotation, sign_rotation
from node.crypto.signing import SigningKey
from node.crypto.tls import fingerprint, generate_tls_identity
from node.errors import SignatureError, ValidationError
from node.ids import NodeId

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def _rotation(
    old: SigningKey, new: SigningKey, node: str = "id-64-02"
) -> trust_pb2.SignedKeyRotation:
    cert = generate_tls_identity(NodeId(node), NOW).cert_pem
    return sign_rotation(
        old,
        new,
        node_id=node,
        new_tls_cert_pem=cert,
        rotated_at=NOW,
        old_tls_valid_until=NOW + dt.timedelta(hours=72),
    )


def test_a_rotation_opens_under_both_keys() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    rotation = open_rotation(_rotation(old, new))
    assert (rotation.old_signing_key, rotation.new_signing_key) == (old.public.raw, new.public.raw)
    assert fingerprint(rotation.new_tls_cert_pem.encode()) == rotation.new_tls_cert_sha256


@pytest.mark.parametrize("which", ["old_signature", "new_signature"])
def test_each_signature_is_required(which: str) -> None:
    signed = _rotation(SigningKey.generate(), SigningKey.generate())
    setattr(signed, which, bytes(64))
    with pytest.raises(SignatureError, match=which.split("_")[0]):
        open_rotation(signed)


def test_a_certificate_for_another_node_is_refused() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    signed = _rotation(old, new)
    body = trust_pb2.KeyRotation.FromString(signed.rotation)
    other = generate_tls_identity(NodeId("id-64-03"), NOW).cert_pem
    body.new_tls_cert_pem = other.decode()
    body.new_tls_cert_sha256 = fingerprint(other)
    data = body.SerializeToString()
    from node.crypto.signing import KEY_ROTATION_PURPOSE

    forged = trust_pb2.SignedKeyRotation(
        rotation=data,
        old_signature=old.sign(KEY_ROTATION_PURPOSE, data),
        new_signature=new.sign(KEY_ROTATION_PURPOSE, data),
    )
    with pytest.raises(ValidationError, match="names another node"):
        open_rotation(forged)


def test_follow_from_the_pin() -> None:
    k0, k1, k2 = (SigningKey.generate() for _ in range(3))
    chain = [_rotation(k0, k1), _rotation(k1, k2)]
    assert [r.new_signing_key for r in follow_rotations(k0.public.raw, "id-64-02", chain)] == [
        k1.public.raw,
        k2.public.raw,
    ]
    assert [r.new_signing_key for r in follow_rotations(k1.public.raw, "id-64-02", chain)] == [
        k2.public.raw
    ]
    assert follow_rotations(k2.public.raw, "id-64-02", chain) == []
    with pytest.raises(SignatureError, match="pinned"):
        follow_rotations(SigningKey.generate().public.raw, "id-64-02", chain)


def test_a_broken_chain_is_refused() -> None:
    k0, k1, k2, k3 = (SigningKey.generate() for _ in range(4))
    with pytest.raises(ValidationError, match="not a chain"):
        follow_rotations(k0.public.raw, "id-64-02", [_rotation(k0, k1), _rotation(k2, k3)])
    with pytest.raises(ValidationError, match="id-64-03"):
        follow_rotations(k0.public.raw, "id-64-02", [_rotation(k0, k1, "id-64-03")])
