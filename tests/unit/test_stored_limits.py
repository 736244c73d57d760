"""Title and description limits apply to the value that is stored and sent, spaces
included (issue 21.11): stripping only decides whether there is any text at all."""

from __future__ import annotations

import dataclasses

import pytest

from node.complaints import MAX_DESCRIPTION, MAX_TITLE, ComplaintDraft
from node.errors import ValidationError

DRAFT = ComplaintDraft(
    title="Jalan berlubang",
    description="Lubang besar sejak Januari.",
    classification="pengaduan",
    category="jalan rusak",
    region_code="64.02",
    channel="web",
)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"title": "x" + " " * 1_000_000}, "title", id="title-padded-to-a-megabyte"),
        pytest.param({"title": "x" + " " * MAX_TITLE}, "title", id="title-padded-one-over"),
        pytest.param({"title": "\n" * MAX_TITLE + "x"}, "title", id="title-leading-newlines"),
        pytest.param(
            {"description": "x" + " " * 1_000_000}, "description", id="description-padded"
        ),
        pytest.param(
            {"description": "x" + "\t" * MAX_DESCRIPTION}, "description", id="description-tabs"
        ),
    ],
)
def test_padding_counts_towards_the_limit(changes: dict[str, str], field: str) -> None:
    """Text within the limit only once stripped is refused: the stored value is checked."""
    with pytest.raises(ValidationError, match=field):
        dataclasses.replace(DRAFT, **changes).validate()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"title": " " + "x" * (MAX_TITLE - 2) + " "}, id="title-padded-at-limit"),
        pytest.param(
            {"description": "x" * (MAX_DESCRIPTION - 1) + "\n"}, id="description-at-limit"
        ),
    ],
)
def test_padded_text_within_the_limit_passes(changes: dict[str, str]) -> None:
    """Spaces are allowed as long as the whole stored value is within the limit."""
    dataclasses.replace(DRAFT, **changes).validate()  # type: ignore[arg-type]
