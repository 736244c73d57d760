"""Intake: complaints from channel gateways and walk-ins, with their attachments, and the
gateway's idempotency keys (docs/intake.md, docs/decisions/0010-intake.md).

Invariants:
- One transaction registers the complaint (node.services.complaints.submit_in, which numbers
  it `<this node>-<year>-<serial>` and appends its ledger entry), stores its attachments by
  SHA-256 and records the gateway's (gateway, idempotency key). A refused submission
  stores nothing: no complaint, no blob, no key, no ledger entry.
- (gateway, idempotency key) is unique in the database. A retry of the same submission
  (same canonical SHA-256) returns the first tracking id; the same key with another
  submission is refused (IdempotencyConflictError). Two concurrent first tries cannot both
  commit: the loser's transaction is rolled back whole and answered as a retry.
- An attachment is accepted only when its bytes arrived whole: no more than declared, the
  declared size exactly, the declared SHA-256, within the configured limits. Its ref
  (name, media type, size, SHA-256) is part of the complaint's content, so the content
  commitment covers it.
- Tokens: the node keeps only SHA-256(token); a token is compared by its hash, in
  constant time.
- `accept_in` registers in the caller's transaction; `accept` checks the submission
  before opening its own (a refused one never waits for the writer) and runs it again
  when it lost the race for its key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import mimetypes
import re
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError as DatabaseConflict
from sqlalchemy.orm import Session

from node._proto.lapor.v1 import complaint_pb2, intake_pb2
from node.complaints import (
    CHANNEL_NAMES,
    CLASSIFICATION_NAMES,
    AttachmentRef,
    ComplaintDraft,
)
from node.config import GatewayConfig, IntakeConfig
from node.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    TooLargeError,
    ValidationError,
)
from node.ids import parse_tracking_id
from node.services.complaints import submit_in
from node.services.context import NodeContext
from node.store import intake_rows as store
from node.store import queries
from node.store.models import ComplaintAttachment, IntakeRequest

__all__ = [
    "MAX_CHUNK_BYTES",
    "TOKEN_PREFIX",
    "AttachmentReceiver",
    "IdempotencyConflictError",
    "IntakeResult",
    "Received",
    "StatusView",
    "accept",
    "accept_in",
    "attachment",
    "attachments",
    "draft_from_submission",
    "gateway_for",
    "new_token",
    "read_file_attachment",
    "request_hash",
    "status",
    "token_sha256",
    "validate_key",
]

TOKEN_PREFIX = "lapor-gateway1."  # noqa: S105 - a format marker, not a secret
MAX_CHUNK_BYTES = 1024 * 1024
_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_FILE_CHUNK = 256 * 1024


class IdempotencyConflictError(ConflictError):
    """An idempotency key already used for a different submission (ALREADY_EXISTS)."""


# --- tokens ------------------------------------------------------------------------------


def new_token() -> str:
    """A fresh gateway token: 256 random bits, shown once, kept by the gateway only."""
    raw = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return TOKEN_PREFIX + raw


def token_sha256(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def gateway_for(config: IntakeConfig, token: str) -> GatewayConfig | None:
    """The configured gateway whose token is `token`, or None (constant time per gateway)."""
    digest = token_sha256(token)
    found = None
    for gateway in config.gateways:
        if hmac.compare_digest(gateway.token_sha256, digest):
            found = gateway
    return found


# --- what a gateway sends ----------------------------------------------------------------


def validate_key(key: str) -> None:
    if not _KEY.fullmatch(key):
        raise ValidationError(
            "idempotency_key must be 1 to 128 characters from A-Z a-z 0-9 . _ : - "
            "(e.g. the SMS message id, or a UUID chosen before the first try)"
        )


def draft_from_submission(submission: intake_pb2.Submission) -> ComplaintDraft:
    """The validated draft a gateway's Submission describes (ValidationError if malformed)."""
    if submission.channel not in CHANNEL_NAMES:
        raise ValidationError(f"channel is missing or unknown ({submission.channel})")
    if submission.classification not in CLASSIFICATION_NAMES:
        raise ValidationError(f"classification is missing or unknown ({submission.classification})")
    content = submission.content
    if content.attachments:
        raise ValidationError(
            "content.attachments must be empty: declare files in Submission.attachments"
        )
    draft = ComplaintDraft(
        title=content.title,
        description=content.description,
        classification=CLASSIFICATION_NAMES[submission.classification],
        category=submission.category,
        region_code=submission.region_code,
        channel=CHANNEL_NAMES[submission.channel],
        reporter_name=content.reporter.name,
        reporter_contact=content.reporter.contact,
        reporter_id_number=content.reporter.id_number,
        location=content.location,
        anonymous=submission.anonymous,
        confidential=submission.confidential,
        needs_inspection=submission.needs_inspection,
        attachments=tuple(AttachmentRef.from_proto(a) for a in submission.attachments),
    )
    draft.validate()
    return draft


def request_hash(draft: ComplaintDraft) -> bytes:
    """SHA-256 of the canonical submission: the draft's fields as sorted-key JSON (hashes
    in hex). Independent of how the client serialized its protobuf."""
    fields = asdict(draft)
    fields["attachments"] = [
        {**asdict(ref), "sha256": ref.sha256.hex()} for ref in draft.attachments
    ]
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(b"lapor-node/intake-request/v1\n" + canonical.encode()).digest()


# --- attachments as they arrive ----------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """An attachment whose bytes have been checked against its ref."""

    ref: AttachmentRef
    data: bytes


class AttachmentReceiver:
    """Checks the bytes of the declared attachments as they arrive, in declared order,
    hashing while receiving; refuses as soon as something is wrong. Memory: at most the
    declared total, which is within `max_total_bytes`."""

    def __init__(self, declared: Sequence[AttachmentRef], limits: IntakeConfig) -> None:
        for n, ref in enumerate(declared):
            if ref.size > limits.max_attachment_bytes:
                raise TooLargeError(
                    f"attachment {n} is {ref.size} bytes; this node accepts at most "
                    f"{limits.max_attachment_bytes} bytes per file"
                )
        total = sum(ref.size for ref in declared)
        if total > limits.max_total_bytes:
            raise TooLargeError(
                f"the attachments total {total} bytes; this node accepts at most "
                f"{limits.max_total_bytes} bytes per complaint"
            )
        self._declared = tuple(declared)
        self._index = 0
        self._parts: list[bytearray] = [bytearray() for _ in declared]
        self._hashes = [hashlib.sha256() for _ in declared]

    def add(self, index: int, data: bytes) -> None:
        """The next chunk, of attachment `index`."""
        if not data:
            raise ValidationError(f"chunk of attachment {index} is empty")
        if len(data) > MAX_CHUNK_BYTES:
            raise TooLargeError(f"chunks must be at most {MAX_CHUNK_BYTES} bytes")
        if index >= len(self._declared):
            raise ValidationError(
                f"chunk for attachment {index}, but the submission declared "
                f"{len(self._declared)} attachment(s), numbered from 0"
            )
        if index < self._index:
            raise ValidationError(
                f"chunk for attachment {index} after attachment {self._index} began; send "
                "each attachment's bytes whole, in declared order"
            )
        while index > self._index:
            self._close(self._index)
            self._index += 1
        ref, part = self._declared[index], self._parts[index]
        if len(part) + len(data) > ref.size:
            raise ValidationError(
                f"attachment {index} is larger than its declared size of {ref.size} bytes"
            )
        part.extend(data)
        self._hashes[index].update(data)

    def _close(self, index: int) -> None:
        ref, part = self._declared[index], self._parts[index]
        if len(part) != ref.size:
            raise ValidationError(
                f"attachment {index} ended after {len(part)} bytes; {ref.size} were declared"
            )
        digest = self._hashes[index].digest()
        if not hmac.compare_digest(digest, ref.sha256):
            raise ValidationError(
                f"attachment {index} does not match its declared SHA-256: expected "
                f"{ref.sha256.hex()[:16]}, found {digest.hex()[:16]}"
            )

    def finish(self) -> list[Received]:
        """Every declared attachment, whole and matching; ValidationError otherwise."""
        for index in range(self._index, len(self._declared)):
            self._close(index)
        self._index = len(self._declared)
        return [
            Received(ref, bytes(part))
            for ref, part in zip(self._declared, self._parts, strict=True)
        ]


def read_file_attachment(path: Path, limits: IntakeConfig) -> Received:
    """A walk-in's file, read through the same checks as a gateway's chunks."""
    try:
        size = path.stat().st_size
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        digest = hashlib.sha256()
        with path.open("rb") as f:
            if size > limits.max_attachment_bytes:
                raise TooLargeError(
                    f"{path.name} is {size} bytes; this node accepts at most "
                    f"{limits.max_attachment_bytes} bytes per file (intake.max_attachment_bytes)"
                )
            data = f.read()
    except OSError as e:
        raise ValidationError(f"cannot read {path} ({e.strerror})") from e
    digest.update(data)
    ref = AttachmentRef(path.name, media_type.lower(), len(data), digest.digest())
    ref.validate(0)
    receiver = AttachmentReceiver([ref], limits)
    for start in range(0, len(data), _FILE_CHUNK):
        receiver.add(0, data[start : start + _FILE_CHUNK])
    return receiver.finish()[0]


# --- registering -------------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeResult:
    tracking_id: str
    duplicate: bool
    submitted_at: dt.datetime


def accept(
    ctx: NodeContext,
    draft: ComplaintDraft,
    attachments: Sequence[Received] = (),
    *,
    gateway: GatewayConfig | None = None,
    key: str | None = None,
) -> IntakeResult:
    """`accept_in` in a transaction of its own; the submission is checked before the
    transaction begins, so a refused one never waits for the database writer. Two
    concurrent first tries of one (gateway, key): the loser's transaction is rolled back
    whole and run again, answered as the retry it is (or refused as a conflict)."""
    digest = _checked(ctx, draft, attachments, gateway, key)
    gateway_name = None if gateway is None else gateway.name
    try:
        with ctx.db.write() as session:
            return _accept(session, ctx, draft, attachments, gateway_name, key, digest)
    except DatabaseConflict:
        if key is None:
            raise
    with ctx.db.write() as session:
        return _accept(session, ctx, draft, attachments, gateway_name, key, digest)


def accept_in(
    session: Session,
    ctx: NodeContext,
    draft: ComplaintDraft,
    attachments: Sequence[Received] = (),
    *,
    gateway: GatewayConfig | None = None,
    key: str | None = None,
) -> IntakeResult:
    """Register `draft` with its checked attachments, once per (gateway, key), in the
    caller's transaction.

    `gateway` None is a walk-in typed in by staff (no key). A gateway may submit only for
    its channels, and must give a key. A concurrent first try of the same key that
    committed first makes this transaction fail at commit (the database's uniqueness);
    `accept` runs it again, a caller of this function decides for itself.
    """
    digest = _checked(ctx, draft, attachments, gateway, key)
    gateway_name = None if gateway is None else gateway.name
    return _accept(session, ctx, draft, attachments, gateway_name, key, digest)


def _checked(
    ctx: NodeContext,
    draft: ComplaintDraft,
    attachments: Sequence[Received],
    gateway: GatewayConfig | None,
    key: str | None,
) -> bytes:
    """Refuse a submission that is wrong in itself (nothing read from the database);
    returns its request_hash."""
    draft.validate()
    limits = ctx.config.intake
    total = sum(a.ref.size for a in attachments)
    if total > limits.max_total_bytes:
        raise TooLargeError(
            f"the attachments total {total} bytes; this node accepts at most "
            f"{limits.max_total_bytes} bytes per complaint (intake.max_total_bytes)"
        )
    if tuple(a.ref for a in attachments) != draft.attachments:
        raise ValidationError("the attachments received are not the ones the draft declares")
    for received in attachments:
        if hashlib.sha256(received.data).digest() != received.ref.sha256:
            raise ValidationError(f"attachment {received.ref.sha256.hex()[:16]} is corrupt")
    if gateway is not None:
        if draft.channel not in gateway.channels:
            raise PermissionDeniedError(
                f"gateway {gateway.name!r} may submit for {', '.join(gateway.channels)}, not "
                f"{draft.channel}; the node's operator can allow it in node.yaml "
                "(intake.gateways)"
            )
        if key is None:
            raise ValidationError("a gateway must give an idempotency_key")
    if key is not None:
        validate_key(key)
    return request_hash(draft)


def _accept(
    session: Session,
    ctx: NodeContext,
    draft: ComplaintDraft,
    attachments: Sequence[Received],
    gateway: str | None,
    key: str | None,
    digest: bytes,
) -> IntakeResult:
    if gateway is not None and key is not None:
        seen = store.get_request(session, gateway, key)
        if seen is not None:
            return _retry(session, seen, digest)
    tracking_id = submit_in(session, ctx, draft)
    now = ctx.clock.now()
    for position, received in enumerate(attachments):
        store.put_blob(session, received.ref.sha256, received.data, now)
        queries.add(
            session,
            ComplaintAttachment(
                tracking_id=tracking_id, sha256=received.ref.sha256, position=position
            ),
        )
    if gateway is not None and key is not None:
        queries.add(
            session,
            IntakeRequest(
                gateway=gateway,
                idempotency_key=key,
                request_sha256=digest,
                tracking_id=tracking_id,
                received_at=now,
            ),
        )
    session.flush()  # a concurrent first try of the same key fails here, before commit
    row = queries.get_complaint(session, tracking_id)
    assert row is not None
    return IntakeResult(tracking_id, False, row.submitted_at)


def _retry(session: Session, seen: IntakeRequest, digest: bytes) -> IntakeResult:
    if not hmac.compare_digest(seen.request_sha256, digest):
        raise IdempotencyConflictError(
            f"idempotency key {seen.idempotency_key!r} was used for {seen.tracking_id}, "
            "a different submission; give each new complaint a new key (a retry must "
            "resend exactly the same submission)"
        )
    row = queries.get_complaint(session, seen.tracking_id)
    assert row is not None
    return IntakeResult(seen.tracking_id, True, row.submitted_at)


# --- views ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusView:
    tracking_id: str
    status: str
    updated_at: dt.datetime


def status(ctx: NodeContext, gateway: GatewayConfig, tracking_id: str) -> StatusView:
    """Where a complaint `gateway` submitted stands here (NotFoundError for any other)."""
    parse_tracking_id(tracking_id)
    with ctx.db.read() as session:
        request = store.request_for_complaint(session, gateway.name, tracking_id)
        row = None if request is None else queries.get_complaint(session, tracking_id)
        if row is None:
            raise NotFoundError(f"gateway {gateway.name!r} submitted no complaint {tracking_id}")
        return StatusView(row.tracking_id, row.status, row.updated_at)


def attachments(ctx: NodeContext, tracking_id: str) -> list[tuple[AttachmentRef, bool]]:
    """The attachments a complaint's content lists, each with whether its bytes are here."""
    parse_tracking_id(tracking_id)
    with ctx.db.read() as session:
        content = queries.complaint_content(session, tracking_id)
        if content is None:
            raise NotFoundError(
                f"no content of {tracking_id} on this node (not received here, or erased)"
            )
        kept = {row.sha256 for row in store.complaint_attachments(session, tracking_id)}
        parsed = complaint_pb2.ComplaintContent.FromString(content.content)
        return [(AttachmentRef.from_proto(r), r.sha256 in kept) for r in parsed.attachments]


def attachment(ctx: NodeContext, tracking_id: str, sha256: bytes) -> tuple[AttachmentRef, bytes]:
    """An attachment of a complaint received here: its ref (from the content) and bytes."""
    parse_tracking_id(tracking_id)
    with ctx.db.read() as session:
        content = queries.complaint_content(session, tracking_id)
        if content is None:
            raise NotFoundError(
                f"no content of {tracking_id} on this node (not received here, or erased)"
            )
        parsed = complaint_pb2.ComplaintContent.FromString(content.content)
        ref = next((r for r in parsed.attachments if r.sha256 == sha256), None)
        data = store.blob_for(session, tracking_id, sha256)
        if ref is None or data is None:
            raise NotFoundError(f"{tracking_id} has no attachment with SHA-256 {sha256.hex()}")
        return AttachmentRef.from_proto(ref), data
