"""The Intake service on the wire (lapor.v1.IntakeService, docs/intake.md): channel gateways
submit complaints to the node where they enter.

Transport: TLS with the node's own certificate on `intake.listen`, no client certificate
(gateways are not nodes; they pin the certificate's SHA-256 instead). Every call carries
`authorization: Bearer <token>`; the gateway is the one configured with SHA-256(token).

Order of checks on Submit, each refusal ending the call before anything is stored:
  1. the token names a configured gateway, else UNAUTHENTICATED;
  2. the first message is a well-formed Submission, else INVALID_ARGUMENT; declared
     attachments within the node's limits, else RESOURCE_EXHAUSTED;
  3. its channel is one the gateway may submit for, else PERMISSION_DENIED;
  4. the attachment chunks arrive in order and each attachment matches its declared size
     and SHA-256, else INVALID_ARGUMENT;
  5. node.services.intake.accept registers it in one transaction on the writer thread
     (a retry: the first tracking id, duplicate = true; the key reused for something
     else: ALREADY_EXISTS).
Every outcome is counted in lapor_node_intake_submissions_total; logs name the gateway,
channel and tracking id, never the complaint's content.

One gateway cannot starve the others (issue 21.9): each gateway has at most
`IntakeLimits.per_gateway` submissions in progress (more are refused at once with
RESOURCE_EXHAUSTED, naming the gateway's own limit), and a submission must arrive whole
within `call_seconds`, with no pause longer than `pause_seconds` between its messages,
else DEADLINE_EXCEEDED; either way the gateway retries with the same idempotency key.
Bytes that do not parse as the protocol's messages (text fields must be UTF-8) are the
gateway's error: INVALID_ARGUMENT, never INTERNAL (which gateways retry).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import intake_pb2, intake_pb2_grpc
from node.complaints import ComplaintDraft
from node.config import GatewayConfig
from node.errors import (
    BusyError,
    ConfigError,
    DeadlineExceededError,
    NodeError,
    PermissionDeniedError,
    UnauthenticatedError,
    ValidationError,
)
from node.federation import limits
from node.federation.error_edge import edge_interceptors, note_call
from node.federation.session import DbRunner
from node.federation.status import status_for
from node.federation.throttle import Throttle, source_of
from node.logs import get_logger
from node.metrics import INTAKE_SUBMISSIONS
from node.services import intake
from node.services.context import NodeContext

__all__ = [
    "MAX_CONCURRENT_CALLS",
    "MAX_MESSAGE_BYTES",
    "IntakeLimits",
    "IntakeServer",
    "IntakeServicer",
    "start_intake",
]

# A chunk of at most MAX_CHUNK_BYTES plus its framing; a Submission is far smaller.
MAX_MESSAGE_BYTES = intake.MAX_CHUNK_BYTES + 64 * 1024
# Submissions in progress at once, over all gateways: a submission holds its files in
# memory (at most intake.max_total_bytes) until it commits, so this bounds intake's
# memory. It is shared out between the gateways (IntakeLimits.for_config); gRPC itself
# refuses calls beyond CALL_BACKSTOP times this (quick refusals and GetStatus included).
MAX_CONCURRENT_CALLS = 16
CALL_BACKSTOP = 4
DEFAULT_CALL_SECONDS = 300.0
DEFAULT_PAUSE_SECONDS = 30.0


@dataclass(frozen=True)
class IntakeLimits:
    """Per-gateway concurrency and the per-call deadline (see the module docstring)."""

    per_gateway: int = MAX_CONCURRENT_CALLS
    call_seconds: float = DEFAULT_CALL_SECONDS
    pause_seconds: float = DEFAULT_PAUSE_SECONDS

    @classmethod
    def for_config(cls, cfg: Any) -> IntakeLimits:
        """From node.yaml's `intake:` section. Optional keys: `max_calls_per_gateway`
        (default: MAX_CONCURRENT_CALLS shared equally between the gateways listed, at least
        1), `call_timeout_seconds`, `pause_timeout_seconds`."""
        gateways = max(1, len(getattr(cfg, "gateways", ())))
        share = max(1, MAX_CONCURRENT_CALLS // gateways)
        return cls(
            per_gateway=int(getattr(cfg, "max_calls_per_gateway", share)),
            call_seconds=float(getattr(cfg, "call_timeout_seconds", DEFAULT_CALL_SECONDS)),
            pause_seconds=float(getattr(cfg, "pause_timeout_seconds", DEFAULT_PAUSE_SECONDS)),
        )


@dataclass(frozen=True)
class _Unparsed:
    """What the server hands the servicer for bytes that are not the expected message: the
    servicer answers INVALID_ARGUMENT itself (gRPC would answer UNKNOWN)."""

    message: str


def _lenient(cls: Any) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return cls.FromString(data)
        except DecodeError:
            return _Unparsed(cls.DESCRIPTOR.name)

    return parse


def _unparsed_error(unparsed: _Unparsed) -> ValidationError:
    return ValidationError(
        f"a message of the call does not parse as a {unparsed.message} (its text fields "
        "must be UTF-8); fix the gateway's encoding, retrying the same bytes will not help"
    )


def _handlers(servicer: IntakeServicer) -> grpc.GenericRpcHandler:
    """The IntakeService methods, each request parsed leniently (_lenient)."""
    return grpc.method_handlers_generic_handler(
        "lapor.v1.IntakeService",
        {
            "Submit": grpc.stream_unary_rpc_method_handler(
                servicer.Submit,
                request_deserializer=_lenient(intake_pb2.SubmitRequest),
                response_serializer=intake_pb2.SubmitResponse.SerializeToString,
            ),
            "GetStatus": grpc.unary_unary_rpc_method_handler(
                servicer.GetStatus,
                request_deserializer=_lenient(intake_pb2.GetStatusRequest),
                response_serializer=intake_pb2.GetStatusResponse.SerializeToString,
            ),
        },
    )


class IntakeServicer(intake_pb2_grpc.IntakeServiceServicer):
    """Submit and GetStatus for the gateways node.yaml lists."""

    def __init__(self, ctx: NodeContext, db: DbRunner, limits: IntakeLimits | None = None) -> None:
        self.ctx = ctx
        self.db = db
        self.limits = limits or IntakeLimits.for_config(ctx.config.intake)
        # Submissions in progress per gateway name (the event loop is the only writer).
        self.in_progress: dict[str, int] = {}
        self.log = get_logger(node_id=ctx.node_id)
        self.throttle = Throttle("intake", ctx.config.throttle)

    def _gateway(self, context: grpc.aio.ServicerContext) -> GatewayConfig:
        token = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                scheme, _, token = value.partition(" ")
                token = token.strip() if scheme.lower() == "bearer" else ""
        gateway = intake.gateway_for(self.ctx.config.intake, token) if token else None
        if gateway is None:
            self.throttle.failed(source_of(context.peer()))
            raise UnauthenticatedError(
                "no gateway of this node has this token: send `authorization: Bearer "
                "<token>` with the token `lapor-node intake gateway add` issued, and ask the "
                "node's operator to list the gateway in node.yaml (intake.gateways)",
            )
        return gateway

    def _admit(self, gateway: GatewayConfig) -> None:
        """Count a submission of `gateway` in, or refuse it if the gateway is at its limit."""
        busy = self.in_progress.get(gateway.name, 0)
        if busy >= self.limits.per_gateway:
            raise BusyError(
                f"gateway {gateway.name!r} already has {busy} submissions in progress, the "
                "most one gateway may have at once; finish or cancel one, then retry with "
                "the same idempotency key",
            )
        self.in_progress[gateway.name] = busy + 1

    def _release(self, gateway: GatewayConfig) -> None:
        left = self.in_progress.get(gateway.name, 0) - 1
        if left > 0:
            self.in_progress[gateway.name] = left
        else:
            self.in_progress.pop(gateway.name, None)

    async def _messages(
        self, requests: AsyncIterator[intake_pb2.SubmitRequest]
    ) -> AsyncIterator[intake_pb2.SubmitRequest]:
        """The call's messages, each within pause_seconds of the last and all within
        call_seconds of the first; bytes that are not a SubmitRequest are the caller's
        error."""
        deadline = time.monotonic() + self.limits.call_seconds
        iterator = aiter(requests)
        while True:
            wait = min(self.limits.pause_seconds, deadline - time.monotonic())
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    request = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise DeadlineExceededError(
                    f"the submission did not arrive whole within {self.limits.call_seconds:g}s "
                    f"(or paused longer than {self.limits.pause_seconds:g}s between messages); "
                    "retry with the same idempotency key",
                ) from None
            except DecodeError as e:
                raise _unparsed_error(_Unparsed("SubmitRequest")) from e
            if isinstance(request, _Unparsed):
                raise _unparsed_error(request)
            yield request

    async def _receive(
        self, requests: AsyncIterator[intake_pb2.SubmitRequest], gateway: GatewayConfig
    ) -> tuple[ComplaintDraft, str, list[intake.Received]]:
        draft: ComplaintDraft | None = None
        key = ""
        receiver: intake.AttachmentReceiver | None = None
        async for request in self._messages(requests):
            part = request.WhichOneof("part")
            if receiver is None:
                if part != "submission":
                    raise ValidationError("the first message must carry the submission")
                key = request.submission.idempotency_key
                intake.validate_key(key)
                draft = intake.draft_from_submission(request.submission)
                if draft.channel not in gateway.channels:
                    raise PermissionDeniedError(
                        f"gateway {gateway.name!r} may submit for "
                        f"{', '.join(gateway.channels)}, not {draft.channel}; the node's "
                        "operator can allow it in node.yaml (intake.gateways)"
                    )
                receiver = intake.AttachmentReceiver(draft.attachments, self.ctx.config.intake)
            elif part == "chunk":
                receiver.add(request.chunk.index, request.chunk.data)
            else:
                raise ValidationError("only attachment chunks may follow the submission")
        if receiver is None or draft is None:
            raise ValidationError("the stream ended before a submission arrived")
        return draft, key, receiver.finish()

    async def Submit(
        self,
        request_iterator: AsyncIterator[intake_pb2.SubmitRequest],
        context: grpc.aio.ServicerContext,
    ) -> intake_pb2.SubmitResponse:
        channel = "unknown"
        try:
            await self.throttle.before(source_of(context.peer()))
            gateway = self._gateway(context)
            note_call(gateway=gateway.name)
            self._admit(gateway)
            try:
                draft, key, attachments = await self._receive(request_iterator, gateway)
                channel = draft.channel
                note_call(channel=channel)
                result = await self.db.write(
                    functools.partial(
                        intake.accept, self.ctx, draft, attachments, gateway=gateway, key=key
                    )
                )
            finally:
                self._release(gateway)
        except Exception as e:  # counted here, answered by the error edge
            code = status_for(e) if isinstance(e, NodeError) else grpc.StatusCode.INTERNAL
            INTAKE_SUBMISSIONS.labels(channel=channel, outcome=code.name).inc()
            raise
        outcome = "duplicate" if result.duplicate else "created"
        INTAKE_SUBMISSIONS.labels(channel=channel, outcome=outcome).inc()
        self.log.info(
            "intake.accepted",
            gateway=gateway.name,
            channel=channel,
            complaint_id=result.tracking_id,
            duplicate=result.duplicate,
            attachments=len(attachments),
        )
        response = intake_pb2.SubmitResponse(
            tracking_id=result.tracking_id, duplicate=result.duplicate
        )
        response.submitted_at.FromDatetime(result.submitted_at)
        return response

    async def GetStatus(
        self, request: intake_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.GetStatusResponse:
        await self.throttle.before(source_of(context.peer()))
        gateway = self._gateway(context)
        note_call(gateway=gateway.name)
        if isinstance(request, _Unparsed):
            raise _unparsed_error(request)
        view = await self.db.read(intake.status, self.ctx, gateway, request.tracking_id)
        response = intake_pb2.GetStatusResponse(tracking_id=view.tracking_id, status=view.status)
        response.updated_at.FromDatetime(view.updated_at)
        return response


@dataclass
class IntakeServer:
    """The running Intake server and the port it bound."""

    server: grpc.aio.Server
    port: int

    async def stop(self, grace: float) -> None:
        await self.server.stop(grace)


async def start_intake(
    ctx: NodeContext,
    db: DbRunner,
    key_pem: bytes,
    cert_pem: bytes,
    fetch_identity: Callable[[], Any] | None = None,
    call_limits: IntakeLimits | None = None,
) -> IntakeServer | None:
    """Serve intake on `intake.listen` (None when it is off). A port that cannot be bound
    stops the node: the operator asked for it explicitly. `fetch_identity` (called at each
    handshake; None keeps the certificate) presents the new certificate after a key
    rotation, as the enrollment port does. `call_limits` (default: from node.yaml) are
    the per-gateway limit and the per-call deadline."""
    cfg = ctx.config.intake
    log = get_logger(node_id=ctx.node_id)
    if not cfg.enabled:
        return None
    call_limits = call_limits or IntakeLimits.for_config(cfg)
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            *limits.server_options(ctx.config.server),
        ],
        interceptors=edge_interceptors(ctx.node_id),
        maximum_concurrent_rpcs=max(
            MAX_CONCURRENT_CALLS, call_limits.per_gateway * max(1, len(cfg.gateways))
        )
        * CALL_BACKSTOP,
    )
    server.add_generic_rpc_handlers((_handlers(IntakeServicer(ctx, db, call_limits)),))
    creds = grpc.dynamic_ssl_server_credentials(
        grpc.ssl_server_certificate_configuration([(key_pem, cert_pem)]),
        fetch_identity or (lambda: None),
        require_client_authentication=False,
    )
    try:
        port = server.add_secure_port(cfg.listen, creds)
    except RuntimeError:
        port = 0
    if port == 0:
        raise ConfigError(
            f"cannot listen for gateways on {cfg.listen} (intake.listen); use a free port, "
            'or "" to turn intake off'
        )
    await server.start()
    if not cfg.gateways:
        log.warning(
            "intake.no_gateways",
            action="add one with `lapor-node intake gateway add NAME --channel CHANNEL`, "
            "then restart serve",
        )
    log.info(
        "intake.started",
        listen=cfg.listen,
        port=port,
        gateways=len(cfg.gateways),
        calls_per_gateway=call_limits.per_gateway,
        call_seconds=call_limits.call_seconds,
    )
    return IntakeServer(server, port)
