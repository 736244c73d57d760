"""Step 1 of verifying an audit export (node.ledger.verify): the header and whose keys.

Pure. The header line must be of format `lapor-node/audit-export` version 1 with every
field of its type; the vkeys are C2SP verifier keys under the origin `lapor-node/<node_id>`,
`vkey` that of `signing_public_key`; an auditor's trusted vkey, if given, is `vkey` or
`current_vkey`; with `trust` (the national node's vkey), the header's chain of trust must
reach this node's first key from it (node.ledger.trust.walk_chain).

Invariants: `check_header` returns only a header that passed every check above, or raises
AuditFailure with a `format`, `key` or `trust-chain` finding; it reads nothing but the
header line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import trust_pb2
from node.crypto.signing import VerifyKey
from node.errors import ValidationError
from node.ledger._fields import read_bytes, read_int, read_str
from node.ledger.export import EXPORT_FORMAT, EXPORT_VERSION, ExportHeader
from node.ledger.findings import fail
from node.ledger.note import parse_vkey
from node.ledger.trust import ChainError, TrustedKeys, walk_chain

__all__ = ["CheckedHeader", "check_header"]


@dataclass(frozen=True)
class CheckedHeader:
    """A header that verified, with the keys it names."""

    header: ExportHeader
    own: VerifyKey
    """The key that started the ledger."""
    current_key: bytes
    """The public key in force at the head, as the header says (the rotations must end there)."""
    trusted: TrustedKeys | None
    """With `trust`: what the chain of trust reached."""


def check_header(
    obj: dict[str, Any] | None, *, trusted_vkey: str | None, trust: str | None
) -> CheckedHeader:
    """Check the header line `obj` (None: the export is empty); raise AuditFailure."""
    if obj is None or obj.get("type") != "header":
        raise fail("format", "expected a header as the first line")
    if obj.get("format") != EXPORT_FORMAT or obj.get("version") != EXPORT_VERSION:
        raise fail(
            "format",
            f"expected format {EXPORT_FORMAT} version {EXPORT_VERSION}, "
            f"found {obj.get('format')!r} version {obj.get('version')!r}",
        )
    try:
        header = ExportHeader(
            node_id=read_str(obj, "node_id"),
            vkey=read_str(obj, "vkey"),
            signing_public_key=read_bytes(obj, "signing_public_key"),
            size=read_int(obj, "size"),
            exported_at=read_str(obj, "exported_at"),
            current_vkey=read_str(obj, "current_vkey") if "current_vkey" in obj else "",
            trust_chain=read_bytes(obj, "trust_chain") if "trust_chain" in obj else None,
        )
        origin = header.origin
        verifier = parse_vkey(header.vkey)
        current = parse_vkey(header.current_vkey or header.vkey)
        own = VerifyKey(header.signing_public_key)
        chain = None if header.trust_chain is None else _parse_chain(header.trust_chain)
    except ValidationError as e:
        raise fail("format", f"malformed header: {e}") from e
    if obj.get("origin") != origin or verifier.name != origin or current.name != origin:
        raise fail(
            "key",
            f"expected the origin and key names {origin!r}, found "
            f"{obj.get('origin')!r}, {verifier.name!r} and {current.name!r}",
        )
    if verifier.public_key != header.signing_public_key:
        raise fail(
            "key",
            "expected the vkey to carry the exported signing public key, "
            f"found another (key ID {verifier.key_id.hex()})",
        )
    if trusted_vkey is not None and trusted_vkey not in (
        header.vkey,
        header.current_vkey or header.vkey,
    ):
        raise fail(
            "key",
            f"expected the trusted verifier key {trusted_vkey}, found "
            f"{header.vkey}: this export is signed with another key",
        )
    trusted = None if trust is None else _walk(chain, trust, header.node_id, own)
    return CheckedHeader(header, own, current.public_key, trusted)


def _walk(
    chain: trust_pb2.TrustChain | None, trust: str, node_id: str, own: VerifyKey
) -> TrustedKeys:
    """The chain of trust from `trust`, which must reach this node's first key."""
    if chain is None:
        raise fail(
            "trust-chain",
            "expected the header to carry the chain of trust from the national node "
            "(trust_chain), found none: the export was made by an older lapor-node; "
            "ask for a new export",
        )
    try:
        return walk_chain(chain.steps, trust, reach=(node_id, own.raw))
    except ChainError as e:
        hint = (
            ""
            if chain.steps
            else " (the chain is empty: the node holds no link agreement with a parent, "
            "e.g. it was linked by hand with `link add`)"
        )
        raise fail("trust-chain", f"{e}{hint}") from e


def _parse_chain(data: bytes) -> trust_pb2.TrustChain:
    """The header's trust_chain as a TrustChain; ValidationError if it does not parse."""
    try:
        return trust_pb2.TrustChain.FromString(data)
    except DecodeError as e:
        raise ValidationError("expected trust_chain to be a lapor.v1.TrustChain") from e
