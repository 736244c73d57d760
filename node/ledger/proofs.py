"""Inclusion proof documents: one entry, its audit path, and the signed checkpoint.

Pure: values in, a JSON-ready dict out, and back. A document is `lapor-node/inclusion-proof`
version 1 (docs/auditor-guide.md): {"format", "version", "origin", "leaf_index",
"tree_size", "entry" (optional), "leaf_hash", "audit_path", "root", "checkpoint"}, bytes in
base64, the checkpoint as its signed note text.

Invariants: `check_proof_document` trusts nothing in the document but what it verifies
under the vkey the auditor gives: it returns only if the note verifies and names the
proof's size and root, the leaf hash is the entry's (when the entry is given), and the
path leads from the leaf to that root; otherwise it raises.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from node.errors import ValidationError
from node.ledger._fields import b64, read_bytes, read_int, read_str
from node.ledger.checkpoint import Checkpoint
from node.ledger.merkle import leaf_hash, verify_inclusion
from node.ledger.note import open_checkpoint, parse_vkey

__all__ = ["PROOF_FORMAT", "PROOF_VERSION", "check_proof_document", "proof_document"]

PROOF_FORMAT = "lapor-node/inclusion-proof"
PROOF_VERSION = 1


def proof_document(
    *,
    origin: str,
    index: int,
    size: int,
    entry: bytes,
    path: Iterable[bytes],
    root: bytes,
    note: bytes,
) -> dict[str, Any]:
    """The documented JSON form of an inclusion proof with its signed checkpoint."""
    return {
        "format": PROOF_FORMAT,
        "version": PROOF_VERSION,
        "origin": origin,
        "leaf_index": index,
        "tree_size": size,
        "entry": b64(entry),
        "leaf_hash": b64(leaf_hash(entry)),
        "audit_path": [b64(p) for p in path],
        "root": b64(root),
        "checkpoint": note.decode("utf-8"),
    }


def check_proof_document(doc: dict[str, Any], vkey: str) -> Checkpoint:
    """Verify a proof document against a trusted vkey; return the checkpoint it proves into.

    Steps: 1. the checkpoint note verifies under `vkey` and names the proof's size and
    root; 2. the leaf hash is SHA-256(0x00 || entry); 3. the audit path leads from the leaf
    to the root (RFC 9162 section 2.1.3.2). Raises SignatureError, ProofError or
    ValidationError.
    """
    if doc.get("format") != PROOF_FORMAT or doc.get("version") != PROOF_VERSION:
        raise ValidationError(f"expected {PROOF_FORMAT} version {PROOF_VERSION}")
    verifier = parse_vkey(vkey)
    cp = open_checkpoint(read_str(doc, "checkpoint").encode("utf-8"), verifier)
    size, index = read_int(doc, "tree_size"), read_int(doc, "leaf_index")
    root = read_bytes(doc, "root")
    if cp.size != size or cp.root != root:
        raise ValidationError(
            f"expected the checkpoint to be of size {size} with the proof's "
            f"root, found size {cp.size}"
        )
    leaf = read_bytes(doc, "leaf_hash")
    if "entry" in doc and leaf_hash(read_bytes(doc, "entry")) != leaf:
        raise ValidationError("expected leaf_hash = SHA-256(0x00 || entry), found another")
    path = doc.get("audit_path")
    if not isinstance(path, list):
        raise ValidationError("expected audit_path as a list")
    verify_inclusion(leaf, index, size, [read_bytes({"p": p}, "p") for p in path], root)
    return cp
