"""The SQL of receiving envelopes in bulk (node.services.bulk): one lookup for a whole run
of envelopes instead of one per envelope, and the updates a run makes, as executemany."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields

from sqlalchemy import Select, Update, bindparam, func, literal, select, true, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from node.store.models import Complaint, ComplaintNoteRow, InboxRow, OutboxRow
from node.store.queries import one_of

__all__ = [
    "ComplaintState",
    "SentReferral",
    "complaint_states",
    "existing_complaints",
    "known_notes",
    "outbox_ids",
    "seen_messages",
    "seen_messages_of",
    "sent_referrals",
    "update_complaints",
]


@dataclass(frozen=True)
class SentReferral:
    """An outbox row as a receipt for it needs it."""

    peer_id: str
    kind: str
    body: bytes
    tracking_id: str | None
    queued_at: dt.datetime  # the row's created_at: delivery latency runs from it


@dataclass
class ComplaintState:
    """Where a complaint stands, as the bulk path reads it, changes it envelope by envelope
    in memory (a receipt, then the status updates that follow it), and writes it back
    with `update_complaints`: the columns of Complaint that receiving may change."""

    tracking_id: str
    status: str
    holder: str
    referral_message_id: str | None
    received_from: str | None
    referred_to: str | None
    updated_at: dt.datetime
    verified_at: dt.datetime | None
    disposed_at: dt.datetime | None
    resolved_at: dt.datetime | None
    replied_at: dt.datetime | None


def seen_messages(session: Session, sender: str, message_ids: Collection[str]) -> set[str]:
    """Which of `message_ids` from `sender` are already in the inbox."""
    if not message_ids:
        return set()
    return set(
        session.scalars(
            select(InboxRow.message_id).where(
                InboxRow.sender == sender, one_of(session, InboxRow.message_id, message_ids)
            )
        )
    )


def seen_messages_of(session: Session, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (sender, message_id) pairs are already in the inbox: one lookup for
    the envelopes of many links (`seen_messages` for one sender). On PostgreSQL the pairs
    go as two arrays, unnested side by side, and each pair probes the inbox's key once (a
    LATERAL subquery with LIMIT, which the planner keeps as a nested loop whatever plan it
    caches). Matching each column against an array of its own instead probed the key for
    every sender with every message id: once psycopg had prepared the statement, the
    generic plan took 167 ms for 128 senders and 512 ids against 60,000 rows, 2.4 ms this
    way (decision 0043). Elsewhere the pairs go as row values, a few hundred at a time."""
    wanted = set(pairs)
    if not wanted:
        return set()
    key = (InboxRow.sender, InboxRow.message_id)
    if session.get_bind().dialect.name == "postgresql":
        return {(s, m) for s, m in session.execute(_seen_pairs(list(wanted)))}
    found: set[tuple[str, str]] = set()
    listed = list(wanted)
    for first in range(0, len(listed), _ROW_VALUES):
        stmt = select(*key).where(tuple_(*key).in_(listed[first : first + _ROW_VALUES]))
        found.update((s, m) for s, m in session.execute(stmt))
    return found


def _seen_pairs(pairs: list[tuple[str, str]]) -> Select[str, str]:
    """SELECT the pairs found in the inbox FROM unnest(:senders, :message_ids), each probing
    the inbox's key in a LATERAL subquery (seen_messages_of)."""
    senders = bindparam(None, [s for s, _ in pairs], type_=postgresql.ARRAY(InboxRow.sender.type))
    ids = bindparam(None, [m for _, m in pairs], type_=postgresql.ARRAY(InboxRow.message_id.type))
    asked = func.unnest(senders, ids).table_valued("sender", "message_id").render_derived("asked")
    hit = (
        select(literal(1))
        .where(InboxRow.sender == asked.c.sender, InboxRow.message_id == asked.c.message_id)
        .limit(1)
        .lateral("hit")
    )
    return select(asked.c.sender, asked.c.message_id).select_from(asked.join(hit, true()))


_ROW_VALUES = 400  # pairs per SQLite statement: two parameters each, within its 999


def existing_complaints(session: Session, tracking_ids: Collection[str]) -> set[str]:
    """Which of `tracking_ids` this node already has."""
    if not tracking_ids:
        return set()
    return set(
        session.scalars(
            select(Complaint.tracking_id).where(
                one_of(session, Complaint.tracking_id, tracking_ids)
            )
        )
    )


def sent_referrals(session: Session, message_ids: Collection[str]) -> dict[str, SentReferral]:
    """The outbox rows with these message ids, by message id."""
    if not message_ids:
        return {}
    rows = session.execute(
        select(
            OutboxRow.message_id,
            OutboxRow.peer_id,
            OutboxRow.kind,
            OutboxRow.body,
            OutboxRow.tracking_id,
            OutboxRow.created_at,
        ).where(one_of(session, OutboxRow.message_id, message_ids))
    )
    return {m: SentReferral(p, k, b, t, q) for m, p, k, b, t, q in rows}


def complaint_states(session: Session, tracking_ids: Collection[str]) -> dict[str, ComplaintState]:
    """Where each of these complaints stands, by tracking id (absent ones are left out)."""
    if not tracking_ids:
        return {}
    rows = session.execute(
        select(*(getattr(Complaint, name) for name in _STATE_COLUMNS)).where(
            one_of(session, Complaint.tracking_id, tracking_ids)
        )
    )
    return {row[0]: ComplaintState(*row) for row in rows}


_STATE_COLUMNS = tuple(f.name for f in fields(ComplaintState))
# What update_complaints writes: the columns receiving may change.
_CHANGED = (
    "status",
    "holder",
    "updated_at",
    "verified_at",
    "disposed_at",
    "resolved_at",
    "replied_at",
)
_UPDATE_COMPLAINT = (
    update(Complaint)
    .where(Complaint.tracking_id == bindparam("tid"))
    .values({name: bindparam(f"new_{name}") for name in _CHANGED})
)


def update_complaints(session: Session, states: Sequence[ComplaintState]) -> None:
    """Write each state's status, holder and dates to its complaint: on PostgreSQL with one
    UPDATE ... FROM unnest(one array per column), one statement however many complaints
    (decision 0041: an executemany was a statement per row, each costing the server a
    round of work on a loaded machine); elsewhere with one executemany. Complaint objects
    this session holds are expired, so they are read again when next used; any it has
    staged are written first, so no later flush writes over this update."""
    if not states:
        return
    if any(isinstance(obj, Complaint) for obj in (*session.new, *session.dirty)):
        session.flush()
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(_update_from_arrays(states))
    else:
        session.connection().execute(
            _UPDATE_COMPLAINT,
            [
                {"tid": state.tracking_id, **{f"new_{n}": getattr(state, n) for n in _CHANGED}}
                for state in states
            ],
        )
    changed = {state.tracking_id for state in states}
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Complaint) and obj.tracking_id in changed:
            session.expire(obj)


def _update_from_arrays(states: Sequence[ComplaintState]) -> Update:
    """UPDATE complaints SET ... FROM unnest(:tracking_ids, :statuses, ...) WHERE the
    tracking ids match: the states' columns as one array parameter each."""
    names = ("tracking_id", *_CHANGED)
    table = Complaint.__table__
    arrays = [
        bindparam(
            f"new_{name}",
            [getattr(state, name) for state in states],
            type_=postgresql.ARRAY(table.c[name].type),
        )
        for name in names
    ]
    rows = func.unnest(*arrays).table_valued(*names).render_derived(name="new")
    return (
        update(Complaint)
        .where(Complaint.tracking_id == rows.c.tracking_id)
        .values({name: rows.c[name] for name in _CHANGED})
    )


def known_notes(session: Session, commitments: Collection[bytes]) -> set[bytes]:
    """Which of these note commitments this node keeps a note for already."""
    if not commitments:
        return set()
    return set(
        session.scalars(
            select(ComplaintNoteRow.commitment).where(
                one_of(session, ComplaintNoteRow.commitment, commitments)
            )
        )
    )


def outbox_ids(session: Session, peer_id: str, first: int, last: int) -> dict[int, int]:
    """Outbox row ids by sequence, for `peer_id`'s sequences first..last."""
    rows = session.execute(
        select(OutboxRow.sequence, OutboxRow.id).where(
            OutboxRow.peer_id == peer_id, OutboxRow.sequence.between(first, last)
        )
    )
    return {sequence: row_id for sequence, row_id in rows}
