"""A client of a node's Audit service, for auditors (and linked peers) at the command line.

Trust comes from the node's card alone (node.crypto.card), obtained out of band:
  1. its TLS certificate is the channel's only trust root, dialed with
     `grpc.ssl_target_name_override` = dns_name(node_id), as a child dials its parent;
  2. its signing key is the only key any checkpoint note from the wire is opened with
     (c2sp.org/signed-note), before the note's size or root is used for anything;
  3. everything else the node sends (its claimed vkey, entries, proofs) is checked by the
     same pure verifiers an export file goes through (node.ledger.audit, node.ledger.merkle).

The caller proves who it is with its own TLS key and certificate: an auditor's, made by
`lapor-node audit identity` and listed in the node's node.yaml, or a linked node's own.

The client is synchronous (grpc's blocking channel) because what consumes it, the offline
verifier, pulls lines from an iterator: HTTP/2 flow control bounds what is buffered, so
memory stays bounded without a thread between an event loop and the verifier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from node._proto.lapor.v1 import audit_pb2, audit_pb2_grpc
from node.crypto.card import NodeCard
from node.crypto.keyfiles import read_file, write_private, write_public
from node.crypto.tls import dns_name, fingerprint, generate_auditor_identity
from node.errors import (
    ConfigError,
    IntegrityError,
    PeerError,
    PeerUnavailableError,
    SignatureError,
    ValidationError,
)
from node.ledger.audit import (
    AuditFailure,
    ExportHeader,
    Finding,
    check_proof_document,
    export_lines,
    proof_document,
    vkey_for,
)
from node.ledger.checkpoint import Checkpoint, origin_for
from node.ledger.note import NoteSignature, Verifier, open_checkpoint, parse_vkey, split_note

__all__ = [
    "AUDITOR_CERT",
    "AUDITOR_KEY",
    "AuditCallError",
    "AuditClient",
    "CallerIdentity",
    "RemoteHead",
]

AUDITOR_KEY = "auditor.key"
AUDITOR_CERT = "auditor.crt"
CALL_TIMEOUT_SECONDS = 30.0
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class AuditCallError(PeerError):
    """The node answered an Audit call with an error status (`code`)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CallerIdentity:
    """The TLS key and certificate a caller dials with."""

    key_pem: bytes
    cert_pem: bytes

    @property
    def fingerprint(self) -> bytes:
        return fingerprint(self.cert_pem)

    @classmethod
    def create(cls, name: str, directory: Path, now: dt.datetime) -> tuple[Path, Path]:
        """Write a new auditor identity for `name` into `directory`: the key (0600, never
        overwritten) and its self-signed certificate. Returns (key path, certificate path)."""
        identity = generate_auditor_identity(name, now)
        key_path, cert_path = directory / AUDITOR_KEY, directory / AUDITOR_CERT
        if key_path.exists():
            raise ConfigError(f"{key_path} already exists; refusing to overwrite a key")
        if cert_path.exists():
            raise ConfigError(
                f"{cert_path} already exists; refusing to replace an auditor's certificate "
                "(choose another --dir)"
            )
        write_private(key_path, identity.key_pem)
        write_public(cert_path, identity.cert_pem)
        return key_path, cert_path

    @classmethod
    def load(cls, directory: Path) -> CallerIdentity:
        """Read an identity folder: auditor.key and auditor.crt (made by `audit identity`),
        or a node's keys/ folder (tls.key and tls.crt) for a linked node."""
        for key_name, cert_name in ((AUDITOR_KEY, AUDITOR_CERT), ("tls.key", "tls.crt")):
            if (directory / key_name).is_file():
                return cls(
                    read_file(directory / key_name, "TLS key"),
                    read_file(directory / cert_name, "TLS certificate"),
                )
        raise ConfigError(
            f"no identity in {directory}: expected {AUDITOR_KEY} and {AUDITOR_CERT} there; "
            "make them with `lapor-node audit identity --name NAME --dir DIR`"
        )


@dataclass(frozen=True)
class RemoteHead:
    """What GetCheckpoint said, its checkpoint verified with the card's key (or, after the
    node rotated its keys, with the key it names now, the card's being its first)."""

    ledger_size: int
    claimed_vkey: str
    checkpoint: Checkpoint | None
    note: bytes | None
    signed_at: dt.datetime | None
    first_vkey: str = ""
    trust_chain: bytes = b""


class AuditClient:
    """One mutual-TLS channel to one node's Audit service, trusting only its card."""

    def __init__(self, address: str, card: NodeCard, identity: CallerIdentity) -> None:
        self.address = address
        self.card = card
        self.vkey = vkey_for(card.node_id, card.signing_key.raw)
        self._verifier = Verifier.from_public_key(origin_for(card.node_id), card.signing_key.raw)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=card.tls_cert_pem,
            private_key=identity.key_pem,
            certificate_chain=identity.cert_pem,
        )
        options = [
            ("grpc.ssl_target_name_override", dns_name(card.node_id)),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        self._channel = grpc.secure_channel(address, credentials, options=options)
        self._stub = audit_pb2_grpc.AuditServiceStub(self._channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> AuditClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Calls, with errors as AuditCallError ------------------------------------------------

    def _error(self, e: grpc.RpcError) -> AuditCallError:
        code: grpc.StatusCode = e.code()
        details = e.details() or ""
        if code == grpc.StatusCode.UNAVAILABLE:
            unavailable = AuditCallError(
                code,
                f"cannot reach the node at {self.address} ({details}); check the address, "
                "that the node serves, and that its operator listed your certificate under "
                "auditors: in node.yaml",
            )
            unavailable.__cause__ = PeerUnavailableError(details)
            return unavailable
        return AuditCallError(
            code, f"the node at {self.address} refused with {code.name}: {details}"
        )

    def _unary(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.RpcError as e:
            raise self._error(e) from None

    def _stream(self, method: str, request: Any) -> Iterator[Any]:
        call = getattr(self._stub, method)(request)
        try:
            yield from call
        except grpc.RpcError as e:
            raise self._error(e) from None
        finally:
            call.cancel()

    def get_checkpoint(self) -> audit_pb2.GetCheckpointResponse:
        response: audit_pb2.GetCheckpointResponse = self._unary(
            "GetCheckpoint", audit_pb2.GetCheckpointRequest()
        )
        return response

    def get_inclusion_proof(
        self, index: int, tree_size: int = 0
    ) -> audit_pb2.GetInclusionProofResponse:
        request = audit_pb2.GetInclusionProofRequest(leaf_index=index, tree_size=tree_size)
        response: audit_pb2.GetInclusionProofResponse = self._unary("GetInclusionProof", request)
        return response

    def get_consistency_proof(
        self, first: int, second: int = 0
    ) -> audit_pb2.GetConsistencyProofResponse:
        request = audit_pb2.GetConsistencyProofRequest(first_size=first, second_size=second)
        response: audit_pb2.GetConsistencyProofResponse = self._unary(
            "GetConsistencyProof", request
        )
        return response

    def entries(self, start: int, end: int) -> Iterator[tuple[int, bytes, bytes | None]]:
        """(index, entry, stored leaf hash or None) for [start, end), as the node streams them."""
        request = audit_pb2.GetEntriesRequest(start=start, end=end)
        for r in self._stream("GetEntries", request):
            yield r.index, r.entry, r.leaf_hash or None

    def checkpoints(self, first: int, last: int) -> Iterator[tuple[int, bytes]]:
        """(size, note) of the node's stored checkpoints with first <= size <= last."""
        request = audit_pb2.ListCheckpointsRequest(first_size=first, last_size=last)
        for r in self._stream("ListCheckpoints", request):
            yield r.size, r.note

    # Verified views ----------------------------------------------------------------------

    def head(self) -> RemoteHead:
        """The node's ledger size and latest checkpoint, the note opened with the card's key
        (SignatureError if it does not verify) and matching the size the node states."""
        response = self.get_checkpoint()
        first = response.first_vkey or response.vkey
        chain = bytes(response.trust_chain)
        if not response.note:
            return RemoteHead(response.ledger_size, response.vkey, None, None, None, first, chain)
        verifier = self._verifier
        if self.vkey == first != response.vkey:
            # The card predates a rotation: the note is signed by the key the node names
            # now, and the export's KeyRotated entries must lead from the card's key to it.
            verifier = parse_vkey(response.vkey)
        try:
            checkpoint = open_checkpoint(response.note, verifier)
        except SignatureError as e:
            raise SignatureError(
                f"the node's latest checkpoint does not verify under the card's signing key "
                f"({e}); the card is not this node's, or the node now signs with another "
                "key: get its card again, and check the key with its parent"
            ) from e
        if checkpoint.size != response.size or checkpoint.size > response.ledger_size:
            raise IntegrityError(
                f"expected the node's signed checkpoint to be of the size it states "
                f"({response.size}, ledger size {response.ledger_size}), found size "
                f"{checkpoint.size}"
            )
        signed_at = response.signed_at.ToDatetime(dt.UTC)
        return RemoteHead(
            response.ledger_size, response.vkey, checkpoint, response.note, signed_at, first, chain
        )

    def inclusion_proof_document(self, index: int) -> dict[str, Any]:
        """Entry `index`'s inclusion proof in the latest checkpoint, as the documented JSON
        (lapor-node/inclusion-proof v1), checked against the card's key."""
        response = self.get_inclusion_proof(index, 0)
        if not response.checkpoint_note:
            raise IntegrityError(
                f"expected the proof of entry {index} to come with the signed checkpoint "
                f"of size {response.tree_size}, found none"
            )
        if response.leaf_index != index:
            raise IntegrityError(
                f"expected a proof for entry {index}, found one for {response.leaf_index}"
            )
        doc = proof_document(
            origin=origin_for(self.card.node_id),
            index=response.leaf_index,
            size=response.tree_size,
            entry=response.entry,
            path=response.audit_path,
            root=response.root,
            note=response.checkpoint_note,
        )
        check_proof_document(doc, self.vkey)
        return doc

    def export_lines(self, now: dt.datetime) -> tuple[int, Iterator[str]]:
        """The node's ledger as the lines of an audit export (node.ledger.audit), streamed:
        the same input `audit verify FILE` takes, so the same verifier runs on it.

        The latest checkpoint is verified with the card's key first; the header carries the
        key the node claims (verify with trusted_vkey = the card's, to hold it to that).
        Returns (entries announced, lines).
        """
        head = self.head()
        first = parse_vkey(head.first_vkey)
        header = ExportHeader(
            node_id=self.card.node_id,
            vkey=head.first_vkey,
            signing_public_key=first.public_key,
            size=head.ledger_size,
            exported_at=now.isoformat(),
            current_vkey="" if head.first_vkey == head.claimed_vkey else head.claimed_vkey,
            trust_chain=head.trust_chain or None,
        )
        size = head.ledger_size
        listed = self._listed_with(head, self.checkpoints(0, size))
        return size, export_lines(header, self.entries(0, size), listed)

    @staticmethod
    def _listed_with(
        head: RemoteHead, listed: Iterator[tuple[int, bytes]]
    ) -> Iterator[tuple[int, bytes]]:
        """The listed checkpoints, checking that the latest one GetCheckpoint served (and
        the card's key verified) is among them, as signed (same_signed_checkpoint)."""
        seen = head.checkpoint is None
        for size, note in listed:
            if head.checkpoint is not None and size == head.checkpoint.size:
                if head.note is None or not same_signed_checkpoint(note, head.note):
                    raise _served_twice(size, "a different note in its checkpoint list")
                seen = True
            yield size, note
        if not seen:
            raise _served_twice(
                head.checkpoint.size if head.checkpoint else 0, "no such checkpoint in its list"
            )


def same_signed_checkpoint(a: bytes, b: bytes) -> bool:
    """Whether two notes are the same checkpoint as the log signed it: the same text and
    the same signature lines by the log's own key (named as the origin, the text's first
    line). Witnesses' cosignatures may differ: one copy may carry more of them than another
    (the list is served with the cosignatures gathered since, GetCheckpoint as signed)."""
    try:
        text_a, signatures_a = split_note(a)
        text_b, signatures_b = split_note(b)
    except ValidationError:
        return False
    origin = text_a.split(b"\n", 1)[0].decode("utf-8")

    def own(signatures: tuple[NoteSignature, ...]) -> set[NoteSignature]:
        return {s for s in signatures if s.name == origin}

    return text_a == text_b and bool(own(signatures_a)) and own(signatures_a) == own(signatures_b)


def _served_twice(size: int, found: str) -> AuditFailure:
    return AuditFailure(
        Finding(
            kind="checkpoint-mismatch",
            detail=f"expected the node's list of checkpoints to hold the latest one it "
            f"served (size {size}), found {found}: the node shows two histories",
            checkpoint_size=size,
        )
    )
