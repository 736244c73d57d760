"""Key rotation records: a node replaces its signing key and TLS certificate. Pure: no I/O.

A rotation (trust.proto KeyRotation) names the node, its old and new Ed25519 keys, the
SHA-256 and PEM of the new TLS certificate, when it happened and until when peers still
accept the old TLS certificate. It is signed by BOTH keys, each over
"lapor-node/key-rotation/v1\\n" || rotation bytes: the old key hands authority over, the new
key proves it is held. Whoever pins the old key (a peer, an auditor walking a chain of
trust) may then pin the new one; nobody else learns anything from the record.

Checkpoints across a rotation (docs/decisions/0008-key-rotation.md): if the node's
KeyRotated ledger entry has index i, checkpoints of size <= i + 1 are signed by the old key
and checkpoints of size > i + 1 by the new one. The old key thus signs the checkpoint that
covers its own hand-over, and a peer that pins the old key can check it.

Every check is over the bytes received, never re-serialized.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import trust_pb2
from node.crypto.signing import KEY_ROTATION_PURPOSE, SigningKey, VerifyKey
from node.crypto.tls import fingerprint, node_id_from_certificate
from node.errors import SignatureError, ValidationError
from node.ids import parse_node_id

__all__ = ["follow_rotations", "open_rotation", "sign_rotation"]


def sign_rotation(
    old: SigningKey,
    new: SigningKey,
    *,
    node_id: str,
    new_tls_cert_pem: bytes,
    rotated_at: dt.datetime,
    old_tls_valid_until: dt.datetime,
    discontinuity: trust_pb2.Discontinuity | None = None,
) -> trust_pb2.SignedKeyRotation:
    """The rotation from `old` to `new`, signed by both; with `discontinuity`, the
    statement that the node's ledger restarts from an earlier point (node.ledger.
    discontinuity checks it), which both signatures then cover."""
    rotation = trust_pb2.KeyRotation(
        node_id=node_id,
        old_signing_key=old.public.raw,
        new_signing_key=new.public.raw,
        new_tls_cert_sha256=fingerprint(new_tls_cert_pem),
        new_tls_cert_pem=new_tls_cert_pem.decode(),
    )
    if discontinuity is not None:
        rotation.discontinuity.CopyFrom(discontinuity)
    rotation.rotated_at.FromDatetime(rotated_at)
    rotation.old_tls_valid_until.FromDatetime(old_tls_valid_until)
    body = rotation.SerializeToString()
    return trust_pb2.SignedKeyRotation(
        rotation=body,
        old_signature=old.sign(KEY_ROTATION_PURPOSE, body),
        new_signature=new.sign(KEY_ROTATION_PURPOSE, body),
    )


def open_rotation(signed: trust_pb2.SignedKeyRotation) -> trust_pb2.KeyRotation:
    """Parse a rotation and verify it: both signatures under the keys it names, and a new
    certificate that is what its SHA-256 says and names the same node. It does not say
    whether the old key is one the caller trusts: compare `old_signing_key` with your pin."""
    try:
        rotation = trust_pb2.KeyRotation.FromString(signed.rotation)
    except DecodeError as e:
        raise ValidationError("the key rotation does not parse") from e
    parse_node_id(rotation.node_id)
    if rotation.old_signing_key == rotation.new_signing_key:
        raise ValidationError(f"key rotation of {rotation.node_id} keeps the same signing key")
    for which, key, signature in (
        ("old", rotation.old_signing_key, signed.old_signature),
        ("new", rotation.new_signing_key, signed.new_signature),
    ):
        try:
            VerifyKey(key).verify(KEY_ROTATION_PURPOSE, signed.rotation, signature)
        except SignatureError as e:
            raise SignatureError(
                f"the key rotation of {rotation.node_id} is not signed by its {which} key: {e}"
            ) from e
    pem = rotation.new_tls_cert_pem.encode()
    try:
        x509.load_pem_x509_certificate(pem)
    except ValueError as e:
        raise ValidationError(f"key rotation of {rotation.node_id}: bad new certificate") from e
    if fingerprint(pem) != rotation.new_tls_cert_sha256:
        raise ValidationError(
            f"key rotation of {rotation.node_id}: the new certificate does not match its SHA-256"
        )
    if node_id_from_certificate(pem) != rotation.node_id:
        raise ValidationError(
            f"key rotation of {rotation.node_id}: the new certificate names another node"
        )
    return rotation


def follow_rotations(
    pinned_key: bytes, node_id: str, chain: Sequence[trust_pb2.SignedKeyRotation]
) -> list[trust_pb2.KeyRotation]:
    """The rotations of `chain` that lead on from `pinned_key`, in order, each verified.

    Rotations before the pinned key (already followed) are skipped; the first one that
    starts from the pinned key must be followed by an unbroken sequence. Returns [] when the
    pinned key is the chain's last key. A chain that never reaches the pinned key, or that
    is for another node, is refused."""
    opened = [open_rotation(signed) for signed in chain]
    for rotation in opened:
        if rotation.node_id != node_id:
            raise ValidationError(
                f"a key rotation of {rotation.node_id} was offered as one of {node_id}"
            )
    for n in range(1, len(opened)):
        if opened[n].old_signing_key != opened[n - 1].new_signing_key:
            raise ValidationError(
                f"the key rotations of {node_id} are not a chain: rotation {n} does not start "
                f"from the key rotation {n - 1} ended with"
            )
    if not opened or opened[-1].new_signing_key == pinned_key:
        return []
    for n, rotation in enumerate(opened):
        if rotation.old_signing_key == pinned_key:
            return opened[n:]
    raise SignatureError(
        f"none of the key rotations offered for {node_id} starts from the key pinned for it: "
        "they cannot be followed"
    )
