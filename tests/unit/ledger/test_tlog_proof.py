"""C2SP tlog-proof (node.ledger.proofs.TlogProof): the spec's example, round trips, offline
verification, and consistency proofs computed from a stream of leaves."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import ProofError, SignatureError, ValidationError
from node.ledger.checkpoint import Checkpoint
from node.ledger.merkle import MemoryTree, leaf_hash
from node.ledger.note import format_vkey, sign_checkpoint
from node.ledger.proofs import (
    TlogProof,
    check_tlog_proof,
    consistency_from_leaves,
    proof_document,
    tlog_proof_from_document,
)

EXAMPLE = json.loads(
    (Path(__file__).resolve().parents[1] / "transparency/data/c2sp-tlog-proof.json").read_text(
        encoding="utf-8"
    )
)
ORIGIN = "lapor-node/id-64"
KEY = Ed25519PrivateKey.generate()
VKEY = format_vkey(ORIGIN, KEY.public_key().public_bytes_raw())
ENTRIES = [f"entry {n}".encode() * 3 for n in range(21)]
TREE = MemoryTree(leaf_hash(e) for e in ENTRIES)


def _proof(index: int, size: int = len(ENTRIES), *, key: Ed25519PrivateKey = KEY) -> TlogProof:
    note = sign_checkpoint(Checkpoint(ORIGIN, size, TREE.root(size)), ORIGIN, key)
    doc = proof_document(
        origin=ORIGIN,
        index=index,
        size=size,
        entry=ENTRIES[index],
        path=TREE.inclusion_proof(index, size),
        root=TREE.root(size),
        note=note,
    )
    return tlog_proof_from_document(doc)


def test_the_specs_example_parses_and_round_trips() -> None:
    """The spec's published proof parses to the index, path and checkpoint it states, and
    writing it again gives the same bytes."""
    text = EXAMPLE["text"].encode("utf-8")
    proof = TlogProof.parse(text)
    assert proof.index == EXAMPLE["index"]
    assert len(proof.path) == EXAMPLE["path_length"]
    assert proof.extra is not None
    body = f"{EXAMPLE['origin']}\n{EXAMPLE['size']}\n".encode()
    assert proof.checkpoint.startswith(body)
    for signer in EXAMPLE["signers"]:
        assert f"\u2014 {signer} ".encode() in proof.checkpoint
    assert proof.to_text() == text


@pytest.mark.parametrize("index", [0, 1, 7, 20])
def test_a_proof_verifies_offline(index: int) -> None:
    """A proof round-trips through its text and verifies under the log's key, the entry
    taken from its extra data."""
    proof = TlogProof.parse(_proof(index).to_text())
    cp = check_tlog_proof(proof, VKEY)
    assert (cp.origin, cp.size, proof.index) == (ORIGIN, len(ENTRIES), index)
    assert proof.to_text().startswith(b"c2sp.org/tlog-proof@v1\nextra ")


def test_a_proof_without_extra_needs_the_entry() -> None:
    """Without extra data the entry must be given, and only the right one verifies."""
    bare = TlogProof(3, _proof(3).path, _proof(3).checkpoint)
    assert "extra" not in bare.to_text().decode()
    with pytest.raises(ValidationError, match="entry"):
        check_tlog_proof(bare, VKEY)
    check_tlog_proof(bare, VKEY, ENTRIES[3])
    with pytest.raises(ProofError):
        check_tlog_proof(bare, VKEY, ENTRIES[4])


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("another entry as extra", lambda p: TlogProof(p.index, p.path, p.checkpoint, b"x")),
        ("another index", lambda p: TlogProof(p.index + 1, p.path, p.checkpoint, p.extra)),
        (
            "a path hash changed",
            lambda p: TlogProof(p.index, (bytes(32), *p.path[1:]), p.checkpoint, p.extra),
        ),
        ("a path hash missing", lambda p: TlogProof(p.index, p.path[1:], p.checkpoint, p.extra)),
    ],
)
def test_a_changed_proof_fails(name: str, change: object) -> None:
    """Any change to the entry, index or path fails the check (ProofError)."""
    assert callable(change)
    with pytest.raises(ProofError):
        check_tlog_proof(change(_proof(5)), VKEY)


def test_a_proof_under_another_key_fails() -> None:
    """A checkpoint signed by another key than the trusted one is refused."""
    with pytest.raises(SignatureError):
        check_tlog_proof(_proof(5, key=Ed25519PrivateKey.generate()), VKEY)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("no header", b"index 1\n\nx\n"),
        ("another version", b"c2sp.org/tlog-proof@v2\nindex 1\n\nx\n"),
        ("no index", b"c2sp.org/tlog-proof@v1\n\nx\n"),
        ("leading zero", b"c2sp.org/tlog-proof@v1\nindex 01\n\nx\n"),
        ("negative index", b"c2sp.org/tlog-proof@v1\nindex -1\n\nx\n"),
        ("short hash", b"c2sp.org/tlog-proof@v1\nindex 1\nAAAA\n\nx\n"),
        ("not base64", b"c2sp.org/tlog-proof@v1\nindex 1\n!!!!\n\nx\n"),
        ("no empty line", b"c2sp.org/tlog-proof@v1\nindex 1\n"),
        ("extra after index", b"c2sp.org/tlog-proof@v1\nindex 1\nextra AAAA\n\nx\n"),
    ],
)
def test_malformed_proofs_are_refused(name: str, text: bytes) -> None:
    """Text that is not the spec's format is refused with ValidationError."""
    with pytest.raises(ValidationError):
        TlogProof.parse(text)


@pytest.mark.parametrize(
    ("first", "second"),
    [(0, 0), (0, 21), (1, 1), (1, 2), (3, 7), (4, 8), (5, 21), (16, 21), (21, 21)],
)
def test_consistency_from_leaves_equals_the_trees(first: int, second: int) -> None:
    """One pass over the leaves gives the same proof and roots as the whole tree."""
    leaves = iter([leaf_hash(e) for e in ENTRIES])
    proof, root1, root2 = consistency_from_leaves(leaves, first, second)
    assert proof == TREE.consistency_proof(first, second)
    assert (root1, root2) == (TREE.root(first), TREE.root(second))


def test_consistency_from_too_few_leaves_is_refused() -> None:
    """A stream shorter than the second size is refused, not padded."""
    with pytest.raises(ValidationError, match="at least 30"):
        consistency_from_leaves((leaf_hash(os.urandom(4)) for _ in range(21)), 3, 30)


@settings(max_examples=300, deadline=None, database=None)
@given(
    data=st.binary(max_size=300) | st.builds(lambda b: _proof(3).to_text()[: len(b)], st.binary())
)
def test_any_bytes_parse_to_their_own_text_or_are_refused(data: bytes) -> None:
    """Whatever a file holds, TlogProof.parse returns the proof it spells, or raises
    ValidationError; nothing else escapes."""
    try:
        proof = TlogProof.parse(data)
    except ValidationError:
        return
    assert proof.to_text() == data
