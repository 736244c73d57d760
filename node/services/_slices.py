"""The writes of one slice of a scheduler pass (node.services.scheduler.act_in), all at once.

Invariant: for the complaints of a slice, the same rows, ledger entries, events and
envelopes as node.services._transitions.transition applied to each in turn (role
``system``, actions close and escalate), except that within the slice the entries are
grouped by kind: every StatusChanged first, then every StatusUpdateSent. For each complaint
its StatusChanged still comes before its StatusUpdateSent, so the replay
(node.workflow.replay) gives the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.services import checkpoints
from node.services._events import add_events
from node.services._ledger import record_many
from node.services._notes import keep_note
from node.services._outbox import sealed, store_sealed
from node.services.context import NodeContext
from node.store import scheduling
from node.store.models import Complaint, Link
from node.workflow.lifecycle import Action, Role, Status

__all__ = ["Act", "store_acts"]


@dataclass(frozen=True)
class Act:
    """One action of a slice: `row` (locked, still as it was) goes to `after`."""

    row: Complaint
    action: Action
    after: Status
    note: str | None


def store_acts(
    session: Session, ctx: NodeContext, acts: Sequence[Act], parents: dict[str, Link | None]
) -> None:
    """Write what `acts` do, all at once: their notes, one StatusChanged entry each (one
    append), the rows (one UPDATE per action), one event each, and for each complaint that
    came from a parent a StatusUpdate to it under one checkpoint signed after the
    StatusChanged entries and the parents' links were locked, recorded as StatusUpdateSent
    (one append). The same rows, entries and envelopes as `transition` on each in turn,
    except that their entries are grouped by kind within the slice."""
    if not acts:
        return
    me = ctx.node_id
    at = ctx.clock.now()
    commitments = [
        b""
        if a.note is None
        else keep_note(session, a.row.tracking_id, a.action.value, a.note, me, at)
        for a in acts
    ]
    indexes = record_many(
        session,
        ctx,
        [
            ledger_pb2.LedgerEntry(
                status_changed=ledger_pb2.StatusChanged(
                    tracking_id=a.row.tracking_id,
                    action=a.action.value,
                    from_status=a.row.status,
                    to_status=a.after.value,
                    actor=me,
                    role=Role.system.value,
                    note_commitment=commitment,
                )
            )
            for a, commitment in zip(acts, commitments, strict=True)
        ],
    )
    scheduling.close_all(session, [a.row.tracking_id for a in acts if a.action is Action.close], at)
    scheduling.escalate_all(
        session, [a.row.tracking_id for a in acts if a.action is Action.escalate], at
    )
    holders = [
        a.row.received_from
        if a.action is Action.escalate and a.row.received_from is not None
        else a.row.holder
        for a in acts
    ]
    add_events(
        session,
        [
            (
                a.row.tracking_id,
                at,
                a.after.value,
                me,
                f"{a.action.value} ({Role.system.value})"
                + ("" if holder == me else f"; now held by {holder}"),
                index,
            )
            for a, holder, index in zip(acts, holders, indexes, strict=True)
        ],
    )
    up = [
        (a, holder, commitment)
        for a, holder, commitment in zip(acts, holders, commitments, strict=True)
        if a.row.received_from is not None
    ]
    if not up:
        return
    checkpoint = checkpoints.sign_in(session, ctx)[0].note
    envelopes = []
    for a, holder, commitment in up:
        link = parents[a.row.received_from or ""]
        assert link is not None, "act_in leaves out complaints whose parent is not linked"
        update = envelope_pb2.StatusUpdate(
            tracking_id=a.row.tracking_id,
            action=a.action.value,
            status=a.after.value,
            holder=holder,
            actor=me,
            note_commitment=commitment,
        )
        update.at.FromDatetime(at)
        envelope, signed = sealed(
            ctx, link.peer_id, link.next_out_seq, checkpoint, at, status_update=update
        )
        link.next_out_seq += 1
        envelopes.append((envelope, signed, a.row.tracking_id, False))
    store_sealed(session, envelopes, at)
    record_many(
        session,
        ctx,
        [
            ledger_pb2.LedgerEntry(status_update_sent=ledger_pb2.StatusUpdateSent(envelope=signed))
            for _, signed, _, _ in envelopes
        ],
    )
