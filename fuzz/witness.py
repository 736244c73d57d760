"""What a witness and an auditor read from outside: tlog-witness add-checkpoint bodies
(old size, proof lines, a note carrying cosignature lines), witness policy texts and
cosigner verifier keys (witness_http.parse_request, cosignature.parse_vkey and
find_cosignature, witness_policy.parse and check)."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st

from fuzz._harness import Harness
from fuzz._values import short_bytes, texts, u64
from node.ledger import cosignature, witness_policy
from node.ledger.checkpoint import Checkpoint
from node.ledger.note import Verifier, sign_checkpoint
from node.transparency.witness_http import parse_request

__all__ = ["HARNESS"]

ORIGIN = "lapor-node/id-64"
WITNESS = "lapor-node/id/witness"


@contextlib.contextmanager
def _keys(_: Path) -> Iterator[tuple[bytes, Verifier, cosignature.CosignerKey]]:
    log, witness = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cp = Checkpoint(ORIGIN, 5, bytes(32))
    note = sign_checkpoint(cp, ORIGIN, log)
    line = cosignature.cosign(cp.to_body(), WITNESS, witness, 1).line().encode()
    yield (
        note + line,
        Verifier.from_public_key(ORIGIN, log.public_key()),
        cosignature.CosignerKey.from_public_key(WITNESS, witness.public_key()),
    )


# Built once (see fuzz._values).
_KIND = st.sampled_from(["request", "request", "policy", "vkey", "lines"])
_OLD = st.one_of(u64().map(str), texts(12))
_PROOF = st.lists(
    st.one_of(short_bytes(40).map(lambda b: base64.b64encode(b).decode()), texts(50)),
    max_size=4,
)
_TAIL = st.binary(max_size=200)
_BLANK = st.sampled_from([b"\n", b""])
_WORDS = st.sampled_from(["log", "witness", "group", "quorum", "any", "all", "none", "2", "A"])
_POLICY = st.lists(st.lists(st.one_of(_WORDS, texts(30)), max_size=5), max_size=6)
_BLOB = st.binary(min_size=0, max_size=90)


@st.composite
def _inputs(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(_KIND)
    if kind == "request":
        old = draw(_OLD)
        proof = draw(_PROOF)
        head = "".join(f"{line}\n" for line in [f"old {old}", *proof])
        tail = draw(_TAIL)
        return kind, head.encode("utf-8", "surrogatepass") + draw(_BLANK) + tail
    if kind == "policy":
        text = "\n".join(" ".join(line) for line in draw(_POLICY))
        return kind, text.encode("utf-8", "surrogatepass")
    if kind == "lines":
        blob = draw(_BLOB)
        return kind, f"\u2014 {WITNESS} {base64.b64encode(blob).decode()}\n".encode()
    return kind, draw(texts(120)).encode("utf-8", "surrogatepass")


def _target(
    state: tuple[bytes, Verifier, cosignature.CosignerKey], value: tuple[str, bytes]
) -> None:
    note, log, witness = state
    kind, data = value
    if kind == "request":
        parse_request(data)
    elif kind == "policy":
        policy = witness_policy.parse(data.decode("utf-8", "surrogatepass"))
        witness_policy.check(note, policy, [log])
    elif kind == "lines":
        cosignature.find_cosignature(note.split(b"\n\n")[0] + b"\n\n" + data, witness)
    else:
        cosignature.parse_vkey(data.decode("utf-8", "surrogatepass"))


HARNESS = Harness("witness", _inputs(), _target, _keys)
