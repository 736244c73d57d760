"""The pure replay (node.workflow.replay): entries it cannot apply as the services write
them are anomalies that name the entry, the replay goes on past them, and it keeps only
the complaints it is asked for."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2

from node._proto.lapor.v1 import complaint_pb2, envelope_pb2, ledger_pb2
from node.workflow.replay import LedgerReplay, tracking_id_of

AT = dt.datetime(2026, 5, 4, 2, 0, tzinfo=dt.UTC)


def _stamped(entry: ledger_pb2.LedgerEntry) -> bytes:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(AT)
    entry.node_id = "id-64"
    entry.recorded_at.CopyFrom(stamp)
    return entry.SerializeToString()


def registered(tracking_id: str) -> bytes:
    summary = complaint_pb2.ComplaintSummary(tracking_id=tracking_id, origin_node="id-64")
    return _stamped(
        ledger_pb2.LedgerEntry(
            complaint_registered=ledger_pb2.ComplaintRegistered(complaint=summary)
        )
    )


def changed(tracking_id: str, action: str, before: str, after: str) -> bytes:
    return _stamped(
        ledger_pb2.LedgerEntry(
            status_changed=ledger_pb2.StatusChanged(
                tracking_id=tracking_id,
                action=action,
                from_status=before,
                to_status=after,
                actor="id-64",
                role="receiving_admin",
            )
        )
    )


def referral_sent(tracking_id: str, to: str) -> bytes:
    envelope = envelope_pb2.Envelope(
        message_id="0190a0b0-0000-7000-8000-000000000001",
        sender="id-64",
        recipient=to,
        sequence=1,
        referral=envelope_pb2.Referral(
            complaint=complaint_pb2.ComplaintSummary(tracking_id=tracking_id)
        ),
    )
    signed = envelope_pb2.SignedEnvelope(body=envelope.SerializeToString(), signer="id-64")
    return _stamped(ledger_pb2.LedgerEntry(referral_sent=ledger_pb2.ReferralSent(envelope=signed)))


def test_a_history_replays_to_status_holder_target_and_clocks() -> None:
    """Registered, verified, referred: the columns the services would have written."""
    replay = LedgerReplay("id-64")
    for i, data in enumerate(
        [
            registered("id-64.2026.000001"),
            changed("id-64.2026.000001", "verify", "submitted", "verified"),
            referral_sent("id-64.2026.000001", "id-64-02"),
        ]
    ):
        replay.feed(i, data)
    state = replay.get("id-64.2026.000001")
    assert state is not None
    assert (state.status, state.holder, state.referred_to) == ("referred", "id-64", "id-64-02")
    assert state.referral_message_id == "0190a0b0-0000-7000-8000-000000000001"
    assert (state.received_at, state.verified_at, state.disposed_at) == (AT, AT, AT)
    assert replay.anomalies == []


def test_entries_the_services_could_not_have_written_are_anomalies_naming_the_entry() -> None:
    """A change for a complaint never registered, a change from another status than the
    replayed one, a second registration and bytes that are no entry: each is named by
    index, and the replay goes on (the last change still applies)."""
    replay = LedgerReplay("id-64")
    entries = [
        changed("id-64.2026.000009", "verify", "submitted", "verified"),
        registered("id-64.2026.000001"),
        changed("id-64.2026.000001", "follow_up", "verified", "in_progress"),
        registered("id-64.2026.000001"),
        b"\xff\xff not an entry",
    ]
    for i, data in enumerate(entries):
        replay.feed(i, data)
    assert [(a.index, a.tracking_id) for a in replay.anomalies] == [
        (0, "id-64.2026.000009"),
        (2, "id-64.2026.000001"),
        (3, "id-64.2026.000001"),
        (4, ""),
    ]
    assert "neither registered nor received" in replay.anomalies[0].detail
    assert "from verified" in replay.anomalies[1].detail
    assert replay.get("id-64.2026.000009") is None


def test_only_the_wanted_complaints_are_kept() -> None:
    """A replay limited to some tracking ids keeps no other, and sees no anomaly in the
    histories of the others."""
    replay = LedgerReplay("id-64", wanted={"id-64.2026.000002"}.__contains__)
    replay.feed(0, registered("id-64.2026.000001"))
    replay.feed(1, registered("id-64.2026.000002"))
    replay.feed(2, changed("id-64.2026.000003", "verify", "submitted", "verified"))
    assert len(replay) == 1 and replay.get("id-64.2026.000002") is not None
    assert replay.anomalies == []


def test_tracking_id_of_reads_the_complaint_an_entry_moves() -> None:
    """Direct fields and those inside carried envelopes; None for entries about no complaint."""
    assert tracking_id_of(registered("id-64.2026.000001")) == "id-64.2026.000001"
    assert tracking_id_of(referral_sent("id-64.2026.000002", "id-64-02")) == "id-64.2026.000002"
    assert tracking_id_of(_stamped(ledger_pb2.LedgerEntry())) is None
    assert tracking_id_of(b"\xff\xff") is None
