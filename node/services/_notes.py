"""Free text of the complaint lifecycle, kept beside the ledger (node.services.lifecycle).

Invariants:

1. A note (a follow-up, a resolution, a reason, a reporter's reply) is stored in
   ``complaint_notes`` with a fresh 32-byte salt; ledger entries and envelopes carry only
   SHA-256(salt || UTF-8 text), so erasing the row leaves every proof valid.
2. Its text travels beside the envelope that commits to it, in the Delivery frame's content
   fields (``attach_notes``), as complaint content does (ADR 0001); the receiver keeps it
   only if it matches the commitment the signed envelope carries (``receive_note``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Sequence

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import envelope_pb2, federation_pb2
from node.complaints import check_commitment
from node.errors import TamperedEntryError, ValidationError
from node.store import notes, queries
from node.store.models import ComplaintNoteRow

__all__ = [
    "MAX_NOTE_CHARS",
    "NOTE_KINDS",
    "attach_notes",
    "keep_note",
    "note_text",
    "notes_of",
    "receive_note",
]

NOTE_KINDS = frozenset({"status_update", "reporter_reply"})
"""The payloads that may commit to a note (the outbox's `kind`): only these need
`attach_notes`."""

MAX_NOTE_CHARS = 20_000


def keep_note(
    session: Session,
    tracking_id: str,
    kind: str,
    text: str,
    author: str,
    at: dt.datetime,
    *,
    salt: bytes | None = None,
) -> bytes:
    """Store ``text`` beside the ledger under a fresh (or the given) salt; return the
    commitment SHA-256(salt || utf-8 text)."""
    salt = os.urandom(32) if salt is None else salt
    commitment = hashlib.sha256(salt + text.encode("utf-8")).digest()
    queries.add(
        session,
        ComplaintNoteRow(
            tracking_id=tracking_id,
            commitment=commitment,
            kind=kind,
            author=author,
            at=at,
            text=text,
            salt=salt,
        ),
    )
    return commitment


def note_text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text:
        raise ValidationError(f"{what} is empty; write it out")
    if len(text) > MAX_NOTE_CHARS:
        raise ValidationError(f"{what} is {len(text)} characters; the limit is {MAX_NOTE_CHARS}")
    return text


def notes_of(session: Session, tracking_id: str) -> Sequence[ComplaintNoteRow]:
    """The notes kept on this node for a complaint, oldest first."""
    return notes.notes_of(session, tracking_id)


def attach_notes(session: Session, deliveries: Sequence[federation_pb2.Delivery]) -> None:
    """Put the note text (and its salt) beside each StatusUpdate or ReporterReply envelope
    in ``deliveries`` that commits to one this node keeps, in the Delivery's content
    fields. A note erased since stays erased: the envelope goes without it."""
    for delivery in deliveries:
        env = envelope_pb2.Envelope.FromString(delivery.envelope.body)
        kind = env.WhichOneof("payload")
        if kind == "status_update":
            commitment = env.status_update.note_commitment
        elif kind == "reporter_reply":
            commitment = env.reporter_reply.text_commitment
        else:
            continue
        if not commitment:
            continue
        note = notes.note_by_commitment(session, commitment)
        if note is not None:
            delivery.content = note.text.encode("utf-8")
            delivery.content_salt = note.salt


def receive_note(
    session: Session,
    tracking_id: str,
    kind: str,
    commitment: bytes,
    delivery: federation_pb2.Delivery,
    author: str,
    at: dt.datetime,
) -> None:
    """Keep the note delivered beside an envelope, after checking it against the commitment
    the signed envelope carries. No note delivered (erased at the sender) is not an error."""
    if not (delivery.content or delivery.content_salt):
        return
    if not commitment:
        raise ValidationError(
            f"{tracking_id}: text delivered beside an envelope that commits to none"
        )
    try:
        check_commitment(commitment, delivery.content, delivery.content_salt)
        text = delivery.content.decode("utf-8")
    except (TamperedEntryError, UnicodeDecodeError) as e:
        raise ValidationError(f"{tracking_id}: the {kind} text beside the envelope: {e}") from e
    if notes.note_by_commitment(session, commitment) is None:
        keep_note(session, tracking_id, kind, text, author, at, salt=delivery.content_salt)
