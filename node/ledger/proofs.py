"""Inclusion proof documents: one entry, its audit path, and the signed checkpoint; as
this project's JSON, and as a C2SP tlog-proof (c2sp.org/tlog-proof).

Pure: values in, a JSON-ready dict out, and back. A document is `lapor-node/inclusion-proof`
version 1 (docs/auditor-guide.md): {"format", "version", "origin", "leaf_index",
"tree_size", "entry" (optional), "leaf_hash", "audit_path", "root", "checkpoint"}, bytes in
base64, the checkpoint as its signed note text.

Invariants: `check_proof_document` trusts nothing in the document but what it verifies
under the vkey the auditor gives: it returns only if the note verifies and names the
proof's size and root, the leaf hash is the entry's (when the entry is given), and the
path leads from the leaf to that root; otherwise it raises.

A tlog-proof (`TlogProof`) is text: `c2sp.org/tlog-proof@v1`, an optional `extra
<base64>` line, `index <N>`, the inclusion path one base64 hash a line (leaf sibling first),
an empty line, then the checkpoint note verbatim (with every signature and cosignature it
carries). The spec leaves the entry out; this node puts the LedgerEntry bytes in `extra`
so the proof stands alone, and `check_tlog_proof` trusts them only because their leaf
hash is the one the path proves. `TlogProof.parse(p.to_text()) == p`, and `parse` accepts
only text `to_text` could have written.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from node.errors import ValidationError
from node.ledger import merkle
from node.ledger._fields import b64, read_bytes, read_int, read_str
from node.ledger.checkpoint import Checkpoint
from node.ledger.merkle import HASH_SIZE, Frontier, Hash, leaf_hash, verify_inclusion
from node.ledger.note import MAX_NOTE_SIZE, open_checkpoint, parse_vkey

__all__ = [
    "PROOF_FORMAT",
    "PROOF_VERSION",
    "TLOG_PROOF_HEADER",
    "TlogProof",
    "check_proof_document",
    "check_tlog_proof",
    "consistency_from_leaves",
    "proof_document",
    "tlog_proof_from_document",
]

TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
_MAX_PATH = 64
_DECIMAL = re.compile(r"0|[1-9][0-9]*")

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


@dataclass(frozen=True)
class TlogProof:
    """A C2SP tlog-proof: a checkpoint note, an index, the inclusion path, and (here) the
    entry as its extra data. Parsed, not verified: see `check_tlog_proof`."""

    index: int
    path: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None

    def to_text(self) -> bytes:
        """The proof as the spec's text (store it as NAME.tlog-proof)."""
        lines = [TLOG_PROOF_HEADER]
        if self.extra is not None:
            lines.append("extra " + b64(self.extra))
        lines.append(f"index {self.index}")
        lines.extend(b64(h) for h in self.path)
        head = "".join(line + "\n" for line in lines) + "\n"
        return head.encode("ascii") + self.checkpoint

    @classmethod
    def parse(cls, data: bytes) -> TlogProof:
        """Parse a tlog-proof strictly (the spec's "Format"); ValidationError if malformed.

        Steps: 1. the first line is `c2sp.org/tlog-proof@v1`; 2. an optional `extra`
        line; 3. `index N`, N decimal without leading zeroes; 4. base64 SHA-256 hashes up
        to an empty line; 5. the rest is the checkpoint note, verbatim (`check_tlog_proof`
        opens it)."""
        if len(data) > MAX_NOTE_SIZE + 64 * (_MAX_PATH + 2):
            raise ValidationError(f"expected a tlog-proof of a few kilobytes, found {len(data)}")
        cut = data.find(b"\n\n")
        if cut < 0:
            raise ValidationError("expected an empty line before the checkpoint, found none")
        try:
            lines = data[:cut].decode("ascii").split("\n")
        except UnicodeDecodeError as e:
            raise ValidationError("expected ASCII lines before the checkpoint") from e
        checkpoint = data[cut + 2 :]
        if lines[0] != TLOG_PROOF_HEADER:
            raise ValidationError(
                f"expected the first line {TLOG_PROOF_HEADER!r}, found {lines[0][:40]!r}"
            )
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith("extra "):
            extra = _b64("extra data", rest.pop(0)[len("extra ") :])
        if not rest or not rest[0].startswith("index "):
            raise ValidationError("expected an `index N` line, found none")
        index_text = rest.pop(0)[len("index ") :]
        if _DECIMAL.fullmatch(index_text) is None or len(index_text) > 19:
            raise ValidationError(f"expected the index in decimal, found {index_text[:24]!r}")
        if len(rest) > _MAX_PATH:
            raise ValidationError(f"expected at most {_MAX_PATH} proof hashes, found {len(rest)}")
        path = tuple(_b64("a proof hash", line) for line in rest)
        if any(len(h) != HASH_SIZE for h in path):
            raise ValidationError(f"expected {HASH_SIZE}-byte proof hashes, found another size")
        proof = cls(int(index_text), path, checkpoint, extra)
        if proof.to_text() != data:
            raise ValidationError("expected the canonical tlog-proof text, found another spelling")
        return proof


def tlog_proof_from_document(doc: dict[str, Any]) -> TlogProof:
    """The tlog-proof of a proof document (`proof_document`), the entry as extra data."""
    path = doc.get("audit_path")
    if not isinstance(path, list):
        raise ValidationError("expected audit_path as a list")
    entry = read_bytes(doc, "entry") if "entry" in doc else None
    return TlogProof(
        index=read_int(doc, "leaf_index"),
        path=tuple(read_bytes({"p": p}, "p") for p in path),
        checkpoint=read_str(doc, "checkpoint").encode("utf-8"),
        extra=entry,
    )


def check_tlog_proof(proof: TlogProof, vkey: str, entry: bytes | None = None) -> Checkpoint:
    """Verify a tlog-proof against a trusted vkey; return the checkpoint it proves into.

    Steps: 1. the checkpoint note verifies under `vkey` (other signatures, e.g. witnesses'
    cosignatures, are left to a policy check); 2. the entry is `entry` if given, else the
    proof's extra data (one of them is needed: the spec carries no entry); 3. the path leads
    from SHA-256(0x00 || entry) at `index` to the checkpoint's root (RFC 9162 2.1.3.2).
    Raises SignatureError, ProofError or ValidationError.
    """
    cp = open_checkpoint(proof.checkpoint, parse_vkey(vkey))
    record = entry if entry is not None else proof.extra
    if record is None:
        raise ValidationError(
            "expected the entry (the proof has no extra data): give the entry's bytes"
        )
    if proof.index >= cp.size:
        raise ValidationError(
            f"expected an index below the checkpoint's size {cp.size}, found {proof.index}"
        )
    verify_inclusion(leaf_hash(record), proof.index, cp.size, proof.path, cp.root)
    return cp


def _b64(what: str, text: str) -> bytes:
    try:
        value = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as e:
        raise ValidationError(f"expected {what} in base64, found {text[:48]!r}") from e
    return value


class _Asked:
    """A NodeReader that answers anything and remembers what was asked."""

    def __init__(self) -> None:
        self.asked: set[tuple[int, int]] = set()

    def node(self, level: int, index: int) -> bytes:
        self.asked.add((level, index))
        return bytes(HASH_SIZE)


class _Answers:
    def __init__(self, nodes: dict[tuple[int, int], Hash]) -> None:
        self.nodes = nodes

    def node(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]


def consistency_from_leaves(
    leaves: Iterable[bytes], size1: int, size2: int
) -> tuple[list[Hash], Hash, Hash]:
    """(PROOF(size1, D[size2]), MTH(D[size1]), MTH(D[size2])) from a stream of leaf hashes
    in index order (e.g. an export's), in one pass holding O(log size2) hashes: the
    subtrees the proof and both roots read are found first by a dry run, then each is
    folded from its leaves as they pass. ValidationError if the stream is too short."""
    if not 0 <= size1 <= size2:
        raise ValidationError(f"expected 0 <= first <= second, found {size1} and {size2}")
    asked = _Asked()
    merkle.consistency_proof(size1, size2, asked)
    merkle.root(size1, asked)
    merkle.root(size2, asked)
    folding = {key: Frontier() for key in asked.asked}
    spans = sorted((i << lv, (i + 1) << lv, (lv, i)) for lv, i in asked.asked)
    count = 0
    for leaf in leaves:
        if count >= size2:
            break
        for start, end, key in spans:  # O(log size2) of them
            if start <= count < end:
                folding[key].append(leaf)
        count += 1
    if count < size2:
        raise ValidationError(f"expected at least {size2} entries, found {count}")
    answers = _Answers({key: f.root() for key, f in folding.items()})
    return (
        merkle.consistency_proof(size1, size2, answers),
        merkle.root(size1, answers),
        merkle.root(size2, answers),
    )
