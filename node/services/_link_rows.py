"""What both sides of a join build alike: a new `links` row, this node's keys as a link
agreement names them, and the short forms of times and fingerprints their messages show.
Shared by node.services.invites, node.services.join_answers (the parent) and
node.services.joining (the child)."""

from __future__ import annotations

import datetime as dt

from node._proto.lapor.v1 import trust_pb2
from node.crypto.linking import node_keys
from node.crypto.tls import fingerprint
from node.services.context import NodeContext
from node.store.models import Link

__all__ = ["new_link_row", "own_keys", "short", "when"]


def when(value: dt.datetime) -> str:
    """A time as messages to operators show it: UTC to the second, the zone named."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def short(fp: bytes | None) -> str:
    """A fingerprint's first 16 hex digits, enough for two operators to compare."""
    return "none" if fp is None else fp.hex()[:16] + "..."


def own_keys(ctx: NodeContext, cert: bytes) -> trust_pb2.NodeKeys:
    """This node's keys as a link agreement names them, with its TLS certificate `cert`."""
    return node_keys(ctx.node_id, ctx.config.name, ctx.signing_key.public, cert)


def new_link_row(
    peer: str,
    role: str,
    name: str,
    signing_key: bytes,
    cert: bytes,
    address: str | None,
    now: dt.datetime,
) -> Link:
    """A link just agreed: nothing sent, received or acknowledged yet."""
    return Link(
        peer_id=peer,
        role=role,
        name=name,
        signing_key=signing_key,
        tls_cert_pem=cert.decode(),
        tls_fingerprint=fingerprint(cert),
        address=address,
        created_at=now,
        next_out_seq=1,
        acked_out_seq=0,
        last_in_seq=0,
        peer_checkpoint_size=0,
    )
