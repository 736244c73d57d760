"""The parent's answers to a child's Join and Confirm (docs/protocol.md, "Enrollment"),
for the invites node.services.invites stored.

  - `answer_join` checks a join request in this order, each refusal before anything is
    written: 1. its signatures and certificate (node.crypto.linking.open_join_request);
    2. that it was made for this node and this node's certificate (a relay in the middle
    shows its own); 3. the clocks agree within MAX_CLOCK_SKEW; 4. the secret matches a
    stored invite; 5. the invite is for this child id; 6. the invite's state: a used or
    claimed invite answers only the node that claimed it (same keys), an expired one
    nobody; 7. the child id is not linked. Then: manual approval not yet given -> the
    request claims the invite (PENDING); approved -> the agreement, signed by this node, is
    made once and stored, so every retry gets the same bytes (ACCEPTED).
  - `answer_confirm` verifies the child's countersignature over exactly those bytes and,
    in ONE transaction, records LinkAgreed, pins the child (a `links` row) and marks the
    invite used. A repeated Confirm gets the same ledger index.
The child's side is node.services.joining.
Nothing is half-made: a refusal anywhere leaves both databases as they were, and the one
window (the parent recorded, the child not yet) closes by running `link join` again.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import enrollment_pb2, ledger_pb2, trust_pb2
from node.crypto.keyfiles import read_file
from node.crypto.linking import (
    MAX_CLOCK_SKEW,
    OpenedJoin,
    make_agreement,
    open_join_request,
    secret_sha256,
)
from node.crypto.signing import LINK_AGREEMENT_PURPOSE, VerifyKey
from node.crypto.tls import fingerprint
from node.errors import PermissionDeniedError, SignatureError, StateError, ValidationError
from node.ids import NodeId
from node.logs import get_logger
from node.services._ledger import record
from node.services._link_rows import new_link_row, own_keys, short, when
from node.services.context import NodeContext
from node.services.invites import check_linkable
from node.services.trust import chain_of_trust
from node.store import link_state, queries
from node.store.models import Invite

__all__ = [
    "Confirmation",
    "Confirmed",
    "answer_confirm",
    "answer_confirm_in",
    "answer_join",
    "answer_join_in",
    "check_join",
]

_HEX = re.compile(r"^[0-9a-f]{1,8}$")
_INVITE = re.compile(r"^[0-9a-f]{32}\Z")
log = get_logger()


def _own_chain(session: Session) -> trust_pb2.TrustChain:
    """This node's chain of trust (node.services.trust.chain_of_trust): the chain its
    parent gave it, its own agreement, and the rotations of both since."""
    return chain_of_trust(session)


def _accepted(
    ctx: NodeContext, session: Session, row: Invite, cert: bytes, *, confirmed: bool
) -> enrollment_pb2.JoinResponse:
    assert row.agreement is not None and row.parent_signature is not None
    # This node as the stored agreement names it, so a retry matches it byte for byte.
    parent = trust_pb2.LinkAgreement.FromString(row.agreement).parent
    return enrollment_pb2.JoinResponse(
        status=enrollment_pb2.JOIN_STATUS_ACCEPTED,
        message=f"{ctx.node_id} accepted the join of {row.child_id}",
        parent_name=parent.name,
        parent_signing_key=parent.signing_key,
        parent_tls_cert_pem=cert.decode(),
        agreement=row.agreement,
        parent_signature=row.parent_signature,
        parent_chain=_own_chain(session),
        confirmed=confirmed,
    )


def _find_invite(
    session: Session, ctx: NodeContext, invite_id: str, secret: bytes, *, lock: bool = True
) -> Invite:
    """The invite a token names, if its secret matches. An unknown invite and a wrong
    secret get the same answer, so a caller cannot learn which invites exist; the log
    tells the operator which it was (the invite id's first digits, never the secret)."""
    # An id that is not 32 hex digits names no invite (and is never sent to the database).
    row = link_state.get_invite(session, invite_id, lock=lock) if _INVITE.match(invite_id) else None
    if row is None:
        reason = "no invite with this id"
    elif not hmac.compare_digest(secret_sha256(secret), row.secret_sha256):
        reason = "the secret does not match the invite"
    else:
        return row
    log.warning(
        "join.token_refused",
        reason=reason,
        invite=_invite_prefix(invite_id),
        action="a child presented a token this node did not issue, or an altered one; "
        "if it was meant to join, issue it a new token with `lapor-node link invite`",
    )
    raise PermissionDeniedError(
        f"{ctx.node_id} has no open invite that this token matches: the token was not made "
        f"by this node, or it was altered; ask the operator of {ctx.node_id} for a new one"
    )


def _invite_prefix(invite_id: str) -> str:
    """The first digits of an invite id as the log shows them: hex only, so a caller's
    text never reaches the log."""
    prefix = invite_id[:8]
    return prefix if _HEX.fullmatch(prefix) else "(not an invite id)"


def check_join(ctx: NodeContext, request: enrollment_pb2.JoinRequest) -> OpenedJoin:
    """Steps 1-5 of answering a Join, without writing anything: run them off the database
    writer, so requests from anyone cost the node's writes nothing until they check out."""
    # 1-2. The request, for this node and its certificate.
    opened = open_join_request(request)
    transcript = opened.transcript
    me = ctx.node_id
    own = fingerprint(read_file(ctx.config.tls_cert, "TLS certificate"))
    if transcript.parent_id != me:
        raise PermissionDeniedError(
            f"this is {me}, and the join request is for {transcript.parent_id!r}"
        )
    if not hmac.compare_digest(transcript.parent_tls_cert_sha256, own):
        raise PermissionDeniedError(
            "the join request was made over a connection to a certificate with SHA-256 "
            f"{short(transcript.parent_tls_cert_sha256)}, and {me}'s is {short(own)}: "
            "something between the two nodes presented its own certificate; nothing was "
            "recorded"
        )
    # 3. The clocks.
    now = ctx.clock.now()
    if abs(opened.requested_at - now) > MAX_CLOCK_SKEW:
        raise StateError(
            f"the clocks disagree: {opened.child_id}'s says {when(opened.requested_at)}, "
            f"{me}'s says {when(now)} (more than {MAX_CLOCK_SKEW.seconds // 60} minutes apart). "
            "Set the clock right on the node that is wrong (NTP), then run `lapor-node link "
            "join` again with the same token"
        )
    # 4-5. The invite, for this child.
    with ctx.db.read() as session:
        _invite_for(session, ctx, opened, lock=False)
    return opened


def _invite_for(session: Session, ctx: NodeContext, opened: OpenedJoin, *, lock: bool) -> Invite:
    row = _find_invite(session, ctx, opened.transcript.invite_id, opened.secret, lock=lock)
    if row.child_id != opened.child_id:
        raise PermissionDeniedError(
            f"this token was issued for {row.child_id} ({row.child_name}), and the node "
            f"joining is {opened.child_id}: each child gets its own token; ask the "
            f"operator of {ctx.node_id} for one for {opened.child_id}"
        )
    return row


def answer_join(
    ctx: NodeContext, request: enrollment_pb2.JoinRequest, opened: OpenedJoin | None = None
) -> enrollment_pb2.JoinResponse:
    """This node's answer to a child's Join (the steps are in the module docstring);
    `opened` is what `check_join` returned for `request`, if it ran already."""
    if opened is None:  # off the writer: before the transaction
        opened = check_join(ctx, request)
    with ctx.db.write() as session:
        return answer_join_in(session, ctx, opened)


def answer_join_in(
    session: Session, ctx: NodeContext, opened: OpenedJoin
) -> enrollment_pb2.JoinResponse:
    """`answer_join` in the caller's transaction, for the join request `check_join`
    opened and checked (steps 1-5, run before the transaction; 4-5 are checked again
    here, the invite locked, with steps 6-7)."""
    me = ctx.node_id
    cert = read_file(ctx.config.tls_cert, "TLS certificate")
    now = ctx.clock.now()
    row = _invite_for(session, ctx, opened, lock=True)
    # 6. Its state.
    same = row.child_signing_key is not None and (
        hmac.compare_digest(row.child_signing_key, opened.child_signing_key.raw)
        and row.child_tls_fingerprint is not None
        and hmac.compare_digest(row.child_tls_fingerprint, opened.child_tls_sha256)
    )
    if row.state == "used":
        if same:
            return _accepted(ctx, session, row, cert, confirmed=True)
        assert row.used_at is not None
        raise StateError(
            f"this join token was already used on {when(row.used_at)} by {row.child_id} "
            f"(TLS sha256 {short(row.child_tls_fingerprint)}); a token works once: ask "
            f"the operator of {me} for a new one"
        )
    if row.state == "rejected":
        return enrollment_pb2.JoinResponse(
            status=enrollment_pb2.JOIN_STATUS_REJECTED,
            message=f"the operator of {me} rejected this join: {row.reason}",
        )
    if row.child_signing_key is not None and not same:
        raise StateError(
            f"this token was already presented by another node calling itself "
            f"{row.child_id} (TLS sha256 {short(row.child_tls_fingerprint)}); a token works "
            f"for one node only. If that was not you, tell the operator of {me} to run "
            f"`lapor-node link reject {row.child_id}` and send you a new token"
        )
    if now > row.expires_at and row.agreement is None:
        raise StateError(
            f"this join token expired on {when(row.expires_at)} ({me}'s clock now says "
            f"{when(now)}); ask the operator of {me} for a new one "
            f"(`lapor-node link invite --child {row.child_id}`)"
        )
    # 7. The child is not linked yet.
    check_linkable(session, ctx, opened.child_id)
    if row.child_signing_key is None:
        row.child_signing_key = opened.child_signing_key.raw
        row.child_tls_cert_pem = opened.child_cert_pem.decode()
        row.child_tls_fingerprint = opened.child_tls_sha256
        row.requested_at = now
        if row.approval == "auto":
            row.state = "approved"
            row.decided_at = now
        else:
            row.state = "pending"
    if row.state == "pending":
        return enrollment_pb2.JoinResponse(
            status=enrollment_pb2.JOIN_STATUS_PENDING,
            message=(
                f"waiting for the operator of {me} to approve (`lapor-node link approve "
                f"{row.child_id}` on {me}); tell them this node's TLS sha256 starts "
                f"{opened.child_tls_sha256.hex()[:16]}"
            ),
        )
    if row.agreement is None:
        child_keys = trust_pb2.NodeKeys(
            node_id=row.child_id,
            name=row.child_name,
            signing_key=opened.child_signing_key.raw,
            tls_cert_sha256=opened.child_tls_sha256,
        )
        agreement = make_agreement(own_keys(ctx, cert), child_keys, now, row.invite_id)
        row.agreement = agreement
        row.parent_signature = ctx.signing_key.sign(LINK_AGREEMENT_PURPOSE, agreement)
    return _accepted(ctx, session, row, cert, confirmed=False)


@dataclass(frozen=True)
class Confirmation:
    """A child's Confirm, as the use case reads it (the wire message stays at the edge):
    the invite and secret of its token, the agreement bytes it countersigned, and its
    countersignature."""

    invite_id: str
    secret: bytes
    agreement: bytes
    child_signature: bytes

    @classmethod
    def from_request(cls, request: enrollment_pb2.ConfirmRequest) -> Confirmation:
        return cls(
            request.invite_id,
            bytes(request.secret),
            bytes(request.agreement),
            bytes(request.child_signature),
        )


@dataclass(frozen=True)
class Confirmed:
    """Where the parent recorded the link: its LinkAgreed entry, and when."""

    ledger_index: int
    recorded_at: dt.datetime


def answer_confirm(
    ctx: NodeContext, request: enrollment_pb2.ConfirmRequest
) -> enrollment_pb2.ConfirmResponse:
    """`answer_confirm_in` in a transaction of its own, for the wire's request and answer."""
    with ctx.db.write() as session:
        confirmed = answer_confirm_in(session, ctx, Confirmation.from_request(request))
    response = enrollment_pb2.ConfirmResponse(ledger_index=confirmed.ledger_index)
    response.recorded_at.FromDatetime(confirmed.recorded_at)
    return response


def answer_confirm_in(session: Session, ctx: NodeContext, confirm: Confirmation) -> Confirmed:
    """Record the countersigned agreement, pin the child and use up the invite, in the
    caller's transaction; a repeat answers with the same entry. The invite's state and
    the child's link are checked here, the invite and the link row locked."""
    me = ctx.node_id
    row = _find_invite(session, ctx, confirm.invite_id, confirm.secret)
    confirmable = row.state in ("approved", "used")
    if row.agreement is None or row.parent_signature is None or not confirmable:
        raise StateError(
            f"invite {row.invite_id[:8]}... is {row.state}, with no agreement to confirm: "
            "run `lapor-node link join` again"
        )
    if not hmac.compare_digest(confirm.agreement, row.agreement):
        raise ValidationError(f"the agreement sent back is not the one {me} signed for this invite")
    assert row.child_signing_key is not None and row.child_tls_cert_pem is not None
    try:
        VerifyKey(row.child_signing_key).verify(
            LINK_AGREEMENT_PURPOSE, confirm.agreement, confirm.child_signature
        )
    except SignatureError as e:
        raise SignatureError(
            f"the countersignature is not by the key {row.child_id} joined with: {e}"
        ) from e
    if row.state == "used":
        assert row.ledger_index is not None and row.used_at is not None
        return Confirmed(row.ledger_index, row.used_at)
    check_linkable(session, ctx, NodeId(row.child_id))
    now = ctx.clock.now()
    signed = trust_pb2.SignedLinkAgreement(
        agreement=row.agreement,
        parent_signature=row.parent_signature,
        child_signature=confirm.child_signature,
    )
    index = record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(link_agreed=ledger_pb2.LinkAgreed(agreement=signed)),
    )
    cert = row.child_tls_cert_pem.encode()
    link = new_link_row(
        row.child_id, "child", row.child_name, row.child_signing_key, cert, None, now
    )
    link.agreement_entry = index
    queries.add(session, link)
    row.state = "used"
    row.used_at = now
    row.ledger_index = index
    return Confirmed(index, now)
