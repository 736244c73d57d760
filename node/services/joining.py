"""Joining a parent with a join token: the child's side of the ceremony whose parent side is
node.services.invites (and whose wire is node.federation.enrollment_port).

  1. `check_token`, before any connection: the token is for this node id, not expired by
     this node's clock (allowing MAX_CLOCK_SKEW: the parent's clock decides), and this node
     has no other parent; a token whose link is already made returns that link;
  2. `join_request` builds the transcript for the certificate this node pinned and signs
     it with both of its keys;
  3. `accept` verifies the parent's ACCEPTED answer (certificate, agreement, chain of trust)
     and countersigns the agreement;
  4. `record_join`, after the parent confirmed: LinkAgreed with the parent's chain, and the
     parent pinned, in one transaction. If this step never ran, running the join again
     finishes it (the parent answers the same agreement).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import enrollment_pb2, ledger_pb2, trust_pb2
from node.crypto.keyfiles import read_file
from node.crypto.linking import (
    MAX_CLOCK_SKEW,
    JoinToken,
    invite_sha256,
    node_keys,
    open_agreement,
    sign_join,
    verify_chain,
)
from node.crypto.signing import LINK_AGREEMENT_PURPOSE, VerifyKey
from node.crypto.tls import fingerprint, node_id_from_certificate
from node.errors import PermissionDeniedError, SignatureError, StateError, ValidationError
from node.services._ledger import record
from node.services._link_rows import new_link_row, own_keys, short, when
from node.services.context import NodeContext
from node.store import queries
from node.store.models import Link

__all__ = ["Acceptance", "accept", "check_token", "join_request", "record_join"]


def check_token(ctx: NodeContext, token: JoinToken) -> Link | None:
    """Refuse a token this node cannot use now. Returns the parent link if this node is
    already linked by it (same parent, same certificate): nothing is left to do. A check
    before any connection, to fail fast: `record_join_in` checks the links again in the
    transaction that records the join."""
    me = ctx.node_id
    if token.child_id != me:
        raise PermissionDeniedError(
            f"this token is for {token.child_id} ({token.child_name}), and this node is {me}: "
            f"use it on {token.child_id}'s node, or ask the operator of {token.parent_id} for "
            f"a token for {me}"
        )
    with ctx.db.read() as session:
        existing = _linked_by(session, token)
    if existing is not None:
        return existing
    now = ctx.clock.now()
    if now > token.expires_at + MAX_CLOCK_SKEW:
        raise StateError(
            f"this join token expired on {when(token.expires_at)} (this node's clock says "
            f"{when(now)}); ask the operator of {token.parent_id} for a new one"
        )
    return None


def _linked_by(session: Session, token: JoinToken, *, lock: bool = False) -> Link | None:
    """The parent link `token` made already (same parent, same certificate), None if this
    node has no link with the token's parent and no other parent; StateError otherwise.
    With `lock`, the links read stay locked until the transaction ends."""
    for link in queries.list_links(session, lock=lock):
        if link.peer_id == token.parent_id:
            if link.revoked_at is not None:
                raise StateError(
                    f"this node's link with {token.parent_id} was revoked on "
                    f"{when(link.revoked_at)}; this version of lapor-node cannot link "
                    "the same two nodes again"
                )
            if link.role == "child":
                raise StateError(
                    f"{token.parent_id} is this node's child; it cannot also be its parent"
                )
            if hmac.compare_digest(link.tls_fingerprint, token.parent_tls_sha256):
                return link
            raise StateError(
                f"this node is already linked to {token.parent_id}, pinned with another "
                f"TLS certificate (sha256 {short(link.tls_fingerprint)}) than the "
                f"token's ({short(token.parent_tls_sha256)}); ask the operator of "
                f"{token.parent_id} which one is theirs"
            )
        if link.revoked_at is None and link.role == "parent":
            raise StateError(
                f"this node already has a parent, {link.peer_id} ({link.name}); a node has "
                "exactly one. To change parents, end that link first "
                f"(`lapor-node link revoke {link.peer_id}`)"
            )
    return None


def join_request(
    ctx: NodeContext, token: JoinToken, parent_cert: bytes
) -> enrollment_pb2.JoinRequest:
    """The signed request for `token`, made for the parent certificate this node pinned."""
    cert = read_file(ctx.config.tls_cert, "TLS certificate")
    transcript = enrollment_pb2.JoinTranscript(
        invite_id=token.invite_id,
        secret_sha256=token.secret_sha256,
        parent_id=token.parent_id,
        parent_tls_cert_sha256=fingerprint(parent_cert),
        child=own_keys(ctx, cert),
    )
    transcript.requested_at.FromDatetime(ctx.clock.now())
    data = transcript.SerializeToString()
    ed, tls = sign_join(data, ctx.signing_key, read_file(ctx.config.tls_key, "TLS key"))
    return enrollment_pb2.JoinRequest(
        transcript=data,
        signing_signature=ed,
        tls_signature=tls,
        child_tls_cert_pem=cert.decode(),
        secret=token.secret,
    )


@dataclass(frozen=True)
class Acceptance:
    """The parent's answer, verified, with this node's countersignature."""

    parent_name: str
    parent_signing_key: bytes
    parent_cert: bytes
    agreement: trust_pb2.SignedLinkAgreement
    chain: trust_pb2.TrustChain


def accept(ctx: NodeContext, token: JoinToken, response: enrollment_pb2.JoinResponse) -> Acceptance:
    """Verify an ACCEPTED answer and countersign its agreement. Steps:
    1. the parent's certificate is the token's (SHA-256) and names the token's parent;
    2. the agreement is signed by the key the parent sent, and names exactly that parent
       (id, name, key, certificate) and this node (id, key, certificate), for this invite;
    3. the parent's chain of trust, if any, ends at the parent with those keys.
    """
    parent_cert = response.parent_tls_cert_pem.encode()
    if not hmac.compare_digest(fingerprint(parent_cert), token.parent_tls_sha256):
        raise SignatureError(
            f"{token.parent_id} answered with a certificate other than the token's "
            "(SHA-256 differs); nothing was recorded"
        )
    if node_id_from_certificate(parent_cert) != token.parent_id:
        raise ValidationError(f"the parent's certificate does not name {token.parent_id}")
    signed = trust_pb2.SignedLinkAgreement(
        agreement=response.agreement, parent_signature=response.parent_signature
    )
    agreement = open_agreement(signed, countersigned=False)
    own_cert = read_file(ctx.config.tls_cert, "TLS certificate")
    expected_parent = node_keys(
        token.parent_id, response.parent_name, VerifyKey(response.parent_signing_key), parent_cert
    )
    if agreement.parent != expected_parent:
        raise ValidationError(
            f"the agreement does not name {token.parent_id} with the keys it presented"
        )
    child = agreement.child
    if (
        child.node_id != ctx.node_id
        or child.signing_key != ctx.signing_key.public.raw
        or child.tls_cert_sha256 != fingerprint(own_cert)
    ):
        raise ValidationError("the agreement does not name this node with its own keys")
    if agreement.invite_sha256 != invite_sha256(token.invite_id):
        raise ValidationError("the agreement is for another invite than this token's")
    verify_chain(response.parent_chain.steps, agreement.parent)
    signed.child_signature = ctx.signing_key.sign(LINK_AGREEMENT_PURPOSE, response.agreement)
    return Acceptance(
        response.parent_name,
        bytes(response.parent_signing_key),
        parent_cert,
        signed,
        response.parent_chain,
    )


def record_join(
    ctx: NodeContext,
    token: JoinToken,
    acceptance: Acceptance,
    address: str,
    enrollment_address: str | None = None,
) -> int:
    """After the parent confirmed: record LinkAgreed (with the parent's chain) and pin the
    parent to dial at `address` (its joins and key rotations at `enrollment_address`), in
    one transaction. Returns the entry's index."""
    with ctx.db.write() as session:
        return record_join_in(session, ctx, token, acceptance, address, enrollment_address)


def record_join_in(
    session: Session,
    ctx: NodeContext,
    token: JoinToken,
    acceptance: Acceptance,
    address: str,
    enrollment_address: str | None = None,
) -> int:
    """`record_join` in the caller's transaction. The links are checked here, locked, as
    `check_token` checked them before the join began: another join with the same token
    that recorded the link meanwhile (the operator ran `link join` twice) makes this one
    return that link's entry instead of failing or recording a second agreement."""
    existing = _linked_by(session, token, lock=True)
    if existing is not None:
        if existing.agreement_entry is None:
            raise StateError(
                f"{token.parent_id} was pinned by hand (`link add`) while this join ran; "
                "the link is made, nothing was recorded by the join"
            )
        return existing.agreement_entry
    index = record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(
            link_agreed=ledger_pb2.LinkAgreed(
                agreement=acceptance.agreement, parent_chain=acceptance.chain
            )
        ),
    )
    row = new_link_row(
        token.parent_id,
        "parent",
        acceptance.parent_name,
        acceptance.parent_signing_key,
        acceptance.parent_cert,
        address,
        ctx.clock.now(),
    )
    row.agreement_entry = index
    row.enrollment_address = enrollment_address
    queries.add(session, row)
    return index
