"""C2SP tlog-cosignature v1 with Ed25519: a witness's timestamped note signature on a
checkpoint (c2sp.org/tlog-cosignature, "Format" and "Ed25519 signed message").

A cosignature is a signed-note signature line on the checkpoint note,

    — <cosigner name> base64(key ID || timestamped_signature)

where, for Ed25519 (steps numbered after the spec):
  1. key ID = SHA-256(<name> || "\\n" || 0x04 || 32-byte public key)[:4];
  2. timestamped_signature = u64 timestamp (big-endian, POSIX seconds, at most 2**63 - 1)
     || the 64-byte Ed25519 signature;
  3. the signed message is `cosignature/v1\\n`, `time <timestamp>\\n` (ASCII decimal, no
     leading zeroes), then the whole checkpoint note text (extension lines included,
     final newline included, signature lines excluded).

Invariants:
- A cosigner key is its own key type (0x04): its key ID never equals a note key's (0x01)
  for the same name and public key, and the message opens with `cosignature/v1\\n`, which
  no checkpoint or envelope this node signs does, so a cosignature validates nothing else.
- Verification returns the parsed cosignature or raises SignatureError; lines from other
  keys are ignored, as the signed-note spec requires.
- The checkpoint text is the text exactly as received (node.ledger.note.split_note).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from node.crypto import ed25519
from node.errors import SignatureError, ValidationError
from node.ledger.note import EM_DASH, KeyId, NoteSignature, split_note

__all__ = [
    "COSIGNATURE_HEADER",
    "MAX_TIMESTAMP",
    "SIGNATURE_TYPE_COSIGNATURE",
    "Cosignature",
    "CosignerKey",
    "cosign",
    "find_cosignature",
    "format_vkey",
    "key_id",
    "parse_line",
    "parse_vkey",
    "signed_message",
]

COSIGNATURE_HEADER = b"cosignature/v1\n"
SIGNATURE_TYPE_COSIGNATURE = 0x04
"""The signed-note signature type of Ed25519 cosignatures (tlog-cosignature, "Format")."""
MAX_TIMESTAMP = 2**63 - 1

_KEY_ID_SIZE = 4
_TIMESTAMP_SIZE = 8
_PUBLIC_KEY_SIZE = ed25519.PUBLIC_KEY_SIZE
_SIGNATURE_SIZE = ed25519.SIGNATURE_SIZE


def key_id(name: str, public_key: bytes) -> KeyId:
    """Step 1: SHA-256(name || 0x0A || 0x04 || public key)[:4]."""
    _check_name(name)
    if not isinstance(public_key, bytes) or len(public_key) != _PUBLIC_KEY_SIZE:
        raise ValidationError(
            f"expected a {_PUBLIC_KEY_SIZE}-byte Ed25519 cosigner key, "
            f"found {_describe(public_key)}"
        )
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([SIGNATURE_TYPE_COSIGNATURE]) + public_key
    ).digest()
    return KeyId(digest[:_KEY_ID_SIZE])


def signed_message(checkpoint_text: bytes, timestamp: int) -> bytes:
    """Step 3: the bytes an Ed25519 cosigner signs for `checkpoint_text` at `timestamp`."""
    _check_timestamp(timestamp)
    if not checkpoint_text.endswith(b"\n"):
        raise ValidationError("expected the checkpoint text to end in a newline, found none")
    return COSIGNATURE_HEADER + b"time %d\n" % timestamp + checkpoint_text


@dataclass(frozen=True)
class Cosignature:
    """One cosignature line, parsed (by `parse_line`) or made (by `cosign`)."""

    name: str
    key_id: KeyId
    timestamp: int
    signature: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_timestamp(self.timestamp)
        if len(self.key_id) != _KEY_ID_SIZE or len(self.signature) != _SIGNATURE_SIZE:
            raise ValidationError(
                f"expected a {_KEY_ID_SIZE}-byte key ID and a {_SIGNATURE_SIZE}-byte "
                f"signature, found {len(self.key_id)} and {len(self.signature)} bytes"
            )

    def line(self) -> str:
        """The note signature line, ending in a newline."""
        blob = self.key_id + self.timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + self.signature
        return f"{EM_DASH} {self.name} {base64.b64encode(blob).decode('ascii')}\n"


def parse_line(signature: NoteSignature) -> Cosignature:
    """Step 2: read the timestamped signature of a note signature line (split_note's)."""
    blob = signature.signature
    if len(blob) != _TIMESTAMP_SIZE + _SIGNATURE_SIZE:
        raise ValidationError(
            f"expected {_TIMESTAMP_SIZE + _SIGNATURE_SIZE} bytes of timestamp and signature "
            f"from {signature.name!r}, found {len(blob)}"
        )
    timestamp = int.from_bytes(blob[:_TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        raise ValidationError(f"expected a timestamp below 2**63 from {signature.name!r}")
    return Cosignature(signature.name, signature.key_id, timestamp, blob[_TIMESTAMP_SIZE:])


@dataclass(frozen=True)
class CosignerKey:
    """A trusted Ed25519 cosigner: its name, key ID and 32-byte public key."""

    name: str
    key_id: KeyId
    public_key: bytes

    def __post_init__(self) -> None:
        want = key_id(self.name, self.public_key)
        if self.key_id != want:
            raise ValidationError(
                f"expected cosigner key ID {want.hex()} for {self.name!r}, "
                f"found {_hex(self.key_id)}"
            )
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError as e:
            raise ValidationError(f"expected a valid Ed25519 key for {self.name!r}") from e

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey | bytes) -> CosignerKey:
        raw = public_key if isinstance(public_key, bytes) else public_key.public_bytes_raw()
        return cls(name, key_id(name, raw), raw)

    @property
    def vkey(self) -> str:
        """`<name>+<hex key ID>+<base64(0x04 || public key)>` (signed-note "Verifier keys")."""
        return format_vkey(self.name, self.public_key)

    def matches(self, signature: NoteSignature) -> bool:
        """Whether a signature line claims this key (its name and key ID)."""
        return signature.name == self.name and signature.key_id == self.key_id

    def verify(self, checkpoint_text: bytes, cosignature: Cosignature) -> None:
        """Check `cosignature` on `checkpoint_text` by this key; raise SignatureError if bad."""
        if cosignature.name != self.name or cosignature.key_id != self.key_id:
            raise SignatureError(
                f"expected a cosignature by {self.name!r} (key ID {self.key_id.hex()}), "
                f"found one by {cosignature.name!r} (key ID {cosignature.key_id.hex()})"
            )
        message = signed_message(checkpoint_text, cosignature.timestamp)
        if not ed25519.verify(self.public_key, message, cosignature.signature):
            raise SignatureError(
                f"expected a valid cosignature by {self.name!r} at time "
                f"{cosignature.timestamp}, found one that does not verify"
            )


def format_vkey(name: str, public_key: bytes) -> str:
    kid = key_id(name, public_key)
    material = base64.b64encode(bytes([SIGNATURE_TYPE_COSIGNATURE]) + public_key)
    return f"{name}+{kid.hex()}+{material.decode('ascii')}"


def parse_vkey(vkey: str) -> CosignerKey:
    """Parse a cosigner verifier key (type 0x04) strictly; raise ValidationError if not one."""
    if not isinstance(vkey, str):
        raise ValidationError(f"expected a verifier key as text, found {type(vkey).__name__}")
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise ValidationError(f"expected <name>+<key ID>+<key>, found {len(parts)} parts")
    name, kid_hex, material = parts
    _check_name(name)
    if len(kid_hex) != 2 * _KEY_ID_SIZE or kid_hex.strip("0123456789abcdef"):
        raise ValidationError(f"expected 8 lowercase hex digits of key ID, found {kid_hex!r}")
    try:
        raw = base64.b64decode(material.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as e:
        raise ValidationError(f"expected base64 key material for {name!r}") from e
    if len(raw) != 1 + _PUBLIC_KEY_SIZE or raw[0] != SIGNATURE_TYPE_COSIGNATURE:
        raise ValidationError(
            f"expected a cosigner key: type 0x04 and {_PUBLIC_KEY_SIZE} bytes, found type "
            f"{raw[:1].hex() or 'none'} and {max(len(raw) - 1, 0)} bytes for {name!r}"
        )
    return CosignerKey(name, KeyId(bytes.fromhex(kid_hex)), raw[1:])


def cosign(
    checkpoint_text: bytes, name: str, private_key: Ed25519PrivateKey, timestamp: int
) -> Cosignature:
    """Cosign a checkpoint note text (steps 1-3) as `name` at `timestamp`."""
    public = private_key.public_key().public_bytes_raw()
    message = signed_message(checkpoint_text, timestamp)
    signature = ed25519.sign(ed25519.secret_key(private_key), message)
    return Cosignature(name, key_id(name, public), timestamp, signature)


def find_cosignature(note: bytes, key: CosignerKey) -> Cosignature:
    """The verified cosignature of `key` on a signed checkpoint note.

    Other signature lines are ignored (they may be the log's or other witnesses'). Raises
    SignatureError if `key` has no line there, or if its line does not verify.
    """
    text, signatures = split_note(note)
    for signature in signatures:
        if key.matches(signature):
            try:
                cosignature = parse_line(signature)
            except ValidationError as e:
                raise SignatureError(f"expected a cosignature by {key.name!r}: {e}") from e
            key.verify(text, cosignature)
            return cosignature
    raise SignatureError(
        f"expected a cosignature by {key.name!r} (key ID {key.key_id.hex()}), found none"
    )


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise ValidationError(f"expected a non-empty cosigner name, found {name!r}")
    if any(c.isspace() or c == "+" or c < " " for c in name):
        raise ValidationError(f"expected a cosigner name without spaces or '+', found {name!r}")


def _check_timestamp(timestamp: object) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise ValidationError(f"expected an integer timestamp, found {timestamp!r}")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValidationError(f"expected a timestamp in [0, 2**63), found {timestamp}")


def _hex(value: object) -> str:
    return value.hex() if isinstance(value, bytes) else repr(value)


def _describe(value: object) -> str:
    return f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
