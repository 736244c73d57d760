"""C2SP signed notes with Ed25519: key IDs, verifier keys, signing, opening, checkpoints."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.errors import SignatureError, TooLargeError, ValidationError
from node.ledger.checkpoint import Checkpoint, origin_for
from node.ledger.merkle import MemoryTree, leaf_hash
from node.ledger.note import (
    EM_DASH,
    MAX_SIGNATURES,
    Verifier,
    format_vkey,
    key_id,
    open_checkpoint,
    open_note,
    parse_vkey,
    sign_checkpoint,
    sign_note,
    split_note,
)

DATA = Path(__file__).resolve().parent / "data"
VECTORS: list[dict[str, Any]] = json.loads(
    (DATA / "c2sp-signed-note.json").read_text(encoding="utf-8")
)["vectors"]
VERIFIABLE = [pytest.param(v, id=v["id"]) for v in VECTORS if v["vkey"] is not None]
ALL = [pytest.param(v, id=v["id"]) for v in VECTORS]


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def _verifier(name: str, key: Ed25519PrivateKey) -> Verifier:
    return Verifier.from_public_key(name, key.public_key())


def _go_private_key(skey: str) -> Ed25519PrivateKey:
    """Decode a Go sumdb/note signer key: PRIVATE+KEY+<name>+<id>+base64(0x01 || seed)."""
    raw = base64.b64decode(skey.split("+", 4)[4])
    assert raw[0] == 1
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


ALICE, BOB = _key(1), _key(2)
TEXT = b"lapor-node/id-64\n7\n" + base64.b64encode(bytes(32)) + b"\n"


# --- published vectors ----------------------------------------------------------------


@pytest.mark.parametrize("vector", VERIFIABLE)
def test_vector_opens_with_its_verifier_key(vector: dict[str, Any]) -> None:
    """A published note opens under its published verifier key and yields its text."""
    verifier = parse_vkey(vector["vkey"])
    text, verified = open_note(vector["note"].encode(), [verifier])
    assert text == vector["text"].encode()
    assert verified == [verifier]


@pytest.mark.parametrize("vector", VERIFIABLE)
def test_vector_key_id_and_vkey_round_trip(vector: dict[str, Any]) -> None:
    """key_id and format_vkey reproduce the published verifier key exactly."""
    verifier = parse_vkey(vector["vkey"])
    assert verifier.name == vector["key_name"]
    assert key_id(verifier.name, verifier.public_key).hex() == vector["key_id"]
    assert format_vkey(verifier.name, verifier.public_key) == vector["vkey"] == verifier.vkey


@pytest.mark.parametrize("vector", [v for v in VERIFIABLE if "skey" in v.values[0]])
def test_vector_signing_is_byte_exact(vector: dict[str, Any]) -> None:
    """With the published private key, sign_note reproduces the published note byte for byte."""
    key = _go_private_key(vector["skey"])
    assert sign_note(vector["text"].encode(), vector["key_name"], key) == vector["note"].encode()


@pytest.mark.parametrize("vector", ALL)
def test_vector_splits_at_the_last_blank_line(vector: dict[str, Any]) -> None:
    """split_note separates text and signature as published, even with blank lines in text."""
    text, signatures = split_note(vector["note"].encode())
    assert text == vector["text"].encode()
    assert [s.name for s in signatures] == [vector["key_name"]]
    assert len(signatures[0].key_id) == 4
    assert len(signatures[0].signature) == 64
    if vector["key_id"] is not None:
        assert signatures[0].key_id.hex() == vector["key_id"]


@pytest.mark.parametrize("vector", ALL)
def test_vector_is_rejected_by_unrelated_keys(vector: dict[str, Any]) -> None:
    """A published note signed by nobody we trust is refused, even under the same key name."""
    strangers = [_verifier(vector["key_name"], ALICE), _verifier("example.com/other", BOB)]
    with pytest.raises(SignatureError, match="expected a signature by one of"):
        open_note(vector["note"].encode(), strangers)


# --- signing and opening --------------------------------------------------------------


def test_sign_note_format() -> None:
    """A signed note is text, a blank line, and '— <name> base64(key ID || signature)'."""
    note = sign_note(TEXT, "lapor-node/id-64", ALICE)
    head, line = note[: len(TEXT) + 1], note[len(TEXT) + 1 :].decode()
    assert head == TEXT + b"\n"
    assert line.startswith(f"{EM_DASH} lapor-node/id-64 ") and line.endswith("\n")
    blob = base64.b64decode(line.split(" ")[2])
    assert blob[:4] == _verifier("lapor-node/id-64", ALICE).key_id
    assert len(blob) == 68


def test_open_note_round_trip_and_ignores_unknown_signers() -> None:
    """Known signers are returned; signatures from keys not trusted are skipped."""
    alice, bob = _verifier("alice.example", ALICE), _verifier("bob.example", BOB)
    by_alice = sign_note(TEXT, alice.name, ALICE)
    by_bob = sign_note(TEXT, bob.name, BOB)
    both = by_alice + by_bob[len(TEXT) + 1 :]
    assert open_note(both, [alice, bob]) == (TEXT, [alice, bob])
    assert open_note(both, [bob]) == (TEXT, [bob])
    assert open_note(by_alice, [bob, alice]) == (TEXT, [alice])


def test_signature_under_another_name_or_key_fails() -> None:
    """A signature counts only for the exact (name, key) that made it."""
    note = sign_note(TEXT, "alice.example", ALICE)
    for verifier in (_verifier("mallory.example", ALICE), _verifier("alice.example", BOB)):
        with pytest.raises(SignatureError):
            open_note(note, [verifier])
    with pytest.raises(SignatureError):
        open_note(note, [])


def test_a_known_signature_that_fails_rejects_the_note() -> None:
    """A bad signature from a trusted key rejects the whole note, whatever else verifies."""
    alice, bob = _verifier("alice.example", ALICE), _verifier("bob.example", BOB)
    by_bob = sign_note(TEXT, bob.name, BOB)
    forged_line = f"{EM_DASH} alice.example {base64.b64encode(alice.key_id + bytes(64)).decode()}\n"
    with pytest.raises(SignatureError, match="does not verify"):
        open_note(by_bob + forged_line.encode(), [alice, bob])
    short_line = f"{EM_DASH} alice.example {base64.b64encode(alice.key_id + b'x').decode()}\n"
    with pytest.raises(SignatureError, match="64-byte signature"):
        open_note(by_bob + short_line.encode(), [alice, bob])


def test_flipping_any_byte_of_the_text_fails() -> None:
    """Changing any one byte of the signed text makes the note fail to open."""
    alice = _verifier("alice.example", ALICE)
    note = sign_note(TEXT, alice.name, ALICE)
    for i in range(len(TEXT)):
        tampered = bytearray(note)
        tampered[i] ^= 0x01
        with pytest.raises((SignatureError, ValidationError)):
            open_note(bytes(tampered), [alice])


def test_checkpoint_round_trip() -> None:
    """sign_checkpoint then open_checkpoint gives back the same checkpoint."""
    tree = MemoryTree(leaf_hash(bytes([i])) for i in range(9))
    cp = Checkpoint(origin_for("id-64"), 9, tree.root())
    note = sign_checkpoint(cp, cp.origin, ALICE)
    assert open_checkpoint(note, _verifier(cp.origin, ALICE)) == cp
    with pytest.raises(SignatureError):
        open_checkpoint(note, _verifier(cp.origin, BOB))


def test_open_checkpoint_rejects_a_signed_non_checkpoint() -> None:
    """A well-signed note whose text is not a checkpoint is refused as malformed."""
    note = sign_note(b"not a checkpoint\n", "alice.example", ALICE)
    with pytest.raises(ValidationError, match="at least 3"):
        open_checkpoint(note, _verifier("alice.example", ALICE))


# --- strict parsing -------------------------------------------------------------------

GOOD = sign_note(TEXT, "alice.example", ALICE)
LINE = GOOD[len(TEXT) + 1 :].decode()
SIG_B64 = LINE.split(" ")[2].strip()


@pytest.mark.parametrize(
    ("note", "error", "message"),
    [
        pytest.param(TEXT, ValidationError, "blank line", id="no-signatures"),
        pytest.param(TEXT + b"\n", ValidationError, "signature line", id="blank-then-nothing"),
        pytest.param(GOOD[:-1], ValidationError, "newline", id="no-final-newline"),
        pytest.param(GOOD + b"\n", ValidationError, "signature line", id="trailing-blank"),
        pytest.param(
            TEXT + b"\n" + LINE.replace(EM_DASH, "-").encode(),
            ValidationError,
            "start",
            id="hyphen",
        ),
        pytest.param(
            TEXT + b"\n" + LINE.replace(EM_DASH, "\u2013").encode(),
            ValidationError,
            "start",
            id="en-dash",
        ),
        pytest.param(
            TEXT + b"\n" + LINE.replace(" ", "  ", 1).encode(), ValidationError, "fields", id="2sp"
        ),
        pytest.param(
            TEXT + b"\n" + LINE.replace("\n", " x\n").encode(), ValidationError, "fields", id="3"
        ),
        pytest.param(
            TEXT + b"\n" + LINE.replace(SIG_B64, SIG_B64.rstrip("=")).encode(),
            ValidationError,
            "base64",
            id="unpadded",
        ),
        pytest.param(
            TEXT + b"\n" + LINE.replace(SIG_B64, "AAAA").encode(),
            ValidationError,
            "key ID and a signature",
            id="too-short",
        ),
        pytest.param(
            TEXT + b"\n" + LINE.replace("alice.example", "alice+x").encode(),
            ValidationError,
            "key name",
            id="plus-in-name",
        ),
        pytest.param(GOOD.replace(b"\n", b"\r\n"), ValidationError, "control", id="crlf"),
        pytest.param(b"\xff" + GOOD, ValidationError, "UTF-8", id="not-utf8"),
        pytest.param(
            GOOD + LINE.encode() * MAX_SIGNATURES, TooLargeError, "at most", id="too-many-sigs"
        ),
    ],
)
def test_open_note_rejects_malformed_notes(
    note: bytes, error: type[Exception], message: str
) -> None:
    """Malformed notes raise ValidationError before any signature is checked."""
    with pytest.raises(error, match=message):
        open_note(note, [_verifier("alice.example", ALICE)])


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        pytest.param(b"no newline", "alice.example", "newline", id="no-final-newline"),
        pytest.param(b"", "alice.example", "newline", id="empty"),
        pytest.param(b"tab\there\n", "alice.example", "control", id="control-char"),
        pytest.param(b"\xc3\n", "alice.example", "UTF-8", id="not-utf8"),
        pytest.param(TEXT, "", "non-empty key name", id="empty-name"),
        pytest.param(TEXT, "alice example", "spaces", id="space-in-name"),
        pytest.param(TEXT, "alice\u00a0example", "spaces", id="nbsp-in-name"),
        pytest.param(TEXT, "alice+example", "'\\+'", id="plus-in-name"),
        pytest.param(b"lapor-node/envelope/v1\nbody\n", "alice.example", "envelope", id="env"),
    ],
)
def test_sign_note_rejects_bad_input(text: bytes, name: str, message: str) -> None:
    """sign_note refuses text or names that would make an unparseable or ambiguous note."""
    with pytest.raises(ValidationError, match=message):
        sign_note(text, name, ALICE)


VKEY = _verifier("alice.example", ALICE).vkey
NAME, KID, MATERIAL = VKEY.split("+", 2)
ECDSA_MATERIAL = base64.b64encode(b"\x02" + base64.b64decode(MATERIAL)[1:]).decode()


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        pytest.param(f"{NAME}+{KID}", "found 2 parts", id="two-parts"),
        pytest.param(f"+{KID}+{MATERIAL}", "non-empty key name", id="empty-name"),
        pytest.param(f"{NAME}+{KID.upper()}+{MATERIAL}", "lowercase hex", id="uppercase-id"),
        pytest.param(f"{NAME}+{KID[:6]}+{MATERIAL}", "hex", id="short-id"),
        pytest.param(f"{NAME}+00000000+{MATERIAL}", "expected key ID", id="wrong-id"),
        pytest.param(f"other.example+{KID}+{MATERIAL}", "expected key ID", id="other-name"),
        pytest.param(f"{NAME}+{KID}+{MATERIAL[:-4]}", "32-byte", id="short-key"),
        pytest.param(f"{NAME}+{KID}+{MATERIAL}=", "base64", id="extra-padding"),
        pytest.param(f"{NAME}+{KID}+{ECDSA_MATERIAL}", "0x01", id="ecdsa-type"),
        pytest.param(f"{NAME} x+{KID}+{MATERIAL}", "spaces", id="space-in-name"),
    ],
)
def test_parse_vkey_rejects_malformed_keys(vkey: str, message: str) -> None:
    """parse_vkey accepts only well-formed Ed25519 verifier keys whose ID matches."""
    with pytest.raises(ValidationError, match=message):
        parse_vkey(vkey)


def test_verifier_checks_its_key_id() -> None:
    """A Verifier cannot be built with a key ID that does not belong to its name and key."""
    good = _verifier("alice.example", ALICE)
    assert parse_vkey(good.vkey) == good
    with pytest.raises(ValidationError, match="expected key ID"):
        Verifier("alice.example", _verifier("bob.example", BOB).key_id, good.public_key)
    with pytest.raises(ValidationError, match="32-byte"):
        Verifier("alice.example", good.key_id, good.public_key[:31])
