"""Ed25519 signing and verification, computed by libsodium (decision 0017).

Keys are generated, written and read with `cryptography` (PKCS#8 PEM, node.crypto.signing);
every signature a node makes or checks, on envelopes, checkpoint notes and trust records,
goes through these two functions.

Invariants:

- A signature is the RFC 8032 Ed25519 signature, which is deterministic: the bytes are the
  same as any other implementation's for the same key and message.
- `verify` accepts nothing that OpenSSL's Ed25519 (cryptography) or Go's would reject:
  libsodium is stricter (it also refuses small-order and non-canonical public keys and
  small-order R), so an auditor checking with another implementation accepts all we accept.
- `verify` takes a signature of exactly 64 bytes and a key of exactly 32; libsodium reads
  the signature and the message from one buffer, and a shorter signature would shift the
  boundary between them.
"""

from __future__ import annotations

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["PUBLIC_KEY_SIZE", "SIGNATURE_SIZE", "secret_key", "sign", "verify"]

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def secret_key(private: Ed25519PrivateKey) -> bytes:
    """libsodium's 64-byte secret key for `private`: its 32-byte seed, then its public key."""
    return private.private_bytes_raw() + private.public_key().public_bytes_raw()


def sign(secret: bytes, message: bytes) -> bytes:
    """Return the 64-byte Ed25519 signature of `message` by `secret` (see `secret_key`)."""
    return nacl.bindings.crypto_sign(message, secret)[:SIGNATURE_SIZE]


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Return whether `signature` is `public`'s Ed25519 signature of `message`."""
    if len(signature) != SIGNATURE_SIZE or len(public) != PUBLIC_KEY_SIZE:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, public)
    except nacl.exceptions.BadSignatureError:
        return False
    return True
