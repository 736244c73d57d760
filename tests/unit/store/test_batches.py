"""node.store.batches.update_complaints: one executemany over complaints, which no staged
ORM change writes over, and which flushes nothing when nothing about complaints is
staged."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import event, select

from node.store import batches
from node.store.db import Database
from node.store.models import Complaint, Link

AT = dt.datetime(2021, 2, 1, 9, 0, tzinfo=dt.UTC)
LATER = AT + dt.timedelta(days=30)


def _complaint(n: int) -> Complaint:
    return Complaint(
        tracking_id=f"id-64.2021.{n:06d}",
        origin_node="id-64",
        classification="pengaduan",
        category="infrastruktur",
        region_code="64.02",
        channel="web",
        anonymous=False,
        confidential=False,
        needs_inspection=False,
        status="referred",
        holder="id-64",
        submitted_at=AT,
        received_at=AT,
        updated_at=AT,
        content_commitment=bytes(32),
    )


def _link() -> Link:
    return Link(
        peer_id="id-64-02",
        role="child",
        name="Kabupaten Kutai Kartanegara",
        signing_key=bytes(32),
        tls_cert_pem="",
        tls_fingerprint=bytes(32),
        created_at=AT,
    )


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    with database.write() as session:
        session.add_all([_complaint(n) for n in range(3)] + [_link()])
    yield database
    database.dispose()


def _accepted(tracking_id: str, disposed_at: dt.datetime | None) -> batches.ComplaintState:
    """The state of complaint `tracking_id` (as _complaint makes it) once its receipt from
    id-64-02 came at LATER."""
    return batches.ComplaintState(
        tracking_id=tracking_id,
        status="accepted",
        holder="id-64-02",
        referral_message_id=None,
        received_from=None,
        referred_to=None,
        updated_at=LATER,
        verified_at=None,
        disposed_at=disposed_at,
        resolved_at=None,
        replied_at=None,
    )


def _statements(db: Database) -> list[str]:
    seen: list[str] = []
    event.listen(
        db._writer, "before_cursor_execute", lambda *args: seen.append(str(args[2]).split()[0])
    )
    return seen


def test_a_staged_change_to_a_complaint_is_written_first(db: Database) -> None:
    """A complaint changed in the session before update_complaints ends as it set it:
    the staged change is flushed before the update, not after it."""
    with db.write() as session:
        row = session.get(Complaint, "id-64.2021.000001")
        assert row is not None
        row.status = "returned"  # staged, not yet flushed
        row.holder = "id-64"
        batches.update_complaints(session, [_accepted(row.tracking_id, None)])
        new = _complaint(9)
        session.add(new)  # staged new row, then accepted in the same statement
        batches.update_complaints(session, [_accepted(new.tracking_id, LATER)])
    with db.read() as session:
        got = {
            t: (s, h, u)
            for t, s, h, u in session.execute(
                select(
                    Complaint.tracking_id, Complaint.status, Complaint.holder, Complaint.updated_at
                )
            )
        }
    assert got["id-64.2021.000001"] == ("accepted", "id-64-02", LATER)
    assert got["id-64.2021.000009"] == ("accepted", "id-64-02", LATER)
    assert got["id-64.2021.000000"] == ("referred", "id-64", AT)


def test_other_staged_changes_stay_staged(db: Database) -> None:
    """With only a link changed in the session, update_complaints writes its one UPDATE of
    complaints and leaves the link's change to the flush at commit."""
    statements = _statements(db)
    with db.write() as session:
        link = session.get(Link, "id-64-02")
        assert link is not None
        link.last_in_seq = 7
        before = len(statements)
        batches.update_complaints(session, [_accepted("id-64.2021.000002", None)])
        assert statements[before:] == ["UPDATE"]  # complaints only
    with db.read() as session:
        assert session.scalar(select(Link.last_in_seq)) == 7
        assert (
            session.scalar(
                select(Complaint.status).where(Complaint.tracking_id == "id-64.2021.000002")
            )
            == "accepted"
        )
