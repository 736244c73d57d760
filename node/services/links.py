"""Links to this node's parent and children: pinning a card by hand (the offline fallback
to the join-token ceremony in node.services.invites), ending a link, what transport
needs to trust peers, and what `link list` shows.

Revocation (`revoke`) records LinkRevoked, a SignedLinkRevocation signed by this node, and
sets `revoked_at` in the same transaction. Either side may end a link: a parent its child,
or a child its parent. From then on the peer is not in the pinned set (`pins`), so a
running node stops trusting its certificate at the next handshake, closes its live stream
within about a second (node.federation.runtime), and refuses its calls.

Connection state is the running node's: `serve` sets `connected_since` when a stream
exchanged Hellos and clears it when it ends, refreshes `last_seen_at` only for peers whose
own traffic (frames, heartbeat Acks) arrived since the last round (at most every
HEARTBEAT_SECONDS; node.federation.periodic), and clears every mark when it starts and
stops. A mark whose
last_seen_at is older than STALE_AFTER (a node killed without a chance to clear it) does
not count as connected.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import ledger_pb2
from node.crypto.card import NodeCard
from node.crypto.keyfiles import read_file
from node.crypto.linking import sign_revocation
from node.errors import NotFoundError, StateError, ValidationError
from node.ids import NodeId, parse_node_id
from node.services._ledger import record
from node.services._link_rows import when
from node.services.context import NodeContext
from node.store import keys, link_state, queries, tree
from node.store.models import Invite, Link

__all__ = [
    "HEARTBEAT_SECONDS",
    "STALE_AFTER",
    "LinkReport",
    "LinkView",
    "Pin",
    "Revocation",
    "add_link",
    "heartbeat",
    "link_report",
    "list_links",
    "mark_connected",
    "mark_connections_in",
    "own_card",
    "pins",
    "reset_connections",
    "revoke",
]

HEARTBEAT_SECONDS = 15.0
STALE_AFTER = dt.timedelta(seconds=4 * HEARTBEAT_SECONDS)

ROLES = {"parent": ledger_pb2.PEER_ROLE_PARENT, "child": ledger_pb2.PEER_ROLE_CHILD}


def own_card(ctx: NodeContext) -> NodeCard:
    return NodeCard(
        ctx.node_id,
        ctx.config.name,
        ctx.signing_key.public,
        read_file(ctx.config.tls_cert, "TLS certificate"),
    )


def add_link(
    ctx: NodeContext,
    card: NodeCard,
    role: str,
    address: str | None = None,
    enrollment_address: str | None = None,
) -> None:
    """Pin `card` as this node's `role` ('parent' or 'child') and record it in the ledger.
    A parent is dialed at `address`; its key rotations are fetched at
    `enrollment_address` (default: the port after `address`)."""
    with ctx.db.write() as session:
        add_link_in(session, ctx, card, role, address, enrollment_address)


def add_link_in(
    session: Session,
    ctx: NodeContext,
    card: NodeCard,
    role: str,
    address: str | None = None,
    enrollment_address: str | None = None,
) -> None:
    """`add_link` in the caller's transaction."""
    if role not in ROLES:
        raise ValidationError(f"role must be parent or child, found {role!r}")
    if card.node_id == ctx.node_id:
        raise ValidationError("that card is this node's own")
    if role == "parent" and not address:
        raise ValidationError("a parent link needs --address HOST:PORT to dial")
    existing = queries.get_link(session, card.node_id, lock=True)
    if existing is not None and existing.revoked_at is None:
        raise StateError(f"{card.node_id} is already linked as this node's {existing.role}")
    if existing is not None:
        raise StateError(
            f"{card.node_id} was linked before and revoked; this version of lapor-node "
            "cannot link the same node id again (its message sequences would collide)"
        )
    if role == "parent" and any(
        link.role == "parent" for link in queries.list_links(session, active_only=True)
    ):
        raise StateError("this node already has a parent; a node has exactly one")
    now = ctx.clock.now()
    queries.add(
        session,
        Link(
            peer_id=card.node_id,
            role=role,
            name=card.name,
            signing_key=card.signing_key.raw,
            tls_cert_pem=card.tls_cert_pem.decode(),
            tls_fingerprint=card.tls_fingerprint,
            address=address,
            enrollment_address=enrollment_address if role == "parent" else None,
            created_at=now,
            next_out_seq=1,
            acked_out_seq=0,
            last_in_seq=0,
        ),
    )
    record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(
            link_established=ledger_pb2.LinkEstablished(
                peer_id=card.node_id,
                role=ROLES[role],
                peer_name=card.name,
                peer_signing_key=card.signing_key.raw,
                peer_tls_sha256=card.tls_fingerprint,
            )
        ),
    )


@dataclass(frozen=True)
class Pin:
    """What transport needs to trust a peer: its current certificate and, after it rotated
    its keys, its earlier certificates still within their grace period."""

    peer_id: str
    role: str
    cert_pem: bytes
    fingerprint: bytes
    address: str | None
    earlier: tuple[tuple[bytes, bytes], ...] = ()  # (cert PEM, SHA-256)
    enrollment_address: str | None = None

    @property
    def certificates(self) -> list[bytes]:
        return [self.cert_pem, *(pem for pem, _ in self.earlier)]

    @property
    def fingerprints(self) -> tuple[bytes, ...]:
        return (self.fingerprint, *(fp for _, fp in self.earlier))


def pins(ctx: NodeContext, known: Mapping[str, Pin] | None = None) -> list[Pin]:
    """What transport trusts: a Pin for each active link, parent first. With `known` (the
    pins loaded before, by peer), certificates are read only for the peers whose
    fingerprints are new or changed (added, rotated, an earlier certificate past its
    grace period); the others keep their Pin, with role and addresses as read now
    (decision 0043: a refresh read every link's certificates as ORM rows, 7 % of a
    province's samples with 1,200 children in decision 0041's profile). The same pins
    either way, read in one snapshot."""
    now = ctx.clock.now()
    known = known or {}
    with ctx.db.read() as session:
        tree.snapshot(session)
        heads, earlier_fps = keys.pin_heads(session, now)
        fresh = [
            head[0]
            for head in heads
            if not _same_certificates(known.get(head[0]), head, earlier_fps.get(head[0], ()))
        ]
        certs, earlier = (
            keys.pin_certificates(session, None if not known else fresh, now) if fresh else ({}, {})
        )
    out = []
    for peer, role, fingerprint, address, enrollment_address in heads:
        pin = known.get(peer)
        if peer in certs:
            pem, fingerprint = certs[peer]
            kept = tuple((p.encode(), fp) for p, fp in earlier.get(peer, ()))
            pin = Pin(peer, role, pem.encode(), fingerprint, address, kept, enrollment_address)
        elif pin is None:  # pragma: no cover - read in the same snapshot as its head
            raise NotFoundError(f"expected the certificate of {peer}, found none")
        elif (pin.role, pin.address, pin.enrollment_address) != (
            role,
            address,
            enrollment_address,
        ):
            pin = replace(pin, role=role, address=address, enrollment_address=enrollment_address)
        out.append(pin)
    return out


def _same_certificates(pin: Pin | None, head: keys.PinHead, earlier: Sequence[bytes]) -> bool:
    """`pin` has the certificates `head` and `earlier` name (by fingerprint)."""
    return pin is not None and pin.fingerprints == (head[2], *earlier)


@dataclass(frozen=True)
class LinkView:
    """One row of `link list`: a linked peer, or an expected or invited child not linked.

    `state`: connected | not connected | never connected (linked, no stream yet) |
    revoked | invited (a token is out) | waiting for approval (a join came, manual mode) |
    approved (the child has yet to confirm) | never linked. `unacked` envelopes wait for
    the peer's acknowledgement, the oldest queued at `oldest_unacked_at`: the lag is
    `lag_messages` sequences and `lag_seconds` (that envelope's age).
    """

    peer_id: str
    role: str
    name: str
    address: str | None
    created_at: dt.datetime | None
    last_seen_at: dt.datetime | None
    last_error: str | None
    outbox_depth: int
    sent: int
    acked: int
    received: int
    peer_checkpoint_size: int = 0
    suspended_by_entry: int | None = None
    expected: bool = False
    state: str = "not connected"
    connected: bool = False
    connected_since: dt.datetime | None = None
    oldest_unacked_at: dt.datetime | None = None
    lag_seconds: float | None = None
    revoked_at: dt.datetime | None = None
    agreement_entry: int | None = None
    tls_sha256: str | None = None
    invite_expires_at: dt.datetime | None = None
    lag_messages: int = 0  # sequences sent or queued past the peer's last acknowledgement

    @property
    def unacked(self) -> int:
        return self.outbox_depth


def _view(
    session: Session, link: Link, now: dt.datetime, *, expected: bool, name: str | None = None
) -> LinkView:
    connected = (
        link.revoked_at is None
        and link.connected_since is not None
        and link.last_seen_at is not None
        and now - link.last_seen_at <= STALE_AFTER
    )
    if link.revoked_at is not None:
        state = "revoked"
    elif connected:
        state = "connected"
    elif link.last_seen_at is None:
        state = "never connected"
    else:
        state = "not connected"
    oldest = link_state.oldest_unacked(session, link.peer_id)
    return LinkView(
        link.peer_id,
        link.role,
        name or link.name,
        link.address,
        link.created_at,
        link.last_seen_at,
        link.last_error,
        queries.outbox_depth(session, link.peer_id),
        link.next_out_seq - 1,
        link.acked_out_seq,
        link.last_in_seq,
        link.peer_checkpoint_size,
        link.suspended_by_entry,
        expected=expected,
        state=state,
        connected=connected,
        connected_since=link.connected_since if connected else None,
        oldest_unacked_at=oldest,
        lag_seconds=None if oldest is None else max(0.0, (now - oldest).total_seconds()),
        revoked_at=link.revoked_at,
        agreement_entry=link.agreement_entry,
        tls_sha256=link.tls_fingerprint.hex(),
        lag_messages=max(0, link.next_out_seq - 1 - link.acked_out_seq),
    )


def list_links(ctx: NodeContext) -> list[LinkView]:
    """The active links, parent first."""
    now = ctx.clock.now()
    with ctx.db.read() as session:
        return [
            _view(session, link, now, expected=link.peer_id in ctx.config.expected_children)
            for link in queries.list_links(session, active_only=True)
        ]


_INVITE_STATES = {"open": "invited", "pending": "waiting for approval", "approved": "approved"}


def _unlinked(peer: str, name: str, expected: bool, invite: Invite | None) -> LinkView:
    state = "never linked" if invite is None else _INVITE_STATES[invite.state]
    fp = (
        None
        if invite is None or invite.child_tls_fingerprint is None
        else invite.child_tls_fingerprint
    )
    return LinkView(
        peer,
        "child",
        name,
        None,
        None,
        None,
        None,
        0,
        0,
        0,
        0,
        expected=expected,
        state=state,
        tls_sha256=None if fp is None else fp.hex(),
        invite_expires_at=None if invite is None else invite.expires_at,
    )


@dataclass(frozen=True)
class LinkReport:
    """What `link list` shows: every row, and the expected children's tally."""

    rows: list[LinkView]
    expected: int
    connected: int
    not_connected: list[LinkView]

    def summary(self) -> str:
        """E.g. "8 of 10 expected children connected; not connected: id-64-08 Kabupaten
        Kutai Timur (never linked), ..." """
        head = f"{self.connected} of {self.expected} expected children connected"
        if not self.not_connected:
            return head
        return (
            head
            + "; not connected: "
            + ", ".join(f"{v.peer_id} {v.name} ({_why(v)})" for v in self.not_connected)
        )


def _why(view: LinkView) -> str:
    if view.state == "revoked" and view.revoked_at is not None:
        return f"link revoked {when(view.revoked_at)}"
    if view.state == "invited" and view.invite_expires_at is not None:
        return f"invited, token expires {when(view.invite_expires_at)}"
    if view.state == "not connected" and view.last_seen_at is not None:
        return f"last seen {when(view.last_seen_at)}"
    return view.state


def link_report(ctx: NodeContext) -> LinkReport:
    """The parent, the expected children in node.yaml order (linked or not), other linked
    children, children with a live invite, and revoked links; with the expected tally."""
    now = ctx.clock.now()
    with ctx.db.read() as session:
        links = {link.peer_id: link for link in queries.list_links(session)}
        invites: dict[str, Invite] = {}
        for row in link_state.live_invites(session, now):
            invites.setdefault(row.child_id, row)
        rows: list[LinkView] = [
            _view(session, link, now, expected=False)
            for link in links.values()
            if link.role == "parent" and link.revoked_at is None
        ]
        for child in ctx.config.expected:
            link = links.get(child.node_id)
            invite = invites.get(child.node_id)
            if link is not None:
                rows.append(_view(session, link, now, expected=True, name=child.name))
            else:
                name = child.name or (invite.child_name if invite is not None else "")
                rows.append(_unlinked(child.node_id, name, True, invite))
        listed = {row.peer_id for row in rows}
        for link in links.values():
            if link.peer_id not in listed and link.role == "child" and link.revoked_at is None:
                rows.append(_view(session, link, now, expected=False))
                listed.add(link.peer_id)
        for peer, invite in sorted(invites.items()):
            if peer not in listed and peer not in links:
                rows.append(_unlinked(peer, invite.child_name, False, invite))
                listed.add(peer)
        for link in links.values():
            if link.peer_id not in listed:
                rows.append(_view(session, link, now, expected=False))
    expected_rows = [r for r in rows if r.expected]
    missing = [r for r in expected_rows if not r.connected]
    return LinkReport(rows, len(expected_rows), len(expected_rows) - len(missing), missing)


# --- ending a link -----------------------------------------------------------------------


@dataclass(frozen=True)
class Revocation:
    """A link this node ended: its LinkRevoked entry, and what was waiting for the peer."""

    peer_id: str
    role: str
    ledger_index: int
    undelivered: int


def revoke(ctx: NodeContext, peer: str, reason: str) -> Revocation:
    """End the link with `peer` (this node's child, or its parent) at once: record
    LinkRevoked signed by this node and unpin the peer, in one transaction."""
    with ctx.db.write() as session:
        return revoke_in(session, ctx, peer, reason)


def revoke_in(session: Session, ctx: NodeContext, peer: str, reason: str) -> Revocation:
    """`revoke` in the caller's transaction."""
    peer_id: NodeId = parse_node_id(peer)
    reason = reason.strip()
    me = ctx.node_id
    own_key = ctx.signing_key.public.raw
    link = queries.get_link(session, peer_id, lock=True)
    if link is None:
        raise NotFoundError(
            f"{peer_id} is not linked to this node; `lapor-node link list` shows its links"
        )
    if link.revoked_at is not None:
        raise StateError(
            f"the link with {peer_id} was already revoked on {when(link.revoked_at)}"
            + ("" if link.revoked_entry is None else f" (ledger entry {link.revoked_entry})")
        )
    now = ctx.clock.now()
    if link.role == "child":
        parent_id, parent_key, child_id, child_key = me, own_key, peer_id, link.signing_key
    else:
        parent_id, parent_key, child_id, child_key = peer_id, link.signing_key, me, own_key
    signed = sign_revocation(
        ctx.signing_key,
        parent_id=parent_id,
        parent_signing_key=parent_key,
        child_id=child_id,
        child_signing_key=child_key,
        revoked_by=me,
        revoked_at=now,
        reason=reason,
    )
    index = record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(link_revoked=ledger_pb2.LinkRevoked(revocation=signed)),
    )
    link.revoked_at = now
    link.revoked_entry = index
    link.connected_since = None
    link.last_error = f"revoked by this node: {reason}" if reason else "revoked by this node"
    undelivered = queries.outbox_depth(session, peer_id)
    return Revocation(peer_id, link.role, index, undelivered)


# --- the running node's connection marks -------------------------------------------------


def mark_connected(ctx: NodeContext, peer: str, connected: bool) -> None:
    """`serve` has (True) or no longer has (False) a live stream with `peer`."""
    with ctx.db.write() as session:
        mark_connected_in(session, ctx, peer, connected)


def mark_connected_in(session: Session, ctx: NodeContext, peer: str, connected: bool) -> None:
    """`mark_connected` in the caller's transaction."""
    mark_connections_in(session, [(peer, ctx.clock.now() if connected else None)])


def mark_connections_in(session: Session, marks: Sequence[tuple[str, dt.datetime | None]]) -> None:
    """Many `mark_connected`s in the caller's transaction, with one statement (group
    commit: the connections and disconnections of many links, decision 0043): each
    (peer, since when it has a live stream, or None: no longer), in the order they
    happened. A peer ends as its latest mark left it (a disconnect that raced a connect),
    and last seen when it last connected, as one mark_connected after another would."""
    final: dict[str, tuple[dt.datetime | None, dt.datetime | None]] = {}
    for peer, since in marks:
        seen = since if since is not None else final.get(peer, (None, None))[1]
        final[peer] = (since, seen)
    link_state.set_connected_many(
        session, [(peer, since, seen) for peer, (since, seen) in final.items()]
    )


def heartbeat(ctx: NodeContext, peers: Collection[str]) -> None:
    """The streams with `peers` are still live."""
    if peers:
        with ctx.db.write() as session:
            link_state.touch(session, peers, ctx.clock.now())


def reset_connections(ctx: NodeContext) -> None:
    """No stream is live (the node starts or stops)."""
    with ctx.db.write() as session:
        reset_connections_in(session, ctx)


def reset_connections_in(session: Session, ctx: NodeContext) -> None:
    """`reset_connections` in the caller's transaction."""
    link_state.clear_connections(session)
