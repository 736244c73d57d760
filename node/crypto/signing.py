"""Ed25519 signing keys and domain-separated signatures.

Keys are kept and stored with `cryptography`; the signatures themselves are computed by
node.crypto.ed25519 (libsodium).

Invariant: every signature lapor-node makes is over `purpose prefix || message`, with a
prefix per purpose, so a signature made for one purpose never validates for another.
Checkpoints are signed as C2SP signed notes (node.ledger.note), whose text begins with the
log origin and can never begin with one of these prefixes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NewType

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto import ed25519
from node.errors import SignatureError, ValidationError

__all__ = [
    "ENVELOPE_PURPOSE",
    "JOIN_PURPOSE",
    "KEY_ROTATION_PURPOSE",
    "LINK_AGREEMENT_PURPOSE",
    "LINK_REVOCATION_PURPOSE",
    "SEALING_KEY_PURPOSE",
    "KeyId",
    "SigningKey",
    "VerifyKey",
]

KeyId = NewType("KeyId", bytes)

ENVELOPE_PURPOSE = b"lapor-node/envelope/v1\n"
# The link lifecycle (node.crypto.linking): a child's join request, the link agreement
# both sides sign, and the end of a link.
JOIN_PURPOSE = b"lapor-node/join/v1\n"
LINK_AGREEMENT_PURPOSE = b"lapor-node/link-agreement/v1\n"
LINK_REVOCATION_PURPOSE = b"lapor-node/link-revocation/v1\n"
# A node replaces its keys (node.crypto.rotation): signed by the old and by the new key.
KEY_ROTATION_PURPOSE = b"lapor-node/key-rotation/v1\n"
# A node states its X25519 sealing key (node.crypto.sealing).
SEALING_KEY_PURPOSE = b"lapor-node/sealing-key/v1\n"
_PURPOSES = frozenset(
    {
        ENVELOPE_PURPOSE,
        JOIN_PURPOSE,
        LINK_AGREEMENT_PURPOSE,
        LINK_REVOCATION_PURPOSE,
        KEY_ROTATION_PURPOSE,
        SEALING_KEY_PURPOSE,
    }
)


def _check_purpose(purpose: bytes) -> None:
    if purpose not in _PURPOSES:
        raise ValueError(f"unknown signature purpose {purpose!r}")


@dataclass(frozen=True)
class VerifyKey:
    """An Ed25519 public key and its id (SHA-256 of the raw 32-byte key)."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise ValidationError(f"Ed25519 public key must be 32 bytes, found {len(self.raw)}")

    @property
    def key_id(self) -> KeyId:
        return KeyId(hashlib.sha256(self.raw).digest())

    def verify(self, purpose: bytes, message: bytes, signature: bytes) -> None:
        """Return if `signature` is this key's over purpose || message; else SignatureError."""
        _check_purpose(purpose)
        if not ed25519.verify(self.raw, purpose + message, signature):
            raise SignatureError(f"signature does not verify under key {self.key_id.hex()[:16]}")


class SigningKey:
    """An Ed25519 private key that signs only with a purpose prefix."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self._secret = ed25519.secret_key(private)
        self.public = VerifyKey(private.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValidationError("signing key file does not hold an Ed25519 private key")
        return cls(key)

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def key_id(self) -> KeyId:
        return self.public.key_id

    @property
    def ed25519(self) -> Ed25519PrivateKey:
        """The raw key, for signers that define their own framing (C2SP signed notes)."""
        return self._private

    def sign(self, purpose: bytes, message: bytes) -> bytes:
        _check_purpose(purpose)
        return ed25519.sign(self._secret, purpose + message)
