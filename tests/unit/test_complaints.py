"""Complaint values: draft validation, the content commitment, and peer summaries; no error
message ever carries the reporter's personal data."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node._proto.lapor.v1 import complaint_pb2
from node.complaints import (
    CHANNELS,
    CLASSIFICATIONS,
    MAX_DESCRIPTION,
    MAX_FIELD,
    MAX_TITLE,
    ComplaintDraft,
    check_commitment,
    check_summary,
    seal_content,
)
from node.errors import TamperedEntryError, ValidationError

REPORTER_NAME = "Siti Rahmawati"
REPORTER_CONTACT = "+62 812-5555-0199"
REPORTER_ID = "6402015507900001"
PERSONAL = (REPORTER_NAME, REPORTER_CONTACT, REPORTER_ID)

DRAFT = ComplaintDraft(
    title="Jalan berlubang di Jl. Poros Samarinda-Bontang km 12",
    description="Lubang besar sejak Januari, sudah dua motor jatuh.",
    classification="pengaduan",
    category="jalan rusak",
    region_code="64.02",
    channel="web",
    reporter_name=REPORTER_NAME,
    reporter_contact=REPORTER_CONTACT,
    reporter_id_number=REPORTER_ID,
    location="Desa Bukit Raya",
)


def _assert_private(error: BaseException) -> None:
    for value in PERSONAL:
        assert value not in str(error)


# Drafts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="full"),
        pytest.param(
            {
                "reporter_name": "",
                "reporter_contact": "",
                "reporter_id_number": "",
                "anonymous": True,
            },
            id="anonymous-no-reporter",
        ),
        pytest.param({"title": "x" * MAX_TITLE}, id="title-at-limit"),
        pytest.param({"description": "x" * MAX_DESCRIPTION}, id="description-at-limit"),
        pytest.param({"region_code": "64"}, id="province-code"),
        pytest.param({"region_code": "64.02.05"}, id="district-code"),
        pytest.param({"region_code": "64.02.05.2001"}, id="village-code"),
        pytest.param({"category": "infrastruktur"}, id="one-word-category"),
        pytest.param({"category": "air_bersih-pdam 2"}, id="category-punctuation"),
        pytest.param({"reporter_name": "x" * MAX_FIELD}, id="field-at-limit"),
        *(pytest.param({"classification": c}, id=f"classification-{c}") for c in CLASSIFICATIONS),
        *(pytest.param({"channel": c}, id=f"channel-{c}") for c in CHANNELS),
    ],
)
def test_valid_drafts_pass(changes: dict[str, object]) -> None:
    """validate returns for every well-formed draft."""
    dataclasses.replace(DRAFT, **changes).validate()  # type: ignore[arg-type]


INVALID_DRAFTS = [
    pytest.param({"title": ""}, "title", id="empty-title"),
    pytest.param({"title": "   "}, "title", id="blank-title"),
    pytest.param({"title": "x" * (MAX_TITLE + 1)}, "title", id="long-title"),
    pytest.param({"description": ""}, "description", id="empty-description"),
    pytest.param({"description": "\n\t "}, "description", id="blank-description"),
    pytest.param(
        {"description": "x" * (MAX_DESCRIPTION + 1)}, "description", id="long-description"
    ),
    pytest.param({"classification": "complaint"}, "classification", id="english-classification"),
    pytest.param({"classification": "Pengaduan"}, "classification", id="capital-classification"),
    pytest.param({"classification": ""}, "classification", id="no-classification"),
    pytest.param({"channel": "email"}, "channel", id="unknown-channel"),
    pytest.param({"channel": "SMS_1708"}, "channel", id="capital-channel"),
    pytest.param({"category": ""}, "category", id="empty-category"),
    pytest.param({"category": "Jalan"}, "category", id="capital-category"),
    pytest.param({"category": " jalan"}, "category", id="leading-space-category"),
    pytest.param({"category": "x" * 101}, "category", id="long-category"),
    pytest.param({"region_code": ""}, "region code", id="empty-region"),
    pytest.param({"region_code": "6"}, "region code", id="one-digit-region"),
    pytest.param({"region_code": "64.2"}, "region code", id="short-regency"),
    pytest.param({"region_code": "64-02"}, "region code", id="dash-region"),
    pytest.param({"region_code": "64.02.05.06"}, "region code", id="two-digit-village"),
    pytest.param({"region_code": "64.02.05.2001.1"}, "region code", id="too-deep-region"),
    pytest.param({"reporter_name": REPORTER_NAME * 20}, "reporter_name", id="long-name"),
    pytest.param(
        {"reporter_contact": REPORTER_CONTACT * 20}, "reporter_contact", id="long-contact"
    ),
    pytest.param(
        {"reporter_id_number": REPORTER_ID * 20}, "reporter_id_number", id="long-id-number"
    ),
    pytest.param({"location": "x" * (MAX_FIELD + 1)}, "location", id="long-location"),
]


@pytest.mark.parametrize(("changes", "field"), INVALID_DRAFTS)
def test_invalid_drafts_name_the_field_and_keep_the_reporter_private(
    changes: dict[str, object], field: str
) -> None:
    """validate raises ValidationError naming the wrong field, never the reporter's data."""
    draft = dataclasses.replace(DRAFT, **changes)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as caught:
        draft.validate()
    assert field in str(caught.value)
    _assert_private(caught.value)


def test_region_code_errors_do_not_echo_the_value() -> None:
    """A region code holding personal data is refused without repeating it."""
    draft = dataclasses.replace(DRAFT, region_code=REPORTER_CONTACT)
    with pytest.raises(ValidationError) as caught:
        draft.validate()
    _assert_private(caught.value)


@pytest.mark.parametrize(
    "code", ["\uff16\uff14", "\u0666\u0664.\u0660\u0662"], ids=["fullwidth", "arabic-indic"]
)
def test_region_codes_take_only_ascii_digits(code: str) -> None:
    """validate refuses a region code written with non-ASCII digits."""
    with pytest.raises(ValidationError):
        dataclasses.replace(DRAFT, region_code=code).validate()


def test_content_carries_the_personal_fields() -> None:
    """content() puts title, description, location and the reporter in ComplaintContent."""
    content = DRAFT.content()
    assert content.title == DRAFT.title
    assert content.description == DRAFT.description
    assert content.location == DRAFT.location
    assert (content.reporter.name, content.reporter.contact, content.reporter.id_number) == (
        PERSONAL
    )


# The commitment -------------------------------------------------------------------------


def test_seal_content_commits_to_salt_and_serialized_content() -> None:
    """seal_content serializes once; commitment = SHA-256(32-byte salt || content)."""
    sealed = seal_content(DRAFT.content())
    assert sealed.content == DRAFT.content().SerializeToString()
    assert len(sealed.salt) == 32
    assert sealed.commitment == hashlib.sha256(sealed.salt + sealed.content).digest()
    check_commitment(sealed.commitment, sealed.content, sealed.salt)


def test_each_seal_uses_a_fresh_salt() -> None:
    """Sealing the same content twice gives different salts and commitments."""
    a, b = seal_content(DRAFT.content()), seal_content(DRAFT.content())
    assert a.content == b.content
    assert a.salt != b.salt
    assert a.commitment != b.commitment


SEALED = seal_content(DRAFT.content())


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@given(st.sampled_from(["content", "salt", "commitment"]), st.integers(min_value=0))
def test_any_tampered_bit_is_caught(part: str, bit: int) -> None:
    """Flipping any bit of content, salt or commitment raises TamperedEntryError, privately."""
    values = {"content": SEALED.content, "salt": SEALED.salt, "commitment": SEALED.commitment}
    values[part] = _flip(values[part], bit % (len(values[part]) * 8))
    with pytest.raises(TamperedEntryError) as caught:
        check_commitment(values["commitment"], values["content"], values["salt"])
    _assert_private(caught.value)


@pytest.mark.parametrize(
    ("content", "salt"),
    [
        pytest.param(b"", SEALED.salt, id="content-erased"),
        pytest.param(SEALED.content + b"\x00", SEALED.salt, id="content-extended"),
        pytest.param(
            dataclasses.replace(DRAFT, reporter_name="Budi").content().SerializeToString(),
            SEALED.salt,
            id="other-reporter",
        ),
        pytest.param(SEALED.content, bytes(32), id="other-salt"),
    ],
)
def test_changed_content_or_salt_is_tampered(content: bytes, salt: bytes) -> None:
    """Content or salt other than what was committed raises TamperedEntryError."""
    with pytest.raises(TamperedEntryError) as caught:
        check_commitment(SEALED.commitment, content, salt)
    _assert_private(caught.value)


@pytest.mark.parametrize("length", [0, 16, 31, 33], ids=lambda n: f"{n}-bytes")
def test_salt_must_be_32_bytes(length: int) -> None:
    """A salt that is not 32 bytes is malformed input (ValidationError), not tampering."""
    with pytest.raises(ValidationError, match=f"found {length}"):
        check_commitment(SEALED.commitment, SEALED.content, b"\x00" * length)


# Summaries from peers -------------------------------------------------------------------


def _summary(**changes: object) -> complaint_pb2.ComplaintSummary:
    fields: dict[str, object] = {
        "tracking_id": "id-64.2026.000001",
        "origin_node": "id-64",
        "classification": complaint_pb2.CLASSIFICATION_PENGADUAN,
        "category": "jalan rusak",
        "region_code": "64.02",
        "channel": complaint_pb2.CHANNEL_SMS_1708,
        "content_commitment": SEALED.commitment,
    }
    fields.update(changes)
    summary = complaint_pb2.ComplaintSummary(**fields)  # type: ignore[arg-type]
    summary.submitted_at.FromDatetime(dt.datetime(2026, 3, 2, 8, tzinfo=dt.UTC))
    return summary


def test_valid_summary_passes() -> None:
    """check_summary returns for a well-formed summary."""
    check_summary(_summary())


def _without_submitted_at() -> complaint_pb2.ComplaintSummary:
    summary = _summary()
    summary.ClearField("submitted_at")
    return summary


@pytest.mark.parametrize(
    ("summary", "match"),
    [
        pytest.param(_summary(tracking_id=""), "tracking id", id="no-tracking-id"),
        pytest.param(
            _summary(tracking_id="id-64-2026-000001"), "tracking id", id="bad-tracking-id"
        ),
        pytest.param(_summary(origin_node=""), "node id", id="no-origin"),
        pytest.param(_summary(origin_node="ID-64"), "node id", id="bad-origin"),
        pytest.param(
            _summary(classification=complaint_pb2.CLASSIFICATION_UNSPECIFIED),
            "classification",
            id="unspecified-classification",
        ),
        pytest.param(_summary(classification=99), "classification", id="unknown-classification"),
        pytest.param(
            _summary(channel=complaint_pb2.CHANNEL_UNSPECIFIED), "channel", id="unspecified-channel"
        ),
        pytest.param(_summary(channel=42), "channel", id="unknown-channel"),
        pytest.param(_summary(category="Jalan"), "category", id="bad-category"),
        pytest.param(_summary(region_code="sixty-four"), "region code", id="bad-region"),
        pytest.param(_summary(content_commitment=b""), "commitment", id="no-commitment"),
        pytest.param(
            _summary(content_commitment=b"\x00" * 31), "commitment", id="short-commitment"
        ),
        pytest.param(_without_submitted_at(), "submitted_at", id="no-submitted-at"),
    ],
)
def test_malformed_summaries_raise_validation_error(
    summary: complaint_pb2.ComplaintSummary, match: str
) -> None:
    """check_summary refuses each malformed field with ValidationError naming it."""
    with pytest.raises(ValidationError, match=match):
        check_summary(summary)


def test_summary_tracking_id_names_its_origin() -> None:
    """A summary whose tracking id was not numbered by its origin node is refused."""
    with pytest.raises(ValidationError):
        check_summary(_summary(origin_node="id-65"))
