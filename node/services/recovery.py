"""The recovery path after losing data: a signed discontinuity, never a second history.

A node whose database is older than its signing fence (deleted and restored from a day-old
backup) must not start again as if nothing happened: its peers hold checkpoints of the
history it lost. `lapor-node backup restore FOLDER --recover --reason TEXT` (`recover`):

  1. checks the backup (node.services.backup: checksums, this node's, this node's keys)
     and refuses if it is NOT older than the fence (nothing was lost: restore it plainly);
  2. restores it into a staged copy (SQLite) or the empty database (PostgreSQL), and there,
     in one transaction (node.services.rotation.discontinue): records HistoryDiscontinued
     at index r = the restored ledger's size, holding a key rotation to a new key
     generation that states the discontinuity (node.ledger.discontinuity: the fenced note,
     r and the root at r, the reason, the time) and is signed by the old and the new key;
     signs checkpoint r + 1 with the NEW key; queues the rotation to every linked peer in
     envelopes signed with the old key, which they pin; the fence is replaced by
     checkpoint r + 1 at commit (node.services.fence, invariant 5);
  3. only then puts the database in place; the key files are the new generation's.

A failure before step 3 leaves the node's database and fence as they were.

Peers follow the rotation through the existing path (node.services.rotation.follow records
PeerKeyRotated, with the statement in it); node.services.witness lets the statement
explain the checkpoint they held of the lost history. A peer that received envelopes of
the lost history has seen sequences this node's restored database reuses: `resequence`
renumbers what was queued since the restore when that peer's Hello says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from node._proto.lapor.v1 import envelope_pb2, trust_pb2
from node.clock import Clock, SystemClock
from node.config import NodeConfig
from node.crypto.keyfiles import read_file
from node.crypto.signing import SigningKey
from node.envelopes import seal
from node.errors import FenceError, IntegrityError, StateError, ValidationError
from node.ledger.checkpoint import origin_for
from node.services import backup, fence, rotation
from node.services._keys import open_key
from node.services.context import NodeContext
from node.store import queries, tree
from node.store.db import Database
from node.store.models import OutboxRow

__all__ = ["MAX_REASON", "Recovered", "recover", "resequence"]

MAX_REASON = 500


@dataclass(frozen=True)
class Recovered:
    """What the recovery path did."""

    manifest: backup.Manifest
    fenced_size: int
    fenced_root: bytes
    restart_size: int
    restart_root: bytes
    entry_index: int
    new_key: bytes
    peers: tuple[str, ...]


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ValidationError('say why the ledger is discontinued (--reason "...")')
    if len(reason) > MAX_REASON or "\n" in reason:
        raise ValidationError(f"the reason must be one line of at most {MAX_REASON} characters")
    return reason


def recover(config: NodeConfig, folder: Path, reason: str, clock: Clock | None = None) -> Recovered:
    """Restore the backup in `folder` and end the lost history (module steps 1-3)."""
    reason = _check_reason(reason)
    clock = clock or SystemClock()
    fenced = fence.read(config)
    if fenced is None:
        raise StateError(
            "this node has no signing fence, so it has signed nothing a backup could lose: "
            "restore without --recover"
        )
    done: list[Recovered] = []

    def discontinue(db: Database, manifest: backup.Manifest) -> None:
        db.upgrade()
        with db.read() as session:
            try:  # 1. a backup that holds the fenced history loses nothing
                fence.check_in(session, config, origin_for(config.node_id), manifest.ledger_size)
            except FenceError:
                pass
            else:
                raise StateError(
                    "this backup holds everything this node has signed (it extends the "
                    "signing fence): restore it without --recover"
                )
            size = queries.ledger_size(session)
            root = tree.root(session, size)
        ctx = NodeContext(config, db, open_key(config, db), clock)
        statement = trust_pb2.Discontinuity(
            fenced_checkpoint=fenced.note,
            fenced_size=fenced.size,
            fenced_root=fenced.checkpoint.root,
            restart_size=size,
            restart_root=root,
            reason=reason,
        )
        statement.declared_at.FromDatetime(clock.now())
        rotated = rotation.discontinue(ctx, statement)  # 2.
        done.append(
            Recovered(
                manifest,
                fenced.size,
                fenced.checkpoint.root,
                size,
                root,
                rotated.ledger_index,
                rotated.new_key,
                rotated.peers,
            )
        )

    backup.restore(config, folder, recover=discontinue)  # 3.
    return done[0]


def resequence(session: Session, ctx: NodeContext, peer: str, through: int) -> bool:
    """A peer acknowledges sequence `through`, at or beyond what this node's restored
    database has sent it: it received envelopes of the history this node lost. If this
    node's discontinuity envelope to it is still unacknowledged, the envelopes queued
    since the restore are renumbered to follow `through` (and signed again, each by the
    key that signed it: the rotation by the retired key `discontinue` kept), so the peer
    meets no reused sequence (True); otherwise nothing changes (False) and the caller
    refuses the acknowledgement as before."""
    link = queries.get_link(session, peer, lock=True)
    if link is None or through < link.next_out_seq:
        return False
    rows = list(
        session.scalars(
            select(OutboxRow)
            .where(OutboxRow.peer_id == peer, OutboxRow.sequence > link.acked_out_seq)
            .order_by(OutboxRow.sequence.desc())
        )
    )
    # What the restored database had queued before the statement, the peer already has
    # (it acknowledged beyond it); the statement and what followed it are renumbered.
    stated = [row.sequence for row in rows if row.kind == "key_rotation" and _states(row)]
    if not stated:
        return False
    first = min(stated)
    rows = [row for row in rows if row.sequence >= first]
    keys = {bytes(key.key_id): key for key in _signing_keys(ctx)}
    for row in rows:  # highest first: the new numbers never collide with the old ones
        envelope = envelope_pb2.Envelope.FromString(row.body)
        envelope.sequence = row.sequence = through + 1 + (row.sequence - first)
        key = keys.get(row.key_id)
        if key is None:
            raise IntegrityError(
                f"an envelope queued for {peer} is signed by a key this node no longer has; "
                "it cannot be renumbered"
            )
        signed = seal(envelope, key)
        row.body, row.signature = signed.body, signed.signature
        session.flush()
    link.next_out_seq = through + 1 + len(rows)
    session.flush()  # the caller's acknowledgement reads the link's new next_out_seq
    return True


def _states(row: OutboxRow) -> bool:
    envelope = envelope_pb2.Envelope.FromString(row.body)
    rotated = trust_pb2.KeyRotation.FromString(envelope.key_rotation.rotation)
    return rotated.HasField("discontinuity")


def _signing_keys(ctx: NodeContext) -> list[SigningKey]:
    """The current key and the retired ones a recovery kept (rotation.discontinue)."""
    keys = [ctx.signing_key]
    name = ctx.config.signing_key.name
    for path in sorted(ctx.config.signing_key.parent.glob(f"{name}.*.retired")):
        keys.append(SigningKey.from_pem(read_file(path, "retired signing key")))
    return keys
