"""The queries of the complaint notes kept beside the ledger (node.services._notes)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.store.models import ComplaintNoteRow

__all__ = ["note_by_commitment", "notes_of"]


def notes_of(session: Session, tracking_id: str) -> Sequence[ComplaintNoteRow]:
    """The notes kept on this node for a complaint, oldest first."""
    return session.scalars(
        select(ComplaintNoteRow)
        .where(ComplaintNoteRow.tracking_id == tracking_id)
        .order_by(ComplaintNoteRow.id)
    ).all()


def note_by_commitment(session: Session, commitment: bytes) -> ComplaintNoteRow | None:
    return session.scalars(
        select(ComplaintNoteRow).where(ComplaintNoteRow.commitment == commitment).limit(1)
    ).first()
