"""C2SP tlog-cosignature v1 (Ed25519): key IDs, the signed message, lines, sign and verify."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.errors import SignatureError, ValidationError
from node.ledger import note
from node.ledger.checkpoint import Checkpoint
from node.ledger.cosignature import (
    MAX_TIMESTAMP,
    Cosignature,
    CosignerKey,
    cosign,
    find_cosignature,
    key_id,
    parse_line,
    parse_vkey,
    signed_message,
)
from node.ledger.note import open_checkpoint, sign_checkpoint, split_note

DATA: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent / "data" / "c2sp-tlog-cosignature.json").read_text("utf-8")
)

LOG, WITNESS, OTHER = (Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32) for n in (1, 2, 3))
ORIGIN = "lapor-node/id-64"
W_NAME = "lapor-node/id/witness"
CP = Checkpoint(ORIGIN, 7, bytes(range(32)))
CP_OTHER = Checkpoint(ORIGIN, 7, bytes(32))
T = 1_796_000_000


def _signed(cp: Checkpoint = CP) -> bytes:
    return sign_checkpoint(cp, ORIGIN, LOG)


def _cosigned(cp: Checkpoint = CP, key: Ed25519PrivateKey = WITNESS, t: int = T) -> bytes:
    signed = _signed(cp)
    return signed + cosign(cp.to_body(), W_NAME, key, t).line().encode()


def _witness_key(key: Ed25519PrivateKey = WITNESS) -> CosignerKey:
    return CosignerKey.from_public_key(W_NAME, key.public_key())


# --- the spec's own examples ------------------------------------------------------------


def test_spec_signed_message_example() -> None:
    """signed_message builds the spec's example message byte for byte."""
    example = DATA["signed_message"]
    built = signed_message(example["checkpoint"].encode(), example["timestamp"])
    assert built == example["message"].encode()


def test_spec_cosigned_note_example_parses() -> None:
    """The spec's cosignature line reads as 4-byte key ID, timestamp 1679315147 (the time its
    signed-message example shows) and a 64-byte signature."""
    example = DATA["cosigned_note"]
    text, signatures = split_note(example["note"].encode())
    line = next(s for s in signatures if s.name == example["witness_name"])
    cosignature = parse_line(line)
    assert cosignature.timestamp == DATA["signed_message"]["timestamp"]
    assert len(cosignature.signature) == 64
    assert text == DATA["signed_message"]["checkpoint"].encode()
    assert cosignature.line() == example["note"].splitlines(keepends=True)[-1]


def test_spec_response_example_timestamps_over_2_63_are_refused() -> None:
    """Lines whose timestamp exceeds 2**63 - 1 (two in tlog-witness's example response) are
    refused; the third reads."""
    lines = DATA["add_checkpoint_response"]["body"].encode()
    _, signatures = split_note(b"x\n\n" + lines)
    results = []
    for s in signatures:
        try:
            results.append(parse_line(s).timestamp)
        except ValidationError:
            results.append(None)
    assert results[0] is None and results[1] is None
    assert results[2] is not None and results[2] <= MAX_TIMESTAMP


# --- key IDs and verifier keys ----------------------------------------------------------


def test_key_id_uses_type_0x04_and_differs_from_the_note_key_id() -> None:
    """The cosigner key ID is SHA-256(name || \\n || 0x04 || key)[:4], not the 0x01 note one."""
    public = WITNESS.public_key().public_bytes_raw()
    want = hashlib.sha256(W_NAME.encode() + b"\n\x04" + public).digest()[:4]
    assert key_id(W_NAME, public) == want
    assert key_id(W_NAME, public) != note.key_id(W_NAME, public)


def test_vkey_round_trip_and_type_check() -> None:
    """A cosigner vkey round-trips; a note vkey (type 0x01) is not a cosigner key."""
    key = _witness_key()
    assert parse_vkey(key.vkey) == key
    log_vkey = note.format_vkey(ORIGIN, LOG.public_key().public_bytes_raw())
    with pytest.raises(ValidationError, match="type 0x04"):
        parse_vkey(log_vkey)
    with pytest.raises(ValidationError, match="key ID"):
        parse_vkey(key.vkey.replace(key.key_id.hex(), "00000000"))


# --- sign and verify --------------------------------------------------------------------


def test_cosignature_verifies_and_reports_its_time() -> None:
    """A cosignature made by cosign verifies under its key and carries its timestamp."""
    found = find_cosignature(_cosigned(), _witness_key())
    assert found.timestamp == T and found.name == W_NAME


def test_cosigned_note_still_opens_with_the_log_key() -> None:
    """The extra cosignature line leaves the log's own signature valid and the note parseable."""
    log = note.Verifier.from_public_key(ORIGIN, LOG.public_key())
    assert open_checkpoint(_cosigned(), log) == CP


@pytest.mark.parametrize(
    "case",
    [
        pytest.param("other-checkpoint", id="other-checkpoint"),
        pytest.param("wrong-key", id="wrong-key"),
        pytest.param("wrong-time", id="wrong-time"),
    ],
)
def test_cosignature_fails(case: str) -> None:
    """A cosignature moved to another checkpoint, checked under another key, or with its
    timestamp changed does not verify."""
    if case == "other-checkpoint":
        line = cosign(CP.to_body(), W_NAME, WITNESS, T).line().encode()
        moved = _signed(CP_OTHER) + line
        with pytest.raises(SignatureError, match="does not verify"):
            find_cosignature(moved, _witness_key())
    elif case == "wrong-key":
        # Same name, another key: the key ID differs, so the line is not this key's.
        with pytest.raises(SignatureError, match="found none"):
            find_cosignature(_cosigned(key=OTHER), _witness_key())
    else:
        good = cosign(CP.to_body(), W_NAME, WITNESS, T)
        shifted = Cosignature(good.name, good.key_id, T + 1, good.signature)
        with pytest.raises(SignatureError, match="does not verify"):
            find_cosignature(_signed() + shifted.line().encode(), _witness_key())


def test_cosignature_is_not_a_note_signature() -> None:
    """A cosignature line is ignored by a note verifier of the same name and public key."""
    same = note.Verifier.from_public_key(W_NAME, WITNESS.public_key())
    with pytest.raises(SignatureError):
        note.open_note(_cosigned(), [same])


def test_line_format() -> None:
    """A line is '— <name> base64(key ID || u64 big-endian time || signature)' + newline."""
    c = cosign(CP.to_body(), W_NAME, WITNESS, T)
    prefix, name, blob = c.line().rstrip("\n").split(" ")
    raw = base64.b64decode(blob)
    assert prefix == "\u2014" and name == W_NAME and len(raw) == 76
    assert raw[:4] == c.key_id and int.from_bytes(raw[4:12], "big") == T


@pytest.mark.parametrize("t", [-1, MAX_TIMESTAMP + 1])
def test_timestamp_range(t: int) -> None:
    """Timestamps outside [0, 2**63) are refused."""
    with pytest.raises(ValidationError, match="timestamp"):
        signed_message(CP.to_body(), t)
