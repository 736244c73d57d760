"""Node cards as `link add` reads them (NodeCard.from_json): JSON with edge-valued fields,
real and damaged certificates, and arbitrary text."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

from hypothesis import strategies as st

from fuzz._harness import Harness
from fuzz._values import node_ids, short_bytes, texts
from node.crypto.card import CARD_FORMAT, NodeCard
from node.crypto.tls import generate_tls_identity
from node.ids import NodeId

__all__ = ["HARNESS"]


@contextlib.contextmanager
def _certificate(_: Path) -> Iterator[str]:
    now = dt.datetime.now(dt.UTC)
    yield generate_tls_identity(NodeId("id-64-02"), now).cert_pem.decode()


# Built once (see fuzz._values).
_ONE_IN_FIVE = st.integers(0, 4)
_FIELDS = {
    "format": st.one_of(st.just(CARD_FORMAT), texts(30)),
    "node_id": st.one_of(st.just("id-64-02"), node_ids()),
    "name": st.one_of(texts(), st.integers(), st.none()),
    "signing_key": st.one_of(
        short_bytes(40).map(lambda b: base64.b64encode(b).decode()), texts(50)
    ),
}


@st.composite
def _cards(draw: st.DrawFn) -> tuple[str, dict[str, object] | None]:
    if draw(_ONE_IN_FIVE) == 0:
        return draw(texts(300)), None
    fields: dict[str, object] = {name: draw(strategy) for name, strategy in _FIELDS.items()}
    return "", fields


def _target(cert: str, value: tuple[str, dict[str, object] | None]) -> None:
    text, fields = value
    if fields is not None:
        fields["tls_certificate"] = cert if len(text) == 0 else text
        text = json.dumps(fields)
    NodeCard.from_json(text)


HARNESS = Harness("cards", _cards(), _target, _certificate)
