"""Signing, storing and reading this node's checkpoints.

A checkpoint is a C2SP tlog-checkpoint body (origin `lapor-node/<node_id>`, size, root)
signed as a C2SP signed note with the node's Ed25519 key under the key name = the origin.

Signing follows these steps in one write transaction, holding the ledger-head lock so the
tree cannot grow meanwhile and two signers cannot interleave:
  1. read the ledger size n; if the latest stored checkpoint already has size n, return it;
  2. open the latest stored checkpoint with this node's own key, or an earlier one if it
     was signed before a key rotation (a stored note that does not verify, or whose root
     is not the stored tree's, stops everything);
  3. compute the root at n and the consistency proof from the latest size to n, both from
     the stored tree with O(log n) reads;
  4. check_extends(latest, new, proof): never sign a checkpoint inconsistent with one
     already signed (c2sp.org/tlog-checkpoint, "Signatures"); and the same against the
     signing fence, the largest checkpoint signed, kept outside the database
     (node.services.fence), which a deleted, restored or rewritten database cannot move;
  5. sign, store, commit; the fence advances to the new note as the commit completes,
     before it returns, and so before the note can leave the node.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.errors import InconsistentCheckpointError, SignatureError
from node.ledger.checkpoint import Checkpoint, check_extends, origin_for
from node.ledger.note import Verifier, open_checkpoint, sign_checkpoint
from node.services import fence
from node.services._keys import refresh_key
from node.services.context import NodeContext
from node.store import tree
from node.store.models import CheckpointRow, OwnKey

__all__ = [
    "SignedCheckpoint",
    "latest",
    "origin",
    "own_verifiers",
    "sign",
    "sign_in",
    "verifier",
    "verifier_key",
]


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint this node signed, with the note exactly as signed."""

    size: int
    root: bytes
    note: bytes
    signed_at: dt.datetime


def origin(ctx: NodeContext) -> str:
    """This node's log origin, `lapor-node/<node_id>`; also its note key name."""
    return origin_for(ctx.node_id)


def verifier(ctx: NodeContext) -> Verifier:
    """The note verifier of this node's signing key, under the key name = the origin."""
    return Verifier.from_public_key(origin(ctx), ctx.signing_key.public.raw)


def own_verifiers(ctx: NodeContext, session: Session) -> list[Verifier]:
    """Note verifiers of every key this node has had (node.services.rotation)."""
    keys = list(session.scalars(select(OwnKey.signing_key).order_by(OwnKey.id)))
    keys = keys or [ctx.signing_key.public.raw]
    return [Verifier.from_public_key(origin(ctx), key) for key in keys]


def verifier_key(ctx: NodeContext) -> str:
    """The C2SP verifier key text: `<origin>+<hex key id>+<base64(0x01 || public key)>`."""
    return verifier(ctx).vkey


def _view(row: CheckpointRow) -> SignedCheckpoint:
    return SignedCheckpoint(row.size, row.root, row.note, row.signed_at)


def _open_stored(ctx: NodeContext, session: Session, row: CheckpointRow) -> Checkpoint:
    """Step 2: the stored note verifies under our key and matches the stored tree."""
    try:
        cp = open_checkpoint(row.note, verifier(ctx))
    except SignatureError:
        # Signed before a key rotation: by one of this node's earlier keys.
        cp = open_checkpoint(row.note, own_verifiers(ctx, session))
    if cp.origin != origin(ctx) or cp.size != row.size or cp.root != row.root:
        raise InconsistentCheckpointError(
            f"expected the stored checkpoint at size {row.size} to say what its row says, "
            f"found a note for {cp.origin} at size {cp.size}"
        )
    if not hmac.compare_digest(tree.root(session, cp.size), cp.root):
        raise InconsistentCheckpointError(
            f"expected the stored tree at size {cp.size} to have the signed root "
            f"{cp.root.hex()}, found another; the ledger tree was changed"
        )
    return cp


def sign(ctx: NodeContext) -> tuple[SignedCheckpoint, bool]:
    """Sign a checkpoint of the current tree unless the latest one already covers it.

    Returns the latest checkpoint and whether it was signed now. Raises
    InconsistentCheckpointError (and signs nothing) if the new tree does not extend the
    latest signed one, and SignatureError if the latest stored note does not verify.
    """
    with ctx.db.write() as session:
        return sign_in(session, ctx)


def sign_in(session: Session, ctx: NodeContext) -> tuple[SignedCheckpoint, bool]:
    """`sign`, inside the caller's write transaction: the checkpoint then covers every
    entry the transaction has appended so far, and commits (or not) with them."""
    # 1. The size, under the head lock; and the key, in case another process rotated it.
    size = tree.lock_head(session)
    refresh_key(session, ctx)
    previous_row = tree.latest_checkpoint(session)
    if previous_row is not None and previous_row.size == size:
        return _view(previous_row), False
    # 2. The latest signed checkpoint, verified.
    previous = None if previous_row is None else _open_stored(ctx, session, previous_row)
    # 3. The new head and the proof that it extends the previous one.
    new = Checkpoint(origin(ctx), size, tree.root(session, size))
    proof = [] if previous is None else tree.consistency_proof(session, previous.size, size)
    # 4. Never sign two inconsistent checkpoints.
    check_extends(previous, new, proof)
    fence.check_in(session, ctx.config, new.origin, size, previous_row)
    # 5. Sign and store; the fence follows at commit.
    note = sign_checkpoint(new, origin(ctx), ctx.signing_key.ed25519)
    now = ctx.clock.now()
    tree.add_checkpoint(session, size, new.root, note, now)
    fence.advance_at_commit(session, ctx.config, note, size)
    return SignedCheckpoint(size, new.root, note, now), True


def latest(ctx: NodeContext) -> SignedCheckpoint | None:
    """The latest checkpoint this node signed, or None if it has signed none."""
    with ctx.db.read() as session:
        row = tree.latest_checkpoint(session)
        return None if row is None else _view(row)
