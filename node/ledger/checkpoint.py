"""C2SP tlog-checkpoint bodies, and the guard that keeps a node's checkpoints consistent.

A checkpoint body (c2sp.org/tlog-checkpoint, "Note text") is three or more non-empty lines,
each ending in a newline:

    <origin>
    <tree size, ASCII decimal, no leading zeroes>
    <base64 of the 32-byte RFC 6962 root>
    [extension lines]

Invariants:

- `Checkpoint.parse(cp.to_body()) == cp` for every valid `cp`, and `parse` accepts only
  bytes that `to_body` could have produced: one encoding per checkpoint, so a signature
  over a body signs exactly one value.
- A node's origin is `lapor-node/<node_id>` (DESIGN.md, "Ledger").
- A node never signs two checkpoints that are inconsistent with each other
  (tlog-checkpoint, "Signatures"): `check_extends` is the test it runs before signing.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from node.errors import InconsistentCheckpointError, ProofError, ValidationError
from node.ledger.merkle import HASH_SIZE, verify_consistency

__all__ = [
    "MAX_TREE_SIZE",
    "ORIGIN_PREFIX",
    "Checkpoint",
    "check_extends",
    "origin_for",
]

ORIGIN_PREFIX = "lapor-node/"
MAX_TREE_SIZE = 2**63 - 1
"""Largest accepted tree size: it must fit a signed 64-bit database column."""

_NODE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def origin_for(node_id: str) -> str:
    """Return the checkpoint origin of a node: `lapor-node/<node_id>`."""
    if not isinstance(node_id, str) or _NODE_ID.fullmatch(node_id) is None:
        raise ValidationError(
            f"expected a node id matching ^[a-z0-9][a-z0-9-]{{0,62}}$, found {node_id!r}"
        )
    return ORIGIN_PREFIX + node_id


@dataclass(frozen=True)
class Checkpoint:
    """One signed tree head: the log's origin, its size, and its root."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line("origin", self.origin)
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise ValidationError(f"expected an integer tree size, found {self.size!r}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise ValidationError(f"expected a tree size in [0, 2**63), found {self.size}")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise ValidationError(
                f"expected a root of {HASH_SIZE} bytes, found {_describe(self.root)}"
            )
        if not isinstance(self.extensions, tuple):
            raise ValidationError(
                f"expected extensions as a tuple, found {type(self.extensions).__name__}"
            )
        for i, line in enumerate(self.extensions):
            _check_line(f"extension line {i}", line)

    def to_body(self) -> bytes:
        """Return the checkpoint note text, ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        lines.extend(self.extensions)
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @classmethod
    def parse(cls, body: bytes) -> Checkpoint:
        """Parse a checkpoint note text strictly; raise ValidationError if malformed."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValidationError(
                f"expected a UTF-8 checkpoint, found invalid byte at {e.start}"
            ) from e
        if not text.endswith("\n"):
            raise ValidationError("expected the checkpoint to end in a newline, found none")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise ValidationError(f"expected at least 3 checkpoint lines, found {len(lines)}")
        origin, size_text, root_text, *extensions = lines
        if _DECIMAL.fullmatch(size_text) is None:
            raise ValidationError(
                f"expected the tree size in canonical decimal, found {size_text[:32]!r}"
            )
        # A size longer than MAX_TREE_SIZE's digits is rejected without converting it.
        if len(size_text) > len(str(MAX_TREE_SIZE)):
            raise ValidationError(f"expected a tree size below 2**63, found {size_text[:32]}...")
        root = _decode_root(root_text)
        # __post_init__ checks the origin, the size range and the extension lines.
        return cls(origin, int(size_text), root, tuple(extensions))


def check_extends(previous: Checkpoint | None, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Check that `new` may be signed after `previous`: same log, grown, consistent.

    `proof` is the consistency proof from previous.size to new.size. With no previous
    checkpoint there is nothing to contradict and the proof must be empty. Raises
    InconsistentCheckpointError, from the ProofError when the proof fails.
    """
    if previous is None:
        if proof:
            raise ValidationError(
                f"expected no proof for a first checkpoint, found {len(proof)} hashes"
            )
        return
    if new.origin != previous.origin:
        raise InconsistentCheckpointError(
            f"expected origin {previous.origin!r}, found {new.origin!r}"
        )
    if new.size < previous.size:
        raise InconsistentCheckpointError(
            f"expected a tree size of at least {previous.size} for {new.origin}, found {new.size}"
        )
    try:
        verify_consistency(previous.size, new.size, previous.root, new.root, proof)
    except ProofError as e:
        raise InconsistentCheckpointError(
            f"expected {new.origin} at size {new.size} to extend size {previous.size}: {e}"
        ) from e


def _check_line(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValidationError(f"expected {name} as text, found {type(value).__name__}")
    if not value:
        raise ValidationError(f"expected a non-empty {name}, found an empty line")
    if "\n" in value or _CONTROL.search(value):
        raise ValidationError(f"expected {name} without control characters, found {value!r}")


def _decode_root(text: str) -> bytes:
    try:
        root = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as e:
        raise ValidationError(f"expected the root in base64, found {text[:64]!r}") from e
    if len(root) != HASH_SIZE:
        raise ValidationError(f"expected a root of {HASH_SIZE} bytes, found {len(root)}")
    if base64.b64encode(root).decode("ascii") != text:
        raise ValidationError(f"expected canonical base64 for the root, found {text!r}")
    return root


def _describe(value: object) -> str:
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return type(value).__name__
