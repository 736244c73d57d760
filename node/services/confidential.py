"""Reporter privacy across the tree (docs/decisions/0011-confidential-identity.md).

Invariants:

1. The reporter's identity of an anonymous or confidential complaint is never part of its
   content: at intake it goes to `reporter_identities` on the node where the complaint
   entered, and the content (which travels with referrals and is committed to in ledgers)
   holds no reporter. No identity is ever in a ledger entry, an envelope in clear, a log
   line or an export.
2. Anonymous: the identity never leaves the node where the complaint entered.
3. Confidential: it is sealed (node.crypto.sealing) to the node that handles the
   complaint, and only to it: the node that posts its first follow-up (accepted ->
   in_progress), not a node that only passes it on. That node offers its sealing key,
   signed with its signing key, in the follow-up's status update; its parent checks the
   statement against the key it pins for it, and each node on the way forwards the update
   unchanged inside its own signed envelope. The node where the complaint entered seals
   the identity to that key and sends it down; the nodes in between record and forward
   the box, which they cannot open. A complaint returned and handled elsewhere is sealed
   again to the node that follows it up there.
4. The holder checks the box opens before storing it, so a bad box is refused where it
   arrives, with the entry node's envelope as evidence.

Trust: the node where the complaint entered believes the key its child relays, as it
believes every status update; a relay that substituted a key would have signed the
substitution in its own envelope, recorded in the entry node's ledger.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2, privacy_pb2
from node.complaints import ComplaintDraft
from node.crypto.keyfiles import read_file, write_private
from node.crypto.sealing import (
    SealingKey,
    open_identity,
    open_sealing_key,
    seal_identity,
    sign_sealing_key,
)
from node.envelopes import OpenedEnvelope
from node.errors import NotFoundError, PermissionDeniedError, StateError, ValidationError
from node.ids import parse_tracking_id
from node.logs import get_logger
from node.services._ledger import record
from node.services._outbox import enqueue
from node.services.context import NodeContext
from node.store import queries
from node.store.models import Complaint, Link, ReporterIdentityRow

__all__ = [
    "check_offer",
    "forget_identity",
    "has_identity",
    "holder_statement",
    "identity_of",
    "keep_identity",
    "on_sealed_identity",
    "seal_for_holder",
    "sealing_key",
    "sealing_key_path",
    "split",
]

log = get_logger()


# --- keys -------------------------------------------------------------------------------


def sealing_key_path(ctx: NodeContext) -> Path:
    return ctx.config.sealing_key or ctx.config.base_dir / "keys" / "sealing.pem"


def sealing_key(ctx: NodeContext) -> SealingKey:
    """This node's X25519 sealing key; made now (mode 0600) for a node from before it
    existed."""
    path = sealing_key_path(ctx)
    if not path.exists():
        try:
            write_private(path, SealingKey.generate().to_pem())
        except Exception:  # another process made it first: read that one
            if not path.exists():
                raise
    return SealingKey.from_pem(read_file(path, "sealing key"))


def holder_statement(ctx: NodeContext) -> privacy_pb2.SignedSealingKey:
    """This node's signed statement of its sealing key, for a receipt."""
    return sign_sealing_key(ctx.signing_key, sealing_key(ctx), ctx.node_id, ctx.clock.now())


# --- intake -----------------------------------------------------------------------------


def split(draft: ComplaintDraft) -> tuple[ComplaintDraft, privacy_pb2.ReporterIdentity | None]:
    """For an anonymous or confidential complaint: the draft without its reporter, and the
    reporter's identity (None if it names nobody). Others are returned as they are."""
    identity = privacy_pb2.ReporterIdentity(
        name=draft.reporter_name, contact=draft.reporter_contact, id_number=draft.reporter_id_number
    )
    if not (draft.anonymous or draft.confidential):
        return draft, None
    bare = replace(draft, reporter_name="", reporter_contact="", reporter_id_number="")
    return bare, (identity if identity.ByteSize() else None)


def keep_identity(
    session: Session, ctx: NodeContext, tracking_id: str, identity: privacy_pb2.ReporterIdentity
) -> None:
    """At intake, in the complaint's transaction: the identity in clear, on this node."""
    queries.add(
        session,
        ReporterIdentityRow(
            tracking_id=tracking_id,
            identity=identity.SerializeToString(),
            sealed=None,
            recorded_at=ctx.clock.now(),
        ),
    )


def forget_identity(session: Session, tracking_id: str) -> None:
    """Delete the reporter's identity kept here, if any (an erasure, in its transaction)."""
    row = session.get(ReporterIdentityRow, tracking_id)
    if row is not None:
        session.delete(row)


def has_identity(session: Session, tracking_id: str) -> bool:
    row = session.get(ReporterIdentityRow, tracking_id)
    return row is not None and (row.identity is not None or row.sealed is not None)


def identity_of(ctx: NodeContext, tracking_id: str) -> privacy_pb2.ReporterIdentity:
    """The reporter's identity as this node may see it: in clear where the complaint
    entered, opened with this node's sealing key where it was sealed to. NotFoundError
    elsewhere (an intermediate node, or an erased identity)."""
    parse_tracking_id(tracking_id)
    with ctx.db.read() as session:
        row = session.get(ReporterIdentityRow, tracking_id)
        identity, sealed = (None, None) if row is None else (row.identity, row.sealed)
    if identity is not None:
        return privacy_pb2.ReporterIdentity.FromString(identity)
    if sealed is not None:
        box = privacy_pb2.SealedIdentity.FromString(sealed)
        return open_identity(box, sealing_key(ctx), node_id=ctx.node_id, tracking_id=tracking_id)
    raise NotFoundError(
        f"this node holds no reporter identity for {tracking_id}: it names nobody, was "
        "erased, is anonymous and entered elsewhere, or this node only passed it on"
    )


# --- up: the holder's key ------------------------------------------------------------------


def check_offer(link: Link, update: envelope_pb2.StatusUpdate, row: Complaint) -> None:
    """A status update offers the handling node's sealing key: only for a confidential
    complaint, only the holder's own, and, from the holder itself, signed with the key
    this node pins for it (further up, the statement must at least be self-consistent)."""
    offered = update.holder_sealing_key
    if not row.confidential:
        raise ValidationError(
            f"{update.tracking_id} is not confidential; no sealing key is offered for it"
        )
    statement = privacy_pb2.SealingKeyStatement.FromString(offered.statement)
    if update.actor != update.holder or statement.node_id != update.holder:
        raise ValidationError(
            f"the sealing key offered for {update.tracking_id} is not its holder's own"
        )
    pinned = link.signing_key if update.actor == link.peer_id else statement.signing_key
    open_sealing_key(offered, update.holder, pinned)


# --- down: sealing and forwarding ------------------------------------------------------


def seal_for_holder(
    session: Session,
    ctx: NodeContext,
    row: Complaint,
    holder: str,
    offered: privacy_pb2.SignedSealingKey,
) -> int | None:
    """Where the complaint entered: seal the reporter's identity to `holder` with the key
    it offered, and send it down towards it. Returns the SealedIdentitySent entry, or None
    if there is nothing to seal (anonymous, no identity, erased)."""
    if not row.confidential or row.anonymous or row.origin_node != ctx.node_id:
        return None
    stored = session.get(ReporterIdentityRow, row.tracking_id)
    if stored is None or stored.identity is None:
        return None
    statement = privacy_pb2.SealingKeyStatement.FromString(offered.statement)
    if statement.node_id != holder:
        raise ValidationError(
            f"the sealing key offered for {row.tracking_id} is {statement.node_id}'s, not "
            f"its holder {holder}'s"
        )
    box = seal_identity(
        privacy_pb2.ReporterIdentity.FromString(stored.identity),
        tracking_id=row.tracking_id,
        recipient_node=holder,
        recipient_key=bytes(statement.sealing_key),
    )
    return _send_down(session, ctx, row, box)


def _send_down(
    session: Session, ctx: NodeContext, row: Complaint, box: privacy_pb2.SealedIdentity
) -> int | None:
    if row.referred_to is None:
        log.warning("identity.not_forwarded", tracking_id=row.tracking_id, reason="not referred")
        return None
    link = queries.get_link(session, row.referred_to, lock=True)
    if link is None or link.revoked_at is not None or link.role != "child":
        raise StateError(
            f"{row.tracking_id} is held below {row.referred_to}, which is no longer linked as "
            "this node's child; the reporter's identity cannot reach the holder"
        )
    _, signed = enqueue(session, ctx, link, tracking_id=row.tracking_id, sealed_identity=box)
    return record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(sealed_identity_sent=ledger_pb2.SealedIdentitySent(envelope=signed)),
    )


def on_sealed_identity(
    session: Session, ctx: NodeContext, link: Link, opened: OpenedEnvelope
) -> None:
    """The parent sends a sealed identity down: keep it if it is for this node (it must
    open), else pass it on towards the holder."""
    box = opened.envelope.sealed_identity
    tracking_id = parse_tracking_id(box.tracking_id)
    row = queries.get_complaint(session, tracking_id, lock=True)
    if row is None or row.received_from != link.peer_id:
        raise PermissionDeniedError(
            f"{link.peer_id} sent a sealed identity for {tracking_id}, which it never referred "
            "to this node"
        )
    if not row.confidential:
        raise ValidationError(f"{tracking_id} is not confidential; its identity is not sealed")
    record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(
            sealed_identity_received=ledger_pb2.SealedIdentityReceived(envelope=opened.signed)
        ),
    )
    if box.recipient_node == ctx.node_id:
        open_identity(box, sealing_key(ctx), node_id=ctx.node_id, tracking_id=tracking_id)
        stored = session.get(ReporterIdentityRow, tracking_id)
        if stored is None:
            queries.add(
                session,
                ReporterIdentityRow(
                    tracking_id=tracking_id,
                    identity=None,
                    sealed=box.SerializeToString(),
                    recorded_at=ctx.clock.now(),
                ),
            )
        else:
            stored.sealed = box.SerializeToString()
        log.info("identity.received", tracking_id=tracking_id)
        return
    if row.holder == ctx.node_id or row.referred_to is None:
        # It came back up here since: the new holder gets a box of its own.
        log.info("identity.not_forwarded", tracking_id=tracking_id, reason="holder changed")
        return
    forwarded = privacy_pb2.SealedIdentity()
    forwarded.CopyFrom(box)
    _send_down(session, ctx, row, forwarded)
