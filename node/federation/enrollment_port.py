"""The join ceremony on the wire: the parent's EnrollmentService (served by `serve` on the
enrollment port) and the child's client behind `lapor-node link join`.

The enrollment port is TLS with the node's own certificate and asks for no client
certificate: the child is not pinned yet, and proves possession of its keys inside the
request (node.crypto.linking). Everything else is decided by node.services.join_answers,
on the database writer thread; what a handler raises reaches the child through the one
error edge (node.federation.error_edge), with a message that tells the other operator what
to do.

The child, in order (no trust on first use):
  1. reads the certificate each address in the token presents (Python's ssl, ALPN h2, no
     verification) and accepts an address only if the SHA-256 of that certificate (DER)
     is the token's; a different certificate stops the join before anything is sent;
  2. dials gRPC with exactly that certificate as the only root, naming
     dns_name(parent id) with grpc.ssl_target_name_override;
  3. calls Join (again every POLL_SECONDS while approval is pending, up to `wait`), checks
     and countersigns the answer, calls Confirm, and records its side.
"""

from __future__ import annotations

import datetime as dt
import functools
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from node._proto.lapor.v1 import enrollment_pb2, enrollment_pb2_grpc, trust_pb2
from node.crypto.linking import AddressPair, JoinToken
from node.crypto.tls import dns_name, fingerprint
from node.errors import (
    IntegrityError,
    PeerError,
    PeerUnavailableError,
    PermissionDeniedError,
    StateError,
)
from node.federation import limits
from node.federation.error_edge import edge_interceptors
from node.federation.session import DbRunner
from node.federation.throttle import Throttle, source_of
from node.ids import NodeId
from node.logs import get_logger
from node.services import join_answers, joining, rotation
from node.services.context import NodeContext

__all__ = [
    "POLL_SECONDS",
    "EnrollmentServicer",
    "JoinResult",
    "fetch_certificate",
    "fetch_key_rotations",
    "join",
    "pin_parent",
]

POLL_SECONDS = 2.0
CALL_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0
MAX_MESSAGE_BYTES = 1024 * 1024
T = TypeVar("T")


# --- the parent ----------------------------------------------------------------------------


class EnrollmentServicer(enrollment_pb2_grpc.EnrollmentServiceServicer):
    """Join and Confirm, answered by node.services.join_answers on the writer thread."""

    def __init__(self, ctx: NodeContext, db: DbRunner) -> None:
        self.ctx = ctx
        self.db = db
        self.log = get_logger(node_id=ctx.node_id)
        self.throttle = Throttle("enrollment", ctx.config.throttle)

    async def Join(
        self, request: enrollment_pb2.JoinRequest, context: grpc.aio.ServicerContext
    ) -> enrollment_pb2.JoinResponse:
        # The signatures, clocks and invite are checked on a reader thread first, so that
        # requests from anyone take nothing from the single writer until they check out.
        opened = await self.throttle.guard(
            source_of(context.peer()), self.db.read(join_answers.check_join, self.ctx, request)
        )
        response = await self.db.write(join_answers.answer_join, self.ctx, request, opened)
        self.log.info(
            "enrollment.join",
            status=enrollment_pb2.JoinStatus.Name(response.status),
            confirmed=response.confirmed,
        )
        return response

    async def GetKeyRotations(
        self, request: enrollment_pb2.GetKeyRotationsRequest, context: grpc.aio.ServicerContext
    ) -> enrollment_pb2.GetKeyRotationsResponse:
        rotations = await self.db.read(rotation.own_rotations_of, self.ctx)
        return enrollment_pb2.GetKeyRotationsResponse(node_id=self.ctx.node_id, rotations=rotations)

    async def Confirm(
        self, request: enrollment_pb2.ConfirmRequest, context: grpc.aio.ServicerContext
    ) -> enrollment_pb2.ConfirmResponse:
        response = await self.throttle.guard(
            source_of(context.peer()),
            self.db.write(join_answers.answer_confirm, self.ctx, request),
        )
        self.log.info(
            "enrollment.confirmed", invite=request.invite_id[:8], entry=response.ledger_index
        )
        return response


def enrollment_server(
    servicer: EnrollmentServicer,
    key_pem: bytes,
    cert_pem: bytes,
    address: str,
    fetch_identity: Callable[[], Any] | None = None,
) -> tuple[grpc.aio.Server, int]:
    """A server for `servicer` on `address`: TLS with this node's certificate, no client
    certificate asked for. Returns it (not started) and the port bound (0: none).
    `fetch_identity` (called at each handshake; None keeps the certificate) lets the
    running node present a new certificate after a key rotation."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            *limits.server_options(),
        ],
        interceptors=edge_interceptors(servicer.ctx.node_id),
    )
    enrollment_pb2_grpc.add_EnrollmentServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    initial = grpc.ssl_server_certificate_configuration([(key_pem, cert_pem)])
    creds = grpc.dynamic_ssl_server_credentials(
        initial, fetch_identity or (lambda: None), require_client_authentication=False
    )
    try:
        port = server.add_secure_port(address, creds)
    except RuntimeError:
        port = 0
    return server, port


# --- the child ------------------------------------------------------------------------------


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def fetch_certificate(address: str, timeout: float = CONNECT_TIMEOUT_SECONDS) -> bytes:
    """The certificate (PEM) the TLS server at `address` presents, unverified: the caller
    compares its fingerprint with the one it trusts before anything else."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(_host_port(address), timeout=timeout) as sock,
        context.wrap_socket(sock) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server presented no certificate")
    return ssl.DER_cert_to_PEM_cert(der).encode()


def fetch_key_rotations(address: str, node: NodeId) -> list[trust_pb2.SignedKeyRotation]:
    """`node`'s key rotations from its enrollment port at `address`. The connection is not
    trusted (the node's certificate may be one this node never pinned): the records are
    signed, and node.services.rotation.follow_fetched checks them from the pinned key."""
    try:
        cert = fetch_certificate(address)
    except (OSError, ssl.SSLError, ValueError) as e:
        raise PeerUnavailableError(
            f"cannot reach {node}'s enrollment port at {address}: {e}"
        ) from e
    options = [
        ("grpc.ssl_target_name_override", dns_name(node)),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]
    creds = grpc.ssl_channel_credentials(root_certificates=cert)
    with grpc.secure_channel(address, creds, options=options) as channel:
        stub = enrollment_pb2_grpc.EnrollmentServiceStub(channel)  # type: ignore[no-untyped-call]
        response: enrollment_pb2.GetKeyRotationsResponse = _call(
            "fetch key rotations",
            node,
            address,
            functools.partial(
                stub.GetKeyRotations,
                enrollment_pb2.GetKeyRotationsRequest(),
                timeout=CALL_TIMEOUT_SECONDS,
            ),
        )
    if response.node_id != node:
        raise PeerError(f"the node at {address} is {response.node_id!r}, not {node}")
    return list(response.rotations)


def pin_parent(
    token: JoinToken, fetch: Callable[[str], bytes] = fetch_certificate
) -> tuple[AddressPair, bytes]:
    """The first address pair whose enrollment port presents the token's certificate, and
    that certificate. A server with another certificate stops the join at once."""
    problems: list[str] = []
    for pair in token.addresses:
        try:
            cert = fetch(pair.enrollment)
        except (OSError, ssl.SSLError, ValueError) as e:
            problems.append(f"{pair.enrollment} ({getattr(e, 'strerror', None) or e})")
            continue
        found = fingerprint(cert)
        if found != token.parent_tls_sha256:
            raise IntegrityError(
                f"the node at {pair.enrollment} presented a TLS certificate with SHA-256 "
                f"{found.hex()}, and the token says {token.parent_id}'s is "
                f"{token.parent_tls_sha256.hex()}: it is not {token.parent_id} (a wrong "
                "address, or someone in between). Nothing was sent. Check the address with "
                f"the operator of {token.parent_id}, and get the token again over a channel "
                "you trust"
            )
        return pair, cert
    raise PeerUnavailableError(
        f"cannot reach {token.parent_id} at any address in the token: {'; '.join(problems)}. "
        f"Check this node's network and firewall, and that `lapor-node serve` runs on "
        f"{token.parent_id} with its enrollment port open"
    )


@dataclass(frozen=True)
class JoinResult:
    """A finished join (or one found finished already)."""

    parent_id: str
    parent_name: str
    address: str
    ledger_index: int | None
    parent_ledger_index: int | None
    already: bool = False


def _call(what: str, parent: str, address: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except grpc.RpcError as e:
        code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
        details = e.details() if hasattr(e, "details") else str(e)
        if "certificate has expired" in str(details).lower():
            raise PeerError(
                f"{what}: certificate expired: {parent}'s TLS certificate has expired, and "
                f"retrying does not help: its operator must rotate keys (`lapor-node keys "
                f"rotate` on {parent}); a join then needs a new token from them"
            ) from e
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise PeerUnavailableError(
                f"{what}: cannot reach {parent} at {address} ({code.name}: {details}); "
                "run `lapor-node link join` again with the same token when it is reachable"
            ) from e
        raise PeerError(f"{parent} refused the join: {details}") from e


def join(
    ctx: NodeContext,
    token: JoinToken,
    *,
    wait: dt.timedelta,
    on_pending: Callable[[str], None] = lambda message: None,
    fetch: Callable[[str], bytes] = fetch_certificate,
    poll_seconds: float = POLL_SECONDS,
) -> JoinResult:
    """Join the parent `token` names, as its child (see the module docstring)."""
    existing = joining.check_token(ctx, token)
    if existing is not None:
        return JoinResult(
            existing.peer_id,
            existing.name,
            existing.address or "",
            existing.agreement_entry,
            None,
            already=True,
        )
    pair, cert = pin_parent(token, fetch)
    parent = token.parent_id
    options = [
        ("grpc.ssl_target_name_override", dns_name(parent)),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    creds = grpc.ssl_channel_credentials(root_certificates=cert)
    deadline = time.monotonic() + wait.total_seconds()
    pending_seen = False
    with grpc.secure_channel(pair.enrollment, creds, options=options) as channel:
        stub = enrollment_pb2_grpc.EnrollmentServiceStub(channel)  # type: ignore[no-untyped-call]
        while True:
            request = joining.join_request(ctx, token, cert)
            response: enrollment_pb2.JoinResponse = _call(
                "join",
                parent,
                pair.enrollment,
                functools.partial(stub.Join, request, timeout=CALL_TIMEOUT_SECONDS),
            )
            if response.status == enrollment_pb2.JOIN_STATUS_ACCEPTED:
                break
            if response.status == enrollment_pb2.JOIN_STATUS_REJECTED:
                raise PermissionDeniedError(
                    f"{response.message}. Nothing was recorded on either node; ask the "
                    f"operator of {parent} why, and for a new token if it was a mistake"
                )
            if response.status != enrollment_pb2.JOIN_STATUS_PENDING:
                raise PeerError(f"{parent} answered the join with an unknown status")
            if not pending_seen:
                on_pending(response.message)
                pending_seen = True
            if time.monotonic() + poll_seconds > deadline:
                raise StateError(
                    f"still waiting for the operator of {parent} to approve, after "
                    f"{_span(wait)}. The join is kept: run `lapor-node link join` again with "
                    f"the same token to go on waiting (it is valid until "
                    f"{token.expires_at:%Y-%m-%d %H:%M} UTC)"
                )
            time.sleep(poll_seconds)
        acceptance = joining.accept(ctx, token, response)
        confirm = enrollment_pb2.ConfirmRequest(
            invite_id=token.invite_id,
            secret=token.secret,
            agreement=acceptance.agreement.agreement,
            child_signature=acceptance.agreement.child_signature,
        )
        confirmed: enrollment_pb2.ConfirmResponse = _call(
            "confirm",
            parent,
            pair.enrollment,
            functools.partial(stub.Confirm, confirm, timeout=CALL_TIMEOUT_SECONDS),
        )
    index = joining.record_join(ctx, token, acceptance, pair.federation, pair.enrollment)
    return JoinResult(
        parent, acceptance.parent_name, pair.federation, index, confirmed.ledger_index
    )


def _span(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
