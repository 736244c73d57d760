"""Parsing tlog-witness add-checkpoint request bodies: the spec's example, and refusals."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from node.errors import ValidationError
from node.ledger.note import split_note
from node.services.cosigning import submit_body
from node.transparency.witness_http import MAX_PROOF_LINES, parse_request

DATA: dict[str, Any] = json.loads(
    (
        Path(__file__).resolve().parents[1] / "ledger" / "data" / "c2sp-tlog-cosignature.json"
    ).read_text("utf-8")
)
EXAMPLE = DATA["add_checkpoint_request"]
NOTE = DATA["cosigned_note"]["note"].encode()
HASH = base64.b64encode(bytes(range(32)))


def test_spec_example_request_parses() -> None:
    """The spec's example body gives its old size, its four proof hashes, and the note with
    both signature lines, whose text is the checkpoint."""
    request = parse_request(EXAMPLE["body"].encode())
    assert request.old_size == EXAMPLE["old_size"]
    assert len(request.proof) == EXAMPLE["proof_lines"]
    assert all(len(h) == 32 for h in request.proof)
    text, signatures = split_note(request.note)
    assert text.startswith(b"example.com/behind-the-sofa\n20852163\n")
    assert len(signatures) == 2


def test_submit_body_round_trips() -> None:
    """What the log side sends is what the witness side reads."""
    proof = [bytes([n]) * 32 for n in range(5)]
    request = parse_request(submit_body(20852014, proof, NOTE))
    assert (request.old_size, list(request.proof), request.note) == (20852014, proof, NOTE)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"old 01\n\n" + NOTE, "old <size>", id="leading-zero"),
        pytest.param(b"old -1\n\n" + NOTE, "old <size>", id="negative"),
        pytest.param(b"new 5\n\n" + NOTE, "old <size>", id="keyword"),
        pytest.param(b"old 5", "old <size>", id="no-newline"),
        pytest.param(b"old 5\n" + HASH + b"\n", "empty line", id="no-blank-line"),
        pytest.param(b"old 5\n\n", "checkpoint note", id="no-note"),
        pytest.param(b"old 5\nnot base64!\n\n" + NOTE, "base64", id="proof-not-base64"),
        pytest.param(b"old 5\n" + HASH[:-4] + b"\n\n" + NOTE, "32-byte hash", id="short-hash"),
        pytest.param(
            b"old 5\n" + (HASH + b"\n") * (MAX_PROOF_LINES + 1) + b"\n" + NOTE,
            "at most 63",
            id="too-many-proof-lines",
        ),
    ],
)
def test_malformed_bodies_are_refused(body: bytes, message: str) -> None:
    """Each malformed body is a ValidationError (400) naming what was expected."""
    with pytest.raises(ValidationError, match=message):
        parse_request(body)
