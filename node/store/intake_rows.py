"""The queries of intake: gateways' idempotency keys and attachments stored by SHA-256.
Services call these with a Session from Database.write() or Database.read(), like
node.store.queries.

Invariants: a blob row is written once per SHA-256 (a concurrent second writer of the same
bytes does nothing), and never without the complaint_attachments row that uses it in the
same transaction; a trigger removes it with the last such row (migration 0008).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from node.store.models import AttachmentBlob, ComplaintAttachment, IntakeRequest

__all__ = [
    "attachment_count",
    "blob_count",
    "blob_for",
    "complaint_attachments",
    "get_request",
    "put_blob",
    "request_for_complaint",
]


def get_request(session: Session, gateway: str, key: str) -> IntakeRequest | None:
    return session.get(IntakeRequest, (gateway, key))


def request_for_complaint(session: Session, gateway: str, tracking_id: str) -> IntakeRequest | None:
    """The request by which `gateway` created `tracking_id`, if it did."""
    stmt = select(IntakeRequest).where(
        IntakeRequest.gateway == gateway, IntakeRequest.tracking_id == tracking_id
    )
    return session.execute(stmt).scalars().first()


def put_blob(session: Session, sha256: bytes, data: bytes, at: dt.datetime) -> None:
    """Store `data` under `sha256` unless it is stored already (no error if so, even when
    another transaction stores the same bytes at the same time)."""
    values = {"sha256": sha256, "size": len(data), "data": data, "stored_at": at}
    session.flush()  # the ORM rows staged before must reach the database first
    if session.get_bind().dialect.name == "postgresql":
        session.execute(postgresql.insert(AttachmentBlob).values(values).on_conflict_do_nothing())
    else:
        session.execute(sqlite.insert(AttachmentBlob).values(values).on_conflict_do_nothing())


def complaint_attachments(session: Session, tracking_id: str) -> Sequence[ComplaintAttachment]:
    stmt = (
        select(ComplaintAttachment)
        .where(ComplaintAttachment.tracking_id == tracking_id)
        .order_by(ComplaintAttachment.position)
    )
    return session.execute(stmt).scalars().all()


def blob_for(session: Session, tracking_id: str, sha256: bytes) -> bytes | None:
    """The bytes of `sha256` if complaint `tracking_id` lists it and it is still kept."""
    stmt = (
        select(AttachmentBlob.data)
        .join(ComplaintAttachment, ComplaintAttachment.sha256 == AttachmentBlob.sha256)
        .where(ComplaintAttachment.tracking_id == tracking_id, AttachmentBlob.sha256 == sha256)
    )
    return session.execute(stmt).scalar_one_or_none()


def blob_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(AttachmentBlob)).scalar_one())


def attachment_count(session: Session) -> int:
    stmt = select(func.count()).select_from(ComplaintAttachment)
    return int(session.execute(stmt).scalar_one())
