"""Complaint values: drafts from intake, the non-personal summary, and the commitment that
binds a summary to its personal content. Pure: no database, no network.

Commitment: SHA-256(salt || content) with a fresh 32-byte salt, content being the
serialized ComplaintContent exactly as stored and sent (never re-serialized).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from typing import Any

from node._proto.lapor.v1 import complaint_pb2
from node.errors import TamperedEntryError, ValidationError
from node.ids import parse_node_id, parse_tracking_id, tracking_origin

__all__ = [
    "CHANNELS",
    "CLASSIFICATIONS",
    "AttachmentRef",
    "ComplaintDraft",
    "Sealed",
    "check_commitment",
    "check_summary",
    "check_timestamp",
    "seal_content",
]

CLASSIFICATIONS: dict[str, int] = {
    "pengaduan": complaint_pb2.CLASSIFICATION_PENGADUAN,
    "aspirasi": complaint_pb2.CLASSIFICATION_ASPIRASI,
    "permintaan_informasi": complaint_pb2.CLASSIFICATION_PERMINTAAN_INFORMASI,
    "whistleblowing": complaint_pb2.CLASSIFICATION_WHISTLEBLOWING,
}
CHANNELS: dict[str, int] = {
    "web": complaint_pb2.CHANNEL_WEB,
    "sms_1708": complaint_pb2.CHANNEL_SMS_1708,
    "twitter": complaint_pb2.CHANNEL_TWITTER,
    "mobile_app": complaint_pb2.CHANNEL_MOBILE_APP,
    "walk_in": complaint_pb2.CHANNEL_WALK_IN,
    "api": complaint_pb2.CHANNEL_API,
}
CLASSIFICATION_NAMES = {v: k for k, v in CLASSIFICATIONS.items()}
CHANNEL_NAMES = {v: k for k, v in CHANNELS.items()}

_REGION = re.compile(r"^[0-9]{2}(\.[0-9]{2}){0,2}(\.[0-9]{4})?$")
_CATEGORY = re.compile(r"^[a-z0-9][a-z0-9_ -]{0,99}$")
MAX_TITLE = 200
MAX_DESCRIPTION = 20_000
MAX_FIELD = 200
MAX_ATTACHMENTS = 20
MAX_ATTACHMENT_NAME = 255
# A media type as RFC 6838 names it (type/subtype), lowercase, without parameters.
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


# The range of google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799


def check_timestamp(stamp: Any, what: str) -> None:
    """A Timestamp from outside is within the calendar (ValidationError), so turning it
    into a datetime cannot fail deep inside a transaction."""
    _require(
        _MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS and 0 <= stamp.nanos < 1_000_000_000,
        f"{what} is not a time between the years 1 and 9999 (seconds {stamp.seconds}, "
        f"nanos {stamp.nanos})",
    )


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValidationError(message)


@dataclass(frozen=True)
class AttachmentRef:
    """A file received with a complaint: its name, media type, size and SHA-256. The
    bytes are stored by SHA-256 beside the content; this ref is part of the content."""

    name: str
    media_type: str
    size: int
    sha256: bytes

    def validate(self, n: int) -> None:
        """Raise ValidationError naming attachment `n`'s first wrong field (not its name)."""
        where = f"attachment {n}"
        _require(
            0 < len(self.name) <= MAX_ATTACHMENT_NAME
            and self.name.strip() == self.name
            and self.name.isprintable()
            and "/" not in self.name
            and "\\" not in self.name,
            f"{where}: name must be 1 to {MAX_ATTACHMENT_NAME} printable characters without "
            "slashes or surrounding spaces, e.g. 'foto-jalan.jpg'",
        )
        _require(
            bool(_MEDIA_TYPE.fullmatch(self.media_type)),
            f"{where}: media type must be lowercase type/subtype, e.g. 'image/jpeg'",
        )
        _require(self.size > 0, f"{where}: size must be positive, found {self.size}")
        _require(
            len(self.sha256) == 32, f"{where}: sha256 must be 32 bytes, found {len(self.sha256)}"
        )

    def to_proto(self) -> complaint_pb2.AttachmentRef:
        return complaint_pb2.AttachmentRef(
            name=self.name, media_type=self.media_type, size=self.size, sha256=self.sha256
        )

    @classmethod
    def from_proto(cls, ref: complaint_pb2.AttachmentRef) -> AttachmentRef:
        return cls(ref.name, ref.media_type, ref.size, ref.sha256)


@dataclass(frozen=True)
class ComplaintDraft:
    """A complaint as intake receives it, before it has a tracking id."""

    title: str
    description: str
    classification: str
    category: str
    region_code: str
    channel: str
    reporter_name: str = ""
    reporter_contact: str = ""
    reporter_id_number: str = ""
    location: str = ""
    anonymous: bool = False
    confidential: bool = False
    needs_inspection: bool = False
    attachments: tuple[AttachmentRef, ...] = ()

    def validate(self) -> None:
        """Raise ValidationError naming the first field that is wrong (never its value)."""
        # The limits apply to the value as stored and sent, spaces included: stripping
        # only decides whether there is any text at all.
        _require(
            bool(self.title.strip()) and len(self.title) <= MAX_TITLE,
            f"title must be 1 to {MAX_TITLE} characters, spaces included",
        )
        _require(
            bool(self.description.strip()) and len(self.description) <= MAX_DESCRIPTION,
            f"description must be 1 to {MAX_DESCRIPTION} characters, spaces included",
        )
        _require(
            self.classification in CLASSIFICATIONS,
            f"classification must be one of {', '.join(CLASSIFICATIONS)}",
        )
        _require(self.channel in CHANNELS, f"channel must be one of {', '.join(CHANNELS)}")
        _require(
            bool(_CATEGORY.fullmatch(self.category)),
            "category must be lowercase words, e.g. 'infrastruktur' or 'jalan rusak'",
        )
        _require(
            bool(_REGION.fullmatch(self.region_code)),
            "region code must be a Kemendagri code such as '64', '64.02' or '64.02.05'",
        )
        for name in ("reporter_name", "reporter_contact", "reporter_id_number", "location"):
            _require(
                len(getattr(self, name)) <= MAX_FIELD,
                f"{name} must be at most {MAX_FIELD} characters",
            )
        _require(
            len(self.attachments) <= MAX_ATTACHMENTS,
            f"at most {MAX_ATTACHMENTS} attachments, found {len(self.attachments)}",
        )
        seen: set[bytes] = set()
        for n, ref in enumerate(self.attachments):
            ref.validate(n)
            _require(
                ref.sha256 not in seen,
                f"attachment {n} is the same file as an earlier one (SHA-256 "
                f"{ref.sha256.hex()[:16]}); send each file once",
            )
            seen.add(ref.sha256)

    def content(self) -> complaint_pb2.ComplaintContent:
        return complaint_pb2.ComplaintContent(
            title=self.title,
            description=self.description,
            location=self.location,
            reporter=complaint_pb2.Reporter(
                name=self.reporter_name,
                contact=self.reporter_contact,
                id_number=self.reporter_id_number,
            ),
            attachments=[ref.to_proto() for ref in self.attachments],
        )


@dataclass(frozen=True)
class Sealed:
    content: bytes
    salt: bytes
    commitment: bytes


def seal_content(content: complaint_pb2.ComplaintContent) -> Sealed:
    """Serialize `content` once and commit to it with a fresh salt."""
    data = content.SerializeToString()
    salt = os.urandom(32)
    return Sealed(data, salt, hashlib.sha256(salt + data).digest())


def check_commitment(commitment: bytes, content: bytes, salt: bytes) -> None:
    """Return if SHA-256(salt || content) == commitment; else TamperedEntryError."""
    if len(salt) != 32:
        raise ValidationError(f"content salt must be 32 bytes, found {len(salt)}")
    actual = hashlib.sha256(salt + content).digest()
    if not hmac.compare_digest(actual, commitment):
        raise TamperedEntryError(
            f"content does not match its commitment: expected {commitment.hex()[:16]}, "
            f"found {actual.hex()[:16]}"
        )


def check_summary(summary: complaint_pb2.ComplaintSummary) -> None:
    """Validate a summary received from a peer."""
    tracking_id = parse_tracking_id(summary.tracking_id)
    origin = parse_node_id(summary.origin_node)
    _require(
        tracking_origin(tracking_id) == origin,
        f"tracking id {tracking_id} was not numbered by its origin node {origin}",
    )
    _require(
        summary.classification in CLASSIFICATION_NAMES,
        f"unknown classification {summary.classification}",
    )
    _require(summary.channel in CHANNEL_NAMES, f"unknown channel {summary.channel}")
    _require(bool(_CATEGORY.fullmatch(summary.category)), "malformed category")
    _require(bool(_REGION.fullmatch(summary.region_code)), "malformed region code")
    _require(
        len(summary.content_commitment) == 32,
        f"content commitment must be 32 bytes, found {len(summary.content_commitment)}",
    )
    _require(summary.HasField("submitted_at"), "submitted_at is missing")
    check_timestamp(summary.submitted_at, "submitted_at")
