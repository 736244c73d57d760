"""Join requests, Confirm requests and join tokens, as a joining child (or anyone who can
reach the enrollment port) sends them: transcripts signed with a real child's keys (so the
checks after the signatures are reached) with edge-valued times, ids and hashes, answered
by node.services.join_answers; tokens as `link join` reads them (JoinToken.decode)."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import strategies as st

from fuzz._harness import Harness
from fuzz._nodes import Pair, linked_pair
from fuzz._values import edge_ints, mostly, node_ids, short_bytes, texts, timestamps
from node._proto.lapor.v1 import enrollment_pb2, trust_pb2
from node.crypto.linking import TOKEN_PREFIX, JoinToken, secret_sha256, sign_join
from node.crypto.tls import fingerprint
from node.services import join_answers

__all__ = ["HARNESS"]


# Built once (see fuzz._values).
_KIND = st.sampled_from(["join", "join", "confirm", "token", "token-fields"])
_NO = st.just(False)
_JOIN = {
    "invite_id": mostly("e" * 32, texts(40)),
    "secret_sha256": short_bytes(40),
    "secret_matches": mostly(True, _NO),
    "parent_id": mostly("id-64", node_ids()),
    "right_parent_cert": mostly(True, _NO),
    "child_id": mostly("id-64-02", node_ids()),
    "right_child_keys": mostly(True, _NO),
    "time": st.one_of(st.none(), timestamps()),
    "secret": short_bytes(40),
    "cert": mostly(None, texts(100)),
}
_INVITE = st.one_of(st.just("e" * 32), texts(40))
_TOKEN = st.one_of(texts(200), st.just(TOKEN_PREFIX).map(lambda p: p + "e30"))
_FIELDS = {
    "v": st.one_of(st.just(1), edge_ints()),
    "invite": _INVITE,
    "parent": node_ids(),
    "parent_name": texts(),
    "child": node_ids(),
    "child_name": texts(),
    "addrs": st.one_of(
        st.just([["127.0.0.1:7464", "127.0.0.1:7465"]]),
        st.lists(st.lists(texts(30), max_size=3), max_size=2),
    ),
    "tls_sha256": st.one_of(st.just("00" * 32), texts(70)),
    "secret": st.one_of(st.just("A" * 43), texts(50)),
    "expires": st.one_of(edge_ints(), st.just(10**30), st.floats(), st.booleans()),
    "tag": texts(30),
}


@st.composite
def _join(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(_KIND)
    if kind == "join":
        return kind, {name: draw(strategy) for name, strategy in _JOIN.items()}
    if kind == "confirm":
        return kind, enrollment_pb2.ConfirmRequest(
            invite_id=draw(_INVITE),
            secret=draw(short_bytes(40)),
            agreement=draw(short_bytes(100)),
            child_signature=draw(short_bytes(70)),
        )
    if kind == "token":
        return kind, draw(_TOKEN)
    fields = {name: draw(strategy) for name, strategy in _FIELDS.items()}
    text = json.dumps(fields, ensure_ascii=False, allow_nan=True)
    encoded = base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).rstrip(b"=")
    return kind, TOKEN_PREFIX + encoded.decode("ascii")


def _join_request(pair: Pair, spec: dict[str, Any]) -> enrollment_pb2.JoinRequest:
    child = pair.child
    child_cert = child.config.tls_cert.read_bytes()
    parent_cert = pair.parent.config.tls_cert.read_bytes()
    transcript = enrollment_pb2.JoinTranscript(
        invite_id=spec["invite_id"],
        secret_sha256=secret_sha256(spec["secret"])
        if spec["secret_matches"]
        else spec["secret_sha256"],
        parent_id=spec["parent_id"],
        parent_tls_cert_sha256=fingerprint(parent_cert) if spec["right_parent_cert"] else b"",
        child=trust_pb2.NodeKeys(
            node_id=spec["child_id"],
            signing_key=child.signing_key.public.raw if spec["right_child_keys"] else b"\x01",
            tls_cert_sha256=fingerprint(child_cert),
        ),
    )
    if spec["time"] is None:
        transcript.requested_at.FromDatetime(pair.parent.clock.now())
    else:
        transcript.requested_at.seconds, transcript.requested_at.nanos = spec["time"]
    data = transcript.SerializeToString()
    ed, tls = sign_join(data, child.signing_key, child.config.tls_key.read_bytes())
    cert = child_cert.decode() if spec["cert"] is None else spec["cert"]
    return enrollment_pb2.JoinRequest(
        transcript=data,
        signing_signature=ed,
        tls_signature=tls,
        child_tls_cert_pem=cert,
        secret=spec["secret"],
    )


def _target(pair: Pair, value: tuple[str, Any]) -> None:
    kind, spec = value
    if kind == "join":
        request = _join_request(pair, spec)
        opened = join_answers.check_join(pair.parent, request)
        join_answers.answer_join(pair.parent, request, opened)
    elif kind == "confirm":
        join_answers.answer_confirm(pair.parent, spec)
    else:
        JoinToken.decode(spec)


HARNESS = Harness("join", _join(), _target, linked_pair)
