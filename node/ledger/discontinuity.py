"""A node's signed discontinuity: the statement that ends a lost history. Pure: no I/O.

A node whose database was lost and restored from a copy older than its signing fence
(node.services.fence) cannot go on signing under its key: its peers hold checkpoints of
the lost history, and any new checkpoint would contradict them. Instead it records one
HistoryDiscontinued entry (ledger.proto) at index `restart_size` and hands over to a new
key generation (docs/decisions/0023-recovery-by-discontinuity.md). The entry holds a key
rotation (trust.proto KeyRotation) whose `discontinuity` states:

  - the last checkpoint the node knows it signed: the signed note exactly as signed by
    the old key, with the size and root it states;
  - the size and RFC 6962 root of the ledger it restarts from;
  - the operator's reason, and when.

Rules (`open_discontinuity`, used by the offline verifier, the peers that follow the
rotation, and reconcile):
  1. the rotation verifies (node.crypto.rotation.open_rotation: both keys signed it);
  2. the statement's fenced note is a C2SP signed note for `lapor-node/<node_id>` signed
     by the rotation's OLD key, and states the size and root the statement repeats;
  3. the reason is not empty;
  4. checkpoints of size <= restart_size are the old key's (the restored history), and
     checkpoints of size > restart_size the new key's: the old key never signs a
     checkpoint of the history that follows the discontinuity.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from node._proto.lapor.v1 import trust_pb2
from node.crypto.rotation import open_rotation
from node.errors import SignatureError, ValidationError
from node.ledger.checkpoint import origin_for
from node.ledger.note import Verifier, open_checkpoint

__all__ = ["Discontinuity", "open_discontinuity"]


@dataclass(frozen=True)
class Discontinuity:
    """A verified discontinuity statement of `node_id`."""

    node_id: str
    old_key: bytes
    new_key: bytes
    fenced_size: int
    fenced_root: bytes
    fenced_note: bytes
    restart_size: int
    restart_root: bytes
    reason: str
    declared_at: str

    def to_json(self, index: int) -> dict[str, object]:
        """The statement recorded at ledger entry `index`, for --json output."""
        return {
            "kind": "discontinuity",
            "entry": index,
            "old_checkpoint": {"size": self.fenced_size, "root": self.fenced_root.hex()},
            "restart": {"size": self.restart_size, "root": self.restart_root.hex()},
            "reason": self.reason,
            "declared_at": self.declared_at,
        }

    def describe(self) -> str:
        """One line for operators and auditors."""
        return (
            f"{self.node_id} lost its ledger after size {self.restart_size}: its last "
            f"signed checkpoint was size {self.fenced_size} (root {self.fenced_root.hex()}); "
            f"it restarted from size {self.restart_size} (root {self.restart_root.hex()}) "
            f"under a new key on {self.declared_at}; reason: {self.reason}"
        )


def open_discontinuity(signed: trust_pb2.SignedKeyRotation) -> Discontinuity:
    """Verify a rotation that carries a discontinuity (module rules 1-3); raise
    ValidationError or SignatureError. It does not say whether the old key is one the
    caller trusts: compare `old_key` with your pin, as for any rotation."""
    rotation = open_rotation(signed)  # 1.
    if not rotation.HasField("discontinuity"):
        raise ValidationError(
            f"expected a key rotation of {rotation.node_id} that states a discontinuity, "
            "found a plain rotation"
        )
    stated = rotation.discontinuity
    origin = origin_for(rotation.node_id)
    try:  # 2.
        fenced = open_checkpoint(
            stated.fenced_checkpoint, Verifier.from_public_key(origin, rotation.old_signing_key)
        )
    except SignatureError as e:
        raise SignatureError(
            f"the discontinuity of {rotation.node_id} names a last checkpoint that its old "
            f"key did not sign: {e}"
        ) from e
    if fenced.origin != origin:
        raise ValidationError(
            f"the discontinuity of {rotation.node_id} names a checkpoint of {fenced.origin}"
        )
    if fenced.size != stated.fenced_size or not hmac.compare_digest(
        fenced.root, stated.fenced_root
    ):
        raise ValidationError(
            f"the discontinuity of {rotation.node_id} states size {stated.fenced_size} and "
            f"root {stated.fenced_root.hex()}, but its last checkpoint says size "
            f"{fenced.size} and root {fenced.root.hex()}"
        )
    if len(stated.restart_root) != 32:
        raise ValidationError(
            f"the discontinuity of {rotation.node_id} states a restart root of "
            f"{len(stated.restart_root)} bytes, expected 32"
        )
    if not stated.reason.strip():  # 3.
        raise ValidationError(f"the discontinuity of {rotation.node_id} states no reason")
    return Discontinuity(
        node_id=rotation.node_id,
        old_key=rotation.old_signing_key,
        new_key=rotation.new_signing_key,
        fenced_size=fenced.size,
        fenced_root=fenced.root,
        fenced_note=stated.fenced_checkpoint,
        restart_size=stated.restart_size,
        restart_root=stated.restart_root,
        reason=stated.reason,
        declared_at=stated.declared_at.ToDatetime().isoformat() + "Z",
    )
