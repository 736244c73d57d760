"""Typed SQLAlchemy 2 models. Alembic (migrations/) owns the schema; a test checks that
these models and the migrations do not drift.

Invariants:
- `ledger_entries` is insert-only; database triggers refuse UPDATE and DELETE.
- `ledger_head.size` always equals the number of rows in `ledger_entries`; appends lock it.
- `complaint_contents` is the only table with personal data; erasing a row leaves every
  ledger entry and proof valid (entries hold only commitments).
- An outbox row and an inbox row are written in the same transaction as the change they
  carry; (links.peer_id, outbox.sequence) has no gaps.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AttachmentBlob",
    "Base",
    "CheckpointRow",
    "Complaint",
    "ComplaintAttachment",
    "ComplaintContentRow",
    "ComplaintEvent",
    "ComplaintNoteRow",
    "CosignatureRow",
    "Counter",
    "InboxRow",
    "IntakeRequest",
    "Invite",
    "LedgerEntryRow",
    "LedgerHead",
    "LedgerNodeRow",
    "Link",
    "OutboxRow",
    "OwnKey",
    "PeerKey",
    "ReporterIdentityRow",
    "StateCheckRow",
    "WitnessedLogRow",
]


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


NodeIdCol = String(63)


class Base(DeclarativeBase):
    pass


class Link(Base):
    """A pinned peer: this node's parent or one of its children."""

    __tablename__ = "links"

    peer_id: Mapped[str] = mapped_column(NodeIdCol, primary_key=True)
    role: Mapped[str] = mapped_column(String(8))  # parent | child
    name: Mapped[str] = mapped_column(String(200))
    signing_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    tls_cert_pem: Mapped[str] = mapped_column(Text)
    tls_fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    address: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    next_out_seq: Mapped[int] = mapped_column(BigInteger, default=1)
    acked_out_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_in_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    # Witnessing (docs/protocol.md): the peer's latest checkpoint note, as signed, that
    # this node accepted, and its size; a peer caught presenting inconsistent checkpoints
    # is suspended by the ledger entry that holds the evidence until an operator lifts it.
    peer_checkpoint: Mapped[bytes | None] = mapped_column(LargeBinary())
    peer_checkpoint_size: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    suspended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    suspended_by_entry: Mapped[int | None] = mapped_column(BigInteger)
    # The link lifecycle: the ledger entries that made (LinkAgreed; none for a link made by
    # hand) and ended (LinkRevoked) it, and since when the running node has a live stream
    # with the peer (None: not connected now; `serve` sets and clears it).
    agreement_entry: Mapped[int | None] = mapped_column(BigInteger)
    revoked_entry: Mapped[int | None] = mapped_column(BigInteger)
    connected_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Key rotation: where a parent serves joins and its key rotations (None: the port
    # after `address`); a child offline while its parent rotated fetches them there.
    enrollment_address: Mapped[str | None] = mapped_column(String(255))


class Invite(Base):
    """A join token this node issued to one child (node.services.invites). Only the
    secret's SHA-256 is kept. State: open -> (pending ->) approved -> used, or rejected;
    the join request that claims it (pending or later) fixes the child's keys, so the
    token then works for that node only."""

    __tablename__ = "invites"

    invite_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    child_id: Mapped[str] = mapped_column(NodeIdCol, index=True)
    child_name: Mapped[str] = mapped_column(String(200))
    secret_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    approval: Mapped[str] = mapped_column(String(8))  # auto | manual
    state: Mapped[str] = mapped_column(String(16))  # open | pending | approved | rejected | used
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    child_signing_key: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    child_tls_cert_pem: Mapped[str | None] = mapped_column(Text)
    child_tls_fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    agreement: Mapped[bytes | None] = mapped_column(LargeBinary())
    parent_signature: Mapped[bytes | None] = mapped_column(LargeBinary(64))
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ledger_index: Mapped[int | None] = mapped_column(BigInteger)


class Complaint(Base):
    """What this node knows of a complaint: non-personal facts and where it stands."""

    __tablename__ = "complaints"

    tracking_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    origin_node: Mapped[str] = mapped_column(NodeIdCol)
    classification: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(100))
    region_code: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    anonymous: Mapped[bool] = mapped_column(Boolean)
    confidential: Mapped[bool] = mapped_column(Boolean)
    needs_inspection: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16), index=True)
    holder: Mapped[str] = mapped_column(NodeIdCol)
    received_from: Mapped[str | None] = mapped_column(NodeIdCol)
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    content_commitment: Mapped[bytes] = mapped_column(LargeBinary(32))
    # The lifecycle across the tree (docs/complaint-lifecycle.md): the child it was last
    # referred to and that referral's message id; the dates the deadline clocks start
    # from (node.workflow.deadlines); when it was resolved (auto-close) and when the
    # reporter last replied (restarts the verify clock after a hold).
    referred_to: Mapped[str | None] = mapped_column(NodeIdCol)
    referral_message_id: Mapped[str | None] = mapped_column(String(36))
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    disposed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    replied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ComplaintNoteRow(Base):
    """Free text of the lifecycle (a follow-up note, a resolution, a reason, a reporter's
    reply) with the salt of the commitment the ledger and the envelopes carry; erasable
    with the complaint's content."""

    __tablename__ = "complaint_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tracking_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("complaints.tracking_id"), index=True
    )
    commitment: Mapped[bytes] = mapped_column(LargeBinary(32))
    kind: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(NodeIdCol)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    text: Mapped[str] = mapped_column(Text)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))


class ComplaintContentRow(Base):
    """The personal part of a complaint and the salt of its commitment; erasable."""

    __tablename__ = "complaint_contents"

    tracking_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("complaints.tracking_id"), primary_key=True
    )
    content: Mapped[bytes] = mapped_column(LargeBinary)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))


class ComplaintEvent(Base):
    """One step of a complaint's history on this node (no personal data)."""

    __tablename__ = "complaint_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tracking_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("complaints.tracking_id"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(NodeIdCol)
    note: Mapped[str] = mapped_column(String(500))
    ledger_index: Mapped[int | None] = mapped_column(BigInteger)


class OutboxRow(Base):
    """A signed envelope waiting for (or delivered with) the peer's acknowledgement: it is
    acknowledged when its sequence is at most its link's acked_out_seq (decision 0020)."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("peer_id", "sequence", name="uq_outbox_peer_sequence"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    peer_id: Mapped[str] = mapped_column(NodeIdCol, ForeignKey("links.peer_id"))
    sequence: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    tracking_id: Mapped[str | None] = mapped_column(String(100))
    carries_content: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[bytes] = mapped_column(LargeBinary(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class InboxRow(Base):
    """A signed envelope received and committed; the key deduplicates redeliveries."""

    __tablename__ = "inbox"

    sender: Mapped[str] = mapped_column(NodeIdCol, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[bytes] = mapped_column(LargeBinary(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    response_outbox_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("outbox.id"))


class LedgerEntryRow(Base):
    """Entry `idx` of this node's RFC 6962 log: the serialized LedgerEntry, as committed."""

    __tablename__ = "ledger_entries"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class LedgerTrustEntryRow(Base):
    """The index of each ledger entry of a kind that makes this node's chain of trust
    (link_agreed, key_rotated, peer_key_rotated), written with the entry, so that the chain
    and the ledger's keys are read without a pass over the whole ledger
    (node.services.trust; docs/decisions/0015-trust-entries-indexed.md)."""

    __tablename__ = "ledger_trust_entries"

    # No foreign key: ledger_entries refuses TRUNCATE with its own insert-only trigger,
    # which a referencing table would pre-empt with a foreign-key error.
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class LedgerHead(Base):
    """One row: the ledger's size. Appends lock it, so indexes are dense and ordered."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)


class Counter(Base):
    """Named counters, e.g. `tracking:2026` for a year's complaint serials."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class LedgerNodeRow(Base):
    """Complete subtree (level, idx) of the ledger's RFC 6962 tree: the root of the 2**level
    leaves from leaf idx * 2**level. Level 0 holds the leaf hashes. Written in the transaction
    that appends the leaf completing it; insert-only (database triggers), like the ledger."""

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class CheckpointRow(Base):
    """A checkpoint this node signed: the C2SP signed note exactly as signed. Insert-only;
    each one is consistent with every earlier one (node.services.checkpoints)."""

    __tablename__ = "checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[bytes] = mapped_column(LargeBinary)
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class OperatorRow(Base):
    """A local operator credential: who may act on this node through the CLI. Only the
    SHA-256 of the credential is kept; at most one is active (revoked_at is NULL)."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    unit: Mapped[str] = mapped_column(String(200))
    operator: Mapped[str] = mapped_column(String(200))
    credential_sha256: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ledger_index: Mapped[int | None] = mapped_column(BigInteger)


class OwnKey(Base):
    """One generation of this node's keys: the first from `init`, one more per
    `keys rotate` (its KeyRotated entry). The private keys live in files only; the current
    generation is the one not retired. A retired generation's TLS certificate is still
    presented until `tls_valid_until` (docs/decisions/0008-key-rotation.md)."""

    __tablename__ = "own_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    signing_key: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    tls_cert_pem: Mapped[str] = mapped_column(Text)
    tls_fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    activated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    rotation_entry: Mapped[int | None] = mapped_column(BigInteger)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    tls_valid_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class PeerKey(Base):
    """A key a peer used before it rotated (the link row holds the current one). Its TLS
    certificate is accepted until `tls_valid_until`; its signing key still signs in-band
    envelopes until the peer's own rotation envelope arrives (`in_band_pending`), since
    everything the peer queued before rotating was signed with it."""

    __tablename__ = "peer_keys"

    peer_id: Mapped[str] = mapped_column(NodeIdCol, ForeignKey("links.peer_id"), primary_key=True)
    signing_key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    tls_cert_pem: Mapped[str] = mapped_column(Text)
    tls_fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    replaced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    tls_valid_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    in_band_pending: Mapped[bool] = mapped_column(Boolean)
    ledger_index: Mapped[int] = mapped_column(BigInteger)


class AttachmentBlob(Base):
    """The bytes of an attachment, stored once by SHA-256 (content-addressed). Personal
    data, like complaint_contents: a database trigger deletes a blob when the last
    complaint_attachments row that uses it goes (migration 0008)."""

    __tablename__ = "attachment_blobs"

    sha256: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ComplaintAttachment(Base):
    """Which blobs a complaint's content lists (its refs are in the content itself). Goes
    with the content: erasing complaint_contents cascades here, and from here to the blob."""

    __tablename__ = "complaint_attachments"

    tracking_id: Mapped[str] = mapped_column(
        String(100),
        ForeignKey("complaint_contents.tracking_id", ondelete="CASCADE"),
        primary_key=True,
    )
    sha256: Mapped[bytes] = mapped_column(
        LargeBinary(32), ForeignKey("attachment_blobs.sha256"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)


class IntakeRequest(Base):
    """A gateway's idempotency key and the complaint it created, written in the same
    transaction as the complaint: (gateway, key) is unique, so a retry can never register
    a second complaint. `request_sha256` is the canonical submission's hash."""

    __tablename__ = "intake_requests"

    gateway: Mapped[str] = mapped_column(String(63), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    tracking_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("complaints.tracking_id"), index=True
    )
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ReporterIdentityRow(Base):
    """Who filed an anonymous or confidential complaint, kept apart from its content (which
    travels with referrals). On the node where it entered: the identity in clear
    (`identity`, a ReporterIdentity). On the node it was sealed to: the sealed box
    (`sealed`, a SealedIdentity) that only this node's sealing key opens. Erasable."""

    __tablename__ = "reporter_identities"

    tracking_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("complaints.tracking_id"), primary_key=True
    )
    identity: Mapped[bytes | None] = mapped_column(LargeBinary)
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class StateCheckRow(Base):
    """The result of one comparison of the working tables with the ledger's replay
    (node.services.state_check): `audit state` over every complaint, or serve's check of
    the complaints changed last. The reports warn while the latest one found differences.
    `summary` names the first differences (tracking ids and statuses, no personal data)."""

    __tablename__ = "state_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    scope: Mapped[str] = mapped_column(String(16))
    complaints: Mapped[int] = mapped_column(Integer)
    differences: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)


class WitnessedLogRow(Base):
    """The witness side (c2sp.org/tlog-witness, decision 0026): for each log this node
    witnesses, by origin, the latest checkpoint it cosigned, the note as submitted. It
    moves only to a consistent extension (node.services.cosigning)."""

    __tablename__ = "witnessed_logs"

    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[bytes] = mapped_column(LargeBinary)
    cosigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CosignatureRow(Base):
    """The log side: a witness's verified cosignature (tlog-cosignature) on one of this
    node's checkpoints, as its note signature line, served with the checkpoint."""

    __tablename__ = "cosignatures"

    checkpoint_size: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("checkpoints.size"), primary_key=True, autoincrement=False
    )
    witness: Mapped[str] = mapped_column(String(255), primary_key=True)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    line: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
