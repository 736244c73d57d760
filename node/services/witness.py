"""Witnessing between peers: each side of a link keeps the other's latest signed checkpoint
and accepts a newer one only with a consistency proof, so a node that shows different
histories to different peers, or rewinds its own, is caught by the first peer it talks to.

The checkpoint travels inside every signed envelope (`Envelope.checkpoint`: the sender's
latest when it signed the envelope; a receipt's covers the entry it names). The proof
travels beside it in the Delivery frame, made at send time against the size the receiver
says it holds (its Hello), because only then does the sender know it.

Sender (`present`, for each delivery in send order):
  1. read the checkpoint size N from the envelope; H is the size the receiver holds;
  2. N == H or H == 0: no proof; otherwise the proof between min(N, H) and max(N, H)
     from this node's stored tree (a peer holding more than this node's ledger has means
     this database went back in time: refuse to go on, loudly);
  3. the receiver now holds max(N, H).
Receiver (`check`, inside the envelope's savepoint, after the signature checks):
  1. the checkpoint is a note signed by the peer's pinned key for `lapor-node/<peer>`;
  2. nothing held yet: adopt it (the peer's key vouches for it);
  3. the same note as held: nothing to do;
  4. same size, other root: a fork (conclusive: two signed, contradicting heads);
  5. a different size needs a proof made against the size held; a proof against
     another size is refused (the peer's view is stale; it resumes from our Hello);
  6. the proof joins the two heads (held -> presented when larger, presented -> held when
     smaller); if not, a fork (larger) or a rollback (smaller);
  7. adopt the presented checkpoint when larger. A receipt must name an entry below it.
A fork raises ForkDetected. The caller records the evidence in its own ledger (both notes,
the proof, the envelope that carried it) in the batch's transaction, outside the refused
envelope's savepoint, and the link stays suspended until an operator lifts it
(`lapor-node link resume`).

A signed discontinuity (node.ledger.discontinuity, ADR 0023) is the one thing that
explains a peer's checkpoint that does not extend the one held of it: the peer lost the
end of its ledger, said so under the key pinned for it, and continues under a new key.
  - Receiver: the key_rotation envelope that carries the statement (from the pinned key)
    carries the new generation's first checkpoint, signed by the NEW key; it replaces
    the held one without a proof (`_discontinued`); rotation.follow then records the
    statement (PeerKeyRotated) and re-pins. Without a valid statement from the pinned
    key, the same checkpoint is the fork or rollback it looks like.
  - Sender (the recovered node): a peer's Hello may hold our checkpoint of the lost
    history; `check_held` accepts it when our own statement covers it, and `present`
    sends no proof against it (the peer's next envelope from us is the statement).
  - `discontinuity_for(session, peer, held_size)`: the recorded statement of `peer`
    that explains a held checkpoint of that size, or None: what makes a contradiction
    a peer's Hello reveals "explained" rather than fork evidence.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from google.protobuf.message import DecodeError
from sqlalchemy import select
from sqlalchemy.orm import Session

from node._proto.lapor.v1 import envelope_pb2, federation_pb2, ledger_pb2, trust_pb2
from node.envelopes import OpenedEnvelope
from node.errors import (
    InconsistentCheckpointError,
    NotFoundError,
    ProofError,
    SignatureError,
    StateError,
    ValidationError,
)
from node.ids import NodeId, parse_node_id
from node.ledger.checkpoint import Checkpoint, origin_for
from node.ledger.discontinuity import Discontinuity, open_discontinuity
from node.ledger.merkle import verify_consistency
from node.ledger.note import Verifier, open_checkpoint, split_note
from node.logs import get_logger
from node.metrics import PEER_FORKS, PEER_SUSPENDED
from node.services import _discontinuities
from node.services._ledger import record
from node.services.context import NodeContext
from node.store import queries, tree
from node.store.models import Link, PeerKey

__all__ = [
    "ForkDetected",
    "check",
    "check_held",
    "discontinuity_for",
    "lift_suspension",
    "present",
    "record_fork",
    "refuse_if_suspended",
    "root_of",
]

_KIND_NAMES = {
    ledger_pb2.FORK_KIND_SAME_SIZE: "same-size",
    ledger_pb2.FORK_KIND_INCONSISTENT: "inconsistent",
    ledger_pb2.FORK_KIND_ROLLBACK: "rollback",
}


class ForkDetected(InconsistentCheckpointError):
    """A peer presented a checkpoint that contradicts the one this node holds of it."""

    def __init__(
        self,
        message: str,
        *,
        kind: ledger_pb2.ForkKind,
        held: bytes,
        delivery: federation_pb2.Delivery | None = None,
        presented: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.held = held
        # The envelope that carried the presented checkpoint, or none when a Hello did
        # (node.services.peer_evidence): then `presented` is the note itself.
        self.delivery = delivery
        self.presented = presented or (
            b""
            if delivery is None
            else envelope_pb2.Envelope.FromString(delivery.envelope.body).checkpoint
        )

    @property
    def kind_name(self) -> str:
        return _KIND_NAMES[self.kind]


def _parse(note: bytes) -> Checkpoint:
    """The checkpoint a note states, without verifying it: for a note verified when it was
    stored, or to choose a proof."""
    text, _ = split_note(note)
    return Checkpoint.parse(text)


def _size_of(note: bytes) -> int:
    return _parse(note).size


def root_of(note: bytes) -> bytes:
    """The root a checkpoint note states (of a note verified when it was stored)."""
    return _parse(note).root


def present(
    session: Session, ctx: NodeContext, deliveries: Sequence[federation_pb2.Delivery], held: int
) -> int:
    """Attach consistency proofs to `deliveries` (in send order) for a peer that holds our
    checkpoint of size `held`; return the size it will hold after them."""
    sizes: dict[bytes, int] = {}
    held_checked = False
    for delivery in deliveries:
        note = envelope_pb2.Envelope.FromString(delivery.envelope.body).checkpoint
        if not note:
            continue
        size = sizes.get(note)
        if size is None:
            size = sizes[note] = _size_of(note)
        if size == held or held == 0:
            held = max(held, size)
            continue
        if not held_checked:  # once: this node must have signed what the peer holds
            held_checked = True
            if _of_lost_history(session, held):  # the statement's checkpoint goes unproven
                held = size
                continue
            check_held(session, held)
        first, second = min(size, held), max(size, held)
        delivery.proof_held_size = held
        delivery.consistency_proof[:] = tree.consistency_proof(session, first, second)
        held = second
    return held


def _of_lost_history(session: Session, held: int) -> bool:
    """The peer holds our checkpoint of size `held` from the history our signed
    discontinuity ended (we have none of that size now)."""
    return tree.checkpoint_of_size(session, held) is None and _discontinuities.explains(
        _discontinuities.own_latest(session), held
    )


def check_held(session: Session, held: int, root: bytes | None = None) -> None:
    """A peer holds our checkpoint of size `held` (and `root`, when it says): this node must
    have signed exactly that one. If not, this database went back in time (or was
    rewritten), and going on would fork our history."""
    if held == 0:
        return
    row = tree.checkpoint_of_size(session, held)
    if row is None or (root is not None and not hmac.compare_digest(row.root, root)):
        if _discontinuities.explains(_discontinuities.own_latest(session), held, root):
            return  # our signed discontinuity ended that history (module docstring)
        raise InconsistentCheckpointError(
            f"a peer holds this node's signed checkpoint of size {held}, which this node's "
            "database does not have: it went back in time (restored from an old backup) or "
            "was rewritten. Stop the node and restore its latest database; meanwhile it must "
            "not sign or send anything"
        )


def check(
    link: Link,
    opened: OpenedEnvelope,
    delivery: federation_pb2.Delivery,
    session: Session | None = None,
) -> None:
    """Witness the checkpoint carried by an envelope from `link`'s peer (module steps).
    With `session`, a checkpoint signed by one of the peer's keys before a key rotation
    verifies too (node.services.rotation)."""
    note = opened.envelope.checkpoint
    peer = link.peer_id
    if not note:
        raise ValidationError(
            f"envelope {opened.envelope.sequence} from {peer} carries no checkpoint of its "
            "ledger; every envelope must"
        )
    if link.peer_checkpoint is not None and hmac.compare_digest(note, link.peer_checkpoint):
        _check_receipt(opened, link.peer_checkpoint_size)  # 3. the note we already hold
        return
    if _discontinued(link, opened, note):
        return
    # 1. Signed by the peer's pinned key (or an earlier one of its keys), for its log;
    # opened ahead under the pinned key (node.envelopes.OpenedAhead), it is not again.
    verifier = Verifier.from_public_key(origin_for(peer), link.signing_key)
    try:
        if opened.checkpoint_ahead is not None and hmac.compare_digest(
            opened.checkpoint_key, link.signing_key
        ):
            presented = opened.checkpoint_ahead
        else:
            presented = open_checkpoint(note, verifier)
    except SignatureError:
        earlier = [] if session is None else _earlier_keys(session, peer)
        if not earlier:
            raise
        presented = open_checkpoint(
            note, [verifier, *(Verifier.from_public_key(origin_for(peer), k) for k in earlier)]
        )
    if link.peer_checkpoint is None:  # 2. nothing held yet
        _adopt(link, note, presented)
        _check_receipt(opened, presented.size)
        return
    held = _parse(link.peer_checkpoint)  # verified when it was adopted
    if presented.size == held.size:  # 4.
        raise ForkDetected(
            f"{peer} presented two different signed checkpoints of size {held.size}",
            kind=ledger_pb2.FORK_KIND_SAME_SIZE,
            held=link.peer_checkpoint,
            delivery=delivery,
        )
    if delivery.proof_held_size != held.size:  # 5.
        raise StateError(
            f"{peer} proved its checkpoint of size {presented.size} against size "
            f"{delivery.proof_held_size}, but this node holds its checkpoint of size "
            f"{held.size}; the link resumes from this node's Hello"
        )
    first, second = (held, presented) if presented.size > held.size else (presented, held)
    try:  # 6.
        verify_consistency(
            first.size, second.size, first.root, second.root, list(delivery.consistency_proof)
        )
    except ProofError as e:
        grew = presented.size > held.size
        raise ForkDetected(
            f"{peer} presented a checkpoint of size {presented.size} that is not consistent "
            f"with its checkpoint of size {held.size} held here: {e}",
            kind=ledger_pb2.FORK_KIND_INCONSISTENT if grew else ledger_pb2.FORK_KIND_ROLLBACK,
            held=link.peer_checkpoint,
            delivery=delivery,
        ) from e
    if presented.size > held.size:  # 7.
        _adopt(link, note, presented)
    _check_receipt(opened, presented.size)


def _discontinued(link: Link, opened: OpenedEnvelope, note: bytes) -> bool:
    """The envelope states the peer's discontinuity from its pinned key (module
    docstring): adopt its checkpoint, the new key's, in place of the one held."""
    if opened.payload_kind != "key_rotation":
        return False
    signed = opened.envelope.key_rotation
    try:
        if not trust_pb2.KeyRotation.FromString(signed.rotation).HasField("discontinuity"):
            return False
    except DecodeError:
        return False  # rotation.follow refuses it with its own message
    stated = open_discontinuity(signed)  # SignatureError/ValidationError: refused
    if stated.node_id != link.peer_id or not hmac.compare_digest(stated.old_key, link.signing_key):
        raise SignatureError(
            f"{link.peer_id} stated a discontinuity that the key pinned for it did not sign"
        )
    presented = open_checkpoint(
        note, Verifier.from_public_key(origin_for(link.peer_id), stated.new_key)
    )
    if presented.size <= stated.restart_size:
        raise ValidationError(
            f"{link.peer_id}'s discontinuity comes with a checkpoint of size "
            f"{presented.size}, expected one above its restart size {stated.restart_size}"
        )
    get_logger(peer=link.peer_id).warning(
        "peer.discontinuity", held_size=link.peer_checkpoint_size, reason=stated.reason
    )
    _adopt(link, note, presented)
    return True


def discontinuity_for(
    session: Session, peer: str, held_size: int, held_root: bytes | None = None
) -> Discontinuity | None:
    """The discontinuity of `peer` recorded in this node's ledger that explains a
    checkpoint of size `held_size` (and `held_root`, when given) of the history it lost,
    or None (module docstring)."""
    gap = _discontinuities.peer_latest(session, peer)
    return gap if _discontinuities.explains(gap, held_size, held_root) else None


def _earlier_keys(session: Session, peer: str) -> list[bytes]:
    return list(session.scalars(select(PeerKey.signing_key).where(PeerKey.peer_id == peer)))


def _adopt(link: Link, note: bytes, checkpoint: Checkpoint) -> None:
    link.peer_checkpoint = note
    link.peer_checkpoint_size = checkpoint.size


def _check_receipt(opened: OpenedEnvelope, size: int) -> None:
    """A receipt's own checkpoint (of `size` entries) must cover the entry it names."""
    if opened.payload_kind != "receipt":
        return
    receipt = opened.envelope.receipt
    if receipt.entry_index >= size:
        raise ValidationError(
            f"receipt names ledger entry {receipt.entry_index}, but the checkpoint it carries "
            f"covers only {size} entries"
        )


def record_fork(session: Session, ctx: NodeContext, link: Link, fork: ForkDetected) -> int:
    """Keep the evidence in this node's ledger and suspend the peer; return the entry index."""
    evidence = ledger_pb2.PeerForkDetected(
        peer_id=link.peer_id,
        kind=fork.kind,
        held_checkpoint=fork.held,
        presented_checkpoint=fork.presented,
    )
    if fork.delivery is not None:
        evidence.proof_held_size = fork.delivery.proof_held_size
        evidence.consistency_proof[:] = list(fork.delivery.consistency_proof)
        evidence.envelope.CopyFrom(fork.delivery.envelope)
    index = record(session, ctx, ledger_pb2.LedgerEntry(peer_fork_detected=evidence))
    link.suspended_at = ctx.clock.now()
    link.suspended_by_entry = index
    link.last_error = f"suspended: fork evidence in ledger entry {index}: {fork}"
    PEER_FORKS.labels(peer=link.peer_id, kind=fork.kind_name).inc()
    PEER_SUSPENDED.labels(peer=link.peer_id).set(1)
    held, presented = _parse(fork.held), _parse(fork.presented)
    get_logger(node_id=ctx.node_id, peer=link.peer_id).critical(
        "peer.fork_detected",
        kind=fork.kind_name,
        entry=index,
        held_size=held.size,
        held_root=held.root.hex(),
        presented_size=presented.size,
        presented_root=presented.root.hex(),
        reason=str(fork),
    )
    return index


def refuse_if_suspended(link: Link) -> None:
    if link.suspended_at is not None:
        raise StateError(
            f"envelopes from {link.peer_id} are refused since ledger entry "
            f"{link.suspended_by_entry} recorded that it presented inconsistent checkpoints; "
            f"an operator must look into it, then run `lapor-node link resume {link.peer_id}`"
        )


def lift_suspension(ctx: NodeContext, peer: str, reason: str) -> int:
    """An operator lets a suspended peer in again; the held checkpoint is dropped, so
    witnessing starts afresh from the peer's next one. Returns the ledger entry index."""
    peer_id: NodeId = parse_node_id(peer)
    reason = reason.strip()
    if not reason:
        raise ValidationError("say why the suspension is lifted (--reason)")
    with ctx.db.write() as session:
        link = queries.get_link(session, peer_id, lock=True)
        if link is None:
            raise NotFoundError(f"{peer_id} is not linked to this node")
        if link.suspended_at is None or link.suspended_by_entry is None:
            raise StateError(f"{peer_id} is not suspended")
        index = record(
            session,
            ctx,
            ledger_pb2.LedgerEntry(
                peer_suspension_lifted=ledger_pb2.PeerSuspensionLifted(
                    peer_id=peer_id, fork_entry_index=link.suspended_by_entry, reason=reason
                )
            ),
        )
        link.suspended_at = None
        link.suspended_by_entry = None
        link.peer_checkpoint = None
        link.peer_checkpoint_size = 0
        link.last_error = None
    PEER_SUSPENDED.labels(peer=peer_id).set(0)
    return index
