"""A small client of lapor.v1.IntakeService, for gateways, `lapor-node intake submit` and
tests (docs/intake.md).

No trust on first use: the client reads the certificate the node presents and goes on only
if its SHA-256 is the fingerprint the gateway was given; it then dials gRPC with exactly
that certificate as the only root, naming the node's DNS SAN (`<node id>.lapor-node`).
A retry of a submission must reuse its idempotency key: the node then answers with the
first tracking id instead of registering the complaint twice.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc

from node._proto.lapor.v1 import complaint_pb2, intake_pb2, intake_pb2_grpc
from node.complaints import CHANNELS, CLASSIFICATIONS, ComplaintDraft
from node.crypto.tls import dns_name, fingerprint, node_id_from_certificate
from node.errors import IntegrityError, PeerError, PeerUnavailableError
from node.federation.enrollment_port import fetch_certificate

__all__ = [
    "CHUNK_BYTES",
    "IntakeCallError",
    "IntakeClient",
    "Upload",
    "submission_for",
]

CHUNK_BYTES = 256 * 1024
CALL_TIMEOUT_SECONDS = 60.0
MAX_MESSAGE_BYTES = 2 * 1024 * 1024


class IntakeCallError(PeerError):
    """The node answered an Intake call with an error status (`code`)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Upload:
    """A file to submit with a complaint."""

    name: str
    media_type: str
    data: bytes

    @classmethod
    def from_path(cls, path: Path) -> Upload:
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return cls(path.name, media_type.lower(), path.read_bytes())

    def ref(self) -> complaint_pb2.AttachmentRef:
        return complaint_pb2.AttachmentRef(
            name=self.name,
            media_type=self.media_type,
            size=len(self.data),
            sha256=hashlib.sha256(self.data).digest(),
        )


def submission_for(
    draft: ComplaintDraft, key: str, uploads: Sequence[Upload] = ()
) -> intake_pb2.Submission:
    """The Submission for `draft` (its own attachments are ignored: `uploads` are sent)."""
    content = draft.content()
    del content.attachments[:]
    return intake_pb2.Submission(
        idempotency_key=key,
        channel=CHANNELS.get(draft.channel, 0),  # type: ignore[arg-type]
        classification=CLASSIFICATIONS.get(draft.classification, 0),  # type: ignore[arg-type]
        category=draft.category,
        region_code=draft.region_code,
        content=content,
        anonymous=draft.anonymous,
        confidential=draft.confidential,
        needs_inspection=draft.needs_inspection,
        attachments=[u.ref() for u in uploads],
    )


def _requests(
    submission: intake_pb2.Submission, uploads: Sequence[Upload], chunk_bytes: int
) -> Iterator[intake_pb2.SubmitRequest]:
    yield intake_pb2.SubmitRequest(submission=submission)
    for index, upload in enumerate(uploads):
        for start in range(0, len(upload.data), chunk_bytes):
            chunk = intake_pb2.AttachmentChunk(
                index=index, data=upload.data[start : start + chunk_bytes]
            )
            yield intake_pb2.SubmitRequest(chunk=chunk)


class IntakeClient:
    """One connection to a node's Intake service, as one gateway (its bearer token)."""

    def __init__(
        self,
        address: str,
        token: str,
        node_fingerprint: bytes,
        *,
        fetch: Callable[[str], bytes] = fetch_certificate,
        timeout: float = CALL_TIMEOUT_SECONDS,
    ) -> None:
        try:
            cert = fetch(address)
        except OSError as e:
            raise PeerUnavailableError(
                f"cannot reach the node at {address} ({getattr(e, 'strerror', None) or e}); "
                "check the address, and that its intake.listen is set and open"
            ) from e
        found = fingerprint(cert)
        if not hmac.compare_digest(found, node_fingerprint):
            raise IntegrityError(
                f"the server at {address} presented a certificate with SHA-256 {found.hex()}, "
                f"not the pinned {node_fingerprint.hex()}: it is not the node (a wrong "
                "address, or someone in between). Nothing was sent"
            )
        self.node_id = node_id_from_certificate(cert)
        self._token = token
        self._timeout = timeout
        self._channel = grpc.secure_channel(
            address,
            grpc.ssl_channel_credentials(root_certificates=cert),
            options=[
                ("grpc.ssl_target_name_override", dns_name(self.node_id)),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self._stub = intake_pb2_grpc.IntakeServiceStub(self._channel)  # type: ignore[no-untyped-call]

    def _metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self._token}")]

    def submit(
        self,
        submission: intake_pb2.Submission,
        uploads: Sequence[Upload] = (),
        *,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> intake_pb2.SubmitResponse:
        """Send `submission` and the bytes of `uploads` (declared in it, in that order)."""
        try:
            response: intake_pb2.SubmitResponse = self._stub.Submit(
                _requests(submission, uploads, chunk_bytes),
                metadata=self._metadata(),
                timeout=self._timeout,
            )
        except grpc.RpcError as e:
            raise _error(e) from e
        return response

    def status(self, tracking_id: str) -> intake_pb2.GetStatusResponse:
        try:
            response: intake_pb2.GetStatusResponse = self._stub.GetStatus(
                intake_pb2.GetStatusRequest(tracking_id=tracking_id),
                metadata=self._metadata(),
                timeout=self._timeout,
            )
        except grpc.RpcError as e:
            raise _error(e) from e
        return response

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> IntakeClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _error(e: grpc.RpcError) -> IntakeCallError:
    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    details = e.details() if hasattr(e, "details") else str(e)
    return IntakeCallError(code, f"the node refused with {code.name}: {details}")
