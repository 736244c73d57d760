"""Identifiers: node id slugs, tracking ids and UUIDv7 message ids."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import ValidationError
from node.ids import (
    format_tracking_id,
    new_message_id,
    parse_message_id,
    parse_node_id,
    parse_tracking_id,
)
from node.store.models import Complaint

# Node ids -------------------------------------------------------------------------------

VALID_NODE_IDS = [
    pytest.param("id", id="national"),
    pytest.param("id-64", id="province"),
    pytest.param("id-64-02", id="regency"),
    pytest.param("a", id="one-character"),
    pytest.param("7", id="one-digit"),
    pytest.param("64", id="all-digits"),
    pytest.param("id-", id="trailing-dash"),
    pytest.param("a--b", id="double-dash"),
    pytest.param("a" * 63, id="length-63"),
    pytest.param("0" + "-" * 62, id="length-63-mostly-dashes"),
]

INVALID_NODE_IDS = [
    pytest.param("", id="empty"),
    pytest.param("a" * 64, id="length-64"),
    pytest.param("ID-64", id="uppercase"),
    pytest.param("id-64-A", id="uppercase-tail"),
    pytest.param("-id", id="leading-dash"),
    pytest.param("id_64", id="underscore"),
    pytest.param("id.64", id="dot"),
    pytest.param("id 64", id="space"),
    pytest.param(" id", id="leading-space"),
    pytest.param("id-64\n", id="trailing-newline"),
    pytest.param("id/64", id="slash"),
    pytest.param("idé", id="non-ascii-letter"),
    pytest.param("id-\uff16\uff14", id="fullwidth-digits"),
]


@pytest.mark.parametrize("value", VALID_NODE_IDS)
def test_valid_node_ids_parse_unchanged(value: str) -> None:
    """parse_node_id returns every id matching ^[a-z0-9][a-z0-9-]{0,62}$ as given."""
    assert parse_node_id(value) == value


@pytest.mark.parametrize("value", INVALID_NODE_IDS)
def test_invalid_node_ids_raise_validation_error(value: str) -> None:
    """parse_node_id refuses anything outside ^[a-z0-9][a-z0-9-]{0,62}$ with ValidationError."""
    with pytest.raises(ValidationError, match="invalid node id"):
        parse_node_id(value)


@pytest.mark.parametrize("value", [None, 64, b"id-64"], ids=["none", "int", "bytes"])
def test_non_string_node_ids_raise_validation_error(value: object) -> None:
    """parse_node_id refuses non-strings with ValidationError, not TypeError."""
    with pytest.raises(ValidationError):
        parse_node_id(value)  # type: ignore[arg-type]


# Tracking ids ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "year", "serial", "expected"),
    [
        pytest.param("id-64", 2026, 1, "id-64.2026.000001", id="first"),
        pytest.param("id-64-02", 2026, 17, "id-64-02.2026.000017", id="padded"),
        pytest.param("id", 2027, 999_999, "id.2027.999999", id="six-digits"),
        pytest.param("id", 2027, 1_000_000, "id.2027.1000000", id="seven-digits"),
    ],
)
def test_format_tracking_id(origin: str, year: int, serial: int, expected: str) -> None:
    """format_tracking_id gives <origin>.<yyyy>.<serial, zero-padded to 6> and it parses."""
    tracking_id = format_tracking_id(parse_node_id(origin), year, serial)
    assert tracking_id == expected
    assert parse_tracking_id(tracking_id) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("id-64", id="node-only"),
        pytest.param("id-64.2026", id="no-serial"),
        pytest.param("id-64.2026.00001", id="five-digit-serial"),
        pytest.param("id-64.26.000001", id="two-digit-year"),
        pytest.param("ID-64.2026.000001", id="uppercase-node"),
        pytest.param("-x.2026.000001", id="leading-dash-node"),
        pytest.param("id-64.2026.000001.1", id="extra-part"),
        pytest.param("id-64/2026/000001", id="slashes"),
        pytest.param("id-64.2026.000001\n", id="trailing-newline"),
        pytest.param("a" * 64 + ".2026.000001", id="node-length-64"),
    ],
)
def test_invalid_tracking_ids_raise_validation_error(value: str) -> None:
    """parse_tracking_id refuses anything but <node id>.<4-digit year>.<6+ digit serial>."""
    with pytest.raises(ValidationError, match="invalid tracking id"):
        parse_tracking_id(value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("id-64.\uff12\uff10\uff12\uff16.000001", id="fullwidth-year"),
        pytest.param("id-64.2026.\u0660\u0660\u0660\u0660\u0660\u0661", id="arabic-indic-serial"),
    ],
)
def test_tracking_ids_take_only_ascii_digits(value: str) -> None:
    """parse_tracking_id refuses non-ASCII digits in the year and serial."""
    with pytest.raises(ValidationError):
        parse_tracking_id(value)


def test_tracking_ids_fit_the_store() -> None:
    """parse_tracking_id refuses ids longer than the store's tracking_id column."""
    limit = Complaint.__table__.c.tracking_id.type.length
    value = "id-64.2026." + "1" * (limit - len("id-64.2026.") + 1)
    with pytest.raises(ValidationError):
        parse_tracking_id(value)


# Message ids (UUIDv7) -------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=(1 << 48) - 1))
def test_new_message_id_is_uuidv7_carrying_its_millisecond(now_ms: int) -> None:
    """new_message_id sets version 7, variant 10, the 48-bit ms timestamp, and parses."""
    value = new_message_id(now_ms)
    parsed = uuid.UUID(value)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert (parsed.int >> 76) & 0xF == 7
    assert (parsed.int >> 62) & 0b11 == 0b10
    assert parsed.int >> 80 == now_ms
    assert str(parsed) == value
    assert parse_message_id(value) == value


@given(st.lists(st.integers(min_value=0, max_value=(1 << 48) - 1), min_size=2, unique=True))
def test_message_ids_sort_by_time(times: list[int]) -> None:
    """Ids made at distinct milliseconds sort (as strings) in time order."""
    ids = {new_message_id(ms): ms for ms in times}
    assert [ids[i] for i in sorted(ids)] == sorted(times)


def test_new_message_id_uses_the_current_time_and_random_bits() -> None:
    """Without now_ms, ids carry a current timestamp and differ within one millisecond."""
    before = uuid.UUID(new_message_id()).int >> 80
    ids = {new_message_id() for _ in range(1000)}
    after = uuid.UUID(new_message_id()).int >> 80
    assert len(ids) == 1000
    assert all(before <= uuid.UUID(i).int >> 80 <= after for i in ids)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(str(uuid.uuid4()), id="uuid4"),
        pytest.param(str(uuid.uuid1()), id="uuid1"),
        pytest.param("", id="empty"),
        pytest.param("not-a-uuid", id="garbage"),
        pytest.param(new_message_id(1_700_000_000_000).upper(), id="uppercase"),
        pytest.param("{" + new_message_id(1_700_000_000_000) + "}", id="braces"),
        pytest.param("urn:uuid:" + new_message_id(1_700_000_000_000), id="urn"),
        pytest.param(new_message_id(1_700_000_000_000).replace("-", ""), id="no-hyphens"),
        pytest.param(
            str(uuid.UUID(int=uuid.UUID(new_message_id(1)).int | (0b11 << 62))),
            id="wrong-variant",
        ),
    ],
)
def test_parse_message_id_refuses_non_canonical_uuidv7(value: str) -> None:
    """parse_message_id accepts only the canonical lowercase hyphenated UUIDv7 form."""
    with pytest.raises(ValidationError, match="invalid message id"):
        parse_message_id(value)
