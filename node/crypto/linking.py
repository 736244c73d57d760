"""The link lifecycle's cryptography: join tokens, the join transcript, link agreements,
revocations and chains of trust. Pure: no I/O, no database.

Join token (`lapor-join1.` + base64url, unpadded, of one JSON object):

    {"v": 1, "invite": "<32 hex>", "parent": "id-64", "parent_name": "...",
     "child": "id-64-02", "child_name": "...",
     "addrs": [["<federation HOST:PORT>", "<enrollment HOST:PORT>"], ...],
     "tls_sha256": "<64 hex: SHA-256 of the parent's TLS certificate, DER>",
     "secret": "<base64url, 32 bytes>", "expires": <Unix seconds>,
     "tag": "<base64url, 16 bytes>"}

`tag` is the first 16 bytes of HMAC-SHA256(secret, "lapor-node/join-token/v1\\n" ||
canonical JSON of every other field (sorted keys, no spaces, ASCII)). It catches a token
damaged in copying or edited by anyone who does not hold the secret. Against someone who
holds the whole token it proves nothing; what protects the join then is:
  1. `tls_sha256`: the child talks only to a server whose certificate has this SHA-256 (no
     trust on first use), so an altered address reaches nobody who can answer;
  2. the parent's own record of the invite: the child, the expiry and the approval mode
     are the parent's stored values, never the token's, and the secret must hash to the
     stored SHA-256 ("lapor-node/join-secret/v1\\n" || secret) of a live invite.

Signatures (node.crypto.signing purposes, so one never validates as another):
  - join transcript: Ed25519 by the child's signing key AND ECDSA P-256/SHA-256 by its TLS
    key, each over "lapor-node/join/v1\\n" || transcript bytes;
  - link agreement: Ed25519 by the parent and by the child over
    "lapor-node/link-agreement/v1\\n" || agreement bytes;
  - link revocation: Ed25519 by the revoking node over
    "lapor-node/link-revocation/v1\\n" || revocation bytes.
Every check is over the bytes received, never re-serialized.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import enrollment_pb2, trust_pb2
from node.crypto.chain import ChainError, TrustError, walk_from_first
from node.crypto.signing import (
    JOIN_PURPOSE,
    LINK_AGREEMENT_PURPOSE,
    LINK_REVOCATION_PURPOSE,
    SigningKey,
    VerifyKey,
)
from node.crypto.tls import fingerprint, node_id_from_certificate
from node.errors import SignatureError, ValidationError
from node.ids import NodeId, parse_node_id

__all__ = [
    "MAX_CLOCK_SKEW",
    "TOKEN_PREFIX",
    "AddressPair",
    "JoinToken",
    "OpenedJoin",
    "invite_sha256",
    "make_agreement",
    "new_invite_id",
    "new_secret",
    "node_keys",
    "open_agreement",
    "open_join_request",
    "open_revocation",
    "secret_sha256",
    "sign_join",
    "sign_revocation",
    "verify_chain",
]

TOKEN_PREFIX = "lapor-join1."  # noqa: S105 - a format marker, not a secret
TOKEN_VERSION = 1
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
"""How far a joining child's clock may be from the parent's."""
_TAG_PURPOSE = b"lapor-node/join-token/v1\n"
_SECRET_PURPOSE = b"lapor-node/join-secret/v1\n"
_TAG_BYTES = 16
_SECRET_BYTES = 32
_INVITE_ID = re.compile(r"^[0-9a-f]{32}$")
_TOKEN_KEYS = frozenset(
    {
        "v",
        "invite",
        "parent",
        "parent_name",
        "child",
        "child_name",
        "addrs",
        "tls_sha256",
        "secret",
        "expires",
        "tag",
    }
)


def new_invite_id() -> str:
    return secrets.token_hex(16)


def new_secret() -> bytes:
    return secrets.token_bytes(_SECRET_BYTES)


def secret_sha256(secret: bytes) -> bytes:
    """What the parent stores instead of the secret, and what the transcript names."""
    return hashlib.sha256(_SECRET_PURPOSE + secret).digest()


def invite_sha256(invite_id: str) -> bytes:
    """LinkAgreement.invite_sha256: SHA-256 of the invite id (ASCII)."""
    return hashlib.sha256(invite_id.encode("ascii")).digest()


def check_address(value: str, what: str) -> str:
    """`value` if it is HOST:PORT (IPv6 hosts in brackets), else ValidationError."""
    host, sep, port = value.rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValidationError(f"{what} must be HOST:PORT (e.g. 10.64.0.5:7464), found {value!r}")
    return value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str, what: str) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValidationError(f"join token field {what} is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise ValidationError(f"join token field {what} is not base64url") from e


@dataclass(frozen=True)
class AddressPair:
    """Where the parent is reached: its federation port (mutual TLS, what the child dials
    once linked) and its enrollment port (TLS without client certificates, for joining)."""

    federation: str
    enrollment: str


@dataclass(frozen=True)
class JoinToken:
    """A single-use, expiring invitation from a parent to one child (see module docstring)."""

    invite_id: str
    parent_id: NodeId
    parent_name: str
    child_id: NodeId
    child_name: str
    addresses: tuple[AddressPair, ...]
    parent_tls_sha256: bytes
    expires_at: dt.datetime
    secret: bytes = field(repr=False)

    def _fields(self) -> dict[str, Any]:
        return {
            "v": TOKEN_VERSION,
            "invite": self.invite_id,
            "parent": self.parent_id,
            "parent_name": self.parent_name,
            "child": self.child_id,
            "child_name": self.child_name,
            "addrs": [[a.federation, a.enrollment] for a in self.addresses],
            "tls_sha256": self.parent_tls_sha256.hex(),
            "secret": _b64(self.secret),
            "expires": int(self.expires_at.timestamp()),
        }

    @staticmethod
    def _tag(secret: bytes, fields: dict[str, Any]) -> bytes:
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        mac = hmac.new(secret, _TAG_PURPOSE + canonical.encode("ascii"), hashlib.sha256)
        return mac.digest()[:_TAG_BYTES]

    @property
    def secret_sha256(self) -> bytes:
        return secret_sha256(self.secret)

    def encode(self) -> str:
        fields = self._fields()
        fields["tag"] = _b64(self._tag(self.secret, fields))
        text = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        return TOKEN_PREFIX + _b64(text.encode("utf-8"))

    @classmethod
    def decode(cls, text: str) -> JoinToken:
        """Parse and check a token string; ValidationError says what is wrong with it."""
        damaged = (
            "copy it again exactly as `lapor-node link invite` printed it (one line, "
            "nothing added or left out)"
        )
        text = text.strip()
        if not text.startswith(TOKEN_PREFIX):
            raise ValidationError(
                f"not a join token: expected it to start with {TOKEN_PREFIX!r}; {damaged}"
            )
        try:
            raw = _unb64(text[len(TOKEN_PREFIX) :], "body")
            data = json.loads(raw.decode("utf-8"))
        except (ValidationError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValidationError(
                f"the join token is damaged (it does not decode); {damaged}"
            ) from e
        if not isinstance(data, dict) or set(data) != _TOKEN_KEYS:
            raise ValidationError(f"the join token is damaged (its fields are wrong); {damaged}")
        if data["v"] != TOKEN_VERSION:
            raise ValidationError(
                f"join token version {data['v']!r} is not supported (this node reads "
                f"version {TOKEN_VERSION}); upgrade lapor-node or ask for a new token"
            )
        try:
            token = cls._from_fields(data)
        except (ValidationError, TypeError, ValueError, OverflowError, OSError) as e:
            raise ValidationError(f"the join token is damaged ({e}); {damaged}") from e
        tag = _unb64(data["tag"], "tag")
        expected = cls._tag(token.secret, {k: v for k, v in data.items() if k != "tag"})
        if not hmac.compare_digest(tag, expected):
            raise ValidationError(
                "the join token was altered or damaged: its check value does not match its "
                f"contents; {damaged}, and if it still fails, ask the parent's operator for "
                "a new one over a channel you trust"
            )
        return token

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> JoinToken:
        for key in ("invite", "parent", "parent_name", "child", "child_name", "tls_sha256"):
            if not isinstance(data[key], str):
                raise ValidationError(f"{key} is not a string")
        if not _INVITE_ID.fullmatch(data["invite"]):
            raise ValidationError("invite is not 32 hex digits")
        addrs = data["addrs"]
        if not isinstance(addrs, list) or not addrs:
            raise ValidationError("addrs is not a list of address pairs")
        pairs = []
        for pair in addrs:
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not all(isinstance(a, str) for a in pair)
            ):
                raise ValidationError("addrs is not a list of address pairs")
            pairs.append(
                AddressPair(
                    check_address(pair[0], "federation address"),
                    check_address(pair[1], "enrollment address"),
                )
            )
        fp = bytes.fromhex(data["tls_sha256"])
        if len(fp) != 32:
            raise ValidationError("tls_sha256 is not a SHA-256")
        secret = _unb64(data["secret"], "secret")
        if len(secret) != _SECRET_BYTES:
            raise ValidationError(f"the secret is not {_SECRET_BYTES} bytes")
        expires = data["expires"]
        if not isinstance(expires, int) or isinstance(expires, bool):
            raise ValidationError("expires is not a time")
        return cls(
            invite_id=data["invite"],
            parent_id=parse_node_id(data["parent"]),
            parent_name=data["parent_name"],
            child_id=parse_node_id(data["child"]),
            child_name=data["child_name"],
            addresses=tuple(pairs),
            parent_tls_sha256=fp,
            expires_at=dt.datetime.fromtimestamp(expires, dt.UTC),
            secret=secret,
        )


# --- keys and signatures ----------------------------------------------------------------


def node_keys(
    node_id: str, name: str, signing_key: VerifyKey, cert_pem: bytes
) -> trust_pb2.NodeKeys:
    return trust_pb2.NodeKeys(
        node_id=node_id,
        name=name,
        signing_key=signing_key.raw,
        tls_cert_sha256=fingerprint(cert_pem),
    )


def _tls_private_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValidationError("the TLS key file does not hold an ECDSA private key")
    return key


def sign_join(
    transcript: bytes, signing_key: SigningKey, tls_key_pem: bytes
) -> tuple[bytes, bytes]:
    """(Ed25519, ECDSA) signatures of the child over JOIN_PURPOSE || transcript."""
    ed = signing_key.sign(JOIN_PURPOSE, transcript)
    tls = _tls_private_key(tls_key_pem).sign(JOIN_PURPOSE + transcript, ec.ECDSA(hashes.SHA256()))
    return ed, tls


def _verify_tls(cert_pem: bytes, message: bytes, signature: bytes) -> None:
    try:
        public = x509.load_pem_x509_certificate(cert_pem).public_key()
    except ValueError as e:
        raise ValidationError("the child's TLS certificate is not a PEM X.509 certificate") from e
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ValidationError("the child's TLS certificate does not hold an ECDSA key")
    try:
        public.verify(signature, JOIN_PURPOSE + message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as e:
        raise SignatureError(
            "the join request's TLS-key signature does not verify under the certificate sent"
        ) from e


@dataclass(frozen=True)
class OpenedJoin:
    """A join request whose signatures, certificate and secret check out (not yet its
    invite): what the services work with, the request's wire message left at the edge."""

    transcript: enrollment_pb2.JoinTranscript
    child_id: NodeId
    child_signing_key: VerifyKey
    child_cert_pem: bytes
    child_tls_sha256: bytes
    requested_at: dt.datetime
    secret: bytes


def open_join_request(request: enrollment_pb2.JoinRequest) -> OpenedJoin:
    """Steps, each refused with what it expected:
    1. the transcript parses and names a child (a valid node id, a 32-byte key);
    2. the certificate sent has the transcript's SHA-256 and names the same node id;
    3. both signatures verify over "lapor-node/join/v1\\n" || the bytes received;
    4. the secret sent is the one the transcript names (by SHA-256).
    """
    try:
        transcript = enrollment_pb2.JoinTranscript.FromString(request.transcript)
    except DecodeError as e:
        raise ValidationError("the join transcript does not parse") from e
    child = transcript.child
    child_id = parse_node_id(child.node_id)
    key = VerifyKey(child.signing_key)
    cert = request.child_tls_cert_pem.encode()
    if not hmac.compare_digest(fingerprint(cert), child.tls_cert_sha256):
        raise ValidationError(
            "the TLS certificate sent is not the one the join transcript names (SHA-256 differs)"
        )
    named = node_id_from_certificate(cert)
    if named != child_id:
        raise ValidationError(
            f"the join request names node {child_id!r} but its TLS certificate names {named!r}"
        )
    key.verify(JOIN_PURPOSE, request.transcript, request.signing_signature)
    _verify_tls(cert, request.transcript, request.tls_signature)
    if not transcript.HasField("requested_at"):
        raise ValidationError("the join transcript has no time")
    if not hmac.compare_digest(secret_sha256(request.secret), transcript.secret_sha256):
        raise ValidationError("the join request's secret is not the one its transcript names")
    return OpenedJoin(
        transcript=transcript,
        child_id=child_id,
        child_signing_key=key,
        child_cert_pem=cert,
        child_tls_sha256=bytes(child.tls_cert_sha256),
        requested_at=_transcript_time(transcript.requested_at),
        secret=bytes(request.secret),
    )


def _transcript_time(stamp: Any) -> dt.datetime:
    """A transcript's time as a datetime; a time no calendar holds (seconds or nanos out of
    the range of google.protobuf.Timestamp) is the caller's error."""
    try:
        return stamp.ToDatetime(tzinfo=dt.UTC)  # type: ignore[no-any-return]
    except (ValueError, OverflowError, OSError) as e:
        raise ValidationError(
            "the join transcript's time is out of range (a Timestamp lies between the years "
            "1 and 9999); set the joining node's clock right and run `link join` again"
        ) from e


# --- agreements, revocations and chains --------------------------------------------------


def make_agreement(
    parent: trust_pb2.NodeKeys, child: trust_pb2.NodeKeys, agreed_at: dt.datetime, invite_id: str
) -> bytes:
    agreement = trust_pb2.LinkAgreement(
        parent=parent, child=child, invite_sha256=invite_sha256(invite_id)
    )
    agreement.agreed_at.FromDatetime(agreed_at)
    return agreement.SerializeToString()


def open_agreement(
    signed: trust_pb2.SignedLinkAgreement, *, countersigned: bool = True
) -> trust_pb2.LinkAgreement:
    """Parse the agreement and verify the parent's signature (and the child's, when
    `countersigned`) under the keys the agreement itself names."""
    try:
        agreement = trust_pb2.LinkAgreement.FromString(signed.agreement)
    except DecodeError as e:
        raise ValidationError("the link agreement does not parse") from e
    parse_node_id(agreement.parent.node_id)
    parse_node_id(agreement.child.node_id)
    try:
        VerifyKey(agreement.parent.signing_key).verify(
            LINK_AGREEMENT_PURPOSE, signed.agreement, signed.parent_signature
        )
    except SignatureError as e:
        raise SignatureError(
            f"the link agreement is not signed by its parent {agreement.parent.node_id}: {e}"
        ) from e
    if countersigned:
        try:
            VerifyKey(agreement.child.signing_key).verify(
                LINK_AGREEMENT_PURPOSE, signed.agreement, signed.child_signature
            )
        except SignatureError as e:
            raise SignatureError(
                f"the link agreement is not signed by its child {agreement.child.node_id}: {e}"
            ) from e
    return agreement


def sign_revocation(
    key: SigningKey,
    *,
    parent_id: str,
    parent_signing_key: bytes,
    child_id: str,
    child_signing_key: bytes,
    revoked_by: str,
    revoked_at: dt.datetime,
    reason: str,
) -> trust_pb2.SignedLinkRevocation:
    revocation = trust_pb2.LinkRevocation(
        parent_id=parent_id,
        child_id=child_id,
        child_signing_key=child_signing_key,
        reason=reason,
        revoked_by=revoked_by,
        parent_signing_key=parent_signing_key,
    )
    revocation.revoked_at.FromDatetime(revoked_at)
    data = revocation.SerializeToString()
    return trust_pb2.SignedLinkRevocation(
        revocation=data, signature=key.sign(LINK_REVOCATION_PURPOSE, data)
    )


def open_revocation(signed: trust_pb2.SignedLinkRevocation) -> trust_pb2.LinkRevocation:
    """Parse a revocation and verify it under the key of the node that made it."""
    try:
        revocation = trust_pb2.LinkRevocation.FromString(signed.revocation)
    except DecodeError as e:
        raise ValidationError("the link revocation does not parse") from e
    by = revocation.revoked_by or revocation.parent_id
    if by == revocation.parent_id:
        key = revocation.parent_signing_key
    elif by == revocation.child_id:
        key = revocation.child_signing_key
    else:
        raise ValidationError(f"a link revocation is made by its parent or its child, found {by!r}")
    VerifyKey(key).verify(LINK_REVOCATION_PURPOSE, signed.revocation, signed.signature)
    return revocation


def verify_chain(steps: Sequence[trust_pb2.TrustStep], last: trust_pb2.NodeKeys) -> None:
    """A chain from the national node down to `last`, walked by the rules of the one
    chain-of-trust implementation (node.crypto.chain) from the chain's first node (the
    parent of its first agreement, or the node of its first rotation): link agreements
    signed by both sides, key rotations, revocations, in the order they happened. `last`
    must be reached, not cut off, with its keys in force (same id, signing key and TLS
    certificate). An empty chain is accepted (a national node, or a parent linked by
    hand): it proves nothing, and the agreement stands on its own. Raises ChainError
    naming the step at fault (None: the chain does not end at `last`), as an auditor's
    walk from the national key (node.ledger.trust.walk_chain) does."""
    if not steps:
        return
    trusted = walk_from_first(steps, open_agreement=open_agreement, open_revocation=open_revocation)
    try:
        trusted.check_ends_at(last)
    except TrustError as e:
        raise ChainError(str(e), None) from e
