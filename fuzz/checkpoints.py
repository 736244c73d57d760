"""Checkpoints and signed notes as they arrive from peers and auditors' files: C2SP
checkpoint bodies with edge-valued sizes, roots and extension lines, signed with a real
key (so the body is parsed) or with damaged signature lines (Checkpoint.parse,
note.open_checkpoint, note.split_note, note.parse_vkey)."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import strategies as st

from fuzz._harness import Harness
from fuzz._values import short_bytes, texts, u64
from node.ledger import note
from node.ledger.checkpoint import Checkpoint

__all__ = ["HARNESS"]

NAME = "lapor-node/id-64"


@contextlib.contextmanager
def _key(_: Path) -> Iterator[tuple[Ed25519PrivateKey, note.Verifier]]:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    yield private, note.Verifier.from_public_key(NAME, public)


# Built once (see fuzz._values).
_KIND = st.sampled_from(["signed", "signed", "raw", "vkey"])
_RAW = st.binary(max_size=400)
_ORIGIN = st.one_of(st.just(NAME), texts(40))
_SIZE = st.one_of(u64().map(str), texts(30))
_ROOT = st.one_of(short_bytes(40).map(lambda b: base64.b64encode(b).decode()), texts(50))
_EXTENSIONS = st.lists(texts(40), max_size=2)
_END = st.sampled_from([b"", b"\n", b"x"])


@st.composite
def _notes(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(_KIND)
    if kind == "raw":
        return kind, draw(_RAW)
    if kind == "vkey":
        return kind, draw(texts(120)).encode("utf-8", "surrogatepass")
    origin = draw(_ORIGIN)
    size = draw(_SIZE)
    root = draw(_ROOT)
    extensions = draw(_EXTENSIONS)
    body = "".join(line + "\n" for line in [origin, size, root, *extensions])
    return kind, body.encode("utf-8", "surrogatepass") + draw(_END)


def _target(state: tuple[Ed25519PrivateKey, note.Verifier], value: tuple[str, bytes]) -> None:
    private, verifier = state
    kind, data = value
    if kind == "vkey":
        note.parse_vkey(data.decode("utf-8", "surrogatepass"))
        return
    if kind == "signed":
        Checkpoint.parse(data)
        data = note.sign_note(data, NAME, private)
    note.split_note(data)
    note.open_checkpoint(data, verifier)


HARNESS = Harness("checkpoints", _notes(), _target, _key)
