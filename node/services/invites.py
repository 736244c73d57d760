"""Linking a child with a join token ("kesepakatan bersama"): the parent's invites, and
the operator's approvals and rejections of the joins they bring.

Parent (docs/protocol.md, "Enrollment"):
  - `invite` stores an invite (child id and name, approval mode, expiry, SHA-256 of the
    secret) and returns the token; the secret itself is never stored.
  - `approve` and `reject` decide a join that waits for the operator (`--approve manual`),
    or refuse every join of a child not finished yet.
The answers to the child's Join and Confirm are node.services.join_answers; the child's
side is node.services.joining.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from node.config import ServerConfig
from node.crypto.keyfiles import read_file
from node.crypto.linking import (
    AddressPair,
    JoinToken,
    check_address,
    new_invite_id,
    new_secret,
)
from node.crypto.signing import VerifyKey
from node.crypto.tls import fingerprint
from node.errors import (
    NotFoundError,
    StateError,
    ValidationError,
)
from node.ids import NodeId, parse_node_id
from node.services._link_rows import short, when
from node.services.context import NodeContext
from node.store import link_state, queries
from node.store.models import Invite

__all__ = [
    "APPROVALS",
    "ApprovedJoin",
    "approve",
    "approve_in",
    "check_linkable",
    "default_addresses",
    "invite",
    "invite_in",
    "parse_duration",
    "parse_ttl",
    "reject",
    "reject_in",
]

APPROVALS = ("auto", "manual")
MIN_TTL = dt.timedelta(minutes=5)
MAX_TTL = dt.timedelta(days=30)
_TTL = re.compile(r"^([0-9]+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_WILDCARDS = {"0.0.0.0", "[::]", "::", ""}  # noqa: S104 - hosts a child cannot dial


# --- the parent: invites -----------------------------------------------------------------


def parse_duration(text: str, what: str) -> dt.timedelta:
    """`48h`, `30m`, `7d`, `90s` -> a timedelta."""
    match = _TTL.fullmatch(text.strip())
    if match is None:
        raise ValidationError(
            f"{what} must be a number and a unit (s, m, h, d), e.g. 48h; found {text!r}"
        )
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_ttl(text: str) -> dt.timedelta:
    """An invite's time to live: a duration between MIN_TTL and MAX_TTL."""
    ttl = parse_duration(text, "--ttl")
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise ValidationError(f"--ttl must be between 5m and 30d, found {text!r}")
    return ttl


def default_addresses(server: ServerConfig) -> list[AddressPair]:
    """The addresses a token names when the operator gives none: `server.listen` and the
    enrollment port, if both name a host a child can dial."""
    enrollment = server.enrollment_address
    if not enrollment:
        raise ValidationError(
            'joins are off on this node (server.enrollment_listen is "" in node.yaml): set '
            "it to HOST:PORT, restart serve, and invite again"
        )
    host = server.listen.rpartition(":")[0]
    if host in _WILDCARDS or enrollment.rpartition(":")[0] in _WILDCARDS:
        raise ValidationError(
            f"this node listens on {server.listen} and {enrollment}, which a child cannot "
            "dial: pass --address HOST:PORT (and --enrollment-address HOST:PORT) with the "
            "address your regencies reach this node at"
        )
    return [AddressPair(server.listen, enrollment)]


def check_linkable(session: Session, ctx: NodeContext, child: NodeId) -> None:
    """StateError unless `child` can be linked now as a new child of this node. Called
    only in the transaction that acts on the answer; the link row, if any, stays locked."""
    link = queries.get_link(session, child, lock=True)
    if link is None:
        return
    if link.revoked_at is not None:
        raise StateError(
            f"{child} was linked to this node before, and that link was revoked on "
            f"{when(link.revoked_at)}; this version of lapor-node cannot link the same node "
            "id again (its message sequences would collide)"
        )
    if link.role == "parent":
        raise StateError(f"{child} is this node's parent; it cannot also be its child")
    raise StateError(
        f"{child} is already linked to this node (since {when(link.created_at)}, TLS "
        f"sha256 {short(link.tls_fingerprint)}); a node id links once: "
        f"`lapor-node link list` on {ctx.node_id} shows the link"
    )


def invite(
    ctx: NodeContext,
    child: str,
    name: str,
    ttl: dt.timedelta,
    approval: str,
    addresses: Sequence[AddressPair],
) -> JoinToken:
    """Store an invite for `child` and return its token (the only copy of the secret)."""
    child_id = parse_node_id(child)
    name = name.strip()
    if child_id == ctx.node_id:
        raise ValidationError(f"{child_id} is this node itself; invite one of its children")
    if not name:
        raise ValidationError('--name must be the child\'s name, e.g. "Kabupaten Paser"')
    if approval not in APPROVALS:
        raise ValidationError(f"--approve must be auto or manual, found {approval!r}")
    if not addresses:
        raise ValidationError("a join token needs at least one address of this node")
    for pair in addresses:
        check_address(pair.federation, "--address")
        check_address(pair.enrollment, "--enrollment-address")
    cert = read_file(ctx.config.tls_cert, "TLS certificate")
    now = ctx.clock.now()
    token = JoinToken(
        invite_id=new_invite_id(),
        parent_id=ctx.node_id,
        parent_name=ctx.config.name,
        child_id=child_id,
        child_name=name,
        addresses=tuple(addresses),
        parent_tls_sha256=fingerprint(cert),
        expires_at=(now + ttl).replace(microsecond=0),
        secret=new_secret(),
    )
    with ctx.db.write() as session:
        invite_in(session, ctx, token, approval)
    return token


def invite_in(session: Session, ctx: NodeContext, token: JoinToken, approval: str) -> None:
    """Store the invite `token` describes (its secret only as SHA-256), in the caller's
    transaction, if its child can be linked now (checked here, the link row locked)."""
    if approval not in APPROVALS:
        raise ValidationError(f"--approve must be auto or manual, found {approval!r}")
    check_linkable(session, ctx, token.child_id)
    queries.add(
        session,
        Invite(
            invite_id=token.invite_id,
            child_id=token.child_id,
            child_name=token.child_name,
            secret_sha256=token.secret_sha256,
            approval=approval,
            state="open",
            created_at=ctx.clock.now(),
            expires_at=token.expires_at,
        ),
    )


@dataclass(frozen=True)
class ApprovedJoin:
    """What an operator approved or rejected: the joining node's certificate and key."""

    child_id: str
    invite_id: str
    tls_sha256: bytes | None
    signing_key_id: bytes | None


def _claimed(invite_row: Invite) -> ApprovedJoin:
    key = invite_row.child_signing_key
    return ApprovedJoin(
        invite_row.child_id,
        invite_row.invite_id,
        invite_row.child_tls_fingerprint,
        None if key is None else VerifyKey(key).key_id,
    )


def approve(ctx: NodeContext, child: str) -> ApprovedJoin:
    """Approve the one join from `child` that waits for it."""
    with ctx.db.write() as session:
        return approve_in(session, ctx, child)


def approve_in(session: Session, ctx: NodeContext, child: str) -> ApprovedJoin:
    """`approve` in the caller's transaction."""
    child_id = parse_node_id(child)
    now = ctx.clock.now()
    waiting = link_state.invites_for(session, child_id, ["pending"], lock=True)
    if not waiting:
        unused = link_state.invites_for(session, child_id, ["open"])
        hint = (
            f"its invite is not used yet: the operator of {child_id} runs "
            "`lapor-node link join TOKEN` first, then you approve"
            if unused
            else f"invite it first with `lapor-node link invite --child {child_id} --name ...`"
        )
        raise NotFoundError(f"no join from {child_id} is waiting for approval; {hint}")
    if len(waiting) > 1:
        found = ", ".join(short(i.child_tls_fingerprint) for i in waiting)
        raise StateError(
            f"{len(waiting)} joins from {child_id} are waiting (TLS sha256 {found}): one "
            f"node id, several nodes. Reject them all (`lapor-node link reject {child_id}`) "
            "and send a new token to the right operator"
        )
    row = waiting[0]
    if now > row.expires_at:
        raise StateError(
            f"the invite for {child_id} expired on {when(row.expires_at)}; issue a new one "
            f"with `lapor-node link invite --child {child_id}`"
        )
    check_linkable(session, ctx, child_id)
    row.state = "approved"
    row.decided_at = now
    return _claimed(row)


def reject(ctx: NodeContext, child: str, reason: str) -> list[ApprovedJoin]:
    """Refuse every join from `child` not yet finished (waiting or not yet made): their
    tokens stop working. Returns what was rejected."""
    with ctx.db.write() as session:
        return reject_in(session, ctx, child, reason)


def reject_in(session: Session, ctx: NodeContext, child: str, reason: str) -> list[ApprovedJoin]:
    """`reject` in the caller's transaction."""
    child_id = parse_node_id(child)
    now = ctx.clock.now()
    rows = link_state.invites_for(session, child_id, ["open", "pending", "approved"], lock=True)
    if not rows:
        raise NotFoundError(f"no invite for {child_id} is open or waiting; nothing to reject")
    for row in rows:
        row.state = "rejected"
        row.decided_at = now
        row.reason = reason.strip() or "rejected by the operator"
    return [_claimed(row) for row in rows]
