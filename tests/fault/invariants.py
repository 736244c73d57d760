"""What must hold once every fault has healed, read from the nodes' databases and ledgers.

For every link (parent, child) and each direction:
  - lost: an envelope the sender queued (its outbox) that the receiver never committed
    (no inbox row for (sender, message_id)), or one still unacknowledged;
  - duplicated: an envelope the receiver's ledger records more than once (by message id),
    an inbox row the sender never queued, or a referral with more than one receipt.
For every node: its audit export verifies (node.ledger.audit.verify_export); for every link:
`reconcile_exports` of the two exports finds no discrepancy.

Used by tests/fault/ and bench/chaos.py.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.errors import NodeError
from node.ledger.audit import verify_export
from node.ledger.reconcile import reconcile_exports
from node.services import audit, checkpoints, links
from node.services.context import NodeContext
from node.store.models import InboxRow, LedgerEntryRow, Link, OutboxRow

__all__ = ["Tally", "check_tree", "quiet", "received_ids"]

# Ledger entry kinds that record an envelope received from a peer.
RECEIVED_KINDS = (
    "referral_received",
    "receipt_received",
    "status_update_received",
    "reply_received",
)


@dataclass
class Tally:
    """The outcome over a tree: counts, and one line per problem found."""

    lost: int = 0
    duplicated: int = 0
    verified: bool = True
    reconciled: bool = True
    envelopes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated and self.verified and self.reconciled

    def lines(self) -> list[str]:
        return [
            f"lost: {self.lost}",
            f"duplicated: {self.duplicated}",
            f"ledgers verified: {'yes' if self.verified else 'no'}",
            f"reconciled: {'yes' if self.reconciled else 'no'}",
        ]


def received_ids(ctx: NodeContext, sender: str) -> Counter[str]:
    """Message ids of envelopes from `sender` that this node's ledger records receiving,
    each with how many entries record it."""
    seen: Counter[str] = Counter()
    with ctx.db.read() as session:
        for (raw,) in session.execute(select(LedgerEntryRow.entry).order_by(LedgerEntryRow.idx)):
            entry = ledger_pb2.LedgerEntry.FromString(raw)
            kind = entry.WhichOneof("kind")
            if kind not in RECEIVED_KINDS:
                continue
            signed = getattr(entry, kind).envelope
            env = envelope_pb2.Envelope.FromString(signed.body)
            if env.sender == sender:
                seen[env.message_id] += 1
    return seen


def _outbox(ctx: NodeContext, peer: str) -> list[tuple[str, str, bool]]:
    """(message id, kind, acknowledged) of every envelope this node queued for `peer`."""
    with ctx.db.read() as session:
        acked = session.scalar(select(Link.acked_out_seq).where(Link.peer_id == peer)) or 0
        return [
            (row.message_id, row.kind, row.sequence <= acked)
            for row in session.scalars(
                select(OutboxRow).where(OutboxRow.peer_id == peer).order_by(OutboxRow.sequence)
            )
        ]


def _inbox(ctx: NodeContext, sender: str) -> set[str]:
    with ctx.db.read() as session:
        return set(session.scalars(select(InboxRow.message_id).where(InboxRow.sender == sender)))


def _direction(sender: NodeContext, receiver: NodeContext, tally: Tally) -> None:
    queued = _outbox(sender, receiver.node_id)
    inbox = _inbox(receiver, sender.node_id)
    ledgered = received_ids(receiver, sender.node_id)
    ids = {message_id for message_id, _, _ in queued}
    tally.envelopes += len(queued)
    for message_id, kind, acked in queued:
        where = f"{kind} {message_id} {sender.node_id}->{receiver.node_id}"
        if message_id not in inbox:
            tally.lost += 1
            tally.problems.append(f"lost: {where} never committed by the receiver")
        elif not acked:
            tally.lost += 1
            tally.problems.append(f"lost: {where} committed but never acknowledged")
        # Receipts are not ledgered by their sender, everything else received is.
        if ledgered[message_id] > 1:
            tally.duplicated += ledgered[message_id] - 1
            tally.problems.append(f"duplicated: {where} ledgered {ledgered[message_id]} times")
    for message_id in sorted(inbox - ids):
        tally.duplicated += 1
        tally.problems.append(
            f"duplicated: {sender.node_id}->{receiver.node_id} {message_id} "
            "received but never queued by the sender"
        )


def _receipts(parent: NodeContext, child: NodeContext, tally: Tally) -> None:
    """One receipt per referral, in the parent's ledger."""
    referrals = {m for m, kind, _ in _outbox(parent, child.node_id) if kind == "referral"}
    per_referral: Counter[str] = Counter()
    with parent.db.read() as session:
        for (raw,) in session.execute(select(LedgerEntryRow.entry)):
            entry = ledger_pb2.LedgerEntry.FromString(raw)
            if entry.WhichOneof("kind") != "receipt_received":
                continue
            env = envelope_pb2.Envelope.FromString(entry.receipt_received.envelope.body)
            if env.sender == child.node_id:
                per_referral[env.receipt.referral_message_id] += 1
    for message_id in referrals:
        if per_referral[message_id] > 1:
            tally.duplicated += per_referral[message_id] - 1
            tally.problems.append(
                f"duplicated: referral {message_id} receipted {per_referral[message_id]} times"
            )


def _export(ctx: NodeContext) -> list[str]:
    out = io.StringIO()
    audit.export(ctx, out)
    return out.getvalue().splitlines(keepends=True)


def check_tree(contexts: Sequence[NodeContext], pairs: Sequence[tuple[str, str]]) -> Tally:
    """Check every invariant (module docstring) over `contexts`, linked as `pairs` of
    (parent id, child id). Call it once the tree is quiet (see `quiet`)."""
    by_id = {ctx.node_id: ctx for ctx in contexts}
    tally = Tally()
    for parent_id, child_id in pairs:
        parent, child = by_id[parent_id], by_id[child_id]
        _direction(parent, child, tally)
        _direction(child, parent, tally)
        _receipts(parent, child, tally)
    exports = {}
    for ctx in contexts:
        exports[ctx.node_id] = lines = _export(ctx)
        try:
            verify_export(lines, trusted_vkey=checkpoints.verifier_key(ctx))
        except NodeError as e:
            tally.verified = False
            tally.problems.append(f"{ctx.node_id}: audit verify failed: {e}")
    for parent_id, child_id in pairs:
        p, c = exports[parent_id], exports[child_id]
        result = reconcile_exports(
            lambda p=p: p,
            lambda c=c: c,
            trusted_vkey=checkpoints.verifier_key(by_id[parent_id]),
        )
        if not result.ok:
            tally.reconciled = False
            tally.problems += [f"{parent_id}/{child_id}: {f}" for f in result.discrepancies]
    return tally


def quiet(contexts: Sequence[NodeContext]) -> bool:
    """True when no node has an envelope waiting for a peer's acknowledgement."""
    for ctx in contexts:
        for view in links.list_links(ctx):
            if view.outbox_depth:
                return False
    return True
