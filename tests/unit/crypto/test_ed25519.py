"""Ed25519 through libsodium: RFC 8032 answers, the same bytes as OpenSSL's, and nothing
accepted that OpenSSL would refuse."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from node.crypto import ed25519
from node.crypto.signing import ENVELOPE_PURPOSE, SigningKey, VerifyKey
from node.errors import SignatureError

# RFC 8032, section 7.1, TEST 1 and TEST 2: (secret key, public key, message, signature).
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
        "39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f"
        "3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]


def _openssl_accepts(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032, ids=["1", "2"])
def test_rfc8032_known_answers(secret: str, public: str, message: str, signature: str) -> None:
    """sign gives RFC 8032's signature; verify accepts it and refuses it for another message."""
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
    assert key.public_key().public_bytes_raw().hex() == public
    assert ed25519.sign(ed25519.secret_key(key), bytes.fromhex(message)).hex() == signature
    assert ed25519.verify(bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature))
    assert not ed25519.verify(
        bytes.fromhex(public), bytes.fromhex(message) + b"\x00", bytes.fromhex(signature)
    )


@settings(max_examples=50, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=2048))
def test_signatures_are_the_bytes_openssl_makes(seed: bytes, message: bytes) -> None:
    """For any key and message, libsodium's signature is OpenSSL's, and each accepts the other's."""
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes_raw()
    signature = ed25519.sign(ed25519.secret_key(key), message)
    assert signature == key.sign(message)
    assert ed25519.verify(public, message, signature)
    assert _openssl_accepts(public, message, signature)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    message=st.binary(min_size=1, max_size=64),
    part=st.sampled_from(["public", "message", "signature"]),
    bit=st.integers(min_value=0, max_value=511),
)
def test_a_flipped_bit_is_refused_by_both(seed: bytes, message: bytes, part: str, bit: int) -> None:
    """A bit flipped in the key, the message or the signature: libsodium and OpenSSL both refuse."""
    key = Ed25519PrivateKey.from_private_bytes(seed)
    values = {
        "public": bytearray(key.public_key().public_bytes_raw()),
        "message": bytearray(message),
        "signature": bytearray(key.sign(message)),
    }
    target = values[part]
    target[(bit // 8) % len(target)] ^= 1 << (bit % 8)
    public, signed, signature = (bytes(values[k]) for k in ("public", "message", "signature"))
    assert not ed25519.verify(public, signed, signature)
    assert not _openssl_accepts(public, signed, signature)


def test_a_small_order_key_signs_nothing() -> None:
    """The identity point with R = identity, S = 0 "signs" every message under OpenSSL's
    cofactorless check; libsodium refuses it, so no such key can sign for a node."""
    identity = b"\x01" + bytes(31)
    forged = identity + bytes(32)
    assert _openssl_accepts(identity, b"any message", forged)
    assert not ed25519.verify(identity, b"any message", forged)
    with pytest.raises(SignatureError):
        VerifyKey(identity).verify(ENVELOPE_PURPOSE, b"any message", forged)


@pytest.mark.parametrize("length", [0, 63, 65, 80])
def test_a_signature_of_the_wrong_length_is_refused(length: int) -> None:
    """libsodium reads signature || message as one buffer, so a signature cut short (or run
    long) with the message shifted to match would verify; only 64-byte signatures are read."""
    key = SigningKey.generate()
    message = ENVELOPE_PURPOSE + b"body"
    joined = key.sign(ENVELOPE_PURPOSE, b"body") + message
    assert ed25519.verify(key.public.raw, joined[64:], joined[:64])
    assert not ed25519.verify(key.public.raw, joined[length:], joined[:length])


@pytest.mark.parametrize("length", [0, 31, 33])
def test_a_key_of_the_wrong_length_is_refused(length: int) -> None:
    """verify returns False, not an exception, for a key that is not 32 bytes."""
    assert not ed25519.verify(b"\x02" * length, b"message", b"\x00" * 64)
