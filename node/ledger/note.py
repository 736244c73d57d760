"""C2SP signed notes with Ed25519 (signature type 0x01), and signed checkpoints.

A signed note (c2sp.org/signed-note, "Format") is a text ending in a newline, a blank
line, and one or more signature lines:

    — <key name> base64(4-byte key ID || 64-byte Ed25519 signature of the text)

Invariants:

- The text signed is the text exactly as received, final newline included and the
  separating blank line excluded; nothing is re-serialized before verifying.
- A note is split at its LAST blank line; the text may contain blank lines of its own.
- A signature is attributed to a verifier only if both its key name and its key ID match
  ("Signatures"); others are ignored, whatever they claim. A signature from a known key
  that fails rejects the whole note, and a note that no known key signed is rejected.
- The text of a note means nothing until `open_note` has returned it.
- A node's Ed25519 key also signs envelopes, over `lapor-node/envelope/v1\n || body`
  (DESIGN.md, "Wire contract"). `sign_note` refuses any text that starts with
  `lapor-node/envelope/`, so no note signature is ever an envelope signature; a
  checkpoint text starts with `lapor-node/<node_id>\n`, and a node id has no '/'.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NewType

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from node.crypto import ed25519
from node.errors import SignatureError, TooLargeError, ValidationError
from node.ledger.checkpoint import Checkpoint

__all__ = [
    "EM_DASH",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "SIGNATURE_TYPE_ED25519",
    "KeyId",
    "NoteSignature",
    "Verifier",
    "format_vkey",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_vkey",
    "sign_checkpoint",
    "sign_note",
    "split_note",
]

KeyId = NewType("KeyId", bytes)
"""The 4-byte key ID of a note signer: SHA-256(name || 0x0A || type || public key)[:4]."""

SIGNATURE_TYPE_ED25519 = 0x01
EM_DASH = "\u2014"
MAX_SIGNATURES = 100
"""Most signature lines accepted in one note (the spec requires at least 16)."""
MAX_NOTE_SIZE = 1 << 20
"""Largest note, in bytes, that is signed or parsed."""

_SIGNATURE_PREFIX = EM_DASH + " "
_ENVELOPE_DOMAIN = b"lapor-node/envelope/"
_KEY_ID_SIZE = 4
_PUBLIC_KEY_SIZE = ed25519.PUBLIC_KEY_SIZE
_SIGNATURE_SIZE = ed25519.SIGNATURE_SIZE


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note, parsed but not verified."""

    name: str
    key_id: KeyId
    signature: bytes


@dataclass(frozen=True)
class Verifier:
    """A trusted Ed25519 note key: its name, its key ID, and its 32-byte public key."""

    name: str
    key_id: KeyId
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.public_key, bytes) or len(self.public_key) != _PUBLIC_KEY_SIZE:
            raise ValidationError(
                f"expected a {_PUBLIC_KEY_SIZE}-byte Ed25519 public key, "
                f"found {_describe(self.public_key)}"
            )
        want = _key_id(self.name, self.public_key)
        if self.key_id != want:
            raise ValidationError(
                f"expected key ID {want.hex()} for {self.name!r} and its public key, "
                f"found {_hex(self.key_id)}"
            )
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError as e:
            raise ValidationError(f"expected a valid Ed25519 public key for {self.name!r}") from e

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey | bytes) -> Verifier:
        """Make the verifier of `public_key` under `name`, deriving its key ID."""
        raw = public_key if isinstance(public_key, bytes) else public_key.public_bytes_raw()
        _check_name(name)
        return cls(name, _key_id(name, raw), raw)

    @property
    def vkey(self) -> str:
        """The verifier key text, `<name>+<hex key ID>+<base64(0x01 || public key)>`."""
        return format_vkey(self.name, self.public_key)

    def verify(self, text: bytes, signature: bytes) -> None:
        """Check an Ed25519 signature of `text` by this key; raise SignatureError if bad."""
        if len(signature) != _SIGNATURE_SIZE:
            raise SignatureError(
                f"expected a {_SIGNATURE_SIZE}-byte signature by {self.name!r}, "
                f"found {len(signature)} bytes"
            )
        if not ed25519.verify(self.public_key, text, signature):
            raise SignatureError(
                f"expected a valid signature by {self.name!r} (key ID {self.key_id.hex()}), "
                "found one that does not verify"
            )


def key_id(name: str, public_key_bytes: bytes) -> KeyId:
    """Return SHA-256(name || 0x0A || 0x01 || public key)[:4] (signed-note, "Ed25519")."""
    _check_name(name)
    if len(public_key_bytes) != _PUBLIC_KEY_SIZE:
        raise ValidationError(
            f"expected a {_PUBLIC_KEY_SIZE}-byte Ed25519 public key, "
            f"found {len(public_key_bytes)} bytes"
        )
    return _key_id(name, public_key_bytes)


def format_vkey(name: str, public_key_bytes: bytes) -> str:
    """Return the verifier key text `<name>+<8 hex key ID>+<base64(0x01 || public key)>`."""
    kid = key_id(name, public_key_bytes)
    material = base64.b64encode(bytes([SIGNATURE_TYPE_ED25519]) + public_key_bytes)
    return f"{name}+{kid.hex()}+{material.decode('ascii')}"


def parse_vkey(vkey: str) -> Verifier:
    """Parse a verifier key text strictly; raise ValidationError if malformed."""
    parts = vkey.split("+", 2)  # the base64 part may itself contain '+'
    if len(parts) != 3:
        raise ValidationError(f"expected <name>+<key ID>+<key>, found {len(parts)} parts")
    name, kid_hex, material = parts
    _check_name(name)
    if len(kid_hex) != 2 * _KEY_ID_SIZE or kid_hex.strip("0123456789abcdef"):
        raise ValidationError(f"expected 8 lowercase hex digits of key ID, found {kid_hex!r}")
    raw = _decode_base64("verifier key", material)
    if len(raw) != 1 + _PUBLIC_KEY_SIZE or raw[0] != SIGNATURE_TYPE_ED25519:
        raise ValidationError(
            f"expected 0x01 and a {_PUBLIC_KEY_SIZE}-byte Ed25519 key, "
            f"found type {raw[:1].hex() or 'none'} and {max(len(raw) - 1, 0)} bytes"
        )
    return Verifier(name, KeyId(bytes.fromhex(kid_hex)), raw[1:])


def sign_note(text: bytes, name: str, private_key: Ed25519PrivateKey) -> bytes:
    """Sign `text` (which must end in a newline) and return the signed note."""
    _check_text(text)
    _check_name(name)
    if text.startswith(_ENVELOPE_DOMAIN):
        raise ValidationError(
            "expected a note text, found one that starts with the envelope signing domain"
        )
    public = private_key.public_key().public_bytes_raw()
    blob = _key_id(name, public) + ed25519.sign(ed25519.secret_key(private_key), text)
    line = f"{_SIGNATURE_PREFIX}{name} {base64.b64encode(blob).decode('ascii')}\n"
    note = text + b"\n" + line.encode("utf-8")
    if len(note) > MAX_NOTE_SIZE:
        raise TooLargeError(f"expected a note of at most {MAX_NOTE_SIZE} bytes, found {len(note)}")
    return note


def split_note(note: bytes) -> tuple[bytes, tuple[NoteSignature, ...]]:
    """Split a note into its text and its signature lines, verifying nothing.

    The text returned here is untrusted; use `open_note` to act on a note.
    Raises ValidationError if the note is malformed.
    """
    if len(note) > MAX_NOTE_SIZE:
        raise TooLargeError(f"expected a note of at most {MAX_NOTE_SIZE} bytes, found {len(note)}")
    decoded = _check_text(note)
    cut = decoded.rfind("\n\n")
    if cut < 0:
        raise ValidationError("expected a blank line before the signatures, found none")
    text, block = decoded[: cut + 1], decoded[cut + 2 :]
    if not block:
        raise ValidationError("expected at least one signature line, found none")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise TooLargeError(f"expected at most {MAX_SIGNATURES} signatures, found {len(lines)}")
    return text.encode("utf-8"), tuple(_parse_signature_line(i, s) for i, s in enumerate(lines))


def open_note(note: bytes, verifiers: Sequence[Verifier]) -> tuple[bytes, list[Verifier]]:
    """Verify a note; return its text and the verifiers whose signatures verified.

    Signatures by keys not in `verifiers` are ignored. Raises ValidationError if the
    note is malformed, and SignatureError if a known key's signature fails or if no
    known key signed it.
    """
    known: dict[tuple[str, bytes], Verifier] = {}
    for v in verifiers:
        if known.setdefault((v.name, v.key_id), v) != v:
            raise ValidationError(f"expected one key per name and key ID, found two for {v.name!r}")
    text, signatures = split_note(note)
    verified: list[Verifier] = []
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        verifier.verify(text, sig.signature)
        if verifier not in verified:
            verified.append(verifier)
    if not verified:
        wanted = sorted({v.name for v in verifiers})
        found = sorted({s.name for s in signatures})
        raise SignatureError(
            f"expected a signature by one of {wanted} with a matching key ID, "
            f"found signatures by {found}"
        )
    return text, verified


def sign_checkpoint(checkpoint: Checkpoint, name: str, private_key: Ed25519PrivateKey) -> bytes:
    """Return `checkpoint` as a note signed by `private_key` under key name `name`."""
    return sign_note(checkpoint.to_body(), name, private_key)


def open_checkpoint(note: bytes, verifier: Verifier | Sequence[Verifier]) -> Checkpoint:
    """Verify a signed checkpoint against a trusted key (or any one of several, e.g. a
    node's keys before and after a rotation) and parse its body strictly."""
    text, _ = open_note(note, [verifier] if isinstance(verifier, Verifier) else verifier)
    return Checkpoint.parse(text)


def _key_id(name: str, public_key: bytes) -> KeyId:
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([SIGNATURE_TYPE_ED25519]) + public_key
    ).digest()
    return KeyId(digest[:_KEY_ID_SIZE])


def _check_name(name: object) -> None:
    """Key names are non-empty, with no Unicode spaces, '+' or control characters."""
    if not isinstance(name, str) or not name:
        raise ValidationError(f"expected a non-empty key name, found {name!r}")
    if any(c.isspace() or c == "+" or c < " " for c in name):
        raise ValidationError(f"expected a key name without spaces or '+', found {name!r}")


def _check_text(data: bytes) -> str:
    """Return `data` decoded; it must be UTF-8, end in a newline, and have no controls."""
    if not isinstance(data, bytes):
        raise ValidationError(f"expected note bytes, found {type(data).__name__}")
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValidationError(f"expected UTF-8, found an invalid byte at {e.start}") from e
    if not decoded.endswith("\n"):
        raise ValidationError("expected the text to end in a newline, found none")
    for i, c in enumerate(decoded):
        if c < " " and c != "\n":
            raise ValidationError(f"expected no control characters, found {c!r} at {i}")
    return decoded


def _parse_signature_line(i: int, line: str) -> NoteSignature:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise ValidationError(f"expected signature line {i} to start with '— ', found {line[:8]!r}")
    fields = line[len(_SIGNATURE_PREFIX) :].split(" ")
    if len(fields) != 2:
        raise ValidationError(
            f"expected signature line {i} as '— <name> <base64>', found {len(fields)} fields"
        )
    name, encoded = fields
    _check_name(name)
    blob = _decode_base64(f"signature line {i}", encoded)
    if len(blob) <= _KEY_ID_SIZE:
        raise ValidationError(
            f"expected signature line {i} to hold a key ID and a signature, found {len(blob)} bytes"
        )
    return NoteSignature(name, KeyId(blob[:_KEY_ID_SIZE]), blob[_KEY_ID_SIZE:])


def _decode_base64(what: str, text: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as e:
        raise ValidationError(f"expected standard base64 in {what}, found {text[:16]!r}...") from e
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValidationError(f"expected canonical base64 in {what}, found {text[:16]!r}...")
    return raw


def _hex(value: object) -> str:
    return value.hex() if isinstance(value, bytes) else repr(value)


def _describe(value: object) -> str:
    return f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
