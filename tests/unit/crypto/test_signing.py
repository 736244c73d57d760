"""Ed25519 signing keys, domain-separated signatures, and private key files."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node.crypto.keyfiles import read_file, write_private, write_public
from node.crypto.signing import ENVELOPE_PURPOSE, SigningKey, VerifyKey
from node.errors import ConfigError, SignatureError, ValidationError

KEY = SigningKey.generate()
MESSAGE = b"lapor.v1.Envelope bytes"


def test_pem_round_trip_keeps_the_key() -> None:
    """A key written with to_pem and read with from_pem has the same public key and signs alike."""
    again = SigningKey.from_pem(KEY.to_pem())
    assert again.public == KEY.public
    assert again.key_id == KEY.key_id
    # Ed25519 is deterministic: the same key signs the same message identically.
    assert again.sign(ENVELOPE_PURPOSE, MESSAGE) == KEY.sign(ENVELOPE_PURPOSE, MESSAGE)


def test_pem_is_unencrypted_pkcs8() -> None:
    """to_pem writes an unencrypted PKCS#8 PEM private key."""
    assert KEY.to_pem().startswith(b"-----BEGIN PRIVATE KEY-----\n")


def test_from_pem_refuses_a_non_ed25519_key() -> None:
    """from_pem raises ValidationError for a PEM private key of another algorithm."""
    pem = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValidationError, match="Ed25519"):
        SigningKey.from_pem(pem)


def test_key_id_is_sha256_of_the_raw_public_key() -> None:
    """key_id is SHA-256 over the 32 raw public key bytes."""
    assert len(KEY.public.raw) == 32
    assert KEY.key_id == hashlib.sha256(KEY.public.raw).digest()


@pytest.mark.parametrize("length", [0, 31, 33, 64], ids=lambda n: f"{n}-bytes")
def test_verify_key_rejects_wrong_length(length: int) -> None:
    """VerifyKey accepts only a 32-byte raw key; other lengths raise ValidationError."""
    with pytest.raises(ValidationError, match=f"found {length}"):
        VerifyKey(b"\x01" * length)


def test_signature_verifies_over_purpose_and_message() -> None:
    """sign/verify round trip; the signature is plain Ed25519 over purpose || message."""
    signature = KEY.sign(ENVELOPE_PURPOSE, MESSAGE)
    KEY.public.verify(ENVELOPE_PURPOSE, MESSAGE, signature)
    Ed25519PublicKey.from_public_bytes(KEY.public.raw).verify(signature, ENVELOPE_PURPOSE + MESSAGE)


def test_signature_without_the_prefix_does_not_verify() -> None:
    """A raw Ed25519 signature over the message alone fails verification with SignatureError."""
    raw = KEY.ed25519.sign(MESSAGE)
    with pytest.raises(SignatureError):
        KEY.public.verify(ENVELOPE_PURPOSE, MESSAGE, raw)


def test_prefixed_signature_is_not_a_raw_signature() -> None:
    """A purpose-prefixed signature does not verify as a raw signature over the message."""
    signature = KEY.sign(ENVELOPE_PURPOSE, MESSAGE)
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(KEY.public.raw).verify(signature, MESSAGE)


def test_wrong_key_does_not_verify() -> None:
    """A signature by one key raises SignatureError under another key."""
    signature = KEY.sign(ENVELOPE_PURPOSE, MESSAGE)
    with pytest.raises(SignatureError):
        SigningKey.generate().public.verify(ENVELOPE_PURPOSE, MESSAGE, signature)


@pytest.mark.parametrize(
    "purpose",
    [b"", b"lapor-node/envelope/v2\n", b"lapor-node/envelope/v1"],
    ids=["empty", "other-version", "no-newline"],
)
def test_unknown_purposes_are_refused(purpose: bytes) -> None:
    """sign and verify refuse a purpose prefix that is not registered."""
    with pytest.raises(ValueError, match="unknown signature purpose"):
        KEY.sign(purpose, MESSAGE)
    with pytest.raises(ValueError, match="unknown signature purpose"):
        KEY.public.verify(purpose, MESSAGE, KEY.sign(ENVELOPE_PURPOSE, MESSAGE))


# Key files -----------------------------------------------------------------------------


def test_write_private_creates_mode_0600(tmp_path: Path) -> None:
    """write_private creates the file with mode 0600 (and its folder 0700)."""
    path = tmp_path / "keys" / "signing.pem"
    write_private(path, KEY.to_pem())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert SigningKey.from_pem(read_file(path, "signing key")).public == KEY.public


def test_write_private_never_overwrites(tmp_path: Path) -> None:
    """write_private refuses an existing path with ConfigError and leaves it untouched."""
    path = tmp_path / "signing.pem"
    write_private(path, b"original")
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        write_private(path, b"replacement")
    assert path.read_bytes() == b"original"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_private_does_not_follow_an_existing_symlink(tmp_path: Path) -> None:
    """write_private refuses a symlink at the path instead of writing through it."""
    target = tmp_path / "elsewhere"
    target.write_bytes(b"victim")
    link = tmp_path / "signing.pem"
    link.symlink_to(target)
    with pytest.raises(ConfigError):
        write_private(link, b"key")
    assert target.read_bytes() == b"victim"


def test_write_public_and_read_file(tmp_path: Path) -> None:
    """write_public writes the bytes given and read_file reads them back."""
    path = tmp_path / "keys" / "tls.crt"
    write_public(path, b"certificate")
    assert read_file(path, "TLS certificate") == b"certificate"


def test_read_file_missing_says_what_to_do(tmp_path: Path) -> None:
    """read_file of a missing file raises ConfigError naming the thing and `lapor-node init`."""
    with pytest.raises(ConfigError, match=r"signing key not found .*lapor-node init"):
        read_file(tmp_path / "absent.pem", "signing key")
