"""Node cards: the public JSON file operators exchange to pin each other."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from node.crypto.card import CARD_FORMAT, NodeCard
from node.crypto.signing import SigningKey
from node.crypto.tls import fingerprint, generate_tls_identity
from node.errors import ValidationError
from node.ids import parse_node_id

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
NODE = parse_node_id("id-64")
KEY = SigningKey.generate()
TLS = generate_tls_identity(NODE, NOW)
CARD = NodeCard(NODE, 'Provinsi Kalimantan Timur "Kaltim"', KEY.public, TLS.cert_pem)
OTHER_CERT = generate_tls_identity(parse_node_id("id-65"), NOW).cert_pem


def _fields() -> dict[str, Any]:
    return dict(json.loads(CARD.to_json()))


def test_card_json_round_trip() -> None:
    """from_json(to_json(card)) gives back an equal card with the same fingerprint."""
    again = NodeCard.from_json(CARD.to_json())
    assert again == CARD
    assert again.tls_fingerprint == fingerprint(TLS.cert_pem)


def test_card_json_has_the_documented_fields_and_no_secret() -> None:
    """The card holds exactly format, node_id, name, signing_key, tls_certificate; no key."""
    text = CARD.to_json()
    data = json.loads(text)
    assert set(data) == {"format", "node_id", "name", "signing_key", "tls_certificate"}
    assert data["format"] == CARD_FORMAT == "lapor-node-card/v1"
    assert base64.b64decode(data["signing_key"]) == KEY.public.raw
    assert "PRIVATE KEY" not in text
    assert TLS.key_pem.decode() not in text


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data[key] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        del data[key]

    return change


@pytest.mark.parametrize(
    ("change", "match"),
    [
        pytest.param(_set("format", "lapor-node-card/v2"), "not a node card", id="wrong-format"),
        pytest.param(_drop("format"), "not a node card", id="no-format"),
        pytest.param(_drop("node_id"), "lacks node_id", id="missing-node-id"),
        pytest.param(_drop("name"), "lacks name", id="missing-name"),
        pytest.param(_drop("signing_key"), "lacks signing_key", id="missing-signing-key"),
        pytest.param(_drop("tls_certificate"), "lacks tls_certificate", id="missing-cert"),
        pytest.param(_set("name", 64), "lacks name", id="name-not-string"),
        pytest.param(_set("node_id", "ID-64"), "invalid node id", id="bad-node-id"),
        pytest.param(_set("node_id", "id-65"), "certificate names", id="cert-names-other-node"),
        pytest.param(
            _set("tls_certificate", OTHER_CERT.decode()), "certificate names", id="other-cert"
        ),
        pytest.param(_set("signing_key", "not base64!"), "not base64", id="bad-base64"),
        pytest.param(
            _set("signing_key", base64.b64encode(b"\x01" * 31).decode()),
            "32 bytes",
            id="short-key",
        ),
        pytest.param(_set("tls_certificate", "garbage"), "not a PEM", id="bad-cert"),
    ],
)
def test_from_json_rejections(change: Callable[[dict[str, Any]], None], match: str) -> None:
    """A card with a wrong tag, missing field, bad encoding or mismatched cert is refused."""
    data = _fields()
    change(data)
    with pytest.raises(ValidationError, match=match):
        NodeCard.from_json(json.dumps(data))


@pytest.mark.parametrize(
    "text", ["", "{", "[]", '"card"', "null"], ids=["empty", "truncated", "list", "string", "null"]
)
def test_from_json_refuses_non_cards(text: str) -> None:
    """Text that is not a JSON object with the card format raises ValidationError."""
    with pytest.raises(ValidationError):
        NodeCard.from_json(text)
