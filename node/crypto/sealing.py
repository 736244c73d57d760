"""Sealing a confidential reporter's identity to the node that handles the complaint, so
that the nodes it passes through carry it without being able to read it. Pure: no I/O.

Keys: each node has an X25519 sealing key beside its Ed25519 signing key. It publishes
the public half in a sealing-key statement signed with its signing key (Ed25519 over
"lapor-node/sealing-key/v1\\n" || statement), so whoever pins (or can chain to) the
node's signing key knows the sealing key is the node's.

Sealing (an ECIES-style box, from the primitives in `cryptography`):
  1. a fresh ephemeral X25519 key pair e; shared = X25519(e, recipient public key);
  2. key = HKDF-SHA256(shared, salt = e_pub || recipient_pub,
     info = "lapor-node/sealed-identity/v1\\n" || tracking id), 32 bytes;
  3. ciphertext = ChaCha20-Poly1305(key, a random 96-bit nonce, identity bytes,
     associated data = tracking id || "\\n" || recipient node id).
The associated data binds the box to one complaint and one recipient: a box moved to
another complaint, or re-addressed, does not open. The ephemeral key makes each box
independent; nothing but the recipient's private key opens it.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import privacy_pb2
from node.crypto.signing import SEALING_KEY_PURPOSE, SigningKey, VerifyKey
from node.errors import SignatureError, ValidationError
from node.ids import parse_node_id

__all__ = [
    "SealingKey",
    "open_identity",
    "open_sealing_key",
    "seal_identity",
    "sign_sealing_key",
]

_INFO = b"lapor-node/sealed-identity/v1\n"
_NONCE_BYTES = 12


@dataclass(frozen=True)
class SealingKey:
    """A node's X25519 private sealing key."""

    private: X25519PrivateKey

    @classmethod
    def generate(cls) -> SealingKey:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> SealingKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, X25519PrivateKey):
            raise ValidationError("the sealing key file does not hold an X25519 private key")
        return cls(key)

    def to_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )


def sign_sealing_key(
    signing: SigningKey, sealing: SealingKey, node_id: str, issued_at: dt.datetime
) -> privacy_pb2.SignedSealingKey:
    """The node's statement that `sealing` is its sealing key, signed by `signing`."""
    statement = privacy_pb2.SealingKeyStatement(
        node_id=node_id, sealing_key=sealing.public, signing_key=signing.public.raw
    )
    statement.issued_at.FromDatetime(issued_at)
    body = statement.SerializeToString()
    return privacy_pb2.SignedSealingKey(
        statement=body, signature=signing.sign(SEALING_KEY_PURPOSE, body)
    )


def open_sealing_key(
    signed: privacy_pb2.SignedSealingKey, node_id: str, signing_key: bytes
) -> bytes:
    """The X25519 public key `node_id` states, checked against its signing key (the one
    pinned for it, or reached through a chain of link agreements)."""
    try:
        statement = privacy_pb2.SealingKeyStatement.FromString(signed.statement)
    except DecodeError as e:
        raise ValidationError("the sealing-key statement does not parse") from e
    if statement.node_id != node_id:
        raise ValidationError(
            f"a sealing key of {statement.node_id!r} was offered as the one of {node_id}"
        )
    if statement.signing_key != signing_key:
        raise SignatureError(
            f"the sealing key of {node_id} is vouched for by a signing key that is not {node_id}'s"
        )
    if len(statement.sealing_key) != 32:
        raise ValidationError(f"the sealing key of {node_id} is not a 32-byte X25519 key")
    VerifyKey(signing_key).verify(SEALING_KEY_PURPOSE, signed.statement, signed.signature)
    return bytes(statement.sealing_key)


def _key(shared: bytes, ephemeral: bytes, recipient: bytes, tracking_id: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=ephemeral + recipient,
        info=_INFO + tracking_id.encode(),
    ).derive(shared)


def _aad(tracking_id: str, recipient_node: str) -> bytes:
    return tracking_id.encode() + b"\n" + recipient_node.encode()


def seal_identity(
    identity: privacy_pb2.ReporterIdentity,
    *,
    tracking_id: str,
    recipient_node: str,
    recipient_key: bytes,
) -> privacy_pb2.SealedIdentity:
    """Seal `identity` so that only `recipient_node` (holder of `recipient_key`) opens it."""
    parse_node_id(recipient_node)
    if len(recipient_key) != 32:
        raise ValidationError("an X25519 public key is 32 bytes")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_key))
    key = _key(shared, ephemeral_public, recipient_key, tracking_id)
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = ChaCha20Poly1305(key).encrypt(
        nonce, identity.SerializeToString(), _aad(tracking_id, recipient_node)
    )
    return privacy_pb2.SealedIdentity(
        tracking_id=tracking_id,
        recipient_node=recipient_node,
        recipient_key=recipient_key,
        ephemeral_key=ephemeral_public,
        nonce=nonce,
        ciphertext=ciphertext,
    )


def open_identity(
    sealed: privacy_pb2.SealedIdentity, key: SealingKey, *, node_id: str, tracking_id: str
) -> privacy_pb2.ReporterIdentity:
    """Open a box sealed to this node for `tracking_id`; SignatureError if it was not (or
    was altered)."""
    if sealed.recipient_node != node_id or sealed.tracking_id != tracking_id:
        raise ValidationError(
            f"this sealed identity is for {sealed.recipient_node} and {sealed.tracking_id}, "
            f"not for {node_id} and {tracking_id}"
        )
    if sealed.recipient_key != key.public:
        raise ValidationError(
            f"this sealed identity was sealed to another sealing key of {node_id} (an "
            "earlier one?); ask the node where the complaint entered to seal it again"
        )
    if len(sealed.ephemeral_key) != 32 or len(sealed.nonce) != _NONCE_BYTES:
        raise ValidationError("the sealed identity is malformed")
    shared = key.private.exchange(X25519PublicKey.from_public_bytes(sealed.ephemeral_key))
    box_key = _key(shared, sealed.ephemeral_key, key.public, tracking_id)
    try:
        plaintext = ChaCha20Poly1305(box_key).decrypt(
            sealed.nonce, sealed.ciphertext, _aad(tracking_id, node_id)
        )
    except InvalidTag as e:
        raise SignatureError(
            f"the sealed identity of {tracking_id} does not open with {node_id}'s key: it "
            "was altered or sealed to another key"
        ) from e
    try:
        return privacy_pb2.ReporterIdentity.FromString(plaintext)
    except DecodeError as e:  # pragma: no cover - authenticated, so only a bad sealer
        raise ValidationError("the sealed identity holds no reporter identity") from e
