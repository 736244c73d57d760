"""What a peer's Hello says about the two ledgers of a link, and what this node does when it
contradicts what this node holds (issue 17, item 4; decision 0029).

Each side's Hello carries its own latest signed checkpoint (`checkpoint`) and the one it
holds of the other side (`held_checkpoint`, with its size and root). On reading the peer's
Hello, inside one write transaction:

  1. the peer's own checkpoint, against the one this node holds of it (`link.peer_checkpoint`):
     a. a note that does not verify under the peer's pinned or earlier keys is left to the
        envelopes (the peer may have rotated its key; its rotation comes after the Hello);
     b. the same note, nothing held, or a larger size (proved later, by the envelopes'
        consistency proofs): nothing to do;
     c. the same size with another root: a fork (two signed heads of one size);
     d. a smaller size: a rollback (the peer's latest signed head is older than one it
        signed before: its database went back in time, or was cut back consistently);
     e. unless a signed discontinuity statement explains it (`_explained`), the evidence
        (both notes, signed by the peer) goes into this node's ledger through
        node.services.witness.record_fork, which suspends the link, logs one critical line
        and counts the fork; the session is refused. A suspended link is refused at its
        Hello, naming the entry (nothing is recorded twice), until `link resume`;
  2. the checkpoint of ours the peer holds, against this node's ledger (witness.check_held):
     if this node never signed exactly that one, either its own database lost history
     (the note verifies under one of our keys: "own-history"), or the peer holds a claim
     we never signed ("unsigned-claim": the peer's database was tampered). This node logs
     one critical line and counts it (once per contradiction, not per redial), records the
     reason as the link's last error and refuses the session. It appends nothing: its own
     ledger is the one in doubt, and appending would only grow a second history (the
     signing fence and the recovery path own that; decision 0021).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from node._proto.lapor.v1 import federation_pb2, ledger_pb2
from node.errors import (
    InconsistentCheckpointError,
    SignatureError,
    StateError,
    ValidationError,
)
from node.ids import NodeId
from node.ledger.checkpoint import Checkpoint, origin_for
from node.ledger.note import Verifier, open_checkpoint, split_note
from node.logs import get_logger
from node.metrics import PEER_FORKS
from node.services import checkpoints, witness
from node.services.context import NodeContext
from node.store import queries, tree
from node.store.models import Link, PeerKey

__all__ = ["HelloNotes", "check_hello", "hello_notes"]


@dataclass(frozen=True)
class HelloNotes:
    """The notes our Hello to a peer carries: our latest checkpoint, and the peer's that we
    hold (empty when there is none)."""

    own: bytes
    held: bytes


def hello_notes(ctx: NodeContext, peer: NodeId) -> HelloNotes:
    with ctx.db.read() as session:
        latest = tree.latest_checkpoint(session)
        link = queries.get_link(session, peer)
        held = b"" if link is None or link.peer_checkpoint is None else link.peer_checkpoint
        return HelloNotes(b"" if latest is None else latest.note, held)


def check_hello(ctx: NodeContext, peer: NodeId, hello: federation_pb2.Hello) -> None:
    """Check what the peer's Hello says of both ledgers (module steps); raise StateError
    (the peer's history contradicts ours: evidence recorded) or
    InconsistentCheckpointError (our history, as the peer holds it, is not in our ledger)."""
    refusal: StateError | InconsistentCheckpointError | None = None
    with ctx.db.write() as session:
        link = queries.get_link(session, peer, lock=True)
        if link is None or link.revoked_at is not None:
            return  # the session's own checks refuse it
        witness.refuse_if_suspended(link)  # its evidence is in the ledger already
        fork = _peer_contradiction(session, link, hello.checkpoint)
        if fork is not None and not _explained(session, ctx, link, fork):
            index = witness.record_fork(session, ctx, link, fork)
            refusal = StateError(
                f"{fork}; this node recorded the evidence in its ledger entry {index} and "
                "refuses further envelopes from you until its operator acts"
            )
        if refusal is None:  # committed with the transaction: the link's last error
            refusal = _own_contradiction(session, ctx, link, hello)
    if refusal is not None:
        raise refusal


def _peer_verifiers(session: Session, link: Link) -> list[Verifier]:
    """The peer's pinned key first, then the keys it had before a rotation."""
    origin = origin_for(link.peer_id)
    earlier = session.scalars(select(PeerKey.signing_key).where(PeerKey.peer_id == link.peer_id))
    keys = [link.signing_key, *(key for key in earlier if key != link.signing_key)]
    return [Verifier.from_public_key(origin, key) for key in keys]


def _peer_contradiction(session: Session, link: Link, note: bytes) -> witness.ForkDetected | None:
    """Step 1: the peer's latest checkpoint against the one held of it."""
    held_note = link.peer_checkpoint
    if not note or held_note is None or hmac.compare_digest(note, held_note):
        return None
    try:
        presented = open_checkpoint(note, _peer_verifiers(session, link))
    except SignatureError:
        return None  # 1a: perhaps a rotated key; the envelopes will tell
    if presented.origin != origin_for(link.peer_id):
        raise ValidationError(
            f"{link.peer_id}'s Hello carries a checkpoint of the log {presented.origin!r}, "
            f"expected its own, {origin_for(link.peer_id)!r}"
        )
    held = Checkpoint.parse(split_note(held_note)[0])  # verified when it was adopted
    if presented.size > held.size:
        return None  # 1b: the envelopes prove it extends what is held
    if presented.size == held.size:
        if hmac.compare_digest(presented.root, held.root):
            return None  # the same head, signed again (another signature line)
        kind, what = ledger_pb2.FORK_KIND_SAME_SIZE, "a different root"
    else:
        kind, what = ledger_pb2.FORK_KIND_ROLLBACK, "an older head"
    return witness.ForkDetected(
        f"{link.peer_id}'s Hello presents its signed checkpoint of size {presented.size} "
        f"(root {presented.root.hex()}), {what} than its checkpoint of size {held.size} "
        f"(root {held.root.hex()}) held here",
        kind=kind,
        held=held_note,
        presented=note,
    )


def _explained(session: Session, ctx: NodeContext, link: Link, fork: witness.ForkDetected) -> bool:
    """Whether a signed discontinuity statement of the peer, recorded in this node's ledger
    (decision 0023), explains the contradiction: it ended the history that the checkpoint
    held here belongs to. Then there is no evidence and no suspension."""
    held = Checkpoint.parse(split_note(fork.held)[0]) if fork.held else None
    if held is None:
        return False
    return witness.discontinuity_for(session, link.peer_id, held.size, held.root) is not None


def _own_contradiction(
    session: Session, ctx: NodeContext, link: Link, hello: federation_pb2.Hello
) -> InconsistentCheckpointError | None:
    """Step 2: the checkpoint of ours the peer says it holds, against our ledger; the error
    to refuse with, reported (once) and kept as the link's last error."""
    size = hello.held_checkpoint_size
    root = hello.held_checkpoint_root or None
    try:
        witness.check_held(session, size, root)
    except InconsistentCheckpointError:
        kind = _whose(session, ctx, hello)
    else:
        return None
    if kind == "own-history":
        what = (
            "this node's database went back in time (restored from an old copy) or was "
            "rewritten; stop the node and restore its latest database: meanwhile it must not "
            "sign or send anything"
        )
    else:
        what = (
            "this node never signed it (the note does not verify under any of its keys): "
            f"{link.peer_id}'s database was changed, and its operator must look into it"
        )
    error = InconsistentCheckpointError(
        f"{kind}: {link.peer_id} holds this node's signed checkpoint of size {size}, which "
        f"this node's ledger does not have: {what}"
    )
    _report_own(ctx, link, kind, size, root, str(error), session)
    return error


def _whose(session: Session, ctx: NodeContext, hello: federation_pb2.Hello) -> str:
    """Whether the held note the peer sent is ours (signed by one of our keys, for our log,
    of the size and root it states): our own history was lost; else a claim never signed."""
    if not hello.held_checkpoint:
        return "own-history"  # a peer that sends no note: as before, our database is in doubt
    try:
        held = open_checkpoint(hello.held_checkpoint, checkpoints.own_verifiers(ctx, session))
    except (SignatureError, ValidationError):
        return "unsigned-claim"
    same = held.size == hello.held_checkpoint_size and (
        not hello.held_checkpoint_root or hmac.compare_digest(held.root, hello.held_checkpoint_root)
    )
    return "own-history" if same and held.origin == checkpoints.origin(ctx) else "unsigned-claim"


def _report_own(
    ctx: NodeContext,
    link: Link,
    kind: str,
    size: int,
    root: bytes | None,
    reason: str,
    session: Session,
) -> None:
    """One critical line and one count per contradiction (a redial finds the same reason in
    the link's last error and says nothing new); the reason becomes the link's last error."""
    if reason in (link.last_error or ""):
        return
    link.last_error = reason
    ours = tree.latest_checkpoint(session)
    PEER_FORKS.labels(peer=link.peer_id, kind=kind).inc()
    get_logger(node_id=ctx.node_id, peer=link.peer_id).critical(
        "ledger.history_contradicted",
        kind=kind,
        held_size=size,
        held_root=None if root is None else root.hex(),
        own_size=0 if ours is None else ours.size,
        own_root=None if ours is None else ours.root.hex(),
        reason=reason,
    )
