"""The queries of operator credentials (node.services.admin)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.store.models import OperatorRow

__all__ = ["active_operator", "operator_by_digest"]


def active_operator(session: Session, *, lock: bool = False) -> OperatorRow | None:
    """The operator whose credential is not revoked (at most one); with `lock`, its row
    is locked until the transaction ends (a handover replaces it)."""
    stmt = select(OperatorRow).where(OperatorRow.revoked_at.is_(None)).order_by(OperatorRow.id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def operator_by_digest(session: Session, digest: bytes) -> OperatorRow | None:
    """The operator whose credential has SHA-256 `digest`, revoked or not."""
    return session.execute(
        select(OperatorRow).where(OperatorRow.credential_sha256 == digest)
    ).scalar_one_or_none()
